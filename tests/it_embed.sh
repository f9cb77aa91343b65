#!/usr/bin/env bash
# it_embed.sh -- the embedding examples (examples/blocking.c,
# examples/epoll_routes.c, examples/relay.c, examples/deliver.c) build
# against the *installed* library through pkg-config, with
# examples/Makefile, and behave as their comments say: offline on
# examples/zones, on a real knotd (--server) when knotd is installed, and
# (deliver) against real SMTP peers on 127.0.0.x (tests/lib/smtp.sh:
# aiosmtpd store peers, a silent listener, a closed address) when their
# tools are installed.
#
# Steps: `cmake --install` the build into a temporary prefix; `make -C
# examples O=<tmp>` with PKG_CONFIG_PATH pointing there (no binary is left
# in the source tree); run each program (bounded by `timeout`) with
# LD_LIBRARY_PATH set to the installed library; `make clean`.
#
# Environment: MXR_BUILD_DIR (the build directory; default build/),
# MXR_SOURCE_DIR (default: the script's parent directory).
# Ends with "N passed, N failed"; exits 1 if anything failed.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
RUN_TIMEOUT=${RUN_TIMEOUT:-30}

passed=0
failed=0
skipped=0

. "$SRC/tests/lib/cli_harness.sh" # fail_fast (this script has its own run and fail)
pass() { passed=$((passed + 1)); echo "PASS $1"; }
# A part that cannot run here is a SKIP, named again in the summary; under
# CI (CI=true) it is a failure: CI must run everything.
skipped_names=()
skip() {
  skipped=$((skipped + 1))
  skipped_names+=("$1")
  if [ "${CI:-}" = true ]; then
    fail "$1" "to run under CI (CI=true): a skip is a failure" "skipped"
  else
    echo "SKIP $1"
  fi
}
fail() {
  failed=$((failed + 1))
  echo "FAIL $1"
  [ -n "${2:-}" ] && echo "     expected: $2"
  [ -n "${3:-}" ] && echo "     got:      $3"
  [ -n "${LAST_CMD:-}" ] && echo "     command:  $LAST_CMD"
  [ -s "${OUT:-/nonexistent}" ] && echo "     stdout:   $(head -c 1500 "$OUT")"
  [ -s "${ERR:-/nonexistent}" ] && echo "     stderr:   $(head -c 600 "$ERR")"
  fail_fast "$passed" "$failed"
}
finish() {
  [ "$skipped" -gt 0 ] && printf 'skipped (%d): %s\n' "$skipped" "${skipped_names[*]}"
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit $?
}
# A fatal problem before anything could run: one failure, and stop.
die() { fail "$1" "${2:-}" "${3:-}"; finish; }

for tool in cmake make cc pkg-config timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "setup: $tool not found"
done
[ -d "$BUILD" ] || die "setup: no build directory $BUILD (set MXR_BUILD_DIR)"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-embed.XXXXXX") || die "setup: mktemp"
KNOT_PID=
SMTP_UP=0
cleanup() {
  if [ -n "${KNOT_PID:-}" ]; then knot_stop; fi
  if [ "$SMTP_UP" = 1 ]; then smtp_stop_all; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OUT=$TMP/out
ERR=$TMP/err
RC=0
PREFIX=$TMP/prefix
BIN=$TMP/bin

# run PROG ARGS...: one example (bounded), stdout in $OUT, stderr in $ERR,
# exit code in $RC. Standard input from $STDIN (default /dev/null).
run() {
  local prog=$1
  shift
  LAST_CMD="$prog $(printf '%q ' "$@")"
  LD_LIBRARY_PATH=$LIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH} \
    timeout "$RUN_TIMEOUT" "$BIN/$prog" "$@" <"${STDIN:-/dev/null}" \
    >"$OUT" 2>"$ERR"
  RC=$?
}

expect_rc() {
  if [ "$RC" = "$2" ]; then pass "$1 (exit $2)"; else fail "$1" "exit $2" "exit $RC"; fi
}
expect_out() {
  if grep -Eq -- "$2" "$OUT"; then pass "$1"; else fail "$1" "stdout ~ /$2/" "no match"; fi
}
expect_no_out() { # an empty stdout proves no absence
  if [ ! -s "$OUT" ] || grep -Eq -- "$2" "$OUT"; then fail "$1" "stdout !~ /$2/, not empty" "a match or nothing"; else pass "$1"; fi
}
expect_err() {
  if grep -Eq -- "$2" "$ERR"; then pass "$1"; else fail "$1" "stderr ~ /$2/" "no match"; fi
}

# ---------------------------------------------------------------- install

LAST_CMD="cmake --install $BUILD --prefix $PREFIX"
if ! timeout 300 cmake --install "$BUILD" --prefix "$PREFIX" >"$OUT" 2>"$ERR"; then
  die "install: cmake --install into a temporary prefix"
fi
pass "install: cmake --install into a temporary prefix"

# GNUInstallDirs decides lib or lib/<multiarch>: find the .pc file.
PC=$(find "$PREFIX" -name mxroute.pc -path '*/pkgconfig/*' | head -n 1)
[ -n "$PC" ] || die "install: mxroute.pc installed" "a pkgconfig/mxroute.pc under $PREFIX" "none"
PCDIR=$(dirname "$PC")
LIBDIR=$(dirname "$PCDIR")
[ -e "$LIBDIR/libmxroute.so" ] || die "install: libmxroute.so next to pkgconfig/" "$LIBDIR/libmxroute.so" "missing"
[ -e "$PREFIX/include/mxroute.h" ] || die "install: mxroute.h installed" "$PREFIX/include/mxroute.h" "missing"
pass "install: mxroute.pc, libmxroute.so and mxroute.h (libdir ${LIBDIR#"$PREFIX"/})"

# mxroute.pc carries the prefix chosen at configure time
# (CMAKE_INSTALL_PREFIX), not the one given to `cmake --install --prefix`.
# Point the test copy at where it really is, and say so.
pc_prefix=$(sed -n 's/^prefix=//p' "$PC")
if [ "$pc_prefix" != "$PREFIX" ]; then
  echo "NOTE mxroute.pc says prefix=$pc_prefix (the configure-time prefix);" \
       "rewritten to the install prefix for this test"
  sed -i "s|^prefix=.*|prefix=$PREFIX|" "$PC"
fi
export PKG_CONFIG_PATH=$PCDIR${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}

got=$(pkg-config --cflags --libs mxroute 2>&1)
case " $got " in
  *" -I$PREFIX/include "*"-L$LIBDIR "*"-lmxroute "*)
    pass "pkg-config: flags point into the install prefix" ;;
  *) LAST_CMD="pkg-config --cflags --libs mxroute"
     fail "pkg-config: flags point into the install prefix" \
          "-I$PREFIX/include ... -L$LIBDIR -lmxroute" "$got" ;;
esac

# ------------------------------------------------------------------ build

# A sanitizer build of the library (MXR_SANITIZE, the second suite of
# scripts/test.sh) needs programs built with the same runtime.
MAKE_VARS=(O="$BIN")
if grep -q '^MXR_SANITIZE:BOOL=ON' "$BUILD/CMakeCache.txt" 2>/dev/null; then
  san="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"
  MAKE_VARS+=(CFLAGS="-std=c11 -O1 -g $san" LDFLAGS="$san")
  echo "NOTE sanitizer build: the examples are built with $san"
fi

LAST_CMD="make -C $SRC/examples ${MAKE_VARS[*]}"
if timeout 300 make -C "$SRC/examples" "${MAKE_VARS[@]}" >"$OUT" 2>"$ERR"; then
  pass "build: make -C examples O=DIR (-Wall -Wextra -Werror)"
else
  die "build: make -C examples O=DIR (-Wall -Wextra -Werror)"
fi
for p in blocking epoll_routes relay deliver; do
  [ -x "$BIN/$p" ] || die "build: $p built" "$BIN/$p" "missing"
  [ -e "$SRC/examples/$p" ] && fail "build: no $p left in the source tree" "" "$SRC/examples/$p"
done
pass "build: four programs in O=, none in the source tree"
if grep -q -- "-lmxroute" "$OUT" && ! grep -Eq -- "-l(cares|ldns|idn2|lua)" "$OUT"; then
  pass "build: linked with -lmxroute only (shared library)"
else
  fail "build: linked with -lmxroute only (shared library)" "-lmxroute, no private deps" "$(grep -- -o "$OUT" | head -n 3)"
fi
LAST_CMD="ldd $BIN/blocking"
if LD_LIBRARY_PATH=$LIBDIR ldd "$BIN/blocking" 2>&1 | grep -q "libmxroute.so.0 => $LIBDIR/"; then
  pass "build: blocking loads the installed libmxroute.so.0"
else
  fail "build: blocking loads the installed libmxroute.so.0" "libmxroute.so.0 => $LIBDIR/..." \
       "$(LD_LIBRARY_PATH=$LIBDIR ldd "$BIN/blocking" 2>&1 | grep mxroute)"
fi

# tests/broken_binaries.sh: MXR_BROKEN_EXAMPLE names a broken program that
# takes the place of each example (the real one kept as PROG.real, which
# the fake may run): every check below must then be able to fail.
if [ -n "${MXR_BROKEN_EXAMPLE:-}" ]; then
  for p in blocking epoll_routes relay deliver; do
    mv "$BIN/$p" "$BIN/$p.real" && cp "$MXR_BROKEN_EXAMPLE" "$BIN/$p"
  done
  echo "NOTE the examples are replaced by $MXR_BROKEN_EXAMPLE"
fi

ZONES=()
for z in "$SRC"/examples/zones/*.zone; do ZONES+=(--zone "$z"); done
DOMAINS=$SRC/examples/domains.txt

# --------------------------------------------------------------- blocking

run blocking "${ZONES[@]}" example.com
expect_rc "blocking: example.com" 0
expect_out "blocking: example.com preference, host, addresses (primary)" \
  '^ +10 mail1\.example\.com 2001:db8::10 192\.0\.2\.10$'
expect_out "blocking: example.com preference, host, addresses (backup)" \
  '^ +20 mail2\.example\.com 2001:db8::20 192\.0\.2\.20$'

run blocking "${ZONES[@]}" tiered.example.com
expect_rc "blocking: tiered.example.com" 0
if [ "$(grep -Ec '^ +[0-9]+ ' "$OUT")" = 5 ] &&
   grep -Eq '^ +50 offsite-backup\.example\.net ' "$OUT"; then
  pass "blocking: tiered.example.com has 5 hosts, the offsite backup last"
else
  fail "blocking: tiered.example.com has 5 hosts, the offsite backup last"
fi

run blocking "${ZONES[@]}" noaddr.example.com
expect_out "blocking: skipped hosts are listed with their reason" \
  '^ +skipped mail\.noaddr\.example\.com: no-address$'

run blocking "${ZONES[@]}" nullmx.example.com
expect_rc "blocking: null MX is a permanent failure" 68
expect_out "blocking: null MX reason" '^nullmx\.example\.com: permfail \(null-mx\)$'

run blocking "${ZONES[@]}" nosuchdomain.example.com
expect_rc "blocking: NXDOMAIN is a permanent failure" 68

run blocking "${ZONES[@]}" foo.invalid
expect_rc "blocking: a name no zone serves is a temporary failure" 75
expect_out "blocking: tempfail printed" '^foo\.invalid: tempfail '

run blocking "${ZONES[@]}" example.com nullmx.example.com foo.invalid
expect_rc "blocking: several inputs: the first failure decides" 68
if [ "$(grep -c '^[a-z]' "$OUT")" = 3 ]; then pass "blocking: one plan per input"; else fail "blocking: one plan per input" "3 plans"; fi

run blocking "${ZONES[@]}" 'bad..name'
expect_rc "blocking: bad input" 65
expect_err "blocking: bad input explained" 'bad\.\.name: .*label'

run blocking "${ZONES[@]}"
expect_rc "blocking: no input is a usage error" 64
run blocking --zone "$TMP/missing.zone" example.com
expect_rc "blocking: a missing zone file is a usage error" 64
expect_err "blocking: the missing zone file is named" 'missing\.zone'

# ------------------------------------------------------------ epoll_routes

# The inputs of domains.txt, one per line, sorted.
grep -Ev '^[[:space:]]*(#|$)' "$DOMAINS" | sed 's/[[:space:]]*$//' | sort >"$TMP/want"
NDOM=$(wc -l <"$TMP/want")

# check_all_answered LABEL: every input answered exactly once, in $OUT.
check_all_answered() {
  awk '{print $1}' "$OUT" | sort >"$TMP/got"
  if cmp -s "$TMP/want" "$TMP/got"; then
    pass "$1: every domain of domains.txt answered once ($NDOM)"
  else
    fail "$1: every domain of domains.txt answered once ($NDOM)" "$NDOM lines" \
         "$(diff "$TMP/want" "$TMP/got" | head -n 10 | tr '\n' ' ')"
  fi
  if grep -Eq "^$NDOM answered \(" "$ERR"; then
    pass "$1: stats count $NDOM answered"
  else
    fail "$1: stats count $NDOM answered" "$NDOM answered" "$(head -n 1 "$ERR")"
  fi
}

STDIN=$DOMAINS run epoll_routes -n 4 "${ZONES[@]}"
expect_rc "epoll (zones, stdin, -n 4)" 0
check_all_answered "epoll (zones, stdin, -n 4)"
expect_out "epoll (zones): a plan line lists the hosts in order" \
  '^example\.com ok mail1\.example\.com mail2\.example\.com$'
expect_out "epoll (zones): a permanent failure with its reason" '^nullmx\.example\.com permfail null-mx$'
inmax=$(sed -n 's/^in flight at most \([0-9]*\) .*/\1/p' "$ERR")
if [ -n "$inmax" ] && [ "$inmax" -ge 1 ] && [ "$inmax" -le 4 ]; then
  pass "epoll (zones): at most 4 routes in flight (saw $inmax)"
else
  fail "epoll (zones): at most 4 routes in flight" "1..4" "${inmax:-none}"
fi
expect_err "epoll (zones): no descriptor with zone files" 'sockets 0 added'
# For the comparison with knotd: domain, result, hosts sorted (ties are
# shuffled, so only the set is compared).
normalize() {
  local d r rest
  while read -r d r rest; do
    # shellcheck disable=SC2086  # split the host list on purpose
    printf '%s %s %s\n' "$d" "$r" "$(printf '%s\n' $rest | sort | tr '\n' ' ')"
  done <"$OUT" | sort
}
normalize >"$TMP/zone-plans"

STDIN=/dev/null run epoll_routes -n 1 "${ZONES[@]}" "$DOMAINS"
expect_rc "epoll (zones, FILE, -n 1)" 0
check_all_answered "epoll (zones, FILE, -n 1)"

{ cat "$DOMAINS"; echo; echo '# a comment'; echo 'bad..name'; } >"$TMP/with-bad.txt"
run epoll_routes "${ZONES[@]}" "$TMP/with-bad.txt"
expect_rc "epoll: bad input does not stop the loop" 0
expect_out "epoll: bad input reported in line" '^bad\.\.name error bad-input$'
if [ "$(wc -l <"$OUT")" = $((NDOM + 1)) ]; then pass "epoll: one line per input, comments skipped"; else fail "epoll: one line per input, comments skipped" "$((NDOM + 1)) lines" "$(wc -l <"$OUT")"; fi

run epoll_routes -n 0 "${ZONES[@]}"
expect_rc "epoll: -n 0 is a usage error" 64

# ------------------------------------------------------------------ relay

FROM=(--from sender@example.net)

# A primary that refuses connections: the backup takes the message.
printf '# the primary is down\nprimary.backup.example.com=refused\n' >"$TMP/refused.out"
run relay "${ZONES[@]}" "${FROM[@]}" --to alice@backup.example.com --outcomes "$TMP/refused.out"
expect_rc "relay: primary refused" 0
expect_out "relay: primary refused: hop 1 is the primary" '^hop 1: primary\.backup\.example\.com 192\.0\.2\.12 port 25'
expect_out "relay: primary refused: next-address" '^ +connect +refused -> next-address$'
expect_out "relay: primary refused: hop 2 is the backup" '^hop 2: backup\.backup\.example\.com '
expect_out "relay: primary refused: delivered by the backup host" \
  '^alice@backup\.example\.com: delivered \(backup\.backup\.example\.com: 250 '

# A 451 at RCPT on the last host: deferred with that reply.
printf 'primary.backup.example.com=refused\nbackup.backup.example.com:rcpt=451/4.2.1/Mailbox busy\n' >"$TMP/rcpt451.out"
run relay "${ZONES[@]}" "${FROM[@]}" --to alice@backup.example.com --outcomes "$TMP/rcpt451.out"
expect_rc "relay: 451 at rcpt on the last host" 75
expect_out "relay: 451 at rcpt: nobody accepted -> defer" '^ +rcpt +nobody accepted -> defer$'
expect_out "relay: 451 at rcpt: deferred with the reply" \
  '^alice@backup\.example\.com: deferred, retry in [0-9]+ s \(backup\.backup\.example\.com: 451 4\.2\.1 Mailbox busy\)$'

# A policy (a file under /tmp) puts a relay first; the relay refuses one
# recipient: that one bounces, the other is delivered by the relay.
cat >"$TMP/relay-policy.lua" <<'LUA'
-- Send everything through a relay first; direct MX stays as fallback.
local config = ...
return {
  route = function(plan)
    plan:add{host = config.relay, addresses = {"192.0.2.250"}, port = 587,
             tls = true, position = "first", label = "relay"}
  end,
}
LUA
printf 'relay.example.net:rcpt:bob@backup.example.com=550/5.1.1/No such user\n' >"$TMP/bob550.out"
run relay "${ZONES[@]}" "${FROM[@]}" --to alice@backup.example.com --to bob@backup.example.com \
  --policy "$TMP/relay-policy.lua" --policy-config "{ relay = 'relay.example.net' }" \
  --outcomes "$TMP/bob550.out"
expect_rc "relay: policy relay, 550 for one recipient" 68
expect_out "relay: the policy's relay is first in the plan" \
  '^ +0 relay\.example\.net port 587 \[policy\] label relay tls: 192\.0\.2\.250$'
expect_out "relay: hop 1 is the relay, TLS required" '^hop 1: relay\.example\.net 192\.0\.2\.250 port 587, .*label relay, tls required'
expect_out "relay: STARTTLS in the session" '^ +tls +220 -> continue$'
expect_out "relay: bob refused at rcpt -> bounce" '^ +rcpt +550 5\.1\.1 No such user <bob@backup\.example\.com> -> bounce$'
expect_out "relay: bob bounced" '^bob@backup\.example\.com: bounced \(relay\.example\.net: 550 5\.1\.1 No such user\)$'
expect_out "relay: alice delivered by the relay" '^alice@backup\.example\.com: delivered \(relay\.example\.net: 250 '
expect_no_out "relay: one hop was enough" '^hop 2:'
expect_out "relay: summary" '^1 delivered, 1 bounced, 0 deferred$'

# No policy, same outcomes: the relay line matches nothing, both delivered.
run relay "${ZONES[@]}" "${FROM[@]}" --to alice@backup.example.com --to bob@backup.example.com \
  --outcomes "$TMP/bob550.out"
expect_rc "relay: without the policy both go direct" 0
expect_out "relay: without the policy: summary" '^2 delivered, 0 bounced, 0 deferred$'

# A null MX domain: the attempt is over before any hop.
run relay "${ZONES[@]}" "${FROM[@]}" --to x@nullmx.example.com
expect_rc "relay: null MX bounces" 68
expect_no_out "relay: null MX: no hop" '^hop '
expect_out "relay: null MX: routing reason" '^x@nullmx\.example\.com: bounced .*null-mx'

printf 'this is not an outcome\n' >"$TMP/bad.out"
run relay "${ZONES[@]}" "${FROM[@]}" --to a@example.com --outcomes "$TMP/bad.out"
expect_rc "relay: bad outcomes file" 64
expect_err "relay: bad outcomes file: file:line" 'bad\.out:1:'

printf 'return {' >"$TMP/broken.lua"
run relay "${ZONES[@]}" "${FROM[@]}" --to a@example.com --policy "$TMP/broken.lua"
expect_rc "relay: a broken policy is refused at engine creation" 64
expect_err "relay: broken policy named" 'broken\.lua'

# ------------------------------------------------------ real DNS (knotd)

KNOT_OK=0
if command -v python3 >/dev/null 2>&1 &&
   { command -v knotd >/dev/null 2>&1 || [ -x /usr/sbin/knotd ]; }; then
  # shellcheck source=lib/knot.sh
  . "$SRC/tests/lib/knot.sh"
  if knot_start "$SRC/examples/zones" >"$TMP/knot.log" 2>&1; then
    KNOT_OK=1
  else
    fail "knotd: serve examples/zones" "knotd running" "$(tail -n 5 "$TMP/knot.log")"
  fi
else
  skip "knotd or python3 not installed: --server runs"
fi

if [ "$KNOT_OK" = 1 ]; then
  SERVER=(--server "127.0.0.1:$KNOT_PORT")

  run blocking "${SERVER[@]}" example.com
  expect_rc "blocking --server: example.com" 0
  expect_out "blocking --server: same plan as offline" '^ +10 mail1\.example\.com 2001:db8::10 192\.0\.2\.10$'
  run blocking "${SERVER[@]}" nullmx.example.com
  expect_rc "blocking --server: null MX" 68

  STDIN=$DOMAINS run epoll_routes -n 5 "${SERVER[@]}"
  expect_rc "epoll --server (stdin, -n 5)" 0
  check_all_answered "epoll --server (stdin, -n 5)"
  nadd=$(sed -n 's/.*sockets \([0-9]*\) added.*/\1/p' "$ERR")
  ndel=$(sed -n 's/.*added, [0-9]* modified, \([0-9]*\) removed.*/\1/p' "$ERR")
  if [ -n "$nadd" ] && [ "$nadd" -ge 1 ]; then
    pass "epoll --server: the socket callback registered descriptors ($nadd)"
  else
    fail "epoll --server: the socket callback registered descriptors" ">= 1 added" "$(tail -n 1 "$ERR")"
  fi
  if [ -n "$ndel" ] && [ "$ndel" = "$nadd" ]; then
    pass "epoll --server: every descriptor removed at the end"
  else
    fail "epoll --server: every descriptor removed at the end" "$nadd removed" "${ndel:-none}"
  fi
  normalize >"$TMP/knot-plans"
  if [ -s "$TMP/zone-plans" ] && cmp -s "$TMP/zone-plans" "$TMP/knot-plans"; then
    pass "epoll --server: same answers as from the zone files"
  else
    fail "epoll --server: same answers as from the zone files" "identical" \
         "$(diff "$TMP/zone-plans" "$TMP/knot-plans" | head -n 6 | tr '\n' ' ')"
  fi

  run relay "${SERVER[@]}" "${FROM[@]}" --to alice@backup.example.com --outcomes "$TMP/refused.out"
  expect_rc "relay --server: primary refused" 0
  expect_out "relay --server: delivered by the backup host" \
    '^alice@backup\.example\.com: delivered \(backup\.backup\.example\.com: '

  # A port where nothing listens: every route a temporary failure, and the
  # loop still ends.
  DEAD=$(closed_udp_port)
  STDIN=$DOMAINS run epoll_routes "${SERVER[0]}" "127.0.0.1:$DEAD"
  expect_rc "epoll --server (dead port): ends" 0
  check_all_answered "epoll --server (dead port)"
  if [ "$(grep -c ' tempfail ' "$OUT")" = "$NDOM" ]; then
    pass "epoll --server (dead port): every route tempfail"
  else
    fail "epoll --server (dead port): every route tempfail" "$NDOM" "$(grep -c ' tempfail ' "$OUT")"
  fi
fi

# ---------------------------------------------------- deliver (real SMTP)

# deliver runs libmxroute's SMTP client in its own epoll loop, driven by
# the socket callback. Peers (all on $SMTP_PORT): .2 store (the backup),
# .3 store refusing bad@other.embed.test, .5 silent (never greets); .4 is
# closed. DNS comes from a zone file.
# shellcheck source=lib/smtp.sh
. "$SRC/tests/lib/smtp.sh"
SMTP_OK=0
if ! command -v jq >/dev/null 2>&1; then
  skip "jq not installed: deliver against SMTP peers"
elif ! smtp_init "$TMP/smtp" >"$TMP/smtp-init.log" 2>&1; then
  skip "SMTP peer tools missing: deliver against SMTP peers ($(head -n 1 "$TMP/smtp-init.log"))"
else
  SMTP_UP=1
  if smtp_peer backup 127.0.0.2 store &&
     smtp_peer other 127.0.0.3 store --reject-rcpt bad@other.embed.test=550 &&
     smtp_peer silent 127.0.0.5 silent; then
    SMTP_OK=1
    pass "deliver: SMTP peers listen on 127.0.0.2, .3, .5 port $SMTP_PORT"
  else
    fail "deliver: SMTP peers listen on 127.0.0.2, .3, .5 port $SMTP_PORT" \
      "three peers" "$(cat "$SMTP_DIR"/*.err 2>/dev/null | head -c 600)"
  fi
fi

if [ "$SMTP_OK" = 1 ]; then
  P=$SMTP_PORT
  smtp_zone "$TMP/embed.test.zone" embed.test <<'ZONE'
mx1.failover	A	127.0.0.4
mx2.failover	A	127.0.0.2
failover	MX	10 mx1.failover
failover	MX	20 mx2.failover
plain		MX	10 mx2.failover
mx.other	A	127.0.0.3
other		MX	10 mx.other
mx1.slow	A	127.0.0.5
slow		MX	10 mx1.slow
slow		MX	20 mx2.failover
down		MX	10 mx1.failover
ZONE
  D=(--zone "$TMP/embed.test.zone" --allow-loopback --port "$P"
     --helo deliver.embed.test --from sender@client.test)
  # CRLF, with lines that must be dot-stuffed: ".x", "..x" and a lone ".".
  printf 'From: <sender@client.test>\r\nTo: <check@failover.embed.test>\r\nSubject: deliver.c\r\n\r\nfirst line\r\n.leading dot\r\n..two dots\r\n.\r\nafter a lone dot\r\nlast line\r\n' >"$TMP/msg.eml"

  # stored_equals NAME PEER RCPT: exactly one message for RCPT at PEER,
  # byte for byte the input.
  stored_equals() {
    local found n
    found=$(smtp_find "$2" "$3")
    n=$(printf '%s' "$found" | grep -c .)
    if [ "$n" != 1 ]; then
      fail "$1" "one message for $3 at $2" "$n"
    elif cmp -s "$found.eml" "$TMP/msg.eml"; then
      pass "$1"
    else
      fail "$1" "stored bytes == input ($(wc -c <"$TMP/msg.eml") bytes)" \
        "$(wc -c <"$found.eml") bytes; $(cmp "$found.eml" "$TMP/msg.eml" 2>&1 | head -n 1)"
    fi
  }
  # stored_envelope NAME PEER RCPT JQ: the envelope of RCPT's message holds.
  stored_envelope() {
    local f
    f=$(smtp_find "$2" "$3" | head -n 1)
    if [ -n "$f" ] && jq -e "$4" "$f.json" >/dev/null 2>&1; then
      pass "$1"
    else
      fail "$1" "jq: $4" "$(cat "$f.json" 2>/dev/null || echo 'no message')"
    fi
  }
  # line_of REGEX: number of the first stdout line matching, or 0.
  line_of() {
    local n
    n=$(grep -En -- "$1" "$OUT" | head -n 1 | cut -d: -f1)
    echo "${n:-0}"
  }
  # expect_socks_balanced NAME MIN: the socket callback added at least MIN
  # descriptors (with zone files, all SMTP) and removed every one.
  expect_socks_balanced() {
    local add del
    add=$(sed -n 's/^sockets \([0-9]*\) added.*/\1/p' "$ERR")
    del=$(sed -n 's/^sockets .* \([0-9]*\) removed$/\1/p' "$ERR")
    if [ -n "$add" ] && [ "$add" -ge "$2" ] && [ "$del" = "$add" ]; then
      pass "$1: the socket callback added $add SMTP descriptor(s) and removed them"
    else
      fail "$1: the socket callback added >= $2 descriptor(s) and removed them" \
        ">= $2 added, as many removed" "$(grep '^sockets' "$ERR")"
    fi
  }

  # The primary refuses the connection: the backup takes the message.
  STDIN=$TMP/msg.eml run deliver "${D[@]}" --to check@failover.embed.test
  expect_rc "deliver: primary refused" 0
  l_refused=$(line_of "^failover\.embed\.test: hop 1 mx1\.failover\.embed\.test 127\.0\.0\.4 port $P: session ended at connect: refused .* -> next-(address|host) \(0 accepted\)$")
  l_rcpt=$(line_of "^failover\.embed\.test: hop 2 mx2\.failover\.embed\.test 127\.0\.0\.2 port $P: rcpt <check@failover\.embed\.test>: ok 250 .* -> continue$")
  l_dot=$(line_of "^failover\.embed\.test: hop 2 mx2\.failover\.embed\.test 127\.0\.0\.2 port $P: session ended at dot: ok 250 .* -> delivered \(1 accepted\)$")
  if [ "$l_refused" -gt 0 ] && [ "$l_rcpt" -gt "$l_refused" ] && [ "$l_dot" -gt "$l_rcpt" ]; then
    pass "deliver: primary refused: hop 1 refused, then RCPT and end of data at the backup"
  else
    fail "deliver: primary refused: hop 1 refused, then RCPT and end of data at the backup" \
      "lines refused < rcpt < delivered" "$l_refused $l_rcpt $l_dot"
  fi
  expect_out "deliver: primary refused: delivered by the backup host" \
    '^check@failover\.embed\.test: delivered \(mx2\.failover\.embed\.test: 250 '
  expect_out "deliver: primary refused: summary" '^1 delivered, 0 bounced, 0 deferred$'
  stored_equals "deliver: the backup stored the CRLF input byte for byte" \
    backup check@failover.embed.test
  stored_envelope "deliver: envelope sender, recipient and --helo reached the backup" \
    backup check@failover.embed.test \
    '.mail_from == "sender@client.test" and .helo == "deliver.embed.test"
     and .rcpt_tos == ["check@failover.embed.test"]'
  expect_socks_balanced "deliver: primary refused" 1

  # Two domains side by side in one engine; one recipient refused (550).
  STDIN=$TMP/msg.eml run deliver "${D[@]}" --to two@plain.embed.test \
    --to a@other.embed.test --to bad@other.embed.test
  expect_rc "deliver: two domains, one recipient refused" 68
  expect_out "deliver: two domains: bad refused at RCPT -> bounce" \
    "^other\.embed\.test: hop 1 mx\.other\.embed\.test 127\.0\.0\.3 port $P: rcpt <bad@other\.embed\.test>: 5xx 550 .* -> bounce$"
  if [ "$(grep -c '^other\.embed\.test: .*session ended' "$OUT")" = 1 ] &&
     [ "$(grep -c '^plain\.embed\.test: .*session ended' "$OUT")" = 1 ]; then
    pass "deliver: two domains: one session each"
  else
    fail "deliver: two domains: one session each" "1 and 1" "$(grep 'session ended' "$OUT")"
  fi
  expect_out "deliver: two domains: bad bounced" \
    '^bad@other\.embed\.test: bounced \(mx\.other\.embed\.test: 550 '
  expect_out "deliver: two domains: summary" '^2 delivered, 1 bounced, 0 deferred$'
  stored_equals "deliver: two domains: plain.embed.test stored at the backup" \
    backup two@plain.embed.test
  stored_equals "deliver: two domains: other.embed.test stored at its MX" \
    other a@other.embed.test
  stored_envelope "deliver: two domains: the refused recipient is not in the envelope" \
    other a@other.embed.test '.rcpt_tos == ["a@other.embed.test"]'
  expect_socks_balanced "deliver: two domains" 2

  # A primary that never greets: the greeting timeout fires from
  # mxr_engine_process(MXR_NOFD, MXR_NOFD) after epoll_wait timed out.
  STDIN=$TMP/msg.eml run deliver "${D[@]}" --timeout 1000 --to slow@slow.embed.test
  expect_rc "deliver: silent primary" 0
  expect_out "deliver: silent primary: greeting timeout -> next" \
    "^slow\.embed\.test: hop 1 mx1\.slow\.embed\.test 127\.0\.0\.5 port $P: session ended at greeting: timeout .* -> next-(address|host) \(0 accepted\)$"
  expect_out "deliver: silent primary: delivered by the backup" \
    '^slow@slow\.embed\.test: delivered \(mx2\.failover\.embed\.test: 250 '
  expect_socks_balanced "deliver: silent primary" 2

  # The only host is down: deferred.
  STDIN=$TMP/msg.eml run deliver "${D[@]}" --to later@down.embed.test
  expect_rc "deliver: only host refused -> deferred" 75
  expect_out "deliver: only host refused: deferred with a retry time" \
    '^later@down\.embed\.test: deferred, retry in [0-9]+ s \(mx1\.failover\.embed\.test: '

  STDIN=$TMP/msg.eml run deliver "${D[@]}"
  expect_rc "deliver: no --to is a usage error" 64
fi

# ------------------------------------------------------------------ clean

LAST_CMD="make -C $SRC/examples O=$BIN clean"
if timeout 60 make -C "$SRC/examples" O="$BIN" clean >"$OUT" 2>"$ERR" &&
   [ ! -e "$BIN/blocking" ] && [ ! -e "$BIN/epoll_routes" ] && [ ! -e "$BIN/relay" ] &&
   [ ! -e "$BIN/deliver" ]; then
  pass "make clean removes the programs"
else
  fail "make clean removes the programs"
fi

finish
