/* text.h -- small text helpers shared by the modules: the word tables of
 * the JSON and CLI contract (strings.c, rules.c) and bounded copies of
 * text from the outside (server replies, reasons). */
#ifndef MXR_TEXT_H
#define MXR_TEXT_H

#include <stddef.h>

/* Index of word in words[n], or -1 (also for NULL). */
int mxr__word_index(const char *const *words, size_t n, const char *word);

/* Copy at most cap - 1 bytes of src (NULL: "") into dst, NUL-terminated:
 * the start of a long text is enough. */
void mxr__copy_text(char *dst, size_t cap, const char *src);

#endif
