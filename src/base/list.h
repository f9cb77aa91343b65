/* list.h -- the one intrusive doubly linked list: a circular list through a
 * sentinel (the list head), with the link embedded in each element, so
 * linking and unlinking never allocate and an element removes itself in
 * O(1) without knowing its list. */
#ifndef MXR_BASE_LIST_H
#define MXR_BASE_LIST_H

#include <stdbool.h>
#include <stddef.h>

typedef struct mxr__link {
    struct mxr__link *prev, *next;
} mxr__link;

/* An empty list (also a link that belongs to no list). */
static inline void mxr__list_init(mxr__link *head)
{
    head->prev = head->next = head;
}

static inline bool mxr__list_empty(const mxr__link *head)
{
    return head->next == head;
}

/* Insert l right after at (at the front when at is the head). */
static inline void mxr__list_insert_after(mxr__link *at, mxr__link *l)
{
    l->prev = at;
    l->next = at->next;
    at->next->prev = l;
    at->next = l;
}

static inline void mxr__list_push_front(mxr__link *head, mxr__link *l)
{
    mxr__list_insert_after(head, l);
}

static inline void mxr__list_push_back(mxr__link *head, mxr__link *l)
{
    mxr__list_insert_after(head->prev, l);
}

/* Unlink l; it is left as an empty list, so a second remove is harmless. */
static inline void mxr__list_remove(mxr__link *l)
{
    l->prev->next = l->next;
    l->next->prev = l->prev;
    mxr__list_init(l);
}

/* The element a link is embedded in. */
#define mxr__list_entry(link, type, member)                                    \
    ((type *)(void *)((char *)(link)-offsetof(type, member)))

/* Walk a list; the element may unlink itself (the next one is read
 * first). */
#define mxr__list_each(it, nx, head)                                           \
    for (mxr__link *it = (head)->next, *nx = it->next; it != (head);           \
         it = nx, nx = it->next)

#endif
