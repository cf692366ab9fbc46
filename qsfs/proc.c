/* Process handling for the qsfs command (proc.h). */
#include "proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "util/sys.h"

extern char **environ;

static bool executable(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0;
}

int qp_find(const char *name, char *out, size_t cap)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash) {
            *slash = '\0';
            snprintf(out, cap, "%s/%s", self, name);
            if (executable(out))
                return 0;
            snprintf(out, cap, "%s/../%s/%s", self, name, name);
            if (executable(out)) {
                char real[PATH_MAX];
                if (realpath(out, real))
                    snprintf(out, cap, "%s", real);
                return 0;
            }
        }
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";
    for (const char *p = path; *p;) {
        const char *e = strchr(p, ':');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len) {
            snprintf(out, cap, "%.*s/%s", (int)len, p, name);
            if (executable(out))
                return 0;
        }
        p += len + (e ? 1 : 0);
        if (!e)
            break;
    }
    return qs_err_set(QS_ENOTFOUND, "cannot find the program %s (beside qsfs or on PATH)", name);
}

void qp_set_priority(int prio)
{
    if (prio == ZSTOR_QSFS_PRIO_IDLE) {
        struct sched_param sp = {.sched_priority = 0};
        (void)sched_setscheduler(0, SCHED_IDLE, &sp);
    } else if (prio == ZSTOR_QSFS_PRIO_LOW) {
        (void)setpriority(PRIO_PROCESS, 0, 10);
    }
}

pid_t qp_spawn(char *const *argv, char *const *env, const char *log, int prio)
{
    int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (lfd < 0)
        return qs_err_sys(QS_EIO, errno, "cannot open the log %s", log);
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(lfd);
        return qs_err_sys(QS_EIO, e, "fork");
    }
    if (pid == 0) {
        setsid();
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0)
            dup2(nul, STDIN_FILENO);
        dup2(lfd, STDOUT_FILENO);
        dup2(lfd, STDERR_FILENO);
        for (char *const *e = env; e && *e; e++)
            putenv(*e);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        qp_set_priority(prio);
        execve(argv[0], argv, environ);
        dprintf(STDERR_FILENO, "qsfs: cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(lfd);
    return pid;
}

bool qp_running(pid_t pid, const char *name)
{
    if (pid <= 0)
        return false;
    /* our own child: alive until waitpid reaps it (it may not have exec'ed yet) */
    int ws;
    pid_t w = waitpid(pid, &ws, WNOHANG);
    if (w == pid)
        return false;
    if (w == 0)
        return true;
    char p[64], buf[512];
    snprintf(p, sizeof(p), "/proc/%d/stat", (int)pid);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    char *rp = strrchr(buf, ')');
    if (!rp || rp[1] != ' ' || rp[2] == 'Z' || rp[2] == 'X')
        return false;
    /* the program: /proc/PID/exe's name (comm is cut at 15 characters) */
    char exe[PATH_MAX];
    snprintf(p, sizeof(p), "/proc/%d/exe", (int)pid);
    ssize_t m = readlink(p, exe, sizeof(exe) - 1);
    if (m <= 0)
        return true; /* cannot tell (another user's process): trust the pid */
    exe[m] = '\0';
    const char *base = strrchr(exe, '/');
    base = base ? base + 1 : exe;
    return strncmp(base, name, strlen(name)) == 0;
}

pid_t qp_pid_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long v = 0;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0 || v > INT_MAX)
        v = 0;
    fclose(f);
    return (pid_t)v;
}

int qp_pid_write(const char *path, pid_t pid)
{
    char buf[32];
    int n = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
    return qs_replace_file(path, buf, (size_t)n, 0644, 0);
}

bool qp_stop(pid_t pid, const char *name, int timeout_ms, bool *kill9)
{
    *kill9 = false;
    if (!qp_running(pid, name))
        return true;
    kill(pid, SIGTERM);
    int64_t end = qs_now_ms() + timeout_ms;
    while (qs_now_ms() < end) {
        if (!qp_running(pid, name))
            return true;
        usleep(20000);
    }
    *kill9 = true;
    kill(pid, SIGKILL);
    for (int i = 0; i < 250; i++) {
        if (!qp_running(pid, name))
            return true;
        usleep(20000);
    }
    return false;
}

bool qp_zdb_ping(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
    bool ok = false;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
        static const char ping[] = "*1\r\n$4\r\nPING\r\n";
        if (send(fd, ping, sizeof(ping) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(ping) - 1)) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            char buf[16];
            if (poll(&p, 1, 2000) == 1) {
                ssize_t n = recv(fd, buf, sizeof(buf), 0);
                ok = n >= 5 && memcmp(buf, "+PONG", 5) == 0;
            }
        }
    }
    close(fd);
    return ok;
}

bool qp_mounted(const char *dir)
{
    char want[PATH_MAX];
    if (!realpath(dir, want))
        snprintf(want, sizeof(want), "%s", dir);
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return false;
    char line[8192];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        /* id parent major:minor root mountpoint ... (octal escapes for spaces) */
        char *save = NULL, *tok = strtok_r(line, " ", &save);
        for (int i = 0; tok && i < 4; i++)
            tok = strtok_r(NULL, " ", &save);
        if (!tok)
            continue;
        char mp[PATH_MAX];
        size_t k = 0;
        for (const char *s = tok; *s && k + 1 < sizeof(mp); s++) {
            if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
                mp[k++] = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                s += 3;
            } else {
                mp[k++] = *s;
            }
        }
        mp[k] = '\0';
        found = strcmp(mp, want) == 0;
    }
    fclose(f);
    return found;
}

void qp_log_tail(const char *log, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > (off_t)cap - 1 ? end - (off_t)cap + 1 : 0;
    ssize_t n = pread(fd, out, cap - 1, start);
    close(fd);
    if (n <= 0)
        return;
    out[n] = '\0';
    if (start > 0) {
        char *nl = strchr(out, '\n');
        if (nl)
            memmove(out, nl + 1, strlen(nl + 1) + 1);
    }
}

static unsigned long long g_bytes;
static size_t g_files;

static int add_file(const char *path, const struct stat *st, int type, struct FTW *f)
{
    (void)path;
    (void)f;
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        g_bytes += (unsigned long long)st->st_size;
        g_files++;
    }
    return 0;
}

unsigned long long qp_dir_bytes(const char *dir, size_t *files)
{
    g_bytes = 0;
    g_files = 0;
    if (nftw(dir, add_file, 16, FTW_PHYS) != 0)
        g_bytes = 0, g_files = 0;
    if (files)
        *files = g_files;
    return g_bytes;
}
