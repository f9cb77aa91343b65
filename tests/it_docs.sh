#!/usr/bin/env bash
# it_docs.sh -- the documents' shell sessions, run and compared: every
# fenced block of README.md, docs/*.md, docs/*/*.md and examples/*.md whose
# first line starts with "$ " is run with the mxroute under test, and what
# each command prints (and the exit status a "# exit N" note or an
# `echo $?` shows) must be what the document shows. A changed output fails
# here until the document is updated, so the documents cannot drift.
#
# How a document is run, and how to mask what varies from run to run
# (tests/lib/doc_test.py has the details; docs/testing.md, "Docs are tested"):
#   - each document is one bash session in its own copy of the source tree;
#     `mxroute` is $MXROUTE, $B the build directory;
#   - ```lang file=PATH blocks are written to PATH before what follows;
#   - <!-- doctest: SHELL --> comments run setup the reader does by hand
#     (start the SMTP peers of tests/lib/smtp.sh, apply an edit shown as a
#     diff: $DOC_NEXT is the next command's expected output);
#   - masks: a line "..." is any number of lines, "…" any text within a
#     line, /tmp/ is a private directory shown as /tmp/, and a setup step's
#     `doc_mask VALUE SHOWN` shows VALUE (a port picked now) as SHOWN.
#
# Environment (set by ctest): MXROUTE, MXR_SOURCE_DIR, MXR_BUILD_DIR.
# DOC_TEST_KEEP=1 keeps the run directories; DOC_TEST_TIMEOUT bounds each
# document's session (300 s).

set -u
SRC=${MXR_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${MXR_BUILD_DIR:-$SRC/build}
MXROUTE=${MXROUTE:-$BUILD/mxroute}
# shellcheck source=tests/lib/cli_harness.sh
. "$SRC/tests/lib/cli_harness.sh"
harness_start docs
trap 'rm -rf "$TMP"' EXIT

# The documents with transcripts; a missing directory is a failure, not
# a silent pass with fewer documents.
docs=()
for d in "$SRC/docs" "$SRC/examples"; do
  if [ ! -d "$d" ]; then fail "document directory $d" "a directory" "missing"; fi
done
shopt -s nullglob
for f in "$SRC/README.md" "$SRC"/docs/*.md "$SRC"/docs/*/*.md "$SRC"/examples/*.md; do
  if [ -f "$f" ] && grep -q '^\$ ' "$f"; then docs+=("$f"); fi
done
if [ ${#docs[@]} = 0 ]; then fail "documents with transcripts" "at least one" "none found"; fi

/usr/bin/python3 "$SRC/tests/lib/doc_test.py" --bin "$MXROUTE" --source "$SRC" \
  --build "$BUILD" --counts "$TMP/counts" "${docs[@]}"
if read -r p f <"$TMP/counts" 2>/dev/null; then
  passed=$((passed + p))
  failed=$((failed + f))
else
  fail "doc_test.py" "a count of passed and failed steps" "none (it crashed?)"
fi
harness_end
