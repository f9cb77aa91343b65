/* task.c -- deferred tasks: the queue that keeps every callback out of the
 * frame of the call that started its request. */
#include "core/core.h"

void mxr__core_defer(mxr__core *c, mxr__task *t, mxr__task_fn run)
{
    t->run = run;
    t->next = NULL;
    if (c->tasks_tail)
        c->tasks_tail->next = t;
    else
        c->tasks_head = t;
    c->tasks_tail = t;
}

void mxr__core_run_tasks(mxr__core *c)
{
    mxr__task *last = c->tasks_tail; /* what is queued now, no more */
    while (last && c->tasks_head) {
        mxr__task *t = c->tasks_head;
        if (!(c->tasks_head = t->next))
            c->tasks_tail = NULL;
        t->next = NULL;
        t->run(t); /* may free t */
        if (t == last)
            break;
    }
}

void mxr__core_drain(mxr__core *c)
{
    while (c->tasks_head)
        mxr__core_run_tasks(c);
}
