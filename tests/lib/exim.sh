# shellcheck shell=bash
# exim.sh -- a private Exim 4.96 for the integration tests. Exim and
# Postfix conflict as installed MTAs and Postfix stays the system's, so
# scripts/install-deps.sh only fetches Debian's two Exim packages into a
# cache ($EXIM_DEB_DIR) and installs the libraries they need; here they
# are unpacked with dpkg -x into a directory of the test's own.
#
#   exim_init DIR
#       Unpack exim4-daemon-light and exim4-base (the newest of each in
#       $EXIM_DEB_DIR, default /var/cache/mxroute-tests/exim) into
#       DIR/root, make DIR/spool and DIR/log for the Debian-exim user, and
#       check the binary runs and is Exim 4.96. Sets EXIM (the binary) and
#       EXIM_DIR. Non-zero, with the reason on stderr, when something is
#       missing (run scripts/install-deps.sh).
#   exim_config FILE SOCKET [MACRO=VALUE...]
#       Copy the configuration FILE to DIR/exim.conf (Exim wants a -C
#       file owned by root, not writable by others: a copy is, wherever
#       the source tree is) with one line put first, "exim_path = $EXIM":
#       Exim re-executes itself (to deliver at once, to write a bounce)
#       from that path, /usr/sbin/exim4 unless told. Sets EXIM_ARGS: -C
#       and the macros MXROUTE_SOCKET=SOCKET, SPOOL, LOGDIR and the extra
#       ones given (Exim passes them on when it re-executes itself).
#   exim_run ARGS...
#       $EXIM "${EXIM_ARGS[@]}" ARGS, bounded by 30 s: stdout in $OUT,
#       stderr in $ERR, exit status in $RC, the command in LAST_CMD.
#   exim_queue
#       The ids of the messages in the private queue, one a line.
#
# exim is started as root (needed for -C and -D); what it re-executes runs
# as Debian-exim (routing and delivery of -odi, bounces), which writes the
# spool and logs and connects to the daemon's socket: every directory
# above DIR must be searchable by that user.

EXIM_DEB_DIR=${EXIM_DEB_DIR:-/var/cache/mxroute-tests/exim}

_exim_deb() { # PACKAGE: the newest cached .deb of PACKAGE
  local f
  f=$(printf '%s\n' "$EXIM_DEB_DIR/$1"_*.deb | sort -V | tail -n 1)
  [ -f "$f" ] && printf '%s\n' "$f"
}

exim_init() {
  local dir=$1 deb pkg v
  EXIM_DIR=$dir
  mkdir -p "$dir/root" "$dir/spool" "$dir/log" || return 1
  for pkg in exim4-daemon-light exim4-base; do
    if ! deb=$(_exim_deb "$pkg"); then
      echo "exim_init: no $pkg .deb in $EXIM_DEB_DIR (run scripts/install-deps.sh)" >&2
      return 2
    fi
    dpkg -x "$deb" "$dir/root" || { echo "exim_init: dpkg -x $deb failed" >&2; return 2; }
  done
  EXIM=$dir/root/usr/sbin/exim4
  if ! getent passwd Debian-exim >/dev/null; then
    echo "exim_init: no Debian-exim user (run scripts/install-deps.sh)" >&2
    return 2
  fi
  chown Debian-exim "$dir/spool" "$dir/log" || return 1
  if ! v=$("$EXIM" -C /dev/null -bV 2>&1 | grep -m1 '^Exim version'); then
    echo "exim_init: $EXIM does not run:" >&2
    "$EXIM" -C /dev/null -bV 2>&1 | head -n 3 >&2
    ldd "$EXIM" 2>&1 | grep 'not found' >&2
    return 2
  fi
  case $v in
    "Exim version 4.96 "*) ;;
    *) echo "exim_init: $v, not 4.96" >&2; return 2 ;;
  esac
}

exim_config() { # FILE SOCKET [MACRO=VALUE...]
  local src=$1 sock=$2 m
  shift 2
  { printf 'exim_path = %s\n' "$EXIM" && cat "$src"; } >"$EXIM_DIR/exim.conf" &&
    chmod 644 "$EXIM_DIR/exim.conf" || return 1
  EXIM_ARGS=(-C "$EXIM_DIR/exim.conf" "-DMXROUTE_SOCKET=$sock"
    "-DSPOOL=$EXIM_DIR/spool" "-DLOGDIR=$EXIM_DIR/log")
  for m in "$@"; do EXIM_ARGS+=("-D$m"); done
}

# RC and LAST_CMD are the harness's (tests/lib/cli_harness.sh).
# shellcheck disable=SC2034
exim_run() {
  timeout 30 "$EXIM" "${EXIM_ARGS[@]}" "$@" >"$OUT" 2>"$ERR"
  RC=$?
  LAST_CMD="exim $(printf '%q ' "${EXIM_ARGS[@]}" "$@")"
}

exim_queue() {
  timeout 30 "$EXIM" "${EXIM_ARGS[@]}" -bp 2>/dev/null |
    awk 'NF >= 3 && $3 ~ /^[0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+$/ { print $3 }'
}
