/*
 * run.c - `fairsem run`: hold one slot while a command runs, like flock(1).
 *
 * The slot belongs to this wrapper's process record, and the record lives
 * as long as its lease (an OFD lock on the segment file, see
 * docs/design.md section 4).  flock(1) keeps its lock while the command
 * lives because the command inherits the locked open file description; we
 * do the same with the lease: fairsem_lease_dup() gives a descriptor on the
 * lease's open file description, and only the command's process (between
 * fork and exec) clears its close-on-exec flag.  So the slot is held while
 * the wrapper or the command lives: a SIGKILLed wrapper leaves it held
 * until the command ends, and when both are gone, however they died, the
 * kernel drops the lease and any process reaps the slot.  Children the
 * command starts inherit the descriptor too (as with flock) unless they
 * close it; a wrapper that ends normally detaches, which ends the lease
 * whoever still holds the descriptor.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
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

/* Run cmd (the lease descriptor passed on to it) to its end; its status as
 * the shell shows it, or a negative errno. */
static int run_child(char **cmd, int lease, const char *name, const char *tenant, unsigned slot)
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
        fcntl(lease, F_SETFD, 0); /* the command keeps the lease alive */
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

static const char run_help[] = "usage: fairsem run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] [-v]\n"
                               "                   (-c 'COMMAND' | [--] CMD [ARGS...])\n"
                               "Hold one slot of NAME for tenant T while CMD (or COMMAND, run by /bin/sh -c)\n"
                               "runs, as flock(1) holds a lock: if this wrapper is killed, the slot stays held\n"
                               "until the command ends too.  Exits with the command's status (128+N if signal\n"
                               "N killed it).  -n: fail rather than wait when no slot is free for T now;\n"
                               "-w SECONDS: give up after SECONDS; both then exit with CODE (-E, default 1),\n"
                               "silently unless -v.  SIGINT, SIGTERM, SIGHUP and SIGQUIT are forwarded to the\n"
                               "command, which sees FAIRSEM_NAME, FAIRSEM_TENANT and FAIRSEM_SLOT (the index).\n";

/* What is wrong with a tenant id (as its limit says), or NULL. */
static const char *tenant_problem(const char *id)
{
    static char text[160];
    size_t len = strlen(id);
    if (len == 0)
        return "--tenant must not be empty";
    if (len > FAIRSEM_TENANT_ID_MAX) {
        snprintf(text, sizeof text, "--tenant '%.20s...' is %zu bytes; the limit is %d", id, len,
                 FAIRSEM_TENANT_ID_MAX);
        return text;
    }
    return NULL;
}

int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"tenant", required_argument, NULL, 't'},
        {"weight", required_argument, NULL, 'W'},
        {"nonblock", no_argument, NULL, 'n'},
        {"nb", no_argument, NULL, 'n'},
        {"wait", required_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 'w'},
        {"conflict-exit-code", required_argument, NULL, 'E'},
        {"command", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *tenant = NULL, *command = NULL;
    unsigned weight = 0, conflict = 1;
    bool nonblock = false, verbose = false;
    double wait_s = -1;
    /* NAME comes first, then options, then CMD (getopt stops at the first
     * non-option, so CMD's own options stay CMD's). */
    const char *name = argc > 1 && argv[1][0] != '-' ? argv[1] : NULL;
    if (name) {
        argc--;
        argv++;
    }
    int c;
    optind = 1;
    opterr = 0; /* our own messages, with run's usage */
    while ((c = getopt_long(argc, argv, "+:t:W:nw:E:c:vh", longopts, NULL)) != -1) {
        switch (c) {
        case 't': tenant = optarg; break;
        case 'W':
            if (!cli_parse_unsigned(optarg, &weight) || weight == 0)
                return cli_usage("run", run_help, "--weight '%s' is not a whole number from 1 to 4294967295",
                                 optarg);
            break;
        case 'n': nonblock = true; break;
        case 'w':
            if (!cli_parse_seconds(optarg, &wait_s))
                return cli_usage("run", run_help, "-w '%s' is not a number of seconds from 0 to 1e9", optarg);
            break;
        case 'E':
            if (!cli_parse_unsigned(optarg, &conflict) || conflict > 255)
                return cli_usage("run", run_help, "-E '%s' is not an exit status from 0 to 255", optarg);
            break;
        case 'c': command = optarg; break;
        case 'v': verbose = true; break;
        case 'h': fputs(run_help, stdout); return EXIT_OK;
        default: return cli_usage("run", run_help, "%s", cli_option_problem(c, argv));
        }
    }
    const char *problem = !name                        ? "NAME is required (before the options)"
                          : !tenant                    ? "--tenant T is required"
                          : nonblock && wait_s >= 0    ? "-n and -w exclude each other"
                          : command && optind < argc   ? "-c 'COMMAND' and CMD exclude each other"
                          : !command && optind >= argc ? "CMD (or -c 'COMMAND') is required"
                                                       : NULL;
    if (!problem)
        problem = cli_name_problem(name);
    if (!problem)
        problem = tenant_problem(tenant);
    if (problem)
        return cli_usage("run", run_help, "%s", problem);
    char *shell[] = {(char *)"/bin/sh", (char *)"-c", (char *)command, NULL};
    char **cmd = command ? shell : argv + optind;
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
        if (verbose)
            fprintf(stderr, "fairsem run: %s: no slot for tenant %s %s\n", name, tenant,
                    rc == -EAGAIN ? "free now" : "within the wait");
        fairsem_close(sem);
        return (int)conflict;
    }
    int lease = rc < 0 ? rc : fairsem_lease_dup(sem);
    if (lease < 0) {
        fairsem_close(sem);
        return cli_fail(name, lease);
    }
    int status = run_child(cmd, lease, name, tenant, fairsem_slot_index(slot));
    close(lease);
    fairsem_release(t, slot);
    fairsem_close(sem);
    if (status < 0)
        return cli_fail(name, status);
    return status;
}
