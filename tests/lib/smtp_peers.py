#!/usr/bin/python3
"""smtp_peers.py -- real SMTP peers for the integration tests (tests/it_smtp.sh).

Run with /usr/bin/python3 (Debian's python3-aiosmtpd is installed for it).
One peer kind per process; every kind takes the common options:

  --listen ADDR:PORT   where to listen (repeatable: same peer on several addresses)
  --ready FILE         written (atomically) once every socket listens
  --hostname NAME      name in the greeting and EHLO reply (default: mx.test)
  --log FILE           JSON Lines, one event per command/reply/connection
                       {"t", "listen", "peer", "event", "arg"}; events:
                       connect, helo, ehlo, starttls, mail, rcpt, data, dot,
                       rset, quit, reply, drop, disconnect
  --max-seconds N      exit by itself after N seconds (default 300), in case
                       the test that started it died without stopping it

It stops cleanly (exit 0) on SIGTERM or SIGINT.

Kinds:

  store   aiosmtpd server that stores every message it accepts in --dir:
          NAME.eml (the DATA bytes exactly as received after dot-unstuffing;
          aiosmtpd does NOT normalise line ends: a bare LF stays a bare LF)
          and NAME.json (written after the .eml, by rename): {"mail_from"
          ("" for the null sender), "rcpt_tos", "mail_options" (upper-cased,
          e.g. ["BODY=8BITMIME", "SMTPUTF8"]), "rcpt_options", "helo",
          "extended" (EHLO vs HELO), "tls" (STARTTLS done), "peer", "listen",
          "size"}. NAME is LISTENADDR-NNNN.
            --dir DIR                       required
            --reject-rcpt ADDR=CODE[ TEXT]  answer RCPT TO:<ADDR> with CODE
            --defer-rcpt ADDR[=CODE[ TEXT]] same, default 451
            --no-8bitmime                   do not offer 8BITMIME (and refuse
                                            BODY=8BITMIME with 555)
            --no-smtputf8                   do not offer SMTPUTF8 (aiosmtpd then
                                            refuses the SMTPUTF8 param with 501)
            --no-enhanced                   do not offer ENHANCEDSTATUSCODES
                                            (offered by default; note that
                                            aiosmtpd's own error replies, e.g.
                                            "530 Must issue a STARTTLS command
                                            first", have no enhanced code)
            --no-ehlo CODE                  answer EHLO with CODE (e.g. 502): the
                                            client must fall back to HELO
            --tls-cert FILE --tls-key FILE  offer STARTTLS
            --require-tls                   refuse everything but EHLO/NOOP/QUIT/
                                            STARTTLS with 530 until STARTTLS
  silent  accept TCP connections and never send a byte (keeps them open
          until the client closes)
  trickle send "220-" continuation lines forever, one every 100 ms: bytes
          keep coming, the reply never ends
  drop-data
          minimal correct SMTP (220, multi-line EHLO 250, HELO, MAIL 250,
          RCPT 250, DATA 354); after reading at least --after BYTES (default
          1) of the message it closes the connection (abortive: unread data
          makes the kernel send RST). Nothing is ever acknowledged after 354.
  odd     the same minimal SMTP server, but it completes the transaction
          (250 after the final dot) and can store into --dir like `store`:
            --greeting LINE      a greeting line, repeatable, sent as given
                                 (e.g. "220-first" "220-second" "220 last")
            --ehlo-code CODE     answer EHLO with CODE (e.g. 502)
            --dir DIR            store accepted messages
          Presets: `multiline` = odd with a three-line greeting and a
          multi-line EHLO reply; `helo-only` = odd with EHLO answered 502.
  The TLS and stall kinds are `odd` servers (same options) that break one
  step of the dialogue; the log shows where ("starttls", "data", "dot"):
  starttls-refuse
          offers STARTTLS (no certificate needed) and answers it with
          --starttls-code CODE (default 454); then goes on in clear
  tls-abort
          offers STARTTLS, answers 220, then closes the connection before
          any TLS byte (event "drop")
  tls-garbage
          offers STARTTLS, answers 220, reads the start of the ClientHello
          and answers it with lines of plain text (event "drop"); keeps
          the connection open until the client closes it
  stall-data
          never answers DATA (no 354): reads and waits until the client
          closes the connection
  stall-dot
          answers DATA 354, reads the message to the final dot, stores it
          like `odd` (--dir) and never answers it: the message is there,
          the client never hears so
"""

import argparse
import asyncio
import json
import os
import signal
import ssl
import sys
import time

LOGF = None


def log_event(listen, peer, event, arg=None):
    if LOGF is None:
        return
    rec = {"t": round(time.time(), 3), "listen": listen,
           "peer": "%s:%s" % peer[:2] if peer else None,
           "event": event, "arg": arg}
    LOGF.write(json.dumps(rec) + "\n")
    LOGF.flush()


def split_listen(s):
    host, sep, port = s.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("ADDR:PORT expected, got %r" % s)
    return host.strip("[]"), int(port)


def parse_reply_spec(spec, default_code):
    """ADDR=CODE[ TEXT] -> (addr, "CODE X.Y.Z text")."""
    addr, sep, rest = spec.partition("=")
    rest = rest.strip() if sep else ""
    code = rest[:3] if rest[:3].isdigit() else str(default_code)
    text = rest[3:].strip() if rest[:3].isdigit() else rest
    if not text:
        cls = code[0]
        enh = {"5": "5.1.1", "4": "4.2.0"}.get(cls, "2.0.0")
        why = ("Recipient address rejected" if cls == "5"
               else "Recipient temporarily unavailable, try again later")
        text = "%s <%s>: %s" % (enh, addr, why)
    return addr.lower(), "%s %s" % (code, text)


class Store:
    """Writes NAME.eml then NAME.json (atomically) into a directory."""

    def __init__(self, directory, listen):
        self.dir = directory
        self.listen = listen
        self.n = 0
        os.makedirs(directory, exist_ok=True)

    def save(self, data, meta):
        self.n += 1
        name = "%s-%04d" % (self.listen, self.n)
        with open(os.path.join(self.dir, name + ".eml"), "wb") as f:
            f.write(data)
        meta = dict(meta, listen=self.listen, size=len(data))
        tmp = os.path.join(self.dir, "." + name + ".json.tmp")
        with open(tmp, "w") as f:
            json.dump(meta, f, sort_keys=True)
        os.rename(tmp, os.path.join(self.dir, name + ".json"))
        return name


# --------------------------------------------------------------- store kind

def make_store_server(opts, listen_addr, listen_port):
    from aiosmtpd.smtp import SMTP

    listen = listen_addr
    store = Store(opts.dir, listen)
    rejects = {}
    for spec in opts.reject_rcpt or []:
        a, r = parse_reply_spec(spec, 550)
        rejects[a] = r
    for spec in opts.defer_rcpt or []:
        a, r = parse_reply_spec(spec, 451)
        rejects[a] = r

    class Handler:
        async def handle_HELO(self, server, session, envelope, hostname):
            log_event(listen, session.peer, "helo", hostname)
            session.host_name = hostname
            return "250 %s" % server.hostname

        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            log_event(listen, session.peer, "ehlo", hostname)
            if opts.no_ehlo:
                session.extended_smtp = False
                return ["%s 5.5.1 Error: EHLO not implemented, use HELO" % opts.no_ehlo]
            session.host_name = hostname
            out = []
            for r in responses:
                kw = r[4:].split(" ")[0].upper()
                if opts.no_8bitmime and kw == "8BITMIME":
                    continue
                if kw == "HELP" and not opts.no_enhanced:
                    # The replies of the hooks here carry enhanced codes
                    # (aiosmtpd's own do not; it never offers this itself).
                    out.append("250-ENHANCEDSTATUSCODES")
                out.append(r)
            return out

        async def handle_MAIL(self, server, session, envelope, address, mail_options):
            log_event(listen, session.peer, "mail",
                      {"address": "" if address == "<>" else address,
                       "options": mail_options})
            if opts.no_8bitmime and "BODY=8BITMIME" in mail_options:
                return "555 5.5.4 BODY=8BITMIME was not offered"
            envelope.mail_from = address
            envelope.mail_options.extend(mail_options)
            return "250 2.1.0 Ok"

        async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
            reply = rejects.get(address.lower())
            if reply is None:
                envelope.rcpt_tos.append(address)
                envelope.rcpt_options.extend(rcpt_options)
                reply = "250 2.1.5 Ok"
            log_event(listen, session.peer, "rcpt",
                      {"address": address, "reply": reply})
            return reply

        async def handle_RSET(self, server, session, envelope):
            log_event(listen, session.peer, "rset")
            return "250 2.0.0 Ok"

        async def handle_QUIT(self, server, session, envelope):
            log_event(listen, session.peer, "quit")
            return "221 2.0.0 Bye"

        async def handle_DATA(self, server, session, envelope):
            data = envelope.original_content
            meta = {
                "mail_from": "" if envelope.mail_from == "<>" else envelope.mail_from,
                "rcpt_tos": list(envelope.rcpt_tos),
                "mail_options": list(envelope.mail_options),
                "rcpt_options": list(envelope.rcpt_options),
                "smtp_utf8": bool(envelope.smtp_utf8),
                "helo": session.host_name,
                "extended": bool(session.extended_smtp),
                "tls": session.ssl is not None,
                "peer": "%s:%s" % session.peer[:2],
            }
            name = store.save(data, meta)
            log_event(listen, session.peer, "dot", {"stored": name, "size": len(data)})
            return "250 2.0.0 Ok: queued as %s" % name

        def handle_STARTTLS(self, server, session, envelope):
            log_event(listen, session.peer, "starttls")
            return True

    class PeerSMTP(SMTP):
        def _getaddr(self, arg):
            # aiosmtpd 1.4 answers "MAIL FROM:<>" with 501: accept the null
            # sender (it is what bounces and probes use) as the marker "<>".
            if arg is not None and arg.strip().startswith("<>"):
                return "<>", arg.strip()[2:].strip()
            return super()._getaddr(arg)

        def connection_made(self, transport):
            first = self.transport is None
            super().connection_made(transport)
            if first:
                log_event(listen, self.session.peer, "connect")

        def connection_lost(self, exc):
            log_event(listen, getattr(self.session, "peer", None), "disconnect")
            super().connection_lost(exc)

        async def push(self, status):
            log_event(listen, self.session.peer, "reply", status)
            await super().push(status)

        async def smtp_DATA(self, arg):
            log_event(listen, self.session.peer, "data")
            await super().smtp_DATA(arg)

    tls_context = None
    if opts.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(opts.tls_cert, opts.tls_key)
    handler = Handler()

    def factory():
        return PeerSMTP(handler, hostname=opts.hostname, ident="ESMTP store",
                        enable_SMTPUTF8=not opts.no_smtputf8, decode_data=False,
                        tls_context=tls_context,
                        require_starttls=bool(opts.require_tls and tls_context),
                        timeout=60)

    return factory


# ---------------------------------------- silent, drop-data, odd (raw asyncio)

# odd kinds that offer STARTTLS and then break it (no certificate needed).
TLS_BREAK_KINDS = ("starttls-refuse", "tls-abort", "tls-garbage")
# odd kinds that go quiet at one step of DATA.
STALL_KINDS = ("stall-data", "stall-dot")
ODD_KINDS = ("odd", "multiline", "helo-only") + TLS_BREAK_KINDS + STALL_KINDS

async def serve_silent(listen, reader, writer):
    peer = writer.get_extra_info("peername")
    log_event(listen, peer, "connect")
    try:
        while await reader.read(4096):
            pass
    except (ConnectionError, asyncio.CancelledError):
        pass
    log_event(listen, peer, "disconnect")
    writer.close()


async def serve_trickle(listen, reader, writer):
    """A greeting that never ends: one continuation line every 100 ms, so
    bytes keep arriving but no reply ever completes."""
    peer = writer.get_extra_info("peername")
    log_event(listen, peer, "connect")
    try:
        while True:
            writer.write(b"220-still greeting\r\n")
            await writer.drain()
            await asyncio.sleep(0.1)
    except (ConnectionError, asyncio.CancelledError):
        pass
    log_event(listen, peer, "disconnect")
    writer.close()


def make_raw_handler(opts, listen, kind):
    store = Store(opts.dir, listen) if getattr(opts, "dir", None) else None
    greeting = opts.greeting or ["220 %s ESMTP %s" % (opts.hostname, kind)]
    ehlo_code = getattr(opts, "ehlo_code", None)
    tls_ctx = None
    if getattr(opts, "tls_cert", None):
        tls_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_ctx.load_cert_chain(opts.tls_cert, opts.tls_key)

    async def handle(reader, writer):
        peer = writer.get_extra_info("peername")
        log_event(listen, peer, "connect")

        async def reply(*lines):
            for line in lines:
                log_event(listen, peer, "reply", line)
            writer.write(b"".join(l.encode() + b"\r\n" for l in lines))
            await writer.drain()

        async def until_closed():
            """Say nothing more; read until the client closes."""
            while await reader.read(4096):
                pass

        extended = False
        tls_on = False
        helo = None
        mail_from = None
        mail_opts = []
        rcpts = []
        try:
            await reply(*greeting)
            while True:
                line = await reader.readline()
                if not line:
                    break
                text = line.rstrip(b"\r\n").decode("utf-8", "replace")
                verb, _, arg = text.partition(" ")
                verb = verb.upper()
                if verb == "EHLO":
                    log_event(listen, peer, "ehlo", arg)
                    if ehlo_code:
                        await reply("%s 5.5.1 Error: command not implemented" % ehlo_code)
                        continue
                    extended, helo = True, arg
                    mail_from, rcpts = None, []
                    offer = tls_ctx or kind in TLS_BREAK_KINDS
                    starttls = ["250-STARTTLS"] if offer and not tls_on else []
                    await reply("250-%s greets %s" % (opts.hostname, arg),
                                *starttls, "250-8BITMIME",
                                "250-ENHANCEDSTATUSCODES", "250 SIZE 10240000")
                elif verb == "STARTTLS" and kind in TLS_BREAK_KINDS:
                    log_event(listen, peer, "starttls")
                    if kind == "starttls-refuse":
                        code = opts.starttls_code
                        await reply("%s %s.7.0 TLS not available" % (code, code[0]))
                        continue
                    await reply("220 2.0.0 Ready to start TLS")
                    if kind == "tls-garbage":
                        # Plain text where the ServerHello belongs: after
                        # the ClientHello, which the client would otherwise
                        # drop with the rest of what came in clear.
                        await reader.read(1)
                        writer.write(b"this is not TLS\r\n" * 8)
                        await writer.drain()
                    log_event(listen, peer, "drop", kind)
                    if kind == "tls-garbage":
                        await until_closed()
                    break
                elif verb == "STARTTLS" and tls_ctx and not tls_on:
                    log_event(listen, peer, "starttls")
                    # --inject: a reply sent in clear right behind the 220,
                    # which a client must not take as the answer to the
                    # EHLO it sends over TLS (RFC 3207 section 4.2).
                    await reply("220 2.0.0 Ready to start TLS", *(opts.inject or []))
                    await writer.start_tls(tls_ctx)
                    tls_on, helo, extended = True, None, False
                elif verb == "HELO":
                    log_event(listen, peer, "helo", arg)
                    extended, helo = False, arg
                    mail_from, rcpts = None, []
                    await reply("250 %s" % opts.hostname)
                elif verb == "MAIL":
                    if helo is None:
                        await reply("503 5.5.1 Error: send HELO/EHLO first")
                        continue
                    addr, _, params = arg.partition(">")
                    addr = addr.partition("<")[2]
                    params = params.split()
                    log_event(listen, peer, "mail", {"address": addr, "options": params})
                    if params and not extended:
                        await reply("501 5.5.4 Syntax: MAIL FROM:<address> (no parameters after HELO)")
                        continue
                    mail_from, mail_opts, rcpts = addr, [p.upper() for p in params], []
                    await reply("250 2.1.0 Ok")
                elif verb == "RCPT":
                    if mail_from is None:
                        await reply("503 5.5.1 Error: need MAIL command")
                        continue
                    addr = arg.partition("<")[2].partition(">")[0]
                    rcpts.append(addr)
                    log_event(listen, peer, "rcpt", {"address": addr, "reply": "250 2.1.5 Ok"})
                    await reply("250 2.1.5 Ok")
                elif verb == "DATA":
                    log_event(listen, peer, "data")
                    if not rcpts:
                        await reply("503 5.5.1 Error: need RCPT command")
                        continue
                    if kind == "stall-data":
                        await until_closed()
                        break
                    await reply("354 End data with <CR><LF>.<CR><LF>")
                    if kind == "drop-data":
                        got = 0
                        while got < opts.after:
                            chunk = await reader.read(65536)
                            if not chunk:
                                break
                            got += len(chunk)
                        log_event(listen, peer, "drop", {"bytes_read": got})
                        writer.transport.abort()
                        return
                    lines = []
                    while True:
                        l = await reader.readuntil(b"\r\n")
                        if l == b".\r\n":
                            break
                        lines.append(l[1:] if l.startswith(b".") else l)
                    data = b"".join(lines)
                    name = "-"
                    if store:
                        name = store.save(data, {
                            "mail_from": mail_from, "rcpt_tos": rcpts,
                            "mail_options": mail_opts, "rcpt_options": [],
                            "smtp_utf8": "SMTPUTF8" in mail_opts, "helo": helo,
                            "extended": extended, "tls": tls_on,
                            "peer": "%s:%s" % peer[:2]})
                    log_event(listen, peer, "dot", {"stored": name, "size": len(data)})
                    if kind == "stall-dot":
                        await until_closed()
                        break
                    mail_from, rcpts = None, []
                    await reply("250 2.0.0 Ok: queued as %s" % name)
                elif verb == "RSET":
                    log_event(listen, peer, "rset")
                    mail_from, rcpts = None, []
                    await reply("250 2.0.0 Ok")
                elif verb == "NOOP":
                    await reply("250 2.0.0 Ok")
                elif verb == "QUIT":
                    log_event(listen, peer, "quit")
                    await reply("221 2.0.0 Bye")
                    break
                else:
                    await reply("502 5.5.2 Error: command not recognized")
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            return
        log_event(listen, peer, "disconnect")
        try:
            writer.close()
        except Exception:
            pass

    return handle


# ---------------------------------------------------------------- main

def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--listen", action="append", type=split_listen, required=True)
    common.add_argument("--ready")
    common.add_argument("--hostname", default="mx.test")
    common.add_argument("--log")
    common.add_argument("--max-seconds", type=float, default=300)

    p = argparse.ArgumentParser(description="SMTP test peers")
    sub = p.add_subparsers(dest="kind", required=True)
    s = sub.add_parser("store", parents=[common])
    s.add_argument("--dir", required=True)
    s.add_argument("--reject-rcpt", action="append", metavar="ADDR=CODE[ TEXT]")
    s.add_argument("--defer-rcpt", action="append", metavar="ADDR[=CODE[ TEXT]]")
    s.add_argument("--no-8bitmime", action="store_true")
    s.add_argument("--no-smtputf8", action="store_true")
    s.add_argument("--no-enhanced", action="store_true")
    s.add_argument("--no-ehlo", metavar="CODE")
    s.add_argument("--tls-cert")
    s.add_argument("--tls-key")
    s.add_argument("--require-tls", action="store_true")
    sub.add_parser("silent", parents=[common])
    sub.add_parser("trickle", parents=[common])
    d = sub.add_parser("drop-data", parents=[common])
    d.add_argument("--after", type=int, default=1, metavar="BYTES")
    for name in ODD_KINDS:
        o = sub.add_parser(name, parents=[common])
        o.add_argument("--greeting", action="append", metavar="LINE")
        o.add_argument("--ehlo-code")
        o.add_argument("--dir")
        o.add_argument("--tls-cert")
        o.add_argument("--tls-key")
        o.add_argument("--inject", action="append", metavar="LINE",
                       help="sent in clear right after the 220 to STARTTLS")
        o.add_argument("--starttls-code", default="454", metavar="CODE",
                       help="starttls-refuse: the reply to STARTTLS")
    return p


async def amain(opts):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.call_later(opts.max_seconds, stop.set)

    if opts.kind == "multiline":
        opts.greeting = opts.greeting or [
            "220-%s ESMTP multiline" % opts.hostname,
            "220-this greeting has three lines",
            "220 %s ready" % opts.hostname]
    elif opts.kind == "helo-only":
        opts.ehlo_code = opts.ehlo_code or "502"
    if opts.kind != "store" and not hasattr(opts, "greeting"):
        opts.greeting = None

    servers = []
    for addr, port in opts.listen:
        if opts.kind == "store":
            factory = make_store_server(opts, addr, port)
            srv = await loop.create_server(factory, addr, port, reuse_address=True)
        elif opts.kind in ("silent", "trickle"):
            serve = serve_silent if opts.kind == "silent" else serve_trickle
            srv = await asyncio.start_server(
                lambda r, w, a=addr, f=serve: f(a, r, w), addr, port,
                reuse_address=True)
        else:
            srv = await asyncio.start_server(
                make_raw_handler(opts, addr, opts.kind), addr, port,
                reuse_address=True, limit=1 << 20)
        servers.append(srv)

    if opts.ready:
        tmp = opts.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %s\n" % (os.getpid(), " ".join("%s:%d" % l for l in opts.listen)))
        os.rename(tmp, opts.ready)

    await stop.wait()
    for srv in servers:
        srv.close()
    # Do not wait for open sessions (a silent peer's clients may linger).
    return 0


def main():
    global LOGF
    opts = build_parser().parse_args()
    if opts.kind == "store" and bool(opts.tls_cert) != bool(opts.tls_key):
        sys.exit("smtp_peers: --tls-cert and --tls-key go together")
    if opts.log:
        LOGF = open(opts.log, "a")
    try:
        rc = asyncio.run(amain(opts))
    except OSError as e:
        print("smtp_peers: %s" % e, file=sys.stderr)
        rc = 1
    sys.exit(rc)


if __name__ == "__main__":
    main()
