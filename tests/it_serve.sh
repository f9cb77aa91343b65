#!/usr/bin/env bash
# it_serve.sh -- `mxroute serve` against real clients: Postfix's own
# postmap(1) through its socketmap client, a raw netstring client
# (tests/lib/serve_client.py: garbage, over-long, partial, slow, pipelined,
# ten times --max-clients at once) and JSON Lines, whose route answers must
# be the objects `mxroute route --json` prints. Ends with SIGTERM while a
# request is in flight: exit 0 within the drain bound, the reply sent, the
# socket file removed.
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
ZONE=$SRC/tests/zones/rules.test.zone

. "$SRC/tests/lib/cli_harness.sh"
harness_start it_serve

POSTMAP=$(command -v postmap || echo /usr/sbin/postmap)
. "$SRC/tests/lib/daemon.sh"
trap 'stop_daemon; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

SOCK=$TMP/sm.sock
PORT=$($PY "$CLIENT" freeport)
LOG=$TMP/daemon.log
# postmap needs a configuration directory; an empty main.cf will do.
mkdir -p "$TMP/postfix" && : >"$TMP/postfix/main.cf"

# start_daemon ARGS...: mxroute serve in the background; waits (at most
# 5 s) for the socket and the port. 0 when both answer.
start_daemon() {
  setsid "$MXROUTE" serve --zone "$ZONE" --allow-loopback --seed 7 "$@" 2>"$LOG" &
  DPID=$!
  local i
  for i in $(seq 50); do
    if [ -S "$SOCK" ] && $PY -c "import socket,sys; socket.create_connection(('127.0.0.1',$PORT),1)" 2>/dev/null; then
      return 0
    fi
    kill -0 "$DPID" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

LAST_CMD="mxroute serve --listen socketmap:unix:$SOCK --listen json:inet:127.0.0.1:$PORT ..."
if ! start_daemon --listen "socketmap:unix:$SOCK" --listen "json:inet:127.0.0.1:$PORT" \
  --domains rules.test,.rules.test --max-clients 8 --max-output 200000 \
  --max-pipeline 16 --timeout 1500 --tries 1 --pidfile "$TMP/pid"; then
  cp "$LOG" "$ERR"
  fail "daemon starts" "socket $SOCK and port $PORT answering" "not listening within 5 s"
  harness_end
  exit 1
fi
pass "daemon listens on a unix socket and 127.0.0.1:$PORT"
if [ "$(cat "$TMP/pid" 2>/dev/null)" = "$DPID" ]; then pass "--pidfile holds the pid"
else fail "--pidfile" "$DPID" "$(cat "$TMP/pid" 2>/dev/null)"; fi

# ---- Postfix's own socketmap client
if [ -x "$POSTMAP" ]; then
  pq user@plain.rules.test
  expect_out "postmap: next-hop list in plan order" \
    "smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25"
  pq plain.rules.test
  expect_out "postmap: a bare domain key" \
    "smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25"
  pq user@nullmx.rules.test
  case $(cat "$OUT") in
    "error:5.1.10 null-mx:"*) pass "postmap: null MX is error:5.1.10" ;;
    *) fail "postmap: null MX" "error:5.1.10 null-mx: ..." "$(cat "$OUT")" ;;
  esac
  pq nxdomain.rules.test
  case $(cat "$OUT") in
    "error:5.1.2 nxdomain:"*) pass "postmap: NXDOMAIN is error:5.1.2" ;;
    *) fail "postmap: NXDOMAIN" "error:5.1.2 nxdomain: ..." "$(cat "$OUT")" ;;
  esac
  pq user@fault-servfail.rules.test
  if [ "$RC" = 1 ] && [ ! -s "$OUT" ] && grep -q "temporary error: servfail" "$ERR"; then
    pass "postmap: SERVFAIL is a temporary error (TEMP)"
  else fail "postmap: SERVFAIL" "exit 1, 'temporary error: servfail' on stderr" "exit $RC: $(cat "$OUT" "$ERR")"; fi
  pq user@example.org
  if [ "$RC" = 1 ] && [ ! -s "$OUT" ] && ! grep -q "error" "$ERR"; then
    pass "postmap: a domain outside --domains is not found (exit 1)"
  else fail "postmap: outside --domains" "exit 1, no output, no error" "exit $RC: $(cat "$OUT" "$ERR")"; fi
else
  fail "postmap" "Postfix's postmap on PATH or at /usr/sbin/postmap" "not found"
fi

# ---- raw socketmap clients
cl() { # ARGS: serve_client.py ARGS into $OUT
  LAST_CMD="serve_client.py $*"
  timeout 30 $PY "$CLIENT" "$@" >"$OUT" 2>"$ERR"
  RC=$?
}
cl sm "$SOCK" user@plain.rules.test nullmx.rules.test x@example.org \
  fault-servfail.rules.test '*' .rules.test mx1.plain.rules.test
want="OK smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25
OK error:5.1.10 null-mx: the domain publishes a null MX: it accepts no mail (RFC 7505)
NOTFOUND 
TEMP servfail: the DNS server failed (SERVFAIL); try again later
NOTFOUND 
NOTFOUND 
OK smtp:[2001:db8::11]:25, [192.0.2.11]:25
OPEN"
expect_out "pipelined requests answered in order on one connection" "$want"

cl raw "$SOCK" 'garbage'
expect_out "garbage: PERM and close" "PERM bad netstring length
CLOSED"
cl raw "$SOCK" '99999:transport x,'
expect_out "a length over --max-request: PERM at once, close" "PERM request too long
CLOSED"
cl raw "$SOCK" '13:aliases x@y.z,'
expect_out "an unknown map name: PERM and close" "PERM unknown map name (only 'transport')
CLOSED"
cl raw "$SOCK" '5:transport x,'
expect_out "a netstring without its comma: PERM and close" "PERM netstring not terminated by ','
CLOSED"
cl partial "$SOCK"
cl sm "$SOCK" implicit.rules.test
expect_out "after a partial request and a close, the next client is served" \
  "OK smtp:[192.0.2.62]:25
OPEN"

cl slow "$SOCK" 20000 user@plain.rules.test
expect_out "a client that never reads: others served at once, it is closed at --max-output" \
  "OK smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25
latency-ok
SLOW-CLOSED"

# All 80 stay connected until each was read: at most 8 are served.
cl flood "$SOCK" 80 plain.rules.test
read -r a r o <<<"$(tr -c '0-9\n' ' ' <"$OUT")"
if [ -n "${o:-}" ] && [ "$a" -ge 1 ] && [ "$a" -le 8 ] && [ "$r" = $((80 - a)) ] && [ "$o" = 0 ]; then
  pass "80 clients at once, --max-clients 8: $a answered, $r refused with PERM and closed"
else
  fail "80 clients, --max-clients 8" "answered=1..8, the rest refused, other=0" "$(cat "$OUT")"
fi
if kill -0 "$DPID" 2>/dev/null; then pass "the daemon is still up after the abuse"
else fail "daemon alive" "running" "exited"; fi

# ---- JSON Lines: the route object of `mxroute route --json`, plus the id
run route --json --zone "$ZONE" --allow-loopback --seed 7 user@plain.rules.test nullmx.rules.test
cp "$OUT" "$TMP/route.json"
cl json "127.0.0.1:$PORT" '{"id":1,"op":"route","input":"user@plain.rules.test"}' \
  '{"id":"two","op":"route","input":"nullmx.rules.test"}' 'not json' \
  '{"id":[3],"op":"frobnicate"}' '{"id":4,"op":"stats"}' \
  '{"id":5,"op":"route","input":"user@example.org"}'
cp "$OUT" "$TMP/serve.json"
# The TTLs count down in the daemon's cache: compared without them.
nottl='walk(if type == "object" then del(.ttl, .mx_ttl, .id) else . end)'
if [ -s "$TMP/route.json" ] && [ "$(jq -c "$nottl" <(head -2 "$TMP/serve.json") 2>&1)" = "$(jq -c "$nottl" "$TMP/route.json" 2>&1)" ]; then
  pass "json route answers are mxroute route --json's objects"
else
  fail "json route = route --json" "$(cat "$TMP/route.json")" "$(head -2 "$TMP/serve.json")"
fi
JQ_SLURP=1 expect_jq "json: ids echoed in order, errors keep the connection, stats, --domains" \
  'length == 6 and .[0].id == 1 and .[1].id == "two" and .[1].status == "permfail"
   and (.[2].error | test("bad JSON")) and .[2].id == null
   and .[3].id == [3] and (.[3].error | test("unknown")) and .[4].id == 4
   and .[4].routes >= 2 and (.[4].clients | type) == "number"
   and .[5].id == 5 and .[5].status == "notfound"'

# ---- outcome and health: what an MTA reports reorders later plans
PLAN_MX1="OK smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25"
PLAN_MX2="OK smtp:[2001:db8::12]:25, [192.0.2.12]:25, [2001:db8::11]:25, [192.0.2.11]:25"
cl json "127.0.0.1:$PORT" '{"id":1,"op":"health","host":"mx1.plain.rules.test"}' \
  '{"id":2,"op":"outcome","host":"mx1.plain.rules.test","stage":"connect","class":"refused"}' \
  '{"id":3,"op":"route","input":"plain.rules.test"}' \
  '{"id":4,"op":"outcome","host":"mx1.plain.rules.test","class":"bogus"}' \
  '{"id":5,"op":"health","host":"MX1.Plain.Rules.Test."}' \
  '{"id":6,"op":"health","addr":"192.0.2.11"}' \
  '{"id":7,"op":"outcome","host":"bad..name","class":"refused"}'
JQ_SLURP=1 expect_jq "json outcome: refused marks mx1 down, health shows it, the next plan tries mx2 first" \
  'length == 7 and .[0].down == false and .[0].failures == 0 and .[0].last_failure_ago_ms == null
   and .[1].recorded == true and .[1].down == true and .[1].failures == 1 and .[1].down_for_ms > 0
   and ([.[2].candidates[].host] == ["mx2.plain.rules.test", "mx1.plain.rules.test"])
   and (.[2].candidates[1].notes | index("down")) != null
   and (.[3].error | test("class")) and .[4].down == true and .[4].failures == 1
   and .[5].addr == "192.0.2.11" and .[5].down == false
   and .[6].id == 7 and (.[6].error | length) > 0'
cl sm "$SOCK" plain.rules.test
expect_out "socketmap after the outcome: mx2's hops first" "$PLAN_MX2
OPEN"
cl json "127.0.0.1:$PORT" '{"id":8,"op":"outcome","host":"mx1.plain.rules.test","stage":"dot","class":"ok","code":250}'
JQ_SLURP=1 expect_jq "json outcome ok: mx1 is up again" '.[0].recorded == true and .[0].down == false and .[0].failures == 0'
cl sm "$SOCK" plain.rules.test
expect_out "socketmap after the success: plan order again" "$PLAN_MX1
OPEN"

# ---- a client that half-closes after its requests (Exim's ${readsocket}
# does): every reply, the last line's too though it has no newline, then
# the daemon closes.
cl halfclose "127.0.0.1:$PORT" '{"id":1,"op":"stats"}\n{"id":2,"op":"route","input":"nullmx.rules.test"}'
if [ "$(tail -n 1 "$OUT")" = EOF ] && [ "$(head -n -1 "$OUT" | jq -s -c 'map(.id)' 2>&1)" = "[1,2]" ] &&
  [ "$(sed -n 2p "$OUT" | jq -r .status 2>&1)" = permfail ]; then
  pass "json: a client that half-closes gets every reply, then the daemon closes"
else
  fail "json half-close" "the replies to ids 1 and 2 (permfail), then EOF" "$(cat "$OUT")"
fi

# ---- SIGTERM with a request in flight (fault-timeout: --timeout 1500)
LAST_CMD="kill -TERM daemon with a request in flight"
$PY "$CLIENT" sm "$SOCK" fault-timeout.rules.test plain.rules.test >"$TMP/inflight" 2>"$TMP/inflight.err" &
cpid=$!
# SIGTERM once the requests are sent (the client says so), at most 5 s
for i in $(seq 50); do grep -q sent "$TMP/inflight.err" 2>/dev/null && break; sleep 0.1; done
sleep 0.2
start=$(date +%s)
term_daemon 8
if [ "$DAEMON_RC" = 0 ]; then pass "SIGTERM: exit 0 within $(($(date +%s) - start)) s"
else fail "SIGTERM" "exit 0 within 8 s" "$DAEMON_RC"; fi
wait "$cpid"
cp "$TMP/inflight" "$OUT"
cp "$TMP/inflight.err" "$ERR"
expect_out "SIGTERM: the request in flight answered first" \
  "TEMP timeout: the DNS server did not answer in time
OK smtp:[2001:db8::11]:25, [192.0.2.11]:25, [2001:db8::12]:25, [192.0.2.12]:25
CLOSED"
if [ ! -e "$SOCK" ] && [ ! -e "$TMP/pid" ]; then pass "SIGTERM: socket file and pidfile removed"
else fail "SIGTERM cleanup" "no $SOCK, no pidfile" "$(ls "$TMP")"; fi

# ---- usage
run serve --help
if [ "$RC" = 0 ] && grep -q -- "--listen PROTO:ADDR" "$OUT"; then pass "serve --help prints the usage"
else fail "serve --help" "exit 0, usage with --listen on stdout" "exit $RC"; fi
run serve --zone "$ZONE" --listen "gopher:inet:127.0.0.1:$PORT"
if [ "$RC" = 64 ] && grep -q "PROTO must be socketmap, json, exim or metrics" "$ERR"; then pass "an unknown PROTO is a usage error (exit 64)"
else fail "unknown PROTO" "exit 64, 'PROTO must be socketmap, json, exim or metrics'" "exit $RC"; fi
run serve --zone "$ZONE"
expect_rc "no --listen is a usage error" 64

# ---- out of descriptors: the daemon pauses accepting instead of spinning
# on a listener that stays readable, and serves again once descriptors
# are free. Its CPU time while 40 connections wait must stay far below
# the wall time (a spin burns a whole core).
SOCK2=$TMP/sm2.sock
LAST_CMD="prlimit --nofile=24 mxroute serve --listen socketmap:unix:$SOCK2"
setsid prlimit --nofile=24:24 "$MXROUTE" serve --zone "$ZONE" --allow-loopback \
  --listen "socketmap:unix:$SOCK2" 2>"$TMP/emfile.log" &
DPID=$!
for i in $(seq 50); do [ -S "$SOCK2" ] && break; sleep 0.1; done
if [ ! -S "$SOCK2" ]; then
  fail "out of descriptors: daemon starts" "socket $SOCK2" "$(cat "$TMP/emfile.log")"
else
  $PY "$CLIENT" hold "$SOCK2" 40 2.5 >"$TMP/hold" 2>&1 &
  hpid=$!
  sleep 0.5
  cpu() { awk '{print $14 + $15}' "/proc/$DPID/stat" 2>/dev/null || echo 0; }
  t0=$(cpu)
  sleep 1
  t1=$(cpu)
  hz=$(getconf CLK_TCK)
  used=$(( (t1 - t0) * 1000 / hz ))
  if [ "$used" -lt 300 ]; then
    pass "out of descriptors: ${used} ms of CPU in 1 s with connections waiting (no spin)"
  else
    fail "out of descriptors: no spin" "< 300 ms CPU in 1 s" "${used} ms"
  fi
  grep -q "not accepting for" "$TMP/emfile.log" &&
    pass "out of descriptors: the pause is logged" ||
    fail "out of descriptors: logged" "not accepting for ... ms" "$(head -c 300 "$TMP/emfile.log")"
  wait "$hpid"
  if $PY "$CLIENT" sm "$SOCK2" user@plain.rules.test >"$OUT" 2>"$ERR" &&
    grep -q "OK smtp:" "$OUT"; then
    pass "out of descriptors: served again once they are free"
  else
    fail "out of descriptors: served again" "OK smtp:..." "$(cat "$OUT" "$ERR")"
  fi
fi
stop_daemon

harness_end
