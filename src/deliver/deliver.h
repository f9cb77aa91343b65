/* deliver.h -- what delivery attempts and sends share: the failover rules
 * (default and per domain), the host-health memory, the policies' outcome
 * and retry hooks, the SMTP pool, and the sends in progress. One per
 * engine; attempt.c and send.c read it, the engine sets it up. */
#ifndef MXR_DELIVER_DELIVER_H
#define MXR_DELIVER_DELIVER_H

#include "base/list.h"
#include "base/rng.h"
#include "core/core.h"
#include "deliver/health.h"
#include "deliver/rules.h"
#include "policy/policy.h"
#include "smtp/session.h"

typedef struct mxr__deliver {
    mxr__core *core;
    mxr__policies *const *policies; /* read at each decision: reloads */
    mxr__rng *rng;                  /* retry jitter */
    mxr__smtp_pool *smtp;
    mxr_tls_mode tls; /* STARTTLS mode of sends (MXR_OPT_SMTP_TLS) */
    mxr_rules default_rules;
    mxr__domain_rules *rules; /* per domain, owned copies */
    size_t nrules;
    mxr__health *health;
    mxr__link sends; /* in progress, for teardown */
} mxr__deliver;

typedef struct mxr__deliver_config {
    const mxr_rules *default_rules;
    const mxr__domain_rules *rules;
    size_t nrules;
    size_t health_max_bytes;
    mxr_tls_mode tls;
} mxr__deliver_config;

/* Fills d (borrowed pointers must outlive it). MXR_OK or MXR_ENOMEM; on
 * failure mxr__deliver_free still cleans up. */
mxr_status mxr__deliver_init(mxr__deliver *d, mxr__core *core,
                             mxr__policies *const *policies, mxr__rng *rng,
                             mxr__smtp_pool *smtp,
                             const mxr__deliver_config *cfg);
void mxr__deliver_free(mxr__deliver *d);

/* attempt.c: mxr_attempt_new's body. */
mxr_status mxr__attempt_new(mxr__deliver *d, const mxr_plan *plan,
                            const mxr_message *msg, mxr_attempt **out);
const char *mxr__attempt_sender(const mxr_attempt *a);
mxr__deliver *mxr__attempt_deliver(const mxr_attempt *a);

/* send.c: mxr_send's body, and teardown: every send still in progress
 * finishes with MXR_EDESTROYED. */
mxr_status mxr__send_start(mxr__deliver *d, mxr_attempt *at, const char *msg,
                           size_t len, unsigned flags,
                           mxr_send_event_fn on_event, mxr_send_done_fn on_done,
                           void *arg);
void mxr__send_abort_all(mxr__deliver *d);

#endif
