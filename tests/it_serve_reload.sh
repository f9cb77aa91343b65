#!/usr/bin/env bash
# it_serve_reload.sh -- reloading `mxroute serve` (SIGHUP and the JSON
# "reload" request), and SIGHUP/SIGTERM under load, with real parts: zone
# files, a Lua policy and a --config file edited between reloads; a
# misbehaving DNS server on loopback whose answer comes 1.5 s late
# (tests/lib/hostile_dns.py, case "slow") for a request in flight across a
# reload; knotd (tests/lib/knot.sh) behind a daemon kept busy by 16
# pipelining clients (tests/lib/serve_client.py load) while it is sent
# SIGHUP 20 times, then SIGTERM; and an sd_notify receiver on a datagram
# socket set in NOTIFY_SOCKET.
#
# Every wait is bounded: a daemon that never starts, or dies, is a FAIL.
# Environment: MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR (as ctest sets them).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=python3
CLIENT="$SRC/tests/lib/serve_client.py"

. "$SRC/tests/lib/cli_harness.sh"
harness_start it_serve_reload

. "$SRC/tests/lib/daemon.sh"
. "$SRC/tests/lib/knot.sh"
HPID=
NPID=
cleanup() {
  stop_daemon
  [ -n "$HPID" ] && kill "$HPID" 2>/dev/null
  [ -n "$NPID" ] && kill "$NPID" 2>/dev/null
  knot_stop
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SM=$TMP/sm.sock
JS=$TMP/js.sock
LOG=$TMP/daemon.log
CONF=$TMP/serve.conf

# ---------------------------------------------------------------- helpers

cl() { # ARGS: serve_client.py ARGS into $OUT
  LAST_CMD="serve_client.py $*"
  timeout 60 $PY "$CLIENT" "$@" >"$OUT" 2>"$ERR"
  RC=$?
}
ask() { # NAME KEY WANT: one socketmap request, its reply exactly WANT
  cl sm "$SM" "$2"
  expect_out "$1" "$3
OPEN"
}
# wait_log PATTERN N: at least N lines of the log match (at most 10 s)
wait_log() {
  local i
  for i in $(seq 100); do
    [ "$(grep -c -- "$1" "$LOG" 2>/dev/null)" -ge "$2" ] && return 0
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# hup NAME: SIGHUP, then wait for the reload's outcome in the log
RELOADS=0
hup() {
  RELOADS=$((RELOADS + 1))
  LAST_CMD="kill -HUP (reload $RELOADS)"
  kill -HUP "$DPID" 2>/dev/null
  wait_log "reloaded:\|reload failed" "$RELOADS" ||
    fail "$1" "the reload's outcome logged within 10 s" "$(tail -3 "$LOG")"
}
json_reload() { # the JSON reload request: its reply in $OUT
  RELOADS=$((RELOADS + 1))
  cl json "$JS" '{"id":"r","op":"reload"}'
}
stat_of() { # FIELD: from a JSON stats request
  $PY "$CLIENT" json "$JS" '{"id":0,"op":"stats"}' 2>/dev/null | jq -r ".$1" 2>/dev/null
}
# start_daemon ARGS...: waits (at most 10 s) for both sockets to answer
start_daemon() {
  : >"$LOG"
  setsid "$MXROUTE" serve "$@" 2>"$LOG" &
  DPID=$!
  local i
  for i in $(seq 100); do
    if [ -S "$SM" ] && [ -S "$JS" ] &&
      $PY "$CLIENT" json "$JS" '{"op":"stats"}' 2>/dev/null | grep -q routes; then
      return 0
    fi
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
# stop_term SECONDS: SIGTERM to the group; 0 when it exited 0 in time
stop_term() {
  term_daemon "$1"
  [ "$DAEMON_RC" = 0 ]
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$DPID/status" 2>/dev/null || echo 0; }

zone_v() { # ADDRESS: the zone with mx1 at ADDRESS
  cat >"$TMP/reload.zone" <<EOF
\$ORIGIN reload.test.
@    3600 SOA ns hostmaster 1 3600 600 86400 300
@    3600 NS  ns
ns   3600 A   192.0.2.53
a    3600 MX  10 mx1
p    3600 MX  10 mx1
mx1  3600 A   $1
EOF
}
policy_v() { # ADDRESS: the policy relays p.reload.test to ADDRESS
  cat >"$TMP/relay.lua" <<EOF
-- relay.lua: p.reload.test goes through one relay
return {
    domains = { "p.reload.test" },
    route = function(plan)
        plan:remove(function() return true end)
        plan:add({ host = "relay.reload.test", addresses = { "$1" } })
    end,
}
EOF
}
conf_v() { # EXTRA LINES...: the --config file
  {
    echo "listen socketmap:unix:$SM"
    echo "listen json:unix:$JS"
    echo "listen metrics:unix:$TMP/metrics.sock"
    printf '%s\n' "$@"
  } >"$CONF"
}
ZONES=("zone $TMP/reload.zone" "policy $TMP/relay.lua")

# ------------------------------------------------- reloads change answers
zone_v 192.0.2.1
policy_v 192.0.2.31
conf_v "${ZONES[@]}" "domains reload.test,.reload.test"
LAST_CMD="mxroute serve --config $CONF"
# Under ASan, freed memory waits in a quarantine (256 MB by default) before
# it is used again: RSS would grow with every reload. This daemon's RSS is
# measured, so its quarantine is small (freed memory is still poisoned
# while it waits there); the load daemon below keeps the default.
if ! ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4" \
  start_daemon --config "$CONF" --seed 7; then
  cp "$LOG" "$ERR"
  fail "daemon starts" "sockets $SM and $JS answering" "not within 10 s"
  harness_end
  exit 1
fi
pass "daemon listens"
ask "before any reload: the zone's answer" a.reload.test "OK smtp:[192.0.2.1]:25"
ask "before any reload: the policy's relay" p.reload.test "OK smtp:[192.0.2.31]:25"

zone_v 192.0.2.2
hup "SIGHUP after a zone edit"
ask "SIGHUP after a zone edit: the new zone answers" a.reload.test "OK smtp:[192.0.2.2]:25"
if grep -q "signal 1: reloading" "$LOG" && grep -q "reloaded: new requests" "$LOG"; then
  pass "SIGHUP: the log says reloading, then reloaded"
else fail "SIGHUP logged" "signal 1: reloading ... reloaded:" "$(cat "$LOG")"; fi

zone_v 192.0.2.3
json_reload
expect_out "the JSON reload request: its reply" '{"reload":"ok","id":"r"}'
ask "JSON reload after a zone edit: the new zone answers" a.reload.test "OK smtp:[192.0.2.3]:25"
cl json "$JS" '{"id":1,"op":"reload"}' '{"id":2,"op":"route","input":"a.reload.test"}'
JQ_SLURP=1 expect_jq "a route pipelined after a reload request waits for it, ids in order" \
  'length == 2 and .[0].reload == "ok" and .[0].id == 1 and .[1].id == 2
   and .[1].candidates[0].addresses == ["192.0.2.3"]'
RELOADS=$((RELOADS + 1))

policy_v 192.0.2.32
hup "SIGHUP after a policy edit"
ask "SIGHUP after a policy edit: the new policy answers" p.reload.test "OK smtp:[192.0.2.32]:25"

conf_v "${ZONES[@]}" "domains a.reload.test" "transport relay" "max-pipeline 4"
hup "SIGHUP after a --config edit"
cl sm "$SM" a.reload.test p.reload.test
expect_out "--config edit: new --transport, p.reload.test no longer in --domains" \
  "OK relay:[192.0.2.3]:25
NOTFOUND 
OPEN"

conf_v "${ZONES[@]}" "domains a.reload.test" "listen json:unix:$TMP/new.sock" \
  "pidfile $TMP/new.pid"
hup "SIGHUP with a new --listen"
if grep -q "warning: reload: changed options need a restart.*--listen --pidfile" "$LOG" &&
  [ ! -e "$TMP/new.sock" ] && [ ! -e "$TMP/new.pid" ]; then
  pass "a new --listen or --pidfile: warned (restart needed), running values kept"
else fail "restart-only options" "a warning naming --listen --pidfile, no new socket" "$(tail -3 "$LOG")"; fi
ask "and the rest of that reload took effect (default transport)" a.reload.test "OK smtp:[192.0.2.3]:25"

# ---------------------------------------------------------- failed reloads
conf_v "${ZONES[@]}"
hup "back to every domain"
printf 'a 3600 MX 10\n' >>"$TMP/reload.zone"
hup "SIGHUP with a broken zone"
if grep -q "error: reload failed, the running configuration stays: .*reload.zone" "$LOG"; then
  pass "a broken zone: the reload fails, the log names the zone file"
else fail "broken zone logged" "error: reload failed ... reload.zone ..." "$(tail -3 "$LOG")"; fi
ask "a broken zone: the old answers go on" a.reload.test "OK smtp:[192.0.2.3]:25"
json_reload
expect_jq "a broken zone: the JSON reply says failed, and why" \
  '.reload == "failed" and .id == "r" and (.error | test("reload.zone"))'

zone_v 192.0.2.4
printf 'return {\n' >"$TMP/relay.lua"
json_reload
expect_jq "a policy that does not load: the JSON reply says failed, naming it" \
  '.reload == "failed" and (.error | test("relay.lua"))'
if grep -q "error: reload failed.*relay.lua" "$LOG"; then pass "a broken policy: logged at error level"
else fail "broken policy logged" "error: reload failed ... relay.lua" "$(tail -3 "$LOG")"; fi
ask "a broken policy: the old set answers (old zone too)" a.reload.test "OK smtp:[192.0.2.3]:25"
ask "a broken policy: the old policy answers" p.reload.test "OK smtp:[192.0.2.32]:25"

policy_v 192.0.2.33
mv "$CONF" "$CONF.away"
json_reload
expect_jq "an unreadable --config file: failed, the reply says why" \
  '.reload == "failed" and (.error | test("serve.conf: cannot be read"))'
ask "an unreadable --config file: the old answers go on" a.reload.test "OK smtp:[192.0.2.3]:25"
mv "$CONF.away" "$CONF"
echo "max-clients many" >>"$CONF"
hup "SIGHUP with a bad --config line"
if grep -q "error: reload failed.*serve.conf:[0-9]*: --max-clients" "$LOG"; then
  pass "a bad --config line: the log names FILE:LINE and the option"
else fail "bad config line logged" "error: reload failed ... serve.conf:N: --max-clients" "$(tail -3 "$LOG")"; fi
conf_v "${ZONES[@]}"
hup "a good reload after the failed ones"
cl sm "$SM" a.reload.test p.reload.test
expect_out "a good reload after failed ones: the new zone and policy answer" \
  "OK smtp:[192.0.2.4]:25
OK smtp:[192.0.2.33]:25
OPEN"
ok=$(stat_of reloads_ok)
failed_n=$(stat_of reloads_failed)
if [ "$ok" = 8 ] && [ "$failed_n" = 5 ]; then
  pass "stats: reloads_ok 8, reloads_failed 5"
else fail "stats reload counts" "reloads_ok 8, reloads_failed 5" "ok=$ok failed=$failed_n"; fi
# The metrics listener moved to each new engine with the other sockets,
# and counts the same reloads.
LAST_CMD="curl --unix-socket $TMP/metrics.sock http://localhost/metrics"
curl -s -m 5 --unix-socket "$TMP/metrics.sock" http://localhost/metrics >"$OUT" 2>"$ERR"
if grep -qx 'mxroute_reloads_total{result="ok"} 8' "$OUT" &&
  grep -qx 'mxroute_reloads_total{result="failed"} 5' "$OUT"; then
  pass "metrics after 13 reloads: mxroute_reloads_total ok 8, failed 5"
else fail "metrics reload counts" "ok 8, failed 5" "$(grep reloads "$OUT" || head -c 300 "$ERR")"; fi

# ------------------------------- a request in flight finishes on the old set
# The old set asks a DNS server that answers 1.5 s late; the new set has
# a zone with another answer for the same name.
$PY "$SRC/tests/lib/hostile_dns.py" "$TMP/hport" --lifetime 300 &
HPID=$!
for i in $(seq 50); do [ -s "$TMP/hport" ] && break; sleep 0.1; done
HPORT=$(cat "$TMP/hport" 2>/dev/null)
cat >"$TMP/hostile.zone" <<EOF
\$ORIGIN hostile.test.
@     3600 SOA ns hostmaster 1 3600 600 86400 300
@     3600 NS  ns
ns    3600 A   192.0.2.53
slow  3600 MX  10 mx9
mx9   3600 A   192.0.2.99
EOF
conf_v "server 127.0.0.1:${HPORT:-1}" "timeout 4000" "tries 1"
hup "to the slow DNS server"
cl sm "$SM" ok.hostile.test
expect_out "the DNS server's set answers" "OK smtp:[192.0.2.10]:25
OPEN"
$PY "$CLIENT" sm "$SM" slow.hostile.test >"$TMP/inflight" 2>"$TMP/inflight.err" &
cpid=$!
for i in $(seq 50); do [ "$(stat_of inflight)" = 1 ] && break; sleep 0.1; done
conf_v "zone $TMP/hostile.zone"
hup "SIGHUP with a request in flight"
ask "a new request after the reload: the new set's answer at once" slow.hostile.test \
  "OK smtp:[192.0.2.99]:25"
if kill -0 "$cpid" 2>/dev/null; then pass "the request in flight is still waiting then"
else fail "in flight across the reload" "the slow request still waiting" "it ended: $(cat "$TMP/inflight")"; fi
wait "$cpid"
cp "$TMP/inflight" "$OUT"
expect_out "the request in flight at the reload: the old set's (late) answer" \
  "OK smtp:[192.0.2.10]:25
OPEN"

# ----------------------------------------------- retiring engines are freed
conf_v "${ZONES[@]}"
hup "back to the zone files"
many=()
for i in $(seq 20); do many+=('{"op":"reload"}'); done
cl json "$JS" "${many[@]}"
b1=$(stat_of bytes_allocated)
r1=$(rss_kb)
for round in $(seq 10); do cl json "$JS" "${many[@]}"; done
n_ok=$(grep -c '"reload":"ok"' "$OUT")
b2=$(stat_of bytes_allocated)
r2=$(rss_kb)
total=$(stat_of reloads_ok)
LAST_CMD="220 JSON reloads, bytes_allocated and VmRSS after 20 and after 220"
if [ "$n_ok" = 20 ] && [ "${total:-0}" -ge 229 ] && [ -n "$b1" ] && [ "$b1" -gt 0 ] &&
  [ "$b2" -le $((b1 + b1 / 10)) ]; then
  pass "220 reloads: the engines' bytes_allocated stays flat ($b1 -> $b2)"
else fail "retired engines freed" "bytes_allocated flat, 20 ok replies a round" "$b1 -> $b2, ok=$n_ok, reloads_ok=$total"; fi
if [ "$r1" -gt 0 ] && [ "$r2" -le $((r1 + 8192)) ]; then
  pass "200 reloads more: VmRSS grew at most 8 MB ($r1 kB -> $r2 kB)"
else fail "RSS after reloads" "at most 8 MB more than ${r1} kB" "$r2 kB"; fi

# SIGTERM with a lookup in flight: its answer comes 1.5 s later, within
# --drain (5 s): sent before the connection ends.
conf_v "server 127.0.0.1:${HPORT:-1}" "timeout 4000" "tries 1"
hup "to the slow DNS server again"
$PY "$CLIENT" sm "$SM" slow.hostile.test >"$TMP/inflight" 2>"$TMP/inflight.err" &
cpid=$!
for i in $(seq 50); do [ "$(stat_of inflight)" = 1 ] && break; sleep 0.1; done
LAST_CMD="kill -TERM with a lookup in flight"
if stop_term 8; then pass "SIGTERM with a lookup in flight: exit 0"
else fail "SIGTERM with a lookup in flight" "exit 0 within 8 s" "$(tail -3 "$LOG")"; fi
wait "$cpid"
cp "$TMP/inflight" "$OUT"
expect_out "SIGTERM: the lookup in flight answered, then the connection closed" \
  "OK smtp:[192.0.2.10]:25
CLOSED"
kill "$HPID" 2>/dev/null
HPID=

# ------------------------------------------------ SIGHUP and SIGTERM under load
# u{n}.w.load.test: a new name each time (the wildcard answers), never
# in a cache, so that every reload finds lookups in flight.
mkdir -p "$TMP/kz"
cat >"$TMP/kz/load.test.zone" <<'EOF'
$ORIGIN load.test.
@    3600 SOA ns hostmaster 1 3600 600 86400 300
@    3600 NS  ns
ns   3600 A   192.0.2.53
a    0    MX  10 mx1
b    0    MX  10 mx1
b    0    MX  20 mx2
c    0    MX  10 mx3
mx1  0    A   192.0.2.1
mx2  0    A   192.0.2.2
mx3  0    A   192.0.2.3
mx3  0    A   192.0.2.4
*.w  0    MX  10 mx2
EOF
if ! knot_start "$TMP/kz" >"$TMP/knot.out" 2>&1; then
  fail "knotd starts" "knotd answering on loopback" "$(tail -5 "$TMP/knot.out")"
  harness_end
  exit 1
fi
LOAD=(a.load.test=192.0.2.1 b.load.test=192.0.2.1,192.0.2.2
  c.load.test=192.0.2.3,192.0.2.4 user@a.load.test=192.0.2.1
  'u{n}.w.load.test=192.0.2.2')
NOTIFY=$TMP/notify.sock
$PY "$CLIENT" notify "$NOTIFY" "$TMP/notify.out" "$SM" a.load.test 120 &
NPID=$!
for i in $(seq 50); do [ -S "$NOTIFY" ] && break; sleep 0.1; done
conf_v "server 127.0.0.1:$KNOT_PORT" "max-pipeline 64" "max-clients 64"
LAST_CMD="NOTIFY_SOCKET=$NOTIFY mxroute serve --config $CONF"
if ! NOTIFY_SOCKET=$NOTIFY start_daemon --config "$CONF" --seed 7 --drain 5; then
  cp "$LOG" "$ERR"
  fail "load daemon starts" "sockets answering" "not within 10 s"
  harness_end
  exit 1
fi
for i in $(seq 50); do grep -q READY-ANSWER "$TMP/notify.out" 2>/dev/null && break; sleep 0.1; done
if [ "$(head -1 "$TMP/notify.out")" = "READY=1|STATUS=serving" ] &&
  grep -qx "READY-ANSWER OK smtp:\[192.0.2.1\]:25" "$TMP/notify.out"; then
  pass "sd_notify: READY=1 first, and the socket answers at once when it comes"
else fail "sd_notify READY" "READY=1|STATUS=serving, then an answer" "$(cat "$TMP/notify.out" 2>/dev/null)"; fi

RELOADS=0
rm -f "$TMP/stop"
$PY "$CLIENT" load "$SM" "$JS" 16 120 "$TMP/stop" "${LOAD[@]}" >"$TMP/load.out" 2>&1 &
lpid=$!
sleep 0.5
for i in $(seq 20); do
  hup "SIGHUP $i under load"
  sleep 0.05
done
sleep 0.3
touch "$TMP/stop"
wait "$lpid"
cp "$TMP/load.out" "$OUT"
LAST_CMD="serve_client.py load (16 connections) while SIGHUP x20"
read -r alive answered ended lost partial sent stuck wrong <<<"$(head -1 "$OUT" | tr -c '0-9\n' ' ')"
if [ -n "${wrong:-}" ] && [ "$wrong" = 0 ] && [ "$ended" = 0 ] && [ "$stuck" = 0 ] &&
  [ "$partial" = 0 ] && [ "$alive" = 0 ] && [ "$answered" = "$sent" ] && [ "$sent" -ge 1000 ]; then
  pass "SIGHUP x20 under load: all $sent requests answered right (16 connections, none closed)"
else fail "SIGHUP under load" "every request answered right, >= 1000, no connection ended" "$(head -4 "$OUT")"; fi
if [ "$(grep -c "reloaded: new requests" "$LOG")" = 20 ] && ! grep -q "error" "$LOG"; then
  pass "SIGHUP x20 under load: 20 reloads, no error logged"
else fail "20 reloads logged" "20 reloaded lines, no error" "$(grep -c reloaded "$LOG"): $(grep error "$LOG" | head -3)"; fi
LAST_CMD="sd_notify messages"
if [ "$(grep -c '^RELOADING=1|MONOTONIC_USEC=[0-9]*|STATUS=reloading$' "$TMP/notify.out")" = 20 ] &&
  [ "$(grep -A1 '^RELOADING=1' "$TMP/notify.out" | grep -c '^READY=1|STATUS=serving; reloaded$')" = 20 ]; then
  pass "sd_notify: RELOADING=1 with MONOTONIC_USEC, then READY=1, for each of the 20 reloads"
else fail "sd_notify reloads" "20 RELOADING=1|MONOTONIC_USEC=N|... each followed by READY=1" "$(head -c 600 "$TMP/notify.out")"; fi

# SIGTERM under load: every reply that comes is whole and right; a
# connection ends only after the replies to what the daemon read.
rm -f "$TMP/stop"
$PY "$CLIENT" load "$SM" "$JS" 16 30 "$TMP/stop" "${LOAD[@]}" >"$TMP/load.out" 2>&1 &
lpid=$!
sleep 1
LAST_CMD="kill -TERM under load (--drain 5)"
start=$(date +%s)
if stop_term 8; then pass "SIGTERM under load: exit 0 within $(($(date +%s) - start)) s"
else fail "SIGTERM under load" "exit 0 within 8 s" "$(tail -3 "$LOG")"; fi
wait "$lpid"
cp "$TMP/load.out" "$OUT"
read -r alive answered ended lost partial sent stuck wrong <<<"$(head -1 "$OUT" | tr -c '0-9\n' ' ')"
if [ -n "${wrong:-}" ] && [ "$wrong" = 0 ] && [ "$partial" = 0 ] && [ "$stuck" = 0 ] &&
  [ "$ended" = 16 ] && [ "$alive" = 0 ] && [ "$lost" -le 8 ] && [ "$answered" -ge 100 ] &&
  [ "$answered" -ge $((sent - 16 * 8)) ]; then
  pass "SIGTERM under load: $answered replies whole and right, each connection ended cleanly (at most its last batch unread)"
else fail "SIGTERM under load" "no wrong or partial reply, 16 ended, lost <= 8" "$(head -4 "$OUT")"; fi
if [ ! -e "$SM" ] && [ ! -e "$JS" ]; then pass "SIGTERM under load: socket files removed"
else fail "SIGTERM cleanup" "no socket files" "$(ls "$TMP")"; fi
for i in $(seq 30); do kill -0 "$NPID" 2>/dev/null || break; sleep 0.1; done
if [ "$(tail -1 "$TMP/notify.out")" = "STOPPING=1|STATUS=stopping: finishing the requests in flight" ]; then
  pass "sd_notify: STOPPING=1 at SIGTERM"
else fail "sd_notify STOPPING" "STOPPING=1|STATUS=..." "$(tail -2 "$TMP/notify.out")"; fi
NPID=

harness_end
