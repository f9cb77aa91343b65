/* serve_notify.c -- telling systemd how `mxroute serve` is doing
 * (sd_notify(3): READY=1, RELOADING=1, STOPPING=1, STATUS=). libsystemd
 * sends nothing unless systemd set NOTIFY_SOCKET; built without
 * libsystemd, this does nothing at all. */
#include "serve.h"

#include <stdarg.h>
#include <stdio.h>

#ifdef MXR_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

void serve_notify(const char *fmt, ...)
{
#ifdef MXR_HAVE_LIBSYSTEMD
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    (void)sd_notify(0, msg);
#else
    (void)fmt;
#endif
}
