/*
 * fairsem - look at, check, clean up and use fairsem segments.
 *
 *   fairsem create NAME --slots N [--min-share K] [--work-conserving]
 *                  [--mode OCTAL] [--max-tenants N] [--max-waiters N] [--max-procs N]
 *   fairsem list
 *   fairsem dump NAME [--json] [--watch[=SECONDS]]
 *   fairsem check NAME
 *   fairsem reap NAME [--dry-run]
 *   fairsem rm NAME [--force]
 *   fairsem run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] -- CMD ARGS...
 *
 * Built on the public API only (include/fairsem.h).  Exit statuses and
 * output formats are documented in docs/fairsem.1.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_exit_status(int err)
{
    switch (err) {
    case 0:
        return EXIT_OK;
    case -ENOENT:
        return EXIT_MISSING;
    case -EACCES:
    case -EPERM:
        return EXIT_PERMISSION;
    case FAIRSEM_EMAGIC:
    case FAIRSEM_EVERSION:
    case FAIRSEM_ECORRUPT:
    case FAIRSEM_EINIT:
    case FAIRSEM_ERULE:
        return EXIT_INCOMPATIBLE;
    case FAIRSEM_EATTACHED:
        return EXIT_BUSY;
    case -EINVAL:
    case -ENAMETOOLONG:
        return EXIT_USAGE;
    default:
        return EXIT_FAIL;
    }
}

int cli_fail(const char *name, int err)
{
    fprintf(stderr, "fairsem: %s: %s\n", name, fairsem_strerror(err));
    return cli_exit_status(err);
}

int cli_open(const char *name, bool readonly, fairsem_t **out)
{
    fairsem_options_t local = {.flags = readonly ? FAIRSEM_READONLY : 0};
    return fairsem_open(name, &local, out);
}

bool cli_parse_unsigned(const char *s, unsigned *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 0);
    if (errno || end == s || *end || v > 0xffffffffu || s[0] == '-')
        return false;
    *out = (unsigned)v;
    return true;
}

bool cli_parse_seconds(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0) || v > 1e9)
        return false;
    *out = v;
    return true;
}

static const char *usage_text =
    "usage: fairsem COMMAND [ARGS]\n"
    "\n"
    "  create NAME --slots N [--min-share K] [--work-conserving] [--mode OCTAL]\n"
    "              [--max-tenants N] [--max-waiters N] [--max-procs N]\n"
    "  list                        every fairsem segment on this machine\n"
    "  dump NAME [--json] [--watch[=SECONDS]]\n"
    "  check NAME                  verify every invariant\n"
    "  reap NAME [--dry-run]       reclaim what dead processes held or queued\n"
    "  rm NAME [--force]           remove the segment\n"
    "  run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] -- CMD [ARGS...]\n"
    "\n"
    "'fairsem COMMAND --help' describes one command; see also fairsem(1).\n";

static int usage_error(const char *what)
{
    fprintf(stderr, "fairsem: %s\n%s", what, usage_text);
    return EXIT_USAGE;
}

/* Parse "NAME [options]" for commands whose only options are flags. */
struct flag_opt {
    const char *name;
    bool *value;
};

static int parse_flags(int argc, char **argv, const char *help, struct flag_opt *flags, const char **name)
{
    *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(help, stdout);
            return -1;
        }
        bool matched = false;
        for (struct flag_opt *f = flags; f && f->name; f++)
            if (!strcmp(argv[i], f->name))
                matched = *f->value = true;
        if (matched)
            continue;
        if (argv[i][0] == '-' || *name) {
            fprintf(stderr, "fairsem %s: unexpected argument '%s'\n%s", argv[0], argv[i], help);
            return EXIT_USAGE;
        }
        *name = argv[i];
    }
    if (!*name) {
        fprintf(stderr, "fairsem %s: missing NAME\n%s", argv[0], help);
        return EXIT_USAGE;
    }
    return 0;
}

static int cmd_create(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem create NAME --slots N [--min-share K] [--work-conserving] [--mode OCTAL]\n"
        "                      [--max-tenants N] [--max-waiters N] [--max-procs N]\n"
        "Create the segment NAME (\"/something\") with N slots.  Fails if it exists.\n";
    static const struct option longopts[] = {
        {"slots", required_argument, NULL, 's'},      {"min-share", required_argument, NULL, 'm'},
        {"work-conserving", no_argument, NULL, 'c'},  {"mode", required_argument, NULL, 'o'},
        {"max-tenants", required_argument, NULL, 't'}, {"max-waiters", required_argument, NULL, 'w'},
        {"max-procs", required_argument, NULL, 'p'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    fairsem_options_t o = {0};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        unsigned *target = NULL;
        switch (c) {
        case 's': target = &o.max_slots; break;
        case 'm': target = &o.min_share; break;
        case 't': target = &o.max_tenants; break;
        case 'w': target = &o.max_waiters; break;
        case 'p': target = &o.max_procs; break;
        case 'c': o.flags |= FAIRSEM_WORK_CONSERVING; continue;
        case 'o': {
            char *end;
            unsigned long mode = strtoul(optarg, &end, 8);
            if (*end || end == optarg || mode > 07777)
                return usage_error("--mode takes octal permission bits, e.g. 0660");
            o.mode = (unsigned)mode;
            continue;
        }
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: fputs(help, stderr); return EXIT_USAGE;
        }
        if (!cli_parse_unsigned(optarg, target)) {
            fprintf(stderr, "fairsem create: '%s' is not a number\n", optarg);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fprintf(stderr, "fairsem create: expected one NAME\n%s", help);
        return EXIT_USAGE;
    }
    if (o.max_slots == 0) {
        fprintf(stderr, "fairsem create: --slots N (N >= 1) is required\n%s", help);
        return EXIT_USAGE;
    }
    const char *name = argv[optind];
    fairsem_t *sem;
    int rc = fairsem_create(name, &o, &sem);
    if (rc < 0)
        return cli_fail(name, rc);
    fairsem_close(sem);
    printf("created %s: %u slots\n", name, o.max_slots);
    return EXIT_OK;
}

static int cmd_list(int argc, char **argv)
{
    static const char *help = "usage: fairsem list\nList every fairsem segment in /dev/shm, one line each.\n";
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        }
        fputs(help, stderr);
        return EXIT_USAGE;
    }
    DIR *dir = opendir("/dev/shm");
    if (!dir)
        return cli_fail("/dev/shm", -errno);
    printf("%-32s %6s %6s %6s %8s %6s %s\n", "NAME", "SLOTS", "INUSE", "FREE", "WAITERS", "PROCS", "STATUS");
    struct dirent *d;
    while ((d = readdir(dir))) {
        if (d->d_name[0] == '.' || (d->d_type != DT_REG && d->d_type != DT_UNKNOWN))
            continue;
        char name[FAIRSEM_NAME_MAX + 2];
        if (snprintf(name, sizeof name, "/%s", d->d_name) >= (int)sizeof name)
            continue;
        fairsem_t *sem;
        int rc = cli_open(name, true, &sem);
        if (rc == FAIRSEM_EMAGIC || rc == FAIRSEM_ECORRUPT)
            continue; /* not ours */
        if (rc < 0) {
            printf("%-32s %6s %6s %6s %8s %6s %s\n", name, "-", "-", "-", "-", "-", fairsem_strerror(rc));
            continue;
        }
        fairsem_stats_t st;
        fairsem_stats(sem, &st, NULL, 0, NULL);
        printf("%-32s %6u %6u %6u %8u %6u ok\n", name, st.max_slots, st.slots_in_use, st.slots_available,
               st.waiters, st.attached_procs);
        fairsem_close(sem);
    }
    closedir(dir);
    return EXIT_OK;
}

static void print_violation(void *arg, unsigned kind, const char *message)
{
    (void)arg;
    static const char *names[] = {"slots", "dead", "queue", "tenants"};
    printf("violation [%s]: %s\n", names[__builtin_ctz(kind) & 3], message);
}

static int cmd_check(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem check NAME\n"
        "Verify every invariant of the segment.  Exit 0 when all hold; otherwise\n"
        "print one line per violation and exit 16 + the sum of the kinds found:\n"
        "1 slots, 2 dead holders/waiters, 4 queue, 8 tenants.\n";
    const char *name;
    int rc = parse_flags(argc, argv, help, NULL, &name);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    fairsem_t *sem;
    if ((rc = cli_open(name, true, &sem)) < 0)
        return cli_fail(name, rc);
    int kinds = fairsem_check(sem, print_violation, NULL);
    fairsem_stats_t st;
    fairsem_stats(sem, &st, NULL, 0, NULL);
    fairsem_close(sem);
    if (kinds < 0)
        return cli_fail(name, kinds);
    if (kinds == 0) {
        printf("%s: ok (%u slots: %u in use, %u free, %u waiting)\n", name, st.max_slots, st.slots_in_use,
               st.slots_available, st.waiters);
        return EXIT_OK;
    }
    return EXIT_CHECK_BASE | kinds;
}

/* reap --dry-run: count what the dead hold, from the dump. */
struct dead_tally {
    unsigned procs, slots, tickets;
};

static void tally_proc(void *arg, const fairsem_proc_info_t *p)
{
    struct dead_tally *t = arg;
    if (!p->alive) {
        t->procs++;
        printf("would reap record %u (pid %d)\n", p->record, p->pid);
    }
}
static void tally_holder(void *arg, const fairsem_holder_info_t *h)
{
    struct dead_tally *t = arg;
    if (!h->alive) {
        t->slots++;
        printf("would free slot %u held for %s by pid %d\n", h->slot, h->tenant, h->pid);
    }
}
static void tally_waiter(void *arg, const fairsem_waiter_info_t *w)
{
    struct dead_tally *t = arg;
    if (!w->alive) {
        t->tickets++;
        printf("would drop ticket %llu of %s by pid %d\n", (unsigned long long)w->ticket, w->tenant, w->pid);
    }
}

static int cmd_reap(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem reap NAME [--dry-run]\n"
        "Reclaim the slots, queued requests and registrations of dead processes,\n"
        "and reset corrupt words that nobody owns.  Live processes are never touched.  --dry-run only says what it would do.\n";
    bool dry = false;
    struct flag_opt flags[] = {{"--dry-run", &dry}, {NULL, NULL}};
    const char *name;
    int rc = parse_flags(argc, argv, help, flags, &name);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    fairsem_t *sem;
    if ((rc = cli_open(name, dry, &sem)) < 0)
        return cli_fail(name, rc);
    if (dry) {
        struct dead_tally t = {0};
        fairsem_dump_ops_t ops = {tally_proc, tally_holder, tally_waiter};
        fairsem_dump(sem, &ops, &t);
        fairsem_close(sem);
        printf("%s: would reap %u dead processes, %u slots, %u queued requests\n", name, t.procs, t.slots,
               t.tickets);
        return EXIT_OK;
    }
    fairsem_reap_report_t r;
    rc = fairsem_reap(sem, &r);
    fairsem_close(sem);
    if (rc < 0)
        return cli_fail(name, rc);
    printf("%s: reaped %u dead processes, %u slots, %u queued requests, %u registrations", name, r.procs,
           r.slots, r.tickets, r.registrations);
    if (r.repaired)
        printf(", %u corrupt words repaired", r.repaired);
    printf("\n");
    return EXIT_OK;
}

static void count_live(void *arg, const fairsem_proc_info_t *p)
{
    *(unsigned *)arg += p->alive != 0;
}

/* Say how many live processes keep NAME from being removed. */
static int refuse_attached(const char *name)
{
    unsigned live = 0;
    fairsem_t *sem;
    if (cli_open(name, true, &sem) == 0) {
        fairsem_dump_ops_t ops = {.proc = count_live};
        fairsem_dump(sem, &ops, &live);
        fairsem_close(sem);
    }
    if (!live) /* gone since fairsem_unlink looked, or unreadable: no count */
        return cli_fail(name, FAIRSEM_EATTACHED);
    fprintf(stderr, "fairsem: %s: %u live processes attached (use --force)\n", name, live);
    return EXIT_BUSY;
}

static int cmd_rm(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem rm NAME [--force]\n"
        "Remove the segment.  Refuses (exit 6) while live processes are attached,\n"
        "unless --force; attached processes keep working on the removed segment.\n"
        "--force also removes a segment of another layout version, but never a\n"
        "file that is not a fairsem segment (exit 4).\n";
    bool force = false;
    struct flag_opt flags[] = {{"--force", &force}, {NULL, NULL}};
    const char *name;
    int rc = parse_flags(argc, argv, help, flags, &name);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    if (!force) {
        rc = fairsem_unlink(name, 0);
        if (rc == FAIRSEM_EATTACHED)
            return refuse_attached(name);
        return rc < 0 ? cli_fail(name, rc) : EXIT_OK;
    }
    /* --force removes a segment that cannot be opened (another layout,
     * corrupt), never a file that is no fairsem segment at all. */
    fairsem_t *sem;
    rc = cli_open(name, true, &sem);
    if (rc == 0)
        fairsem_close(sem);
    else if (rc == FAIRSEM_EMAGIC || rc == -ENOENT)
        return cli_fail(name, rc);
    if ((rc = fairsem_unlink(name, FAIRSEM_UNLINK_FORCE)) < 0)
        return cli_fail(name, rc);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } commands[] = {
        {"create", cmd_create}, {"list", cmd_list}, {"dump", cmd_dump}, {"check", cmd_check},
        {"reap", cmd_reap},     {"rm", cmd_rm},     {"run", cmd_run},
    };
    if (argc < 2)
        return usage_error("missing COMMAND");
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("fairsem %s\n", fairsem_version());
        return EXIT_OK;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "fairsem: unknown command '%s'\n%s", argv[1], usage_text);
    return EXIT_USAGE;
}
