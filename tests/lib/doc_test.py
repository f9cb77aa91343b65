#!/usr/bin/env python3
"""doc_test.py -- run the shell sessions shown in Markdown documents and
compare what they print with what the documents show (stdlib only).

    doc_test.py --bin MXROUTE --source DIR --build DIR --counts FILE DOC.md...

Each document is one bash session, run in its own copy of the source tree
(so `mkdir my-policies` or `cat > example.test.zone` never touch the real
tree), with `mxroute` on PATH being MXROUTE and B set to the build
directory. Walking the document from the top, in order:

* A fenced block whose first line starts with "$ " is a transcript: each
  "$ " line (with the lines after it while they end in "\\") is a command,
  and the lines after it up to the next "$ " line or the fence are the
  expected output (standard output and standard error together; trailing
  blank lines are not compared). A command whose last line ends in
  "# exit N" must also exit with N. Commands run in the session's shell
  (variables carry over), with $? set to the previous command's status.
* A fenced block whose info string has "file=PATH" (```lua file=/tmp/x.lua)
  is written to PATH before the commands that follow it.
* An HTML comment "<!-- doctest: SHELL -->" (one or more lines) runs SHELL
  in the session at that point: the setup a reader does by hand (start a
  server, edit a file). It is invisible in the rendered page. Its output is
  not compared; a non-zero status fails it. In it, $DOC_NEXT is a file
  holding the expected output of the next command (e.g. a diff to apply
  with patch), `doc_edit FILE SED-ARGS...` runs sed -i on FILE and fails
  if nothing changed, and `doc_mask VALUE SHOWN` says that the document
  shows SHOWN where this run printed VALUE (a port picked at run time...).

Masking, for what varies from run to run:

* "..." alone on a line (indented or not) stands for any number of lines (none included);
* "…" (U+2026) inside a line stands for any text on that line;
* /tmp/ in commands and file= paths is a private directory of this run; it
  is shown as /tmp/ again in the output;
* doc_mask, above.

Prints "PASS FILE:LINE ..." or "FAIL FILE:LINE ..." (with the command, the
expected and the actual output as a diff) for every command and setup step,
and writes "PASSED FAILED" to the counts file. A document that cannot be
read or that holds no transcript at all is a failure.
"""

import argparse
import difflib
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})(.*)$")
EXIT_NOTE = re.compile(r"#\s*exit\s+(\d+)\s*$")
TMP_PATH = re.compile(r"(?<![\w./-])/tmp/")
SESSION_TIMEOUT = int(os.environ.get("DOC_TEST_TIMEOUT", "300"))


class Step:
    """One thing the session does: kind is "cmd", "setup" or "file"."""

    def __init__(self, kind, line, text, expected=None, want_rc=None, path=None):
        self.kind = kind
        self.line = line
        self.text = text
        self.expected = expected or []
        self.want_rc = want_rc
        self.path = path


def read_fence(lines, i, indent, fence):
    """The body of the fence opened at lines[i], and the index after it."""
    body = []
    j = i + 1
    close = re.compile(r"^\s*" + re.escape(fence[0]) + "{%d,}\\s*$" % len(fence))
    while j < len(lines) and not close.match(lines[j]):
        body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j])
        j += 1
    return body, j + 1


def parse_transcript(body, first_line):
    """Commands and their expected output from a block's lines."""
    steps = []
    k = 0
    while k < len(body):
        start = k
        cmd = [body[k][2:]]
        while cmd[-1].endswith("\\") and k + 1 < len(body):
            k += 1
            cmd.append(body[k])
        k += 1
        out = []
        while k < len(body) and not body[k].startswith("$ "):
            out.append(body[k])
            k += 1
        while out and not out[-1].strip():
            out.pop()
        m = EXIT_NOTE.search(cmd[-1])
        steps.append(Step("cmd", first_line + start, "\n".join(cmd), out,
                          int(m.group(1)) if m else None))
    return steps


def parse(text):
    """The steps of a document, in order."""
    lines = text.split("\n")
    steps = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = FENCE.match(line)
        if m:
            body, nxt = read_fence(lines, i, m.group(1), m.group(2))
            info = m.group(3).split()
            files = [w[5:] for w in info if w.startswith("file=")]
            if files:
                steps.append(Step("file", i + 1, "\n".join(body) + "\n", path=files[0]))
            elif body and body[0].startswith("$ "):
                steps.extend(parse_transcript(body, i + 2))
            i = nxt
            continue
        if line.lstrip().startswith("<!-- doctest:"):
            start = i
            chunk = [line.lstrip()[len("<!-- doctest:"):]]
            while "-->" not in chunk[-1] and i + 1 < len(lines):
                i += 1
                chunk.append(lines[i])
            chunk[-1] = chunk[-1][: chunk[-1].index("-->")] if "-->" in chunk[-1] else chunk[-1]
            steps.append(Step("setup", start + 1, "\n".join(chunk).strip()))
        i += 1
    return steps


def copy_tree(source, build, dest):
    """The source tree without .git and build directories."""
    build_real = os.path.realpath(build)

    def ignore(d, names):
        skip = {".git"}
        for n in names:
            p = os.path.join(d, n)
            if (d == source and n.startswith("build")) or os.path.realpath(p) == build_real:
                skip.add(n)
            elif os.path.isfile(os.path.join(p, "CMakeCache.txt")):
                skip.add(n)
        return skip

    shutil.copytree(source, dest, symlinks=True, ignore=ignore)


def private_tmp(text, priv):
    return TMP_PATH.sub(priv.replace("\\", "\\\\") + "/", text)


# Helpers every session has (see the module's docstring), and the cleanup
# of the servers a setup step started with tests/lib/smtp.sh or knot.sh.
PRELUDE = r"""
__doc_rc=0
__doc_ret() { return "$1"; }
doc_mask() { printf '%s\t%s\n' "$1" "$2" >>"$DOC_RUN/masks"; }
doc_edit() {
  local f=$1; shift
  cp -- "$f" "$DOC_RUN/edit.bak" && sed -i "$@" -- "$f" || return 1
  if cmp -s -- "$f" "$DOC_RUN/edit.bak"; then echo "doc_edit: $f unchanged" >&2; return 1; fi
}
__doc_cleanup() {
  declare -F smtp_stop_all >/dev/null && smtp_stop_all
  declare -F knot_stop >/dev/null && knot_stop
  return 0
}
trap __doc_cleanup EXIT
"""


def link_next_commands(steps):
    """Give each step the index of the next command (for $DOC_NEXT)."""
    nxt = None
    for n in range(len(steps) - 1, -1, -1):
        steps[n].next_cmd = nxt
        if steps[n].kind == "cmd":
            nxt = n


def step_script(n, st, run, priv):
    """The shell lines of step n; its output goes to run/out/N, status to run/rc/N."""
    with open(os.path.join(run, "exp", str(n)), "w") as f:
        f.write("\n".join(st.expected) + ("\n" if st.expected else ""))
    if st.kind == "file":
        with open(os.path.join(run, "files", str(n)), "w") as f:
            f.write(st.text)
        return ['mkdir -p -- "$(dirname -- %s)" && cp -- "$DOC_RUN/files/%d" %s'
                % (shquote(st.path), n, shquote(st.path)), 'echo $? >"$DOC_RUN/rc/%d"' % n]
    sh = []
    if st.kind == "setup":
        sh.append('DOC_NEXT="$DOC_RUN/exp/%d"' % (st.next_cmd if st.next_cmd is not None else n))
    # $? of a command is the previous command's status, as in a terminal.
    sh.append("__doc_ret $__doc_rc")
    sh.append("{ %s\n} >\"$DOC_RUN/out/%d\" 2>&1 </dev/null" % (private_tmp(st.text, priv), n))
    if st.kind == "cmd":
        sh += ["__doc_rc=$?", 'echo $__doc_rc >"$DOC_RUN/rc/%d"' % n]
    else:
        sh.append('echo $? >"$DOC_RUN/rc/%d"' % n)
    return sh


def session_script(steps, run, priv):
    """The bash script that runs every step of a document, in order."""
    link_next_commands(steps)
    sh = [PRELUDE]
    for n, st in enumerate(steps):
        sh += step_script(n, st, run, priv)
    return "\n".join(sh) + "\n"


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def line_matches(want, got):
    if "…" not in want:
        return want == got
    pattern = ".*".join(re.escape(p) for p in want.split("…"))
    return re.fullmatch(pattern, got) is not None


def lines_match(want, got):
    """want may hold "..." lines (any number of lines) and "…" (any text)."""
    if not want:
        return not got
    if want[0].strip() == "...":
        return any(lines_match(want[1:], got[k:]) for k in range(len(got) + 1))
    return bool(got) and line_matches(want[0], got[0]) and lines_match(want[1:], got[1:])


def masked(text, priv, masks):
    text = text.replace(priv, "/tmp")
    for value, shown in masks:
        text = text.replace(value, shown)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read(path, default=None):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except OSError:
        return default


def run_session(script, cwd, run, env):
    """Run the script; True when it ended within SESSION_TIMEOUT."""
    with open(os.path.join(run, "session.sh"), "w") as f:
        f.write(script)
    p = subprocess.Popen(["bash", os.path.join(run, "session.sh")], cwd=cwd, env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(run, "session.err"), "w"),
                         start_new_session=True)
    try:
        p.wait(timeout=SESSION_TIMEOUT)
        return True
    except subprocess.TimeoutExpired:
        return False
    finally:
        # The session's own process group: servers a setup step left behind.
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        p.wait()


class Report:
    def __init__(self):
        self.passed = 0
        self.failed = 0

    def ok(self, where, what):
        self.passed += 1
        print("PASS %s %s" % (where, what))

    def fail(self, where, what, detail=""):
        self.failed += 1
        print("FAIL %s %s" % (where, what))
        if detail:
            print("\n".join("     " + l for l in detail.rstrip("\n").split("\n")))


def first_line(text):
    s = text.split("\n")[0]
    return s if len(s) <= 90 else s[:87] + "..."


def check_step(rep, where, st, n, run, priv, masks, finished):
    rc = read(os.path.join(run, "rc", str(n)))
    out = read(os.path.join(run, "out", str(n)), "")
    if rc is None:
        why = "the session ended before this step" if finished else \
            "did not finish within %d s" % SESSION_TIMEOUT
        shown = ("$ " if st.kind == "cmd" else st.kind + " ") + first_line(st.text)
        rep.fail(where, "%s: %s" % (shown, why))
        return
    rc = int(rc.strip() or "0")
    if st.kind != "cmd":
        if rc == 0:
            rep.ok(where, "%s %s" % (st.kind, first_line(st.text)))
        else:
            rep.fail(where, "%s %s: exit %d" % (st.kind, first_line(st.text), rc), out)
        return
    got = masked(out, priv, masks)
    problems = []
    if not lines_match(st.expected, got):
        diff = difflib.unified_diff(st.expected, got, "shown", "got", lineterm="", n=2)
        problems.append("output differs:\n" + "\n".join(diff))
    if st.want_rc is not None and rc != st.want_rc:
        problems.append("exit %d, the document says %d" % (rc, st.want_rc))
    if problems:
        rep.fail(where, "$ " + first_line(st.text), "command: $ " + st.text + "\n" + "\n".join(problems))
    else:
        rep.ok(where, "$ " + first_line(st.text))


def run_doc(rep, doc, rel, args):
    text = read(doc)
    if text is None:
        rep.fail(rel, "cannot be read")
        return
    steps = parse(text)
    if not any(s.kind == "cmd" for s in steps):
        rep.fail(rel, "no transcript (no fenced block starting with '$ ')")
        return
    top = tempfile.mkdtemp(prefix="mxr-doc.")
    try:
        tree, run, bindir = (os.path.join(top, d) for d in ("tree", "run", "bin"))
        copy_tree(args.source, args.build, tree)
        priv = os.path.join(tree, "tmp")
        for d in (priv, bindir, run, *(os.path.join(run, s) for s in ("out", "rc", "exp", "files"))):
            os.makedirs(d, exist_ok=True)
        os.symlink(os.path.abspath(args.bin), os.path.join(bindir, "mxroute"))
        for st in steps:
            if st.kind == "file":
                st.path = os.path.join(tree, private_tmp(st.path, priv))
        env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""),
                   B=args.build, MXR_SOURCE_DIR=args.source, DOC_RUN=run, DOC_TREE=tree, TMPDIR=priv, LC_ALL="C.UTF-8")
        finished = run_session(session_script(steps, run, priv), tree, run, env)
        masks = [tuple(l.split("\t", 1)) for l in read(os.path.join(run, "masks"), "").splitlines()
                 if "\t" in l]
        for n, st in enumerate(steps):
            check_step(rep, "%s:%d" % (rel, st.line), st, n, run, priv, masks, finished)
        err = read(os.path.join(run, "session.err"), "").strip()
        if err:
            print("     (session stderr of %s: %s)" % (rel, err[:500]))
    finally:
        if os.environ.get("DOC_TEST_KEEP"):
            print("     (kept %s)" % top)
        else:
            shutil.rmtree(top, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    ap.add_argument("--counts", required=True)
    ap.add_argument("docs", nargs="*")
    args = ap.parse_args()
    args.source = os.path.abspath(args.source)
    args.build = os.path.abspath(args.build)
    rep = Report()
    if not args.docs:
        rep.fail("(none)", "no document given")
    for doc in args.docs:
        run_doc(rep, doc, os.path.relpath(doc, args.source), args)
    with open(args.counts, "w") as f:
        f.write("%d %d\n" % (rep.passed, rep.failed))
    return 0 if rep.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
