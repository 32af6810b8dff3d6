/*
 * run.c - `fairsem run`: hold one slot while a command runs, like flock(1).
 *
 * The slot belongs to this wrapper's process record, not to the command:
 * if the wrapper is killed, its lease drops and the slot comes back even if
 * the command lives on.  The command gets the segment's descriptor neither
 * through fork (the library reopens it in children) nor through exec
 * (O_CLOEXEC), so it never keeps a lease alive.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child_pid;

/* Forward a signal sent to the wrapper (kill, a supervisor).  One the
 * terminal generated (Ctrl-C) reached the whole foreground process group,
 * CMD included, so forwarding it would deliver it twice. */
static void forward_signal(int sig, siginfo_t *info, void *context)
{
    (void)context;
    if (child_pid > 0 && info->si_code != SI_KERNEL)
        kill(child_pid, sig);
}

static const int forwarded[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static int run_child(char **cmd, const char *name, const char *tenant, unsigned slot)
{
    /* Block the forwarded signals until child_pid is known, so one that
     * arrives around fork() is delivered (and forwarded) afterwards. */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaddset(&block, forwarded[i]);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa = {.sa_sigaction = forward_signal, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
        sigaction(forwarded[i], &sa, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        return -errno;
    }
    if (pid == 0) {
        char slot_text[16];
        snprintf(slot_text, sizeof slot_text, "%u", slot);
        setenv("FAIRSEM_NAME", name, 1);
        setenv("FAIRSEM_TENANT", tenant, 1);
        setenv("FAIRSEM_SLOT", slot_text, 1);
        for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
            signal(forwarded[i], SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(cmd[0], cmd);
        fprintf(stderr, "fairsem run: %s: %s\n", cmd[0], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    sigprocmask(SIG_SETMASK, &old, NULL);
    int status;
    pid_t reaped;
    while ((reaped = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
        ;
    int err = errno;
    sigprocmask(SIG_BLOCK, &block, NULL);
    child_pid = 0; /* its pid may be reused from now on */
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (reaped < 0)
        return -err;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int cmd_run(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] -- CMD [ARGS...]\n"
        "Hold one slot of NAME for tenant T while CMD runs.  Exits with CMD's status\n"
        "(128+N if a signal N killed it).  -n: fail at once if no slot is free for T;\n"
        "-w SECONDS: give up after SECONDS; both then exit with CODE (-E, default 1).\n"
        "SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to CMD.  CMD sees\n"
        "FAIRSEM_NAME, FAIRSEM_TENANT and FAIRSEM_SLOT (the slot index).\n";
    static const struct option longopts[] = {
        {"tenant", required_argument, NULL, 't'},  {"weight", required_argument, NULL, 'W'},
        {"nonblock", no_argument, NULL, 'n'},      {"wait", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 'w'}, {"conflict-exit-code", required_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    const char *tenant = NULL;
    unsigned weight = 0, conflict = 1;
    bool nonblock = false;
    double wait_s = -1;
    /* NAME comes first, then options, then "--" and CMD (getopt stops at
     * the first non-option so CMD's own options stay CMD's). */
    const char *name = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (name) {
        argc--;
        argv++;
    }
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "+t:W:nw:E:h", longopts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'W':
            if (!cli_parse_unsigned(optarg, &weight) || weight == 0)
                return fprintf(stderr, "fairsem run: bad weight '%s'\n", optarg), EXIT_USAGE;
            break;
        case 'n': nonblock = true; break;
        case 'w':
            if (!cli_parse_seconds(optarg, &wait_s))
                return fprintf(stderr, "fairsem run: bad wait '%s'\n", optarg), EXIT_USAGE;
            break;
        case 'E':
            if (!cli_parse_unsigned(optarg, &conflict) || conflict > 255)
                return fprintf(stderr, "fairsem run: bad exit code '%s'\n", optarg), EXIT_USAGE;
            break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: fputs(help, stderr); return EXIT_USAGE;
        }
    }
    const char *problem = !name                       ? "NAME is required"
                          : !tenant                   ? "--tenant is required"
                          : nonblock && wait_s >= 0   ? "-n and -w exclude each other"
                          : optind >= argc            ? "CMD is required"
                                                      : NULL;
    if (problem) {
        fprintf(stderr, "fairsem run: %s\n%s", problem, help);
        return EXIT_USAGE;
    }
    char **cmd = argv + optind;
    fairsem_t *sem;
    fairsem_tenant_t *t;
    int rc = cli_open(name, false, &sem);
    if (rc < 0)
        return cli_fail(name, rc);
    if ((rc = fairsem_tenant_register(sem, tenant, weight, &t)) < 0) {
        fairsem_close(sem);
        return cli_fail(name, rc);
    }
    fairsem_slot_t slot;
    if (nonblock)
        rc = fairsem_try_acquire(t, &slot);
    else if (wait_s >= 0)
        rc = fairsem_acquire_timeout(t, (uint64_t)(wait_s * 1e9), &slot);
    else
        rc = fairsem_acquire(t, &slot);
    if (rc == -EAGAIN || rc == -ETIMEDOUT) {
        fprintf(stderr, "fairsem: %s: no slot for tenant %s %s\n", name, tenant,
                rc == -EAGAIN ? "free now" : "within the wait");
        fairsem_close(sem);
        return (int)conflict;
    }
    if (rc < 0) {
        fairsem_close(sem);
        return cli_fail(name, rc);
    }
    int status = run_child(cmd, name, tenant, fairsem_slot_index(slot));
    fairsem_release(t, slot);
    fairsem_close(sem);
    if (status < 0)
        return cli_fail(name, status);
    return status;
}
