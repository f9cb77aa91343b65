#!/usr/bin/env bash
# it_simulate.sh -- `mxroute simulate`: the failover machine walked against
# scripted outcomes on the bundled example zones (examples/zones) and the
# test zones (tests/zones): failover inside a tier and to the next tier,
# deferral on the last host, per-recipient bounce, expiry, host health
# cool-down across rounds, the JSON shape, bad specs and exit codes.
# Offline and deterministic (--seed); ties are checked by property (same
# preference, next tier), never by a host name the shuffle picked.
#
# Environment: MXROUTE (the binary; default $MXR_BUILD_DIR/mxroute or
# build/mxroute), MXR_SOURCE_DIR (default: the script's parent directory).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}

if [ ! -x "$MXROUTE" ]; then
  echo "it_simulate: no mxroute binary at $MXROUTE (set MXROUTE)" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "it_simulate: python3 missing" >&2; echo "0 passed, 1 failed"; exit 1; }
. "$SRC/tests/lib/cli_harness.sh" # fail_fast (this script has its own run and fail)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-sim.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

EX=()   # the bundled example zones
for z in "$SRC"/examples/zones/*.zone; do EX+=(--zone "$z"); done
TZ=()   # the test zones
for z in "$SRC"/tests/zones/*.zone; do TZ+=(--zone "$z"); done

passed=0
failed=0
OUT=$TMP/out
ERR=$TMP/err
RC=0

# run ARGS...: mxroute simulate (bounded), stdout in $OUT, stderr in $ERR,
# exit code in $RC.
run() {
  timeout 30 "$MXROUTE" simulate "$@" >"$OUT" 2>"$ERR" </dev/null
  RC=$?
  LAST_CMD="mxroute simulate $(printf '%q ' "$@")"
}

pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  echo "     expected: $2"
  echo "     got:      $3"
  echo "     command:  ${LAST_CMD:-}"
  [ -s "$OUT" ] && echo "     stdout:   $(head -c 1500 "$OUT")"
  [ -s "$ERR" ] && echo "     stderr:   $(head -c 400 "$ERR")"
  fail_fast "$passed" "$failed"
}

expect_rc() {
  if [ "$RC" = "$2" ]; then pass "$1 (exit $2)"; else fail "$1" "exit $2" "exit $RC"; fi
}
expect_out() {
  if grep -Eq -- "$2" "$OUT"; then pass "$1"; else fail "$1" "stdout ~ /$2/" "no match"; fi
}
expect_no_out() {
  if grep -Eq -- "$2" "$OUT"; then fail "$1" "stdout !~ /$2/" "a match"; else pass "$1"; fi
}
expect_err() {
  if grep -Eq -- "$2" "$ERR"; then pass "$1"; else fail "$1" "stderr ~ /$2/" "no match"; fi
}

# The checker: every stdout line is one JSON object; R is all of them,
# `rounds` those that ran. Helpers keep the assertions short.
cat >"$TMP/check.py" <<'PY'
import json, sys
R = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rounds = [r for r in R if not r.get("skipped")]
def last():
    return rounds[-1]
def rcpt(i, r=None):
    """Recipient i (1-based) as the round r (default: the last) left it."""
    return (r or last())["recipients"][i - 1]
def hops(r):
    """The hops of a round in order: (session, host, preference, cooling)."""
    seen, out = set(), []
    for s in r["steps"]:
        if s["session"] not in seen:
            seen.add(s["session"])
            out.append((s["session"], s["host"], s["preference"], s["cooling_down"]))
    return out
def pref_of(r, host):
    return next(s["preference"] for s in r["steps"] if s["host"] == host)
def steps_at(r, stage):
    return [s for s in r["steps"] if s["stage"] == stage]
def has_step(**want):
    """A step of some round with every field as given (cls is 'class')."""
    if "cls" in want:
        want["class"] = want.pop("cls")
    return any(all(s.get(k) == v for k, v in want.items())
               for r in rounds for s in r["steps"])
def holds(src):
    """src: assignments, one per line, then the verdict: an expression
    that may span lines."""
    lines = src.strip().splitlines()
    for k in range(len(lines)):
        try:
            body = compile("\n".join(lines[:k]), "<check>", "exec")
            verdict = compile("(" + "\n".join(lines[k:]) + ")", "<check>", "eval")
        except SyntaxError:
            continue
        env = dict(globals())
        exec(body, env)
        return eval(verdict, env)
    raise SyntaxError("no verdict in: " + src)
try:
    ok = holds(sys.argv[2])
except Exception as e:
    print("exception: %r" % e)
    ok = False
sys.exit(0 if ok else 1)
PY

# expect_py NAME EXPR: the Python expression holds on the JSON output.
expect_py() {
  local got
  if got=$(python3 "$TMP/check.py" "$OUT" "$2" 2>&1); then
    pass "$1"
  else
    fail "$1" "python: $2" "$(printf '%s' "$got" | head -c 300)"
  fi
}
# py EXPR: print the value of a Python expression on the JSON output.
py() {
  python3 - "$OUT" "$1" <<'PY'
import json, sys
R = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rounds = [r for r in R if not r.get("skipped")]
print(eval(sys.argv[2]))
PY
}

# ------------------------------------------------------------ usage, help
run --help;                            expect_rc "simulate --help" 0
expect_out "--help shows the spec syntax" 'TARGET\[:STAGE\[:RCPT\]\]=RESULT'
expect_out "--help lists --follow" '--follow'
run "${EX[@]}";                        expect_rc "no domain and no --to" 64
run "${EX[@]}" example.com example.org; expect_rc "two domains" 64
run "${EX[@]}" --bogus example.com;    expect_rc "unknown option" 64
run "${EX[@]}" --at 10 --at 5 example.com; expect_rc "--at not ascending" 64
expect_err "--at not ascending: says so" 'ascending'
run "${EX[@]}" --at -1 example.com;    expect_rc "--at negative" 64
run "${EX[@]}" --at soon example.com;  expect_rc "--at not a number" 64
run "${EX[@]}" --retry-min 0 example.com; expect_rc "--retry-min out of range" 64
run "${EX[@]}" --max-sessions 0 example.com; expect_rc "--max-sessions out of range" 64
run "${EX[@]}" --max-age abc example.com; expect_rc "--max-age not a number" 64
run "${EX[@]}" --seed x example.com;   expect_rc "engine option checked too (--seed x)" 64
run --zone "$TMP/missing.zone" example.com; expect_rc "missing zone file" 64

# ------------------------------------------------------------- bad specs
bad_specs=(
  'mail1.example.com=451'                 # a code needs a stage
  'mail1.example.com:connect=451'         # no reply at connect
  'mail1.example.com:mail=451/5.7.1'      # enhanced class mismatch
  'mail1.example.com:mail=451/4.7'        # malformed enhanced code
  'mail1.example.com:mail=45'             # not a code
  'mail1.example.com:mail=600'            # out of range
  'mail1.example.com:mail=099'            # out of range
  'mail1.example.com:helo=451'            # unknown stage
  'mail1.example.com=explode'             # unknown result
  'mail1.example.com'                     # no result
  '=refused'                              # no target
  'mail1.example.com:mail:1=550'          # recipient outside rcpt
  '*:rcpt:0=550'                          # index from 1
  '*:rcpt:nobody=550'                     # neither index nor address
  '*:rcpt:5=550'                          # only one recipient
  '*:rcpt:x@example.com=550'              # not a recipient
  '2001:db8::10=refused'                  # IPv6 needs brackets
  '[2001:db8::10=refused'                 # unclosed bracket
  '[mail1.example.com]=refused'           # brackets hold addresses
  '@soon/mail1.example.com=refused'       # round is seconds
  '@5mail1.example.com=refused'           # round needs its slash
  'bad host!=refused'                     # not a host name
)
for spec in "${bad_specs[@]}"; do
  run "${EX[@]}" --outcome "$spec" example.com
  expect_rc "bad spec $(printf '%q' "$spec")" 64
  if grep -qF -- "'$spec'" "$ERR"; then pass "bad spec named in the message: $spec";
  else fail "bad spec named in the message" "stderr names '$spec'" "$(head -c 200 "$ERR")"; fi
done
# Each good spec, options for the run (IPv4 first, so that the IPv4
# address is tried), then the step it scripts as the --json output must
# show it: a parser that ignores the spec (or an empty output) fails.
good_specs=(
  'mail1.example.com=refused' ''
    "has_step(host='mail1.example.com', stage='connect', cls='refused')"
  'MAIL1.Example.COM.=timeout' ''
    "has_step(host='mail1.example.com', stage='connect', cls='timeout')"
  '*=ok' ''
    "all(s['class'] == 'ok' for s in steps_at(rounds[0], 'connect')) and has_step(stage='connect')"
  '192.0.2.10=unreachable' '--family prefer-ipv4'
    "has_step(address='192.0.2.10', stage='connect', cls='unreachable')"
  '[2001:db8::10]=reset' ''
    "has_step(address='2001:db8::10', stage='connect', cls='reset')"
  '[2001:db8::10]:greeting=421' ''
    "has_step(address='2001:db8::10', stage='greeting', code=421)"
  '*:greeting=554/5.7.1/Go away' ''
    "has_step(stage='greeting', code=554, enhanced='5.7.1', text='Go away')"
  '*:ehlo=421/4.3.2' ''
    "has_step(stage='ehlo', code=421, enhanced='4.3.2')"
  '*:mail=451//no enhanced code' ''
    "has_step(stage='mail', code=451, enhanced=None, text='no enhanced code')"
  '*:rcpt:1=452/4.2.2/Full' ''
    "has_step(stage='rcpt', code=452, enhanced='4.2.2', text='Full')"
  '*:rcpt:postmaster@example.com=250' ''
    "has_step(stage='rcpt', code=250, recipient='postmaster@example.com')"
  '*:data=354' ''
    "has_step(stage='data', code=354)"
  '*:dot=250/2.0.0/Queued as 1234' ''
    "has_step(stage='dot', code=250, enhanced='2.0.0', text='Queued as 1234')"
  '@0/*:tls=454/4.7.0' ''
    "has_step(stage='tls', code=454, enhanced='4.7.0')"
  '*:rcpt=550/5.1.1/Text/with/slashes and = sign' ''
    "has_step(stage='rcpt', code=550, enhanced='5.1.1', text='Text/with/slashes and = sign')"
)
for ((i = 0; i < ${#good_specs[@]}; i += 3)); do
  spec=${good_specs[i]}
  # shellcheck disable=SC2086  # the options are split on purpose
  run "${EX[@]}" --json --seed 1 ${good_specs[i + 1]} --outcome "$spec" example.com
  if [ "$RC" = 0 ] || [ "$RC" = 75 ] || [ "$RC" = 68 ]; then
    pass "good spec $(printf '%q' "$spec") (exit $RC)"
  else
    fail "good spec $(printf '%q' "$spec")" "exit 0, 68 or 75" "exit $RC"
  fi
  expect_py "good spec $(printf '%q' "$spec"): the scripted step" "${good_specs[i + 2]}"
done
run "${EX[@]}" --outcome 'mx9.example.com=refused' example.com
expect_rc "a target outside the plan still runs" 0
expect_err "a target outside the plan: warning" "warning: --outcome 'mx9\.example\.com=refused' matches no host"

# ------------------------------------------------------------ exit codes
run "${EX[@]}" --seed 1 example.com;                 expect_rc "all delivered" 0
run "${EX[@]}" --seed 1 --outcome '*=refused' example.com; expect_rc "every host refused: deferred" 75
run "${EX[@]}" --seed 1 --outcome '*:rcpt=550' example.com; expect_rc "every recipient bounced" 68
run "${EX[@]}" --seed 1 --to a@example.com --to b@example.com \
  --outcome '*:rcpt:1=550' example.com;              expect_rc "one bounced, one delivered" 68
run "${EX[@]}" --seed 1 --to a@example.com --to b@example.com \
  --outcome '*:rcpt:1=550' --outcome '*:rcpt:2=451' example.com
expect_rc "one bounced, one deferred" 75
run "${EX[@]}" 'a..b.example.com';                   expect_rc "invalid domain" 65
run "${EX[@]}" --to 'a@@example.com' example.com;    expect_rc "invalid recipient" 65
run "${EX[@]}" --to a@example.org example.com;       expect_rc "recipient of another domain" 64
expect_err "recipient of another domain: says so" 'not in example\.com'
run "${EX[@]}" --to example.com example.com;         expect_rc "--to without @" 64
run "${EX[@]}" nullmx.example.com;                   expect_rc "null MX: bounced at once" 68
expect_out "null MX: the routing failure is the reason" 'bounced: routing: permfail \(null-mx\)'
run "${TZ[@]}" fault-servfail.rules.test;            expect_rc "DNS SERVFAIL: deferred" 75
expect_out "DNS SERVFAIL: the routing failure is the reason" 'routing: tempfail \(servfail\)'

# ----------------------------------------------- failover inside a tier
# Three hosts at 10 (balanced.example.com) and two at 10 over two more
# tiers (tiered.example.com): whichever host the shuffle puts first is
# refused; the next hop has the same preference and delivers.
for dom in balanced.example.com tiered.example.com; do
  for seed in 1 2 3 4; do
    run "${EX[@]}" --json --seed "$seed" "$dom"
    first=$(py 'rounds[0]["plan"][0]')
    run "${EX[@]}" --json --seed "$seed" --outcome "$first=refused" "$dom"
    expect_rc "$dom seed $seed: first host refused, still delivered" 0
    expect_py "$dom seed $seed: every address of $first refused, then the same tier" "
h = hops(rounds[0])
refused = [s for s in rounds[0]['steps'] if s['class'] == 'refused']
nxt = [x for x in h if x[1] != '$first'][0]
all(x[1] == '$first' for x in h[:len(refused)]) and
all(s['host'] == '$first' for s in refused) and
nxt[2] == pref_of(rounds[0], '$first') == 10 and
rcpt(1)['state'] == 'delivered' and rcpt(1)['host'] == nxt[1] and
refused[-1]['action'] in ('next-address', 'next-host')"
  done
done
run "${TZ[@]}" --json --seed 7 tie.rules.test
first=$(py 'rounds[0]["plan"][0]')
run "${TZ[@]}" --json --seed 7 --outcome "$first:greeting=554/5.7.1/Not you" tie.rules.test
expect_rc "tie.rules.test: greeting 554 on the first host" 0
expect_py "tie.rules.test: greeting 5xx -> next host of the same preference" "
h = hops(rounds[0])
len(h) == 2 and h[0][1] == '$first' and h[1][2] == h[0][2] == 10 and
steps_at(rounds[0], 'greeting')[0]['action'] == 'next-host' and
rcpt(1)['host'] == h[1][1]"

# ------------------------------------------------- failover to the next tier
run "${EX[@]}" --json --seed 3 --outcome mail-east.tiered.example.com=refused \
  --outcome mail-west.tiered.example.com=refused tiered.example.com
expect_rc "tier 10 refused: delivered" 0
expect_py "tier 10 refused: its 4 addresses refused, a tier-20 host delivers" "
r = rounds[0]
refused = [s for s in r['steps'] if s['class'] == 'refused']
len(refused) == 4 and all(s['preference'] == 10 for s in refused) and
[s['action'] for s in refused] == ['next-address'] * 4 and
pref_of(r, rcpt(1)['host']) == 20 and len(hops(r)) == 5"
run "${EX[@]}" --seed 3 --outcome mail-east.tiered.example.com=refused \
  --outcome mail-west.tiered.example.com=refused tiered.example.com
expect_out "text: the refusals and the move" 'connect +refused +-> next-address'
expect_out "text: a backup delivers" 'delivered by backup-(east|west)\.tiered\.example\.com'
run "${EX[@]}" --json --seed 1 --outcome 'mail1.example.com=timeout' example.com
expect_py "example.com: mail1 times out on both addresses, mail2 delivers" "
[(s['host'], s['class']) for s in rounds[0]['steps'] if s['class'] != 'ok'] ==
  [('mail1.example.com', 'timeout')] * 2 and rcpt(1)['host'] == 'mail2.example.com'"
run "${EX[@]}" --json --seed 1 --outcome '192.0.2.10=refused' --outcome '[2001:db8::10]=unreachable' example.com
expect_py "address targets: each address of mail1 fails its own way" "
[(s['address'], s['class']) for s in rounds[0]['steps'] if s['class'] != 'ok'] ==
  [('2001:db8::10', 'unreachable'), ('192.0.2.10', 'refused')] and
rcpt(1)['host'] == 'mail2.example.com'"
run "${EX[@]}" --json --seed 1 --outcome 'mail1.example.com:greeting=421/4.3.2' example.com
expect_py "greeting 421 on both addresses of mail1: next address, then mail2" "
[s['action'] for s in steps_at(rounds[0], 'greeting')] == ['next-address', 'next-address', 'continue'] and
rcpt(1)['host'] == 'mail2.example.com'"
run "${EX[@]}" --json --seed 1 --outcome 'mail1.example.com:tls=454/4.7.0/TLS not available' example.com
expect_py "STARTTLS 454 on mail1: after EHLO, next host; not simulated where unscripted" "
st = [s['stage'] for s in rounds[0]['steps'] if s['host'] == 'mail1.example.com']
st == ['connect', 'greeting', 'ehlo', 'tls'] and steps_at(rounds[0], 'tls')[0]['action'] == 'next-host' and
len(steps_at(rounds[0], 'tls')) == 1 and rcpt(1)['host'] == 'mail2.example.com'"
run "${TZ[@]}" --json --seed 2 --outcome 'mx1.plain.rules.test:dot=451/4.3.0' plain.rules.test
expect_py "end-of-data 451 on mx1: next host delivers" "
[s['action'] for s in steps_at(rounds[0], 'dot')] == ['next-host', 'delivered'] and
rcpt(1)['host'] == 'mx2.plain.rules.test'"

# ------------------------------------------------ deferral on the last host
run "${EX[@]}" --json --seed 5 --outcome '*:mail=451/4.7.1/Try again later' tiered.example.com
expect_rc "4xx at MAIL everywhere: deferred" 75
expect_py "4xx at MAIL: each of the 5 hosts once, next-host until the last defers" "
r = rounds[0]
m = steps_at(r, 'mail')
len(hops(r)) == 5 and len(set(x[1] for x in hops(r))) == 5 and
[s['action'] for s in m] == ['next-host'] * 4 + ['defer'] and
[x[2] for x in hops(r)] == sorted(x[2] for x in hops(r)) and
r['action'] == 'defer'"
expect_py "4xx at MAIL: deferred with the last reply and a retry time" "
x = rcpt(1)
x['state'] == 'deferred' and x['code'] == 451 and x['enhanced'] == '4.7.1' and
x['text'] == 'Try again later' and x['host'] == 'offsite-backup.example.net' and
300 <= x['retry_at'] <= 330"
run "${EX[@]}" --seed 5 --outcome '*:mail=451/4.7.1/Try again later' tiered.example.com
expect_out "text: deferred with its retry time" 'deferred, retry at [0-9.]+s after offsite-backup\.example\.net: 451 4\.7\.1 Try again later'
run "${EX[@]}" --json --seed 5 --max-sessions 2 --outcome '*:mail=451' tiered.example.com
expect_py "--max-sessions 2: two sessions, then defer" "
len(hops(rounds[0])) == 2 and steps_at(rounds[0], 'mail')[-1]['action'] == 'defer'"
run "${EX[@]}" --json --seed 5 --max-addresses 3 --outcome '*=refused' tiered.example.com
expect_py "--max-addresses 3: three addresses, then defer" "
len(hops(rounds[0])) == 3 and rounds[0]['steps'][-1]['action'] == 'defer' and
rcpt(1)['state'] == 'deferred'"
run "${EX[@]}" --json --seed 5 --stay-on-4xx --outcome '*:mail=451' tiered.example.com
expect_py "--stay-on-4xx: MAIL 451 defers on the first host" "
len(hops(rounds[0])) == 1 and steps_at(rounds[0], 'mail')[0]['action'] == 'defer'"
run "${EX[@]}" --json --seed 5 --outcome '*:mail=550/5.7.1/Sender rejected' tiered.example.com
expect_rc "MAIL 550: bounced" 68
expect_py "MAIL 550: bounce on the first host with the reply" "
len(hops(rounds[0])) == 1 and rcpt(1)['state'] == 'bounced' and rcpt(1)['code'] == 550 and
rcpt(1)['text'] == 'Sender rejected'"
run "${EX[@]}" --json --seed 5 --outcome '*:data=554' tiered.example.com
expect_rc "DATA 554: bounced" 68

# ------------------------------------------------- per-recipient bounce
R3=(--to a@example.org --to b@example.org --to c@example.org)
run "${EX[@]}" --json --seed 1 "${R3[@]}" --outcome '*:rcpt:2=550/5.1.1/No such user' example.org
expect_rc "3 recipients, one 550 at RCPT" 68
expect_py "one 550 at RCPT: bounced with the reply, the others delivered" "
a, b, c = rcpt(1), rcpt(2), rcpt(3)
b['state'] == 'bounced' and b['code'] == 550 and b['enhanced'] == '5.1.1' and
b['text'] == 'No such user' and b['address'] == 'b@example.org' and
a['state'] == c['state'] == 'delivered' and a['host'] == c['host'] == b['host'] and
len(hops(rounds[0])) == 1 and
[s['action'] for s in steps_at(rounds[0], 'rcpt')] == ['continue', 'bounce', 'continue']"
run "${EX[@]}" --seed 1 "${R3[@]}" --outcome '*:rcpt:b@example.org=550/5.1.1/No such user' example.org
expect_out "text: recipient by address bounced" 'b@example\.org: bounced by mx[12]\.example\.org: 550 5\.1\.1 No such user'
expect_out "text: the others delivered" 'c@example\.org: delivered by mx[12]\.example\.org'
run "${EX[@]}" --json --seed 1 --to a@example.com --to b@example.com --to c@example.com \
  --outcome 'mail1.example.com:rcpt:3=452/4.2.2/Mailbox full' example.com
expect_rc "RCPT 452 for one recipient on mail1" 0
expect_py "RCPT 4xx: that recipient goes on to mail2, the others stay delivered by mail1" "
rcpt(1)['host'] == rcpt(2)['host'] == 'mail1.example.com' and
rcpt(3)['host'] == 'mail2.example.com' and rcpt(3)['state'] == 'delivered' and
[x[1] for x in hops(rounds[0])] == ['mail1.example.com', 'mail2.example.com'] and
len([s for s in steps_at(rounds[0], 'rcpt') if s['recipient'] == 'c@example.com']) == 2"
run "${EX[@]}" --json --seed 1 --to a@example.com --to b@example.com \
  --outcome '*:rcpt=550/5.1.1' example.com
expect_py "every RCPT 550: bounced, no DATA" "
steps_at(rounds[0], 'data') == [] and rounds[0]['action'] == 'bounce' and
rounds[0]['steps'][-1]['recipient'] is None and rounds[0]['steps'][-1]['class'] is None"

# ------------------------------------------------------------------ expiry
run "${EX[@]}" --json --seed 1 --stay-on-4xx --max-age 3600 --follow \
  --outcome '*:mail=451/4.7.1/Greylisted' single.example.com
expect_rc "451 forever with --max-age 3600: bounced" 68
expect_py "expiry: deferred round after round, bounced 'expired' at 3600 s" "
ats = [r['at'] for r in rounds]
len(rounds) >= 3 and ats == sorted(ats) and ats[0] == 0 and last()['at'] == 3600 and
all(rcpt(1, r)['state'] == 'deferred' for r in rounds[:-1]) and
all(rcpt(1, r)['retry_at'] == rounds[i + 1]['at'] for i, r in enumerate(rounds[:-1])) and
rcpt(1)['state'] == 'bounced' and rcpt(1)['text'].startswith('expired after 3600 s') and
rcpt(1)['code'] == 451 and last()['action'] == 'bounce'"
expect_py "expiry: the retry delays grow" "
d = [b['at'] - a['at'] for a, b in zip(rounds, rounds[1:-1])]
all(y > x for x, y in zip(d, d[1:]))"
run "${EX[@]}" --seed 1 --max-age 3600 --follow --outcome '*:mail=451/4.7.1/Greylisted' example.com
expect_rc "expiry with the default rules (move on, then defer)" 68
expect_out "text: expired" 'bounced by mail2\.example\.com: 451 4\.7\.1 expired after 3600 s in the queue: Greylisted'
run "${EX[@]}" --json --seed 1 --follow --outcome '@0/*:mail=451' example.com
expect_rc "--follow: deferred at 0, delivered on the retry" 0
expect_py "--follow: round 2 at the retry time delivers" "
len(rounds) == 2 and rounds[1]['at'] == rcpt(1, rounds[0])['retry_at'] and
rcpt(1)['state'] == 'delivered' and rcpt(1)['round'] == 2"
run "${EX[@]}" --json --seed 1 --follow --retry-min 60 --retry-max 60 --max-age 86400 \
  --outcome '*=refused' example.com
expect_rc "--follow is bounded" 75
expect_py "--follow: stops after 100 rounds" "len(rounds) == 100"
expect_err "--follow bound: says so" 'stopped after 100 rounds'

# --------------------------------------- rounds, --at and health cool-down
run "${EX[@]}" --json --seed 1 --at 0 --at 10 --outcome '*:mail=451' example.com
expect_rc "--at 10 before the retry time" 75
expect_py "--at 10: skipped, not due before the retry time" "
len(R) == 2 and R[1]['skipped'] is True and R[1]['at'] == 10 and
R[1]['due'] == rcpt(1, R[0])['retry_at'] >= 300"
run "${EX[@]}" --seed 1 --at 0 --at 10 --outcome '*:mail=451' example.com
expect_out "text: not due" 'at 10s: not due until [0-9.]+s'
run "${EX[@]}" --json --seed 1 --at 0 --at 400 --at 500 example.com
expect_py "nothing deferred: later --at times run nothing" "len(R) == 1"
# mail1 is refused in round 1 only; everything else fails at MAIL then.
HEALTH=(--seed 1 --retry-min 60 --outcome '@0/mail1.example.com=refused' --outcome '@0/*:mail=451')
run "${EX[@]}" --json "${HEALTH[@]}" --cool-down 600 --at 0 --at 120 example.com
expect_rc "cool-down: round 2 delivers" 0
expect_py "cool-down: round 1 tries mail1 first, round 2 last (cooling down)" "
r1, r2 = rounds
r1['plan'] == ['mail1.example.com', 'mail2.example.com'] and r1['cooling_down'] == [] and
r2['plan'] == ['mail2.example.com', 'mail1.example.com'] and
r2['cooling_down'] == ['mail1.example.com'] and hops(r2)[0][1] == 'mail2.example.com' and
rcpt(1)['host'] == 'mail2.example.com'"
run "${EX[@]}" --json "${HEALTH[@]}" --retry-min 30 --at 0 --at 45 example.com
expect_py "default cool-down (60 s): still cooling down at 45 s" "
rounds[1]['cooling_down'] == ['mail1.example.com']"
run "${EX[@]}" --json "${HEALTH[@]}" --at 0 --at 120 example.com
expect_py "default cool-down (60 s): over at 120 s, mail1 first again" "
rounds[1]['plan'][0] == 'mail1.example.com' and rounds[1]['cooling_down'] == []"
run "${EX[@]}" --json "${HEALTH[@]}" --cool-down 600 --at 0 --at 4000 example.com
expect_py "cool-down 600 s: over at 4000 s, mail1 first and delivers" "
rounds[1]['plan'][0] == 'mail1.example.com' and rcpt(1)['host'] == 'mail1.example.com'"
run "${EX[@]}" --json "${HEALTH[@]}" --cool-down 600 --at 0 --at 120 \
  --outcome '@120/mail2.example.com:mail=451' example.com
expect_py "cooling down is tried last, never dropped: mail1 delivers in round 2" "
h = hops(rounds[1])
[x[1] for x in h] == ['mail2.example.com', 'mail1.example.com'] and h[1][3] is True and
rcpt(1)['host'] == 'mail1.example.com'"
run "${EX[@]}" "${HEALTH[@]}" --cool-down 600 --at 0 --at 120 \
  --outcome '@120/mail2.example.com:mail=451' example.com
expect_out "text: the hop says cooling down" '#[0-9]+ mail1\.example\.com [0-9a-f:.]+ \(preference 10, cooling down\)'
expect_out "text: the plan says cooling down" 'plan: mail2\.example\.com \(20\), mail1\.example\.com \(10, cooling down\)'
# Every host down: the least recently failed goes first.
run "${EX[@]}" --json --seed 1 --retry-min 60 --cool-down 600 --at 0 --at 120 \
  --outcome '@0/*=refused' example.com
expect_py "all hosts cooling down (failed at the same time): plan order kept" "
rounds[1]['plan'] == ['mail1.example.com', 'mail2.example.com'] and
sorted(rounds[1]['cooling_down']) == ['mail1.example.com', 'mail2.example.com']"

# ------------------------------------------------------------- JSON shape
run "${EX[@]}" --json --seed 2 --to a@example.org --to b@example.org --at 0 --at 10 --at 400 \
  --outcome '@0/*:rcpt:2=451/4.2.0/Later' example.org
expect_rc "JSON run" 0
expect_py "JSON: one object per line, rounds and a skipped one" "
len(R) == 3 and [r.get('round') for r in R] == [1, None, 2] and R[1]['skipped'] is True"
expect_py "JSON: round fields and types" "
all(set(r) >= {'round', 'at', 'domain', 'plan', 'cooling_down', 'steps', 'recipients', 'action'} and
    isinstance(r['round'], int) and isinstance(r['at'], (int, float)) and
    r['domain'] == 'example.org' and all(isinstance(h, str) for h in r['plan']) and
    r['action'] in ('delivered', 'defer', 'bounce') for r in rounds)"
expect_py "JSON: step fields and types" "
all(set(s) >= {'session', 'host', 'address', 'preference', 'cooling_down', 'stage', 'class',
               'code', 'enhanced', 'text', 'recipient', 'action'} and
    isinstance(s['session'], int) and s['stage'] in ('connect', 'tls', 'greeting', 'ehlo', 'mail', 'rcpt', 'data', 'dot') and
    s['action'] in ('continue', 'next-address', 'next-host', 'defer', 'bounce', 'delivered') and
    (s['code'] is None or 200 <= s['code'] <= 599)
    for r in rounds for s in r['steps'])"
expect_py "JSON: recipient fields and types" "
all(set(x) >= {'address', 'index', 'state', 'code', 'enhanced', 'text', 'host', 'retry_at', 'round'} and
    x['state'] in ('delivered', 'bounced', 'deferred') and
    (x['retry_at'] is None) == (x['state'] != 'deferred')
    for r in rounds for x in r['recipients'])"
expect_py "JSON: round 1 defers b, round 2 (at 400) delivers it, a stays from round 1" "
rcpt(2, rounds[0])['state'] == 'deferred' and rcpt(2, rounds[0])['code'] == 451 and
rcpt(1)['round'] == 1 and rcpt(2)['round'] == 2 and rcpt(2)['state'] == 'delivered' and
all(s['recipient'] != 'a@example.org' for s in rounds[1]['steps'])"
run "${EX[@]}" --json --seed 2 example.org
expect_py "JSON: connection results have no code" "
steps_at(rounds[0], 'connect')[0]['code'] is None and steps_at(rounds[0], 'connect')[0]['class'] == 'ok'"

# ------------------------------------------------- determinism, invariant
run "${EX[@]}" --seed 9 --follow --max-age 7200 --outcome '*:mail=451' tiered.example.com
cp "$OUT" "$TMP/a"
run "${EX[@]}" --seed 9 --follow --max-age 7200 --outcome '*:mail=451' tiered.example.com
if [ -s "$OUT" ] && cmp -s "$OUT" "$TMP/a"; then pass "same seed: same simulation"; else fail "same seed" "identical output" "different"; fi

# Random scripts: whatever happens, every recipient ends delivered or
# bounced (--follow, --max-age) and the exit code says which.
python3 - "$TMP/scripts" <<'PY'
import random
rng = random.Random(5321)
targets = ["*", "mx1.example.org", "mx2.example.org", "backup.somecorp.example.net",
           "203.0.113.1", "[2001:db8:2::2]"]
results = {"connect": ["refused", "timeout", "unreachable", "reset", "ok"],
           "greeting": ["421", "554/5.7.1/no", "451"], "ehlo": ["421", "451", "550"],
           "mail": ["451/4.7.1/grey", "550/5.7.1/spam", "421"],
           "rcpt": ["451", "452/4.2.2/full", "550/5.1.1/unknown", "421", "250", "timeout"],
           "data": ["451", "554", "421"], "dot": ["451", "552/5.3.4/too big", "421", "250"]}
with open(__import__("sys").argv[1], "w") as f:
    for _ in range(40):
        args = []
        for _ in range(rng.randint(1, 5)):
            stage = rng.choice(list(results))
            lhs = rng.choice(targets)
            if stage != "connect":
                lhs += ":" + stage
                if stage == "rcpt" and rng.random() < 0.5:
                    lhs += ":" + str(rng.randint(1, 3))
            if rng.random() < 0.3:
                lhs = "@0/" + lhs
            args.append("--outcome=" + lhs + "=" + rng.choice(results[stage]))
        print("\t".join(args), file=f)
PY
inv_bad=0
n=0
while IFS=$'\t' read -r -a specs; do
  n=$((n + 1))
  run "${EX[@]}" --json --seed "$n" --follow --max-age 3600 "${R3[@]}" "${specs[@]}" example.org
  if ! python3 "$TMP/check.py" "$OUT" "
len(rounds) >= 1 and all(x['state'] in ('delivered', 'bounced') for x in last()['recipients']) and
len(last()['recipients']) == 3 and
$RC == (68 if any(x['state'] == 'bounced' for x in last()['recipients']) else 0)" >/dev/null; then
    inv_bad=$((inv_bad + 1))
    fail "random script $n" "every recipient final, exit matches" "exit $RC"
  fi
done <"$TMP/scripts"
# The count too: zero scripts run would be zero scripts failed.
if [ "$n" != 40 ]; then fail "random scripts" "40 scripts run" "$n"
elif [ "$inv_bad" = 0 ]; then pass "random scripts ($n): no recipient lost, exit code matches"; fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
