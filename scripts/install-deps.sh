#!/usr/bin/env bash
# install-deps.sh -- install every Debian 12 package mxroute needs to build
# and test. Idempotent: returns quickly when everything is installed.
# Run as root or as a user with sudo.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  liblua5.4-dev lua5.4 libc-ares-dev libcmocka-dev libidn2-dev
  libldns-dev ldnsutils libjansson-dev libssl-dev libsystemd-dev
  knot knot-dnsutils
  python3 python3-dnslib python3-aiosmtpd
  postfix swaks nodejs valgrind jq
)

missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
echo "install-deps: missing: ${missing[*]}"

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-deps: need root or sudo" >&2; exit 1; }
  SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they are missing or older than a day.
lists=/var/lib/apt/lists
if ! ls "$lists"/*_Packages* >/dev/null 2>&1 ||
   [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
fi

# Postfix: no questions, no configuration; we only use its smtp-sink binary.
postfix_was_installed=1
dpkg-query -W -f='${db:Status-Status}' postfix 2>/dev/null | grep -qx installed ||
  postfix_was_installed=0
if [ $postfix_was_installed -eq 0 ]; then
  printf '%s\n' \
    "postfix postfix/main_mailer_type select No configuration" \
    "postfix postfix/mailname string localhost.localdomain" |
    "${SUDO[@]}" debconf-set-selections
fi

"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"

# Do not leave the postfix daemon (or knotd) running: tests start their own
# peers on loopback.
if [ $postfix_was_installed -eq 0 ]; then
  if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
    "${SUDO[@]}" systemctl disable --now postfix >/dev/null 2>&1 || true
  fi
  "${SUDO[@]}" postfix stop >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  "${SUDO[@]}" systemctl disable --now knot >/dev/null 2>&1 || true
fi

# smtp-sink lives outside PATH on Debian.
for f in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do
  [ -x "$f" ] && { echo "install-deps: smtp-sink at $f"; break; }
done
echo "install-deps: done"
