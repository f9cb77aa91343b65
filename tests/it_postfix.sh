#!/usr/bin/env bash
# it_postfix.sh -- a real Postfix delivering through `mxroute serve`: a
# private Postfix 3.7 instance (tests/lib/postfix.sh) whose transport_maps
# is the daemon's socketmap, taking mail over SMTP on a loopback port and
# delivering it to aiosmtpd store peers on 127.0.0.x (tests/lib/smtp.sh).
# The daemon answers from a zone file (--zone): Postfix itself looks
# nothing up, its next hops are bracketed addresses.
#
#   1. the primary MX refuses (closed port): the backup MX stores the mail
#   2. policies/smarthost.lua for one domain: the relay stores it, the
#      domain's own MX gets nothing
#   3. null MX: Postfix bounces with 5.1.10; the DSN reaches the sender
#      (whose domain the daemon routes to a store peer too)
#   4. SERVFAIL: the daemon answers TEMP, the mail stays in the queue
#      (postqueue -p) and the maillog says why
#   5. postmap -q gives the answers Postfix used, which are the plans
#      `mxroute route --json` prints
#
# Every wait is bounded: a daemon that never starts is a FAIL at once.
# Needs root (Postfix's master runs as root, its daemons as 'postfix').
# Environment: MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR (as ctest sets them).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=/usr/bin/python3

. "$SRC/tests/lib/cli_harness.sh"
. "$SRC/tests/lib/smtp.sh"
. "$SRC/tests/lib/postfix.sh"
harness_start it_postfix

. "$SRC/tests/lib/daemon.sh"
trap 'pf_stop; stop_daemon; smtp_stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

if [ "$(id -u)" != 0 ]; then
  fail "root" "uid 0 (a private Postfix's master runs as root)" "uid $(id -u)"
  harness_end
  exit 1
fi
# The postfix user must reach the queue below $TMP (mktemp makes it 0700).
chmod 711 "$TMP"

if ! smtp_init "$TMP/smtp" 2>"$ERR"; then
  fail "smtp_init" "aiosmtpd, smtp-sink, openssl" "$(cat "$ERR")"
  harness_end
  exit 1
fi
P=$SMTP_PORT

# ---- the zone: every host on 127.0.0.x, all peers on port $P
ZONE=$TMP/pf.test.zone
smtp_zone "$ZONE" pf.test <<'EOF'
; 1. the primary refuses (nothing listens on 127.0.0.21), the backup stores
backup		MX	10 mx1.backup
backup		MX	20 mx2.backup
mx1.backup	A	127.0.0.21
mx2.backup	A	127.0.0.22
; 2. relayed by policies/smarthost.lua: its own MX must get nothing
smart		MX	10 mx.smart
mx.smart	A	127.0.0.31
; 3. null MX; the sender's domain takes the bounce
nullmx		MX	0 .
sender		MX	10 mx.sender
mx.sender	A	127.0.0.40
; 4. the offline resolver answers SERVFAIL for this name
servfail	TXT	"mxroute-fault=servfail"
EOF

peers_ok=1
smtp_peer backup 127.0.0.22 store 2>>"$ERR" || peers_ok=
smtp_peer relay 127.0.0.30 store 2>>"$ERR" || peers_ok=
smtp_peer direct 127.0.0.31 store 2>>"$ERR" || peers_ok=
smtp_peer sender 127.0.0.40 store 2>>"$ERR" || peers_ok=
if [ -z "$peers_ok" ]; then
  fail "store peers start" "four aiosmtpd peers on 127.0.0.x:$P" "$(cat "$ERR")"
  harness_end
  exit 1
fi

# ---- the daemon
MPORT=$(smtp_free_port 127.0.0.1)
PFPORT=$(smtp_free_port 127.0.0.1)
while [ "$PFPORT" = "$MPORT" ]; do PFPORT=$(smtp_free_port 127.0.0.1); done
RELAYCFG="{relays = {{host = \"relay.pf.test\", port = $P, addresses = {\"127.0.0.30\"}}}, domains = {\"smart.pf.test\"}}"
ROUTE_ARGS=(--zone "$ZONE" --allow-loopback --port "$P" --seed 1
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAYCFG")
MAP="socketmap:inet:127.0.0.1:$MPORT:transport"
LOG=$TMP/daemon.log
LAST_CMD="mxroute serve --listen socketmap:inet:127.0.0.1:$MPORT --domains pf.test,.pf.test ${ROUTE_ARGS[*]}"
setsid "$MXROUTE" serve --listen "socketmap:inet:127.0.0.1:$MPORT" --domains pf.test,.pf.test \
  "${ROUTE_ARGS[@]}" 2>"$LOG" &
DPID=$!
up=
for i in $(seq 50); do
  if $PY -c "import socket; socket.create_connection(('127.0.0.1', $MPORT), 1).close()" 2>/dev/null; then
    up=1
    break
  fi
  kill -0 "$DPID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$up" ]; then
  cp "$LOG" "$ERR"
  fail "daemon starts" "127.0.0.1:$MPORT answering within 5 s" "not listening ($(kill -0 "$DPID" 2>/dev/null && echo running || echo exited))"
  harness_end
  exit 1
fi
pass "mxroute serve listens on 127.0.0.1:$MPORT"

# ---- the private Postfix (its SMTP client verbose: a refused connection
# to a next hop that is not the last is logged only then)
if ! PF_SMTP_FLAGS=-v pf_init "$TMP/pf" "$PFPORT" "$MAP" 2>"$ERR" || ! pf_start 2>>"$ERR"; then
  [ -f "$TMP/pf/log/maillog" ] && tail -n 20 "$TMP/pf/log/maillog" >>"$ERR"
  LAST_CMD="postfix -c $TMP/pf start"
  fail "private Postfix starts" "smtpd on 127.0.0.1:$PFPORT" "$(tail -c 600 "$ERR")"
  harness_end
  exit 1
fi
pass "private Postfix $(postconf -d -h mail_version 2>/dev/null) listens on 127.0.0.1:$PFPORT"

# docs/postfix.md shows main.cf and master.cf as run here, with /srv/pf,
# port 2525 (smtpd) and 10027 (the daemon); the smtp service's -v is
# the test's own.
docblock() { doc_block "$SRC/docs/postfix.md" "it_postfix: $1"; }
for f in main.cf master.cf; do
  LAST_CMD="diff docs/postfix.md ($f block) $PF_DIR/$f"
  sed -e "s|$PF_DIR|/srv/pf|g" -e "s|^127\.0\.0\.1:$PFPORT |127.0.0.1:2525 |" \
    -e "s|:127\.0\.0\.1:$MPORT:|:127.0.0.1:10027:|" -e 's|^\(smtp .*smtp\) -v$|\1|' \
    "$PF_DIR/$f" >"$TMP/$f.run"
  docblock "$f" >"$TMP/$f.doc"
  if [ -s "$TMP/$f.doc" ] && diff "$TMP/$f.doc" "$TMP/$f.run" >"$OUT" 2>&1; then
    pass "docs/postfix.md shows the $f this Postfix runs with"
  else
    fail "docs/postfix.md $f" "the block after '<!-- it_postfix: $f -->' = $PF_DIR/$f" "a difference (diff on stdout)"
  fi
done

# send NAME FROM TO SUBJECT: submit; the queue id in $QID.
send() {
  LAST_CMD="SMTP to 127.0.0.1:$PFPORT: MAIL FROM:<$2> RCPT TO:<$3>"
  if QID=$(pf_send "$2" "$3" "$4" 2>"$ERR") && [ -n "$QID" ]; then
    return 0
  fi
  fail "$1: Postfix takes the message" "250 ... queued as ID" "$(cat "$ERR")"
  return 1
}
# inject NAME FROM TO SUBJECT: the same through sendmail -C (no smtpd
# checks at RCPT time), for the mail Postfix's smtpd would refuse.
inject() {
  LAST_CMD="sendmail -C $PF_DIR -f $2 -- $3"
  if QID=$(pf_sendmail "$2" "$3" "$4" 2>"$ERR") && [ -n "$QID" ]; then
    return 0
  fi
  fail "$1: sendmail queues the message" "a queue id" "$(cat "$ERR")"
  return 1
}
# logline NAME QID RCPT STATUS: the maillog line with to=<RCPT> and
# status=STATUS for queue id QID (waits 20 s at most) in $LINE.
logline() {
  LAST_CMD="grep '$2: to=<$3>.*status=$4' $PF_LOG"
  if LINE=$(pf_wait_log "$2: to=<$3>.* status=$4" 20); then return 0; fi
  : >"$OUT"
  tail -n 15 "$PF_LOG" >"$ERR" 2>/dev/null
  fail "$1" "a maillog line '$2: to=<$3> ... status=$4'" "none within 20 s (maillog tail in stderr)"
  return 1
}
# stored NAME PEER RCPT SUBJECT: PEER stored a message for RCPT whose bytes
# hold the Subject line.
stored() {
  local f
  f=$(smtp_find "$2" "$3" | tail -n 1)
  LAST_CMD="store peer $2: a message for $3"
  if [ -n "$f" ] && grep -q -F "Subject: $4" "$f.eml"; then
    pass "$1"
  else
    fail "$1" "a message for $3 with 'Subject: $4' in $SMTP_DIR/$2" \
      "${f:-nothing for $3} ($(smtp_count "$2") stored)"
  fi
}

# ================================================ 1. primary refuses, backup
S1="mxroute backup $$"
if send "backup MX" from@sender.pf.test user@backup.pf.test "$S1" &&
  logline "backup MX: delivered" "$QID" user@backup.pf.test sent; then
  case $LINE in
    *"relay=127.0.0.22[127.0.0.22]:$P"*) pass "backup MX: Postfix delivered to 127.0.0.22 (the backup)" ;;
    *) fail "backup MX: relay" "relay=127.0.0.22[127.0.0.22]:$P" "$LINE" ;;
  esac
  LAST_CMD="grep 'connect to 127.0.0.21' $PF_LOG"
  # The smtp process that delivered $QID tried the primary first.
  spid=$(sed -E 's/.*postfix\/smtp\[([0-9]+)\]: .*/\1/' <<<"$LINE")
  SPID_backup=$spid
  if grep -q -E "postfix/smtp\[$spid\]: connect to 127\.0\.0\.21\[127\.0\.0\.21\]:$P: Connection refused" "$PF_LOG"; then
    pass "backup MX: the same smtp process was refused by the primary 127.0.0.21 first"
  else
    fail "backup MX: primary tried" "'connect to 127.0.0.21[127.0.0.21]:$P: Connection refused'" \
      "$(grep -F "127.0.0.21" "$PF_LOG" | grep -v -e "attribute" -e "smtp_addr|address list|pref  |ctable" | head -c 900)"
  fi
  stored "backup MX: the backup peer stored it, Subject intact" backup user@backup.pf.test "$S1"
fi

# ====================================================== 2. smart host policy
S2="mxroute smarthost $$"
if send "smarthost" from@sender.pf.test user@smart.pf.test "$S2" &&
  logline "smarthost: delivered" "$QID" user@smart.pf.test sent; then
  case $LINE in
    *"relay=127.0.0.30[127.0.0.30]:$P"*)
      SPID_smart=$(sed -E 's/.*postfix\/smtp\[([0-9]+)\]: .*/\1/' <<<"$LINE")
      pass "smarthost: Postfix delivered to the relay 127.0.0.30" ;;
    *) fail "smarthost: relay" "relay=127.0.0.30[127.0.0.30]:$P" "$LINE" ;;
  esac
  stored "smarthost: the relay peer stored it, Subject intact" relay user@smart.pf.test "$S2"
  n=$(smtp_count direct)
  if [ "$n" = 0 ]; then pass "smarthost: the domain's own MX got nothing"
  else fail "smarthost: own MX bypassed" "0 messages at 127.0.0.31" "$n"; fi
fi

# ================================================================ 3. null MX
S3="mxroute nullmx $$"
# Over SMTP, smtpd asks the transport map at RCPT time: refused there.
LAST_CMD="SMTP RCPT TO:<user@nullmx.pf.test>"
if pf_send bouncer@sender.pf.test user@nullmx.pf.test "$S3" >"$OUT" 2>"$ERR"; then
  fail "null MX over SMTP" "550 at RCPT" "accepted: $(cat "$OUT")"
elif grep -q "RCPT TO: 550 5.1.0 .*null-mx" "$ERR"; then
  pass "null MX over SMTP: smtpd refuses the RCPT ($(cat "$ERR"))"
else
  fail "null MX over SMTP" "RCPT TO: 550 5.1.0 ... null-mx" "$(cat "$ERR")"
fi
if inject "null MX" bouncer@sender.pf.test user@nullmx.pf.test "$S3" &&
  logline "null MX: bounced" "$QID" user@nullmx.pf.test bounced; then
  case $LINE in
    *"dsn=5.1.10"*"null-mx"*) NULL_LINE=$LINE; pass "null MX: status=bounced, dsn=5.1.10" ;;
    *) fail "null MX: maillog" "dsn=5.1.10 ... null-mx" "$LINE" ;;
  esac
  # The DSN goes to bouncer@sender.pf.test, routed by the daemon too.
  LAST_CMD="wait for the DSN at the sender peer"
  for i in $(seq 100); do
    [ -n "$(smtp_find sender bouncer@sender.pf.test)" ] && break
    sleep 0.1
  done
  f=$(smtp_find sender bouncer@sender.pf.test | tail -n 1)
  if [ -n "$f" ] && grep -q "^Status: 5\.1\.10" "$f.eml" &&
    grep -q "^Final-Recipient: rfc822; *user@nullmx.pf.test" "$f.eml" &&
    grep -q -F "Subject: $S3" "$f.eml" &&
    [ "$(jq -r .mail_from "$f.json")" = "" ]; then
    pass "null MX: the DSN (null sender, Status: 5.1.10, the original Subject) reached the sender's MX"
  else
    fail "null MX: DSN" "a DSN for bouncer@sender.pf.test with Status: 5.1.10" \
      "${f:+$(grep -E '^(Status|Final-Recipient|Diagnostic-Code):' "$f.eml")}${f:-none within 10 s}"
  fi
fi

# ============================================================== 4. SERVFAIL
S4="mxroute servfail $$"
LAST_CMD="SMTP RCPT TO:<user@servfail.pf.test>"
if pf_send from@sender.pf.test user@servfail.pf.test "$S4" >"$OUT" 2>"$ERR"; then
  fail "SERVFAIL over SMTP" "451 at RCPT" "accepted: $(cat "$OUT")"
elif grep -q "RCPT TO: 451 4.3.0 .*Temporary lookup failure" "$ERR"; then
  pass "SERVFAIL over SMTP: smtpd defers the RCPT ($(cat "$ERR"))"
else
  fail "SERVFAIL over SMTP" "RCPT TO: 451 4.3.0 ... Temporary lookup failure" "$(cat "$ERR")"
fi
if inject "SERVFAIL" from@sender.pf.test user@servfail.pf.test "$S4"; then
  LAST_CMD="grep servfail $PF_LOG"
  if LINE=$(pf_wait_log "socketmap server temporary error: servfail" 20); then
    pass "SERVFAIL: the maillog gives the daemon's reason: ${LINE#*warning: }"
  else
    fail "SERVFAIL: maillog reason" "'socketmap server temporary error: servfail'" "$(tail -n 5 "$PF_LOG")"
  fi
  LAST_CMD="maillog: $QID deferred"
  if LINE=$(pf_wait_log "$QID: to=<user@servfail.pf.test>.* status=deferred" 20); then
    pass "SERVFAIL: status=deferred ${LINE##*status=deferred }"
  else
    fail "SERVFAIL: deferred" "'$QID: to=<user@servfail.pf.test> ... status=deferred'" "$(grep "$QID" "$PF_LOG" | tail -n 3)"
  fi
  # Retries come every second (queue_run_delay, backoff): after a few the
  # mail must still be queued, not bounced, not sent.
  pf_flush >/dev/null 2>&1
  sleep 3
  LAST_CMD="postqueue -c $PF_DIR -p"
  pf_queue >"$OUT" 2>"$ERR"
  if grep -q "^$QID" "$OUT" && grep -q "user@servfail.pf.test" "$OUT" &&
    ! grep -q -E "$QID: to=<user@servfail.pf.test>.* status=(bounced|sent)" "$PF_LOG"; then
    pass "SERVFAIL: postqueue -p still lists $QID for user@servfail.pf.test"
  else
    fail "SERVFAIL: queued" "$QID in postqueue -p, never bounced nor sent" "$(head -c 400 "$OUT")"
  fi
fi

# ======================================= 5. postmap -q = what Postfix used
POSTMAP=$(command -v postmap || echo /usr/sbin/postmap)
pq() { # KEY: postmap -q KEY against the daemon; $OUT, $ERR, $RC
  LAST_CMD="postmap -c $PF_DIR -q $1 $MAP"
  timeout 10 "$POSTMAP" -c "$PF_DIR" -q "$1" "$MAP" >"$OUT" 2>"$ERR"
  RC=$?
}
# The next-hop list `mxroute route --json` gives for ADDR.
plan() {
  run route --json "${ROUTE_ARGS[@]}" "$1"
  jq -r 'select(.status == "ok") | "smtp:" +
    ([.candidates[] as $c | $c.addresses[] | "[\(.)]:\($c.port)"] | join(", "))' "$OUT" 2>/dev/null
}
# The smtp client's verbose log shows the next hop its delivery request
# carried ("input attribute value: [127.0.0.21]:P, ..."): the map's answer.
SPID_backup=${SPID_backup:-none}
SPID_smart=${SPID_smart:-none}
for pair in "user@backup.pf.test $SPID_backup smtp:[127.0.0.21]:$P, [127.0.0.22]:$P" \
  "user@smart.pf.test $SPID_smart smtp:[127.0.0.30]:$P"; do
  read -r key spid want <<<"$pair"
  p=$(plan "$key")
  pq "$key"
  got=$(cat "$OUT")
  if [ "$got" = "$want" ] && [ "$p" = "$want" ]; then
    pass "postmap -q $key = mxroute route = '$want'"
  else
    fail "postmap -q $key" "'$want' (and mxroute route's plan)" "postmap '$got', route '$p'"
  fi
  LAST_CMD="grep 'smtp[$spid]: input attribute value: ${want#smtp:}' $PF_LOG"
  if grep -q -F "postfix/smtp[$spid]: input attribute value: ${got#smtp:}" "$PF_LOG"; then
    pass "$key: the smtp client delivered to that next-hop list"
  else
    fail "$key: next hop used" "smtp[$spid] got '${got#smtp:}'" \
      "$(grep -F "postfix/smtp[$spid]: input attribute value: [" "$PF_LOG" | head -n 2)"
  fi
done
pq user@nullmx.pf.test
got=$(cat "$OUT")
case $got in
  "error:5.1.10 null-mx:"*)
    # error:5.1.10 TEXT: Postfix's error(8) logs dsn=5.1.10 and TEXT.
    if [[ ${NULL_LINE:-} == *"dsn=5.1.10, status=bounced (${got#error:5.1.10 })" ]]; then
      pass "postmap -q user@nullmx.pf.test: '$got', the bounce Postfix logged"
    else
      fail "postmap -q user@nullmx.pf.test = the bounce" "a maillog line ending 'dsn=5.1.10, status=bounced (${got#error:5.1.10 })'" "${NULL_LINE:-none}"
    fi ;;
  *) fail "postmap -q user@nullmx.pf.test" "error:5.1.10 null-mx: ..." "$got" ;;
esac
pq user@servfail.pf.test
if [ "$RC" = 1 ] && [ ! -s "$OUT" ] && grep -q "temporary error: servfail" "$ERR"; then
  pass "postmap -q user@servfail.pf.test: TEMP (exit 1, the warning Postfix logged)"
else
  fail "postmap -q user@servfail.pf.test" "exit 1, 'temporary error: servfail'" "exit $RC: $(cat "$OUT" "$ERR")"
fi
pq user@example.org
if [ "$RC" = 1 ] && [ ! -s "$OUT" ] && ! grep -q error "$ERR"; then
  pass "postmap -q user@example.org: not found (outside --domains)"
else
  fail "postmap -q user@example.org" "exit 1, no output" "exit $RC: $(cat "$OUT" "$ERR")"
fi

# ---- stop: Postfix, then the daemon (SIGTERM: exit 0)
pf_stop
LAST_CMD="kill -TERM mxroute serve"
term_daemon 8
if [ "$DAEMON_RC" = 0 ]; then pass "daemon: SIGTERM, exit 0"
else fail "daemon stops" "exit 0 within 8 s of SIGTERM" "$DAEMON_RC"; fi
smtp_stop_all

harness_end
