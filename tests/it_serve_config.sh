#!/usr/bin/env bash
# it_serve_config.sh -- `mxroute serve` set up for a service manager: the
# --config file (the daemon answers Postfix's postmap as with the same
# options on the command line; the command line overrides the file),
# --check-config (0 and "configuration OK", or 78 with the reason naming
# FILE:LINE; 66 for a file that cannot be read), --user (as root: the
# daemon runs as nobody, answers, removes its socket at SIGTERM; an
# unknown user is 67), --log syslog / --log-level, and the shipped
# examples: examples/serve.conf passes --check-config and
# examples/systemd/mxroute.service parses as an INI file with the
# hardening it promises (and passes systemd-analyze verify where there is
# one).
#
# Every wait is bounded: a daemon that never starts, or dies, is a FAIL.
# Environment: MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR (as ctest sets them).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=python3
ZONE=$SRC/tests/zones/rules.test.zone

. "$SRC/tests/lib/cli_harness.sh"
harness_start it_serve_config

POSTMAP=$(command -v postmap || echo /usr/sbin/postmap)
. "$SRC/tests/lib/daemon.sh"
trap 'stop_daemon; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

LOG=$TMP/daemon.log
mkdir -p "$TMP/postfix" && : >"$TMP/postfix/main.cf"
# The daemon may run as nobody: the socket directory is its, and $TMP
# lets it through.
RUN=$TMP/run
mkdir -p "$RUN"
chmod 711 "$TMP"
SOCK=$RUN/sm.sock
PLAN25="smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25"
PLAN2525="smtp:[2001:db8::11]:2525, [192.0.2.11]:2525, [2001:db8::12]:2525, [192.0.2.12]:2525"

# start_daemon ARGS...: mxroute serve ARGS in the background; waits (at
# most 5 s) for $SOCK. 0 when it is there.
start_daemon() {
  LAST_CMD="mxroute serve $(printf '%q ' "$@")"
  setsid "$MXROUTE" serve "$@" 2>"$LOG" &
  DPID=$!
  local i
  for i in $(seq 50); do
    [ -S "$SOCK" ] && return 0
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# stop_term: SIGTERM, wait at most 8 s; 0 when it exited 0.
stop_term() {
  term_daemon 8
  [ "$DAEMON_RC" = 0 ]
}

expect_err() { # NAME PATTERN: stderr matches the grep -E pattern
  if grep -Eq -- "$2" "$ERR"; then pass "$1"; else fail "$1" "stderr matching $2" "$(head -c 300 "$ERR")"; fi
}

if [ ! -x "$POSTMAP" ]; then
  fail "postmap" "Postfix's postmap on PATH or at /usr/sbin/postmap" "not found"
fi

# ---- a config file: the daemon answers as with the options on the command line
CONF=$TMP/serve.conf
cat >"$CONF" <<EOF
# a comment, then a blank line

listen socketmap:unix:$SOCK
  zone $ZONE
allow-loopback
port 2525
domains rules.test,.rules.test
EOF

if start_daemon --zone "$ZONE" --allow-loopback --port 2525 --domains rules.test,.rules.test \
  --listen "socketmap:unix:$SOCK"; then
  pq user@plain.rules.test
  cp "$OUT" "$TMP/cmdline.out"
  expect_out "command line: the reference answer" "$PLAN2525"
else
  cp "$LOG" "$ERR"; fail "daemon with options on the command line starts" "socket $SOCK" "not there"
fi
stop_term

if start_daemon --config "$CONF"; then
  pq user@plain.rules.test
  if [ -s "$OUT" ] && cmp -s "$OUT" "$TMP/cmdline.out"; then
    pass "--config: postmap gets what the same options on the command line give"
  else fail "--config answer" "$(cat "$TMP/cmdline.out")" "$(cat "$OUT")"; fi
  pq user@example.org
  if [ "$RC" = 1 ] && [ ! -s "$OUT" ]; then pass "--config: domains from the file (example.org not found)"
  else fail "--config domains" "exit 1, no output" "exit $RC: $(cat "$OUT")"; fi
  if stop_term && [ ! -e "$SOCK" ]; then pass "--config: SIGTERM, exit 0, socket removed"
  else fail "--config: SIGTERM" "exit 0, no $SOCK" "$(cat "$LOG")"; fi
else
  cp "$LOG" "$ERR"; fail "daemon with --config starts" "socket $SOCK" "not there"
  stop_daemon
fi

if start_daemon --config "$CONF" --port 25; then
  pq user@plain.rules.test
  expect_out "--port on the command line overrides the file's port 2525" "$PLAN25"
else
  cp "$LOG" "$ERR"; fail "daemon with --config --port starts" "socket $SOCK" "not there"
fi
stop_term

# ---- --label-transport: a policy's label picks the master.cf service;
# --socket-mode: the unix socket's mode, whatever the umask
RELAYCFG='{relays = {{host = "relay.rules.test", port = 587, addresses = {"192.0.2.99"}}}, domains = {"plain.rules.test"}}'
old_umask=$(umask)
umask 077
start_daemon --zone "$ZONE" --allow-loopback --listen "socketmap:unix:$SOCK" \
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAYCFG" \
  --label-transport smarthost=relay --label-transport other=nope --socket-mode 0666
started=$?
umask "$old_umask"
if [ $started = 0 ]; then
  pq user@plain.rules.test
  expect_out "--label-transport: the smart host's label selects service 'relay'" "relay:[192.0.2.99]:587"
  pq user@alias.rules.test
  expect_out "--label-transport: unlabelled candidates keep --transport" \
    "smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25"
  mode=$(stat -c %a "$SOCK" 2>/dev/null)
  if [ "$mode" = 666 ]; then pass "--socket-mode 0666 under umask 077: the socket is 666"
  else fail "--socket-mode 0666" "666" "${mode:-no socket}"; fi
else
  cp "$LOG" "$ERR"; fail "daemon with --label-transport starts" "socket $SOCK" "not there"
fi
stop_term
for bad in "--label-transport smarthost" "--label-transport =relay" \
  "--label-transport smarthost=a:b" "--socket-mode 0999" "--socket-mode rw"; do
  # shellcheck disable=SC2086
  run serve --zone "$ZONE" --listen "socketmap:unix:$SOCK" $bad
  if [ "$RC" = 64 ] && [ "$(wc -l <"$ERR")" -le 2 ] && grep -q -- "${bad%% *}" "$ERR"; then
    pass "serve $bad: usage error 64 naming the option"
  else fail "serve $bad" "exit 64, the option named" "exit $RC: $(head -c 300 "$ERR")"; fi
done

# ---- --check-config
run serve --config "$CONF" --check-config
if [ "$RC" = 0 ] && [ "$(cat "$OUT")" = "mxroute serve: configuration OK" ]; then
  pass "--check-config: a good file, exit 0 and the OK line"
else fail "--check-config good" "exit 0, 'mxroute serve: configuration OK'" "exit $RC: $(cat "$OUT")"; fi
if [ ! -e "$SOCK" ]; then pass "--check-config opens no socket"
else fail "--check-config opens nothing" "no $SOCK" "$(ls -l "$SOCK")"; fi

printf 'listen socketmap:unix:%s\n# the zone\nzone %s\n' "$SOCK" "$TMP/missing.zone" >"$TMP/nozone.conf"
run serve --config "$TMP/nozone.conf" --check-config
expect_rc "--check-config: a missing zone" 78
expect_err "--check-config: the missing zone named with FILE:LINE" \
  "^mxroute serve: $TMP/nozone.conf:3: --zone $TMP/missing.zone: cannot be read: No such file"
if [ ! -s "$OUT" ]; then pass "--check-config: no OK line for a bad config"
else fail "--check-config bad: stdout" "empty" "$(cat "$OUT")"; fi

printf 'error(\n' >"$TMP/broken.lua"
printf 'listen socketmap:unix:%s\nzone %s\npolicy %s\n' "$SOCK" "$ZONE" "$TMP/broken.lua" >"$TMP/badpolicy.conf"
run serve --config "$TMP/badpolicy.conf" --check-config
expect_rc "--check-config: a policy that does not load" 78
expect_err "--check-config: the policy error named" "broken\.lua"

printf 'listen socketmap:unix:%s\nzone %s\n\nunknown-option x\n' "$SOCK" "$ZONE" >"$TMP/unknown.conf"
run serve --config "$TMP/unknown.conf" --check-config
expect_rc "--check-config: an unknown option line" 78
expect_err "unknown option: FILE:LINE" "^mxroute serve: $TMP/unknown.conf:4: unknown option 'unknown-option'"
run serve --config "$TMP/unknown.conf"
expect_rc "a bad line without --check-config is EX_CONFIG too" 78

printf 'listen socketmap:unix:%s\nport abc\n' "$SOCK" >"$TMP/badport.conf"
run serve --config "$TMP/badport.conf"
expect_rc "a bad value in the file" 78
expect_err "bad value: FILE:LINE" "^mxroute serve: $TMP/badport.conf:2: --port: 'abc' is not a number"
run serve --config "$TMP/badport.conf" --port 25 --check-config
expect_rc "the file's bad value is checked even when the command line overrides it" 78

printf 'listen socketmap:unix:%s\nallow-loopback yes\n' "$SOCK" >"$TMP/flag.conf"
run serve --config "$TMP/flag.conf" --check-config
expect_rc "a flag given a value" 78
expect_err "flag with a value: FILE:LINE" "$TMP/flag.conf:2: 'allow-loopback' takes no value"

printf 'listen socketmap:unix:%s\nconfig %s\n' "$SOCK" "$CONF" >"$TMP/nested.conf"
run serve --config "$TMP/nested.conf" --check-config
expect_rc "config inside a config file" 78

run serve --config "$TMP/no-such.conf" --check-config
expect_rc "--check-config: a config file that cannot be read" 66
expect_err "unreadable config: the common message" \
  "^mxroute serve: --config $TMP/no-such.conf: cannot be read: No such file or directory$"
run serve --config "$TMP/no-such.conf"
expect_rc "serve: a config file that cannot be read" 66

run serve --zone "$ZONE" --check-config
expect_rc "--check-config: no --listen" 78
run serve --config "$CONF" --config "$CONF"
expect_rc "two --config" 64

# ---- --user
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  chown nobody "$RUN"
  NOBODY=$(id -u nobody)
  if start_daemon --config "$CONF" --user nobody --pidfile "$RUN/pid"; then
    uid=$(awk '/^Uid:/ {print $2, $3, $4, $5}' "/proc/$DPID/status")
    if [ "$uid" = "$NOBODY $NOBODY $NOBODY $NOBODY" ]; then pass "--user nobody: the daemon runs as uid $NOBODY"
    else fail "--user nobody: uid" "$NOBODY (real, effective, saved, fs)" "$uid"; fi
    owner=$(stat -c %U "$SOCK")
    if [ "$owner" = nobody ]; then pass "--user nobody: the socket file is nobody's"
    else fail "--user: socket owner" nobody "$owner"; fi
    pq user@plain.rules.test
    expect_out "--user nobody: still answers" "$PLAN2525"
    if stop_term && [ ! -e "$SOCK" ] && [ ! -e "$RUN/pid" ]; then
      pass "--user nobody: SIGTERM, exit 0, socket and pid file removed"
    else fail "--user nobody: SIGTERM" "exit 0, no $SOCK, no pid file" "$(ls "$RUN"; cat "$LOG")"; fi
  else
    cp "$LOG" "$ERR"; fail "--user nobody: daemon starts" "socket $SOCK" "not there"
    stop_daemon
  fi
else
  echo "SKIP --user nobody: not root, or no user nobody"
fi
run serve --config "$CONF" --user no-such-user-mxr
expect_rc "--user no-such-user" 67
expect_err "--user: the reason" "^mxroute serve: --user no-such-user-mxr: no such user$"
if [ ! -e "$SOCK" ]; then pass "--user no-such-user: no socket left behind"
else fail "--user no-such-user: socket" "none" "$(ls -l "$SOCK")"; fi
run serve --config "$CONF" --user no-such-user-mxr --check-config
expect_rc "--check-config: an unknown --user" 78

# ---- --log, --log-level
if start_daemon --config "$CONF" --log syslog; then
  pq user@plain.rules.test
  expect_out "--log syslog: answers" "$PLAN2525"
  stop_term
  cp "$LOG" "$ERR"
  if ! grep -q "listening on" "$LOG"; then pass "--log syslog: the log is not on stderr"
  else fail "--log syslog" "no 'listening on' on stderr" "$(head -c 300 "$LOG")"; fi
else
  cp "$LOG" "$ERR"; fail "--log syslog: daemon starts" "socket $SOCK" "not there"
  stop_daemon
fi
if start_daemon --config "$CONF"; then
  stop_term
  if grep -q "^mxroute serve: listening on socketmap:unix:$SOCK$" "$LOG"; then pass "default: info lines on stderr"
  else fail "default log" "'listening on' on stderr" "$(head -c 300 "$LOG")"; fi
else
  cp "$LOG" "$ERR"; fail "default log: daemon starts" "socket $SOCK" "not there"
  stop_daemon
fi
if start_daemon --config "$CONF" --log-level warning; then
  stop_term
  if [ -e "$LOG" ] && ! grep -q "listening on" "$LOG"; then pass "--log-level warning: no info lines"
  else fail "--log-level warning" "no 'listening on'" "$(head -c 300 "$LOG")"; fi
else
  cp "$LOG" "$ERR"; fail "--log-level warning: daemon starts" "socket $SOCK" "not there"
  stop_daemon
fi
run serve --config "$CONF" --log journal
expect_rc "--log journal is a usage error" 64
printf 'listen socketmap:unix:%s\nlog-level debug\n' "$SOCK" >"$TMP/level.conf"
run serve --config "$TMP/level.conf" --check-config
expect_rc "log-level debug in the file" 78

# ---- the shipped examples
run serve --config "$SRC/examples/serve.conf" --check-config
if [ "$RC" = 0 ] && grep -q "configuration OK" "$OUT"; then pass "examples/serve.conf passes --check-config"
else fail "examples/serve.conf" "exit 0, configuration OK" "exit $RC"; fi

UNIT=$SRC/examples/systemd/mxroute.service
LAST_CMD="python3 configparser $UNIT"
if $PY - "$UNIT" >"$OUT" 2>"$ERR" <<'EOF'
import configparser, sys
c = configparser.ConfigParser(interpolation=None, strict=True)
c.optionxform = str
c.read_file(open(sys.argv[1]))
s = c["Service"]
want = {"User": "mxroute", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
        "RuntimeDirectory": "mxroute", "PrivateTmp": "yes", "ProtectHome": "yes",
        "Restart": "on-failure", "Type": "notify",
        "ExecReload": "/bin/kill -HUP $MAINPID"}
bad = [k for k, v in want.items() if s.get(k) != v]
pre, start = s.get("ExecStartPre", ""), s.get("ExecStart", "")
if not (pre.endswith("mxroute serve --config /etc/mxroute/serve.conf --check-config")
        and start.endswith("mxroute serve --config /etc/mxroute/serve.conf")):
    bad.append("ExecStartPre/ExecStart")
if "Unit" not in c or "Install" not in c:
    bad.append("[Unit]/[Install]")
print("missing or wrong: " + ", ".join(bad) if bad else "ok")
sys.exit(1 if bad else 0)
EOF
then pass "mxroute.service parses as INI, with the promised hardening"
else fail "mxroute.service INI" "ok" "$(cat "$OUT" "$ERR")"; fi
if command -v systemd-analyze >/dev/null 2>&1; then
  # The binary at the unit's path must exist for verify: the built one.
  sed "s|/usr/bin/mxroute|$MXROUTE|g" "$UNIT" >"$TMP/mxroute.service"
  LAST_CMD="systemd-analyze verify --man=no $TMP/mxroute.service"
  systemd-analyze verify --man=no "$TMP/mxroute.service" >"$OUT" 2>"$ERR"
  RC=$?
  if [ "$RC" = 0 ] && [ ! -s "$ERR" ]; then pass "systemd-analyze verify: no complaint"
  else fail "systemd-analyze verify" "exit 0, nothing on stderr" "exit $RC"; fi
else
  echo "SKIP systemd-analyze verify: not installed"
fi

harness_end
