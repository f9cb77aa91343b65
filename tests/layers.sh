#!/usr/bin/env bash
# layers.sh -- the source folders stay a one-way graph of layers.
#
# Runs scripts/check-layers.py on the real tree (it must pass), then on
# copies of src/ with a planted upward include and with a header reached
# by bare name (each must fail, naming the file), and checks the cycle
# finder on a graph that has one. Ends with "N passed, N failed".
set -u
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
CHECK="$SRC/scripts/check-layers.py"
passed=0
failed=0
ok() { passed=$((passed + 1)); echo "PASS $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/     /'; }

TMP=$(mktemp -d "${TMPDIR:-/tmp}/mxr-layers.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# 1. the tree as it is
if out=$(python3 "$CHECK" "$SRC/src" 2>&1); then
    ok "the source tree: $out"
else
    bad "the source tree has upward includes or a cycle" "$out"
fi

# A copy of src/ with one line added at the top of FILE.
plant() { # NAME FILE LINE
    rm -rf "$TMP/$1"
    cp -r "$SRC/src" "$TMP/$1"
    sed -i "1i $3" "$TMP/$1/$2"
}

expect_refused() { # NAME WHAT-THE-MESSAGE-NAMES
    local out
    if out=$(python3 "$CHECK" "$TMP/$1" 2>&1); then
        bad "$1: accepted" "$out"
    elif grep -q "$2" <<<"$out"; then
        ok "$1 refused: $(grep -m1 "$2" <<<"$out")"
    else
        bad "$1: refused without naming $2" "$out"
    fi
}

# 2. base/ reaching up into the engine
plant upward base/alloc.c '#include "engine/engine.h"'
expect_refused upward 'base/alloc.c:1: #include "engine/engine.h": base/ may not include the higher layer engine/'

# 3. dns/ reaching up into route/ (a cycle with route -> dns)
plant dns-route dns/lookup.c '#include "route/route.h"'
expect_refused dns-route 'dns/lookup.c:1: .*higher layer route/'

# 4. an internal header by bare name hides the edge
plant bare route/route.c '#include "lookup.h"'
expect_refused bare 'route/route.c:1: #include "lookup.h": not a header under src/'

# 5. the command reaching past the public header
plant cli-internal cli/main.c '#include "core/core.h"'
expect_refused cli-internal 'cli/main.c:1: .*public header only'

# 6. a new folder must take a place in the order
rm -rf "$TMP/newdir" && cp -r "$SRC/src" "$TMP/newdir" && mkdir "$TMP/newdir/extra" &&
    echo 'int x;' >"$TMP/newdir/extra/x.c"
expect_refused newdir "folder 'extra' has no layer"

# 7. the cycle finder itself, on a graph with a cycle and one without
if out=$(python3 - "$CHECK" <<'PY' 2>&1
import importlib.util, sys
spec = importlib.util.spec_from_file_location("cl", sys.argv[1])
cl = importlib.util.module_from_spec(spec); spec.loader.exec_module(cl)
c = cl.find_cycle({"dns": {"core"}, "core": {"route"}, "route": {"dns"}})
assert c and c[0] == c[-1] and set(c) == {"dns", "core", "route"}, c
assert cl.find_cycle({"route": {"dns"}, "dns": {"core"}}) is None
print(" -> ".join(c))
PY
); then
    ok "cycle finder: $out"
else
    bad "cycle finder" "$out"
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
