# shellcheck shell=bash
# daemon.sh -- a daemon under test (mxroute serve) in a process group of
# its own, so that a wrapper script in its place (tests/broken_binaries.sh)
# is stopped together with what it started.
#
#   DPID               the pid of the group leader (set by the caller:
#                      `setsid "$MXROUTE" serve ... & DPID=$!`)
#   stop_daemon        SIGKILL to the whole group, reap it, clear DPID
#   pq KEY             postmap -q KEY against socketmap:unix:$SOCK:transport
#                      (Postfix's own socketmap client; $POSTMAP, and an
#                      empty main.cf in $TMP/postfix): $OUT, $ERR, $RC
#   expect_out NAME WANT  stdout ($OUT) is exactly WANT
#   term_daemon [S]    SIGTERM to the group, then wait up to S seconds (8)
#                      for the daemon to exit: DAEMON_RC is its exit status,
#                      or "running" (then it is killed); DPID is cleared

DPID=
stop_daemon() {
  [ -n "$DPID" ] || return 0
  kill -KILL -- "-$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  DPID=
}

term_daemon() {
  local i
  DAEMON_RC=
  [ -n "$DPID" ] || return 0
  kill -TERM -- "-$DPID" 2>/dev/null # the group: a wrapper's daemon too
  for i in $(seq $((${1:-8} * 10))); do
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$DPID" 2>/dev/null; then
    DAEMON_RC=running
    stop_daemon
    return 0
  fi
  wait "$DPID"
  DAEMON_RC=$?
  kill -KILL -- "-$DPID" 2>/dev/null
  DPID=
}

pq() {
  LAST_CMD="postmap -q $1 socketmap:unix:$SOCK:transport"
  timeout 10 "$POSTMAP" -c "$TMP/postfix" -q "$1" "socketmap:unix:$SOCK:transport" >"$OUT" 2>"$ERR"
  RC=$?
}

expect_out() {
  local got
  got=$(cat "$OUT")
  if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "$2" "$got"; fi
}
