#!/usr/bin/env bash
# demo.sh -- route every domain of examples/domains.txt offline against the
# bundled example zones (examples/zones/*.zone): the seed articles' MX
# configurations, one per domain. First the text plan of each, then the
# same list as one --batch JSON Lines run.
#
#   scripts/demo.sh [extra mxroute route options, e.g. --family ipv4]
#
# Uses $MXROUTE, else build/mxroute, else mxroute on PATH.
set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=${MXR_SOURCE_DIR:-$(dirname "$HERE")}
MXROUTE=${MXROUTE:-}
if [ -z "$MXROUTE" ]; then
  if [ -x "$SRC/build/mxroute" ]; then MXROUTE=$SRC/build/mxroute
  elif command -v mxroute >/dev/null 2>&1; then MXROUTE=$(command -v mxroute)
  else echo "demo: build mxroute first (cmake -B build && cmake --build build) or set MXROUTE" >&2; exit 1
  fi
fi

zones=()
for z in "$SRC"/examples/zones/*.zone; do zones+=(--zone "$z"); done
domains=$SRC/examples/domains.txt

echo "# mxroute route ${zones[*]} DOMAIN   (offline, bundled example zones)"
while IFS= read -r d; do
  case $d in ''|'#'*) continue ;; esac
  echo
  echo "\$ mxroute route $d"
  "$MXROUTE" route "${zones[@]}" "$@" -- "$d"
  rc=$?
  case $rc in
    0) ;;
    75) echo "(exit 75: temporary failure, try later)" ;;
    68) echo "(exit 68: permanent failure, bounce)" ;;
    *) echo "(exit $rc)" ;;
  esac
done <"$domains"

echo
echo "# the same list as JSON Lines: mxroute route --batch $domains"
grep -v -e '^#' -e '^$' "$domains" | "$MXROUTE" route --json "${zones[@]}" "$@" --batch -
rc=$?
echo "(batch exit $rc)"
exit $rc
