#!/usr/bin/env python3
"""serve_client.py -- a raw client of `mxroute serve` for tests/it_serve.sh
(stdlib only). Every wait is bounded; what it saw is printed, the suite
compares.

  sm SOCK KEY...          pipelined socketmap requests on one connection
                          (one write); prints each reply's data, one a line,
                          then CLOSED or OPEN
  raw SOCK TEXT           send TEXT (Python escapes) as is; prints the
                          replies, then CLOSED or OPEN
  partial SOCK            half a request, then close; prints nothing
  slow SOCK N KEY         a client that sends N requests and never reads,
                          while a second asks KEY: prints the second's
                          reply and its latency, then whether the first was
                          closed before getting all N replies (SLOW-CLOSED)
  flood SOCK N KEY        N clients at once, each asks KEY: prints
                          answered=A refused=R other=O
  json ADDR LINE...       pipelined JSON lines to ADDR (HOST:PORT or a unix
                          socket path); prints each response line
  halfclose ADDR TEXT     send TEXT (Python escapes) to ADDR (a unix socket
                          path or HOST:PORT), shut down the writing side as
                          Exim's ${readsocket} does, read until the daemon
                          closes (at most 5 s); prints what came, then EOF
                          or OPEN
  load SM JS CONNS SECONDS STOP KEY=ADDR,ADDR...
                          CONNS connections (even: socketmap on SM, odd:
                          JSON on JS), each sending batches of 8 pipelined
                          requests for the KEYs and checking every reply
                          against its addresses ("{n}" in a KEY: a number
                          of its own each time), until the file STOP
                          exists, the daemon ends the connection, or
                          SECONDS passed. Prints the counts: sent,
                          answered (right), wrong, partial (a connection
                          ended inside a reply), stuck (no reply in 5 s),
                          ended (connections the daemon ended), lost (the
                          most requests unanswered on one connection),
                          alive (clients that did not stop)
  notify PATH OUT SM KEY SECONDS
                          an sd_notify receiver on the datagram socket PATH:
                          each message one line of OUT ("|" for newlines);
                          at the first READY=1, asks KEY on SM at once and
                          writes "READY-ANSWER <reply>"; ends at STOPPING=1
  freeport                a free TCP port on 127.0.0.1
"""
import json
import os
import socket
import sys
import threading
import time


def netstring(s):
    b = s.encode() if isinstance(s, str) else s
    return str(len(b)).encode() + b":" + b + b","


def read_netstrings(sock, want, limit=5.0):
    """Up to `want` netstrings; returns (list, closed)."""
    sock.settimeout(0.2)
    buf, out, end = b"", [], time.time() + limit
    closed = False
    while len(out) < want and time.time() < end:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            closed = True
            break
        if not d:
            closed = True
            break
        buf += d
        while True:
            c = buf.find(b":")
            if c < 0 or not buf[:c].isdigit():
                break
            n = int(buf[:c])
            if len(buf) < c + 1 + n + 1:
                break
            out.append(buf[c + 1:c + 1 + n].decode(errors="replace"))
            buf = buf[c + 2 + n:]
    if buf and len(out) < want:
        out.append("UNPARSED " + buf[:200].decode(errors="replace"))
    return out, closed


def is_closed(sock, limit=3.0):
    sock.settimeout(limit)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def connect_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    return s


def cmd_sm(path, keys):
    s = connect_unix(path)
    s.sendall(b"".join(netstring("transport " + k) for k in keys))
    # "sent" on stderr: a test may act once the requests are in flight
    print("sent", file=sys.stderr, flush=True)
    out, closed = read_netstrings(s, len(keys))
    for o in out:
        print(o)
    print("CLOSED" if closed or is_closed(s, 0.5) else "OPEN")


def cmd_raw(path, text):
    s = connect_unix(path)
    s.sendall(text.encode().decode("unicode_escape").encode("latin-1"))
    out, closed = read_netstrings(s, 1, 3.0)
    for o in out:
        print(o)
    print("CLOSED" if closed or is_closed(s) else "OPEN")


def cmd_partial(path):
    s = connect_unix(path)
    s.sendall(b"40:transport user@pla")
    s.close()


def cmd_slow(path, n, key):
    a = connect_unix(path)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    req = netstring("transport " + key)
    stop = threading.Event()

    def flood():
        a.settimeout(0.5)
        for _ in range(n):
            if stop.is_set():
                return
            try:
                a.sendall(req)
            except OSError:
                return
    t = threading.Thread(target=flood, daemon=True)
    t.start()
    time.sleep(0.5)
    t0 = time.time()
    b = connect_unix(path)
    b.sendall(req)
    out, _ = read_netstrings(b, 1)
    print(out[0] if out else "NO-REPLY")
    print("latency-ok" if time.time() - t0 < 3 else "latency-bad")
    t.join(10)
    stop.set()
    time.sleep(1.0)
    got, closed = read_netstrings(a, n, 10.0)
    print("SLOW-CLOSED" if closed and len(got) < n else
          "SLOW-OPEN got=%d closed=%s" % (len(got), closed))


def cmd_flood(path, n, key):
    socks, res = [], {"answered": 0, "refused": 0, "other": 0}
    for _ in range(n):
        try:
            s = connect_unix(path)
        except OSError:
            res["other"] += 1
            continue
        socks.append(s)
        try:  # a refused client may find the door closed already
            s.sendall(netstring("transport " + key))
        except OSError:
            pass
    for s in socks:
        out, closed = read_netstrings(s, 1, 5.0)
        if out and out[0].startswith("OK "):
            res["answered"] += 1
        elif out and out[0] == "PERM too many clients" and (
                closed or is_closed(s)):
            res["refused"] += 1
        else:
            res["other"] += 1
    for s in socks:  # all open until every one was read
        s.close()
    print("answered=%(answered)d refused=%(refused)d other=%(other)d" % res)


def read_until(sock, enough, limit=5.0):
    """Bytes until enough(buf) holds, the peer closes or limit seconds
    pass; returns (bytes, closed)."""
    sock.settimeout(0.2)
    buf, end = b"", time.time() + limit
    while not enough(buf) and time.time() < end:
        try:
            d = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return buf, True
        if not d:
            return buf, True
        buf += d
    return buf, False


def connect(addr):
    """A unix socket path, or HOST:PORT."""
    if addr.startswith("/"):
        return connect_unix(addr)
    host, port = addr.rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=5)


def cmd_json(hostport, lines):
    s = connect(hostport)
    s.sendall("".join(l + "\n" for l in lines).encode())
    buf, _ = read_until(s, lambda b: b.count(b"\n") >= len(lines))
    sys.stdout.write(buf.decode(errors="replace"))


def cmd_halfclose(addr, text):
    s = connect(addr)
    s.sendall(text.encode().decode("unicode_escape").encode("latin-1"))
    s.shutdown(socket.SHUT_WR)
    buf, closed = read_until(s, lambda b: False)
    sys.stdout.write(buf.decode(errors="replace"))
    print("EOF" if closed else "OPEN")


def cmd_hold(path, n, seconds):
    """Open n connections (as many as the daemon accepts or the backlog
    holds), keep them open for the given seconds, then close them all."""
    socks = []
    for _ in range(n):
        try:
            socks.append(connect_unix(path))
        except OSError:
            break
    print(len(socks), flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()


BATCH = 8


class LoadConn:
    """One connection of `load`: a batch out, its replies back, checked."""

    def __init__(self, path, json_proto, expects, first):
        self.sock = connect_unix(path)
        self.json = json_proto
        self.expects = expects
        self.next = first
        self.buf = b""
        self.n = {"sent": 0, "answered": 0, "wrong": 0, "partial": 0,
                  "stuck": 0, "ended": 0, "lost": 0}
        self.bad = []

    def request(self, rid, key):
        if self.json:
            return (json.dumps({"id": rid, "op": "route", "input": key})
                    + "\n").encode()
        return netstring("transport " + key)

    def take_reply(self):
        """One whole reply out of the buffer, or None."""
        if self.json:
            nl = self.buf.find(b"\n")
            if nl < 0:
                return None
            line, self.buf = self.buf[:nl], self.buf[nl + 1:]
            return line.decode(errors="replace")
        c = self.buf.find(b":")
        if c < 0 or not self.buf[:c].isdigit():
            return None
        n = int(self.buf[:c])
        if len(self.buf) < c + 2 + n:
            return None
        data = self.buf[c + 1:c + 1 + n].decode(errors="replace")
        self.buf = self.buf[c + 2 + n:]
        return data

    def check(self, reply, rid, tmpl, key):
        addrs = self.expects[tmpl]
        if self.json:
            try:
                o = json.loads(reply)
                got = [a for c in o.get("candidates", [])
                       for a in c["addresses"]]
                ok = (o.get("id") == rid and o.get("status") == "ok"
                      and got == addrs)
            except (ValueError, KeyError, TypeError, AttributeError):
                ok = False
        else:
            ok = reply == "OK smtp:" + ", ".join("[%s]:25" % a for a in addrs)
        self.n["answered" if ok else "wrong"] += 1
        if not ok and len(self.bad) < 3:
            self.bad.append("%s -> %s" % (key, reply[:200]))

    def batch(self):
        """False once the connection ended (or failed)."""
        keys = list(self.expects)
        todo = []
        for _ in range(BATCH):
            tmpl = keys[self.next % len(keys)]
            self.next += 1
            key = tmpl.replace("{n}", "%d-%d" % (id(self) % 9973, self.next))
            todo.append((self.next, tmpl, key))
        try:
            self.sock.sendall(b"".join(self.request(r, k)
                                       for r, _, k in todo))
        except OSError:
            self.n["ended"] += 1
            self.n["lost"] = max(self.n["lost"], len(todo))
            return False
        self.n["sent"] += len(todo)
        self.sock.settimeout(5)
        while todo:
            reply = self.take_reply()
            if reply is not None:
                self.check(reply, *todo.pop(0))
                continue
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                self.n["stuck"] += 1
                return False
            except OSError:
                d = b""
            if not d:
                self.n["ended"] += 1
                self.n["partial"] += 1 if self.buf else 0
                self.n["lost"] = max(self.n["lost"], len(todo))
                return False
            self.buf += d
        return True


def cmd_load(sm_path, js_path, conns, seconds, stop, specs):
    expects = {}
    for spec in specs:
        key, addrs = spec.split("=", 1)
        expects[key] = addrs.split(",")
    lconns = [LoadConn(js_path if i % 2 else sm_path, i % 2 == 1, expects, i)
              for i in range(conns)]
    end = time.time() + seconds

    def work(c):
        while (time.time() < end and not os.path.exists(stop)
               and c.batch()):
            pass
    threads = [threading.Thread(target=work, args=(c,), daemon=True)
               for c in lconns]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 15)
    total = {k: sum(c.n[k] for c in lconns) for k in lconns[0].n}
    total["lost"] = max(c.n["lost"] for c in lconns)
    total["alive"] = sum(t.is_alive() for t in threads)
    print(" ".join("%s=%d" % kv for kv in sorted(total.items())))
    for c in lconns:
        for b in c.bad:
            print("WRONG " + b)


def cmd_notify(path, out, sm_path, key, seconds):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(0.2)
    end, ready = time.time() + seconds, False
    with open(out, "w", buffering=1) as f:
        while time.time() < end:
            try:
                msg = s.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            f.write(msg.replace("\n", "|") + "\n")
            if "READY=1" in msg.split("\n") and not ready:
                ready = True
                try:
                    c = connect_unix(sm_path)
                    c.sendall(netstring("transport " + key))
                    got, _ = read_netstrings(c, 1, 5.0)
                    f.write("READY-ANSWER %s\n" % (got[0] if got else "none"))
                except OSError as e:
                    f.write("READY-ANSWER %s\n" % e)
            if "STOPPING=1" in msg.split("\n"):
                break
    os.unlink(path)


def main():
    a = sys.argv[1:]
    if a[0] == "sm":
        cmd_sm(a[1], a[2:])
    elif a[0] == "raw":
        cmd_raw(a[1], a[2])
    elif a[0] == "partial":
        cmd_partial(a[1])
    elif a[0] == "slow":
        cmd_slow(a[1], int(a[2]), a[3])
    elif a[0] == "flood":
        cmd_flood(a[1], int(a[2]), a[3])
    elif a[0] == "json":
        cmd_json(a[1], a[2:])
    elif a[0] == "load":
        cmd_load(a[1], a[2], int(a[3]), float(a[4]), a[5], a[6:])
    elif a[0] == "notify":
        cmd_notify(a[1], a[2], a[3], a[4], float(a[5]))
    elif a[0] == "halfclose":
        cmd_halfclose(a[1], a[2])
    elif a[0] == "hold":
        cmd_hold(a[1], int(a[2]), float(a[3]))
    elif a[0] == "freeport":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])
    else:
        sys.exit("unknown command " + a[0])


if __name__ == "__main__":
    main()
