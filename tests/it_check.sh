#!/usr/bin/env bash
# it_check.sh -- `mxroute check`: finding codes and severities per case on
# both resolver backends, offline (--zone tests/zones/*.zone and
# examples/zones/*.zone) and against a real knotd serving the same zone
# files on 127.0.0.1; the seed articles' configurations free of errors;
# the --json shape, the text and the exit codes; and the resolver matrix
# with two knotd serving two versions of one zone (a stale secondary).
#
# Failures the zone backend injects (TXT "mxroute-fault=") are tested
# over the network with real ones: knotd's broken zone (SERVFAIL), a UDP
# port nobody answers (timeout) and a closed one (network error).
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Without knotd the network half is reported as one failure.
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}

. "$SRC/tests/lib/cli_harness.sh"
. "$SRC/tests/lib/knot.sh"
harness_start check
trap 'knot_stop; knot2_stop; silent_udp_stop; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# One set of zone files for both backends: knotd serves links to them.
mkdir -p "$TMP/zones"
ZONE_ARGS=()
for z in "$SRC"/tests/zones/*.zone "$SRC"/examples/zones/*.zone; do
  ZONE_ARGS+=(--zone "$z")
  ln -s "$z" "$TMP/zones/"
done

# need_server NAME LOG START...: run a server's START command; when it
# fails, report NAME and end the test here (nothing after can run).
need_server() {
  local name=$1 log=$2
  shift 2
  if ! "$@" >"$log" 2>&1; then
    fail "$name" "started" "$(tail -5 "$log")"
    harness_end
    exit
  fi
}

# The backend of the cases: BK names it, BACKEND holds its options.
BK=zone
BACKEND=("${ZONE_ARGS[@]}")

# case_ DOMAIN RC "SEV:CODE ..." "ABSENT-CODE ..." [OPTIONS...]: check
# DOMAIN with --json on the current backend; the exit code is RC, every
# SEV:CODE finding is there and no ABSENT-CODE finding is.
case_() {
  local d=$1 rc=$2 want=$3 absent=$4 w got
  shift 4
  run check --json "${BACKEND[@]}" "$@" "$d"
  expect_rc "[$BK] $d" "$rc"
  # An absence proves something only in a report that has findings: an
  # empty or non-JSON stdout, or one without a findings array, fails.
  local report=0
  if [ -s "$OUT" ] && jq -e '.findings | type == "array"' "$OUT" >/dev/null 2>&1; then
    report=1
    got=$(jq -r '.findings[] | "\(.severity):\(.code)"' "$OUT")
  else
    got="(no findings array on stdout)"
  fi
  for w in $want; do
    if grep -qxF -- "$w" <<<"$got"; then pass "[$BK] $d has $w"
    else fail "[$BK] $d has $w" "$w" "$(tr '\n' ' ' <<<"$got")"; fi
  done
  for w in $absent; do
    if [ "$report" = 0 ] || grep -qx -- ".*:$w" <<<"$got"; then
      fail "[$BK] $d has no $w" "no $w" "$(tr '\n' ' ' <<<"$got")"
    else pass "[$BK] $d has no $w"; fi
  done
}

R=rules.test
C=check.test

# ------------------------------------------- findings, on both backends
finding_cases() {
  case_ nxdomain.$R 1 "error:NXDOMAIN" ""
  case_ nomail.$R 1 "error:MX-NONE" ""
  case_ implicit.$R 0 "warning:MX-NONE-IMPLICIT" "MX-NONE NXDOMAIN TTL-LOW"
  case_ nullmx.$R 0 "info:NULL-MX" "NULL-MX-MIXED"
  case_ nullmx-a.$R 0 "info:NULL-MX" "NULL-MX-MIXED MX-NONE-IMPLICIT"
  case_ nullmix.$R 1 "error:NULL-MX-MIXED" "NULL-MX"
  case_ cname.$R 0 "warning:TARGET-CNAME" ""
  case_ cname2.$R 0 "warning:TARGET-CNAME" ""
  case_ cnamex.$R 0 "warning:TARGET-CNAME" "TTL-LOW TARGET-TTL-LOW"
  case_ cnamed.$R 1 "error:TARGET-NO-ADDRESS" ""
  case_ iplit.$R 1 "error:TARGET-IP-LITERAL" ""
  case_ iplit-only.$R 1 "error:TARGET-IP-LITERAL error:NO-USABLE-HOST" ""
  case_ noaddr.$R 1 "error:TARGET-NO-ADDRESS" ""
  case_ noaddr-all.$R 1 "error:TARGET-NO-ADDRESS error:NO-USABLE-HOST" ""
  case_ loopback.$R 1 "error:TARGET-UNROUTABLE" ""
  case_ loopback.$R 1 "error:TARGET-UNROUTABLE" "" --allow-loopback
  case_ loopback6.$R 1 "error:TARGET-UNROUTABLE" ""
  case_ mapped.$R 1 "error:TARGET-UNROUTABLE" ""
  case_ linklocal.$R 1 "error:TARGET-UNROUTABLE" ""
  case_ multicast.$R 1 "error:TARGET-UNROUTABLE error:NO-USABLE-HOST" ""
  case_ unspec.$R 1 "error:TARGET-UNROUTABLE error:NO-USABLE-HOST" ""
  case_ mixedaddr.$R 0 "warning:TARGET-UNROUTABLE" ""
  case_ private.$R 1 "error:TARGET-PRIVATE" ""
  case_ private-mix.$R 1 "error:TARGET-PRIVATE" ""
  case_ private-mix.$R 1 "error:TARGET-PRIVATE" "" --deny-private
  case_ badtarget.$R 1 "error:TARGET-INVALID" ""
  case_ selfprune.$R 1 "error:LOOPS-TO-SELF" "" --local-name mx1.selfprune.$R
  case_ m365.$R 0 "warning:SINGLE-MX" ""
  case_ plain.$R 0 "info:SAME-NETWORK info:SAME-SUFFIX" "SINGLE-MX CLOSE-PREFERENCES"
  case_ close.$R 0 "info:CLOSE-PREFERENCES" ""
  case_ dup.$R 0 "warning:DUPLICATE-TARGET" ""
  case_ dupcase.$R 0 "warning:DUPLICATE-TARGET" ""
  case_ many.$R 0 "info:MX-LIMIT info:CLOSE-PREFERENCES" ""
  # A target in a zone the server does not serve (REFUSED), or in the
  # zone it cannot load (SERVFAIL on knotd, REFUSED offline): temporary.
  case_ unserved.$R 0 "warning:LOOKUP-TEMPFAIL" "TTL-LOW"
  case_ sftarget.$R 0 "warning:LOOKUP-TEMPFAIL" "TTL-LOW"
  # TTLs: the MX records' own (mx_ttl), never the plan's reuse time.
  case_ ttl.$R 0 "" "TTL-LOW TTL-HIGH TARGET-TTL-LOW PLANNING-TTL"
  case_ lowttl.$C 0 "warning:TTL-LOW info:TARGET-TTL-LOW" "TTL-HIGH"
  case_ highttl.$C 0 "info:TTL-HIGH info:TARGET-TTL-HIGH" "TTL-LOW PLANNING-TTL"
  case_ highttl.$C 0 "info:TTL-HIGH info:PLANNING-TTL" "" --planning
  expect_jq "[$BK] planning advice lowers the TTL to 300-600 s" \
    'any(.findings[]; .code == "PLANNING-TTL"
         and (.message | test("from 172800 s to 300-600 s")))'
  case_ highttl-v4.$C 0 "info:TTL-HIGH" "TTL-LOW TARGET-TTL-HIGH"
  expect_jq "[$BK] highttl-v4: the MX records with their TTL, the plan's 300" \
    '.ttl == 300 and .mx_ttl == 172800
     and any(.findings[]; .code == "TTL-HIGH" and (.records | index(
       "highttl-v4.check.test. 172800 MX 10 mx1.highttl-v4.check.test.")))'
  case_ lowaddr.$C 0 "info:TARGET-TTL-LOW" "TTL-LOW TTL-HIGH"
  expect_jq "[$BK] lowaddr: the hosts' records with their TTL" \
    'any(.findings[]; .code == "TARGET-TTL-LOW"
         and .records == ["mx1.lowaddr.check.test. 30 A",
                          "mx2.lowaddr.check.test. 30 A"])'
  case_ highaddr.$C 0 "info:TARGET-TTL-HIGH" "TTL-LOW TTL-HIGH"
  case_ negttl.test 0 "" "TTL-LOW TARGET-TTL-LOW"
  expect_jq "[$BK] negttl: plan ttl 30 (SOA minimum), no finding" \
    '.ttl == 30 and .mx_ttl == 3600 and .findings == []'
  case_ spread.$C 0 "" "SAME-NETWORK SAME-SUFFIX SINGLE-MX CLOSE-PREFERENCES TTL-LOW TTL-HIGH"
  expect_jq "[$BK] spread: no finding at all" '.findings == [] and .status == "ok"'
}

# The seed articles' configurations: no error-level finding.
seed_cases() {
  local d
  for d in example.com single.example.com backup.example.com \
           balanced.example.com tiered.example.com workspace.example.com \
           m365.example.com selfhosted.example.com gateway.example.com \
           nullmx.example.com example.org vanity.example.org \
           reversed.example.com close.example.com equal.example.com; do
    run check --json "${BACKEND[@]}" "$d"
    expect_rc "[$BK] seed $d" 0
    expect_jq "[$BK] seed $d: no error-level finding" \
      'all(.findings[]; .severity != "error") and .status != "error"'
  done
  case_ tiered.example.com 0 "info:PLANNING-TTL" "" --planning
  # The broken seed examples are errors.
  case_ iplit.example.com 1 "error:TARGET-IP-LITERAL" ""
  case_ noaddr.example.com 1 "error:TARGET-NO-ADDRESS" ""
}

finding_cases
seed_cases
# Failures the zone backend injects.
case_ fault-servfail.$R 1 "error:LOOKUP-TEMPFAIL" ""
case_ fault-timeout.$R 1 "error:LOOKUP-TEMPFAIL" ""
case_ fault-refused.$R 1 "error:LOOKUP-TEMPFAIL" ""
case_ tgtfault.$R 0 "warning:LOOKUP-TEMPFAIL" ""
case_ tgtfault-timeout.$R 1 "error:LOOKUP-TEMPFAIL warning:LOOKUP-TEMPFAIL" ""

# ------------------------------------------------------------ JSON shape
BK=zone
run check --json "${ZONE_ARGS[@]}" tiered.example.com
expect_rc "json tiered" 0
expect_jq "json: one object with the fields" \
  '(.domain == "tiered.example.com") and (.status | type == "string")
   and (.findings | type == "array") and (.tiers | type == "array")
   and (.ttl | type == "number") and (.mx_ttl == 3600)
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
run check --json "${ZONE_ARGS[@]}" single.example.com
expect_jq "json: one tier, nothing if it is down" \
  '.if_primary_down == null and .tiers[0].hosts[0].share == 1'
run check --json "${ZONE_ARGS[@]}" nullmx.example.com
expect_jq "json: null MX has no tier" '.tiers == [] and .result == "permfail"'

# ------------------------------------------------------------ text output
run check "${ZONE_ARGS[@]}" tiered.example.com
expect_rc "text tiered" 0
if head -1 "$OUT" | grep -q '^tiered.example.com: OK' &&
   grep -q "sender's view" "$OUT" &&
   grep -q 'if preference 10 is down: backup-east.tiered.example.com (50%)' "$OUT"; then
  pass "text: header, sender's view, failover line"
else
  fail "text: header, sender's view, failover line" "lines" "$(head -c 300 "$OUT")"
fi
run check "${ZONE_ARGS[@]}" nullmix.rules.test
expect_rc "text nullmix" 1
if grep -q '^ERROR   NULL-MX-MIXED' "$OUT" && grep -q 'fix:' "$OUT" &&
   grep -q 'record: nullmix.rules.test. MX 0 .' "$OUT"; then
  pass "text: error line with record and fix"
else
  fail "text: error line with record and fix" "lines" "$(head -c 300 "$OUT")"
fi
run check "${ZONE_ARGS[@]}" lowttl.check.test
if grep -q '^WARNING TTL-LOW: the MX records have a very low TTL (30 s)' "$OUT" &&
   grep -q 'record: lowttl.check.test. 30 MX 10 mx1.lowttl.check.test.' "$OUT"; then
  pass "text: TTL-LOW names the MX records with their TTL"
else
  fail "text: TTL-LOW names the MX records with their TTL" "lines" "$(head -c 600 "$OUT")"
fi
# dup.rules.test with --planning has 1 warning and 3 info: the order is
# only seen with findings of two severities or more.
run check "${ZONE_ARGS[@]}" --planning dup.rules.test
expect_rc "text dup --planning" 0
if order=$(awk '/^(ERROR|WARNING|info)/ { s = $1 == "ERROR" ? 0 : $1 == "WARNING" ? 1 : 2;
        if (s < last) bad = 1; last = s; n++; kinds += !seen[s]++ }
        END { printf "%d findings, %d severities%s", n, kinds, bad ? ", unsorted" : "";
              exit bad || kinds < 2 }' "$OUT"); then
  pass "text: findings sorted by severity ($order)"
else
  fail "text: findings sorted by severity" "errors, warnings, info; 2 severities or more" "$order: $(cat "$OUT")"
fi

# ------------------------------------------------------------- exit codes
run check --help
expect_rc "--help" 0
grep -q 'usage: mxroute check' "$OUT" && pass "--help text" || fail "--help text" "usage" "$(head -c 200 "$OUT")"
run check
expect_rc "no domain" 64
run check "${ZONE_ARGS[@]}" a.rules.test b.rules.test
expect_rc "two domains" 64
run check --bogus x.rules.test
expect_rc "unknown option" 64
run check --zone /nonexistent.zone x.rules.test
expect_rc "missing zone file" 64
run check "${ZONE_ARGS[@]}" 'bad..name'
expect_rc "invalid domain" 65
run check "${ZONE_ARGS[@]}" "$(printf 'caf\xe9.example')"
expect_rc "non-UTF-8 domain" 65
run --help
grep -q '^  check ' "$OUT" && pass "check in the command list" || fail "check in the command list" "check" "$(cat "$OUT")"

# -------------------------------------- knotd: the same cases on the network
need_server "knotd serving tests/zones and examples/zones" "$TMP/knot.log" \
  knot_start "$TMP/zones"
K=127.0.0.1:$KNOT_PORT
BK=knot
BACKEND=(--server "$K")
finding_cases
seed_cases
# Real failures where the zone backend injects them: knotd's broken zone
# answers SERVFAIL, a silent port times out, a closed port is a network
# error. A failed MX lookup is an error; a failed target lookup a warning.
case_ servfail.test 1 "error:LOOKUP-TEMPFAIL" ""
expect_jq "[$BK] servfail.test: the reason in the record" \
  'any(.findings[]; .code == "LOOKUP-TEMPFAIL" and .records == ["servfail.test. MX (servfail)"])'
case_ www.servfail.test 1 "error:LOOKUP-TEMPFAIL" ""
need_server "a silent UDP port" "$TMP/silent.log" silent_udp_start
BK=knot-silent
BACKEND=(--server "127.0.0.1:$SILENT_PORT" --timeout 200 --tries 1)
case_ plain.$R 1 "error:LOOKUP-TEMPFAIL" "TTL-LOW"
expect_jq "[$BK] plain: timeout" \
  'any(.findings[]; .code == "LOOKUP-TEMPFAIL" and (.records[0] | test("timeout")))
   and .mx_ttl == 0'
BK=knot-closed
BACKEND=(--server "127.0.0.1:$(closed_udp_port)" --timeout 200 --tries 1)
case_ plain.$R 1 "error:LOOKUP-TEMPFAIL" ""
expect_jq "[$BK] plain: network error" \
  'any(.findings[]; .code == "LOOKUP-TEMPFAIL" and (.records[0] | test("network")))'

# ------------------------- resolvers: a primary and a stale secondary
need_server "a second knotd serving tests/zones/stale" "$TMP/knot2.log" \
  knot2_start "$SRC/tests/zones/stale"
K2=127.0.0.1:$KNOT2_PORT
BK=knot
BACKEND=(--server "$K" --server "$K2")

case_ steady.drift.test 0 "" "RESOLVERS-DISAGREE"
expect_jq "resolvers: two that agree, both in the matrix" \
  '(.resolvers | keys | length) == 2
   and .resolvers["'"$K"'"].mx == .resolvers["'"$K2"'"].mx
   and .resolvers["'"$K2"'"].mx_ttl == 3600'

case_ moved.drift.test 0 "warning:RESOLVERS-DISAGREE" ""
expect_jq "resolvers: moved, one record per resolver" \
  'any(.findings[]; .code == "RESOLVERS-DISAGREE" and .records == [
     "'"$K"': 10 mx-new.moved.drift.test, 20 mx-old.moved.drift.test",
     "'"$K2"': 10 mx-old.moved.drift.test"])'
expect_jq "resolvers: moved, the matrix of preference and target" \
  '(.resolvers["'"$K"'"] | .result == "ok"
     and (.mx | map("\(.preference) \(.host)"))
         == ["10 mx-new.moved.drift.test", "20 mx-old.moved.drift.test"])
   and (.resolvers["'"$K2"'"] | .result == "ok"
     and (.mx | map("\(.preference) \(.host)")) == ["10 mx-old.moved.drift.test"])'
expect_jq "resolvers: the report itself is the first server's view" \
  '[.tiers[].hosts[].host] == ["mx-new.moved.drift.test", "mx-old.moved.drift.test"]'

case_ swapped.drift.test 0 "warning:RESOLVERS-DISAGREE" ""
expect_jq "resolvers: swapped preferences in the matrix" \
  '(.resolvers["'"$K"'"].mx | map("\(.preference) \(.host)"))
     == ["10 mx-b.swapped.drift.test", "20 mx-a.swapped.drift.test"]
   and (.resolvers["'"$K2"'"].mx | map("\(.preference) \(.host)"))
     == ["10 mx-a.swapped.drift.test", "20 mx-b.swapped.drift.test"]'

case_ added.drift.test 0 "warning:RESOLVERS-DISAGREE" "NXDOMAIN"
expect_jq "resolvers: NXDOMAIN on the stale one" \
  '.resolvers["'"$K2"'"] == {"result": "permfail", "reason": "nxdomain", "mx": [], "mx_ttl": 300}
   and any(.findings[]; .code == "RESOLVERS-DISAGREE"
           and (.records | index("'"$K2"': (nxdomain)")))'

# The stale server first: its view is the report's, and it is an error.
BACKEND=(--server "$K2" --server "$K")
case_ added.drift.test 1 "error:NXDOMAIN warning:RESOLVERS-DISAGREE" ""

run check --server "$K" --server "$K2" moved.drift.test
expect_rc "resolvers: text" 0
if grep -q '^WARNING RESOLVERS-DISAGREE: the 2 resolvers give different MX answers for moved.drift.test' "$OUT" &&
   grep -q '^resolvers:' "$OUT" &&
   grep -Eq "^  $K +10 mx-new.moved.drift.test 20 mx-old.moved.drift.test\$" "$OUT" &&
   grep -Eq "^  $K2 +10 mx-old.moved.drift.test\$" "$OUT"; then
  pass "resolvers: text matrix, one line per server"
else
  fail "resolvers: text matrix, one line per server" "lines" "$(cat "$OUT")"
fi

# A dead server is an answer of its own.
DEAD=127.0.0.1:$(closed_udp_port)
run check --json --timeout 200 --tries 1 --server "$K" --server "$DEAD" plain.rules.test
expect_rc "resolvers: one dead, still a warning" 0
expect_jq "resolvers: the dead one is tempfail in the matrix" \
  'any(.findings[]; .code == "RESOLVERS-DISAGREE" and .severity == "warning"
       and (.records | length) == 2)
   and (.resolvers["'"$K"'"].mx | map("\(.preference) \(.host)"))
       == ["10 mx1.plain.rules.test", "20 mx2.plain.rules.test"]
   and .resolvers["'"$DEAD"'"].result == "tempfail"'
run check --json --server "$K" --server "$K" plain.rules.test
expect_jq "resolvers: the same server twice agrees" \
  'all(.findings[]; .code != "RESOLVERS-DISAGREE")'

harness_end
