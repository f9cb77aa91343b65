#!/usr/bin/env bash
# it_hostile_dns.sh -- `mxroute route` against a DNS server that misbehaves
# on purpose (tests/lib/hostile_dns.py on 127.0.0.1, UDP and TCP): broken,
# lying, truncated, looping, oversized and forged answers, storms of
# failures and silence. Each case must end in a clear temporary or
# permanent result with the expected reason word, without a crash and
# without a hang (`timeout` is only a guard: no speed is asserted).
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=/usr/bin/python3
command -v "$PY" >/dev/null 2>&1 || PY=python3

. "$SRC/tests/lib/cli_harness.sh"
harness_start hostile_dns
SERVER_PID=
stop_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}
trap 'stop_server; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

"$PY" "$SRC/tests/lib/hostile_dns.py" "$TMP/port" --lifetime 900 &
SERVER_PID=$!
for _ in $(seq 1 100); do
  [ -s "$TMP/port" ] && break
  sleep 0.1
done
PORT=$(cat "$TMP/port" 2>/dev/null)
if [ -z "$PORT" ]; then
  fail "hostile server" "a port in $TMP/port" "none"
  harness_end
  exit 1
fi
echo "hostile DNS server on 127.0.0.1:$PORT (UDP and TCP)"

# 300 ms per try, 2 tries: a silent server costs well under a second.
DNS=(--server "127.0.0.1:$PORT" --allow-loopback --timeout 300)

rc_of() { # the exit code for a status (sysexits)
  case $1 in ok) echo 0 ;; tempfail) echo 75 ;; permfail) echo 68 ;; esac
}

# hostile CASE STATUS REASON [JQ...]: route CASE.hostile.test; it ends
# with STATUS and REASON ("null" when ok) and every JQ expression holds.
hostile() {
  local c=$1 status=$2 reason=$3 expr
  shift 3
  run route --json "${DNS[@]}" "$c.hostile.test"
  if [ "$RC" = 124 ]; then
    fail "$c" "an answer" "no answer within ${RUN_TIMEOUT:-30}s (hang)"
    return
  fi
  expect_rc "$c" "$(rc_of "$status")"
  expect_jq "$c: $status ($reason)" \
    ".status == \"$status\" and (.reason // \"null\") == \"$reason\""
  for expr in "$@"; do expect_jq "$c: $expr" "$expr"; done
}

SKIPS='[.skipped[].reason] | unique'

echo "== controls"
hostile ok ok null '.candidates[0].host == "mx.ok.hostile.test"'
hostile null-mx permfail null-mx
hostile nxdomain permfail nxdomain
hostile no-such-case permfail nxdomain

echo "== error rcodes and storms of them"
hostile servfail tempfail servfail
hostile refused tempfail refused
hostile formerr tempfail network
hostile notimp tempfail network
hostile rcode-15 tempfail network
hostile targets-servfail tempfail tempfail "$SKIPS == [\"tempfail\"]"
# A storm: 300 domains answered SERVFAIL and 100 REFUSED, in one batch.
for i in $(seq 1 300); do echo "s$i.servfail.hostile.test"; done >"$TMP/storm"
for i in $(seq 1 100); do echo "r$i.refused.hostile.test"; done >>"$TMP/storm"
run route --batch "$TMP/storm" "${DNS[@]}"
expect_rc "storm: batch processed" 0
n_servfail=$(jq -s '[.[] | select(.status == "tempfail" and .reason == "servfail")] | length' "$OUT")
n_refused=$(jq -s '[.[] | select(.status == "tempfail" and .reason == "refused")] | length' "$OUT")
if [ "$n_servfail" = 300 ] && [ "$n_refused" = 100 ]; then
  pass "storm: 300 servfail, 100 refused"
else
  fail "storm" "300 servfail, 100 refused" "$n_servfail servfail, $n_refused refused"
fi

echo "== no answer at all"
hostile silent tempfail timeout
hostile tcp-silent tempfail timeout
hostile empty tempfail timeout
hostile short tempfail timeout
# A storm of silence: 50 domains at once, every one times out.
for i in $(seq 1 50); do echo "q$i.silent.hostile.test"; done >"$TMP/silence"
run route --batch "$TMP/silence" "${DNS[@]}"
expect_rc "silence storm: batch processed" 0
n=$(jq -s '[.[] | select(.status == "tempfail" and .reason == "timeout")] | length' "$OUT")
if [ "$n" = 50 ]; then pass "silence storm: 50 timeouts"; else fail "silence storm" "50 timeouts" "$n"; fi

echo "== truncation and TCP"
hostile truncated ok null '.candidates[0].host == "mx.truncated.hostile.test"'
hostile truncated-always tempfail network
hostile tcp-cut tempfail network
hostile udp-oversize ok null '(.candidates | length) == 16'

echo "== malformed packets"
hostile garbage tempfail network
hostile not-response tempfail network
hostile compression-loop tempfail network
hostile compression-forward tempfail network
hostile question-loop tempfail timeout
hostile count-more tempfail network
hostile count-less tempfail network
hostile count-huge tempfail network
hostile mx-short-rdata tempfail network
hostile bad-rdata tempfail tempfail "$SKIPS == [\"tempfail\"]"

echo "== answers that are not ours"
hostile question-name tempfail timeout
hostile question-type tempfail timeout
hostile question-none tempfail timeout
hostile question-two tempfail timeout
hostile question-case ok null
hostile wrong-id tempfail timeout
hostile wrong-id-first ok null \
  '[.candidates[].host] == ["mx.wrong-id-first.hostile.test"]'

echo "== huge answers"
# 2000 MX records: the 16 most preferred (0..15) are kept, in order.
hostile many-mx ok null '[.candidates[].preference] == [range(16)]' \
  "$SKIPS == [\"limit\"]"
# 1000 addresses for one host: 8 are kept, and the plan says so.
hostile many-a ok null '(.candidates[0].addresses | length) == 8' \
  '.candidates[0].notes == ["address-limit"]'

echo "== MX targets that are no host names"
NO_CTRL='all(.skipped[].host | explode[]; . >= 32 and . != 127)'
hostile mx-nul permfail no-usable-host "$SKIPS == [\"bad-target\"]" "$NO_CTRL"
hostile mx-space permfail no-usable-host "$SKIPS == [\"bad-target\"]"
hostile mx-escape permfail no-usable-host "$SKIPS == [\"bad-target\"]"
hostile mx-ctrl permfail no-usable-host "$SKIPS == [\"bad-target\"]" "$NO_CTRL"
hostile mx-overlong tempfail network
hostile mx-max-length ok null '(.candidates[0].host | length) == 253'
hostile mixed-bad ok null '[.candidates[].host] == ["good.mixed-bad.hostile.test"]' \
  '[.skipped[].reason] == ["bad-target", "bad-target"]'
# The text output shows a bad target escaped, never its raw bytes: the
# skipped line is there with ESC as \027 (an empty stdout or a crash
# has no such line).
run route "${DNS[@]}" mx-ctrl.hostile.test
expect_rc "mx-ctrl: text output" 68
if grep -q $'\x1b' "$OUT" || [ "$(grep -c . "$OUT")" -gt 3 ] ||
   ! grep -qF 'skipped mx\027' "$OUT"; then
  fail "mx-ctrl: text output escaped" "no raw control bytes, 'skipped mx\027...'" "$(od -c "$OUT" | head -5)"
else
  pass "mx-ctrl: text output escaped"
fi

echo "== CNAMEs"
hostile cname-chain ok null '.candidates[0].notes == ["cname-target"]'
hostile cname-long tempfail tempfail "$SKIPS == [\"tempfail\"]"
hostile cname-loop tempfail tempfail "$SKIPS == [\"tempfail\"]"
hostile cname-chase-loop tempfail tempfail "$SKIPS == [\"tempfail\"]"
hostile cname-mx tempfail network

echo "== TTLs"
hostile ttl-zero ok null '.ttl == 5'          # raised to the minimum (5 s)
hostile ttl-max ok null '.ttl == 86400'       # 2^31-1 cut to the maximum
hostile ttl-highbit ok null '.ttl == 5'       # 2^32-1 is 0 (RFC 2181)

echo "== safety filters still apply"
hostile loopback ok null '.candidates[0].addresses == ["127.0.0.1"]'
DNS=(--server "127.0.0.1:$PORT" --timeout 300)
hostile loopback permfail no-usable-host "$SKIPS == [\"unroutable-address\"]"

harness_end
