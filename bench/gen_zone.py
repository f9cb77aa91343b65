#!/usr/bin/env python3
"""gen_zone.py -- the benchmark zone "bench.test." for knotd.

For i in 0..N-1 the zone holds

    d<i>.bench.test.      MX 10 mx1.d<i>.bench.test.
    d<i>.bench.test.      MX 20 mx2.d<i>.bench.test.
    mx1.d<i>.bench.test.  A  198.18.x.y      (RFC 2544 benchmark range)
    mx2.d<i>.bench.test.  A  198.18.x.y
   [mx1/mx2              AAAA 2001:db8::...   only with --aaaa]

so routing one domain costs exactly three questions (MX, then A of each
target) when AAAA is off, which is what Node's resolveMx + resolve4 does.
Every name is distinct: nothing is answered from a cache.

Also writes the list of domains, one per line (--list), for the clients.

Usage: gen_zone.py [-n N] [--aaaa] [-o DIR]
       -> DIR/bench.test.zone and DIR/domains.txt
"""
import argparse
import os
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-n", type=int, default=50000, help="domains (50000)")
    ap.add_argument("--aaaa", action="store_true",
                    help="also give every MX host an AAAA record")
    ap.add_argument("--ttl", type=int, default=3600)
    ap.add_argument("-o", "--outdir", default=".")
    args = ap.parse_args()
    if args.n < 1 or args.n > 1000000:
        sys.exit("gen_zone.py: -n must be 1..1000000")
    os.makedirs(args.outdir, exist_ok=True)
    zone = os.path.join(args.outdir, "bench.test.zone")
    lst = os.path.join(args.outdir, "domains.txt")
    with open(zone, "w") as z:
        w = z.write
        w("$ORIGIN bench.test.\n$TTL %d\n" % args.ttl)
        w("@ IN SOA ns.bench.test. hostmaster.bench.test. "
          "1 3600 600 86400 300\n")
        w("@ IN NS ns.bench.test.\n")
        w("ns IN A 127.0.0.1\n")
        for i in range(args.n):
            d = "d%d" % i
            w("%s IN MX 10 mx1.%s\n%s IN MX 20 mx2.%s\n" % (d, d, d, d))
            for j in (1, 2):
                k = 2 * i + j  # 198.18.0.0/15 holds 131072 addresses
                w("mx%d.%s IN A 198.%d.%d.%d\n"
                  % (j, d, 18 + ((k >> 16) & 1), (k >> 8) & 255, k & 255))
                if args.aaaa:
                    w("mx%d.%s IN AAAA 2001:db8::%x:%x\n"
                      % (j, d, k >> 16, k & 0xffff))
    with open(lst, "w") as f:
        f.write("".join("d%d.bench.test\n" % i for i in range(args.n)))
    print("%s: %d domains, %d records" %
          (zone, args.n, args.n * (4 + (2 if args.aaaa else 0)) + 3))


if __name__ == "__main__":
    main()
