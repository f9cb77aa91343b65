#!/usr/bin/env bash
# it_test_runner.sh -- `mxroute test`: counts, failure messages with
# file:line and expected vs got, exit statuses.
set -u
MXROUTE=${MXROUTE:-build/mxroute}
src="${MXR_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
dir="$src/tests/runner"
. "$src/tests/lib/cli_harness.sh" # fail_fast
pass=0 fail=0
check() { # name, condition result
  if [ "$2" = 0 ]; then pass=$((pass + 1)); echo "PASS $1"
  else fail=$((fail + 1)); echo "FAIL $1"; echo "$out" | sed 's/^/     /'; fail_fast "$pass" "$fail"; fi
}
out=$("$MXROUTE" test "$dir/pass_test.lua" 2>&1); rc=$?
check "passing file exits 0" "$([ $rc = 0 ]; echo $?)"
check "passing file summary" "$(echo "$out" | grep -qx '6 passed, 0 failed'; echo $?)"
out=$("$MXROUTE" test "$dir/fail_test.lua" 2>&1); rc=$?
check "failing file exits 1" "$([ $rc = 1 ]; echo $?)"
check "failing file summary" "$(echo "$out" | grep -qx '1 passed, 3 failed'; echo $?)"
check "expected vs got with file:line" "$(echo "$out" | grep -q 'FAIL wrong host: .*fail_test.lua:10: on purpose: expected {"mx9.example.test"}, got {"mx1.example.test"}'; echo $?)"
check "runtime error with file:line" "$(echo "$out" | grep -q 'FAIL runtime error: error: .*fail_test.lua:11: attempt to index'; echo $?)"
out=$("$MXROUTE" test "$dir/pass_test.lua" "$dir/fail_test.lua" 2>&1); rc=$?
check "two files add up" "$(echo "$out" | grep -qx '7 passed, 3 failed'; echo $?)"
out=$("$MXROUTE" test /nonexistent/x_test.lua 2>&1); rc=$?
check "unreadable file exits 66" "$([ $rc = 66 ]; echo $?)"
notest="${TMPDIR:-/tmp}/mxr-notest_test.lua"
printf 'zone [[ $ORIGIN x.test. ]]\n' > "$notest"
out=$("$MXROUTE" test "$notest" 2>&1); rc=$?
check "a file without tests fails" "$([ $rc = 1 ] && echo "$out" | grep -q 'no test ran'; echo $?)"
# Beside a file whose tests pass, it still fails, by name.
out=$("$MXROUTE" test "$dir/pass_test.lua" "$notest" 2>&1); rc=$?
check "a file without tests fails beside a passing one" "$([ $rc = 1 ] &&
  echo "$out" | grep -qF "$notest: no test ran" && echo "$out" | grep -qx '6 passed, 1 failed'; echo $?)"
rm -f "$notest"
# deliver{} whose engine cannot be made (its policy is missing) fails
# that test with the reason and frees what it had parsed: under the ASan
# pass a leak turns the exit code into LeakSanitizer's.
lost="${TMPDIR:-/tmp}/mxr-lostpolicy_test.lua"
cat > "$lost" <<'LUA'
zone [[
$ORIGIN lost.test.
@ SOA ns hostmaster 1 3600 600 86400 300
@ MX 10 mx
mx A 192.0.2.1
]]
policy("no-such-policy.lua")
test("deliver with a missing policy", function()
  deliver{ to = { "a@lost.test" }, outcomes = { "mx.lost.test=refused", "*:rcpt=451" } }
end)
LUA
out=$("$MXROUTE" test "$lost" 2>&1); rc=$?
check "deliver with a missing policy: failed test, the reason, nothing leaked" "$([ $rc = 1 ] &&
  echo "$out" | grep -q 'no-such-policy.lua: cannot be read' && echo "$out" | grep -qx '0 passed, 1 failed'; echo $?)"
rm -f "$lost"
out=$("$MXROUTE" test 2>&1); rc=$?
check "no file is a usage error" "$([ $rc = 64 ]; echo $?)"
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
