#!/usr/bin/env python3
"""Run tests/cases.tsv through `mxroute route --json` on one backend.

Used by tests/it_route.sh; the format of the table is described at its top.
Prints one PASS/FAIL line per case (expected vs got on failure) and, last,
"RESULT <passed> <failed>". Standard library only.

  route_cases.py --mxroute BIN --cases FILE --backend knot|zone
                 [--server IP:PORT] [--zone FILE]... [--subst NAME=VALUE]...
                 [--batch] [--only SUBSTRING] [-v]
"""
import argparse
import ipaddress
import json
import os
import shlex
import subprocess
import sys
import tempfile

EXIT_FOR_STATUS = {"ok": 0, "tempfail": 75, "permfail": 68}
RUN_TIMEOUT_S = 30
# MXR_FAIL_FAST=1 (tests/broken_binaries.sh): stop at the first FAIL.
FAIL_FAST = os.environ.get("MXR_FAIL_FAST") == "1"


class Case:
    def __init__(self, lineno, backend, options, inp, status, reason, checks):
        self.lineno = lineno
        self.backend = backend
        self.options = options
        self.input = inp
        self.status = status
        self.reason = None if reason == "-" else reason
        self.checks = [] if checks == "-" else checks.split()

    def label(self, backend):
        opts = "" if self.options == "-" else " " + self.options
        return "[%s] cases.tsv:%d %s%s" % (backend, self.lineno, self.input,
                                           opts)


def load_cases(path):
    cases = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 6:
                raise SystemExit("%s:%d: expected 6 tab-separated columns, "
                                 "got %d" % (path, n, len(cols)))
            if cols[0] not in ("both", "knot", "zone"):
                raise SystemExit("%s:%d: bad backend %r" % (path, n, cols[0]))
            if cols[3] not in EXIT_FOR_STATUS:
                raise SystemExit("%s:%d: bad status %r" % (path, n, cols[3]))
            cases.append(Case(n, *cols))
    return cases


def case_domain(inp):
    d = inp.rsplit("@", 1)[-1].strip().lower()
    if d.endswith("."):
        d = d[:-1]
    return d


def full_host(h, domain):
    if h == "@":
        return domain
    if h == "*" or "." in h:
        return h.lower()
    return "%s.%s" % (h.lower(), domain)


def norm_addr(a):
    try:
        return str(ipaddress.ip_address(a))
    except ValueError:
        return a


class Runner:
    def __init__(self, args):
        self.args = args
        self.subst = {}
        for s in args.subst or []:
            k, _, v = s.partition("=")
            self.subst[k] = v

    def expand(self, options):
        if options == "-":
            return []
        for k, v in self.subst.items():
            options = options.replace("@%s@" % k, v)
        return shlex.split(options)

    def base_argv(self, opts):
        argv = [self.args.mxroute, "route", "--json"]
        if self.args.backend == "zone":
            for z in self.args.zone or []:
                argv += ["--zone", z]
        elif "--server" not in opts:
            argv += ["--server", self.args.server]
        if "--seed" not in opts:
            argv += ["--seed", "1"]
        return argv

    def run(self, argv, stdin=None):
        try:
            p = subprocess.run(argv, input=stdin, capture_output=True,
                               timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            return None, b"", b"timed out after %ds" % RUN_TIMEOUT_S
        return p.returncode, p.stdout, p.stderr


def parse_one(out):
    lines = [l for l in out.decode("utf-8", "replace").splitlines()
             if l.strip()]
    if len(lines) != 1:
        return None, "expected 1 JSON line, got %d" % len(lines)
    try:
        obj = json.loads(lines[0])
    except ValueError as e:
        return None, "bad JSON (%s): %s" % (e, lines[0][:200])
    if not isinstance(obj, dict):
        return None, "JSON is not an object"
    return obj, None


def cand_hosts(obj):
    return [str(c.get("host", "")).lower() for c in obj.get("candidates") or []]


def find_cand(obj, host):
    for c in obj.get("candidates") or []:
        if str(c.get("host", "")).lower() == host:
            return c
    return None


def check_order(obj, spec, domain):
    """Returns an error string or None."""
    tiers = [[full_host(h, domain) for h in t.split("|")]
             for t in spec.split(",")]
    got = cand_hosts(obj)
    want_n = sum(len(t) for t in tiers)
    if len(got) != want_n:
        return "order: expected %s, got %s" % (spec, ",".join(got) or "[]")
    i = 0
    for t in tiers:
        part = got[i:i + len(t)]
        if sorted(part) != sorted(t):
            return "order: expected %s, got %s" % (spec, ",".join(got))
        i += len(t)
    return None


def tiers_of(spec, domain):
    return [[full_host(h, domain) for h in t.split("|")]
            for t in spec.split(",")]


def in_range(t, spec):
    """True when t is an integer within spec, "LO-HI"."""
    lo, _, hi = spec.partition("-")
    return isinstance(t, int) and int(lo) <= t <= int(hi)


def check_obj(case, obj, rc, domain):
    """All checks except shuffle; returns a list of error strings."""
    errs = []
    want_rc = EXIT_FOR_STATUS[case.status]
    for c in case.checks:
        if c.startswith("exit="):
            want_rc = int(c[5:])
    if rc != want_rc:
        errs.append("exit: expected %d, got %s" % (want_rc, rc))
    for field in ("input", "domain", "status", "reason", "implicit",
                  "candidates", "skipped", "ttl", "mx_ttl"):
        if field not in obj:
            errs.append("field %r missing" % field)
    if obj.get("input") != case.input:
        errs.append("input: expected %r, got %r" % (case.input,
                                                    obj.get("input")))
    if obj.get("status") != case.status:
        errs.append("status: expected %s, got %s" % (case.status,
                                                     obj.get("status")))
    if obj.get("reason") != case.reason:
        errs.append("reason: expected %s, got %s" % (
            case.reason or "null", obj.get("reason")))
    skipped = obj.get("skipped") or []
    cands = obj.get("candidates") or []
    for c in case.checks:
        key, _, val = c.partition("=")
        try:
            if key == "order":
                e = check_order(obj, val, domain)
                if e:
                    errs.append(e)
            elif key == "cands":
                if len(cands) != int(val):
                    errs.append("cands: expected %s, got %d (%s)" % (
                        val, len(cands), ",".join(cand_hosts(obj))))
            elif key == "noskip":
                if skipped:
                    errs.append("noskip: got %s" % fmt_skipped(skipped))
            elif key == "nskip":
                if len(skipped) != int(val):
                    errs.append("nskip: expected %s, got %s" % (
                        val, fmt_skipped(skipped)))
            elif key in ("skip", "skippref"):
                h, _, r = val.partition(":")
                h = full_host(h, domain)
                hits = [s for s in skipped
                        if h == "*" or str(s.get("host", "")).lower() == h]
                if key == "skip":
                    if not any(s.get("reason") == r for s in hits):
                        errs.append("skip: expected %s=%s, got %s" % (
                            h, r, fmt_skipped(skipped)))
                else:
                    if not any(s.get("preference") == int(r) for s in hits):
                        errs.append("skippref: expected %s at %s, got %s" % (
                            h, r, fmt_skipped(skipped)))
            elif key == "skipcount":
                r, _, n = val.partition(":")
                k = sum(1 for s in skipped if s.get("reason") == r)
                if k != int(n):
                    errs.append("skipcount: expected %s x%s, got %d" % (
                        r, n, k))
            elif key in ("note", "nonote", "addrs", "addrset", "naddrs",
                         "source", "pref", "port", "hostttl"):
                h, _, v = val.partition(":")
                h = full_host(h, domain)
                cand = find_cand(obj, h)
                if cand is None:
                    errs.append("%s: no candidate %s (have %s)" % (
                        key, h, ",".join(cand_hosts(obj)) or "none"))
                    continue
                notes = cand.get("notes") or []
                addrs = [norm_addr(a) for a in cand.get("addresses") or []]
                if key == "note" and v not in notes:
                    errs.append("note: expected %s on %s, got %s" % (
                        v, h, notes))
                elif key == "nonote" and v in notes:
                    errs.append("nonote: %s has %s" % (h, v))
                elif key == "addrs":
                    want = [norm_addr(a) for a in v.split("+")]
                    if addrs != want:
                        errs.append("addrs %s: expected %s, got %s" % (
                            h, want, addrs))
                elif key == "addrset":
                    want = sorted(norm_addr(a) for a in v.split("+"))
                    if sorted(addrs) != want:
                        errs.append("addrset %s: expected %s, got %s" % (
                            h, want, addrs))
                elif key == "naddrs" and len(addrs) != int(v):
                    errs.append("naddrs %s: expected %s, got %d" % (
                        h, v, len(addrs)))
                elif key == "source" and cand.get("source") != v:
                    errs.append("source %s: expected %s, got %s" % (
                        h, v, cand.get("source")))
                elif key == "pref" and cand.get("preference") != int(v):
                    errs.append("pref %s: expected %s, got %s" % (
                        h, v, cand.get("preference")))
                elif key == "port" and cand.get("port") != int(v):
                    errs.append("port %s: expected %s, got %s" % (
                        h, v, cand.get("port")))
                elif key == "hostttl" and not in_range(cand.get("ttl"), v):
                    errs.append("hostttl %s: expected %s, got %s" % (
                        h, v, cand.get("ttl")))
            elif key == "maxaddrs":
                n = sum(len(c.get("addresses") or []) for c in cands)
                if n > int(val):
                    errs.append("maxaddrs: expected <= %s, got %d" % (val, n))
            elif key == "implicit":
                if obj.get("implicit") is not (val == "true"):
                    errs.append("implicit: expected %s, got %s" % (
                        val, obj.get("implicit")))
            elif key == "domain":
                if obj.get("domain") != val:
                    errs.append("domain: expected %s, got %s" % (
                        val, obj.get("domain")))
            elif key in ("ttl", "mxttl"):
                t = obj.get("ttl" if key == "ttl" else "mx_ttl")
                if not in_range(t, val):
                    errs.append("%s: expected %s, got %s" % (key, val, t))
            elif key == "literal":
                want = norm_addr(val)
                if (len(cands) != 1 or cands[0].get("source") != "literal"
                        or [norm_addr(a) for a in
                            cands[0].get("addresses") or []] != [want]):
                    errs.append("literal: expected one literal candidate "
                                "[%s], got %s" % (want, json.dumps(cands)))
            elif key in ("shuffle", "exit"):
                pass
            else:
                errs.append("unknown check %r in cases.tsv" % c)
        except (ValueError, TypeError, AttributeError) as e:
            errs.append("check %s: %s" % (c, e))
    if case.status == "ok" and not cands:
        errs.append("status ok without candidates")
    if case.status != "ok" and cands:
        errs.append("status %s with candidates %s" % (
            case.status, ",".join(cand_hosts(obj))))
    return errs


def fmt_skipped(skipped):
    return "[" + ", ".join("%s=%s" % (s.get("host"), s.get("reason"))
                           for s in skipped) + "]"


def check_shuffle(runner, case, opts, n, domain):
    order = [c for c in case.checks if c.startswith("order=")]
    if not order:
        return ["shuffle needs an order= check"]
    tiers = tiers_of(order[0][6:], domain)
    firsts = [dict((h, 0) for h in t) for t in tiers]
    errs = []
    seen = {}
    opts = [o for o in opts]
    for seed in list(range(1, n + 1)) + [7]:
        argv = runner.base_argv(opts + ["--seed"]) + opts + \
            ["--seed", str(seed), case.input]
        rc, out, err = runner.run(argv)
        obj, perr = parse_one(out)
        if obj is None:
            return ["shuffle seed %d: %s; stderr: %s" % (
                seed, perr, err.decode("utf-8", "replace")[-300:])]
        e = check_order(obj, order[0][6:], domain)
        if e:
            return ["shuffle seed %d: %s" % (seed, e)]
        got = cand_hosts(obj)
        if seed in seen and seen[seed] != got:
            errs.append("shuffle: seed %d gave %s then %s" % (
                seed, seen[seed], got))
        seen[seed] = got
        i = 0
        for t, f in zip(tiers, firsts):
            f[got[i]] += 1
            i += len(t)
    for t, f in zip(tiers, firsts):
        if len(t) > 1:
            never = [h for h, k in f.items() if k == 0]
            if never:
                errs.append("shuffle: over %d seeds %s never came first in "
                            "its tier (%s)" % (n, never, f))
    return errs


def run_cases(runner, cases):
    passed = failed = 0
    for case in cases:
        if case.backend not in ("both", runner.args.backend):
            continue
        label = case.label(runner.args.backend)
        if runner.args.only and runner.args.only not in label:
            continue
        opts = runner.expand(case.options)
        argv = runner.base_argv(opts) + opts + [case.input]
        rc, out, err = runner.run(argv)
        domain = case_domain(case.input)
        obj, perr = parse_one(out)
        if obj is None:
            errs = [perr, "exit %s" % rc]
        else:
            try:
                errs = check_obj(case, obj, rc, domain)
                for c in case.checks:
                    if c.startswith("shuffle=") and not errs:
                        errs += check_shuffle(runner, case, opts,
                                              int(c[8:]), domain)
            except Exception as e:  # output of the wrong shape: a FAIL
                errs = ["output of an unexpected shape (%s: %s)" % (
                    type(e).__name__, e)]
        if errs:
            failed += 1
            print("FAIL %s" % label)
            print("     expected: %s %s %s" % (
                case.status, case.reason or "-",
                " ".join(case.checks) or ""))
            for e in errs:
                print("     %s" % e)
            print("     command: %s" % " ".join(shlex.quote(a) for a in argv))
            if obj is not None:
                print("     got: %s" % json.dumps(obj)[:1500])
            tail = err.decode("utf-8", "replace").strip()
            if tail:
                print("     stderr: %s" % tail[-600:])
            if FAIL_FAST:
                break
        else:
            passed += 1
            print("PASS %s" % label)
            if runner.args.verbose:
                print("     got: %s" % out.decode("utf-8", "replace").strip())
    return passed, failed


def run_batch(runner, cases):
    """All option-less cases of this backend in one --batch run: same
    status and reason as the table, one line per input, in input order."""
    sel = [c for c in cases if c.backend in ("both", runner.args.backend)
           and c.options == "-"
           and not any(k.startswith("exit=") for k in c.checks)]
    # Each input twice: concurrent lookups of the same names.
    inputs = [c.input for c in sel] * 2
    exp = sel * 2
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False,
                                     encoding="utf-8") as f:
        f.write("\n".join(inputs) + "\n")
        path = f.name
    passed = failed = 0
    try:
        for how in ("file", "stdin"):
            label = "[%s] batch (%s) of %d inputs" % (
                runner.args.backend, how, len(inputs))
            if how == "file":
                argv = runner.base_argv([]) + ["--batch", path]
                rc, out, err = runner.run(argv)
            else:
                argv = runner.base_argv([]) + ["--batch", "-"]
                with open(path, "rb") as fh:
                    rc, out, err = runner.run(argv, stdin=fh.read())
            errs = []
            if rc != 0:
                errs.append("exit: expected 0, got %s" % rc)
            lines = [l for l in out.decode("utf-8", "replace").splitlines()
                     if l.strip()]
            if len(lines) != len(inputs):
                errs.append("expected %d lines, got %d" % (len(inputs),
                                                           len(lines)))
            for i, (l, c) in enumerate(zip(lines, exp)):
                try:
                    o = json.loads(l)
                except ValueError:
                    errs.append("line %d: bad JSON: %s" % (i + 1, l[:200]))
                    continue
                if not isinstance(o, dict):
                    errs.append("line %d: not a JSON object: %s" % (
                        i + 1, l[:200]))
                    continue
                if o.get("input") != c.input:
                    errs.append("line %d: input %r, expected %r (order)" % (
                        i + 1, o.get("input"), c.input))
                    continue
                if o.get("status") != c.status or o.get("reason") != c.reason:
                    errs.append("line %d %s: expected %s/%s, got %s/%s" % (
                        i + 1, c.input, c.status, c.reason or "null",
                        o.get("status"), o.get("reason")))
            if errs:
                failed += 1
                print("FAIL %s" % label)
                for e in errs[:40]:
                    print("     %s" % e)
                if len(errs) > 40:
                    print("     ... %d more" % (len(errs) - 40))
                print("     command: %s" % " ".join(shlex.quote(a)
                                                    for a in argv))
                tail = err.decode("utf-8", "replace").strip()
                if tail:
                    print("     stderr: %s" % tail[-600:])
            else:
                passed += 1
                print("PASS %s" % label)
    finally:
        os.unlink(path)
    return passed, failed


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mxroute", required=True)
    ap.add_argument("--cases", required=True)
    ap.add_argument("--backend", choices=("knot", "zone"), required=True)
    ap.add_argument("--server")
    ap.add_argument("--zone", action="append")
    ap.add_argument("--subst", action="append")
    ap.add_argument("--batch", action="store_true")
    ap.add_argument("--only")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if args.backend == "knot" and not args.server:
        ap.error("--server is required with --backend knot")
    if args.backend == "zone" and not args.zone:
        ap.error("--zone is required with --backend zone")
    cases = load_cases(args.cases)
    runner = Runner(args)
    p, f = run_cases(runner, cases)
    if args.batch and not args.only and not (FAIL_FAST and f):
        bp, bf = run_batch(runner, cases)
        p += bp
        f += bf
    sys.stdout.flush()
    print("RESULT %d %d" % (p, f))
    return 0 if f == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
