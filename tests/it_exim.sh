#!/usr/bin/env bash
# it_exim.sh -- a real Exim 4.96 routing through `mxroute serve`: Debian's
# Exim packages unpacked into a private directory (tests/lib/exim.sh),
# run with examples/exim/mxroute.conf exactly as docs/exim.md shows it,
# asking the daemon's exim protocol through ${readsocket}. The daemon
# answers from a zone file (--zone): Exim gets IP addresses, it looks
# nothing up itself.
#
#   1. exim -bt (routing, nothing sent), the daemon on a unix socket in
#      a directory of group Debian-exim (setgid) with umask 007, as
#      docs/exim.md sets it up:
#      two MX with IPv4 and IPv6 addresses (every address of every host,
#      in plan order, the port kept); policies/smarthost.lua; null MX
#      fails with 5.1.10, NXDOMAIN with 5.1.2; SERVFAIL defers with the
#      reason; a domain outside --domains is declined and Exim's own
#      dnslookup router takes it (run in a network namespace of its own
#      where DNS fails at once); the hosts Exim gets are the addresses of
#      `mxroute route --json`'s plan, in order; docs/exim.md shows these
#      very answers
#   2. the daemon stopped, a socket that never answers, one that closes
#      without a word, one that answers garbage: Exim defers, never bounces
#   3. the daemon with --port, on TCP (exim -bt: the port in every host)
#      and on the unix socket for real deliveries (exim -odi: Exim routes
#      and delivers as Debian-exim, through the socket's group) to
#      aiosmtpd store peers on 127.0.0.x (tests/lib/smtp.sh): the primary
#      MX refuses, the backup gets it; the smart host gets its domain's
#      mail; null MX fails (5.1.10 in the log) and Exim's bounce reaches
#      the sender's MX, routed by the daemon too; SERVFAIL stays queued.
#      The suite's copy of the configuration starts with one more line,
#      exim_path (tests/lib/exim.sh): Exim re-executes itself from there,
#      and this Exim is not at /usr/sbin/exim4.
#
# Every wait is bounded: a daemon that never starts is a FAIL at once.
# Needs root (exim -C with -D macros, and its spool belongs to Debian-exim).
# Environment: MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR (as ctest sets them);
# EXIM_DEB_DIR (tests/lib/exim.sh).
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
PY=/usr/bin/python3
CONF=$SRC/examples/exim/mxroute.conf

. "$SRC/tests/lib/cli_harness.sh"
. "$SRC/tests/lib/smtp.sh"
. "$SRC/tests/lib/exim.sh"
harness_start it_exim

. "$SRC/tests/lib/daemon.sh"
FAKE_PID=
trap 'stop_daemon; [ -n "$FAKE_PID" ] && kill "$FAKE_PID" 2>/dev/null; smtp_stop_all; rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

# give_up NAME EXPECTED GOT: a FAIL that leaves nothing to test.
give_up() {
  fail "$@"
  harness_end
  exit 1
}

if [ "$(id -u)" != 0 ]; then
  give_up "root" "uid 0 (exim -C with -D macros)" "uid $(id -u)"
fi
# Debian-exim must reach the spool and the log below $TMP.
chmod 711 "$TMP"

LAST_CMD="exim_init $TMP/exim"
exim_init "$TMP/exim" 2>"$ERR" ||
  give_up "Exim 4.96 unpacked" "the Debian packages in $EXIM_DEB_DIR" "$(cat "$ERR")"
pass "Exim 4.96 unpacked from $(basename "$(_exim_deb exim4-daemon-light)")"

# docs/exim.md shows the configuration this suite runs, byte for byte.
docblock() { doc_block "$SRC/docs/exim.md" "it_exim: $1"; }
LAST_CMD="diff docs/exim.md (config block) examples/exim/mxroute.conf"
docblock config >"$TMP/config.doc"
if [ -s "$TMP/config.doc" ] && diff "$TMP/config.doc" "$CONF" >"$OUT" 2>&1; then
  pass "docs/exim.md shows examples/exim/mxroute.conf as it is"
else
  fail "docs/exim.md config" "the block after '<!-- it_exim: config -->' = $CONF" "a difference (diff on stdout)"
fi

if ! smtp_init "$TMP/smtp" 2>"$ERR"; then
  give_up "smtp_init" "aiosmtpd, smtp-sink, openssl" "$(cat "$ERR")"
fi
P=$SMTP_PORT

# ---- the zone: documentation addresses for routing, 127.0.0.x to deliver
ZONE=$TMP/example.com.zone
smtp_zone "$ZONE" example.com <<'EOF'
; two MX hosts, each with an IPv4 and an IPv6 address
@		MX	10 mx1
@		MX	20 mx2
mx1		A	192.0.2.11
mx1		AAAA	2001:db8::11
mx2		A	192.0.2.12
mx2		AAAA	2001:db8::12
; delivered for real: nothing listens on the primary, the backup stores
backup		MX	10 mx1.backup
backup		MX	20 mx2.backup
mx1.backup	A	127.0.0.21
mx2.backup	A	127.0.0.22
; relayed by policies/smarthost.lua: its own MX must get nothing
smart		MX	10 mx.smart
mx.smart	A	127.0.0.31
nullmx		MX	0 .
; the offline resolver answers SERVFAIL for this name
servfail	TXT	"mxroute-fault=servfail"
; the sender's domain, where Exim's bounces go
sender		MX	10 mx.sender
mx.sender	A	127.0.0.40
EOF

RELAYCFG="{relays = {{host = \"relay.example.com\", port = $P, addresses = {\"127.0.0.30\"}}}, domains = {\"smart.example.com\"}}"
ROUTE_ARGS=(--zone "$ZONE" --allow-loopback --seed 1
  --policy "$SRC/policies/smarthost.lua" --policy-config "$RELAYCFG")
LOG=$TMP/daemon.log

# start_daemon LISTEN WAIT ARGS...: mxroute serve --listen LISTEN in its
# own process group; WAIT (a shell test) must hold within 5 s.
start_daemon() {
  local listen=$1 wait=$2 i
  shift 2
  LAST_CMD="mxroute serve --listen $listen --domains example.com,.example.com ${ROUTE_ARGS[*]} $*"
  (umask 007 && exec setsid "$MXROUTE" serve --listen "$listen" \
    --domains example.com,.example.com "${ROUTE_ARGS[@]}" "$@" 2>"$LOG") &
  DPID=$!
  for i in $(seq 50); do
    eval "$wait" && return 0
    kill -0 "$DPID" 2>/dev/null || break
    sleep 0.1
  done
  cp "$LOG" "$ERR"
  give_up "daemon starts" "$listen answering within 5 s" \
    "not listening ($(kill -0 "$DPID" 2>/dev/null && echo running || echo exited))"
}

# bt NAME ADDRESS RC: exim -bt ADDRESS exits RC; its output in $OUT.
bt() {
  exim_run -bt "$2"
  if [ "$RC" = "$3" ]; then return 0; fi
  fail "$1" "exim -bt exits $3" "exit $RC: $(cat "$OUT" "$ERR" | head -c 600)"
  return 1
}
# expect_text NAME WANT: $OUT is exactly WANT.
expect_text() {
  local got
  got=$(cat "$OUT")
  if [ "$got" = "$2" ]; then pass "$1"; else fail "$1" "$2" "$got"; fi
}
# bt_hosts: the "ADDRESS PORT" pairs of the hosts in exim -bt's output.
bt_hosts() {
  sed -n -E 's/^  host ([^ ]+) +\[[^]]+\] +port=([0-9]+).*/\1 \2/p' "$OUT"
}
# plan_hosts ADDRESS [ARGS]: the same pairs from `mxroute route --json`.
plan_hosts() {
  timeout 30 "$MXROUTE" route --json "${ROUTE_ARGS[@]}" "${@:2}" "$1" 2>/dev/null |
    jq -r 'select(.status == "ok") | .candidates[] | .port as $p | .addresses[] | "\(.) \($p)"' 2>/dev/null
}

# ================================================ 1. exim -bt, unix socket
# Exim's user must reach the socket: a setgid directory of its group
# gives the socket that group, umask 007 (start_daemon) lets the group in.
RUN=$TMP/run
mkdir "$RUN" && chgrp Debian-exim "$RUN" && chmod 2750 "$RUN"
SOCK=$RUN/exim.sock
# shellcheck disable=SC2016 # start_daemon evaluates the test itself
start_daemon "exim:unix:$SOCK" '[ -S "$SOCK" ]'
pass "mxroute serve listens on exim:unix:$SOCK"
exim_config "$CONF" "$SOCK"

# Each command and its output, as docs/exim.md shows them.
TRANSCRIPT=$TMP/bt.txt
: >"$TRANSCRIPT"
note_bt() { # ADDRESS: append the last exim -bt to the transcript
  printf '# exim -C /etc/exim4/mxroute.conf -bt %s\n' "$1" >>"$TRANSCRIPT"
  cat "$OUT" "$ERR" >>"$TRANSCRIPT"
}
# bt_expect NAME ADDRESS RC WANT: exim -bt ADDRESS exits RC and prints
# WANT (kept for the transcript); 0 when it did.
bt_expect() {
  bt "$1" "$2" "$3" || return 1
  note_bt "$2"
  expect_text "$1" "$4"
  [ "$(cat "$OUT")" = "$4" ]
}

bt_expect "two MX: every address of both hosts, IPv6 too, in plan order, port 25" user@example.com 0 \
  "user@example.com
  router = mxroute, transport = remote_smtp
  host 2001:db8::11 [2001:db8::11] port=25
  host 192.0.2.11   [192.0.2.11]   port=25
  host 2001:db8::12 [2001:db8::12] port=25
  host 192.0.2.12   [192.0.2.12]   port=25"
if [ "$RC" = 0 ]; then
  want=$(plan_hosts user@example.com)
  got=$(bt_hosts)
  if [ -n "$want" ] && [ "$got" = "$want" ]; then
    pass "two MX: Exim's hosts are mxroute route --json's plan, in order"
  else
    fail "two MX = mxroute route" "$want" "$got"
  fi
fi

if bt "smart host" user@smart.example.com 0; then
  want=$(plan_hosts user@smart.example.com)
  got=$(bt_hosts)
  if [ "$got" = "127.0.0.30 $P" ] && [ "$got" = "$want" ] && grep -q 'router = mxroute,' "$OUT"; then
    pass "smarthost.lua: Exim routes to the relay 127.0.0.30 port $P only, as mxroute route does"
  else
    fail "smart host" "127.0.0.30 $P (= mxroute route: '$want')" "$got"
  fi
fi

bt_expect "null MX: undeliverable, 5.1.10 and the reason" user@nullmx.example.com 2 \
  "user@nullmx.example.com is undeliverable: 5.1.10 null-mx: the domain publishes a null MX: it accepts no mail (RFC 7505)"
bt_expect "NXDOMAIN: undeliverable, 5.1.2 and the reason" user@nxdomain.example.com 2 \
  "user@nxdomain.example.com is undeliverable: 5.1.2 nxdomain: the domain does not exist"
bt_expect "SERVFAIL: deferred with the daemon's reason" user@servfail.example.com 1 \
  "user@servfail.example.com cannot be resolved at this time: servfail: the DNS server failed (SERVFAIL); try again later"

# Outside --domains: the daemon declines, and so do both mxroute routers;
# Exim's dnslookup router is next. In a network namespace of its own
# (only a loopback, down) its DNS lookup fails at once: the route trace
# (-d+route) shows which routers ran, whatever DNS says.
NETNS=(unshare -n)
"${NETNS[@]}" true 2>/dev/null || NETNS=()
LAST_CMD="${NETNS[*]} exim ... -d-all+route -bt user@example.org"
timeout 30 "${NETNS[@]}" "$EXIM" "${EXIM_ARGS[@]}" -d-all+route -bt user@example.org >"$OUT" 2>&1
RC=$?
if grep -q '^mxroute_answer router declined for user@example.org' "$OUT" &&
  grep -q '^mxroute router skipped: condition failure' "$OUT" &&
  grep -q '^dnslookup router called for user@example.org' "$OUT"; then
  pass "outside --domains: both mxroute routers decline, Exim's dnslookup router takes it"
else
  fail "outside --domains" "mxroute_answer declined, mxroute skipped, dnslookup called" \
    "$(grep -E 'router (declined|skipped|called)|routing' "$OUT" | head -c 600)"
fi

# A request line too long, one that names no domain, one without its
# newline: the daemon answers each and closes (what ${readsocket} reads).
cl_half() { # TEXT: serve_client.py halfclose $SOCK TEXT into $OUT
  LAST_CMD="serve_client.py halfclose $SOCK '$1'"
  timeout 30 $PY "$SRC/tests/lib/serve_client.py" halfclose "$SOCK" "$1" >"$OUT" 2>"$ERR"
}
cl_half 'user@nullmx.example.com'
expect_text "exim protocol: a request without its newline is answered, then the daemon closes" \
  'action=fail message="5.1.10 null-mx: the domain publishes a null MX: it accepts no mail (RFC 7505)"
EOF'
cl_half '*\n'
expect_text "exim protocol: a request naming no domain: defer, close" \
  'action=defer message="bad request: not a domain or an address"
EOF'
cl_half "$(printf 'x%.0s' $(seq 9000))"
expect_text "exim protocol: a line over --max-request: defer, close" \
  'action=defer message="request line too long"
EOF'

# term_daemon NAME: SIGTERM; the daemon must exit 0 within 5 s, its log
# free of sanitizer reports (under ASan a leak fails the exit status).
term_daemon() {
  local rc=timeout
  kill -TERM "$DPID" 2>/dev/null
  for i in $(seq 50); do
    if ! kill -0 "$DPID" 2>/dev/null; then wait "$DPID"; rc=$?; break; fi
    sleep 0.1
  done
  LAST_CMD="kill -TERM $DPID (mxroute serve)"
  if [ "$rc" = 0 ] && ! grep -q -E 'Sanitizer|runtime error' "$LOG"; then
    pass "$1: SIGTERM, exit 0"
  else
    cp "$LOG" "$ERR"
    fail "$1: SIGTERM" "exit 0 within 5 s, a clean log" "exit $rc"
  fi
  stop_daemon
}

# ================================================ 2. no (usable) answer
# SIGTERM: the daemon removes its socket and exits 0.
term_daemon "unix socket daemon"
if bt "daemon stopped" user@example.com 1; then
  note_bt user@example.com
  case $(cat "$OUT") in
    *"cannot be resolved at this time: expansion of"*"failed in mxroute_answer router: failed to connect to socket $SOCK: No such file or directory")
      pass "daemon stopped: Exim defers (cannot connect), no bounce" ;;
    *) fail "daemon stopped" "cannot be resolved at this time: ... failed to connect to socket $SOCK: No such file or directory" "$(cat "$OUT")" ;;
  esac
fi

# docs/exim.md shows these answers (the socket at its usual place)
LAST_CMD="diff docs/exim.md (bt block) the exim -bt outputs above"
docblock bt >"$TMP/bt.doc"
sed "s|$SOCK|/run/mxroute/exim.sock|g" "$TRANSCRIPT" >"$TMP/bt.run"
if [ -s "$TMP/bt.doc" ] && diff "$TMP/bt.doc" "$TMP/bt.run" >"$OUT" 2>&1; then
  pass "docs/exim.md shows the exim -bt answers of this run"
else
  fail "docs/exim.md exim -bt" "the block after '<!-- it_exim: bt -->' = $TMP/bt.run" "a difference (diff on stdout)"
fi

# Sockets that take the request and then: never answer, close at once,
# answer something that is not the exim protocol.
$PY - "$TMP" <<'PYEOF' 2>"$TMP/fake.err" &
import os, socket, sys, threading, time
d = sys.argv[1]
def serve(name, answer):
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(d, name + ".sock"))
    s.listen(4)
    while True:
        c, _ = s.accept()
        c.recv(4096)
        if answer is None:
            threading.Timer(20, c.close).start()
            continue
        c.sendall(answer)
        c.close()
for name, answer in (("silent", None), ("empty", b""), ("garbage", b"hello\n")):
    threading.Thread(target=serve, args=(name, answer), daemon=True).start()
time.sleep(60)
PYEOF
FAKE_PID=$!
for _ in $(seq 50); do [ -S "$TMP/garbage.sock" ] && break; sleep 0.1; done
for pair in "silent:socket read timed out" "empty:mxroute serve gave no answer" \
  "garbage:mxroute serve gave no answer"; do
  name=${pair%%:*}
  exim_config "$CONF" "$TMP/$name.sock" MXROUTE_TIMEOUT=2s
  if bt "$name answer" user@example.com 1; then
    case $(cat "$OUT") in
      "user@example.com cannot be resolved at this time: "*"${pair#*:}"*)
        pass "a socket that gives $name answer: Exim defers ($(cut -c1-90 "$OUT")...)" ;;
      *) fail "$name answer" "cannot be resolved at this time: ... ${pair#*:}" "$(cat "$OUT")" ;;
    esac
  fi
done
kill "$FAKE_PID" 2>/dev/null
FAKE_PID=

# ================================== 3. real deliveries, TCP and --port
peers_ok=1
smtp_peer backup 127.0.0.22 store 2>>"$ERR" || peers_ok=
smtp_peer relay 127.0.0.30 store 2>>"$ERR" || peers_ok=
smtp_peer direct 127.0.0.31 store 2>>"$ERR" || peers_ok=
smtp_peer sender 127.0.0.40 store 2>>"$ERR" || peers_ok=
[ -n "$peers_ok" ] || give_up "store peers start" "four aiosmtpd peers on 127.0.0.x:$P" "$(cat "$ERR")"

EPORT=$(smtp_free_port 127.0.0.1)
# shellcheck disable=SC2016 # start_daemon evaluates the test itself
start_daemon "exim:inet:127.0.0.1:$EPORT" '[ -S "$SOCK" ] && smtp_wait_listen 127.0.0.1 $EPORT 5 2>/dev/null' \
  --listen "exim:unix:$SOCK" --port "$P"
pass "mxroute serve listens on exim:inet:127.0.0.1:$EPORT and exim:unix:$SOCK (--port $P)"
exim_config "$CONF" "inet:127.0.0.1:$EPORT"
MAINLOG=$EXIM_DIR/log/mainlog

if bt "--port over TCP" user@example.com 0; then
  want=$(plan_hosts user@example.com --port "$P")
  got=$(bt_hosts)
  if [ "$(awk '{print $2}' <<<"$got" | sort -u)" = "$P" ] && [ "$got" = "$want" ] &&
    [ "$(wc -l <<<"$got")" = 4 ]; then
    pass "over TCP: the four addresses, each with --port $P, as mxroute route --port gives them"
  else
    fail "--port over TCP" "$want" "$got"
  fi
fi

# Deliveries through the unix socket, as Debian-exim.
exim_config "$CONF" "$SOCK"

# deliver NAME RCPT SUBJECT: exim -odi (received, then routed and
# delivered at once); the message's id in $MID, from the mainlog.
deliver() {
  local seen
  seen=0
  [ -f "$MAINLOG" ] && seen=$(wc -l <"$MAINLOG")
  LAST_CMD="exim -odi -f sender@sender.example.com $2"
  printf 'From: sender@sender.example.com\nTo: %s\nSubject: %s\n\nmxroute it_exim\n' "$2" "$3" |
    timeout 30 "$EXIM" "${EXIM_ARGS[@]}" -odi -f sender@sender.example.com "$2" >"$OUT" 2>"$ERR"
  MID=$(tail -n +"$((seen + 1))" "$MAINLOG" 2>/dev/null |
    sed -n -E 's/^[-0-9]+ [0-9:]+ ([0-9A-Za-z]+-[0-9A-Za-z]+-[0-9A-Za-z]+) <= sender@sender\.example\.com .*/\1/p' | head -n 1)
  if [ -n "$MID" ]; then return 0; fi
  fail "$1: Exim takes the message" "a '<= sender@sender.example.com' line in $MAINLOG" "none: $(cat "$ERR")"
  return 1
}
# logged NAME PATTERN: the mainlog has a line matching PATTERN (grep -E).
logged() {
  LAST_CMD="grep -E '$2' $MAINLOG"
  if grep -q -E "$2" "$MAINLOG" 2>/dev/null; then pass "$1"
  else fail "$1" "a mainlog line matching '$2'" "$(tail -n 5 "$MAINLOG" 2>/dev/null)"; fi
}
# stored NAME PEER RCPT SUBJECT
stored() {
  local f
  f=$(smtp_find "$2" "$3" | tail -n 1)
  LAST_CMD="store peer $2: a message for $3"
  if [ -n "$f" ] && grep -q -F "Subject: $4" "$f.eml"; then pass "$1"
  else fail "$1" "a message for $3 with 'Subject: $4' in $SMTP_DIR/$2" "${f:-nothing} ($(smtp_count "$2") stored)"; fi
}

S1="exim backup $$"
if deliver "backup MX" user@backup.example.com "$S1"; then
  logged "backup MX: the primary 127.0.0.21 refused first" \
    "^.* $MID H=127\.0\.0\.21 \[127\.0\.0\.21\] Connection refused"
  logged "backup MX: delivered to the backup 127.0.0.22 by the mxroute router" \
    "^.* $MID => user@backup\.example\.com R=mxroute T=remote_smtp H=127\.0\.0\.22 \[127\.0\.0\.22\] "
  stored "backup MX: the backup peer stored it, Subject intact" backup user@backup.example.com "$S1"
fi

S2="exim smarthost $$"
if deliver "smart host" user@smart.example.com "$S2"; then
  logged "smart host: delivered to the relay 127.0.0.30" \
    "^.* $MID => user@smart\.example\.com R=mxroute T=remote_smtp H=127\.0\.0\.30 \[127\.0\.0\.30\] "
  stored "smart host: the relay stored it" relay user@smart.example.com "$S2"
  n=$(smtp_count direct)
  if [ "$n" = 0 ]; then pass "smart host: the domain's own MX got nothing"
  else fail "smart host: own MX bypassed" "0 messages at 127.0.0.31" "$n"; fi
fi

S3="exim nullmx $$"
if deliver "null MX" user@nullmx.example.com "$S3"; then
  logged "null MX: the address fails with 5.1.10 and the reason" \
    "^.* $MID \*\* user@nullmx\.example\.com R=mxroute_answer: 5\.1\.10 null-mx: the domain publishes a null MX"
  # Exim's bounce, from <>, to the sender's MX (routed by the daemon):
  # the reason in its text; its Status field is Exim's own 5.0.0.
  f=$(smtp_find sender sender@sender.example.com | tail -n 1)
  if [ -n "$f" ] && [ "$(jq -r .mail_from "$f.json" 2>/dev/null)" = "" ] &&
    grep -q "^X-Failed-Recipients: user@nullmx.example.com" "$f.eml" &&
    grep -q "^ *5\.1\.10 null-mx: the domain publishes a null MX" "$f.eml" &&
    grep -q -F "Subject: $S3" "$f.eml"; then
    pass "null MX: Exim's bounce (null sender, 5.1.10 and the reason, the original Subject) reached the sender's MX"
  else
    fail "null MX: bounce" "a bounce from <> for sender@sender.example.com naming 5.1.10 null-mx" \
      "${f:+$(grep -E '^(X-Failed-Recipients|Status|  +5)' "$f.eml")}${f:-none ($(smtp_count sender) stored)}"
  fi
fi

if deliver "SERVFAIL" user@servfail.example.com "exim servfail $$"; then
  logged "SERVFAIL: the address is deferred with the daemon's reason" \
    "^.* $MID == user@servfail\.example\.com R=mxroute_answer defer .*servfail: the DNS server failed"
  if exim_queue | grep -q -x -F "$MID" && ! grep -q -E " $MID (\*\*|=>)" "$MAINLOG"; then
    pass "SERVFAIL: the message stays queued (exim -bp), neither bounced nor sent"
  else
    fail "SERVFAIL: queued" "$MID in exim -bp, no ** or => line" "$(grep "$MID" "$MAINLOG")"
  fi
fi

term_daemon "TCP daemon"
harness_end
