/*
 * command.h - running the fairsem command (or any program) from a test:
 * in a process group of its own (so that what it starts dies with it when
 * a test stops early), stdout and stderr read to their end, its exit
 * status as the shell shows it.  For the test process only (the helpers
 * assert).  Include after procs.h's prerequisites (_GNU_SOURCE first).
 */
#ifndef FAIRSEM_TEST_COMMAND_H
#define FAIRSEM_TEST_COMMAND_H

#include "procs.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Process groups of the commands started (each command leads its own). */
static pid_t g_groups[64];
static int g_ngroups;

/* SIGKILL the process group of every command started (a suite's fini). */
static inline void kill_command_groups(void)
{
    for (int i = 0; i < g_ngroups; i++)
        kill(-g_groups[i], SIGKILL);
    g_ngroups = 0;
}

struct cmd {
    pid_t pid;
    int out, err; /* read ends of its stdout and stderr */
};

/* Start argv[0] (tracked) in a process group of its own with stdout and
 * stderr on pipes, stdin from in_fd (-1: /dev/null), default signal
 * dispositions and, if uid != 0, as that user (and group). */
static inline bool cmd_start(struct cmd *c, char *const argv[], int in_fd, uid_t uid)
{
    int out[2], err[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return false;
    if (pipe2(err, O_CLOEXEC) < 0)
        return false;
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        setpgid(0, 0);
        int in = in_fd >= 0 ? in_fd : open("/dev/null", O_RDONLY);
        dup2(in, STDIN_FILENO);
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (int s = 1; s < NSIG; s++)
            if (s != SIGKILL && s != SIGSTOP)
                signal(s, SIG_DFL);
        if (uid != 0 && (setgroups(0, NULL) < 0 || setgid((gid_t)uid) < 0 || setuid(uid) < 0))
            _exit(125);
        execv(argv[0], argv);
        _exit(127);
    }
    setpgid(pid, pid); /* also here: no race with a kill of the group */
    track_pid(pid);
    if (g_ngroups < (int)(sizeof g_groups / sizeof g_groups[0]))
        g_groups[g_ngroups++] = pid;
    close(out[1]);
    close(err[1]);
    c->pid = pid;
    c->out = out[0];
    c->err = err[0];
    return true;
}

/* An exit status as the shell shows it: the code, 128+N for signal N. */
static inline int shell_status(int status)
{
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

struct result {
    int code;          /* shell_status(), or -1 if it did not end within 10 s */
    char out[1 << 19]; /* stdout, NUL-terminated (truncated if longer) */
    char err[8192];
    double secs; /* how long it ran */
};

/* Read c's stdout and stderr to EOF, then collect it (killing its group
 * after TEST_PATIENCE_MS). */
static inline void cmd_finish(struct cmd *c, struct result *r, uint64_t t0)
{
    size_t no = 0, ne = 0;
    int fds[2] = {c->out, c->err};
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while ((fds[0] >= 0 || fds[1] >= 0) && test_now_ns() < end) {
        struct pollfd p[2] = {{fds[0], POLLIN, 0}, {fds[1], POLLIN, 0}};
        int n = poll(p, 2, 100);
        if (n < 0 && errno != EINTR)
            break;
        for (int k = 0; k < 2; k++) {
            if (fds[k] < 0 || !(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t got = read(fds[k], buf, sizeof buf);
            if (got <= 0) {
                close(fds[k]);
                fds[k] = -1;
                continue;
            }
            char *dst = k ? r->err : r->out;
            size_t cap = k ? sizeof r->err : sizeof r->out, *len = k ? &ne : &no;
            size_t take = (size_t)got < cap - 1 - *len ? (size_t)got : cap - 1 - *len;
            memcpy(dst + *len, buf, take);
            *len += take;
        }
    }
    for (int k = 0; k < 2; k++)
        if (fds[k] >= 0)
            close(fds[k]);
    r->out[no] = '\0';
    r->err[ne] = '\0';
    int status = wait_exit(c->pid, TEST_PATIENCE_MS);
    if (status < 0) {
        kill(-c->pid, SIGKILL);
        kill_wait(c->pid);
        r->code = -1;
    } else {
        r->code = shell_status(status);
    }
    r->secs = (double)(test_now_ns() - t0) / 1e9;
}

/* Run argv to its end; its result in *r, its exit status returned. */
static inline int run_argv(struct result *r, char *const argv[], const char *input, uid_t uid)
{
    memset(r, 0, sizeof *r);
    int in[2] = {-1, -1};
    if (input)
        cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
    struct cmd c;
    uint64_t t0 = test_now_ns();
    cr_assert(cmd_start(&c, argv, in[0], uid), "cannot start %s", argv[0]);
    if (input) {
        close(in[0]);
        size_t len = strlen(input);
        cr_assert_eq(write(in[1], input, len), (ssize_t)len);
        close(in[1]);
    }
    cmd_finish(&c, r, t0);
    return r->code;
}

/* Build "fairsem ARGS..." (NULL-terminated) into argv. */
static inline void tool_argv(char *argv[], size_t cap, va_list ap)
{
    size_t n = 0;
    argv[n++] = (char *)FAIRSEM_TOOL;
    const char *a;
    while ((a = va_arg(ap, const char *)) && n + 1 < cap)
        argv[n++] = (char *)a;
    argv[n] = NULL;
}

/* Run the fairsem command with ARGS... (NULL-terminated); its exit status. */
static inline int tool(struct result *r, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, r);
    tool_argv(argv, 32, ap);
    va_end(ap);
    return run_argv(r, argv, NULL, 0);
}

/* As tool(), as user uid. */
static inline int tool_as(uid_t uid, struct result *r, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, r);
    tool_argv(argv, 32, ap);
    va_end(ap);
    return run_argv(r, argv, NULL, uid);
}

/* Start the fairsem command with ARGS... (NULL-terminated) in the
 * background; the caller reads c->out and ends it. */
static inline void tool_start(struct cmd *c, ...)
{
    char *argv[32];
    va_list ap;
    va_start(ap, c);
    tool_argv(argv, 32, ap);
    va_end(ap);
    cr_assert(cmd_start(c, argv, -1, 0));
}

/* Display columns of one line of UTF-8 (continuation bytes take none). */
static inline size_t columns(const char *line, size_t len)
{
    size_t n = 0;
    for (size_t k = 0; k < len; k++)
        n += ((unsigned char)line[k] & 0xc0) != 0x80;
    return n;
}

/* Run `fairsem dump NAME --watch=0.1` until it has drawn three screens,
 * stop it with SIGINT, check that the second (whole: between two screen
 * clears) fits 80x24 (80 columns, 23 lines and the cursor) and return it.
 * Valid until the next call. */
static inline const char *watch_frame(const char *name)
{
    struct cmd c;
    tool_start(&c, "dump", name, "--watch=0.1", NULL);
    static const char clear[] = "\033[H\033[2J";
    static char out[65536];
    size_t len = 0;
    int frames = 0;
    while (frames < 3 && len < sizeof out - 4096) {
        cr_assert(readable_within(c.out, TEST_PATIENCE_MS), "no screen drawn in time:\n%s", out);
        ssize_t got = read(c.out, out + len, 4096);
        cr_assert_gt(got, 0, "dump --watch ended");
        len += (size_t)got;
        out[len] = '\0';
        frames = 0;
        for (const char *q = out; (q = strstr(q, clear)); q += sizeof clear - 1)
            frames++;
    }
    cr_assert_eq(frames, 3, "not three screens:\n%s", out);
    cr_assert_eq(kill(c.pid, SIGINT), 0);
    cr_assert_neq(wait_exit(c.pid, TEST_PATIENCE_MS), -1);
    close(c.out);
    close(c.err);
    char *frame = strstr(out, clear) + sizeof clear - 1;
    frame = strstr(frame, clear) + sizeof clear - 1;
    *strstr(frame, clear) = '\0';
    cr_log_info("one --watch frame:\n%s", frame);
    int lines = 0;
    for (char *line = frame; *line;) {
        char *eol = strchr(line, '\n');
        cr_assert_not_null(eol, "last line unterminated");
        cr_assert_leq(columns(line, (size_t)(eol - line)), 80, "line %d is wider than 80: '%.*s'", lines,
                      (int)(eol - line), line);
        lines++;
        line = eol + 1;
    }
    cr_assert_leq(lines, 23, "%d lines do not fit 24 rows with the cursor below", lines);
    return frame;
}

#endif
