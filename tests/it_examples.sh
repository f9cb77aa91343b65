#!/usr/bin/env bash
# it_examples.sh -- the bundled example zones (examples/zones, the README
# demo) give the plans the seed articles describe, offline and on knotd.
# Same runner and table format as tests/it_route.sh (see tests/cases.tsv).
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
export MXR_SOURCE_DIR=$SRC
export ROUTE_CASES=$SRC/tests/examples.tsv
export ROUTE_ZONEDIR=$SRC/examples/zones
exec bash "$SRC/tests/it_route.sh"
