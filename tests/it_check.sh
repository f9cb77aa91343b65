#!/usr/bin/env bash
# it_check.sh -- `mxroute check`: finding codes and severities per case,
# the seed articles' configurations (examples/zones) free of errors, the
# --json shape and the exit codes. Offline: every lookup answers from
# tests/zones/*.zone or examples/zones/*.zone.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}

. "$SRC/tests/lib/cli_harness.sh"
harness_start check
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

Z=()
for z in "$SRC"/tests/zones/*.zone; do Z+=(--zone "$z"); done
EX=()
for z in "$SRC"/examples/zones/*.zone; do EX+=(--zone "$z"); done
expect_jq() {
  local got
  if got=$(jq -e "$2" "$OUT" 2>&1); then pass "$1"; else fail "$1" "jq: $2" "$(printf '%s' "$got" | head -c 300)"; fi
}

# case DOMAIN RC "SEV:CODE ..." "ABSENT-CODE ..." [OPTIONS...]: check
# DOMAIN with --json; the exit code is RC, every SEV:CODE finding is there
# and no ABSENT-CODE finding is.
case_() {
  local d=$1 rc=$2 want=$3 absent=$4 w sev code
  shift 4
  run check --json "${Z[@]}" "$@" "$d"
  expect_rc "$d" "$rc"
  for w in $want; do
    sev=${w%%:*} code=${w#*:}
    expect_jq "$d has $sev $code" \
      "any(.findings[]; .severity == \"$sev\" and .code == \"$code\")"
  done
  for code in $absent; do
    expect_jq "$d has no $code" "all(.findings[]; .code != \"$code\")"
  done
}

# ------------------------------------------------------ findings by case
R=rules.test
case_ nxdomain.$R 1 "error:NXDOMAIN" ""
case_ nomail.$R 1 "error:MX-NONE" ""
case_ implicit.$R 0 "warning:MX-NONE-IMPLICIT" "MX-NONE NXDOMAIN"
case_ nullmx.$R 0 "info:NULL-MX" "NULL-MX-MIXED"
case_ nullmx-a.$R 0 "info:NULL-MX" "NULL-MX-MIXED MX-NONE-IMPLICIT"
case_ nullmix.$R 1 "error:NULL-MX-MIXED" "NULL-MX"
case_ cname.$R 0 "warning:TARGET-CNAME" ""
case_ iplit.$R 1 "error:TARGET-IP-LITERAL" ""
case_ iplit-only.$R 1 "error:TARGET-IP-LITERAL error:NO-USABLE-HOST" ""
case_ noaddr.$R 1 "error:TARGET-NO-ADDRESS" ""
case_ loopback.$R 1 "error:TARGET-UNROUTABLE" ""
case_ loopback.$R 1 "error:TARGET-UNROUTABLE" "" --allow-loopback
case_ loopback6.$R 1 "error:TARGET-UNROUTABLE" ""
case_ mapped.$R 1 "error:TARGET-UNROUTABLE" ""
case_ linklocal.$R 1 "error:TARGET-UNROUTABLE" ""
case_ mixedaddr.$R 0 "warning:TARGET-UNROUTABLE" ""
case_ private.$R 1 "error:TARGET-PRIVATE" ""
case_ private-mix.$R 1 "error:TARGET-PRIVATE" ""
case_ private-mix.$R 1 "error:TARGET-PRIVATE" "" --deny-private
case_ badtarget.$R 1 "error:TARGET-INVALID" ""
case_ m365.$R 0 "warning:SINGLE-MX" ""
case_ plain.$R 0 "info:SAME-NETWORK info:SAME-SUFFIX" "SINGLE-MX CLOSE-PREFERENCES"
case_ close.$R 0 "info:CLOSE-PREFERENCES" ""
case_ dup.$R 0 "warning:DUPLICATE-TARGET" ""
case_ dupcase.$R 0 "warning:DUPLICATE-TARGET" ""
case_ many.$R 0 "info:MX-LIMIT info:CLOSE-PREFERENCES" ""
case_ unserved.$R 0 "warning:LOOKUP-TEMPFAIL" "TTL-LOW"
case_ fault-servfail.$R 1 "error:LOOKUP-TEMPFAIL" ""
case_ ttl.$R 0 "info:TTL-LOW" "TTL-HIGH PLANNING-TTL"
C=check.test
case_ lowttl.$C 0 "warning:TTL-LOW" "TTL-HIGH"
case_ highttl.$C 0 "info:TTL-HIGH" "TTL-LOW PLANNING-TTL"
case_ highttl.$C 0 "info:TTL-HIGH info:PLANNING-TTL" "" --planning
expect_jq "planning advice lowers the TTL to 300-600 s" \
  'any(.findings[]; .code == "PLANNING-TTL" and (.message | test("300-600")))'
case_ spread.$C 0 "" "SAME-NETWORK SAME-SUFFIX SINGLE-MX CLOSE-PREFERENCES TTL-LOW TTL-HIGH"
expect_jq "spread: no finding at all" '.findings == [] and .status == "ok"'

# ------------------------------------ the seed articles' configurations
for d in example.com single.example.com backup.example.com \
         balanced.example.com tiered.example.com workspace.example.com \
         m365.example.com selfhosted.example.com gateway.example.com \
         nullmx.example.com example.org vanity.example.org \
         reversed.example.com close.example.com equal.example.com; do
  run check --json "${EX[@]}" "$d"
  expect_rc "seed $d" 0
  expect_jq "seed $d: no error-level finding" \
    'all(.findings[]; .severity != "error") and .status != "error"'
done
run check --json "${EX[@]}" --planning tiered.example.com
expect_rc "seed tiered --planning" 0
expect_jq "seed tiered --planning: lower the TTL first" \
  'any(.findings[]; .code == "PLANNING-TTL" and .severity == "info")'
# The broken seed examples are errors.
for d in iplit.example.com noaddr.example.com; do
  run check "${EX[@]}" "$d"
  expect_rc "seed $d is an error" 1
done

# ------------------------------------------------------------ JSON shape
run check --json "${EX[@]}" tiered.example.com
expect_rc "json tiered" 0
expect_jq "json: one object with the fields" \
  '(.domain == "tiered.example.com") and (.status | type == "string")
   and (.findings | type == "array") and (.tiers | type == "array")
   and has("if_primary_down") and (has("resolvers") | not)'
expect_jq "json: finding fields" \
  'all(.findings[]; (.severity | IN("error","warning","info"))
       and (.code | type == "string") and (.message | type == "string")
       and (.records | type == "array") and (.fix | type == "string"))'
expect_jq "json: tiers in order with first-attempt shares" \
  '[.tiers[].preference] == [10,20,50]
   and [.tiers[0].hosts[].share] == [0.5,0.5]
   and [.tiers[1].hosts[].share] == [0,0]'
expect_jq "json: if the primary tier is down, the 20s share" \
  '.if_primary_down.preference == 20
   and [.if_primary_down.hosts[].share] == [0.5,0.5]'
run check --json "${EX[@]}" single.example.com
expect_jq "json: one tier, nothing if it is down" \
  '.if_primary_down == null and .tiers[0].hosts[0].share == 1'
run check --json "${EX[@]}" nullmx.example.com
expect_jq "json: null MX has no tier" '.tiers == [] and .result == "permfail"'

# ------------------------------------------------------------ text output
run check "${EX[@]}" tiered.example.com
expect_rc "text tiered" 0
if head -1 "$OUT" | grep -q '^tiered.example.com: OK' &&
   grep -q "sender's view" "$OUT" &&
   grep -q 'if preference 10 is down: backup-east.tiered.example.com (50%)' "$OUT"; then
  pass "text: header, sender's view, failover line"
else
  fail "text: header, sender's view, failover line" "lines" "$(head -c 300 "$OUT")"
fi
run check "${Z[@]}" nullmix.rules.test
expect_rc "text nullmix" 1
if grep -q '^ERROR   NULL-MX-MIXED' "$OUT" && grep -q 'fix:' "$OUT" &&
   grep -q 'record: nullmix.rules.test. MX 0 .' "$OUT"; then
  pass "text: error line with record and fix"
else
  fail "text: error line with record and fix" "lines" "$(head -c 300 "$OUT")"
fi
run check "${Z[@]}" --planning dup.rules.test
if awk '/^(ERROR|WARNING|info)/ { s = $1 == "ERROR" ? 0 : $1 == "WARNING" ? 1 : 2;
        if (s < last) bad = 1; last = s } END { exit bad }' "$OUT"; then
  pass "text: findings sorted by severity"
else
  fail "text: findings sorted by severity" "errors, warnings, info" "$(cat "$OUT")"
fi

# ------------------------------------------------------------- exit codes
run check --help
expect_rc "--help" 0
grep -q 'usage: mxroute check' "$OUT" && pass "--help text" || fail "--help text" "usage" "$(head -c 200 "$OUT")"
run check
expect_rc "no domain" 64
run check "${Z[@]}" a.rules.test b.rules.test
expect_rc "two domains" 64
run check --bogus x.rules.test
expect_rc "unknown option" 64
run check --zone /nonexistent.zone x.rules.test
expect_rc "missing zone file" 64
run check "${Z[@]}" 'bad..name'
expect_rc "invalid domain" 65
run --help
grep -q '^  check ' "$OUT" && pass "check in the command list" || fail "check in the command list" "check" "$(cat "$OUT")"

# ------------------------------------- knotd: network lookups, resolvers
if command -v knotd >/dev/null 2>&1 && command -v knotc >/dev/null 2>&1; then
  . "$SRC/tests/lib/knot.sh"
  trap 'knot_stop; rm -rf "$TMP"' EXIT
  if knot_start "$SRC/tests/zones" >"$TMP/knot.log" 2>&1; then
    K=127.0.0.1:$KNOT_PORT
    for c in "nullmix.rules.test 1 NULL-MX-MIXED" "nxdomain.rules.test 1 NXDOMAIN" \
             "iplit.rules.test 1 TARGET-IP-LITERAL" "lowttl.check.test 0 TTL-LOW" \
             "nullmx.rules.test 0 NULL-MX"; do
      set -- $c
      run check --json --server "$K" "$1"
      expect_rc "knotd $1" "$2"
      expect_jq "knotd $1 has $3" "any(.findings[]; .code == \"$3\")"
    done
    run check --json --server "$K" --server "$K" plain.rules.test
    expect_jq "knotd: two agreeing resolvers" \
      '(.resolvers | length) == 1 or all(.findings[]; .code != "RESOLVERS-DISAGREE")'
    DEAD=127.0.0.1:$(closed_udp_port)
    run check --json --timeout 200 --tries 1 --server "$K" --server "$DEAD" plain.rules.test
    expect_rc "knotd: disagreeing resolvers are a warning" 0
    expect_jq "knotd: RESOLVERS-DISAGREE with the matrix" \
      'any(.findings[]; .code == "RESOLVERS-DISAGREE" and .severity == "warning"
           and (.records | length) == 2)
       and (.resolvers["'"$K"'"].mx | map("\(.preference) \(.host)"))
           == ["10 mx1.plain.rules.test", "20 mx2.plain.rules.test"]
       and .resolvers["'"$DEAD"'"].result == "tempfail"'
  else
    fail "knotd start" "knotd serving tests/zones" "$(tail -5 "$TMP/knot.log")"
  fi
else
  echo "SKIP knotd cases (knotd not installed)"
fi

harness_end
