#!/usr/bin/env bash
# it_cli.sh -- the `mxroute route` command line: exit codes, input
# validation, JSON fields, --batch from a file and from stdin, IDN input.
# Offline: every lookup answers from tests/zones/*.zone.
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
harness_start cli
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

Z=()
for z in "$SRC"/tests/zones/*.zone; do Z+=(--zone "$z"); done
JQ_SLURP=1 # expect_jq reads all JSON lines as one array (.[0] is the first)
# expect_lines NAME N: stdout has N non-empty lines, each valid JSON.
expect_lines() {
  local n bad
  n=$(grep -c . "$OUT")
  bad=$(grep . "$OUT" | while IFS= read -r l; do
          printf '%s\n' "$l" | jq -e . >/dev/null 2>&1 || echo x; done | wc -l)
  if [ "$n" = "$2" ] && [ "$bad" = 0 ]; then
    pass "$1 ($2 JSON lines)"
  else
    fail "$1" "$2 JSON lines" "$n lines, $bad not JSON"
  fi
}
# expect_out NAME REGEX (grep -E on stdout) / expect_err on stderr.
expect_out() {
  if grep -Eq -- "$2" "$OUT"; then pass "$1"; else fail "$1" "stdout ~ /$2/" "no match"; fi
}
expect_err() {
  if grep -Eq -- "$2" "$ERR"; then pass "$1"; else fail "$1" "stderr ~ /$2/" "no match"; fi
}

# ------------------------------------------------------------- help, usage
run --help;                       expect_rc "mxroute --help" 0
run route --help;                 expect_rc "mxroute route --help" 0
expect_out "route --help mentions --json and --batch" '--json'
expect_out "route --help mentions --batch" '--batch'
run --version;                    expect_rc "mxroute --version" 0
expect_out "--version prints a version" '[0-9]+\.[0-9]+\.[0-9]+'
run;                              expect_rc "no command" 64
run no-such-command;              expect_rc "unknown command" 64
run route "${Z[@]}";              expect_rc "route without input" 64
run route --bogus plain.rules.test; expect_rc "unknown option" 64
run route "${Z[@]}" --family sideways plain.rules.test; expect_rc "--family sideways" 64
run route "${Z[@]}" --timeout abc plain.rules.test; expect_rc "--timeout abc" 64
run route "${Z[@]}" --seed notanumber plain.rules.test; expect_rc "--seed notanumber" 64
run route "${Z[@]}" plain.rules.test --timeout; expect_rc "--timeout without value" 64
run route --server not-an-address plain.rules.test; expect_rc "--server not-an-address" 64
printf 'plain.rules.test\n' >"$TMP/one.txt"
run route "${Z[@]}" --batch "$TMP/one.txt" plain.rules.test; expect_rc "--batch and inputs together" 64

# ------------------------- issue 15: one error prefix, one line, the help
# Every command's errors start "mxroute COMMAND: "; an unknown option is
# one line and a pointer to the help (no help text), exit 64; a bad value
# names the option once, as it was typed.
# expect_stderr NAME LINE...: stderr is exactly these lines, stdout empty.
expect_stderr() {
  local name=$1 want
  shift
  want=$(printf '%s\n' "$@")
  if [ "$(cat "$ERR")" = "$want" ] && [ ! -s "$OUT" ]; then pass "$name"; else
    fail "$name" "stderr: $(printf '%s|' "$@")" "stderr: $(tr '\n' '|' <"$ERR" | head -c 300) stdout: $(wc -c <"$OUT") bytes"
  fi
}
for cmd in route check simulate probe send test; do
  run "$cmd" -foo x.test
  expect_rc "$cmd -foo" 64
  expect_stderr "$cmd -foo: one line and the help pointer" \
    "mxroute $cmd: invalid option -- 'f'" "Try 'mxroute $cmd --help'."
  run "$cmd" --bogus x.test
  expect_rc "$cmd --bogus" 64
  expect_stderr "$cmd --bogus: one line and the help pointer" \
    "mxroute $cmd: unrecognized option '--bogus'" "Try 'mxroute $cmd --help'."
done
run route plain.rules.test --timeout
expect_rc "route --timeout without its value" 64
expect_stderr "route --timeout without its value: one line and the help pointer" \
  "mxroute route: option '--timeout' requires an argument" "Try 'mxroute route --help'."
run no-such-command
expect_stderr "unknown command: one line and the help pointer" \
  "mxroute: unknown command 'no-such-command'" "Try 'mxroute --help'."
run route "${Z[@]}"
expect_stderr "route without input: one line and the help pointer" \
  "mxroute route: give inputs or --batch, not both and not neither" "Try 'mxroute route --help'."
run probe "${Z[@]}"
expect_rc "probe without a target" 64
expect_stderr "probe without a target: one line and the help pointer" \
  "mxroute probe: give one ADDRESS or DOMAIN" "Try 'mxroute probe --help'."
run probe "${Z[@]}" --to a@plain.rules.test plain.rules.test
expect_rc "probe --to" 64
expect_stderr "probe --to: one line and the help pointer" \
  "mxroute probe: --to is for send: a probe takes one ADDRESS or DOMAIN" "Try 'mxroute probe --help'."
run test
expect_rc "test without a file" 64
expect_stderr "test without a file: one line and the help pointer" \
  "mxroute test: give at least one FILE" "Try 'mxroute test --help'."

# Bad values of the shared numeric options, in every command that has
# them: "mxroute COMMAND: --OPTION: ..." on one line, the option's name once.
for cmd in route check simulate probe send; do
  for spec in "seed -2 -1..9223372036854775807" "port 0 1..65535" "tries 11 1..10" \
              "max-inflight 0 1..100000" "policy-max-ms 0 1..60000"; do
    set -- $spec
    run "$cmd" --"$1" "$2" plain.rules.test
    expect_rc "$cmd --$1 $2" 64
    expect_stderr "$cmd --$1 $2: the option named once" "mxroute $cmd: --$1: $2 is outside $3"
  done
  run "$cmd" --seed notanumber plain.rules.test
  expect_stderr "$cmd --seed notanumber" "mxroute $cmd: --seed: 'notanumber' is not a number"
done
for cmd in route check simulate; do
  run "$cmd" --timeout 5 plain.rules.test
  expect_stderr "$cmd --timeout 5: the option named once" "mxroute $cmd: --timeout: 5 is outside 10..60000"
done
# probe and send: --dns-timeout sets the library's DNS timeout; it is the
# name the user typed that is reported.
for cmd in probe send; do
  run "$cmd" --dns-timeout 5 plain.rules.test
  expect_rc "$cmd --dns-timeout 5" 64
  expect_stderr "$cmd --dns-timeout 5: named as typed" "mxroute $cmd: --dns-timeout: 5 is outside 10..60000"
  run "$cmd" --timeout 0 plain.rules.test
  expect_stderr "$cmd --timeout 0" "mxroute $cmd: --timeout: '0' is not 1..3600000 ms"
done
run route --window 0 plain.rules.test
expect_stderr "route --window 0" "mxroute route: --window: '0' is not 1..1000000"
run simulate --max-age x plain.rules.test
expect_stderr "simulate --max-age x" "mxroute simulate: --max-age: 'x' is not a number from 0 to 2147483647"
run route --family sideways plain.rules.test
expect_stderr "route --family sideways" \
  "mxroute route: --family: 'sideways' is not any, ipv4, ipv6, prefer-ipv4 or prefer-ipv6"
run route --policy-on-error maybe plain.rules.test
expect_stderr "route --policy-on-error maybe" "mxroute route: --policy-on-error: 'maybe' is not default or defer"

# ------------------------------------------------------------- exit codes
run route "${Z[@]}" plain.rules.test;           expect_rc "ok" 0
run route "${Z[@]}" fault-servfail.rules.test;  expect_rc "tempfail (servfail)" 75
run route "${Z[@]}" unserved.test;              expect_rc "tempfail (refused)" 75
run route "${Z[@]}" nullmx.rules.test;          expect_rc "permfail (null MX)" 68
run route "${Z[@]}" nxdomain.rules.test;        expect_rc "permfail (nxdomain)" 68
run route "${Z[@]}" 'a..b.test';                expect_rc "invalid input" 65
run route "${Z[@]}" --local-name mx1.selfprune.rules.test selfprune.rules.test
expect_rc "permfail (loops-to-self)" 68
# Several inputs: the most severe wins (70 > 65 > 68 > 75 > 0).
run route "${Z[@]}" plain.rules.test implicit.rules.test; expect_rc "ok + ok" 0
run route "${Z[@]}" plain.rules.test fault-servfail.rules.test; expect_rc "ok + tempfail" 75
run route "${Z[@]}" fault-servfail.rules.test plain.rules.test; expect_rc "tempfail + ok" 75
run route "${Z[@]}" plain.rules.test nullmx.rules.test; expect_rc "ok + permfail" 68
run route "${Z[@]}" nullmx.rules.test fault-servfail.rules.test; expect_rc "permfail + tempfail" 68
run route "${Z[@]}" fault-timeout.rules.test nullmx.rules.test plain.rules.test; expect_rc "tempfail + permfail + ok" 68
run route "${Z[@]}" 'a..b.test' nullmx.rules.test fault-servfail.rules.test; expect_rc "invalid + permfail + tempfail" 65
run route "${Z[@]}" nullmx.rules.test plain.rules.test 'a@'; expect_rc "permfail + ok + invalid" 65
run route --json "${Z[@]}" plain.rules.test nullmx.rules.test fault-servfail.rules.test
expect_lines "--json with 3 inputs" 3
expect_jq "--json keeps the order of the inputs" \
  'map(.input) == ["plain.rules.test","nullmx.rules.test","fault-servfail.rules.test"]'
expect_jq "--json statuses" 'map(.status) == ["ok","permfail","tempfail"]'

# -------------------------------------------------------- invalid inputs
label63=$(printf 'a%.0s' $(seq 1 63))
label64=$(printf 'a%.0s' $(seq 1 64))
# 3 labels of 60, one of 59, "rules.test", 4 dots: 253 octets (254 with 60).
l60=$(printf 'b%.0s' $(seq 1 60))
name253="${l60}.${l60}.${l60}.$(printf 'c%.0s' $(seq 1 59)).rules.test"
name254="${l60}.${l60}.${l60}.$(printf 'c%.0s' $(seq 1 60)).rules.test"
long=$(printf 'x%.0s' $(seq 1 5000))
# A broken setup would test other lengths than it says: a failure.
if [ ${#name253} -eq 253 ] && [ ${#name254} -eq 254 ]; then
  pass "setup: names of 253 and 254 octets"
else
  fail "setup: names of 253 and 254 octets" "253 and 254" "${#name253} and ${#name254}"
fi
invalid=(
  ''
  '.'
  '..'
  'a..b.test'
  '.leading.rules.test'
  'plain.rules.test..'
  "$label64.rules.test"
  "$name254"
  'bad_char.rules.test'
  'bad!char.rules.test'
  'sp ace.rules.test'
  $'tab\there.rules.test'
  $'nl\nhere.rules.test'
  $'\xff\xfe.rules.test'
  'a@'
  '@plain.rules.test'
  'user@'
  'a@b@plain.rules.test'
  '[300.1.1.1]'
  '[192.0.2.1'
  '[192.0.2]'
  '[IPv6:zzzz::1]'
  '[IPv6:192.0.2.1]'
  'user@[not-an-address]'
  "$long"
)
for inp in "${invalid[@]}"; do
  run route --json "${Z[@]}" "$inp"
  shown=$(printf '%q' "$inp" | head -c 60)
  expect_rc "invalid input $shown" 65
done
# Every odd byte string: a clean verdict, never a crash.
for inp in "${invalid[@]}" '-' '--' '[]' '[IPv6:]' '""@plain.rules.test' \
           '"unterminated@plain.rules.test' $'\x01' 'xn--' 'xn--zz.rules.test' \
           '*.rules.test' '%' 'ü' '🙂.rules.test'; do
  run route --json "${Z[@]}" -- "$inp"
  shown=$(printf '%q' "$inp" | head -c 60)
  if [ "$RC" -ge 128 ] || [ "$RC" = 70 ] || [ "$RC" = 124 ]; then
    fail "no crash on $shown" "exit in 0 64 65 68 75" "exit $RC"
  else
    pass "no crash on $shown (exit $RC)"
  fi
done
# Boundaries that are valid: 63-octet label, 253-octet name.
run route --json "${Z[@]}" "$label63.rules.test"; expect_rc "63-octet label is valid" 68
expect_jq "63-octet label: nxdomain" '.[0].reason == "nxdomain"'
run route --json "${Z[@]}" "$name253"; expect_rc "253-octet name is valid" 68
run route --json "${Z[@]}" 'plain.rules.test.'; expect_rc "one trailing dot is fine" 0
expect_jq "trailing dot dropped" '.[0].domain == "plain.rules.test"'
run route --json "${Z[@]}" '"a@b c"@plain.rules.test'; expect_rc "quoted local part with @ and space" 0
expect_jq "quoted local part: domain" '.[0].domain == "plain.rules.test" and .[0].input == "\"a@b c\"@plain.rules.test"'

# -------------------------------------------------------------- JSON fields
run route --json "${Z[@]}" plain.rules.test
expect_lines "--json one input" 1
expect_jq "JSON top-level fields and types" '.[0] |
  (.input == "plain.rules.test") and (.domain == "plain.rules.test") and
  (.status == "ok") and (.reason == null) and (.implicit == false) and
  (.candidates | type == "array") and (.skipped | type == "array") and
  (.ttl | type == "number") and (.ttl > 0)'
expect_jq "JSON candidate fields and types" '.[0].candidates | length == 2 and all(
  (.host | type == "string") and (.preference | type == "number") and
  (.addresses | type == "array" and length > 0 and all(type == "string")) and
  (.source | IN("mx","implicit","policy","literal")) and
  (.notes | type == "array") and (.port == 25))'
expect_jq "candidates in preference order" '.[0].candidates | map(.preference) == [10,20]'
run route --json "${Z[@]}" dup.rules.test
expect_jq "JSON skipped fields" '.[0].skipped | length == 1 and all(
  (.host | type == "string") and (.preference | type == "number") and
  (.reason | type == "string"))'
run route --json "${Z[@]}" nullmx.rules.test
expect_jq "permfail: reason word, no candidates" '.[0] | .status == "permfail" and .reason == "null-mx" and .candidates == []'
run route --json "${Z[@]}" implicit.rules.test
expect_jq "implicit MX" '.[0] | .implicit == true and .candidates[0].source == "implicit" and .candidates[0].host == "implicit.rules.test"'
run route --json "${Z[@]}" cname.rules.test
expect_jq "cname-target note" '.[0].candidates[0].notes | index("cname-target") != null'
run route --json "${Z[@]}" '[192.0.2.1]'
expect_jq "address literal" '.[0] | .status == "ok" and .candidates[0].source == "literal" and .candidates[0].addresses == ["192.0.2.1"]'
run route --json "${Z[@]}" 'Postmaster@PLAIN.rules.test'
expect_jq "address input: input kept, domain normalised" '.[0] | .input == "Postmaster@PLAIN.rules.test" and .domain == "plain.rules.test"'

# ----------------------------------------------------------------- IDN
run route --json "${Z[@]}" 'bücher.rules.test'; expect_rc "IDN input" 0
expect_jq "IDN: domain in A-label form" '.[0] | .domain == "xn--bcher-kva.rules.test" and .input == "bücher.rules.test" and .candidates[0].host == "mx.idn.rules.test"'
run route --json "${Z[@]}" 'joerg@bücher.rules.test'; expect_rc "IDN address" 0
expect_jq "IDN address: domain" '.[0].domain == "xn--bcher-kva.rules.test"'
# SMTPUTF8 (RFC 6531): a UTF-8 local part routes like any other.
run route --json "${Z[@]}" 'jörg@bücher.rules.test'; expect_rc "UTF-8 local part (SMTPUTF8)" 0
expect_jq "UTF-8 local part: domain" '.[0].domain == "xn--bcher-kva.rules.test"'
run route --json "${Z[@]}" 'nöwhere.rules.test'; expect_rc "IDN nxdomain" 68
expect_jq "IDN nxdomain: A-label domain" '.[0].domain == "xn--nwhere-wxa.rules.test"'

# ------------------------------------------------------------- text output
run route "${Z[@]}" --seed 1 plain.rules.test; expect_rc "text output" 0
expect_out "text output lists the hosts" 'mx1\.plain\.rules\.test'
expect_out "text output lists the backup" 'mx2\.plain\.rules\.test'
run route "${Z[@]}" nullmx.rules.test; expect_rc "text output, null MX" 68
expect_out "text output names the reason" 'null-mx'

# ------------------------------------------------------------- seed, shuffle
run route --json "${Z[@]}" --seed 5 tie.rules.test; cp "$OUT" "$TMP/s5a"
run route --json "${Z[@]}" --seed 5 tie.rules.test; cp "$OUT" "$TMP/s5b"
if [ -s "$TMP/s5a" ] && cmp -s "$TMP/s5a" "$TMP/s5b"; then pass "--seed 5 twice: same plan"; else fail "--seed 5 twice" "same output" "different"; fi
orders=$(for s in 1 2 3 4 5 6 7 8 9 10 11 12; do
  timeout 30 "$MXROUTE" route --json "${Z[@]}" --seed $s tie.rules.test |
    jq -c '[.candidates[].host]'; done | sort -u | wc -l)
if [ "$orders" -ge 3 ]; then pass "12 seeds give $orders different tie orders";
else fail "tie shuffle" ">= 3 distinct orders over 12 seeds" "$orders"; fi

# ------------------------------------------------------------------ batch
cat >"$TMP/batch.txt" <<'B'
plain.rules.test
nullmx.rules.test
fault-servfail.rules.test
user@plain.rules.test
nxdomain.rules.test
implicit.rules.test
bücher.rules.test
[192.0.2.1]
B
want_inputs='["plain.rules.test","nullmx.rules.test","fault-servfail.rules.test","user@plain.rules.test","nxdomain.rules.test","implicit.rules.test","bücher.rules.test","[192.0.2.1]"]'
want_status='["ok","permfail","tempfail","ok","permfail","ok","ok","ok"]'
run route --json "${Z[@]}" --batch "$TMP/batch.txt"
expect_rc "--batch FILE with failures exits 0" 0
expect_lines "--batch FILE" 8
expect_jq "--batch FILE keeps input order" "map(.input) == $want_inputs"
expect_jq "--batch FILE statuses" "map(.status) == $want_status"
run_stdin "$TMP/batch.txt" route --json "${Z[@]}" --batch -
expect_rc "--batch - (stdin) exits 0" 0
expect_lines "--batch -" 8
expect_jq "--batch - keeps input order" "map(.input) == $want_inputs"
expect_jq "--batch - statuses" "map(.status) == $want_status"
run route "${Z[@]}" --batch "$TMP/batch.txt"
expect_rc "--batch without --json" 0
expect_lines "--batch writes JSON Lines even without --json" 8
# Many lines, repeated names, resolved concurrently: order still kept.
: >"$TMP/big.txt"
for i in $(seq 1 50); do
  printf '%s\n' plain.rules.test tie.rules.test nullmx.rules.test \
    fault-timeout.rules.test "u$i@dual.rules.test" many.rules.test >>"$TMP/big.txt"
done
run route --json "${Z[@]}" --batch "$TMP/big.txt"
expect_rc "--batch of 300 lines" 0
expect_lines "--batch of 300 lines" 300
expect_jq "--batch of 300 lines keeps order" \
  "map(.input) == $(jq -R -s -c 'split("\n") | map(select(length > 0))' "$TMP/big.txt")"
# A line that is not a valid input does not stop the batch.
printf 'plain.rules.test\na..b.test\nnullmx.rules.test\n' >"$TMP/bad.txt"
run route --json "${Z[@]}" --batch "$TMP/bad.txt"
expect_rc "--batch with an invalid line" 0
expect_jq "--batch with an invalid line: the others in order" \
  '[.[] | select(.status == "ok" or .status == "permfail" or .status == "tempfail") | .input] == ["plain.rules.test","nullmx.rules.test"]'
run route --json "${Z[@]}" --batch "$TMP/does-not-exist.txt"
expect_rc_in "--batch with a missing file" "64 66"

# ------------------------------------------------------------ zone files
run route --json --zone "$TMP/missing.zone" plain.rules.test
expect_rc_in "missing zone file" "64 66"
expect_err "missing zone file is named" 'missing\.zone'
printf '$ORIGIN broken.test.\n$TTL 300\n@ SOA ns hm 1 2 3 4 5\n@ MX ten mx\n' >"$TMP/broken.zone"
run route --json --zone "$TMP/broken.zone" broken.test
expect_rc_in "broken zone file" "64 65 66"
expect_err "broken zone file: file:line" 'broken\.zone:4'

harness_end
