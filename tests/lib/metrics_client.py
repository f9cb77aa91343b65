#!/usr/bin/env python3
"""metrics_client.py -- the Prometheus side of tests/it_serve_metrics.sh.
Parses a scrape with prometheus_client's own text parser (Debian's
python3-prometheus-client) and plays the HTTP clients a metrics listener
must survive. Every wait is bounded; what it saw is printed, the suite
compares.

  parse FILE              the scrape in FILE as one JSON object:
                          {"families": {NAME: {"type", "help"}},
                           "samples": {"name{k=\"v\",...}": value}}
                          (labels sorted; a counter's NAME keeps _total),
                           "series": [{"name", "labels", "value"}]}
                          exit 1 when the parser refuses the text
  hold SOCK N ADDR M S    N socketmap clients on unix SOCK, M JSON clients
                          on ADDR (HOST:PORT), open for S seconds; prints
                          "held" once all are connected
  flood ADDR N            N HTTP connections at once, idle: prints
                          held=H refused=R (closed by the server within a
                          second), then whether one more request was
                          answered: full=refused|full=STATUS|full=hang
  slow ADDR S             half a request line, then nothing: prints
                          closed-after=SECONDS when the server closes it,
                          or open after S seconds
  garbage ADDR            bytes that are no HTTP: prints the status the
                          server answered (or none) and closed|open

ADDR is HOST:PORT or a unix socket path.
"""
import json
import socket
import sys
import time

from serve_client import is_closed, read_until


def connect(addr, limit=2.0):
    if "/" in addr:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(limit)
        s.connect(addr)
        return s
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=limit)


def family_key(f):
    # the parser drops a counter's _total from its family name
    return f.name + "_total" if f.type == "counter" else f.name


def cmd_parse(path):
    from prometheus_client.parser import text_string_to_metric_families
    text = open(path, encoding="utf-8").read()
    out = {"families": {}, "samples": {}, "series": []}
    try:
        for f in text_string_to_metric_families(text):
            out["families"][family_key(f)] = {"type": f.type,
                                              "help": f.documentation}
            for s in f.samples:
                labels = ",".join('%s="%s"' % (k, s.labels[k])
                                  for k in sorted(s.labels))
                key = s.name + ("{%s}" % labels if labels else "")
                out["samples"][key] = s.value
                out["series"].append({"name": s.name, "labels": s.labels,
                                      "value": s.value})
    except Exception as e:  # the parser's own complaint, whatever its type
        sys.exit("parse: %s" % e)
    print(json.dumps(out, sort_keys=True))


def cmd_hold(sock, n, addr, m, seconds):
    conns = [connect(sock) for _ in range(n)] + [connect(addr)
                                                 for _ in range(m)]
    print("held", flush=True)
    time.sleep(seconds)
    for c in conns:
        c.close()


def request(addr, limit=2.0):
    """One GET /metrics: its status, 'refused' if the connection was
    closed without an answer, 'hang' if nothing came in time."""
    try:
        s = connect(addr, limit)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close"
                  b"\r\n\r\n")
        head = s.recv(64)
    except socket.timeout:
        return "hang"
    except OSError:
        return "refused"
    if not head:
        return "refused"
    return head.split(b" ")[1].decode() if head.startswith(b"HTTP/") else "?"


def cmd_flood(addr, n):
    conns = []
    for _ in range(n):
        try:
            conns.append(connect(addr))
        except OSError:
            break
    time.sleep(0.5)
    refused = sum(1 for c in conns if is_closed(c, 0.05))
    print("held=%d refused=%d" % (len(conns) - refused, refused))
    print("full=%s" % request(addr))
    for c in conns:
        c.close()


def cmd_slow(addr, seconds):
    s = connect(addr)
    s.sendall(b"GET /metr")
    t0 = time.time()
    if is_closed(s, seconds):
        print("closed-after=%.1f" % (time.time() - t0))
    else:
        print("open")


def cmd_garbage(addr):
    s = connect(addr)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 garbage\r\n\r\n")
    data, closed = read_until(s, lambda b: False, 3)
    status = data.split(b" ")[1].decode() if data.startswith(b"HTTP/") \
        else "none"
    print(status, "closed" if closed else "open")


def main():
    a = sys.argv[1:]
    if a[0] == "parse":
        cmd_parse(a[1])
    elif a[0] == "hold":
        cmd_hold(a[1], int(a[2]), a[3], int(a[4]), float(a[5]))
    elif a[0] == "flood":
        cmd_flood(a[1], int(a[2]))
    elif a[0] == "slow":
        cmd_slow(a[1], float(a[2]))
    elif a[0] == "garbage":
        cmd_garbage(a[1])
    else:
        sys.exit("unknown command " + a[0])


if __name__ == "__main__":
    main()
