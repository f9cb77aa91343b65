/* smtp_data.h -- a message as it goes on the wire after DATA (RFC 5321
 * sections 2.3.8 and 4.5.2): every line end CRLF, a leading "." doubled,
 * the last line closed, then the ".\r\n" terminator. */
#ifndef MXR_SMTP_DATA_H
#define MXR_SMTP_DATA_H

#include <stdbool.h>
#include <stddef.h>

/* Bytes mxr__data_encode writes for msg (terminator included). */
size_t mxr__data_encoded_len(const char *msg, size_t len);
/* Write the wire form of msg to out (mxr__data_encoded_len bytes). Bare
 * LF and bare CR both become CRLF. */
void mxr__data_encode(const char *msg, size_t len, char *out);
/* Does msg carry any octet above 127 (needs 8BITMIME, RFC 6152)? */
bool mxr__data_is_8bit(const char *msg, size_t len);

#endif
