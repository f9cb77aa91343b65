# shellcheck shell=bash
# knot.sh -- sourceable helpers for integration tests: a real authoritative
# DNS server (knotd) on 127.0.0.1 and a free port, and UDP ports that stand
# for dead DNS servers.
#
#   knot_start ZONEDIR [EXTRA_CONF_FILE]
#       Serve every ZONEDIR/*.zone (origin from $ORIGIN in the file, else the
#       file name without .zone) plus the zone "servfail.test." whose file is
#       deliberately broken, so knotd answers SERVFAIL for it. EXTRA_CONF_FILE
#       (optional) is appended to the generated configuration. Exports
#       KNOT_PORT, KNOT_PID, KNOT_DIR. Returns non-zero (and prints the log)
#       if knotd does not answer for every zone within KNOT_WAIT_S (10) s.
#   knot_stop
#       Stop knotd and remove its directory. Safe to call twice.
#   knot2_start ZONEDIR [EXTRA_CONF_FILE] / knot2_stop
#       The same for a second, independent knotd, with KNOT2_PORT,
#       KNOT2_PID and KNOT2_DIR: two servers that answer differently for
#       one zone (a stale secondary). Either instance runs without the
#       other.
#   silent_udp_start / silent_udp_stop
#       A UDP socket bound on 127.0.0.1 that never reads nor answers: queries
#       sent there time out (reason "timeout"). Exports SILENT_PORT.
#   closed_udp_port
#       Prints a UDP port on 127.0.0.1 with nothing bound: the kernel answers
#       ICMP port-unreachable, which c-ares reports as connection refused
#       (reason "network").
#   free_port
#       Prints a port free for both UDP and TCP on 127.0.0.1.
#
# Use from a test script:
#   . "$MXR_SOURCE_DIR/tests/lib/knot.sh"
#   trap 'knot_stop; silent_udp_stop' EXIT
#   knot_start "$MXR_SOURCE_DIR/tests/zones" || exit 1

KNOT_SERVFAIL_ZONE=${KNOT_SERVFAIL_ZONE:-servfail.test}

_knot_py() {
  local py
  for py in /usr/bin/python3 python3; do
    if command -v "$py" >/dev/null 2>&1; then "$py" "$@"; return; fi
  done
  echo "knot.sh: python3 not found" >&2
  return 127
}

free_port() {
  _knot_py - <<'PY'
import socket
for _ in range(50):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        u.close(); t.close(); continue
    u.close(); t.close()
    print(port)
    break
else:
    raise SystemExit("no free port")
PY
}

closed_udp_port() {
  free_port
}

# The origin of a zone file: its $ORIGIN line, else the file name.
_knot_zone_origin() {
  local f=$1 o
  o=$(awk 'toupper($1) == "$ORIGIN" { print $2; exit }' "$f")
  if [ -z "$o" ]; then
    o=$(basename "$f")
    o=${o%.zone}
  fi
  o=${o%.}
  printf '%s\n' "$o"
}

# Write the configuration of an instance in dir serving every
# zonedir/*.zone (plus the broken servfail zone); the origins go to
# KNOT_ZONES. Returns 2 when there is no zone file.
_knot_write_conf() {
  local dir=$1 port=$2 zonedir=$3 extra=$4 f origin
  # A zone file knotd cannot parse: the zone stays unloaded -> SERVFAIL.
  printf '; deliberately broken\n$ORIGIN %s.\n@ SOA this is not valid\n' \
    "$KNOT_SERVFAIL_ZONE" >"$dir/$KNOT_SERVFAIL_ZONE.zone"
  KNOT_ZONES=()
  {
    cat <<CONF
server:
    listen: 127.0.0.1@$port
    rundir: "$dir"
    pidfile: "$dir/knot.pid"
    tcp-idle-timeout: 5
control:
    listen: "$dir/knot.sock"
database:
    storage: "$dir/db"
log:
  - target: "$dir/knot.log"
    any: info
template:
  - id: default
    storage: "$zonedir"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: none
    semantic-checks: off
zone:
CONF
    for f in "$zonedir"/*.zone; do
      [ -e "$f" ] || continue
      origin=$(_knot_zone_origin "$f")
      KNOT_ZONES+=("$origin")
      printf '  - domain: "%s."\n    file: "%s"\n' "$origin" "$f"
    done
    printf '  - domain: "%s."\n    file: "%s"\n' "$KNOT_SERVFAIL_ZONE" \
      "$dir/$KNOT_SERVFAIL_ZONE.zone"
    if [ -n "$extra" ]; then cat "$extra"; fi
  } >"$dir/knot.conf"
  if [ ${#KNOT_ZONES[@]} -eq 0 ]; then
    echo "knot_start: no *.zone file in $zonedir" >&2
    return 2
  fi
}

# Wait (bounded by KNOT_WAIT_S) until knotd (pid) answers every zone's SOA.
_knot_wait() {
  local pid=$1 port=$2 dir=$3 ok z
  local deadline=$(( $(date +%s) + ${KNOT_WAIT_S:-10} ))
  while :; do
    ok=1
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "knot_start: knotd exited" >&2
      cat "$dir/knotd.out" "$dir/knot.log" >&2 2>/dev/null
      return 1
    fi
    for z in "${KNOT_ZONES[@]}"; do
      if ! kdig @127.0.0.1 -p "$port" +timeout=1 +retry=0 +norec \
           SOA "$z." 2>/dev/null | grep -q 'status: NOERROR'; then
        ok=0; break
      fi
    done
    [ $ok -eq 1 ] && return 0
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "knot_start: knotd did not serve all zones within ${KNOT_WAIT_S:-10}s" >&2
      cat "$dir/knotd.out" "$dir/knot.log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
}

# Start an instance whose variables are PREFIX_PORT, PREFIX_PID and
# PREFIX_DIR (exported as soon as they are known, so a stop after a
# failed start cleans up).
_knot_start_as() {
  local prefix=$1 zonedir=$2 extra=${3:-} dir port pid
  if [ -z "$zonedir" ] || [ ! -d "$zonedir" ]; then
    echo "knot_start: no zone directory '$zonedir'" >&2
    return 2
  fi
  command -v knotd >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin
  command -v knotd >/dev/null 2>&1 || { echo "knot_start: knotd not found" >&2; return 2; }
  command -v kdig >/dev/null 2>&1 || { echo "knot_start: kdig not found" >&2; return 2; }
  zonedir=$(cd "$zonedir" && pwd)
  dir=$(mktemp -d "${TMPDIR:-/tmp}/mxr-knot.XXXXXX") || return 2
  printf -v "${prefix}_DIR" '%s' "$dir"
  export "${prefix}_DIR"
  port=$(free_port) || return 2
  mkdir -p "$dir/db"
  _knot_write_conf "$dir" "$port" "$zonedir" "$extra" || return 2
  knotd -c "$dir/knot.conf" >"$dir/knotd.out" 2>&1 &
  pid=$!
  printf -v "${prefix}_PID" '%s' "$pid"
  printf -v "${prefix}_PORT" '%s' "$port"
  export "${prefix}_PORT" "${prefix}_PID"
  _knot_wait "$pid" "$port" "$dir"
}

_knot_stop_as() {
  local prefix=$1 pidvar=${1}_PID dirvar=${1}_DIR
  local pid=${!pidvar:-} dir=${!dirvar:-}
  if [ -n "$pid" ]; then
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    printf -v "$pidvar" '%s' ""
  fi
  if [ -n "$dir" ] && [ -d "$dir" ]; then
    rm -rf "$dir"
    printf -v "$dirvar" '%s' ""
  fi
  return 0
}

knot_start() { _knot_start_as KNOT "$@"; }
knot_stop() { _knot_stop_as KNOT; }
knot2_start() { _knot_start_as KNOT2 "$@"; }
knot2_stop() { _knot_stop_as KNOT2; }

silent_udp_start() {
  local f py
  py=$(command -v python3 || echo /usr/bin/python3)
  f=$(mktemp "${TMPDIR:-/tmp}/mxr-silent.XXXXXX") || return 2
  # Bind, report the port, never read; exit by itself after 15 minutes.
  # exec: $! is the python process itself, so silent_udp_stop can end it.
  ( exec "$py" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
with open(sys.argv[1], "w") as f:
    f.write("%d\n" % s.getsockname()[1])
time.sleep(900)
' "$f" </dev/null >/dev/null 2>&1 ) &
  SILENT_PID=$!
  SILENT_PORT=
  for _ in $(seq 1 100); do
    SILENT_PORT=$(cat "$f" 2>/dev/null)
    [ -n "$SILENT_PORT" ] && break
    sleep 0.05
  done
  rm -f "$f"
  if [ -z "$SILENT_PORT" ]; then
    echo "silent_udp_start: no port" >&2
    silent_udp_stop
    return 1
  fi
  export SILENT_PORT SILENT_PID
}

silent_udp_stop() {
  if [ -n "${SILENT_PID:-}" ]; then
    kill "$SILENT_PID" 2>/dev/null
    wait "$SILENT_PID" 2>/dev/null
    SILENT_PID=
  fi
  return 0
}
