/* pipe_command.c: the build wrapper's command (see pipe_command.h). */
#define _GNU_SOURCE                     /* pipe2 */
#include "pipe_command.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- shared with the signal handler ---- */

static volatile sig_atomic_t nsignals, last_signal;
static volatile pid_t child_pid;
/* The command's own process group (its pid), or 0 when it shares ours. Kept once the
 * command has ended: what it started may still be running in that group. */
static volatile pid_t child_group;

/* With the command in a process group of its own, every signal is passed on to that
 * group. Sharing ours (in a terminal's foreground), a signal the terminal sent (Ctrl-C,
 * Ctrl-\\, a hangup) has reached the command already, with the whole foreground process
 * group; one sent to this process alone (kill, a CI runner's SIGTERM) is passed on, so
 * the command ends as it would have. */
static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    if (child_group > 0)
        kill(-child_group, sig);
    else if (child_pid > 0 && si->si_code != SI_KERNEL)
        kill(child_pid, sig);
    last_signal = sig;
    nsignals++;
}

void command_catch_signals(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;        /* no SA_RESTART: poll() returns at once */
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGQUIT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int command_signals(void)
{
    return nsignals;
}

/* Start cmd with its stdout and stderr on pipes; its stdin is ours. It gets a process
 * group of its own, so that a cancel can stop all it started, unless this program runs
 * in the foreground of a terminal that is its stdin: the command then stays in our
 * group, to read the terminal and get its Ctrl-C as it would without the wrapper. */
pid_t command_start(char **cmd, int *out_fd, int *err_fd)
{
    int po[2], pe[2];
    int own_group = !(isatty(0) && tcgetpgrp(0) == getpgrp());
    pid_t pid;

    if (pipe2(po, O_CLOEXEC))
        return -1;
    if (pipe2(pe, O_CLOEXEC)) {
        close(po[0]);
        close(po[1]);
        return -1;
    }
    pid = fork();
    if (pid == 0) {
        static const char pre[] = "mosqlite-pub: cannot run ";
        struct sigaction sa;
        sigset_t none;
        int e;

        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &sa, NULL);  /* ignored in here: not in the build */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        sigaction(SIGQUIT, &sa, NULL);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (own_group)
            setpgid(0, 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        execvp(cmd[0], cmd);
        e = errno;
        (void)!write(2, pre, sizeof pre - 1);
        (void)!write(2, cmd[0], strlen(cmd[0]));
        (void)!write(2, ": ", 2);
        (void)!write(2, strerror(e), strlen(strerror(e)));
        (void)!write(2, "\n", 1);
        _exit(e == ENOENT ? 127 : 126);
    }
    close(po[1]);
    close(pe[1]);
    if (pid < 0) {
        close(po[0]);
        close(pe[0]);
        return -1;
    }
    if (own_group) {
        setpgid(pid, pid);              /* as the child does: whichever runs first */
        child_group = pid;
    }
    *out_fd = po[0];
    *err_fd = pe[0];
    child_pid = pid;
    return pid;
}

int command_stop(int sig)
{
    pid_t g = child_group, p = child_pid;

    if (g > 0)
        return kill(-g, sig) == 0 || errno != ESRCH;
    if (p > 0)
        return kill(p, sig) == 0;
    return 0;
}

int command_ended(pid_t pid, int *status)
{
    if (waitpid(pid, status, WNOHANG) != pid)
        return 0;
    child_pid = 0;                      /* its pid may be someone else's now */
    return 1;
}

void command_wait(pid_t pid, int *status)
{
    while (waitpid(pid, status, 0) < 0 && errno == EINTR)
        ;
    child_pid = 0;
}
