#!/usr/bin/python3
"""make_diff_seeds.py -- writes the seed corpus of fuzz_answer_diff
(tests/fuzz/corpus/answer_diff/) from real answers:

  - every case of the hostile DNS server (tests/lib/hostile_dns.py): its
    answers to the MX query of the case and to the A and AAAA queries of a
    target below it, built by the server's own code, no socket;
  - with --server HOST:PORT, the answers of a running server (knotd with
    tests/zones, started by tests/lib/knot.sh) to an MX, A and AAAA query
    for every owner name of the zone files in tests/zones.

Run from anywhere (no third-party module needed):
    /usr/bin/python3 tests/fuzz/make_diff_seeds.py [--server 127.0.0.1:PORT]
The files are committed: the replay test does not need Python. Of knotd's
answers, the committed ones are those that add coverage to the hostile
cases (fuzz_answer_diff -merge=1 NEW_DIR OLD_DIR, see scripts/fuzz.sh).
"""
import argparse
import glob
import hashlib
import os
import random
import socket
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(SRC, "tests", "lib"))
import hostile_dns  # noqa: E402

OUT = os.path.join(HERE, "corpus", "answer_diff")
QTYPES = {"MX": 15, "A": 1, "AAAA": 28}
QTYPE_BITS = {15: 0, 1: 1, 28: 2}
RAW = 4
MAX_RECORDS = 64


def query(name, qtype, qid=0x1234):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += hostile_dns.wire_name(name) + struct.pack(">HH", qtype, 1)
    return q


def seed(name, qtype, wire):
    """The target's input: raw mode, our question name, the packet."""
    qname = name.encode()[:80]
    return (bytes([QTYPE_BITS[qtype] | RAW, MAX_RECORDS, len(qname)])
            + qname + wire)


def write(label, data, seen):
    digest = hashlib.sha1(data).hexdigest()[:10]
    if digest in seen:
        return
    seen.add(digest)
    with open(os.path.join(OUT, "%s-%s" % (label, digest)), "wb") as f:
        f.write(data)


def hostile(seen):
    for case in sorted(hostile_dns.CASES):
        for name, qtype in (("%s.hostile.test" % case, 15),
                            ("mx.%s.hostile.test" % case, 1),
                            ("mx.%s.hostile.test" % case, 28)):
            for tcp in (False, True):
                out = hostile_dns.answers_for(query(name, qtype), tcp)
                for msg in out:
                    write("hostile-%s" % case, seed(name, qtype, bytes(msg)),
                          seen)


def owners():
    names = set()
    for path in glob.glob(os.path.join(SRC, "tests", "zones", "*.zone")):
        origin = os.path.basename(path)[:-len(".zone")]
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("$ORIGIN"):
                    origin = line.split()[1].rstrip(".")
                if not line.strip() or line[0] in " \t;$(":
                    continue
                owner = line.split()[0]
                if owner == "@":
                    names.add(origin)
                elif not owner.endswith("."):
                    names.add("%s.%s" % (owner, origin))
    return sorted(names)


def from_server(server, seen):
    host, port = server.rsplit(":", 1)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2)
    for name in owners():
        for tname, qtype in QTYPES.items():
            qid = random.randrange(65536)
            s.sendto(query(name, qtype, qid), (host, int(port)))
            try:
                wire, _ = s.recvfrom(65535)
            except socket.timeout:
                continue
            write("knot-%s-%s" % (tname, name.replace("*", "star")),
                  seed(name, qtype, wire), seen)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--server", help="HOST:PORT of a server for tests/zones")
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    seen = {f.rsplit("-", 1)[-1] for f in os.listdir(OUT)}
    hostile(seen)
    if args.server:
        from_server(args.server, seen)
    return 0


if __name__ == "__main__":
    sys.exit(main())
