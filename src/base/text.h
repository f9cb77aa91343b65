/* text.h -- small text helpers shared by the modules: the word tables of
 * the JSON and CLI contract (strings.c, rules.c) and bounded copies of
 * text from the outside (server replies, reasons), and of size-versioned
 * structs into caller memory. */
#ifndef MXR_TEXT_H
#define MXR_TEXT_H

#include <stddef.h>

/* Index of word in words[n], or -1 (also for NULL). */
int mxr__word_index(const char *const *words, size_t n, const char *word);

/* Copy at most cap - 1 bytes of src (NULL: "") into dst, NUL-terminated:
 * the start of a long text is enough. */
void mxr__copy_text(char *dst, size_t cap, const char *src);

/* A size-versioned struct (src, src_size bytes: the library's) into the
 * caller's (dst, dst_size bytes: the caller's sizeof): copies
 * min(dst_size, src_size) bytes, zeroes the rest of dst_size, never
 * writes past dst + dst_size. Returns the bytes copied. */
size_t mxr__copy_sized(void *dst, size_t dst_size, const void *src,
                       size_t src_size);

#endif
