/* session.c -- the SMTP client state machine for one session.
 *
 * A session waits for one thing at a time (a phase): the connection, a
 * reply, the TLS handshake, or room to write the message. Commands are
 * sent one by one, without PIPELINING: a session to a relay's next hop
 * carries few recipients, and lock-step keeps every reply tied to its
 * command. The pool of sessions is an I/O source of the engine core: each
 * session's socket is watched with the session as its handle, so a ready
 * descriptor leads straight to its session. */
#include "smtp/session.h"
#include "base/list.h"
#include "smtp/reply.h"
#include "smtp/tls.h"

#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INBUF_MAX (MXR__REPLY_LINE_MAX + 2)
#define CMD_MAX 1100      /* longest command: RCPT TO:<256 octets> + params */
#define QUIT_MAX_MS 10000 /* we wait this long at most for 221 */

typedef enum phase {
    PH_CONNECT,
    PH_GREETING,
    PH_EHLO,
    PH_HELO,
    PH_STARTTLS,
    PH_HANDSHAKE,
    PH_EHLO_TLS,
    PH_MAIL,
    PH_RCPT,
    PH_DATA,
    PH_BODY,
    PH_DOT,
    PH_QUIT,
    PH_CLOSED
} phase;

struct mxr__smtp_pool {
    mxr__io_source io;
    mxr__core *core;
    mxr__smtp_config cfg;  /* helo and tls_ca owned */
    mxr__tls_ctx *tls_ctx; /* made on first use */
    mxr__link sessions;
    uint64_t due; /* no session deadline before this (a lower bound):
                     sessions are swept only when it has passed */
};

struct mxr__smtp {
    mxr__smtp_pool *pool;
    mxr__link link;    /* in the pool */
    mxr__io_handle io; /* the core's way back to us */
    int fd;
    int want; /* what the core watches for */
    phase ph;
    uint64_t deadline;
    mxr__smtp_job job; /* cleared once the end event fired */
    mxr__smtp_events ev;
    bool ended; /* end event fired */
    bool tls_on;
    bool tls_read_wants_write; /* an SSL_read that must wait to write */
    bool input_dropped;        /* in[] emptied while being parsed */
    mxr__tls *tls;
    bool has_8bitmime, has_smtputf8;
    size_t rcpt_i, accepted;
    mxr__reply reply;
    char in[INBUF_MAX];
    size_t inlen;
    char out[CMD_MAX];
    size_t outlen, outoff;
    size_t body_off;
    int early_errno; /* connect failed at once: reported from process */
};

/* ------------------------------------------------------------ plumbing */

static void due_at(mxr__smtp *s, uint64_t t);

/* Should the core's table not grow, the session ends with that error from
 * the next round (as a connect that failed at once): never a socket that
 * nobody watches. */
static void notify_socket(mxr__smtp *s, int want)
{
    if (s->fd < 0 || want == s->want)
        return;
    s->want = want;
    mxr__smtp_pool *p = s->pool;
    if (mxr__io_watch(p->core, &p->io, s->fd, want, &s->io) != MXR_OK && want) {
        s->early_errno = ENOMEM;
        due_at(s, mxr__core_now(p->core));
    }
}

static bool writing(const mxr__smtp *s)
{
    return s->ph == PH_CONNECT || s->outoff < s->outlen ||
           (s->ph == PH_BODY && s->body_off < s->job.wire_len) ||
           s->tls_read_wants_write;
}

static int compute_want(const mxr__smtp *s)
{
    if (s->ph == PH_CLOSED || s->early_errno)
        return 0;
    if (s->ph == PH_HANDSHAKE)
        return s->want; /* what OpenSSL last asked for */
    return writing(s) ? MXR_WANT_WRITE : MXR_WANT_READ;
}

static int64_t stage_timeout(const mxr__smtp *s, phase ph)
{
    const mxr__smtp_config *c = &s->pool->cfg;
    switch (ph) {
    case PH_CONNECT:
        return c->connect_ms;
    case PH_GREETING:
        return c->greeting_ms;
    case PH_HANDSHAKE:
        return c->tls_ms;
    case PH_DATA:
        return c->data_ms;
    case PH_BODY:
        return c->block_ms;
    case PH_DOT:
        return c->dot_ms;
    case PH_QUIT:
        return c->command_ms < QUIT_MAX_MS ? c->command_ms : QUIT_MAX_MS;
    default:
        return c->command_ms;
    }
}

/* Set the session's deadline. Deadlines that move later need not tell
 * the pool: its due time only has to stay at or before the earliest. */
static void due_at(mxr__smtp *s, uint64_t t)
{
    s->deadline = t;
    if (t < s->pool->due)
        s->pool->due = t;
}

static uint64_t now_ms(const mxr__smtp *s)
{
    return mxr__core_now(s->pool->core);
}

static void enter(mxr__smtp *s, phase ph)
{
    s->ph = ph;
    due_at(s, now_ms(s) + (uint64_t)stage_timeout(s, ph));
    mxr__reply_reset(&s->reply);
}

static mxr_stage stage_of(phase ph)
{
    static const mxr_stage map[] = {
        [PH_CONNECT] = MXR_STAGE_CONNECT, [PH_GREETING] = MXR_STAGE_GREETING,
        [PH_EHLO] = MXR_STAGE_EHLO,       [PH_HELO] = MXR_STAGE_EHLO,
        [PH_STARTTLS] = MXR_STAGE_TLS,    [PH_HANDSHAKE] = MXR_STAGE_TLS,
        [PH_EHLO_TLS] = MXR_STAGE_EHLO,   [PH_MAIL] = MXR_STAGE_MAIL,
        [PH_RCPT] = MXR_STAGE_RCPT,       [PH_DATA] = MXR_STAGE_DATA,
        [PH_BODY] = MXR_STAGE_DATA,       [PH_DOT] = MXR_STAGE_DOT,
        [PH_QUIT] = MXR_STAGE_DOT,        [PH_CLOSED] = MXR_STAGE_DOT,
    };
    return map[ph];
}

/* Closed sessions are freed by the next sweep, which this brings on. A
 * session whose socket never opened is closed too. */
static void close_socket(mxr__smtp *s)
{
    if (s->fd >= 0) {
        notify_socket(s, 0);
        mxr__tls_free(s->tls);
        s->tls = NULL;
        close(s->fd);
        s->fd = -1;
    }
    s->ph = PH_CLOSED;
    s->pool->due = 0;
}

/* Queue a command line (CRLF added). Commands we build are short: an
 * overlong one is a caller bug caught by mxr_send's checks. */
static void queue(mxr__smtp *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void queue(mxr__smtp *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s->out, sizeof s->out - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n > sizeof s->out - 3)
        n = 0;
    memcpy(s->out + n, "\r\n", 2);
    s->outlen = (size_t)n + 2;
    s->outoff = 0;
}

/* ------------------------------------------------------- ending a session */

static void flush_now(mxr__smtp *s);

/* Report how the session ended, once. When the connection still works,
 * QUIT goes out first (RFC 5321 4.1.1.10), so that even an embedder that
 * tears the engine down at once has said goodbye; else the socket
 * closes. */
static void finish(mxr__smtp *s, mxr_stage stage, mxr_class cls, int code,
                   const char *enhanced, const char *text)
{
    bool usable =
        cls == MXR_CLASS_OK || cls == MXR_CLASS_4XX || cls == MXR_CLASS_5XX;
    bool quit = usable && s->fd >= 0 && s->ph != PH_QUIT;
    if (quit) {
        queue(s, "QUIT");
        flush_now(s);
    }
    if (!s->ended) {
        s->ended = true;
        mxr_outcome o = {stage, cls, code,
                         enhanced && enhanced[0] ? enhanced : NULL, text};
        mxr__smtp_events ev = s->ev;
        bool tls = s->tls_on;
        size_t accepted = s->accepted;
        memset(&s->job, 0, sizeof s->job);
        ev.end(ev.ud, &o, tls, accepted);
    }
    if (quit && s->fd >= 0)
        enter(s, PH_QUIT); /* resets the reply: after the event */
    else
        close_socket(s);
}

static void fail_io(mxr__smtp *s, mxr_class cls, const char *text)
{
    if (s->ph == PH_QUIT) {
        close_socket(s);
        return;
    }
    finish(s, stage_of(s->ph), cls, 0, NULL, text);
    close_socket(s);
}

/* The reply ends the session. A 2xx or 3xx where none belongs (a 354 to
 * EHLO, a 250 to DATA) is a protocol error, not progress: the server and
 * we no longer agree where we are. */
static void fail_reply(mxr__smtp *s, mxr_stage stage)
{
    const mxr__reply *r = &s->reply;
    mxr_class cls = mxr_class_of_code(r->code);
    if (cls == MXR_CLASS_OK) {
        finish(s, stage, MXR_CLASS_RESET, r->code, r->enhanced,
               "unexpected reply");
        close_socket(s);
        return;
    }
    finish(s, stage, cls, r->code, r->enhanced, r->text);
}

/* ------------------------------------------------------- the dialogue */

static void send_ehlo(mxr__smtp *s, phase ph)
{
    queue(s, "%s %s", ph == PH_HELO ? "HELO" : "EHLO", s->pool->cfg.helo);
    enter(s, ph);
}

static void send_mail(mxr__smtp *s)
{
    if (s->job.need_smtputf8 && !s->has_smtputf8) {
        /* RFC 6531 3.4: no downgrade here; the message cannot go to this
         * server as it is. */
        finish(s, MXR_STAGE_MAIL, MXR_CLASS_5XX, 0, "5.6.7",
               "an address needs SMTPUTF8, which the server does not offer");
        return;
    }
    queue(s, "MAIL FROM:<%s>%s%s", s->job.sender,
          s->job.body_8bit && s->has_8bitmime ? " BODY=8BITMIME" : "",
          s->job.need_smtputf8 ? " SMTPUTF8" : "");
    enter(s, PH_MAIL);
}

static void send_rcpt(mxr__smtp *s)
{
    queue(s, "RCPT TO:<%s>", s->job.rcpts[s->rcpt_i]);
    enter(s, PH_RCPT);
}

static bool tls_wanted(const mxr__smtp *s)
{
    return s->job.tls != MXR_TLS_NONE && !s->tls_on;
}

static bool tls_mandatory(const mxr__smtp *s)
{
    return s->job.tls == MXR_TLS_REQUIRED || s->job.tls == MXR_TLS_VERIFY;
}

static void after_ehlo(mxr__smtp *s)
{
    const mxr__reply *r = &s->reply;
    s->has_8bitmime = mxr__reply_has_keyword(r, "8BITMIME");
    s->has_smtputf8 = mxr__reply_has_keyword(r, "SMTPUTF8");
    if (tls_wanted(s) && mxr__reply_has_keyword(r, "STARTTLS")) {
        queue(s, "STARTTLS");
        enter(s, PH_STARTTLS);
        return;
    }
    if (tls_wanted(s) && tls_mandatory(s)) {
        finish(s, MXR_STAGE_TLS, MXR_CLASS_5XX, 0, NULL,
               "STARTTLS is required but the server does not offer it");
        return;
    }
    send_mail(s);
}

static void on_handshake(mxr__smtp *s);

static void start_handshake(mxr__smtp *s)
{
    char err[256];
    mxr__smtp_pool *p = s->pool;
    if (!p->tls_ctx)
        p->tls_ctx = mxr__tls_ctx_new(p->cfg.tls_ca, err, sizeof err);
    mxr__tls_ctx *ctx = p->tls_ctx;
    s->tls = ctx ? mxr__tls_new(ctx, s->fd, s->job.host,
                                s->job.tls == MXR_TLS_VERIFY)
                 : NULL;
    if (!s->tls) {
        finish(s, MXR_STAGE_TLS, MXR_CLASS_5XX, 0, NULL,
               ctx ? "cannot start TLS" : err);
        return;
    }
    /* Anything the server sent after its 220 came in clear and must not
     * be read as part of the TLS session (RFC 3207 section 4.2). */
    s->inlen = 0;
    s->input_dropped = true;
    enter(s, PH_HANDSHAKE);
    on_handshake(s); /* the ClientHello goes out now */
}

static void after_rcpt_phase(mxr__smtp *s)
{
    if (s->accepted == 0) {
        finish(s, MXR_STAGE_RCPT, MXR_CLASS_OK, 0, NULL,
               "no recipient accepted");
        return;
    }
    if (!s->job.wire) { /* probe: stop before DATA */
        finish(s, MXR_STAGE_RCPT, MXR_CLASS_OK, 0, NULL, "RCPT phase over");
        return;
    }
    queue(s, "DATA");
    enter(s, PH_DATA);
}

static void on_rcpt_reply(mxr__smtp *s)
{
    const mxr__reply *r = &s->reply;
    mxr_class cls = mxr_class_of_code(r->code);
    /* 421 closes the session; a 3xx is no answer to RCPT at all. */
    if (cls == MXR_CLASS_421 || (r->code >= 300 && r->code < 400)) {
        fail_reply(s, MXR_STAGE_RCPT);
        return;
    }
    if (cls == MXR_CLASS_OK)
        s->accepted++;
    mxr_outcome o = {MXR_STAGE_RCPT, cls, r->code,
                     r->enhanced[0] ? r->enhanced : NULL, r->text};
    s->ev.rcpt(s->ev.ud, s->rcpt_i, &o);
    if (++s->rcpt_i < s->job.nrcpts)
        send_rcpt(s);
    else
        after_rcpt_phase(s);
}

static void on_reply(mxr__smtp *s)
{
    const mxr__reply *r = &s->reply;
    bool ok = r->code >= 200 && r->code < 300;
    if (s->ph != PH_RCPT && s->ph != PH_QUIT && r->code == 421) {
        fail_reply(s, stage_of(s->ph));
        return;
    }
    switch (s->ph) {
    case PH_GREETING:
        ok ? send_ehlo(s, PH_EHLO) : fail_reply(s, MXR_STAGE_GREETING);
        break;
    case PH_EHLO:
        /* RFC 5321 3.2: a server that does not know EHLO (5xx) gets
         * HELO; a 4xx is "not now", not "not known". */
        if (ok)
            after_ehlo(s);
        else if (r->code >= 500)
            send_ehlo(s, PH_HELO);
        else
            fail_reply(s, MXR_STAGE_EHLO);
        break;
    case PH_HELO:
        if (!ok)
            fail_reply(s, MXR_STAGE_EHLO);
        else if (tls_wanted(s) && tls_mandatory(s))
            finish(s, MXR_STAGE_TLS, MXR_CLASS_5XX, 0, NULL,
                   "STARTTLS is required but the server only speaks HELO");
        else
            send_mail(s);
        break;
    case PH_STARTTLS:
        if (ok)
            start_handshake(s);
        else if (tls_mandatory(s))
            fail_reply(s, MXR_STAGE_TLS);
        else
            send_mail(s); /* opportunistic: go on in clear */
        break;
    case PH_EHLO_TLS:
        ok ? after_ehlo(s) : fail_reply(s, MXR_STAGE_EHLO);
        break;
    case PH_MAIL:
        if (!ok)
            fail_reply(s, MXR_STAGE_MAIL);
        else if (s->job.nrcpts == 0)
            after_rcpt_phase(s);
        else
            send_rcpt(s);
        break;
    case PH_RCPT:
        on_rcpt_reply(s);
        break;
    case PH_DATA:
        if (r->code >= 300 && r->code < 400) {
            s->body_off = 0;
            enter(s, PH_BODY);
        } else {
            fail_reply(s, MXR_STAGE_DATA);
        }
        break;
    case PH_DOT:
        if (ok)
            finish(s, MXR_STAGE_DOT, MXR_CLASS_OK, r->code, r->enhanced,
                   r->text);
        else
            fail_reply(s, MXR_STAGE_DOT);
        break;
    case PH_QUIT:
        close_socket(s);
        break;
    default:
        break;
    }
}

/* ---------------------------------------------------------------- I/O */

/* > 0 bytes, 0 would block, -1 closed or broken (errno_out set). */
static ssize_t io_read(mxr__smtp *s, char *buf, size_t len, int *err)
{
    s->tls_read_wants_write = false;
    if (s->tls) {
        ssize_t n = mxr__tls_read(s->tls, buf, len);
        if (n > 0 || n == MXR__TLS_WANT_READ)
            return n > 0 ? n : 0;
        if (n == MXR__TLS_WANT_WRITE) {
            s->tls_read_wants_write = true;
            return 0;
        }
        *err = ECONNRESET;
        return -1;
    }
    ssize_t n = recv(s->fd, buf, len, 0);
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    *err = n == 0 ? ECONNRESET : errno;
    return -1;
}

static ssize_t io_write(mxr__smtp *s, const char *buf, size_t len, int *err)
{
    if (s->tls) {
        ssize_t n = mxr__tls_write(s->tls, buf, len);
        if (n > 0)
            return n;
        if (n == MXR__TLS_WANT_READ || n == MXR__TLS_WANT_WRITE)
            return 0;
        *err = EPIPE;
        return -1;
    }
    ssize_t n = send(s->fd, buf, len, MSG_NOSIGNAL);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return 0;
    *err = errno;
    return -1;
}

/* Write the queued command now if the socket takes it; what does not go
 * out waits for writability. A broken socket just closes. */
static void flush_now(mxr__smtp *s)
{
    int err = 0;
    while (s->fd >= 0 && s->outoff < s->outlen) {
        ssize_t n =
            io_write(s, s->out + s->outoff, s->outlen - s->outoff, &err);
        if (n < 0)
            close_socket(s);
        if (n <= 0)
            return;
        s->outoff += (size_t)n;
    }
}

static const char *broken_text(int err)
{
    return err == ECONNRESET || err == EPIPE ? "connection closed by the server"
                                             : strerror(err);
}

static bool awaiting_reply(phase ph)
{
    return ph != PH_CONNECT && ph != PH_HANDSHAKE && ph != PH_BODY &&
           ph != PH_CLOSED;
}

/* Feed complete lines to the reply parser; stop when a reply moved the
 * session out of reply-waiting (a STARTTLS 220, the body, the end). */
static void parse_input(mxr__smtp *s)
{
    size_t off = 0;
    while (awaiting_reply(s->ph)) {
        size_t used;
        long n = mxr__reply_next_line(s->in + off, s->inlen - off, &used);
        if (n < 0)
            break;
        const char *err = NULL;
        int done = mxr__reply_line(&s->reply, s->in + off, (size_t)n,
                                   s->pool->cfg.max_reply, &err);
        off += used;
        if (done < 0) {
            fail_io(s, MXR_CLASS_RESET, err);
            return;
        }
        if (done)
            on_reply(s);
        if (s->input_dropped) { /* by STARTTLS: start over, empty */
            s->input_dropped = false;
            off = 0;
        }
    }
    if (s->ph == PH_CLOSED)
        return;
    memmove(s->in, s->in + off, s->inlen - off);
    s->inlen -= off;
}

static void on_readable(mxr__smtp *s)
{
    for (;;) {
        if (s->inlen >= sizeof s->in) {
            fail_io(s, MXR_CLASS_RESET, "reply line too long");
            return;
        }
        int err = 0;
        ssize_t n = io_read(s, s->in + s->inlen, sizeof s->in - s->inlen, &err);
        if (n == 0)
            return;
        if (n < 0) {
            fail_io(s, MXR_CLASS_RESET, broken_text(err));
            return;
        }
        s->inlen += (size_t)n;
        parse_input(s);
        if (!awaiting_reply(s->ph))
            return;
    }
}

/* Write what is queued: a command, or the message while in the body. */
static void on_writable(mxr__smtp *s)
{
    int err = 0;
    while (s->outoff < s->outlen) {
        ssize_t n =
            io_write(s, s->out + s->outoff, s->outlen - s->outoff, &err);
        if (n <= 0)
            goto blocked;
        s->outoff += (size_t)n;
    }
    while (s->ph == PH_BODY && s->body_off < s->job.wire_len) {
        ssize_t n = io_write(s, s->job.wire + s->body_off,
                             s->job.wire_len - s->body_off, &err);
        if (n <= 0)
            goto blocked;
        s->body_off += (size_t)n;
        /* RFC 5321 4.5.3.2.5: the timeout is per block written. */
        s->deadline = now_ms(s) + (uint64_t)stage_timeout(s, PH_BODY);
    }
    if (s->ph == PH_BODY)
        enter(s, PH_DOT);
    return;
blocked:
    if (err)
        fail_io(s, MXR_CLASS_RESET, broken_text(err));
}

static void on_connected(mxr__smtp *s)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err) {
        s->early_errno = err;
        return;
    }
    enter(s, PH_GREETING);
}

static mxr_class connect_class(int err)
{
    switch (err) {
    case ECONNREFUSED:
        return MXR_CLASS_REFUSED;
    case ETIMEDOUT:
        return MXR_CLASS_TIMEOUT;
    case ECONNRESET:
        return MXR_CLASS_RESET;
    default:
        return MXR_CLASS_UNREACHABLE;
    }
}

static void on_handshake(mxr__smtp *s)
{
    char err[256] = "";
    int r = mxr__tls_handshake(s->tls, err, sizeof err);
    if (r == MXR__TLS_WANT_READ || r == MXR__TLS_WANT_WRITE) {
        notify_socket(s,
                      r == MXR__TLS_WANT_READ ? MXR_WANT_READ : MXR_WANT_WRITE);
        return;
    }
    if (r != MXR__TLS_DONE) {
        /* A broken TLS setup is the host's, not the connection's
         * (rules.c: next host); the socket is unusable either way. */
        finish(s, MXR_STAGE_TLS, MXR_CLASS_5XX, 0, NULL, err);
        close_socket(s);
        return;
    }
    s->tls_on = true;
    send_ehlo(s, PH_EHLO_TLS); /* RFC 3207 4.2: forget what was said */
}

/* One round for one session: its events, then its deadline. */
static void session_step(mxr__smtp *s, bool rd, bool wr, uint64_t now)
{
    if (s->early_errno) {
        int err = s->early_errno;
        s->early_errno = 0;
        finish(s, MXR_STAGE_CONNECT, connect_class(err), 0, NULL,
               strerror(err));
        close_socket(s);
        return;
    }
    if (s->ph == PH_CONNECT && (wr || rd))
        on_connected(s);
    else if (s->ph == PH_HANDSHAKE && (wr || rd))
        on_handshake(s);
    else {
        if (wr && s->ph != PH_CLOSED)
            on_writable(s);
        if ((rd || (wr && s->tls_read_wants_write)) && awaiting_reply(s->ph))
            on_readable(s);
    }
    if (s->early_errno) {
        session_step(s, false, false, now);
        return;
    }
    /* After the events: a reply that came in time has moved the deadline.
     * Checked even when bytes arrived, so a server trickling a reply
     * cannot hold the session past it. */
    if (s->ph != PH_CLOSED && now >= s->deadline)
        fail_io(s, MXR_CLASS_TIMEOUT,
                s->ph == PH_QUIT ? "no reply to QUIT" : "timed out");
    if (s->ph != PH_CLOSED && s->ph != PH_HANDSHAKE)
        notify_socket(s, compute_want(s));
}

/* ------------------------------------------------------------- lifetime */

static int open_socket(const mxr_addr *addr, uint16_t port, int *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    memset(&ss, 0, sizeof ss);
    if (addr->family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        memcpy(&a->sin6_addr, addr->bytes, 16);
        len = sizeof *a;
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        memcpy(&a->sin_addr, addr->bytes, 4);
        len = sizeof *a;
    }
    int fd =
        socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (connect(fd, (struct sockaddr *)&ss, len) != 0 && errno != EINPROGRESS) {
        *err = errno;
        close(fd);
        return -1;
    }
    return fd;
}

mxr__smtp *mxr__smtp_start(mxr__smtp_pool *pool, const mxr_addr *addr,
                           uint16_t port, const mxr__smtp_job *job,
                           const mxr__smtp_events *ev)
{
    mxr__smtp *s = mxr__calloc(&pool->core->a, 1, sizeof *s);
    if (!s)
        return NULL;
    s->pool = pool;
    s->job = *job;
    s->ev = *ev;
    s->fd = -1;
    mxr__list_push_front(&pool->sessions, &s->link);
    enter(s, PH_CONNECT);
    int err = 0;
    s->fd = open_socket(addr, port, &err);
    if (s->fd < 0) {
        s->early_errno = err ? err : EIO;
        due_at(s, now_ms(s)); /* reported from the next process */
        return s;
    }
    s->io.fd = s->fd;
    notify_socket(s, compute_want(s));
    return s;
}

static void session_free(mxr__smtp *s)
{
    close_socket(s);
    mxr__list_remove(&s->link);
    mxr__free(&s->pool->core->a, s);
}

void mxr__smtp_cancel(mxr__smtp *s)
{
    if (!s)
        return;
    if (!s->ended) {
        s->ended = true;
        memset(&s->job, 0, sizeof s->job);
    }
    close_socket(s); /* freed by the next sweep */
}

/* ------------------------------------------------- the pool: an I/O source */

static mxr__smtp_pool *pool_of(mxr__io_source *src)
{
    return mxr__container_of(src, mxr__smtp_pool, io);
}

static int pool_timeout(mxr__io_source *src, int max_ms)
{
    mxr__smtp_pool *p = pool_of(src);
    if (mxr__list_empty(&p->sessions))
        return -1;
    uint64_t now = mxr__core_now(p->core);
    uint64_t left = p->due > now ? p->due - now : 0;
    return left < (uint64_t)max_ms ? (int)left : max_ms;
}

/* Expired deadlines and failed connects, then free the closed sessions
 * and find the next deadline. Runs only when the due time has passed, so
 * a busy engine does not walk every session on every event. Sessions
 * started by a handler go to the front and wait for the next sweep. */
static void sweep(mxr__smtp_pool *p, uint64_t now)
{
    mxr__list_each(l, next, &p->sessions)
    {
        mxr__smtp *s = mxr__list_entry(l, mxr__smtp, link);
        if (s->ph != PH_CLOSED && (s->early_errno || now >= s->deadline))
            session_step(s, false, false, now);
    }
    uint64_t due = UINT64_MAX;
    mxr__list_each(l, next, &p->sessions)
    {
        mxr__smtp *s = mxr__list_entry(l, mxr__smtp, link);
        if (s->ph == PH_CLOSED)
            session_free(s);
        else if (s->deadline < due)
            due = s->deadline;
    }
    p->due = due;
}

static void pool_process(mxr__io_source *src, int fd, mxr__io_handle *h,
                         bool readable, bool writable)
{
    mxr__smtp_pool *p = pool_of(src);
    if (!h && mxr__list_empty(&p->sessions))
        return; /* the common round: no session, not even a clock read */
    uint64_t now = mxr__core_now(p->core);
    if (h) {
        mxr__smtp *s = mxr__container_of(h, mxr__smtp, io);
        if (s->fd == fd)
            session_step(s, readable, writable, now);
    }
    if (!mxr__list_empty(&p->sessions) && now >= p->due)
        sweep(p, now);
}

/* Engine teardown: close every session; no event fires. */
static void pool_shutdown(mxr__io_source *src)
{
    mxr__smtp_pool *p = pool_of(src);
    while (!mxr__list_empty(&p->sessions)) {
        mxr__smtp *s = mxr__list_entry(p->sessions.next, mxr__smtp, link);
        s->ended = true;
        session_free(s);
    }
}

static const mxr__io_ops pool_ops = {
    .name = "SMTP sessions",
    .timeout = pool_timeout,
    .process = pool_process,
    .shutdown = pool_shutdown,
};

mxr__smtp_pool *mxr__smtp_pool_new(mxr__core *core, const mxr__smtp_config *cfg)
{
    mxr__smtp_pool *p = mxr__calloc(&core->a, 1, sizeof *p);
    if (!p)
        return NULL;
    p->io.ops = &pool_ops;
    p->core = core;
    p->cfg = *cfg;
    p->cfg.helo = mxr__strdup(&core->a, cfg->helo ? cfg->helo : "localhost");
    p->cfg.tls_ca = cfg->tls_ca ? mxr__strdup(&core->a, cfg->tls_ca) : NULL;
    if (!p->cfg.helo || (cfg->tls_ca && !p->cfg.tls_ca)) {
        mxr__smtp_pool_free(p);
        return NULL;
    }
    mxr__list_init(&p->sessions);
    mxr__io_register(core, &p->io);
    return p;
}

void mxr__smtp_pool_free(mxr__smtp_pool *p)
{
    if (!p)
        return;
    mxr__tls_ctx_free(p->tls_ctx);
    mxr__free(&p->core->a, (char *)p->cfg.helo);
    mxr__free(&p->core->a, (char *)p->cfg.tls_ca);
    mxr__free(&p->core->a, p);
}
