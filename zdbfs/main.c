/* zdbfs: mounts a filesystem kept in zdb namespaces (replaces 0-db-fs).
 *
 *   zdbfs MOUNTPOINT [-o opts] [-f] [-d]
 *
 * Options of 0-db-fs (host=, port=, unix=, mh/mp/mu/mn/ms, dh/dp/du/dn/ds, th/tp/tu/tn/ts,
 * size=, autons, background, logfile=, cachesize=, nocache) and ours (timeout=, conns=,
 * commit=, blocksize=, flushsize=, nowriteback); everything else goes to FUSE.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fs/fs.h"
#include "fs/kv.h"
#include "loop.h"
#include "ops.h"
#include "util/log.h"
#include "util/version.h"

struct nsopt {
    char *host, *unix_, *name, *pass;
    int port;
};

struct opts {
    char *host, *unix_;
    int port;
    struct nsopt ns[3];
    char *size, *logfile, *blocksize, *flushsize;
    int autons, background, nocache, cachesize, timeout_ms, conns, commit_ms, nowriteback, spin_us,
        nobatch;
    int version, help;
};

#define O(t, f)                                                                                    \
    {                                                                                              \
        t, offsetof(struct opts, f), 1                                                             \
    }
static const struct fuse_opt optspec[] = {
    O("host=%s", host),
    O("port=%d", port),
    O("unix=%s", unix_),
    O("mh=%s", ns[0].host),
    O("mp=%d", ns[0].port),
    O("mu=%s", ns[0].unix_),
    O("mn=%s", ns[0].name),
    O("ms=%s", ns[0].pass),
    O("dh=%s", ns[1].host),
    O("dp=%d", ns[1].port),
    O("du=%s", ns[1].unix_),
    O("dn=%s", ns[1].name),
    O("ds=%s", ns[1].pass),
    O("th=%s", ns[2].host),
    O("tp=%d", ns[2].port),
    O("tu=%s", ns[2].unix_),
    O("tn=%s", ns[2].name),
    O("ts=%s", ns[2].pass),
    O("size=%s", size),
    O("logfile=%s", logfile),
    O("blocksize=%s", blocksize),
    O("flushsize=%s", flushsize),
    O("cachesize=%d", cachesize),
    O("timeout=%d", timeout_ms),
    O("conns=%d", conns),
    O("commit=%d", commit_ms),
    O("spin=%d", spin_us),
    {"autons", offsetof(struct opts, autons), 1},
    {"background", offsetof(struct opts, background), 1},
    {"nocache", offsetof(struct opts, nocache), 1},
    {"nowriteback", offsetof(struct opts, nowriteback), 1},
    {"nobatch", offsetof(struct opts, nobatch), 1},
    {"-V", offsetof(struct opts, version), 1},
    {"--version", offsetof(struct opts, version), 1},
    {"-h", offsetof(struct opts, help), 1},
    {"--help", offsetof(struct opts, help), 1},
    FUSE_OPT_END,
};

static FILE *logf_;

static void log_handler(enum qs_log_level lvl, const char *msg, void *ud)
{
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (lvl == QS_LOG_DEBUG)
        return;
    FILE *f = logf_ ? logf_ : stderr;
    char ts[32] = "";
    time_t t = time(NULL);
    struct tm tm;
    if (localtime_r(&t, &tm))
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S ", &tm);
    fprintf(f, "%szdbfs: %s: %s\n", logf_ ? ts : "", names[lvl], msg);
    fflush(f);
}

static void usage(const char *prog)
{
    printf("usage: %s MOUNTPOINT [-f] [-d] [-o option[,option...]]\n\n"
           "zdb endpoint (all namespaces):  host=H (localhost) port=P (9900) unix=PATH\n"
           "per namespace (meta m, data d, temp t):  mh= mp= mu= mn= ms=, dh= ..., th= ...\n"
           "  names default to zdbfs-meta, zdbfs-data, zdbfs-temp; ts defaults to hello\n"
           "size=BYTES       size statfs reports (default 10G; K M G T suffixes)\n"
           "autons           create missing namespaces (sequential mode)\n"
           "background       detach after mounting\n"
           "logfile=PATH     log there instead of stderr\n"
           "cachesize=N      clean blocks cached per open file (default 32)\n"
           "nocache          no kernel page cache across opens, no writeback cache\n"
           "nowriteback      no kernel writeback cache\n"
           "timeout=MS       bound of one zdb exchange, retries included (default 10000)\n"
           "conns=N          connections per namespace (default 8)\n"
           "commit=MS        background commit period (default 1000)\n"
           "spin=US          poll the FUSE device this long before sleeping (default 0)\n"
           "nobatch          each read fetches its own blocks (no batch of waiting reads)\n"
           "blocksize=BYTES  block size of a new filesystem (default 32K)\n"
           "flushsize=BYTES  dirty bytes of one file that start its write-back (default 4M)\n"
           "plus FUSE options: allow_other, ro, max_threads=N, ...\n",
           prog);
}

/* fuse_opt_parse strdup()s every string option */
static void opts_free(struct opts *o)
{
    free(o->host);
    free(o->unix_);
    for (int i = 0; i < 3; i++) {
        free(o->ns[i].host);
        free(o->ns[i].unix_);
        free(o->ns[i].name);
        if (o->ns[i].pass) {
            explicit_bzero(o->ns[i].pass, strlen(o->ns[i].pass));
            free(o->ns[i].pass);
        }
    }
    free(o->size);
    free(o->logfile);
    free(o->blocksize);
    free(o->flushsize);
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    uint64_t m = 1;
    switch (*end) {
    case 'k':
    case 'K':
        m = 1ull << 10;
        end++;
        break;
    case 'm':
    case 'M':
        m = 1ull << 20;
        end++;
        break;
    case 'g':
    case 'G':
        m = 1ull << 30;
        end++;
        break;
    case 't':
    case 'T':
        m = 1ull << 40;
        end++;
        break;
    default:
        break;
    }
    if (*end || v > UINT64_MAX / m)
        return -1;
    *out = v * m;
    return 0;
}

/* "host:port", "[v6]:port" or "unix://path" for namespace i. */
static int endpoint(const struct opts *o, int i, char *buf, size_t n)
{
    const struct nsopt *s = &o->ns[i];
    const char *sock = s->unix_ ? s->unix_ : (s->host ? NULL : o->unix_);
    if (sock)
        return snprintf(buf, n, "unix://%s", sock) >= (int)n ? -1 : 0;
    const char *host = s->host ? s->host : (o->host ? o->host : "localhost");
    int port = s->port ? s->port : (o->port ? o->port : 9900);
    if (port <= 0 || port > 65535)
        return -1;
    if (strchr(host, ':') && host[0] != '[')
        return snprintf(buf, n, "[%s]:%d", host, port) >= (int)n ? -1 : 0;
    return snprintf(buf, n, "%s:%d", host, port) >= (int)n ? -1 : 0;
}

/* An early exit: frees what option parsing allocated. */
static int bail(struct opts *o, struct fuse_args *args, char *mountpoint, int code)
{
    opts_free(o);
    fuse_opt_free_args(args);
    free(mountpoint);
    if (logf_)
        fclose(logf_);
    return code;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    struct opts o;
    memset(&o, 0, sizeof o);
    o.commit_ms = -1;
    o.spin_us = -1;
    if (fuse_opt_parse(&args, &o, optspec, NULL) != 0)
        return bail(&o, &args, NULL, 2);
    if (o.help) {
        usage(argv[0]);
        return bail(&o, &args, NULL, 0);
    }
    if (o.version) {
        printf("zdbfs (qsfs) %s (commit %s), mounts 0-db-fs filesystems (layout 1)\n", qs_version(),
               qs_git_commit());
        return bail(&o, &args, NULL, 0);
    }
    struct fuse_cmdline_opts fo;
    if (fuse_parse_cmdline(&args, &fo) != 0)
        return bail(&o, &args, NULL, 2);
    if (!fo.mountpoint) {
        fprintf(stderr, "zdbfs: no mount point given (zdbfs MOUNTPOINT [-o options]; --help)\n");
        return bail(&o, &args, NULL, 2);
    }
    if (o.logfile) {
        logf_ = fopen(o.logfile, "a");
        if (!logf_) {
            fprintf(stderr, "zdbfs: logfile %s: %s\n", o.logfile, strerror(errno));
            return bail(&o, &args, fo.mountpoint, 1);
        }
    }
    qs_log_set_handler(log_handler, NULL);
    /* background: the parent waits until the mount is up (or failed) to exit with its
     * status, so that errors still reach the terminal */
    int ready_fd = -1;
    if (o.background && !fo.foreground) {
        int p[2];
        if (pipe(p) != 0) {
            fprintf(stderr, "zdbfs: pipe: %s\n", strerror(errno));
            return bail(&o, &args, fo.mountpoint, 1);
        }
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "zdbfs: fork: %s\n", strerror(errno));
            return bail(&o, &args, fo.mountpoint, 1);
        }
        if (pid > 0) {
            close(p[1]);
            char st = 1;
            if (read(p[0], &st, 1) != 1)
                st = 1;
            _exit(st); /* the child owns everything */
        }
        close(p[0]);
        ready_fd = p[1];
        setsid();
    }

    uint64_t size = 0, bsize = 0, fsize = 0;
    if (o.size && parse_size(o.size, &size) != 0) {
        fprintf(stderr, "zdbfs: size=%s: not a size (bytes, or with K M G T)\n", o.size);
        return bail(&o, &args, fo.mountpoint, 2);
    }
    if (o.blocksize && (parse_size(o.blocksize, &bsize) != 0 || bsize > UINT32_MAX)) {
        fprintf(stderr, "zdbfs: blocksize=%s: not a size\n", o.blocksize);
        return bail(&o, &args, fo.mountpoint, 2);
    }
    if (o.flushsize &&
        (parse_size(o.flushsize, &fsize) != 0 || fsize < 4096 || fsize > (1u << 30))) {
        fprintf(stderr, "zdbfs: flushsize=%s: not a size from 4K to 1G\n", o.flushsize);
        return bail(&o, &args, fo.mountpoint, 2);
    }
    static const char *const defname[3] = {"zdbfs-meta", "zdbfs-data", "zdbfs-temp"};
    char addr[3][512];
    struct qs_fs_zdb_opts zo = {.conns = o.conns > 0 ? (unsigned)o.conns : 8,
                                .timeout_ms = o.timeout_ms > 0 ? (unsigned)o.timeout_ms : 10000,
                                .autons = o.autons != 0};
    for (int i = 0; i < 3; i++) {
        if (endpoint(&o, i, addr[i], sizeof addr[i]) != 0) {
            fprintf(stderr, "zdbfs: bad zdb endpoint for the %s namespace\n", defname[i] + 6);
            return bail(&o, &args, fo.mountpoint, 2);
        }
        zo.ep[i].address = addr[i];
        zo.ep[i].ns = o.ns[i].name ? o.ns[i].name : defname[i];
        zo.ep[i].password = o.ns[i].pass ? o.ns[i].pass : (i == 2 ? "hello" : NULL);
    }
    struct qs_fs_kv *kv;
    if (qs_fs_kv_zdb_new(&kv, &zo) != 0) {
        fprintf(stderr, "zdbfs: %s\n", qs_err_msg());
        return bail(&o, &args, fo.mountpoint, 1);
    }
    struct qs_fs_opts fso = {.kv = kv,
                             .size = size,
                             .block_size = (uint32_t)bsize,
                             .flush_at = (size_t)fsize,
                             .cache_blocks = o.cachesize > 0 ? (unsigned)o.cachesize : 0,
                             .commit_ms = o.commit_ms >= 0 ? (unsigned)o.commit_ms : 1000};
    struct qs_fs *fs;
    if (qs_fs_open(&fs, &fso) != 0) {
        fprintf(stderr, "zdbfs: %s\n", qs_err_msg());
        kv->free(kv);
        return bail(&o, &args, fo.mountpoint, 1);
    }
    struct zdbfs_ctx ctx = {.fs = fs,
                            .writeback = !o.nocache && !o.nowriteback,
                            .keep_cache = !o.nocache,
                            .timeout_s = 1.0};
    /* the kernel checks permissions; the name shows in mount and df */
    fuse_opt_add_arg(&args, "-odefault_permissions,fsname=zdbfs,subtype=zdbfs");
    int rc = 1;
    struct fuse_session *se = fuse_session_new(&args, &zdbfs_ops, sizeof zdbfs_ops, &ctx);
    if (!se)
        goto close_fs;
    if (fuse_set_signal_handlers(se) != 0)
        goto destroy;
    if (fuse_session_mount(se, fo.mountpoint) != 0)
        goto remove_handlers;
    qs_log(QS_LOG_INFO, "mounted on %s", fo.mountpoint);
    if (ready_fd >= 0) {
        char ok = 0;
        if (write(ready_fd, &ok, 1) != 1)
            qs_log(QS_LOG_WARN, "could not tell the parent process the mount is up");
        close(ready_fd);
        ready_fd = -1;
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(nul, 1);
            if (logf_)
                dup2(nul, 2);
            close(nul);
        }
        if (chdir("/") != 0)
            qs_log(QS_LOG_WARN, "chdir /: %s", strerror(errno));
    }
    if (fo.singlethread) {
        rc = fuse_session_loop(se);
    } else {
        rc = zdbfs_loop(se, fo.max_threads && fo.max_threads != 10 ? fo.max_threads : 6,
                        o.spin_us > 0 ? (unsigned)o.spin_us : 0, !o.nobatch);
        if (rc == -ENODEV)
            rc = 0;
    }
    rc = rc != 0;
    fuse_session_unmount(se);
remove_handlers:
    fuse_remove_signal_handlers(se);
destroy:
    fuse_session_destroy(se);
close_fs:
    if (qs_fs_close(fs) != 0) {
        qs_log(QS_LOG_ERROR, "unmount: writing the last changes failed: %s", qs_err_msg());
        rc = 1;
    } else {
        qs_log(QS_LOG_INFO, "unmounted, everything written");
    }
    kv->free(kv);
    free(fo.mountpoint);
    fuse_opt_free_args(&args);
    opts_free(&o);
    if (logf_)
        fclose(logf_);
    if (ready_fd >= 0) {
        char st = 1;
        if (write(ready_fd, &st, 1) != 1)
            rc = 1;
    }
    return rc;
}
