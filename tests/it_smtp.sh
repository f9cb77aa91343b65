#!/usr/bin/env bash
# it_smtp.sh -- `mxroute probe` and `mxroute send` against real SMTP servers
# on 127.0.0.x (all on one port): postfix's smtp-sink scripted to answer
# 4xx/5xx/421 at each stage, aiosmtpd peers that store what they accept
# (tests/lib/smtp_peers.py), a closed port, a silent listener, a server that
# drops the connection mid-DATA, STARTTLS with a certificate made at test
# time. One zone file points the MX hosts at the peers: offline (--zone),
# and at the end through a real knotd (--server). Policies pick hops
# (--policy). Every run uses --allow-loopback --port PORT --timeout 2000.
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
. "$SRC/tests/lib/smtp.sh"
. "$SRC/tests/lib/knot.sh"
harness_start smtp
trap 'exit 130' INT
trap 'fail "whole script within ${SMTP_IT_LIMIT:-110} s" "finished" "stopped (last command below)"; harness_end; exit 1' TERM
# The whole script is bounded: a watchdog ends it after SMTP_IT_LIMIT s.
(
  trap 'kill "$sp" 2>/dev/null; exit 0' TERM
  sleep "${SMTP_IT_LIMIT:-110}" & sp=$!
  wait "$sp" && { echo "it_smtp: time limit reached" >&2; kill -TERM $$; }
) 2>/dev/null &
WATCHDOG=$!
trap 'kill "$WATCHDOG" 2>/dev/null; smtp_stop_all; knot_stop; rm -rf "$TMP"' EXIT

if ! smtp_init "$TMP/smtp"; then
  fail "smtp peers" "smtp-sink, /usr/bin/python3 with aiosmtpd, openssl" "missing"
  harness_end
  exit 1
fi
PORT=$SMTP_PORT
RUN_TIMEOUT=20

# expect_file_jq NAME FILE FILTER
expect_file_jq() {
  local got
  if [ -s "$2" ] && got=$(jq -e "$3" "$2" 2>&1); then pass "$1"; else
    fail "$1" "jq on $2: $3" "$(head -c 300 "$2" 2>/dev/null) ${got:-}"; fi
}

# ------------------------------------------------------------ certificates
PKI=$TMP/pki
if ! smtp_make_certs "$PKI" mx.tls.smtp.test mx.tlsonly.smtp.test; then
  fail "certificates" "openssl made a CA and a server certificate" "error"
fi

# ------------------------------------------------------------------ peers
# Address plan (every peer listens on $PORT):
#   .2 backup store  .3 mixed-RCPT store  .4 store without 8BITMIME
#   .5 STARTTLS store  .6 STARTTLS-required store  .7 store refusing EHLO
#   .8 .9 tie sinks  .10-.24 scripted smtp-sinks  .30 silent  .31 drop-data
#   .32 multi-line greeting  .33 store without SMTPUTF8  .34 endless greeting
#   .35 .36 .37 malformed greetings (no code, a 5000-octet line, two codes)
#   .38 answers EHLO with 354 (a positive reply where none belongs)
#   .39 STARTTLS with a reply injected in clear behind its 220
#   .40 .41 closed (nothing listens)
started=1
start() { "$@" || started=0; }
start smtp_peer backup 127.0.0.2 store
start smtp_peer mixed 127.0.0.3 store \
  --reject-rcpt bad@mixed.smtp.test=550 --defer-rcpt slow@mixed.smtp.test=451
start smtp_peer no8bit 127.0.0.4 store --no-8bitmime
start smtp_peer tls 127.0.0.5 store --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key"
start smtp_peer tlsonly 127.0.0.6 store --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" --require-tls
start smtp_peer helo 127.0.0.7 store --no-ehlo 502
start smtp_peer silent 127.0.0.30 silent
start smtp_peer dropdata 127.0.0.31 drop-data --after 1
start smtp_peer multiline 127.0.0.32 multiline
start smtp_peer noutf8 127.0.0.33 store --no-smtputf8
start smtp_peer trickle 127.0.0.34 trickle
start smtp_peer nocode 127.0.0.35 odd --greeting "hello, I am not SMTP"
start smtp_peer longline 127.0.0.36 odd --greeting "220-$(printf '%5000s' | tr ' ' x)" --greeting "220 ok"
start smtp_peer mixcode 127.0.0.37 odd --greeting "220-first line" --greeting "554 second line"
start smtp_peer ehlo354 127.0.0.38 odd --ehlo-code 354
start smtp_peer inject 127.0.0.39 odd --tls-cert "$PKI/server.pem" --tls-key "$PKI/server.key" \
  --inject "250 2.5.0 injected in clear"
start smtp_sink tie-a 127.0.0.8
start smtp_sink tie-b 127.0.0.9
start smtp_sink greet5 127.0.0.10 -f CONNECT
start smtp_sink greet4 127.0.0.11 -r CONNECT
start smtp_sink ehlo4 127.0.0.12 -r EHLO
start smtp_sink mail5 127.0.0.13 -f MAIL
start smtp_sink mail4 127.0.0.14 -r MAIL
start smtp_sink rcpt5 127.0.0.15 -f RCPT
start smtp_sink rcpt4 127.0.0.16 -r RCPT
start smtp_sink data5 127.0.0.17 -f DATA
start smtp_sink data4 127.0.0.18 -r DATA
start smtp_sink dot5 127.0.0.19 -f .
start smtp_sink dot4 127.0.0.20 -r .
start smtp_sink q421 127.0.0.21 -Q MAIL
start smtp_sink ehlo5 127.0.0.22 -f EHLO
start smtp_sink greet421 127.0.0.23 -Q CONNECT
start smtp_sink dropdot 127.0.0.24 -q .
if [ $started = 1 ]; then pass "peers listen on 127.0.0.x:$PORT"; else
  fail "peers listen on 127.0.0.x:$PORT" "every peer started" "see stderr above"; fi

# ------------------------------------------------------------------- zone
ZONE=$TMP/smtp.test.zone
smtp_zone "$ZONE" smtp.test <<'EOF'
backup		A	127.0.0.2
plain		MX	10 backup
mx.mixed	A	127.0.0.3
mixed		MX	10 mx.mixed
mx.no8bit	A	127.0.0.4
no8bit		MX	10 mx.no8bit
mx.noutf8	A	127.0.0.33
mx.trickle	A	127.0.0.34
mx.nocode	A	127.0.0.35
nocode		MX	10 mx.nocode
nocode		MX	20 backup
mx.longline	A	127.0.0.36
longline	MX	10 mx.longline
longline	MX	20 backup
mx.mixcode	A	127.0.0.37
mixcode		MX	10 mx.mixcode
mixcode		MX	20 backup
mx.ehlo354	A	127.0.0.38
ehlo354		MX	10 mx.ehlo354
ehlo354		MX	20 backup
mx.inject	A	127.0.0.39
inject		MX	10 mx.inject
trickle		MX	10 mx.trickle
trickle		MX	20 backup
noutf8		MX	10 mx.noutf8
mx.tls		A	127.0.0.5
tls		MX	10 mx.tls
mx.wrongname	A	127.0.0.5
wrongname	MX	10 mx.wrongname
tlsreq		MX	10 backup
tlsreq		MX	20 mx.tls
mx.tlsonly	A	127.0.0.6
tlsonly		MX	10 mx.tlsonly
mx.helo		A	127.0.0.7
helo		MX	10 mx.helo
mx-a.tie	A	127.0.0.8
mx-b.tie	A	127.0.0.9
tie		MX	10 mx-a.tie
tie		MX	10 mx-b.tie
mx.greet5	A	127.0.0.10
greet5		MX	10 mx.greet5
greet5		MX	20 backup
mx.greet4	A	127.0.0.11
greet4		MX	10 mx.greet4
greet4		MX	20 backup
mx.ehlo4	A	127.0.0.12
ehlo4		MX	10 mx.ehlo4
ehlo4		MX	20 backup
mx.mail5	A	127.0.0.13
mail5		MX	10 mx.mail5
mail5		MX	20 backup
mx.mail4	A	127.0.0.14
mail4		MX	10 mx.mail4
mail4		MX	20 backup
mail4only	MX	10 mx.mail4
mx.rcpt5	A	127.0.0.15
rcpt5		MX	10 mx.rcpt5
rcpt5		MX	20 backup
mx.rcpt4	A	127.0.0.16
rcpt4		MX	10 mx.rcpt4
rcpt4		MX	20 backup
rcpt4only	MX	10 mx.rcpt4
mx.data5	A	127.0.0.17
data5		MX	10 mx.data5
data5		MX	20 backup
mx.data4	A	127.0.0.18
data4		MX	10 mx.data4
data4		MX	20 backup
mx.dot5		A	127.0.0.19
dot5		MX	10 mx.dot5
dot5		MX	20 backup
mx.dot4		A	127.0.0.20
dot4		MX	10 mx.dot4
dot4		MX	20 backup
dot4only	MX	10 mx.dot4
mx.q421		A	127.0.0.21
q421		MX	10 mx.q421
q421		MX	20 backup
mx.ehlo5	A	127.0.0.22
ehlo5		MX	10 mx.ehlo5
mx.greet421	A	127.0.0.23
greet421	MX	10 mx.greet421
greet421	MX	20 backup
mx.dropdot	A	127.0.0.24
dropdot		MX	10 mx.dropdot
dropdot		MX	20 backup
mx.silent	A	127.0.0.30
silent		MX	10 mx.silent
silent		MX	20 backup
mx.dropdata	A	127.0.0.31
dropdata	MX	10 mx.dropdata
dropdata	MX	20 backup
dropdataonly	MX	10 mx.dropdata
mx.multiline	A	127.0.0.32
multiline	MX	10 mx.multiline
mx.refused	A	127.0.0.40
mx.refused	A	127.0.0.41
refused		MX	10 mx.refused
refused		MX	20 backup
last4		MX	10 mx.refused
last4		MX	20 mx.rcpt4
mx1.failover	A	127.0.0.40
mx2.failover	A	127.0.0.2
failover	MX	10 mx1.failover
failover	MX	20 mx2.failover
EOF
O=(--zone "$ZONE" --allow-loopback --port "$PORT" --timeout 2000)
FROM=sender@client.test

# ---------------------------------------------------------------- messages
M=$TMP/msg
mkdir -p "$M"
# CRLF, with lines that must be dot-stuffed: ".x", "..x" and a lone ".".
printf 'From: <sender@client.test>\r\nTo: <rcpt@plain.smtp.test>\r\nSubject: crlf\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\n\r\n. dot space\r\nlast line\r\n' >"$M/crlf.eml"
tr -d '\r' <"$M/crlf.eml" >"$M/lf.eml"
printf 'Subject: no final newline\r\n\r\nbody\r\nno newline at the end' >"$M/nonl.eml"
printf 'Subject: no final newline\r\n\r\nbody\r\nno newline at the end\r\n' >"$M/nonl.want"
printf 'Subject: caf\303\251\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\303\251t\303\251 \342\202\254 \377\r\n.\303\251\r\n' >"$M/8bit.eml"
# About 300 KB, many dot lines: several partial writes on a non-blocking socket.
awk 'BEGIN { printf "Subject: big\r\n\r\n"; for (i = 0; i < 6000; i++) {
       if (i % 3 == 0) printf ".%05d dotted line of some length to fill the socket buffer\r\n", i;
       else if (i % 7 == 0) printf ".\r\n";
       else printf "%05d plain line of some length to fill the socket buffer .\r\n", i } }' >"$M/big.eml"

# stored_equals NAME PEER RCPT WANTFILE: exactly one message for RCPT at
# PEER, byte for byte WANTFILE.
stored_equals() {
  local name=$1 peer=$2 rcpt=$3 want=$4 found n
  found=$(smtp_find "$peer" "$rcpt")
  n=$(printf '%s' "$found" | grep -c .)
  if [ "$n" != 1 ]; then
    fail "$name" "one message for $rcpt at $peer" "$n"
    return
  fi
  if cmp -s "$found.eml" "$want"; then pass "$name"; else
    fail "$name" "stored bytes == $(basename "$want") ($(wc -c <"$want") bytes)" \
      "$(wc -c <"$found.eml") bytes; first difference: $(cmp "$found.eml" "$want" 2>&1 | head -1)"
  fi
}
# stored_count NAME PEER RCPT N
stored_count() {
  local n
  n=$(smtp_find "$2" "$3" | grep -c .)
  if [ "$n" = "$4" ]; then pass "$1"; else fail "$1" "$4 message(s) for $3 at $2" "$n"; fi
}
# the stored envelope of the only message for RCPT at PEER
stored_meta() { local f; f=$(smtp_find "$1" "$2" | head -1); [ -n "$f" ] && echo "$f.json" || echo /nonexistent; }

NEXT='IN("next-address","next-host")'

# ===================================================== probe: the basics
run probe --json "${O[@]}" plain.smtp.test
expect_rc "probe plain" 0
expect_jq "probe plain: accepted by backup.smtp.test on 127.0.0.2:$PORT" \
  '.verdict == "accepted" and .host == "backup.smtp.test" and .address == "127.0.0.2" and .port == '"$PORT"
expect_jq "probe plain: a DOMAIN probes postmaster@DOMAIN with the null sender" \
  '.input == "plain.smtp.test" and .domain == "plain.smtp.test"
   and (.sender | IN("", "<>")) and .recipients[0].address == "postmaster@plain.smtp.test"
   and .recipients[0].state == "accepted"'
expect_jq "probe plain: one attempt, ended at rcpt/ok" \
  '(.attempts | length) == 1 and .attempts[0].hop == 1 and .attempts[0].host == "backup.smtp.test"
   and .attempts[0].address == "127.0.0.2" and .attempts[0].port == '"$PORT"'
   and .attempts[0].preference == 10 and .attempts[0].stage == "rcpt"
   and .attempts[0].class == "ok" and .attempts[0].code == 250 and .attempts[0].tls == false
   and (.attempts[0].rcpts | length) == 1 and .attempts[0].rcpts[0].code == 250'
# The server saw MAIL FROM:<>, RCPT postmaster, QUIT and no DATA.
sess=$(smtp_events backup rcpt | jq -r 'select(.arg.address == "postmaster@plain.smtp.test") | .peer' | tail -1)
if [ -n "$sess" ] &&
   jq -e --arg p "$sess" -s '[.[] | select(.peer == $p)] as $s
      | any($s[]; .event == "mail" and .arg.address == "")
      and any($s[]; .event == "quit") and all($s[]; .event != "data")' \
      "$SMTP_DIR/backup.log" >/dev/null; then
  pass "probe: MAIL FROM:<>, RCPT, QUIT, no DATA on the wire"
else
  fail "probe: MAIL FROM:<>, RCPT, QUIT, no DATA on the wire" "session events" \
    "$(jq -c --arg p "$sess" 'select(.peer == $p) | [.event, .arg]' "$SMTP_DIR/backup.log" | tr '\n' ' ' | head -c 600)"
fi

run probe --json "${O[@]}" --from probe@client.test --helo probe-helo.client.test User@plain.smtp.test
expect_rc "probe an address with --from and --helo" 0
expect_jq "probe address: input and recipient kept" \
  '.input == "User@plain.smtp.test" and .recipients[0].address == "User@plain.smtp.test"
   and .sender == "probe@client.test" and .verdict == "accepted"'
if smtp_events backup ehlo | jq -e -s 'any(.[]; .arg == "probe-helo.client.test")' >/dev/null &&
   smtp_events backup mail | jq -e -s 'any(.[]; .arg.address == "probe@client.test")' >/dev/null; then
  pass "probe: --helo and --from reach the server"
else
  fail "probe: --helo and --from reach the server" "EHLO probe-helo.client.test, MAIL FROM:<probe@client.test>" \
    "$(tail -c 600 "$SMTP_DIR/backup.log")"
fi

run probe "${O[@]}" plain.smtp.test
expect_rc "probe text" 0
grep -q 'backup.smtp.test' "$OUT" && pass "probe text names the accepting host" ||
  fail "probe text names the accepting host" "backup.smtp.test" "$(head -c 300 "$OUT")"

# ============================================ smtp-sink: stage by stage
# probe_case NAME DOMAIN RC JQ: probe DOMAIN --json, exit RC, JQ holds.
probe_case() {
  local name=$1 dom=$2 rc=$3 jqf=$4
  shift 4
  run probe --json "${O[@]}" "$@" "$dom"
  expect_rc "$name" "$rc"
  expect_jq "$name: attempts and verdict" "$jqf"
}
a0='.attempts[0]'
ok_on_backup='.verdict == "accepted" and .host == "backup.smtp.test" and .attempts[-1].host == "backup.smtp.test"
  and .attempts[-1].stage == "rcpt" and .attempts[-1].class == "ok" and .attempts[-1].action != null'

probe_case "greeting 5xx on the primary -> backup" greet5.smtp.test 0 \
  "$a0.host == \"mx.greet5.smtp.test\" and $a0.stage == \"greeting\" and $a0.class == \"5xx\"
   and $a0.code == 500 and $a0.action == \"next-host\" and (.attempts | length) == 2 and $ok_on_backup"
expect_jq "greeting 5xx: hops numbered, backup preference 20" \
  '[.attempts[].hop] == [1, 2] and .attempts[1].preference == 20 and .attempts[0].preference == 10'
probe_case "greeting 4xx on the primary -> backup" greet4.smtp.test 0 \
  "$a0.stage == \"greeting\" and $a0.class == \"4xx\" and $a0.code == 450
   and $a0.action == \"next-host\" and $ok_on_backup"
probe_case "greeting 421 -> next address/host" greet421.smtp.test 0 \
  "$a0.stage == \"greeting\" and $a0.class == \"421\" and $a0.code == 421 and ($a0.action | $NEXT) and $ok_on_backup"
probe_case "EHLO 4xx -> next host" ehlo4.smtp.test 0 \
  "$a0.stage == \"ehlo\" and $a0.class == \"4xx\" and $a0.code == 450 and $a0.action == \"next-host\" and $ok_on_backup"
probe_case "EHLO 5xx -> HELO fallback on the same host" ehlo5.smtp.test 0 \
  "(.attempts | length) == 1 and .host == \"mx.ehlo5.smtp.test\" and $a0.stage == \"rcpt\" and $a0.class == \"ok\""
probe_case "MAIL 5xx -> bounce (backup not tried)" mail5.smtp.test 68 \
  "(.attempts | length) == 1 and $a0.stage == \"mail\" and $a0.class == \"5xx\" and $a0.code == 500
   and $a0.action == \"bounce\" and .verdict == \"bounce\" and .host == null
   and .recipients[0].state == \"bounced\" and .recipients[0].code == 500"
probe_case "MAIL 4xx with a backup -> next host" mail4.smtp.test 0 \
  "$a0.stage == \"mail\" and $a0.class == \"4xx\" and $a0.action == \"next-host\" and $ok_on_backup"
probe_case "MAIL 4xx on the only host -> defer" mail4only.smtp.test 75 \
  "(.attempts | length) == 1 and $a0.stage == \"mail\" and $a0.class == \"4xx\" and $a0.action == \"defer\"
   and .verdict == \"defer\" and .recipients[0].state == \"deferred\" and .recipients[0].code == 450"
probe_case "MAIL 421 -> next address/host" q421.smtp.test 0 \
  "$a0.stage == \"mail\" and $a0.class == \"421\" and ($a0.action | $NEXT) and $ok_on_backup"
# When no recipient was accepted, the session ended on the RCPT replies:
# the attempt carries the class and code of the (last) RCPT reply.
no_rcpt_class() { # NAME ATTEMPT-PATH CLASS CODE
  expect_jq "$1: attempt class $3, code $4 (no recipient accepted)" \
    "$2.stage == \"rcpt\" and $2.class == \"$3\" and $2.code == $4"
}
probe_case "RCPT 5xx -> the recipient bounces" rcpt5.smtp.test 68 \
  "(.attempts | length) == 1 and $a0.stage == \"rcpt\" and $a0.action == \"bounce\"
   and $a0.rcpts[0].code == 500 and .verdict == \"bounce\" and .host == null
   and .recipients[0].state == \"bounced\" and .recipients[0].code == 500
   and .recipients[0].enhanced == \"5.3.0\""
no_rcpt_class "RCPT 5xx" "$a0" 5xx 500
probe_case "RCPT 4xx with a backup -> next host" rcpt4.smtp.test 0 \
  "$a0.stage == \"rcpt\" and $a0.rcpts[0].code == 450 and $a0.action == \"next-host\" and $ok_on_backup"
no_rcpt_class "RCPT 4xx with a backup" "$a0" 4xx 450
probe_case "RCPT 4xx on the only host -> defer" rcpt4only.smtp.test 75 \
  "(.attempts | length) == 1 and $a0.stage == \"rcpt\" and $a0.rcpts[0].code == 450 and $a0.action == \"defer\"
   and .verdict == \"defer\" and .recipients[0].state == \"deferred\" and .recipients[0].code == 450"
no_rcpt_class "RCPT 4xx on the only host" "$a0" 4xx 450
probe_case "4xx on the last host -> deferred" last4.smtp.test 75 \
  ".verdict == \"defer\" and (.attempts | length) == 3
   and .attempts[0].class == \"refused\" and .attempts[1].class == \"refused\"
   and .attempts[2].host == \"mx.rcpt4.smtp.test\" and .attempts[2].stage == \"rcpt\"
   and .attempts[2].rcpts[0].code == 450 and .attempts[2].action == \"defer\"
   and .recipients[0].state == \"deferred\""
no_rcpt_class "4xx on the last host" ".attempts[2]" 4xx 450

# =========================================== closed port, silent listener
probe_case "closed port: refused -> next address, then next host" refused.smtp.test 0 \
  "(.attempts | length) == 3
   and ([.attempts[0,1] | .host] == [\"mx.refused.smtp.test\", \"mx.refused.smtp.test\"])
   and ([.attempts[0,1] | .address] | sort) == [\"127.0.0.40\", \"127.0.0.41\"]
   and all(.attempts[0,1]; .stage == \"connect\" and .class == \"refused\" and .code == 0)
   and .attempts[0].action == \"next-address\" and (.attempts[1].action | $NEXT) and $ok_on_backup"
t0=$(date +%s%N)
probe_case "silent listener: timeout at greeting -> next host" silent.smtp.test 0 \
  "$a0.host == \"mx.silent.smtp.test\" and $a0.stage == \"greeting\" and $a0.class == \"timeout\"
   and ($a0.action | $NEXT) and $ok_on_backup"
# Not a speed check: the session must not give up before its timeout (an
# upper bound is the harness's hang guard, RUN_TIMEOUT).
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -ge 1500 ]; then pass "silent listener: waited for --timeout 2000 (${ms} ms)"; else
  fail "silent listener: waited for --timeout 2000" ">= 1500 ms" "$ms ms"; fi
# Bytes that keep coming do not keep a reply alive: the greeting's
# deadline holds (without it, this would run into the hang guard).
probe_case "endless greeting: timeout at greeting -> next host" trickle.smtp.test 0 \
  "$a0.host == \"mx.trickle.smtp.test\" and $a0.stage == \"greeting\" and $a0.class == \"timeout\"
   and ($a0.action | $NEXT) and $ok_on_backup"

# A server that does not speak SMTP properly is a broken connection to
# that host (class reset, a clear reason), never a crash: the backup
# takes the mail.
for g in "nocode:malformed reply" "longline:reply line too long" "mixcode:different codes"; do
  dom=${g%%:*} why=${g#*:}
  probe_case "malformed greeting ($dom) -> next host" $dom.smtp.test 0 \
    "$a0.host == \"mx.$dom.smtp.test\" and $a0.stage == \"greeting\" and $a0.class == \"reset\"
     and ($a0.reply | contains(\"$why\")) and ($a0.action | $NEXT) and $ok_on_backup"
done

# RFC 3207 4.2: what came in clear behind the 220 to STARTTLS is dropped;
# taken as the reply to the EHLO sent over TLS, every later reply would
# answer the command before it (RCPT would get MAIL's 2.1.0).
probe_case "STARTTLS with a reply injected in clear: ignored" inject.smtp.test 0 \
  "$a0.tls == true and $a0.stage == \"rcpt\" and $a0.class == \"ok\"
   and $a0.rcpts[0].enhanced == \"2.1.5\" and .verdict == \"accepted\""
probe_case "354 to EHLO: a protocol error, not progress -> next host" ehlo354.smtp.test 0 \
  "$a0.host == \"mx.ehlo354.smtp.test\" and $a0.stage == \"ehlo\" and $a0.class == \"reset\"
   and $a0.code == 354 and ($a0.reply | contains(\"unexpected reply\")) and $ok_on_backup"

# The seed articles' check: disable the primary, send a test message, see
# that the backup receives it -- one command.
run send --json "${O[@]}" --from "$FROM" --to check@failover.smtp.test "$M/crlf.eml"
expect_rc "primary down -> backup receives (send)" 0
expect_jq "primary down: refused on mx1, delivered by mx2" \
  '.verdict == "delivered" and .domains[0].domain == "failover.smtp.test"
   and .domains[0].attempts[0].host == "mx1.failover.smtp.test"
   and .domains[0].attempts[0].class == "refused"
   and .domains[0].attempts[-1].host == "mx2.failover.smtp.test"
   and .domains[0].attempts[-1].action == "delivered"
   and .recipients[0].state == "delivered" and .recipients[0].host == "mx2.failover.smtp.test"'
stored_equals "primary down: the backup stored the message" backup check@failover.smtp.test "$M/crlf.eml"
run probe "${O[@]}" failover.smtp.test
expect_rc "primary down -> backup accepts (probe, text)" 0
grep -q 'mx2.failover.smtp.test' "$OUT" && pass "probe text names the backup" ||
  fail "probe text names the backup" "mx2.failover.smtp.test" "$(head -c 300 "$OUT")"

# ============================================== tie: both hosts get firsts
a=0 b=0 other=0
for seed in $(seq 1 40); do
  run probe --json "${O[@]}" --seed "$seed" tie.smtp.test
  case $(jq -r '.attempts[0].host // empty' "$OUT" 2>/dev/null) in
    mx-a.tie.smtp.test) a=$((a + 1)) ;;
    mx-b.tie.smtp.test) b=$((b + 1)) ;;
    *) other=$((other + 1)) ;;
  esac
done
if [ $a -ge 5 ] && [ $b -ge 5 ] && [ $other = 0 ]; then
  pass "tie: both MX 10 hosts first over 40 seeds (a=$a b=$b)"
else
  fail "tie: both MX 10 hosts first over 40 seeds" "a>=5, b>=5, no failed probe" "a=$a b=$b failed=$other"
fi

# ================================================= send: byte-exact data
send_case() { # NAME RCPT FILE [OPTIONS...]
  local name=$1 rcpt=$2 file=$3
  shift 3
  run send --json "${O[@]}" --from "$FROM" --to "$rcpt" "$@" "$file"
  expect_rc "$name" 0
  expect_jq "$name: delivered" \
    '.verdict == "delivered" and .recipients[0].state == "delivered"
     and .recipients[0].address == "'"$rcpt"'" and .recipients[0].code == 250'
}
send_case "send CRLF file" crlf@plain.smtp.test "$M/crlf.eml"
stored_equals "CRLF file stored byte for byte (dot lines stuffed and restored)" backup crlf@plain.smtp.test "$M/crlf.eml"
expect_jq "send: one domain, one attempt, delivered by backup.smtp.test" \
  '.sender == "sender@client.test" and (.domains | length) == 1
   and .domains[0].verdict == "delivered" and (.domains[0].attempts | length) == 1
   and .domains[0].attempts[0].stage == "dot" and .domains[0].attempts[0].class == "ok"
   and .domains[0].attempts[0].action == "delivered" and .recipients[0].host == "backup.smtp.test"'
expect_file_jq "send: envelope sender and recipient" "$(stored_meta backup crlf@plain.smtp.test)" \
  '.mail_from == "sender@client.test" and .rcpt_tos == ["crlf@plain.smtp.test"] and .extended'
send_case "send LF-only file" lf@plain.smtp.test "$M/lf.eml"
stored_equals "LF-only input normalised to CRLF" backup lf@plain.smtp.test "$M/crlf.eml"
send_case "send file without a final newline" nonl@plain.smtp.test "$M/nonl.eml"
stored_equals "final line without newline gets CRLF" backup nonl@plain.smtp.test "$M/nonl.want"
run_stdin "$M/crlf.eml" send --json "${O[@]}" --from "$FROM" --to stdin@plain.smtp.test -
expect_rc "send from stdin (-)" 0
stored_equals "stdin message stored byte for byte" backup stdin@plain.smtp.test "$M/crlf.eml"
send_case "send a 300 KB message" big@plain.smtp.test "$M/big.eml"
stored_equals "300 KB message with many dot lines stored byte for byte" backup big@plain.smtp.test "$M/big.eml"
send_case "send 8-bit body, 8BITMIME offered" 8bit@plain.smtp.test "$M/8bit.eml"
stored_equals "8-bit body stored byte for byte" backup 8bit@plain.smtp.test "$M/8bit.eml"
expect_file_jq "8-bit body: MAIL ... BODY=8BITMIME" "$(stored_meta backup 8bit@plain.smtp.test)" \
  'any(.mail_options[]; . == "BODY=8BITMIME")'
send_case "send 8-bit body, 8BITMIME not offered" 8bit@no8bit.smtp.test "$M/8bit.eml"
expect_file_jq "no 8BITMIME offered: no BODY=8BITMIME parameter" "$(stored_meta no8bit 8bit@no8bit.smtp.test)" \
  'all(.mail_options[]; startswith("BODY=8BITMIME") | not)'
U8=$'j\303\266ran'
send_case "send to a UTF-8 local part, SMTPUTF8 offered" "$U8@plain.smtp.test" "$M/crlf.eml"
expect_file_jq "UTF-8 address: MAIL ... SMTPUTF8, recipient as given" "$(stored_meta backup "$U8@plain.smtp.test")" \
  'any(.mail_options[]; . == "SMTPUTF8") and .rcpt_tos == ["'"$U8"'@plain.smtp.test"]'
run send --json "${O[@]}" --from "$FROM" --to "$U8@noutf8.smtp.test" "$M/crlf.eml"
expect_rc "UTF-8 address, SMTPUTF8 not offered: bounce (RFC 6531, no downgrade)" 68
expect_jq "no SMTPUTF8: bounced at MAIL with 5.6.7, nothing stored" \
  '.recipients[0].state == "bounced" and .recipients[0].enhanced == "5.6.7"
   and .domains[0].attempts[0].stage == "mail" and .domains[0].attempts[0].class == "5xx"'
if [ "$(smtp_count noutf8)" = 0 ]; then pass "no SMTPUTF8: the server stored nothing"; else
  fail "no SMTPUTF8: the server stored nothing" 0 "$(smtp_count noutf8)"; fi
send_case "send through a three-line greeting" ml@multiline.smtp.test "$M/crlf.eml"
stored_equals "multi-line greeting: stored byte for byte" multiline ml@multiline.smtp.test "$M/crlf.eml"
send_case "send to a server refusing EHLO (HELO fallback)" h@helo.smtp.test "$M/crlf.eml"
stored_equals "HELO fallback: stored byte for byte" helo h@helo.smtp.test "$M/crlf.eml"
expect_file_jq "HELO fallback: HELO session, no MAIL parameters" "$(stored_meta helo h@helo.smtp.test)" \
  '.extended == false and .mail_options == []'

# ======================================== send: DATA and end-of-data
run send --json "${O[@]}" --from "$FROM" --to d5@data5.smtp.test "$M/crlf.eml"
expect_rc "DATA 5xx -> bounce" 68
expect_jq "DATA 5xx: stage data, class 5xx, bounce; backup not tried" \
  '.verdict == "bounce" and (.domains[0].attempts | length) == 1
   and .domains[0].attempts[0].stage == "data" and .domains[0].attempts[0].class == "5xx"
   and .domains[0].attempts[0].action == "bounce" and .recipients[0].state == "bounced"
   and .recipients[0].code == 500'
stored_count "DATA 5xx: nothing at the backup" backup d5@data5.smtp.test 0
run send --json "${O[@]}" --from "$FROM" --to d4@data4.smtp.test "$M/crlf.eml"
expect_rc "DATA 4xx with a backup -> next host" 0
expect_jq "DATA 4xx: stage data, class 4xx, next-host; delivered by the backup" \
  '.domains[0].attempts[0].stage == "data" and .domains[0].attempts[0].class == "4xx"
   and .domains[0].attempts[0].action == "next-host" and .verdict == "delivered"
   and .recipients[0].host == "backup.smtp.test"'
stored_equals "DATA 4xx: the backup stored it" backup d4@data4.smtp.test "$M/crlf.eml"
run send --json "${O[@]}" --from "$FROM" --to e5@dot5.smtp.test "$M/crlf.eml"
expect_rc "end-of-data 5xx -> bounce" 68
expect_jq "end-of-data 5xx: stage dot, class 5xx, bounce" \
  '.verdict == "bounce" and (.domains[0].attempts | length) == 1
   and .domains[0].attempts[0].stage == "dot" and .domains[0].attempts[0].class == "5xx"
   and .domains[0].attempts[0].action == "bounce" and .recipients[0].state == "bounced"'
stored_count "end-of-data 5xx: nothing at the backup" backup e5@dot5.smtp.test 0
run send --json "${O[@]}" --from "$FROM" --to e4@dot4.smtp.test "$M/crlf.eml"
expect_rc "end-of-data 4xx with a backup -> next host" 0
expect_jq "end-of-data 4xx: stage dot, class 4xx, next-host; delivered by the backup" \
  '.domains[0].attempts[0].stage == "dot" and .domains[0].attempts[0].class == "4xx"
   and .domains[0].attempts[0].action == "next-host" and .recipients[0].state == "delivered"
   and .recipients[0].host == "backup.smtp.test"'
stored_count "end-of-data 4xx: exactly one copy at the backup" backup e4@dot4.smtp.test 1
run send --json "${O[@]}" --from "$FROM" --to e4@dot4only.smtp.test "$M/crlf.eml"
expect_rc "end-of-data 4xx on the only host -> defer" 75
expect_jq "end-of-data 4xx on the only host: deferred with the reply" \
  '.verdict == "defer" and .domains[0].attempts[0].action == "defer"
   and .recipients[0].state == "deferred" and .recipients[0].code == 450'
run send --json "${O[@]}" --from "$FROM" --to r@last4.smtp.test "$M/crlf.eml"
expect_rc "send: 4xx on the last host -> deferred" 75
expect_jq "send: 4xx on the last host: recipient deferred" \
  '.verdict == "defer" and .recipients[0].state == "deferred" and .recipients[0].code == 450
   and .domains[0].attempts[-1].rcpts[0].code == 450 and .domains[0].attempts[-1].action == "defer"'

# ============================================ connection lost mid-DATA
run send --json "${O[@]}" --from "$FROM" --to mid@dropdata.smtp.test "$M/big.eml"
expect_rc "dropped mid-DATA with a backup -> delivered by the backup" 0
expect_jq "dropped mid-DATA: not counted delivered there; next address/host" \
  '.domains[0].attempts[0].host == "mx.dropdata.smtp.test"
   and (.domains[0].attempts[0].stage | IN("data", "dot"))
   and .domains[0].attempts[0].class == "reset" and (.domains[0].attempts[0].action | '"$NEXT"')
   and .recipients[0].state == "delivered" and .recipients[0].host == "backup.smtp.test"'
stored_equals "dropped mid-DATA: one whole copy at the backup" backup mid@dropdata.smtp.test "$M/big.eml"
if smtp_events dropdata drop | grep -q .; then pass "drop-data peer dropped the connection"; else
  fail "drop-data peer dropped the connection" "a drop event" "$(tail -c 300 "$SMTP_DIR/dropdata.log")"; fi
run send --json "${O[@]}" --from "$FROM" --to mid@dropdataonly.smtp.test "$M/crlf.eml"
expect_rc "dropped mid-DATA on the only host -> defer" 75
expect_jq "dropped mid-DATA on the only host: deferred, not delivered" \
  '.verdict == "defer" and .recipients[0].state == "deferred"
   and .domains[0].attempts[0].class == "reset"'
run send --json "${O[@]}" --from "$FROM" --to dd@dropdot.smtp.test "$M/crlf.eml"
expect_rc "closed after the final dot, no reply -> backup" 0
expect_jq "closed after the final dot: stage dot, reset; delivered by the backup" \
  '.domains[0].attempts[0].stage == "dot" and .domains[0].attempts[0].class == "reset"
   and .recipients[0].host == "backup.smtp.test"'

# ================================================ mixed RCPT, one session
run send --json "${O[@]}" --from "$FROM" \
  --to ok1@mixed.smtp.test --to bad@mixed.smtp.test --to slow@mixed.smtp.test "$M/crlf.eml"
expect_rc "mixed RCPT 250 + 550 + 451 -> some deferred" 75
expect_jq "mixed RCPT: delivered, bounced, deferred; none lost" \
  '(.recipients | length) == 3
   and (.recipients | map({(.address): .state}) | add)
       == {"ok1@mixed.smtp.test": "delivered", "bad@mixed.smtp.test": "bounced", "slow@mixed.smtp.test": "deferred"}
   and (.recipients[] | select(.address == "bad@mixed.smtp.test") | .code == 550 and .enhanced == "5.1.1")
   and (.recipients[] | select(.address == "slow@mixed.smtp.test") | .code == 451)
   and .verdict == "defer"'
expect_jq "mixed RCPT: one session with the three RCPT replies" \
  '(.domains | length) == 1 and (.domains[0].attempts | length) == 1
   and ([.domains[0].attempts[0].rcpts[].code] | sort) == [250, 451, 550]'
expect_file_jq "mixed RCPT: the stored envelope has exactly the accepted one" \
  "$(stored_meta mixed ok1@mixed.smtp.test)" '.rcpt_tos == ["ok1@mixed.smtp.test"]'
stored_equals "mixed RCPT: stored byte for byte" mixed ok1@mixed.smtp.test "$M/crlf.eml"
run send --json "${O[@]}" --from "$FROM" --to ok2@mixed.smtp.test --to bad@mixed.smtp.test "$M/crlf.eml"
expect_rc "mixed RCPT 250 + 550 -> some bounced" 68
expect_jq "mixed RCPT 250 + 550: delivered and bounced" \
  '(.recipients | map({(.address): .state}) | add)
     == {"ok2@mixed.smtp.test": "delivered", "bad@mixed.smtp.test": "bounced"} and .verdict == "bounce"'
expect_file_jq "mixed RCPT 250 + 550: envelope" "$(stored_meta mixed ok2@mixed.smtp.test)" \
  '.rcpt_tos == ["ok2@mixed.smtp.test"]'
n_before=$(smtp_count mixed)
run send --json "${O[@]}" --from "$FROM" --to bad@mixed.smtp.test --to slow@mixed.smtp.test "$M/crlf.eml"
expect_rc "no recipient accepted -> deferred (one 451)" 75
expect_jq "no recipient accepted: bounced + deferred" \
  '(.recipients | map({(.address): .state}) | add)
     == {"bad@mixed.smtp.test": "bounced", "slow@mixed.smtp.test": "deferred"}'
[ "$(smtp_count mixed)" = "$n_before" ] && pass "no recipient accepted: no message stored" ||
  fail "no recipient accepted: no message stored" "$n_before messages" "$(smtp_count mixed)"
run probe --json "${O[@]}" bad@mixed.smtp.test
expect_rc "probe a rejected recipient" 68
run probe --json "${O[@]}" slow@mixed.smtp.test
expect_rc "probe a deferred recipient" 75
run send --json "${O[@]}" --from "$FROM" --to two@plain.smtp.test --to ok3@mixed.smtp.test "$M/crlf.eml"
expect_rc "send to two domains" 0
expect_jq "two domains: grouped, both delivered" \
  '(.domains | length) == 2 and ([.domains[].domain] | sort) == ["mixed.smtp.test", "plain.smtp.test"]
   and all(.domains[]; .verdict == "delivered") and all(.recipients[]; .state == "delivered")'
stored_count "two domains: one copy at each" backup two@plain.smtp.test 1
stored_count "two domains: one copy at each (mixed)" mixed ok3@mixed.smtp.test 1

# ================ issue 15: each recipient reports the server's own reply
# A probe reports the RCPT reply that accepted the recipient (its code,
# enhanced code and text as the server sent them), not the internal end
# of the RCPT phase; a send reports a delivered recipient with the
# end-of-data reply and a refused one with its own RCPT reply. The wanted
# replies are read from the peer's log, not written here.
# peer_reply PEER EVENT ADDR: the reply PEER logged last for ADDR at EVENT.
peer_reply() {
  smtp_events "$1" "$2" | jq -r --arg a "$3" 'select(.arg.address == $a) | .arg.reply' | tail -1
}
# jstr TEXT: TEXT as a JSON string literal, for a jq filter.
jstr() { jq -Rn --arg s "$1" '$s'; }
# expect_line NAME LINE: stdout has exactly this line.
expect_line() {
  if grep -Fxq -- "$2" "$OUT"; then pass "$1"; else fail "$1" "the line '$2'" "$(head -c 600 "$OUT")"; fi
}

run probe "${O[@]}" own@mixed.smtp.test
expect_rc "i15 probe text" 0
want=$(peer_reply mixed rcpt own@mixed.smtp.test)
case $want in 250\ 2.1.5\ ?*) pass "i15 probe: the peer logged its RCPT reply ($want)" ;;
  *) fail "i15 probe: the peer logged its RCPT reply" "250 2.1.5 TEXT" "'$want'" ;; esac
expect_line "i15 probe text: the recipient shows the server's RCPT reply" \
  "  own@mixed.smtp.test: accepted ($want) by mx.mixed.smtp.test"
expect_line "i15 probe text: the hop ended with that reply" \
  "  ended at rcpt, ok: $want -> delivered"
if grep -q 'RCPT phase over' "$OUT"; then
  fail "i15 probe text: no internal words" "no 'RCPT phase over'" "$(grep 'RCPT phase over' "$OUT")"
else pass "i15 probe text: no internal words"; fi

run probe --json "${O[@]}" own@mixed.smtp.test
expect_rc "i15 probe JSON" 0
want=$(peer_reply mixed rcpt own@mixed.smtp.test)
R='"\(.code) \(.enhanced) \(.text)"'
expect_jq "i15 probe JSON: the recipient has the server's RCPT reply ($want)" \
  ".recipients[0] | .state == \"accepted\" and .code == 250 and $R == $(jstr "$want")"
expect_jq "i15 probe JSON: the hop's RCPT line and its end carry that reply" \
  ".attempts[-1] | (.rcpts[0] | \"\(.code) \(.enhanced) \(.reply)\") == $(jstr "$want")
   and \"\(.code) \(.enhanced) \(.reply)\" == $(jstr "$want")"

# send: the delivered one gets the end-of-data reply, the others their own.
run send --json "${O[@]}" --from "$FROM" \
  --to own2@mixed.smtp.test --to bad@mixed.smtp.test --to slow@mixed.smtp.test "$M/crlf.eml"
expect_rc "i15 send JSON: 250 + 550 + 451" 75
stored=$(smtp_find mixed own2@mixed.smtp.test | head -1)
dot="250 2.0.0 Ok: queued as ${stored##*/}"
bad=$(peer_reply mixed rcpt bad@mixed.smtp.test)
slow=$(peer_reply mixed rcpt slow@mixed.smtp.test)
expect_jq "i15 send JSON: delivered with the end-of-data reply ($dot)" \
  ".recipients[] | select(.address == \"own2@mixed.smtp.test\") | .state == \"delivered\" and $R == $(jstr "$dot")"
expect_jq "i15 send JSON: bounced with its own RCPT reply ($bad)" \
  ".recipients[] | select(.address == \"bad@mixed.smtp.test\") | .state == \"bounced\" and $R == $(jstr "$bad")"
expect_jq "i15 send JSON: deferred with its own RCPT reply ($slow)" \
  ".recipients[] | select(.address == \"slow@mixed.smtp.test\") | .state == \"deferred\" and $R == $(jstr "$slow")"
run send "${O[@]}" --from "$FROM" --to own3@mixed.smtp.test --to bad@mixed.smtp.test "$M/crlf.eml"
expect_rc "i15 send text: 250 + 550" 68
stored=$(smtp_find mixed own3@mixed.smtp.test | head -1)
expect_line "i15 send text: delivered with the end-of-data reply" \
  "  own3@mixed.smtp.test: delivered (250 2.0.0 Ok: queued as ${stored##*/}) by mx.mixed.smtp.test"
expect_line "i15 send text: bounced with its own RCPT reply" \
  "  bad@mixed.smtp.test: bounced ($(peer_reply mixed rcpt bad@mixed.smtp.test)) by mx.mixed.smtp.test"

# ================================================================ STARTTLS
probe_case "STARTTLS opportunistic (default)" tls.smtp.test 0 \
  ".verdict == \"accepted\" and $a0.tls == true and $a0.class == \"ok\""
probe_case "STARTTLS --tls verify with the test CA" tls.smtp.test 0 \
  ".verdict == \"accepted\" and $a0.tls == true" --tls verify --tls-ca "$PKI/ca.pem"
probe_case "STARTTLS --tls verify without the CA fails at stage tls" tls.smtp.test 75 \
  ".verdict == \"defer\" and $a0.stage == \"tls\" and $a0.tls == false" --tls verify
probe_case "STARTTLS --tls verify: MX name not in the certificate" wrongname.smtp.test 75 \
  ".verdict == \"defer\" and $a0.stage == \"tls\"" --tls verify --tls-ca "$PKI/ca.pem"
probe_case "--tls required, no STARTTLS on the primary -> next host" tlsreq.smtp.test 0 \
  "$a0.host == \"backup.smtp.test\" and $a0.stage == \"tls\" and ($a0.action | $NEXT)
   and .host == \"mx.tls.smtp.test\" and .attempts[-1].tls == true" --tls required
probe_case "--tls none: no STARTTLS" tls.smtp.test 0 \
  ".verdict == \"accepted\" and $a0.tls == false" --tls none
probe_case "server requiring STARTTLS, --tls none: MAIL 530 -> bounce" tlsonly.smtp.test 68 \
  "$a0.stage == \"mail\" and $a0.class == \"5xx\" and $a0.code == 530" --tls none
probe_case "server requiring STARTTLS, default: accepted over TLS" tlsonly.smtp.test 0 \
  ".verdict == \"accepted\" and $a0.tls == true"
send_case "send over STARTTLS" t@tls.smtp.test "$M/crlf.eml" --tls verify --tls-ca "$PKI/ca.pem"
stored_equals "STARTTLS: stored byte for byte" tls t@tls.smtp.test "$M/crlf.eml"
expect_file_jq "STARTTLS: the server saw TLS" "$(stored_meta tls t@tls.smtp.test)" '.tls == true'

# ============================================================= exit codes
run probe "${O[@]}"
expect_rc "probe without a target" 64
run probe --json "${O[@]}" 'bad..domain'
expect_rc "probe an invalid domain" 65
run send "${O[@]}" --to x@plain.smtp.test "$M/crlf.eml"
expect_rc "send without --from" 64
run send "${O[@]}" --from "$FROM" "$M/crlf.eml"
expect_rc "send without --to" 64
run send "${O[@]}" --from "$FROM" --to 'not an address' "$M/crlf.eml"
expect_rc "send to an invalid address" 65
run send "${O[@]}" --from "$FROM" --to x@plain.smtp.test "$TMP/no-such-file.eml"
expect_rc "send a missing file" 66
run probe "${O[@]}" --tls sometimes plain.smtp.test
expect_rc "probe --tls with a bad word" 64
# ============================================= policies and a real knotd
# A policy's hop goes first (the bundled smart host, on the backup's
# address): the MX hosts (closed ports) are not even tried.
RELAY="{ relays = { { host = '127.0.0.2', port = $PORT } } }"
probe_case "--policy smarthost: the relay takes it, the MX hosts are not tried" refused.smtp.test 0 \
  "(.attempts | length) == 1 and $a0.address == \"127.0.0.2\" and .verdict == \"accepted\"" \
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAY"
# A candidate that asks for TLS gets it or nothing, even with the default
# opportunistic mode: the backup offers no STARTTLS.
RELAY_TLS="{ relays = { { host = '127.0.0.2', port = $PORT, tls = true } } }"
probe_case "--policy hop with tls = true, no STARTTLS there: tls failure, defer" refused.smtp.test 75 \
  "(.attempts | length) == 1 and $a0.stage == \"tls\" and $a0.class == \"5xx\"
   and ($a0.reply | contains(\"STARTTLS is required\")) and .verdict == \"defer\"" \
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAY_TLS"
send_case "send through the smart host" relayed@refused.smtp.test "$M/crlf.eml" \
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAY"
stored_equals "smart host: stored byte for byte" backup relayed@refused.smtp.test "$M/crlf.eml"

# The same zone served by knotd: the network resolver, then the same walk.
mkdir -p "$TMP/knot-zones" && cp "$ZONE" "$TMP/knot-zones/"
if knot_start "$TMP/knot-zones" >"$TMP/knot.log" 2>&1; then
  K=(--server "127.0.0.1:$KNOT_PORT" --allow-loopback --port "$PORT" --timeout 2000)
  run probe --json "${K[@]}" failover.smtp.test
  expect_rc "--server (knotd): primary refused -> backup" 0
  expect_jq "--server (knotd): refused on mx1, accepted by the backup" \
    '.attempts[0].class == "refused" and .verdict == "accepted" and .attempts[-1].stage == "rcpt"'
  run send --json "${K[@]}" --from "$FROM" --to viaknot@plain.smtp.test "$M/crlf.eml"
  expect_rc "--server (knotd): send" 0
  stored_equals "--server (knotd): stored byte for byte" backup viaknot@plain.smtp.test "$M/crlf.eml"
else
  fail "knotd serves the test zone" "knot_start" "$(tail -5 "$TMP/knot.log")"
fi

# ============================ failover rules, as simulate takes them
# probe and send take the rule options of simulate (--stay-on-4xx,
# --max-addresses, ...): what simulate predicts can be asked of them.
probe_case "--stay-on-4xx: MAIL 4xx defers, the backup is not tried" mail4.smtp.test 75 \
  "(.attempts | length) == 1 and $a0.stage == \"mail\" and $a0.class == \"4xx\"
   and $a0.action == \"defer\" and .verdict == \"defer\"" --stay-on-4xx
run send --json "${O[@]}" --from "$FROM" --to stay@mail4.smtp.test --stay-on-4xx "$M/crlf.eml"
expect_rc "send --stay-on-4xx: deferred" 75
expect_jq "send --stay-on-4xx: one attempt, the recipient deferred with the 4xx" \
  '(.domains[0].attempts | length) == 1 and .recipients[0].state == "deferred" and .recipients[0].code == 450'
probe_case "--max-addresses 1: refused primary, nothing more tried" failover.smtp.test 75 \
  "(.attempts | length) == 1 and $a0.class == \"refused\" and .verdict == \"defer\"" --max-addresses 1
run probe "${O[@]}" --max-age x mail4.smtp.test
expect_rc "probe --max-age x: usage error" 64
grep -qx "mxroute probe: --max-age: 'x' is not a number from 0 to 2147483647" "$ERR" &&
  pass "probe --max-age x: the flag named once" ||
  fail "probe --max-age x: the flag named once" "mxroute probe: --max-age: 'x' ..." "$(cat "$ERR")"

run probe --help
expect_rc "probe --help" 0
run send --help
expect_rc "send --help" 0
run --help
grep -q '^  probe ' "$OUT" && grep -q '^  send ' "$OUT" && pass "probe and send in the command list" ||
  fail "probe and send in the command list" "probe, send" "$(cat "$OUT")"

# ============================ STARTTLS refused or broken, stalls at DATA
# Peers of their own (tests/lib/smtp_peers.py kinds) and a zone of their
# own, thin.smtp.test, so this section stands apart from the rest:
#   .42 STARTTLS answered 454  .43 STARTTLS answered 554
#   .44 closes after the 220 to STARTTLS  .45 plain text after that 220
#   .46 never answers DATA  .47 never answers the final dot (stores it)
# Each domain has a backup MX 20: the STARTTLS store at .5 for the TLS
# cases (it passes --tls required), the plain store at .2 for the stalls;
# *only has none.
thin_started=1
thin_peer() { smtp_peer "$@" || thin_started=0; }
thin_peer tls454 127.0.0.42 starttls-refuse --starttls-code 454
thin_peer tls554 127.0.0.43 starttls-refuse --starttls-code 554
thin_peer tlsabort 127.0.0.44 tls-abort
thin_peer tlsjunk 127.0.0.45 tls-garbage
thin_peer stalldata 127.0.0.46 stall-data
thin_peer stalldot 127.0.0.47 stall-dot
if [ $thin_started = 1 ]; then pass "thin spots: peers listen"; else
  fail "thin spots: peers listen" "every peer started" "see stderr above"; fi
TZONE=$TMP/thin.smtp.test.zone
smtp_zone "$TZONE" thin.smtp.test <<'ZONE'
backup		A	127.0.0.2
tlsbackup	A	127.0.0.5
mx.tls454	A	127.0.0.42
tls454		MX	10 mx.tls454
tls454		MX	20 tlsbackup
mx.tls554	A	127.0.0.43
tls554		MX	10 mx.tls554
tls554		MX	20 tlsbackup
mx.tlsabort	A	127.0.0.44
tlsabort	MX	10 mx.tlsabort
tlsabort	MX	20 tlsbackup
mx.tlsjunk	A	127.0.0.45
tlsjunk		MX	10 mx.tlsjunk
tlsjunk		MX	20 tlsbackup
mx.stalldata	A	127.0.0.46
stalldata	MX	10 mx.stalldata
stalldata	MX	20 backup
mx.stalldot	A	127.0.0.47
stalldot	MX	10 mx.stalldot
stalldot	MX	20 backup
stalldotonly	MX	10 mx.stalldot
ZONE
T=(--zone "$TZONE" --allow-loopback --port "$PORT")
TB='.host == "tlsbackup.thin.smtp.test" and .attempts[-1].host == "tlsbackup.thin.smtp.test"
  and .attempts[-1].stage == "rcpt" and .attempts[-1].class == "ok" and .attempts[-1].tls
  and .verdict == "accepted"'

# A refused STARTTLS (docs/smtp-client.md section 4): opportunistic goes
# on in clear with the same server; required ends the session at tls with
# the reply's class, and the table moves to the next host.
for code in 454 554; do
  run probe --json "${T[@]}" --timeout 2000 tls$code.thin.smtp.test
  expect_rc "STARTTLS $code, opportunistic: accepted" 0
  expect_jq "STARTTLS $code, opportunistic: same host, in clear" \
    "(.attempts | length) == 1 and .host == \"mx.tls$code.thin.smtp.test\"
     and $a0.tls == false and $a0.stage == \"rcpt\" and $a0.class == \"ok\""
  if jq -e -s 'map(.event) | index("starttls") as $t | index("mail") as $m
               | $t != null and $m != null and $t < $m' "$SMTP_DIR/tls$code.log" >/dev/null; then
    pass "STARTTLS $code, opportunistic: MAIL sent after the refusal"
  else
    fail "STARTTLS $code, opportunistic: MAIL sent after the refusal" "starttls, then mail" \
      "$(jq -r .event "$SMTP_DIR/tls$code.log" | tr '\n' ' ')"
  fi
done
for code in 454:4xx 554:5xx; do
  cls=${code#*:} code=${code%:*}
  run probe --json "${T[@]}" --timeout 2000 --tls required tls$code.thin.smtp.test
  expect_rc "STARTTLS $code, --tls required: backup" 0
  expect_jq "STARTTLS $code, --tls required: tls $cls $code, next host" \
    "$a0.host == \"mx.tls$code.thin.smtp.test\" and $a0.stage == \"tls\" and $a0.class == \"$cls\"
     and $a0.code == $code and $a0.tls == false and $a0.action == \"next-host\" and $TB"
done

# A handshake that fails is tls, 5xx, code 0 in every mode, even
# opportunistic (the connection is no longer usable in clear): next host.
# The reply says which way it failed.
for peer in "tlsabort:connection closed during the TLS handshake" "tlsjunk:TLS handshake failed: "; do
  why=${peer#*:} peer=${peer%%:*}
  for mode in opportunistic required; do
    run probe --json "${T[@]}" --timeout 2000 --tls $mode $peer.thin.smtp.test
    expect_rc "$peer, --tls $mode: backup" 0
    expect_jq "$peer, --tls $mode: tls 5xx code 0, next host" \
      "$a0.host == \"mx.$peer.thin.smtp.test\" and $a0.stage == \"tls\" and $a0.class == \"5xx\"
       and $a0.code == 0 and $a0.tls == false and $a0.action == \"next-host\"
       and ($a0.reply | startswith(\"$why\")) and $TB"
  done
done
n=$(smtp_events tlsjunk drop | grep -c .)
if [ "$n" = 2 ]; then pass "tls-garbage: plain text answered both ClientHellos"; else
  fail "tls-garbage: plain text answered both ClientHellos" "2 drop events" "$n"; fi

# Stalls: --timeout 1000 sets the DATA and end-of-data timeouts. A stall
# after DATA is data, timeout: the next address (here the next host).
# stall_send NAME RCPT RC JQ: send RCPT --timeout 1000, exit RC, JQ
# holds, and the run lasted at least the timeout.
stall_send() {
  local t0 ms
  t0=$(date +%s%N)
  run send --json "${T[@]}" --timeout 1000 --from "$FROM" --to "$2" "$M/crlf.eml"
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  expect_rc "$1" "$3"
  expect_jq "$1: outcome" "$4"
  if [ "$ms" -ge 900 ]; then pass "$1: waited for the timeout (${ms} ms)"; else
    fail "$1: waited for the timeout" ">= 900 ms" "$ms ms"; fi
}
t_a0='.domains[0].attempts[0]'
stall_send "no 354 to DATA: delivered by the backup" sd@stalldata.thin.smtp.test 0 \
  "$t_a0.host == \"mx.stalldata.thin.smtp.test\" and $t_a0.stage == \"data\"
   and $t_a0.class == \"timeout\" and $t_a0.reply == \"timed out\" and $t_a0.action == \"next-address\"
   and .recipients[0].state == \"delivered\" and .recipients[0].host == \"backup.thin.smtp.test\""
stored_equals "no 354 to DATA: the backup stored it" backup sd@stalldata.thin.smtp.test "$M/crlf.eml"

# A stall after the final dot is dot, timeout: the next address, although
# the server may have taken the message (docs/smtp-client.md section 3,
# the RFC 1047 risk). This one did: the message exists twice.
stall_send "no reply to the final dot: delivered by the backup" st@stalldot.thin.smtp.test 0 \
  "$t_a0.host == \"mx.stalldot.thin.smtp.test\" and $t_a0.stage == \"dot\"
   and $t_a0.class == \"timeout\" and $t_a0.reply == \"timed out\" and $t_a0.action == \"next-address\"
   and .recipients[0].state == \"delivered\" and .recipients[0].host == \"backup.thin.smtp.test\""
stored_equals "no reply to the final dot: the silent server has a copy" stalldot st@stalldot.thin.smtp.test "$M/crlf.eml"
stored_equals "no reply to the final dot: and the backup another" backup st@stalldot.thin.smtp.test "$M/crlf.eml"
stall_send "no reply to the final dot on the only host: defer" so@stalldotonly.thin.smtp.test 75 \
  ".verdict == \"defer\" and .recipients[0].state == \"deferred\" and $t_a0.stage == \"dot\"
   and $t_a0.class == \"timeout\" and $t_a0.action == \"defer\""

harness_end
