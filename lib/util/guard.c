#include "guard.h"

#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

/* volatile, and fenced below: the stores around the copy must not be moved or dropped. */
static _Thread_local sigjmp_buf *volatile guard_point;
static volatile sig_atomic_t guard_on;
static void (*volatile guard_fallback)(int sig);

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
    (void)si;
    (void)ctx;
    if (guard_point)
        siglongjmp(*guard_point, 1);
    /* Not inside a guarded copy: behave as if there were no handler. */
    if (guard_fallback)
        guard_fallback(sig);
    signal(sig, SIG_DFL);
    raise(sig);
}

int qs_guard_install(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    /* NODEFER: leaving the handler with siglongjmp must not leave SIGBUS blocked, and the
     * recovery point is taken without saving the mask (no system call per copy). */
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGBUS, &sa, NULL) != 0)
        return qs_err_sys(QS_EIO, errno, "install SIGBUS handler");
    guard_on = 1;
    return 0;
}

void qs_guard_set_fallback(void (*fn)(int sig))
{
    guard_fallback = fn;
}

bool qs_guard_active(void)
{
    return guard_on != 0;
}

int qs_guard_copy(void *dst, const void *src, size_t n)
{
    sigjmp_buf point;
    if (sigsetjmp(point, 0) != 0) {
        guard_point = NULL;
        return qs_err_set(QS_EIO, "I/O error reading a mapped file");
    }
    guard_point = &point;
    __asm__ volatile("" ::: "memory");
    memcpy(dst, src, n);
    __asm__ volatile("" ::: "memory");
    guard_point = NULL;
    return 0;
}
