# shellcheck shell=bash
# postfix.sh -- sourceable helpers: a private Postfix instance (Debian's
# postfix 3.7) run from a directory of its own, for delivery tests through
# `mxroute serve`. Nothing outside that directory is touched: its own
# main.cf and master.cf (chroot column n), queue, data directory and log
# file; it listens for SMTP on one loopback port only.
#
#   pf_init DIR SMTPD_PORT TRANSPORT_MAPS
#       Check the tools, write DIR/main.cf and DIR/master.cf (see
#       docs/postfix.md: this is the configuration described there), make
#       DIR/queue, DIR/data (owned by postfix) and DIR/log. Every directory
#       above DIR must be searchable by the postfix user. PF_SMTP_FLAGS
#       (e.g. -v) is added to the smtp service's command. Exports PF_DIR,
#       PF_PORT, PF_LOG (the maillog file).
#   pf_start / pf_stop
#       postfix -c DIR start / stop (bounded). pf_start waits (at most 10 s)
#       for smtpd on 127.0.0.1:SMTPD_PORT. pf_stop is safe to call twice.
#   pf_send FROM TO SUBJECT
#       Submit one message over SMTP to the instance's smtpd (Python's
#       smtplib); prints the queue id Postfix gave it. Non-zero (the SMTP
#       error on stderr) if Postfix did not take it.
#   pf_sendmail FROM TO SUBJECT
#       The same through sendmail -C DIR (root only): no smtpd checks at
#       RCPT time, so mail smtpd would refuse is queued. Prints the queue
#       id (found by the message's Message-ID in the maillog).
#   pf_wait_log PATTERN [SECONDS]
#       Wait (bounded, default 20 s) until an extended regular expression
#       matches a line of the maillog; prints the first such line.
#   pf_queue
#       postqueue -c DIR -p (the queue listing).
#   pf_flush
#       postqueue -c DIR -f: try the deferred mail at once.

PF_PYTHON=${PF_PYTHON:-/usr/bin/python3}
PF_STARTED=

pf_init() {
  local dir=$1 port=$2 maps=$3 t
  for t in postfix postconf postqueue postmap; do
    if ! command -v "$t" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$t" ]; then
      echo "pf_init: $t not found (Debian package postfix)" >&2
      return 2
    fi
  done
  if ! getent passwd postfix >/dev/null; then
    echo "pf_init: no 'postfix' user (Debian package postfix)" >&2
    return 2
  fi
  PF_DIR=$dir
  PF_PORT=$port
  PF_LOG=$dir/log/maillog
  mkdir -p "$dir/queue" "$dir/data" "$dir/log" || return 2
  chown postfix "$dir/data" || return 2
  cat >"$dir/main.cf" <<EOF
# A private Postfix instance (tests/lib/postfix.sh, docs/postfix.md).
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
maillog_file = $PF_LOG
maillog_file_prefixes = $dir/log
myhostname = postfix.pf.test
mydomain = pf.test
myorigin = pf.test
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
# mxroute serve does the routing: bracketed next hops need no lookup.
transport_maps = $maps
disable_dns_lookups = yes
smtp_host_lookup = native
smtp_tls_security_level = none
smtp_connect_timeout = 5s
# Retry at once so the test sees every state without waiting.
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
EOF
  cat >"$dir/master.cf" <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
127.0.0.1:$port inet n  -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp${PF_SMTP_FLAGS:+ $PF_SMTP_FLAGS}
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
  export PF_DIR PF_PORT PF_LOG
}

pf_start() {
  local i
  timeout 30 postfix -c "$PF_DIR" start >"$PF_DIR/start.log" 2>&1 || {
    cat "$PF_DIR/start.log" >&2
    return 1
  }
  PF_STARTED=1
  for ((i = 0; i < 100; i++)); do
    if "$PF_PYTHON" -c "import socket; socket.create_connection(('127.0.0.1', $PF_PORT), 1).close()" 2>/dev/null; then
      return 0
    fi
    sleep 0.1
  done
  echo "pf_start: smtpd not listening on 127.0.0.1:$PF_PORT within 10 s" >&2
  return 1
}

pf_stop() {
  [ -n "$PF_STARTED" ] || return 0
  PF_STARTED=
  timeout 30 postfix -c "$PF_DIR" stop >/dev/null 2>&1
  # postfix stop returns before every child is gone: wait for the master.
  local pid i
  pid=$(head -n 1 "$PF_DIR/queue/pid/master.pid" 2>/dev/null | tr -dc 0-9)
  for ((i = 0; i < 100; i++)); do
    if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.1
  done
  return 0
}

pf_send() { # FROM TO SUBJECT
  timeout 30 "$PF_PYTHON" - "$PF_PORT" "$1" "$2" "$3" <<'PY'
import smtplib, sys, email.utils
port, sender, rcpt, subject = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
msg = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n\r\n"
       "A test message through mxroute serve.\r\n"
       % (sender, rcpt, subject, email.utils.formatdate(), email.utils.make_msgid()))
with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
    s.ehlo("client.pf.test")
    code, reply = s.mail(sender)
    if code != 250:
        sys.exit("MAIL FROM: %d %s" % (code, reply.decode()))
    code, reply = s.rcpt(rcpt)
    if code != 250:
        sys.exit("RCPT TO: %d %s" % (code, reply.decode()))
    code, reply = s.data(msg.encode())
    if code != 250:
        sys.exit("DATA: %d %s" % (code, reply.decode()))
    # "250 2.0.0 Ok: queued as 4Xyz..."
    print(reply.decode().rsplit(" ", 1)[-1])
PY
}

pf_sendmail() { # FROM TO SUBJECT
  local mid qid i
  mid="<mxroute.$$.$RANDOM.$SECONDS@client.pf.test>"
  printf 'From: <%s>\nTo: <%s>\nSubject: %s\nMessage-ID: %s\n\nA test message through mxroute serve.\n' \
    "$1" "$2" "$3" "$mid" | timeout 30 sendmail -C "$PF_DIR" -f "$1" -- "$2" || return 1
  for ((i = 0; i < 100; i++)); do
    qid=$(grep -m 1 -F "message-id=$mid" "$PF_LOG" 2>/dev/null | sed -E 's/.*: ([0-9A-Za-z]+): message-id=.*/\1/')
    [ -n "$qid" ] && { echo "$qid"; return 0; }
    sleep 0.1
  done
  echo "pf_sendmail: no cleanup line for $mid within 10 s" >&2
  return 1
}

pf_wait_log() { # PATTERN [SECONDS]
  local i secs=${2:-20}
  for ((i = 0; i < secs * 10; i++)); do
    if grep -m 1 -E -- "$1" "$PF_LOG" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  return 1
}

pf_queue() { timeout 10 postqueue -c "$PF_DIR" -p; }
pf_flush() { timeout 10 postqueue -c "$PF_DIR" -f; }
