# shellcheck shell=bash
# smtp.sh -- sourceable helpers for the SMTP integration tests: real SMTP
# peers on 127.0.0.x addresses, all on ONE port (so `mxroute --port PORT`
# applies to the whole plan), a throwaway CA and server certificate made with
# the openssl CLI, and zone files for `--zone`.
#
#   smtp_init [DIR]
#       Check the tools (/usr/bin/python3 with aiosmtpd, smtp-sink, openssl),
#       make $SMTP_DIR (DIR, default a new temporary directory), reset the
#       process list. Returns non-zero (with a message) if something is missing.
#   smtp_free_port ADDR...
#       Print a TCP port that can be bound on every ADDR (default
#       127.0.0.1..127.0.0.63). smtp_init sets SMTP_PORT with it.
#   smtp_peer NAME ADDR KIND [OPTIONS...]
#       Start tests/lib/smtp_peers.py KIND on ADDR:$SMTP_PORT and wait until it
#       listens. KIND: store | silent | trickle | drop-data | odd | multiline |
#       helo-only | starttls-refuse | tls-abort | tls-garbage | stall-data |
#       stall-dot (see smtp_peers.py). store, odd, multiline, helo-only and
#       stall-dot store messages in $SMTP_DIR/NAME/
#       (NAME-NNNN.eml + .json, see smtp_peers.py); every kind logs its events
#       to $SMTP_DIR/NAME.log (JSON Lines) and its stderr to $SMTP_DIR/NAME.err.
#   smtp_sink NAME ADDR [SMTP-SINK-OPTIONS...]
#       Start postfix's smtp-sink on ADDR:$SMTP_PORT (adds -u nobody when run
#       as root, which smtp-sink demands) and wait until it listens. Its output
#       goes to $SMTP_DIR/NAME.err. Options, see smtp-sink(1) and the notes
#       below: -f CMDS (5xx), -r CMDS (4xx), -Q CMDS (421 + close),
#       -q CMDS (close without reply); CMDS e.g. CONNECT, EHLO, MAIL, RCPT,
#       DATA, "." (end of data).
#   smtp_wait_listen ADDR PORT [SECONDS]
#       Wait (bounded, default 10 s) until a TCP socket listens on ADDR:PORT
#       (reads /proc/net/tcp: no connection is made).
#   smtp_stop_all
#       Stop every process started here (TERM, then KILL after 3 s). Safe to
#       call twice; call it from the EXIT trap.
#   smtp_make_certs DIR HOST...
#       A throwaway CA (DIR/ca.pem) and a server certificate for the first
#       HOST with every HOST as a DNS subjectAltName (DIR/server.pem,
#       DIR/server.key). EC P-256, valid for 2 days.
#   smtp_zone FILE ORIGIN < RECORDS
#       Write a zone file: $ORIGIN, $TTL, SOA and NS, then the records read
#       from standard input (zone file syntax).
#   smtp_count NAME          number of messages peer NAME stored
#   smtp_meta NAME [N]       the N-th (default: last) stored envelope (.json)
#   smtp_eml NAME [N]        path of the N-th (default: last) stored message
#   smtp_events NAME EVENT   the log lines of peer NAME with that event
#   smtp_find NAME ADDR      stored messages (path less .eml/.json) for ADDR
#
# smtp-sink notes (Postfix 3.7, as observed):
#   - "-f CONNECT" / "-r CONNECT": the greeting is "500 5.3.0 Error: command
#     failed" / "450 4.3.0 Error: command failed"; the session stays open and
#     QUIT is answered 221.
#   - "-f EHLO" answers EHLO 500 but accepts HELO (the HELO fallback case);
#     "-r EHLO" answers 450.
#   - -f and -r imply -p (PIPELINING is not offered).
#   - "-f ." / "-r ." answer the end of data 500 / 450.
#   - "-Q CMD" sends "421 4.0.0 Server closing connection" and closes.
#   - "-q CMD" closes without a reply (e.g. -q . : closed after the final
#     dot, before any reply; -q DATA: closed instead of 354).
#   - Its EHLO reply ends with an EMPTY keyword line: "250 \r\n".
#   - It throws messages away; use a store peer to check what arrived.

SMTP_PEERS_PY=${SMTP_PEERS_PY:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/smtp_peers.py}
SMTP_PYTHON=${SMTP_PYTHON:-/usr/bin/python3}
SMTP_PIDS=()

smtp_init() {
  local s
  SMTP_SINK_BIN=
  for s in /usr/sbin/smtp-sink /usr/lib/postfix/sbin/smtp-sink "$(command -v smtp-sink 2>/dev/null)"; do
    if [ -n "$s" ] && [ -x "$s" ]; then SMTP_SINK_BIN=$s; break; fi
  done
  if [ -z "$SMTP_SINK_BIN" ]; then
    echo "smtp_init: smtp-sink not found (Debian package postfix)" >&2
    return 2
  fi
  if ! "$SMTP_PYTHON" -c 'import aiosmtpd' 2>/dev/null; then
    echo "smtp_init: $SMTP_PYTHON cannot import aiosmtpd (Debian package python3-aiosmtpd)" >&2
    return 2
  fi
  command -v openssl >/dev/null 2>&1 || { echo "smtp_init: openssl missing" >&2; return 2; }
  if [ -n "${1:-}" ]; then
    SMTP_DIR=$1
    mkdir -p "$SMTP_DIR" || return 2
  else
    SMTP_DIR=$(mktemp -d "${TMPDIR:-/tmp}/mxr-smtp.XXXXXX") || return 2
  fi
  SMTP_PIDS=()
  # shellcheck disable=SC2119
  SMTP_PORT=$(smtp_free_port) || return 2
  export SMTP_DIR SMTP_PORT
}

# shellcheck disable=SC2120 # ADDR... is optional
smtp_free_port() {
  "$SMTP_PYTHON" - "$@" <<'PY'
import random, socket, sys
addrs = sys.argv[1:] or ["127.0.0.%d" % i for i in range(1, 64)]
rng = random.SystemRandom()
for _ in range(200):
    port = rng.randrange(20000, 60000)
    socks = []
    try:
        for a in addrs:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind((a, port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    break
else:
    raise SystemExit("smtp_free_port: no port free on every address")
PY
}

# /proc/net/tcp lists local addresses as the 32-bit value in host byte
# order: accept either order so this works on both endians.
smtp_wait_listen() {
  local addr=$1 port=$2 secs=${3:-10} a b c d le be p i
  IFS=. read -r a b c d <<<"$addr"
  le=$(printf '%02X%02X%02X%02X' "$d" "$c" "$b" "$a")
  be=$(printf '%02X%02X%02X%02X' "$a" "$b" "$c" "$d")
  p=$(printf '%04X' "$port")
  for ((i = 0; i < secs * 20; i++)); do
    if awk -v l="$le:$p" -v b="$be:$p" -v w="00000000:$p" \
         '$4 == "0A" && ($2 == l || $2 == b || $2 == w) { f = 1 } END { exit !f }' \
         /proc/net/tcp 2>/dev/null; then
      return 0
    fi
    sleep 0.05
  done
  echo "smtp_wait_listen: nothing listens on $addr:$port after ${secs}s" >&2
  return 1
}

smtp_peer() {
  local name=$1 addr=$2 kind=$3 pid i
  shift 3
  local extra=()
  case $kind in
    store|odd|multiline|helo-only|stall-dot) extra=(--dir "$SMTP_DIR/$name") ;;
  esac
  rm -f "$SMTP_DIR/$name.ready"
  "$SMTP_PYTHON" "$SMTP_PEERS_PY" "$kind" --listen "$addr:$SMTP_PORT" \
    --ready "$SMTP_DIR/$name.ready" --log "$SMTP_DIR/$name.log" \
    --hostname "${SMTP_HOSTNAME:-$name.peer.test}" "${extra[@]}" "$@" \
    </dev/null >"$SMTP_DIR/$name.out" 2>"$SMTP_DIR/$name.err" &
  pid=$!
  SMTP_PIDS+=("$pid")
  for ((i = 0; i < 200; i++)); do
    [ -s "$SMTP_DIR/$name.ready" ] && return 0
    if ! kill -0 "$pid" 2>/dev/null; then break; fi
    sleep 0.05
  done
  echo "smtp_peer: $kind '$name' did not start on $addr:$SMTP_PORT" >&2
  cat "$SMTP_DIR/$name.err" >&2 2>/dev/null
  return 1
}

smtp_sink() {
  local name=$1 addr=$2 pid
  shift 2
  local user=()
  [ "$(id -u)" = 0 ] && user=(-u nobody)
  "$SMTP_SINK_BIN" "${user[@]}" -4 "$@" "$addr:$SMTP_PORT" 16 \
    </dev/null >"$SMTP_DIR/$name.err" 2>&1 &
  pid=$!
  SMTP_PIDS+=("$pid")
  if ! smtp_wait_listen "$addr" "$SMTP_PORT" 10; then
    echo "smtp_sink: '$name' ($*) did not start on $addr:$SMTP_PORT" >&2
    cat "$SMTP_DIR/$name.err" >&2 2>/dev/null
    return 1
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "smtp_sink: '$name' exited" >&2
    cat "$SMTP_DIR/$name.err" >&2
    return 1
  fi
}

smtp_stop_all() {
  local pid i left
  [ ${#SMTP_PIDS[@]} -eq 0 ] && return 0
  for pid in "${SMTP_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for ((i = 0; i < 60; i++)); do
    left=0
    for pid in "${SMTP_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && left=1; done
    [ $left = 0 ] && break
    sleep 0.05
  done
  for pid in "${SMTP_PIDS[@]}"; do
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  done
  SMTP_PIDS=()
  return 0
}

smtp_make_certs() {
  local dir=$1 san="" h
  shift
  [ $# -ge 1 ] || { echo "smtp_make_certs: DIR HOST..." >&2; return 2; }
  mkdir -p "$dir" || return 2
  for h in "$@"; do san="${san:+$san,}DNS:$h"; done
  (
    set -e
    cd "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout ca.key -out ca.pem -days 2 -subj "/CN=mxroute test CA" \
      -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout server.key -out server.csr -subj "/CN=$1"
    printf '%s\n' "subjectAltName=$san" "basicConstraints=CA:FALSE" \
      "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
      -out server.pem -days 2 -extfile server.ext
  ) >"$dir/openssl.log" 2>&1 || { cat "$dir/openssl.log" >&2; return 1; }
}

smtp_zone() {
  local file=$1 origin=${2%.}
  {
    printf '$ORIGIN %s.\n$TTL 300\n' "$origin"
    printf '@\tSOA\tns.%s. hostmaster.%s. 1 3600 600 86400 300\n' "$origin" "$origin"
    printf '@\tNS\tns\nns\tA\t192.0.2.53\n'
    cat
  } >"$file"
}

smtp_count() {
  local n=0 f
  for f in "$SMTP_DIR/$1"/*.json; do [ -e "$f" ] && n=$((n + 1)); done
  echo "$n"
}

_smtp_nth() { # NAME EXT [N]
  local files=("$SMTP_DIR/$1"/*."$2")
  [ -e "${files[0]}" ] || return 1
  if [ -n "${3:-}" ]; then
    printf '%s\n' "${files[$(($3 - 1))]}"
  else
    printf '%s\n' "${files[${#files[@]} - 1]}"
  fi
}

smtp_meta() { local f; f=$(_smtp_nth "$1" json "${2:-}") && cat "$f"; }
smtp_eml() { _smtp_nth "$1" eml "${2:-}"; }

smtp_events() {
  [ -f "$SMTP_DIR/$1.log" ] || return 0
  jq -c --arg e "$2" 'select(.event == $e)' "$SMTP_DIR/$1.log"
}

# smtp_find NAME ADDR: the stored messages (paths without .json/.eml) of
# peer NAME whose envelope has the recipient ADDR, one a line.
smtp_find() {
  local f
  for f in "$SMTP_DIR/$1"/*.json; do
    [ -e "$f" ] || continue
    if jq -e --arg a "$2" 'any(.rcpt_tos[]; ascii_downcase == ($a | ascii_downcase))' "$f" >/dev/null; then
      printf '%s\n' "${f%.json}"
    fi
  done
}
