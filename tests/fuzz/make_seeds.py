#!/usr/bin/python3
"""make_seeds.py -- writes the binary seed corpora of the fuzz targets
(tests/fuzz/corpus/answer/ and corpus/policy/) from readable descriptions.
The text seeds (name, zone) are plain files written by hand.

Run with /usr/bin/python3 (it needs python3-dnslib) from anywhere:
    /usr/bin/python3 tests/fuzz/make_seeds.py
The files are committed: the replay tests do not need Python.
"""
import os
import struct

from dnslib import (AAAA, CNAME, DNSHeader, DNSQuestion, DNSRecord,
                    MX, QTYPE, RR, SOA, A)

HERE = os.path.dirname(os.path.abspath(__file__))

# fuzz_answer.c's header: flags, max hosts, addresses per host, addresses in
# all, records per answer, window; then which inputs to route (0: the
# domain example.com and the address User@Example.COM., sharing queries).
DEFAULT_HEADER = bytes([0, 15, 7, 31, 63, 7, 0])
# An attempt for each of the three plans: the message's attempt count,
# then per hop a byte (stage and class) and a byte per reply (no text).
ATTEMPT_BYTES = bytes([0, 0x28, 0, 0, 0, 0x00] + [0] * 40)
SPLICE, RAW, TIMEOUT, SERVFAIL = 0, 1, 2, 3


def chunk(body, mode=SPLICE):
    return struct.pack(">HB", len(body), mode) + body


def response(qname, qtype, answers=(), authority=(), rcode=0, tc=0):
    """A response packet: header, question, records (dnslib wire)."""
    r = DNSRecord(DNSHeader(id=0, qr=1, aa=1, ra=1, rcode=rcode, tc=tc),
                  q=DNSQuestion(qname, getattr(QTYPE, qtype)))
    for rr in answers:
        r.add_answer(rr)
    for rr in authority:
        r.add_auth(rr)
    return r.pack()


def spliced(wire, qname):
    """The packet without its question: fuzz_answer.c puts it back."""
    qlen = _name_len(qname) + 4
    return wire[:12] + wire[12 + qlen:]


def _name_len(name):
    return sum(len(label) + 1 for label in name.rstrip(".").split(".")) + 1


def answer(qname, qtype, *rrs, **kw):
    return chunk(spliced(response(qname, qtype, rrs, **kw), qname))


def mx(owner, pref, target, ttl=300):
    return RR(owner, QTYPE.MX, rdata=MX(target, pref), ttl=ttl)


def a(owner, addr, ttl=300):
    return RR(owner, QTYPE.A, rdata=A(addr), ttl=ttl)


def aaaa(owner, addr, ttl=300):
    return RR(owner, QTYPE.AAAA, rdata=AAAA(addr), ttl=ttl)


def cname(owner, target, ttl=300):
    return RR(owner, QTYPE.CNAME, rdata=CNAME(target), ttl=ttl)


def soa(owner="example.com"):
    return RR(owner, QTYPE.SOA, ttl=600,
              rdata=SOA("ns." + owner, "hostmaster." + owner,
                        (1, 3600, 600, 86400, 300)))


def nodata(qname, qtype):
    return answer(qname, qtype, authority=[soa()])


def answer_seeds():
    d = "example.com"
    two_mx = answer(d, "MX", mx(d, 10, "mx1.example.com"),
                    mx(d, 20, "mx2.example.com"))
    seeds = {
        "two_mx": two_mx
        + answer("mx1.example.com", "AAAA", aaaa("mx1.example.com", "2001:db8::1"))
        + answer("mx1.example.com", "A", a("mx1.example.com", "192.0.2.1"))
        + nodata("mx2.example.com", "AAAA")
        + answer("mx2.example.com", "A", a("mx2.example.com", "192.0.2.2")),
        "null_mx": answer(d, "MX", mx(d, 0, ".")),
        "nxdomain": answer(d, "MX", authority=[soa()], rcode=3),
        "servfail": answer(d, "MX", rcode=2),
        "truncated": answer(d, "MX", mx(d, 10, "mx1.example.com"), tc=1),
        "implicit": nodata(d, "MX")
        + answer(d, "AAAA", authority=[soa()])
        + answer(d, "A", a(d, "192.0.2.9")),
        "cname_target": answer(d, "MX", mx(d, 10, "alias.example.com"))
        + answer("alias.example.com", "AAAA", cname("alias.example.com",
                                                    "real.example.com"),
                 authority=[soa()])
        + answer("alias.example.com", "A", cname("alias.example.com",
                                                 "real.example.com"),
                 a("real.example.com", "192.0.2.3")),
        "dangling_cname": answer(d, "MX", mx(d, 10, "alias.example.com"))
        + answer("alias.example.com", "AAAA", cname("alias.example.com",
                                                    "other.example.net"))
        + answer("alias.example.com", "A", cname("alias.example.com",
                                                 "other.example.net"))
        + nodata("other.example.net", "AAAA")
        + answer("other.example.net", "A", a("other.example.net", "192.0.2.4")),
        "loopback_private": answer(d, "MX", mx(d, 10, "mx1.example.com"),
                                   mx(d, 10, "mx2.example.com"))
        + answer("mx1.example.com", "AAAA", aaaa("mx1.example.com", "::1"))
        + answer("mx1.example.com", "A", a("mx1.example.com", "127.0.0.1"))
        + nodata("mx2.example.com", "AAAA")
        + answer("mx2.example.com", "A", a("mx2.example.com", "10.0.0.1")),
        "ttl_extremes": answer(d, "MX", mx(d, 10, "mx1.example.com", ttl=0),
                               mx(d, 20, "mx2.example.com", ttl=2**31 - 1)),
        "raw_mismatch": chunk(response("other.example", "MX",
                                       [mx("other.example", 10, "x.example")]),
                              RAW),
        "transport": chunk(b"", TIMEOUT) + chunk(b"", SERVFAIL),
    }
    many = [mx(d, (i * 7919) % 65536, "h%d.example.com" % i) for i in range(300)]
    seeds["many_mx"] = answer(d, "MX", *many)
    loop = bytearray(spliced(response(d, "MX", [mx(d, 10, "mx1.example.com")]), d))
    # the MX target's last label pointer now points at the target itself
    loop[-2:] = struct.pack(">H", 0xC000 | (len(loop) + _name_len(d) + 4 - 6))
    seeds["compression_loop"] = chunk(bytes(loop))
    lie = bytearray(spliced(response(d, "MX", [mx(d, 10, "mx1.example.com")]), d))
    lie[6:8] = struct.pack(">H", 40)  # ANCOUNT says 40, one is there
    seeds["count_lies"] = chunk(bytes(lie))
    return {k: DEFAULT_HEADER + v + ATTEMPT_BYTES for k, v in seeds.items()}


# fuzz_policy.c's value encoding (see gen_value there): a kind byte, then
# what the kind reads. Indexes into its WORDS, INTEGERS, FLOATS, REPEATS,
# STATEMENTS, methods and metamethod lists.
W = {w: i for i, w in enumerate([
    "first", "last", "tempfail", "permfail", "bogus", "defer", "bounce",
    "next-host", "next-address", "continue", "delivered", "mx1.example.com",
    "MX2.Example.COM.", "relay.example.net", "nosuch.example.com",
    "192.0.2.1", "2001:db8::1", "127.0.0.1", "::1", "[192.0.2.1]",
    "300.1.1.1", "a..b", "-bad-", "xn--bcher-kva.example", "",
    "example.com", "fault.example.com", "slow.example.com", "host", "info",
    "warning"])}
METHOD = {m: i for i, m in enumerate(["add", "replace", "reorder", "remove",
                                      "fail", "candidates", "skipped",
                                      "nosuch"])}
NIL = [0]


def word(w):
    return [6, W[w]]


def boolean(b):
    return [1, int(b)]


def integer(i):       # an index into INTEGERS
    return [3, i]


def floating(i):      # an index into FLOATS
    return [4, i]


def raw(data):
    return [5, len(data)] + list(data)


def lst(*values):
    return [7, len(values)] + sum(values, [])


def spec_body(**fields):
    keys = ["host", "addresses", "preference", "port", "tls", "label",
            "position"]
    mask = sum(1 << keys.index(k) for k in fields)
    return [mask] + sum((fields[k] for k in keys if k in fields), [])


def spec(**fields):
    return [8] + spec_body(**fields)


def function(statements, ret):
    out = [11, len(statements)]
    for index, value in statements:
        out += [index] + value
    return out + ret


def meta(event, body, fn):
    return [10] + body + [event] + fn


def policy_seed(ops, route_ret=NIL, outcome=NIL, retry=NIL, flags=0,
                loading=(), calls=(0, 0)):
    out = [flags, len(ops)]
    for method, value, protected in ops:
        out += [METHOD[method]] + value + [int(protected)]
    out += route_ret + outcome + retry
    for value in loading:
        out += value
    out += list(calls)
    return bytes(out) + bytes([0x28, 0, 1, 2, 0x00, 0, 0] * 6)


def policy_seeds():
    relay = spec(host=word("relay.example.net"))
    return {
        "add_resolved": policy_seed([("add", relay, True)],
                                    outcome=word("defer"),
                                    retry=integer(9)),
        "replace_two": policy_seed([("replace", lst(
            spec(host=word("relay.example.net"),
                 addresses=lst(word("192.0.2.1"), word("2001:db8::1"))),
            spec(host=word("nosuch.example.com"))), False)]),
        "fail_permfail": policy_seed([("fail", word("permfail"), False)]),
        "remove_calls_fail": policy_seed([("remove", function(
            [(4, word("tempfail"))], boolean(True)), False)]),
        "reorder": policy_seed([("reorder", lst(word("MX2.Example.COM."),
                                               word("mx1.example.com"),
                                               integer(5)), True)]),
        "label_tostring": policy_seed([("add", spec(
            host=word("192.0.2.1"),
            label=meta(1, spec_body(host=word("mx1.example.com")),
                       function([], raw(b"A\x00\n")))), False)]),
        "outcome_function": policy_seed(
            [], outcome=function([(9, word("bogus"))], word("next-address")),
            retry=boolean(False), calls=(1, 0)),
        "loading_fields": policy_seed(
            [], flags=4, loading=(lst(word("example.com")), raw(b"a\x00b"))),
        "retry_nan": policy_seed([], retry=floating(4),
                                 outcome=word("delivered")),
        "huge_values": policy_seed([("add", spec(
            host=word("relay.example.net"), label=[12, W["host"], 6],
            preference=integer(5), port=integer(0),
            position=word("first")), True)],
            route_ret=[13, 3, word("info")[0], W["info"]]),
        "chained_defer": policy_seed([("add", relay, False)], flags=3,
                                     retry=integer(2)),
    }


def write(target, seeds):
    out = os.path.join(HERE, "corpus", target)
    os.makedirs(out, exist_ok=True)
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print("%s: %d seeds" % (target, len(seeds)))


if __name__ == "__main__":
    write("answer", answer_seeds())
    write("policy", policy_seeds())
