#!/usr/bin/env bash
# run-demo.sh -- the main job from a clean clone on Debian 12: install the
# dependencies, build, and route the bundled example domains offline.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)"
MXROUTE=build/mxroute scripts/demo.sh
