# shellcheck shell=bash
# doc_smtp.sh -- the SMTP servers of docs/smtp-client.md, for its
# <!-- doctest: --> setup steps (tests/it_docs.sh): the document's two MX
# hosts, mx1 on 127.0.0.2 and mx2 on 127.0.0.3, served by the same real
# peers as tests/it_smtp.sh (tests/lib/smtp.sh), on a port picked now.
#
#   doc_smtp_init
#       smtp_init in the document's tree; sets O as the document does, but
#       with the port picked here, and masks that port as 2525, the one the
#       document shows.
#   doc_smtp HOST KIND
#       Stop what serves HOST (mx1 or mx2), then serve it with KIND:
#         none      nothing listens (connections are refused)
#         aiosmtpd  python3 -m aiosmtpd, as the document starts it
#         silent    accepts the connection, never greets
#         store     tests/lib/smtp_peers.py store, refusing nobody@ with 550
#                   and busy@ with 452
#         tls       store with STARTTLS and a self-signed certificate for
#                   mx2.example.test, written to ./c.pem (the document's
#                   trust anchor)

# shellcheck source=tests/lib/smtp.sh
. "$MXR_SOURCE_DIR/tests/lib/smtp.sh"

declare -A DOC_SMTP_PID=()

doc_smtp_init() {
  smtp_init "$PWD/smtp" || return 1
  # shellcheck disable=SC2034 # the document's commands use $O
  O="--zone example.test.zone --allow-loopback --port $SMTP_PORT --timeout 2000"
  doc_mask "]:$SMTP_PORT" "]:2525"
  doc_mask "\"port\": $SMTP_PORT," "\"port\": 2525,"
}

_doc_smtp_addr() {
  case $1 in
    mx1) echo 127.0.0.2 ;;
    mx2) echo 127.0.0.3 ;;
    *) echo "doc_smtp: unknown host '$1' (mx1 or mx2)" >&2; return 1 ;;
  esac
}

# Stop the server of HOST (only the process started for it).
_doc_smtp_stop() {
  local pid=${DOC_SMTP_PID[$1]:-} i
  [ -n "$pid" ] || return 0
  kill "$pid" 2>/dev/null
  for ((i = 0; i < 60; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  DOC_SMTP_PID[$1]=
}

_doc_smtp_cert() {
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$SMTP_DIR/c.key" -out c.pem -days 2 -subj "/CN=mx2.example.test" \
    -addext "subjectAltName=DNS:mx2.example.test" >"$SMTP_DIR/openssl.log" 2>&1 ||
    { cat "$SMTP_DIR/openssl.log" >&2; return 1; }
}

doc_smtp() {
  local host=$1 kind=$2 addr
  addr=$(_doc_smtp_addr "$host") || return 1
  _doc_smtp_stop "$host"
  case $kind in
    none) return 0 ;;
    aiosmtpd)
      "$SMTP_PYTHON" -m aiosmtpd -n -l "$addr:$SMTP_PORT" </dev/null >"$SMTP_DIR/$host.err" 2>&1 &
      DOC_SMTP_PID[$host]=$!
      SMTP_PIDS+=("$!")
      smtp_wait_listen "$addr" "$SMTP_PORT" ;;
    silent)
      smtp_peer "$host" "$addr" silent || return 1 ;;
    store)
      smtp_peer "$host" "$addr" store --reject-rcpt "nobody@example.test=550 5.1.1 No such user" \
        --defer-rcpt "busy@example.test=452 4.2.2 Mailbox full" || return 1 ;;
    tls)
      _doc_smtp_cert || return 1
      smtp_peer "$host" "$addr" store --tls-cert c.pem --tls-key "$SMTP_DIR/c.key" || return 1 ;;
    *) echo "doc_smtp: unknown kind '$kind'" >&2; return 1 ;;
  esac
  [ "$kind" = aiosmtpd ] || DOC_SMTP_PID[$host]=${SMTP_PIDS[${#SMTP_PIDS[@]} - 1]}
}
