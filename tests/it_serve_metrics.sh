#!/usr/bin/env bash
# it_serve_metrics.sh -- `mxroute serve --listen metrics:ADDR` against real
# clients: curl scrapes, prometheus_client's own text parser reads them
# (tests/lib/metrics_client.py), socketmap and JSON clients
# (tests/lib/serve_client.py) make requests with known results, and the
# counters must move by exactly those amounts. Also: every family the
# issue names with HELP and TYPE, cumulative histogram buckets, DNS
# timeouts (the zone's timeout fault), policy budget kills, the clients
# gauge, unix and inet metrics listeners, 404/405, a slow and a garbage
# HTTP client that stall nobody, and HTTP connections past the limit
# refused at once.
#
# Every wait is bounded: a daemon that never starts, or dies, is a FAIL.
# Environment: MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR (as ctest sets them).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
# Debian's python3, which has python3-prometheus-client (install-deps.sh)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
CLIENT="$SRC/tests/lib/serve_client.py"
METRICS="$SRC/tests/lib/metrics_client.py"
ZONE=$SRC/tests/zones/rules.test.zone

. "$SRC/tests/lib/cli_harness.sh"
harness_start it_serve_metrics

. "$SRC/tests/lib/daemon.sh"
trap 'stop_daemon; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

for tool in curl "$PY"; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    fail "tools" "$tool installed (scripts/install-deps.sh)" "missing"
    harness_end
    exit 1
  fi
done
if ! "$PY" -c "import prometheus_client.parser" 2>"$ERR"; then
  fail "tools" "python3-prometheus-client (scripts/install-deps.sh)" "$(cat "$ERR")"
  harness_end
  exit 1
fi

SOCK=$TMP/sm.sock
MSOCK=$TMP/metrics.sock
JPORT=$($PY "$CLIENT" freeport)
MPORT=$($PY "$CLIENT" freeport)
while [ "$MPORT" = "$JPORT" ]; do MPORT=$($PY "$CLIENT" freeport); done
MADDR=127.0.0.1:$MPORT
URL=http://$MADDR/metrics
LOG=$TMP/daemon.log
# One policy loops for one domain: its instruction budget stops it.
cat >"$TMP/loop.lua" <<'EOF'
return { route = function(plan)
  if plan.domain == 'implicit.rules.test' then
    while true do end
  end
end }
EOF

answers() { # HOST PORT: a TCP connect succeeds
  $PY -c "import socket; socket.create_connection(('$1',$2),1)" 2>/dev/null
}

LAST_CMD="mxroute serve --listen socketmap:unix:$SOCK --listen json:inet:127.0.0.1:$JPORT --listen metrics:inet:$MADDR --listen metrics:unix:$MSOCK ..."
setsid "$MXROUTE" serve --zone "$ZONE" --allow-loopback --seed 7 \
  --listen "socketmap:unix:$SOCK" --listen "json:inet:127.0.0.1:$JPORT" \
  --listen "metrics:inet:$MADDR" --listen "metrics:unix:$MSOCK" \
  --policy "$TMP/loop.lua" --policy-max-instructions 100000 \
  --idle-timeout 2 --timeout 1500 --tries 1 2>"$LOG" &
DPID=$!
up=0
for i in $(seq 50); do
  if [ -S "$SOCK" ] && [ -S "$MSOCK" ] && answers 127.0.0.1 "$JPORT" && answers 127.0.0.1 "$MPORT"; then
    up=1
    break
  fi
  kill -0 "$DPID" 2>/dev/null || break
  sleep 0.1
done
if [ "$up" != 1 ]; then
  cp "$LOG" "$ERR"
  fail "daemon starts" "$SOCK, $MSOCK and ports $JPORT, $MPORT answering" "not listening within 5 s"
  harness_end
  exit 1
fi
pass "daemon listens: socketmap (unix), json (inet), metrics (inet and unix)"

# scrape NAME [CURL ARGS...]: curl the metrics into $TMP/NAME.txt, parse
# them into $TMP/NAME.json (and $OUT). 0 when both worked.
scrape() {
  local name=$1
  shift
  LAST_CMD="curl $* | metrics_client.py parse"
  if ! curl -sS -m 5 -f "$@" -o "$TMP/$name.txt" 2>"$ERR"; then
    return 1
  fi
  "$PY" "$METRICS" parse "$TMP/$name.txt" >"$TMP/$name.json" 2>"$ERR" || return 1
  cp "$TMP/$name.json" "$OUT"
}
# delta A B SERIES: the change of SERIES from scrape A to scrape B
delta() {
  jq -n --slurpfile a "$TMP/$1.json" --slurpfile b "$TMP/$2.json" --arg k "$3" \
    '($b[0].samples[$k] // "missing") as $y | ($a[0].samples[$k] // "missing") as $x
     | if ($x|type) == "number" and ($y|type) == "number" then $y - $x else "missing" end'
}
# expect_delta NAME A B SERIES WANT
expect_delta() {
  local got
  got=$(delta "$2" "$3" "$4")
  if [ "$got" = "$5" ]; then pass "$1"; else fail "$1" "$4 moved by $5" "moved by $got"; fi
}

# ---- the families, with HELP and TYPE, through a real parser
if scrape s0 "$URL"; then pass "curl scrapes $URL; prometheus_client parses it"
else fail "scrape" "200 and text the parser takes" "$(cat "$ERR")"; fi
FAMILIES='{"mxroute_requests_total":"counter","mxroute_request_duration_seconds":"histogram",
  "mxroute_plan_cache_hits_total":"counter","mxroute_plan_cache_misses_total":"counter",
  "mxroute_dns_cache_hits_total":"counter","mxroute_dns_cache_misses_total":"counter",
  "mxroute_dns_queries_total":"counter","mxroute_dns_query_timeouts_total":"counter",
  "mxroute_policy_calls_total":"counter","mxroute_policy_errors_total":"counter",
  "mxroute_policy_budget_kills_total":"counter","mxroute_clients":"gauge",
  "mxroute_clients_refused_total":"counter","mxroute_reloads_total":"counter",
  "mxroute_build_info":"gauge","mxroute_start_time_seconds":"gauge"}'
# Families missing, of the wrong type or without HELP: none.
bad=$(jq -r --argjson want "$FAMILIES" '. as $doc | $want | to_entries[]
  | select(($doc.families[.key].type // "") != .value
           or ($doc.families[.key].help // "") == "")
  | "\(.key) (\($doc.families[.key] // "missing"))"' "$TMP/s0.json" 2>&1)
if [ -s "$TMP/s0.json" ] && [ -z "$bad" ]; then
  pass "every family the issue names is there, with its TYPE and a HELP text"
else
  fail "families" "$(jq -c . <<<"$FAMILIES")" "wrong or missing: $bad"
fi
for f in $(jq -r 'keys[]' <<<"$FAMILIES"); do
  grep -q "^# HELP $f " "$TMP/s0.txt" && grep -q "^# TYPE $f " "$TMP/s0.txt" ||
    fail "HELP and TYPE lines" "# HELP $f / # TYPE $f" "$(grep -c "$f" "$TMP/s0.txt") lines naming it"
done

# ---- requests with known results move the counters by exactly as much
cl() { # ARGS: serve_client.py ARGS into $OUT
  LAST_CMD="serve_client.py $*"
  timeout 30 $PY "$CLIENT" "$@" >"$OUT" 2>"$ERR"
  RC=$?
}
cl sm "$SOCK" user@plain.rules.test nullmx.rules.test '*' fault-servfail.rules.test \
  fault-timeout.rules.test implicit.rules.test mx1.plain.rules.test
got=$(cut -c1-8 "$OUT" | tr '\n' '|')
if [ "$got" = "OK smtp:|OK error|NOTFOUND|TEMP ser|TEMP tim|OK smtp:|OK smtp:|OPEN|" ]; then
  pass "7 socketmap requests answered: 3 ok, 1 perm, 1 notfound, 2 temp"
else fail "socketmap requests" "OK smtp, OK error, NOTFOUND, TEMP x2, OK smtp x2" "$got"; fi
cl raw "$SOCK" 'garbage'
cl raw "$SOCK" '13:aliases x@y.z,'
cl json "127.0.0.1:$JPORT" '{"id":1,"op":"route","input":"user@plain.rules.test"}' \
  '{"id":2,"op":"route","input":"nullmx.rules.test"}' '{"id":3,"op":"route","input":"a..b"}' \
  '{"id":4,"op":"stats"}' 'not json' '{"id":6,"op":"frobnicate"}' \
  '{"id":7,"op":"outcome","host":"mx9.plain.rules.test","class":"ok"}' \
  '{"id":8,"op":"health","host":"mx9.plain.rules.test"}' '{"id":9,"op":"health"}'
JQ_SLURP=1 expect_jq "9 JSON requests answered: ok, permfail, invalid, stats, 2 errors, outcome, health, a bad health" \
  'length == 9 and .[0].status == "ok" and .[1].status == "permfail"
   and .[2].status == "invalid" and .[3].id == 4 and (.[4].error | test("bad JSON"))
   and (.[5].error | test("unknown")) and .[6].recorded == true and .[7].down == false
   and (.[8].error | test("host"))'

if scrape s1 "$URL"; then pass "second scrape"
else fail "second scrape" "200 and text the parser takes" "$(cat "$ERR")"; fi
R=mxroute_requests_total
while read -r labels want; do
  expect_delta "requests $labels: +$want" s0 s1 "$R{$labels}" "$want"
done <<'EOF'
map="transport",proto="socketmap",result="ok" 3
map="transport",proto="socketmap",result="perm" 1
map="transport",proto="socketmap",result="notfound" 1
map="transport",proto="socketmap",result="temp" 2
map="none",proto="socketmap",result="error" 1
map="other",proto="socketmap",result="error" 1
map="route",proto="json",result="ok" 1
map="route",proto="json",result="perm" 1
map="route",proto="json",result="invalid" 1
map="stats",proto="json",result="ok" 1
map="outcome",proto="json",result="ok" 1
map="health",proto="json",result="ok" 1
map="health",proto="json",result="error" 1
map="none",proto="json",result="error" 2
EOF
total=$(jq -n --slurpfile a "$TMP/s0.json" --slurpfile b "$TMP/s1.json" \
  '[$b[0].series[] | select(.name == "mxroute_requests_total") | .value] | add as $y
   | [$a[0].series[] | select(.name == "mxroute_requests_total") | .value] | add as $x | $y - $x')
if [ "$total" = 18 ]; then pass "no other request series moved (18 in all)"
else fail "requests in all" "18" "$total"; fi
H=mxroute_request_duration_seconds
expect_delta "histogram: socketmap _count = its 9 requests" s0 s1 "${H}_count{proto=\"socketmap\"}" 9
expect_delta "histogram: json _count = its 9 requests" s0 s1 "${H}_count{proto=\"json\"}" 9
# Buckets in le order never go down, and +Inf is the count.
cp "$TMP/s1.json" "$OUT"
expect_jq "histogram buckets are cumulative, +Inf = _count, _sum > 0" \
  '. as $d | ["socketmap", "json"] | all(.[]; . as $p |
     [$d.series[] | select(.name == "mxroute_request_duration_seconds_bucket"
        and .labels.proto == $p)
      | {le: (.labels.le | if . == "+Inf" then infinite else tonumber end), value}]
     | sort_by(.le) as $b | ($b | length) == 17
       and ([range(1; $b | length) | $b[.].value >= $b[. - 1].value] | all)
       and $b[-1].le == infinite
       and $b[-1].value == $d.samples["mxroute_request_duration_seconds_count{proto=\"\($p)\"}"]
       and $d.samples["mxroute_request_duration_seconds_sum{proto=\"\($p)\"}"] > 0)'
expect_delta "DNS: the zone's timeout fault is one timed-out query" s0 s1 mxroute_dns_query_timeouts_total 1
expect_delta "policy: the looping hook is one budget kill" s0 s1 mxroute_policy_budget_kills_total 1
expect_delta "policy: and one error" s0 s1 mxroute_policy_errors_total 1
d=$(delta s0 s1 mxroute_dns_queries_total)
d2=$(delta s0 s1 mxroute_dns_cache_misses_total)
if [ "$d" != missing ] && [ "$d" -gt 0 ] && [ "$d2" -ge "$d" ]; then
  pass "DNS queries sent (+$d) and cache misses (+$d2) moved"
else fail "DNS queries" "> 0, misses >= queries" "queries +$d, misses +$d2"; fi
d=$(delta s0 s1 mxroute_plan_cache_hits_total)
if [ "$d" != missing ] && [ "$d" -ge 1 ]; then pass "plan cache hits moved (+$d: JSON asked what socketmap had)"
else fail "plan cache hits" ">= 1" "$d"; fi

# ---- build info: the version mxroute --version prints
run --version
want=$(sed -n 's/^mxroute //p' "$OUT")
got=$(jq -r '.series[] | select(.name == "mxroute_build_info" and .value == 1) | .labels.version' "$TMP/s1.json")
if [ -n "$want" ] && [ "$got" = "$want" ]; then pass "build info: version $got, as mxroute --version says"
else fail "build info" "version=\"$want\" (mxroute --version)" "$got"; fi

# ---- connected clients follow connects and disconnects
$PY "$METRICS" hold "$SOCK" 3 "127.0.0.1:$JPORT" 2 3 >"$TMP/held" 2>&1 &
hpid=$!
for i in $(seq 30); do grep -q held "$TMP/held" && break; sleep 0.1; done
sleep 0.2 # the daemon accepts them in its next round
if scrape c1 "$URL" && jq -e '.samples["mxroute_clients{proto=\"socketmap\"}"] == 3
    and .samples["mxroute_clients{proto=\"json\"}"] == 2
    and .samples["mxroute_clients{proto=\"metrics\"}"] >= 1' "$TMP/c1.json" >/dev/null; then
  pass "clients gauge: 3 socketmap, 2 json, the scraper on metrics"
else fail "clients gauge while held" "socketmap 3, json 2, metrics >= 1" "$(grep '^mxroute_clients' "$TMP/c1.txt" 2>/dev/null | tr '\n' ' ')"; fi
wait "$hpid"
ok=0
for i in $(seq 20); do
  if scrape c2 "$URL" && jq -e '.samples["mxroute_clients{proto=\"socketmap\"}"] == 0
      and .samples["mxroute_clients{proto=\"json\"}"] == 0' "$TMP/c2.json" >/dev/null; then
    ok=1
    break
  fi
  sleep 0.1
done
if [ "$ok" = 1 ]; then pass "clients gauge: back to 0 once they disconnected"
else fail "clients gauge after" "socketmap 0, json 0" "$(grep '^mxroute_clients' "$TMP/c2.txt" 2>/dev/null | tr '\n' ' ')"; fi

# ---- the unix metrics listener serves the same families
if scrape u1 --unix-socket "$MSOCK" http://localhost/metrics &&
  [ "$(jq -c '.families | keys' "$TMP/u1.json")" = "$(jq -c '.families | keys' "$TMP/s1.json")" ]; then
  pass "the unix metrics listener serves the same families"
else fail "unix metrics listener" "the families of $URL" "$(head -c 300 "$ERR" "$TMP/u1.json" 2>/dev/null)"; fi

# ---- HTTP: only GET and HEAD of /metrics
code() { # CURL ARGS: the status code
  LAST_CMD="curl $*"
  curl -s -m 5 -o "$OUT" -w '%{http_code}' "$@" 2>"$ERR"
}
got=$(code "http://$MADDR/")
[ "$got" = 404 ] && pass "GET / is 404" || fail "GET /" 404 "$got"
got=$(code "http://$MADDR/metrics/x")
[ "$got" = 404 ] && pass "GET /metrics/x is 404" || fail "GET /metrics/x" 404 "$got"
got=$(code -X DELETE "http://$MADDR/other")
[ "$got" = 404 ] && pass "DELETE /other is 404" || fail "DELETE /other" 404 "$got"
got=$(code -X POST -d x=1 -D "$TMP/post.h" "$URL")
if [ "$got" = 405 ] && grep -qi '^allow: GET, HEAD' "$TMP/post.h"; then pass "POST /metrics is 405 with Allow: GET, HEAD"
else fail "POST /metrics" "405, Allow: GET, HEAD" "$got $(tr -d '\r' <"$TMP/post.h" | tr '\n' ' ')"; fi
got=$(code -I "$URL")
if [ "$got" = 200 ] && grep -qi '^content-type: text/plain; version=0.0.4' "$OUT"; then
  pass "HEAD /metrics is 200, text/plain; version=0.0.4"
else fail "HEAD /metrics" "200, text/plain; version=0.0.4" "$got $(head -c 300 "$OUT")"; fi

got=$(code -H "X-Big: $(head -c 20000 /dev/zero | tr '\0' a)" "$URL")
[ "$got" = 431 ] && pass "20 KB of request headers: 431 (16 KiB per connection)" ||
  fail "headers over the memory limit" 431 "$got"

# ---- a slow and a garbage HTTP client stall nobody
$PY "$METRICS" slow "$MADDR" 8 >"$TMP/slow" 2>&1 &
spid=$!
sleep 0.3
t0=$(date +%s%N)
cl sm "$SOCK" user@plain.rules.test
ms=$((($(date +%s%N) - t0) / 1000000))
if grep -q "^OK smtp:" "$OUT" && [ "$ms" -lt 2000 ]; then pass "a slow HTTP client: socketmap answered within ${ms} ms (the client's 0.5 s close check included)"
else fail "socketmap beside a slow HTTP client" "OK smtp:... within 2 s" "$(head -1 "$OUT") after ${ms} ms"; fi
LAST_CMD="metrics_client.py garbage $MADDR"
got=$(timeout 10 $PY "$METRICS" garbage "$MADDR" 2>&1)
[ "$got" = "400 closed" ] && pass "garbage on the metrics port: 400 and closed" ||
  fail "garbage HTTP" "400 closed" "$got"
wait "$spid"
got=$(cat "$TMP/slow")
case $got in
  closed-after=[1-4].*) pass "the slow HTTP client is closed at --idle-timeout (2 s): $got" ;;
  *) fail "slow HTTP client" "closed-after=2..4 s (--idle-timeout 2)" "$got" ;;
esac

# ---- HTTP connections past the limit are refused at once, never queued
$PY "$METRICS" flood "$MADDR" 40 >"$TMP/flood" 2>&1 &
fpid=$!
sleep 0.3
cl sm "$SOCK" user@plain.rules.test
grep -q "^OK smtp:" "$OUT" && pass "during an HTTP flood socketmap is answered" ||
  fail "socketmap during an HTTP flood" "OK smtp:..." "$(cat "$OUT" "$ERR")"
wait "$fpid"
read -r h r <<<"$(head -1 "$TMP/flood" | tr -c '0-9\n' ' ')"
if [ -n "${r:-}" ] && [ "$h" -ge 14 ] && [ "$h" -le 16 ] && [ "$r" = $((40 - h)) ]; then
  pass "40 HTTP connections: $h held (limit 16), $r refused at once"
else fail "HTTP flood" "held=14..16, the rest refused" "$(cat "$TMP/flood")"; fi
got=$(sed -n 2p "$TMP/flood")
[ "$got" = "full=refused" ] && pass "a scrape while full is refused, not left hanging" ||
  fail "scrape while full" "full=refused" "$got"
ok=0
for i in $(seq 20); do
  scrape f1 "$URL" && { ok=1; break; }
  sleep 0.1
done
[ "$ok" = 1 ] && pass "once the flood is gone, scrapes are served again" ||
  fail "scrape after the flood" "200" "$(cat "$ERR")"
grep -q "too many HTTP connections (16): refused" "$LOG" &&
  pass "the refusal is logged" || fail "refusal logged" "too many HTTP connections (16): refused" "$(tail -c 300 "$LOG")"

# ---- usage
run serve --help
if [ "$RC" = 0 ] && grep -q "metrics (Prometheus text over HTTP" "$OUT"; then pass "serve --help names the metrics listener"
else fail "serve --help" "exit 0, 'metrics (Prometheus text over HTTP' on stdout" "exit $RC"; fi
run serve --zone "$ZONE" --listen "metrics:ftp:example"
if [ "$RC" = 64 ] && grep -q "ADDR must be" "$ERR"; then pass "metrics:ftp:... is a usage error (exit 64)"
else fail "bad metrics ADDR" "exit 64, 'ADDR must be'" "exit $RC"; fi

# ---- SIGTERM: exit 0, both socket files removed
LAST_CMD="kill -TERM daemon"
term_daemon 8
[ "$DAEMON_RC" = 0 ] && pass "SIGTERM: exit 0" || fail "SIGTERM" "exit 0 within 8 s" "$DAEMON_RC"
if [ ! -e "$SOCK" ] && [ ! -e "$MSOCK" ]; then pass "SIGTERM: the socketmap and metrics socket files removed"
else fail "SIGTERM cleanup" "no socket files" "$(ls "$TMP")"; fi

harness_end
