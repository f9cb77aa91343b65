#!/usr/bin/python3
"""mta_sts_cache.py -- postfix-mta-sts-resolver with an MTA-STS policy
cached for every benchmark domain, so that it answers each lookup from its
cache and never looks anything up (bench/serve.sh).

  fill DB DOMAINS       write the policies into the sqlite cache file DB,
                        the daemon's `cache: {type: sqlite}` backend
                        (Debian's default configuration)
  internal DOMAINS ARGS run mta-sts-daemon ARGS (its config must say
                        `cache: {type: internal}`) with its in-memory LRU
                        cache holding the policies from the start

The responder (postfix_mta_sts_resolver/responder.py) takes a cached entry
as fresh while now - ts is below its `cache_grace` setting and ts + max_age
is ahead of now; serve.sh sets cache_grace to a year, and the policies here
have the largest max_age RFC 8461 allows (a year), with ts = now. Their mode
is "enforce", so every answer is
"OK secure match=mx1.D:mx2.D servername=hostname".

The sqlite table is the one the daemon's backend creates and reads
(sqlite_cache.py). The internal cache can only be filled by fetching
policies (DNS, then HTTPS); `internal` puts them in through the cache's own
set() before the daemon starts, and changes nothing else.

Run it with the system's python3, which has the package.
"""
import json
import sqlite3
import sys
import time

MAX_AGE = 31557600  # RFC 8461, section 3.2: at most a year
POLICY_ID = "bench1"


def read_domains(listing):
    with open(listing) as f:
        return [line.strip().lower() for line in f if line.strip()]


def policy(domain):
    """The parsed policy, as the daemon's resolver stores it."""
    return {"version": "STSv1", "mode": "enforce",
            "mx": ["mx1." + domain, "mx2." + domain], "max_age": MAX_AGE}


def fill(db, listing):
    now = int(time.time())
    rows = [(d, now, POLICY_ID, json.dumps(policy(d)))
            for d in read_domains(listing)]
    con = sqlite3.connect(db)
    con.execute("create table if not exists sts_policy_cache "
                "(domain text, ts integer, pol_id text, pol_body text)")
    con.execute("create unique index if not exists sts_policy_domain "
                "on sts_policy_cache (domain)")
    con.execute("create index if not exists sts_policy_domain_ts "
                "on sts_policy_cache (domain, ts)")
    con.executemany("insert or replace into sts_policy_cache "
                    "(domain, ts, pol_id, pol_body) values (?, ?, ?, ?)", rows)
    con.commit()
    con.close()
    print("%s: %d policies, ts %d" % (db, len(rows), now))


def run_internal(listing, args):
    from postfix_mta_sts_resolver import daemon, utils
    from postfix_mta_sts_resolver.base_cache import CacheEntry

    domains = read_domains(listing)
    make_cache = utils.create_cache

    def prefilled(cache_type, options):
        if cache_type != "internal":
            sys.exit("mta_sts_cache.py internal: the config's cache type "
                     "is %r, not internal" % cache_type)
        cache = make_cache(cache_type, options)
        now = int(time.time())
        for d in domains:
            # InternalLRUCache.set never waits: the coroutine ends at its
            # first step, no event loop needed
            step = cache.set(d, CacheEntry(now, POLICY_ID, policy(d)))
            try:
                step.send(None)
            except StopIteration:
                pass
        return cache

    utils.create_cache = prefilled
    sys.argv = ["mta-sts-daemon"] + args
    daemon.main()


def main():
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "fill":
        fill(a[1], a[2])
    elif len(a) >= 2 and a[0] == "internal":
        run_internal(a[1], a[2:])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main()
