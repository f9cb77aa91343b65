#!/usr/bin/env bash
# it_policy.sh -- `mxroute route --policy FILE` against a real knotd on
# 127.0.0.1 (tests/zones served by knot): a route hook that resolves MX and
# addresses over the network (the hook's coroutine waits for c-ares) and
# adds a host it resolved; text and --json output show source "policy" and
# the label; --policy-config inline and from a file; --policy-on-error;
# broken and missing policy files; a runaway policy; --batch with waiting
# hooks; the same policy offline (--zone) gives the same plan.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Ends with "N passed, N failed";
# exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}

. "$SRC/tests/lib/knot.sh"
. "$SRC/tests/lib/cli_harness.sh"
RUN_TIMEOUT=60
harness_start policy
trap 'knot_stop; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM
JQ_SLURP=1 # expect_jq reads all JSON lines as one array (.[0] is the first)
# expect_out NAME TEXT / expect_err NAME TEXT: a fixed string in the output.
expect_out() {
  if grep -qF -- "$2" "$OUT"; then pass "$1"; else fail "$1" "stdout has '$2'" "no"; fi
}
expect_err() {
  if grep -qF -- "$2" "$ERR"; then pass "$1"; else fail "$1" "stderr has '$2'" "no"; fi
}
expect_no_err() {
  if grep -qF -- "$2" "$ERR"; then fail "$1" "stderr without '$2'" "present"; else pass "$1"; fi
}

if ! knot_start "$SRC/tests/zones"; then
  echo "it_policy: knotd did not start" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
NET=(--server "127.0.0.1:$KNOT_PORT" --timeout 1000 --tries 2 --seed 1)
ZONES=()
for z in "$SRC"/tests/zones/*.zone; do ZONES+=(--zone "$z"); done

# ---------------------------------------------------------- policies
cat >"$TMP/network.lua" <<'EOF'
-- Resolves over the network from inside the hook, then adds what it found.
return { route = function(plan)
  local m, err = mx.resolve_mx('google.rules.test')
  if not m then error('resolve_mx: ' .. tostring(err)) end
  local hosts = {}
  for _, r in ipairs(m) do hosts[#hosts + 1] = r.preference .. '=' .. r.host end
  table.sort(hosts)
  mx.log('mx ' .. table.concat(hosts, ' '))
  local a, err2 = mx.resolve_addr('server.hosting.ext.test')
  if not a then error('resolve_addr: ' .. tostring(err2)) end
  mx.log('addr ' .. table.concat(a, ','))
  local none, why = mx.resolve_addr('nothere.rules.test')
  mx.log('nothere ' .. tostring(none) .. ' ' .. tostring(why))
  local r, why2 = mx.resolve_addr('mx.unserved.test')
  mx.log('unserved ' .. tostring(r) .. ' ' .. tostring(why2))
  -- by name: the plan object waits for the lookup itself
  assert(plan:add{host = 'offsite-backup.ext.test', label = 'offsite',
                  position = 'first', port = 2525, tls = true})
  plan:add{host = 'server.hosting.ext.test', addresses = a,
           label = 'hosting', position = 'last'}
  plan:remove('mx2.plain.rules.test')
end }
EOF

cat >"$TMP/relay.lua" <<'EOF'
local config = ...
return { route = function(plan)
  local ok, err = plan:add{host = config.relay, label = config.label,
                           position = 'first'}
  if not ok then error('relay: ' .. tostring(err)) end
end }
EOF
cat >"$TMP/relay-config.lua" <<'EOF'
-- configuration of relay.lua
return { relay = 'rules-test.mail.ext.test', label = 'from-file' }
EOF

cat >"$TMP/failing.lua" <<'EOF'
return { route = function(plan)
  plan:add{host = 'dropped.example', addresses = {'192.0.2.9'}}
  error('boom')
end }
EOF

cat >"$TMP/broken.lua" <<'EOF'
return { route = function(plan)
  plan:add{host = = 'x'}
end }
EOF

cat >"$TMP/runaway.lua" <<'EOF'
return { route = function(plan)
  local n = 0
  while true do n = n + 1 end
end }
EOF

# ------------------------------------------- route hook over the network
echo "== route hook resolving against knotd (port $KNOT_PORT)"
run route "${NET[@]}" --policy "$TMP/network.lua" plain.rules.test
expect_rc "text: network policy" 0
expect_out "text: policy host first with port, tls, label" \
  "offsite-backup.ext.test"
if grep -E '^ +0 +offsite-backup\.ext\.test +.*203\.0\.113\.50.*port 2525 +tls required +\(policy: offsite\)' "$OUT" >/dev/null; then
  pass "text: the policy line says port 2525, tls required, (policy: offsite)"
else
  fail "text: policy line" "offsite line with port, tls and (policy: offsite)" "$(grep offsite "$OUT")"
fi
expect_out "text: the hook's resolved address" "203.0.113.70  (policy: hosting)"
if grep -q 'mx1.plain.rules.test' "$OUT" && ! grep -q 'mx1.plain.rules.test.*(policy' "$OUT"; then
  pass "text: the MX host is not marked as a policy host"
else
  fail "text: mx1 line" "mx1 without (policy)" "$(grep mx1 "$OUT")"
fi
expect_out "text: removed host listed as skipped (policy)" \
  "skipped mx2.plain.rules.test"
expect_err "hook log: MX over the network" \
  "mxroute: policy network.lua: mx 10=alt3.google.rules.test 10=alt4.google.rules.test 1=aspmx.google.rules.test 5=alt1.google.rules.test 5=alt2.google.rules.test"
expect_err "hook log: address over the network" \
  "mxroute: policy network.lua: addr 203.0.113.70"
expect_err "hook log: nxdomain" "mxroute: policy network.lua: nothere nil nxdomain"
expect_err "hook log: refused" "mxroute: policy network.lua: unserved nil refused"
expect_no_err "no hook error" "error:"

run route "${NET[@]}" --json --policy "$TMP/network.lua" plain.rules.test
expect_rc "json: network policy" 0
expect_jq "json: status ok" '.[0].status == "ok" and .[0].reason == null'
expect_jq "json: order" \
  '[.[0].candidates[].host] == ["offsite-backup.ext.test", "mx1.plain.rules.test", "server.hosting.ext.test"]'
expect_jq "json: policy host by name: source, label, port, tls, addresses" \
  '.[0].candidates[0] | .source == "policy" and .label == "offsite" and .port == 2525 and .tls_required == true and (.addresses | sort) == ["2001:db8:ff::50", "203.0.113.50"]'
expect_jq "json: policy host with the hook's addresses" \
  '.[0].candidates[2] | .source == "policy" and .label == "hosting" and .port == 25 and .tls_required == false and .addresses == ["203.0.113.70"]'
expect_jq "json: MX host keeps source mx and no label" \
  '.[0].candidates[1] | .source == "mx" and .label == null'
expect_jq "json: removed host skipped with reason policy" \
  '.[0].skipped == [{"host": "mx2.plain.rules.test", "preference": 20, "reason": "policy"}]'

# the same policy offline gives the same plan
run route "${ZONES[@]}" --seed 1 --json --policy "$TMP/network.lua" plain.rules.test
expect_rc "offline: network policy with --zone" 0
cp "$OUT" "$TMP/offline.json"
run route "${NET[@]}" --json --policy "$TMP/network.lua" plain.rules.test
if jq -e -n --slurpfile a "$TMP/offline.json" --slurpfile b "$OUT" \
     '($a[0].candidates | map({host: .host, source: .source, label: .label, port: .port, tls: .tls_required, addresses: (.addresses | sort)})) ==
      ($b[0].candidates | map({host: .host, source: .source, label: .label, port: .port, tls: .tls_required, addresses: (.addresses | sort)}))' >/dev/null; then
  pass "offline and network plans agree"
else
  fail "offline vs network" "same candidates" "$(cat "$TMP/offline.json")"
fi

# --batch: many routes whose hooks wait for DNS at the same time
printf '%s\n' plain.rules.test dual.rules.test tiers.rules.test \
  nxdomain.rules.test '[192.0.2.1]' user@close.rules.test >"$TMP/batch.txt"
run route "${NET[@]}" --policy "$TMP/network.lua" --batch "$TMP/batch.txt"
expect_rc "batch with waiting hooks" 0
expect_jq "batch: every line answered" 'length == 6'
expect_jq "batch: every plan starts with the policy host" \
  'all(.[]; .status == "ok" and .candidates[0].host == "offsite-backup.ext.test" and .candidates[0].source == "policy")'
expect_jq "batch: a nxdomain plan became a plan to try" \
  '.[] | select(.input == "nxdomain.rules.test") | .status == "ok" and .reason == null'

# ------------------------------------------------------- configuration
echo "== --policy-config"
run route "${NET[@]}" --json --policy "$TMP/relay.lua" \
  --policy-config "{ relay = 'server.hosting.ext.test', label = 'inline' }" plain.rules.test
expect_rc "inline config" 0
expect_jq "inline config: relay first" \
  '.[0].candidates[0] | .host == "server.hosting.ext.test" and .label == "inline" and .source == "policy" and .addresses == ["203.0.113.70"]'
run route "${NET[@]}" --json --policy "$TMP/relay.lua" \
  --policy-config "$TMP/relay-config.lua" plain.rules.test
expect_rc "config file" 0
expect_jq "config file: relay first" \
  '.[0].candidates[0] | .host == "rules-test.mail.ext.test" and .label == "from-file" and .addresses == ["203.0.113.60"]'
run route "${NET[@]}" --policy-config "{}" plain.rules.test
expect_rc "--policy-config without --policy" 64
expect_err "--policy-config without --policy: message" "--policy-config must follow the --policy"
run route "${NET[@]}" --policy "$TMP/relay.lua" --policy-config "{ relay = " plain.rules.test
expect_rc "bad inline config" 64
expect_err "bad inline config: message" "policy relay.lua: config:1:"

# ------------------------------------------------------------ failures
echo "== failing, broken and runaway policies"
run route "${NET[@]}" --json --policy "$TMP/failing.lua" plain.rules.test
expect_rc "failing hook, default decision" 0
expect_jq "default decision: the plan as DNS made it" \
  '[.[0].candidates[].host] == ["mx1.plain.rules.test", "mx2.plain.rules.test"] and all(.[0].candidates[]; .source == "mx")'
expect_err "failing hook: script:line and reason" \
  "mxroute: error: policy failing.lua: route hook: failing.lua:3: boom; default decision used"

run route "${NET[@]}" --json --policy "$TMP/failing.lua" --policy-on-error defer plain.rules.test
expect_rc "failing hook, --policy-on-error defer" 75
expect_jq "defer: status tempfail, reason policy, no candidates" \
  '.[0].status == "tempfail" and .[0].reason == "policy" and .[0].candidates == []'
expect_err "defer: message says deferring" \
  "mxroute: error: policy failing.lua: route hook: failing.lua:3: boom; deferring"
run route "${NET[@]}" --policy "$TMP/failing.lua" --policy-on-error defer plain.rules.test
expect_rc "defer: text output" 75
expect_out "defer: text says policy" "tempfail (policy)"
run route "${NET[@]}" --policy "$TMP/failing.lua" --policy-on-error later plain.rules.test
expect_rc "--policy-on-error with a bad word" 64

run route "${NET[@]}" --policy "$TMP/broken.lua" plain.rules.test
expect_rc "broken policy exits 64 (usage)" 64
expect_err "broken policy: file:line" "broken.lua:2:"
if [ -s "$OUT" ]; then fail "broken policy: nothing routed" "empty stdout" "$(head -c 200 "$OUT")"; else pass "broken policy: nothing routed"; fi

run route "${NET[@]}" --policy "$TMP/does-not-exist.lua" plain.rules.test
expect_rc "missing policy file" 66
expect_err "missing policy file: message" "does-not-exist.lua: cannot be read"

run route "${NET[@]}" --json --policy "$TMP/runaway.lua" --policy-max-instructions 100000 plain.rules.test
expect_rc "runaway policy stopped" 0
expect_err "runaway: budget message with script:line" \
  "mxroute: error: policy runaway.lua: route hook: runaway.lua:3: instruction budget exceeded (100000); default decision used"
expect_jq "runaway: default plan" '.[0].status == "ok" and (.[0].candidates | length) == 2'

# two policies chained, each seeing the previous one's edits
cat >"$TMP/second.lua" <<'EOF'
return { route = function(plan)
  local c = plan:candidates()
  mx.log('second sees ' .. c[1].host .. ' ' .. c[1].source .. ' ' .. tostring(c[1].label))
  plan:reorder{'mx1.plain.rules.test'}
end }
EOF
run route "${NET[@]}" --json --policy "$TMP/network.lua" --policy "$TMP/second.lua" plain.rules.test
expect_rc "chained policies" 0
expect_err "chained: the second sees the first's host" \
  "mxroute: policy second.lua: second sees offsite-backup.ext.test policy offsite"
expect_jq "chained: the second reordered" \
  '[.[0].candidates[].host] == ["mx1.plain.rules.test", "offsite-backup.ext.test", "server.hosting.ext.test"] and .[0].candidates[1].label == "offsite"'

harness_end
