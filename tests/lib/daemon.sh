# shellcheck shell=bash
# daemon.sh -- a daemon under test (mxroute serve) in a process group of
# its own, so that a wrapper script in its place (tests/broken_binaries.sh)
# is stopped together with what it started.
#
#   DPID               the pid of the group leader (set by the caller:
#                      `setsid "$MXROUTE" serve ... & DPID=$!`)
#   stop_daemon        SIGKILL to the whole group, reap it, clear DPID

DPID=
stop_daemon() {
  [ -n "$DPID" ] || return 0
  kill -KILL -- "-$DPID" 2>/dev/null
  wait "$DPID" 2>/dev/null
  DPID=
}
