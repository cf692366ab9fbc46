/* The daemon's HTTP endpoint (libmicrohttpd): GET /metrics (Prometheus text) and GET /
 * (the status page; ?names=1 adds file names and errors). Nothing else is served, and
 * nothing secret is ever on either. */
#ifndef QSFS_DAEMON_HTTP_H
#define QSFS_DAEMON_HTTP_H

#include "daemon/daemon.h"

struct zsd_http;

/* Listens on bind (NULL: every interface, IPv6 and IPv4) port port. QS_EIO with the
 * reason (port in use, bad address). */
int zsd_http_start(struct zsd_http **out, struct zsd *d, const char *bind,
                   unsigned port) QS_MUST_CHECK;
void zsd_http_stop(struct zsd_http *h);

#endif
