#!/usr/bin/env python3
"""hostile_dns.py -- a DNS server on loopback that misbehaves on purpose.

    hostile_dns.py PORTFILE [--lifetime SECONDS]

Listens on 127.0.0.1 at one free port, UDP and TCP, writes the port to
PORTFILE and answers until it is killed (or after --lifetime seconds, 900
by default, so a forgotten server cannot linger).

The misbehaviour is chosen by the query name: <case>.hostile.test and every
name below it belong to CASE (the label just before hostile.test). A query
for the case's own name is the MX query of a route; names below it are its
MX targets. Unless a case says otherwise, a target has one A record
(192.0.2.10) and no AAAA. Names outside hostile.test get REFUSED.

Packets are written byte by byte (no DNS library): most cases are packets
no library would write. The cases, and what the engine must make of each,
are listed in tests/it_hostile_dns.sh and docs/security.md.
"""
import argparse
import os
import select
import socket
import struct
import sys
import threading
import time

SUFFIX = ("hostile", "test")
T_A, T_NS, T_CNAME, T_SOA, T_MX, T_TXT, T_AAAA = 1, 2, 5, 6, 15, 16, 28
QR, AA, TC, RD, RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
QNAME_PTR = b"\xc0\x0c"  # the question's name, always at offset 12
TCP_IDLE_S = 30


class Raw(bytes):
    """Bytes for a TCP peer as they are: no length prefix, then close."""


class Later(list):
    """Answers sent `delay` seconds late (UDP: from a timer thread)."""

    def __init__(self, answers, delay):
        super().__init__(answers)
        self.delay = delay


class Query:
    def __init__(self, data):
        self.id = struct.unpack(">H", data[:2])[0]
        self.flags = struct.unpack(">H", data[2:4])[0]
        labels, pos = [], 12
        while data[pos] != 0:
            n = data[pos]
            if n > 63:
                raise ValueError("compressed or bad question")
            labels.append(data[pos + 1:pos + 1 + n])
            pos += 1 + n
        self.qtype, self.qclass = struct.unpack(">HH", data[pos + 1:pos + 5])
        self.question = data[12:pos + 5]  # echoed as received (its case)
        self.labels = [bytes(l).lower() for l in labels]
        self.name = b".".join(self.labels).decode("ascii", "replace")


# ------------------------------------------------------------ packets

def wire_name(text):
    """A name in wire form; labels may hold any bytes (given as bytes)."""
    if isinstance(text, str):
        text = text.encode()
    if text in (b"", b"."):
        return b"\x00"
    return b"".join(bytes([len(l)]) + l for l in text.rstrip(b".").split(b".")) + b"\x00"


def labels_name(labels):
    """A wire name from a list of raw labels (bytes)."""
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\x00"


def rr(owner, rtype, ttl, rdata):
    return owner + struct.pack(">HHIH", rtype, 1, ttl, len(rdata)) + rdata


def mx_rr(pref, target, owner=QNAME_PTR, ttl=300):
    return rr(owner, T_MX, ttl, struct.pack(">H", pref) + target)


def a_rr(addr, owner=QNAME_PTR, ttl=300):
    return rr(owner, T_A, ttl, socket.inet_aton(addr))


def cname_rr(target, owner=QNAME_PTR, ttl=300):
    return rr(owner, T_CNAME, ttl, wire_name(target))


def soa_rr():
    rdata = (wire_name("ns.hostile.test") + wire_name("hostmaster.hostile.test")
             + struct.pack(">IIIII", 1, 3600, 600, 86400, 300))
    return rr(wire_name("hostile.test"), T_SOA, 600, rdata)


def packet(q, answers=(), authority=(), rcode=NOERROR, flags=AA,
           qid=None, question=None, counts=None):
    """A response to q; counts=(qd, an, ns, ar) overrides the true ones."""
    question = q.question if question is None else question
    qd = 1 if question else 0
    true_counts = (qd, len(answers), len(authority), 0)
    hdr = struct.pack(">HHHHHH", q.id if qid is None else qid,
                      QR | (q.flags & RD) | RA | flags | rcode,
                      *(counts or true_counts))
    return hdr + question + b"".join(answers) + b"".join(authority)


def nodata(q):
    return packet(q, authority=[soa_rr()])


def default_host(q):
    """A target: one A record, no AAAA."""
    if q.qtype == T_A:
        return packet(q, [a_rr("192.0.2.10")])
    return nodata(q)


def mx_case(records):
    """A case whose MX answer is `records` (built per query: they may
    point at the question), targets answered by default_host."""
    def handler(q, sub, tcp):
        if sub:
            return [default_host(q)]
        if q.qtype != T_MX:
            return [nodata(q)]
        return [packet(q, records(q))]
    return handler


def target(name, case):
    return wire_name("%s.%s.hostile.test" % (name, case))


# ----------------------------------------------------------------- cases

CASES = {}


def case(name):
    def register(fn):
        CASES[name] = fn
        return fn
    return register


CASES["ok"] = mx_case(lambda q: [mx_rr(10, target("mx", "ok"))])
CASES["null-mx"] = mx_case(lambda q: [mx_rr(0, b"\x00")])


@case("nxdomain")
def _nxdomain(q, sub, tcp):
    return [packet(q, authority=[soa_rr()], rcode=NXDOMAIN)]


def rcode_case(name, rcode):
    """Every query of the case gets this rcode, without records."""
    CASES[name] = lambda q, sub, tcp: [packet(q, rcode=rcode, flags=0)]


for _name, _rcode in (("servfail", SERVFAIL), ("refused", REFUSED),
                      ("formerr", FORMERR), ("notimp", NOTIMP),
                      ("rcode-15", 15)):
    rcode_case(_name, _rcode)


@case("targets-servfail")
def _targets_servfail(q, sub, tcp):
    if not sub:
        return [packet(q, [mx_rr(10, target("a", "targets-servfail")),
                           mx_rr(20, target("b", "targets-servfail"))])]
    return [packet(q, rcode=SERVFAIL, flags=0)]


@case("silent")
def _silent(q, sub, tcp):
    return []


@case("slow")
def _slow(q, sub, tcp):
    """The answer of "ok", 1.5 s late for the MX query: a lookup that stays
    in flight a while (tests/it_serve_reload.sh). Targets answer at once."""
    answers = mx_case(lambda q: [mx_rr(10, target("mx", "slow"))])(q, sub, tcp)
    return answers if sub else Later(answers, 1.5)


@case("tcp-silent")
def _tcp_silent(q, sub, tcp):
    return [] if tcp else [packet(q, flags=AA | TC)]


@case("truncated")
def _truncated(q, sub, tcp):
    """TC on UDP, the whole answer over TCP: a resolver must retry."""
    if sub:
        return [default_host(q)]
    if not tcp:
        return [packet(q, flags=AA | TC)]
    return [packet(q, [mx_rr(10, target("mx", "truncated"))])]


@case("truncated-always")
def _truncated_always(q, sub, tcp):
    return [packet(q, [mx_rr(10, target("mx", "truncated-always"))],
                   flags=AA | TC)]


@case("tcp-cut")
def _tcp_cut(q, sub, tcp):
    """TC on UDP; over TCP a length of 512 and 10 bytes, then close."""
    if not tcp:
        return [packet(q, flags=AA | TC)]
    return [Raw(struct.pack(">H", 512) + packet(q)[:10])]


@case("empty")
def _empty(q, sub, tcp):
    return [Raw(b"")] if tcp else [b""]


@case("short")
def _short(q, sub, tcp):
    return [packet(q)[:7]]


@case("garbage")
def _garbage(q, sub, tcp):
    """A good header and question, then bytes that are no records."""
    return [packet(q, counts=(1, 3, 0, 0)) + bytes(range(7, 250, 3))]


@case("not-response")
def _not_response(q, sub, tcp):
    hdr = struct.pack(">HHHHHH", q.id, RD, 1, 0, 0, 0)
    return [hdr + q.question]


@case("compression-loop")
def _compression_loop(q, sub, tcp):
    """The MX target is a label followed by a pointer back to itself."""
    pkt = packet(q, [mx_rr(10, b"\x02mx" + QNAME_PTR)])
    start = len(pkt) - 5  # the target: 02 'm' 'x' c0 0c
    return [pkt[:-2] + struct.pack(">H", 0xC000 | start)]


@case("compression-forward")
def _compression_forward(q, sub, tcp):
    """The MX target points past the end of the packet."""
    return [packet(q, [mx_rr(10, b"\xc0\xff")])]


@case("question-loop")
def _question_loop(q, sub, tcp):
    """The question's name is a pointer to itself."""
    question = b"\xc0\x0c" + q.question[-4:]
    return [packet(q, [mx_rr(10, target("mx", "ok"))], question=question)]


@case("count-more")
def _count_more(q, sub, tcp):
    """ANCOUNT says 50; one record follows."""
    return [packet(q, [mx_rr(10, target("mx", "count-more"))],
                   counts=(1, 50, 0, 0))]


@case("count-less")
def _count_less(q, sub, tcp):
    """ANCOUNT says 0; an MX record follows anyway."""
    if sub:
        return [default_host(q)]
    return [packet(q, [mx_rr(10, target("mx", "count-less"))],
                   authority=[soa_rr()], counts=(1, 0, 1, 0))]


@case("count-huge")
def _count_huge(q, sub, tcp):
    """Every count at 65535 over a short packet."""
    return [packet(q, [mx_rr(10, target("mx", "count-huge"))],
                   counts=(1, 65535, 65535, 65535))]


@case("many-mx")
def _many_mx(q, sub, tcp):
    """2000 MX records: over UDP it is truncated, over TCP it comes whole.
    The most preferred are spread through the answer."""
    if sub:
        return [default_host(q)]
    if not tcp:
        return [packet(q, flags=AA | TC)]
    # hNNNN + a pointer to the question: 22 bytes a record, 44 KB in all
    recs = [mx_rr((i * 7919) % 2000, wire_name("h%d" % i)[:-1] + QNAME_PTR)
            for i in range(2000)]
    return [packet(q, recs)]


@case("many-a")
def _many_a(q, sub, tcp):
    """One target with 1000 A records (over TCP)."""
    if not sub:
        return [packet(q, [mx_rr(10, target("mx", "many-a"))])]
    if q.qtype != T_A:
        return [nodata(q)]
    if not tcp:
        return [packet(q, flags=AA | TC)]
    return [packet(q, [a_rr("192.0.%d.%d" % (2 + i // 250, 1 + i % 250))
                       for i in range(1000)])]


def bad_target_case(name, labels):
    def handler(q, sub, tcp):
        if sub:
            return [default_host(q)]
        return [packet(q, [mx_rr(10, labels_name(labels))])]
    CASES[name] = handler


bad_target_case("mx-nul", [b"mx\x00evil", b"mx-nul", b"hostile", b"test"])
bad_target_case("mx-space", [b"mail server", b"mx-space", b"hostile", b"test"])
bad_target_case("mx-escape", [b"a.b\\c", b"mx-escape", b"hostile", b"test"])
bad_target_case("mx-ctrl", [b"mx\x1b[2J\n", b"mx-ctrl", b"hostile", b"test"])
# over 255 octets in wire form (so over 253 as text): no DNS name at all
bad_target_case("mx-overlong", [b"a" * 63] * 4 + [b"mx-overlong", b"hostile",
                                                   b"test"])
# exactly 253 octets as text (255 in wire form): the longest valid name
CASES["mx-max-length"] = mx_case(lambda q: [mx_rr(10, labels_name(
    [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 34, b"mx-max-length",
     b"hostile", b"test"]))])


@case("mixed-bad")
def _mixed_bad(q, sub, tcp):
    """One usable target among bad ones."""
    if sub:
        return [default_host(q)]
    return [packet(q, [mx_rr(10, labels_name([b"bad\x00", b"mixed-bad",
                                             b"hostile", b"test"])),
                       mx_rr(20, target("good", "mixed-bad")),
                       mx_rr(30, labels_name([b"sp ace", b"mixed-bad",
                                             b"hostile", b"test"]))])]


def chain_name(i):
    return "c%d.cname-chain.hostile.test" % i


@case("cname-chain")
def _cname_chain(q, sub, tcp):
    """MX target c0 -> c1 -> c2 -> c3, all in one answer, c3 has A."""
    if not sub:
        return [packet(q, [mx_rr(10, wire_name(chain_name(0)))])]
    if q.qtype != T_A:
        return [nodata(q)]
    recs = [cname_rr(chain_name(1))]
    recs += [cname_rr(chain_name(i + 1), owner=wire_name(chain_name(i)))
             for i in (1, 2)]
    recs.append(a_rr("192.0.2.20", owner=wire_name(chain_name(3))))
    return [packet(q, recs)]


@case("cname-long")
def _cname_long(q, sub, tcp):
    """A chain of 20 CNAMEs inside one answer (above the limit of 8)."""
    if not sub:
        return [packet(q, [mx_rr(10, target("l0", "cname-long"))])]
    name = lambda i: "l%d.cname-long.hostile.test" % i
    recs = [cname_rr(name(i + 1), owner=wire_name(name(i))) for i in range(20)]
    recs.append(a_rr("192.0.2.21", owner=wire_name(name(20))))
    return [packet(q, recs)]


@case("cname-loop")
def _cname_loop(q, sub, tcp):
    """x -> y -> x inside one answer."""
    if not sub:
        return [packet(q, [mx_rr(10, target("x", "cname-loop"))])]
    x, y = "x.cname-loop.hostile.test", "y.cname-loop.hostile.test"
    return [packet(q, [cname_rr(y, owner=wire_name(x)),
                       cname_rr(x, owner=wire_name(y))])]


@case("cname-chase-loop")
def _cname_chase_loop(q, sub, tcp):
    """p -> q and q -> p, each answered alone: the resolver must chase
    across queries and give up."""
    if not sub:
        return [packet(q, [mx_rr(10, target("p", "cname-chase-loop"))])]
    other = "q" if q.labels[0] == b"p" else "p"
    return [packet(q, [cname_rr("%s.cname-chase-loop.hostile.test" % other)])]


@case("cname-mx")
def _cname_mx(q, sub, tcp):
    """The domain itself is a CNAME loop for its MX query."""
    return [packet(q, [cname_rr("cname-mx.hostile.test")])]


def ttl_case(name, ttl):
    """Every record with this TTL (no negative answer to lower it)."""
    def handler(q, sub, tcp):
        if not sub:
            return [packet(q, [mx_rr(10, target("mx", name), ttl=ttl)])]
        if q.qtype == T_A:
            return [packet(q, [a_rr("192.0.2.30", ttl=ttl)])]
        return [packet(q, [rr(QNAME_PTR, T_AAAA, ttl,
                              socket.inet_pton(socket.AF_INET6,
                                               "2001:db8::30"))])]
    CASES[name] = handler


ttl_case("ttl-zero", 0)
ttl_case("ttl-max", 2**31 - 1)
ttl_case("ttl-highbit", 2**32 - 1)


@case("question-name")
def _question_name(q, sub, tcp):
    """The answer is for another name (a cache poisoning attempt)."""
    other = wire_name("ok.hostile.test") + q.question[-4:]
    return [packet(q, [mx_rr(10, target("mx", "ok"))], question=other)]


@case("question-type")
def _question_type(q, sub, tcp):
    other = q.question[:-4] + struct.pack(">HH", T_TXT, 1)
    return [packet(q, [mx_rr(10, target("mx", "ok"))], question=other)]


@case("question-none")
def _question_none(q, sub, tcp):
    return [packet(q, [mx_rr(10, target("mx", "ok"))], question=b"")]


@case("question-two")
def _question_two(q, sub, tcp):
    hdr_q = q.question + q.question
    return [packet(q, [mx_rr(10, target("mx", "ok"))], question=hdr_q,
                   counts=(2, 1, 0, 0))]


@case("question-case")
def _question_case(q, sub, tcp):
    """The question comes back in another case (0x20 style): valid."""
    if sub:
        return [default_host(q)]
    flipped = bytes(c ^ 0x20 if 97 <= c <= 122 else c for c in q.question)
    return [packet(q, [mx_rr(10, target("mx", "question-case"))],
                   question=flipped)]


@case("wrong-id")
def _wrong_id(q, sub, tcp):
    return [packet(q, [mx_rr(10, target("mx", "ok"))], qid=q.id ^ 0x5a5a)]


@case("wrong-id-first")
def _wrong_id_first(q, sub, tcp):
    """A forged answer with the wrong ID, then the real one."""
    if sub:
        return [default_host(q)]
    forged = packet(q, [mx_rr(10, target("evil", "ok"))], qid=q.id ^ 1)
    real = packet(q, [mx_rr(10, target("mx", "wrong-id-first"))])
    return [forged, real]


@case("bad-rdata")
def _bad_rdata(q, sub, tcp):
    """Address records whose data does not fit their type."""
    if not sub:
        return [packet(q, [mx_rr(10, target("mx", "bad-rdata"))])]
    if q.qtype == T_A:
        return [packet(q, [rr(QNAME_PTR, T_A, 300, b"\x01\x02\x03")])]
    return [packet(q, [rr(QNAME_PTR, T_AAAA, 300, b"\x20\x01" * 3)])]


@case("mx-short-rdata")
def _mx_short_rdata(q, sub, tcp):
    return [packet(q, [rr(QNAME_PTR, T_MX, 300, b"\x00")])]


@case("udp-oversize")
def _udp_oversize(q, sub, tcp):
    """A 2.7 KB UDP answer without TC, above the 1232 bytes we asked for."""
    if sub:
        return [default_host(q)]
    recs = [mx_rr(10 + i, target("mx%d" % i, "udp-oversize"))
            for i in range(60)]
    return [packet(q, recs)]


@case("loopback")
def _loopback(q, sub, tcp):
    """Targets at loopback: only usable with --allow-loopback."""
    if not sub:
        return [packet(q, [mx_rr(10, target("mx", "loopback"))])]
    if q.qtype == T_A:
        return [packet(q, [a_rr("127.0.0.1")])]
    return [nodata(q)]


# ---------------------------------------------------------------- serving

def answers_for(data, tcp):
    try:
        q = Query(data)
    except (IndexError, ValueError, struct.error):
        return []
    labels = q.labels
    if len(labels) < 3 or tuple(l.decode("ascii", "replace")
                                for l in labels[-2:]) != SUFFIX:
        return [packet(q, rcode=REFUSED, flags=0)]
    name = labels[-3].decode("ascii", "replace")
    handler = CASES.get(name)
    if handler is None:
        return [packet(q, authority=[soa_rr()], rcode=NXDOMAIN)]
    return handler(q, b".".join(labels[:-3]), tcp)


def serve_tcp(conn):
    conn.settimeout(TCP_IDLE_S)
    try:
        while True:
            head = conn.recv(2, socket.MSG_WAITALL)
            if len(head) < 2:
                return
            (n,) = struct.unpack(">H", head)
            data = conn.recv(n, socket.MSG_WAITALL)
            out = answers_for(data, True)
            time.sleep(getattr(out, "delay", 0))
            if not out:  # silent: keep the connection open, say nothing
                time.sleep(TCP_IDLE_S)
                return
            for msg in out:
                if isinstance(msg, Raw):
                    conn.sendall(msg)
                    return
                conn.sendall(struct.pack(">H", len(msg)) + msg)
    except OSError:
        return
    finally:
        conn.close()


def send_all(udp, answers, peer):
    for msg in answers:
        udp.sendto(msg, peer)


def bind_pair():
    """UDP and TCP sockets on the same free port of 127.0.0.1."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        port = udp.getsockname()[1]
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            tcp.bind(("127.0.0.1", port))
        except OSError:
            udp.close()
            tcp.close()
            continue
        tcp.listen(64)
        return udp, tcp, port
    raise SystemExit("hostile_dns: no free port")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("portfile")
    ap.add_argument("--lifetime", type=float, default=900)
    args = ap.parse_args()
    udp, tcp, port = bind_pair()
    tmp = args.portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, args.portfile)  # the reader never sees half a number
    end = time.monotonic() + args.lifetime
    while time.monotonic() < end:
        ready, _, _ = select.select([udp, tcp], [], [], 1.0)
        if udp in ready:
            data, peer = udp.recvfrom(65535)
            out = answers_for(data, False)
            if isinstance(out, Later):
                threading.Timer(out.delay, send_all,
                                args=(udp, out, peer)).start()
            else:
                send_all(udp, out, peer)
        if tcp in ready:
            conn, _ = tcp.accept()
            threading.Thread(target=serve_tcp, args=(conn,),
                             daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
