/* words.h -- word tables: the stable words of the JSON and CLI contract
 * (strings.c, rules.c) and their parsing. */
#ifndef MXR_WORDS_H
#define MXR_WORDS_H

#include <stddef.h>

/* Index of word in words[n], or -1 (also for NULL). */
int mxr__word_index(const char *const *words, size_t n, const char *word);

#endif
