#!/usr/bin/env bash
# install-deps.sh -- install every Debian 12 package mxroute needs to build
# and test. Idempotent: returns quickly when everything is installed.
# Run as root or as a user with sudo.
#
# Exim (tests/it_exim.sh) cannot be installed beside Postfix, the system's
# MTA: its two packages are only downloaded into $EXIM_DEB_DIR, which the
# suite unpacks (tests/lib/exim.sh); the libraries the exim binary links
# are in PACKAGES, and the Debian-exim user it runs as is created here.
set -euo pipefail

EXIM_DEB_DIR=${EXIM_DEB_DIR:-/var/cache/mxroute-tests/exim}
EXIM_DEBS=(exim4-daemon-light exim4-base)

PACKAGES=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  liblua5.4-dev lua5.4 libc-ares-dev libcmocka-dev libidn2-dev
  libldns-dev ldnsutils libjansson-dev libssl-dev libmicrohttpd-dev libsystemd-dev
  knot knot-dnsutils
  python3 python3-dnslib python3-aiosmtpd
  postfix swaks nodejs valgrind jq curl python3-prometheus-client
  postfix-mta-sts-resolver python3-uvloop iproute2
  libidn12 libgnutls30 libgnutls-dane0 libnsl2 libdb5.3 libpcre2-8-0
)

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  SUDO=(sudo)
fi

# The Exim packages in the cache and the Debian-exim user; quick when both
# are there already.
exim_ready() {
  local p
  for p in "${EXIM_DEBS[@]}"; do
    compgen -G "$EXIM_DEB_DIR/${p}_4.96*.deb" >/dev/null || return 1
  done
  getent passwd Debian-exim >/dev/null
}

fetch_exim() {
  local p
  "${SUDO[@]}" mkdir -p "$EXIM_DEB_DIR"
  for p in "${EXIM_DEBS[@]}"; do
    compgen -G "$EXIM_DEB_DIR/${p}_4.96*.deb" >/dev/null && continue
    # apt's sandbox user cannot write into a root-owned directory: download
    # as root (APT::Sandbox::User) into the cache itself.
    (cd "$EXIM_DEB_DIR" && "${SUDO[@]}" apt-get -q -o APT::Sandbox::User=root download "$p")
    if ! compgen -G "$EXIM_DEB_DIR/${p}_4.96*.deb" >/dev/null; then
      echo "install-deps: $p 4.96 not found in $EXIM_DEB_DIR after apt-get download" >&2
      exit 1
    fi
  done
  getent passwd Debian-exim >/dev/null ||
    "${SUDO[@]}" useradd --system --user-group --no-create-home \
      --home-dir /var/spool/exim4 --shell /usr/sbin/nologin Debian-exim
  echo "install-deps: Exim 4.96 packages in $EXIM_DEB_DIR"
}

missing=()
for p in "${PACKAGES[@]}"; do
  st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$st" = installed ] || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ] && exim_ready; then
  echo "install-deps: all ${#PACKAGES[@]} packages already installed, Exim cached"
  exit 0
fi
[ ${#missing[@]} -eq 0 ] || echo "install-deps: missing: ${missing[*]}"

if [ ${#SUDO[@]} -gt 0 ] && ! command -v sudo >/dev/null 2>&1; then
  echo "install-deps: need root or sudo" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they are missing or older than a day.
lists=/var/lib/apt/lists
if ! ls "$lists"/*_Packages* >/dev/null 2>&1 ||
   [ -z "$(find "$lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null | head -n1)" ]; then
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
fi

if [ ${#missing[@]} -eq 0 ]; then
  fetch_exim
  echo "install-deps: done"
  exit 0
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
  # bench/serve.sh starts its own, on a unix socket of its own
  "${SUDO[@]}" systemctl disable --now postfix-mta-sts-resolver >/dev/null 2>&1 || true
fi

fetch_exim

# smtp-sink lives outside PATH on Debian.
for f in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink; do
  [ -x "$f" ] && { echo "install-deps: smtp-sink at $f"; break; }
done
echo "install-deps: done"
