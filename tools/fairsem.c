/*
 * fairsem - look at, check, clean up and use fairsem segments.
 *
 *   fairsem create NAME --slots N [--min-share K] [--work-conserving] [--strict-fifo]
 *                  [--mode OCTAL] [--max-tenants N] [--max-waiters N] [--max-procs N]
 *   fairsem list
 *   fairsem dump NAME [--json] [--watch[=SECONDS]]
 *   fairsem check NAME [--strict]
 *   fairsem reap NAME [--dry-run]
 *   fairsem rm NAME [--force]
 *   fairsem run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] [-v]
 *               (-c 'COMMAND' | [--] CMD ARGS...)
 *   fairsem metrics [--max-tenants N] [--openmetrics] [--textfile DIR] [--all] [NAME...]
 *   fairsem serve --listen ADDR:PORT [--max-tenants N] [--all] [NAME...]
 *
 * Built on the public API only (include/fairsem.h).  Exit statuses and
 * output formats are documented in docs/fairsem.1.
 */
#define _GNU_SOURCE
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int cli_exit_status(int err)
{
    switch (err) {
    case 0: return EXIT_OK;
    case -ENOENT: return EXIT_MISSING;
    case -EACCES:
    case -EPERM: return EXIT_PERMISSION;
    case FAIRSEM_EMAGIC:
    case FAIRSEM_EVERSION:
    case FAIRSEM_ECORRUPT:
    case FAIRSEM_EINIT:
    case FAIRSEM_ERULE: return EXIT_INCOMPATIBLE;
    case FAIRSEM_EATTACHED: return EXIT_BUSY;
    case -EINVAL:
    case -ENAMETOOLONG: return EXIT_USAGE;
    default: return EXIT_FAIL;
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

int cli_usage(const char *cmd, const char *help, const char *fmt, ...)
{
    fprintf(stderr, "fairsem %s: ", cmd);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", help);
    return EXIT_USAGE;
}

const char *cli_name_problem(const char *name)
{
    static char text[128];
    size_t len = strlen(name);
    if (name[0] != '/' || name[1] == '\0' || strchr(name + 1, '/'))
        return "NAME must be one '/' followed by a name without '/', e.g. /tabs";
    if (len > FAIRSEM_NAME_MAX) {
        snprintf(text, sizeof text, "NAME is %zu bytes; the limit is %d", len, FAIRSEM_NAME_MAX);
        return text;
    }
    return NULL;
}

const char *cli_option_problem(int c, char **argv)
{
    static char text[320];
    const char *arg = argv[optind - 1];
    char letter[3] = {'-', (char)optopt, '\0'};
    const char *opt = optopt > 0 && optopt < 128 && arg[0] == '-' && arg[1] != '-' ? letter : arg;
    snprintf(text, sizeof text, c == ':' ? "option '%s' needs a value" : "unknown option '%s'", opt);
    return text;
}

int cli_utf8_length(const unsigned char *p)
{
    int n = p[0] >= 0xf0 && p[0] <= 0xf4   ? 4
            : p[0] >= 0xe0 && p[0] <= 0xef ? 3
            : p[0] >= 0xc2 && p[0] <= 0xdf ? 2
                                           : 0;
    for (int k = 1; k < n; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0) ||
        (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0; /* overlong, surrogate, or past U+10FFFF */
    return n;
}

int cli_each_segment(bool (*fn)(void *arg, const char *name, fairsem_t *sem, int err), void *arg)
{
    DIR *dir = opendir(CLI_SHM_DIR);
    if (!dir)
        return -errno;
    struct dirent *d;
    while ((d = readdir(dir))) {
        if (d->d_name[0] == '.' || (d->d_type != DT_REG && d->d_type != DT_UNKNOWN))
            continue;
        char name[FAIRSEM_NAME_MAX + 2];
        if (snprintf(name, sizeof name, "/%s", d->d_name) >= (int)sizeof name)
            continue;
        fairsem_t *sem = NULL;
        int rc = cli_open(name, true, &sem);
        if (rc == FAIRSEM_EMAGIC || rc == FAIRSEM_ECORRUPT)
            continue; /* not ours */
        if (!fn(arg, name, rc < 0 ? NULL : sem, rc) && rc == 0)
            fairsem_close(sem);
    }
    closedir(dir);
    return 0;
}

static const char *usage_text =
    "usage: fairsem COMMAND [ARGS]\n"
    "\n"
    "  create NAME --slots N [--min-share K] [--work-conserving] [--mode OCTAL]\n"
    "              [--strict-fifo] [--max-tenants N] [--max-waiters N] [--max-procs N]\n"
    "  list                        every fairsem segment on this machine\n"
    "  dump NAME [--json] [--watch[=SECONDS]]\n"
    "  check NAME [--strict]       verify every invariant\n"
    "  reap NAME [--dry-run]       reclaim what dead processes held or queued\n"
    "  rm NAME [--force]           remove the segment\n"
    "  run NAME --tenant T [--weight W] [-n | -w SECONDS] [-E CODE] [-v]\n"
    "           (-c 'COMMAND' | [--] CMD [ARGS...])   hold a slot while it runs\n"
    "  metrics [--max-tenants N] [--openmetrics] [--textfile DIR] [--all] [NAME...]\n"
    "                              counters and gauges as Prometheus text\n"
    "  serve --listen ADDR:PORT [--max-tenants N] [--all] [NAME...]\n"
    "                              the same over HTTP, at /metrics\n"
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
        if (argv[i][0] == '-')
            return cli_usage(argv[0], help, "unknown option '%s'", argv[i]);
        if (*name)
            return cli_usage(argv[0], help, "one NAME only ('%s' is a second one)", argv[i]);
        *name = argv[i];
    }
    if (!*name)
        return cli_usage(argv[0], help, "missing NAME");
    const char *problem = cli_name_problem(*name);
    return problem ? cli_usage(argv[0], help, "%s", problem) : 0;
}

/* A capacity option of create: its value must lie in lo..hi. */
struct capacity_opt {
    const char *option;
    unsigned *value;
    unsigned lo, hi;
};

static int cmd_create(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem create NAME --slots N [--min-share K] [--work-conserving] [--strict-fifo]\n"
        "                      [--mode OCTAL] [--max-tenants N] [--max-waiters N] [--max-procs N]\n"
        "Create the segment NAME (\"/something\") with N slots (1 to 65535).  Fails if it\n"
        "exists.  K: 1 to N (default 1); capacities: 1 to 4095 (defaults 64, 256, 128).\n";
    static const struct option longopts[] = {
        {"slots", required_argument, NULL, 's'},
        {"min-share", required_argument, NULL, 'm'},
        {"work-conserving", no_argument, NULL, 'c'},
        {"strict-fifo", no_argument, NULL, 'f'},
        {"mode", required_argument, NULL, 'o'},
        {"max-tenants", required_argument, NULL, 't'},
        {"max-waiters", required_argument, NULL, 'w'},
        {"max-procs", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    fairsem_options_t o = {0};
    bool min_share_given = false;
    struct capacity_opt caps[] = {
        {"--slots", &o.max_slots, 1, FAIRSEM_MAX_SLOTS_LIMIT},
        {"--min-share", &o.min_share, 1, FAIRSEM_MAX_SLOTS_LIMIT},
        {"--max-tenants", &o.max_tenants, 1, FAIRSEM_MAX_TENANTS_LIMIT},
        {"--max-waiters", &o.max_waiters, 1, FAIRSEM_MAX_WAITERS_LIMIT},
        {"--max-procs", &o.max_procs, 1, FAIRSEM_MAX_PROCS_LIMIT},
    };
    int c;
    optind = 1;
    opterr = 0; /* our own messages, with create's usage */
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        struct capacity_opt *cap = NULL;
        switch (c) {
        case 's': cap = &caps[0]; break;
        case 'm':
            cap = &caps[1];
            min_share_given = true;
            break;
        case 't': cap = &caps[2]; break;
        case 'w': cap = &caps[3]; break;
        case 'p': cap = &caps[4]; break;
        case 'c': o.flags |= FAIRSEM_WORK_CONSERVING; continue;
        case 'f': o.flags |= FAIRSEM_STRICT_FIFO; continue;
        case 'o': {
            char *end;
            unsigned long mode = strtoul(optarg, &end, 8);
            if (*end || end == optarg || optarg[0] == '-' || mode > 07777)
                return cli_usage("create", help, "--mode '%s' is not octal permission bits (0 to 7777, e.g. 0660)",
                                 optarg);
            o.mode = (unsigned)mode;
            continue;
        }
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return cli_usage("create", help, "%s", cli_option_problem(c, argv));
        }
        if (!cli_parse_unsigned(optarg, cap->value) || *cap->value < cap->lo || *cap->value > cap->hi)
            return cli_usage("create", help, "%s '%s' is out of range: %u to %u", cap->option, optarg, cap->lo,
                             cap->hi);
    }
    if (optind >= argc)
        return cli_usage("create", help, "missing NAME");
    if (optind < argc - 1)
        return cli_usage("create", help, "one NAME only ('%s' is a second one)", argv[optind + 1]);
    const char *name = argv[optind], *problem = cli_name_problem(name);
    if (problem)
        return cli_usage("create", help, "%s", problem);
    if (o.max_slots == 0)
        return cli_usage("create", help, "--slots N is required (1 to %u)", FAIRSEM_MAX_SLOTS_LIMIT);
    if (min_share_given && o.min_share > o.max_slots)
        return cli_usage("create", help, "--min-share %u is out of range: 1 to --slots (%u)", o.min_share,
                         o.max_slots);
    fairsem_t *sem;
    int rc = fairsem_create(name, &o, &sem);
    if (rc < 0)
        return cli_fail(name, rc);
    fairsem_close(sem);
    printf("created %s: %u slots\n", name, o.max_slots);
    return EXIT_OK;
}

/* "45s", "12m", "3h", "4d": how long ago, in its largest whole unit. */
static void format_age(char *out, size_t cap, uint64_t then_ns)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    uint64_t s = now_ns > then_ns ? (now_ns - then_ns) / 1000000000u : 0;
    if (s < 120)
        snprintf(out, cap, "%llus", (unsigned long long)s);
    else if (s < 2 * 3600)
        snprintf(out, cap, "%llum", (unsigned long long)(s / 60));
    else if (s < 2 * 86400)
        snprintf(out, cap, "%lluh", (unsigned long long)(s / 3600));
    else
        snprintf(out, cap, "%llud", (unsigned long long)(s / 86400));
}

/* The columns of `fairsem list`. */
static const char *list_columns = "%-32s %6s %6s %6s %8s %6s %5s %-10s %5s %s\n";

/* One row of `fairsem list`. */
static bool list_row(void *arg, const char *name, fairsem_t *sem, int err)
{
    (void)arg;
    char path[FAIRSEM_NAME_MAX + 16], owner[32] = "-", mode[8] = "-", age[16] = "-";
    snprintf(path, sizeof path, CLI_SHM_DIR "%s", name);
    struct stat st_file;
    if (stat(path, &st_file) == 0) {
        struct passwd *pw = getpwuid(st_file.st_uid);
        if (pw)
            snprintf(owner, sizeof owner, "%.10s", pw->pw_name);
        else
            snprintf(owner, sizeof owner, "%u", (unsigned)st_file.st_uid);
        snprintf(mode, sizeof mode, "%04o", (unsigned)(st_file.st_mode & 07777));
    }
    if (err < 0) {
        printf(list_columns, name, "-", "-", "-", "-", "-", age, owner, mode, fairsem_strerror(err));
        return false;
    }
    fairsem_stats_t st;
    fairsem_info_t info;
    fairsem_stats(sem, &st, NULL, 0, NULL);
    fairsem_info(sem, &info);
    format_age(age, sizeof age, info.created_ns);
    printf("%-32s %6u %6u %6u %8u %6u %5s %-10s %5s ok\n", name, st.max_slots, st.slots_in_use, st.slots_available,
           st.waiters, st.attached_procs, age, owner, mode);
    return false;
}

static int cmd_list(int argc, char **argv)
{
    static const char *help = "usage: fairsem list\n"
                              "List every fairsem segment in /dev/shm, one line each: NAME SLOTS INUSE FREE\n"
                              "WAITERS PROCS, AGE (since created), OWNER and MODE (of the file), STATUS.\n";
    if (argc > 1) {
        if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
            fputs(help, stdout);
            return EXIT_OK;
        }
        return cli_usage("list", help, "takes no arguments ('%s' given)", argv[1]);
    }
    printf(list_columns, "NAME", "SLOTS", "INUSE", "FREE", "WAITERS", "PROCS", "AGE", "OWNER", "MODE", "STATUS");
    int rc = cli_each_segment(list_row, NULL);
    return rc < 0 ? cli_fail(CLI_SHM_DIR, rc) : EXIT_OK;
}

/* What fairsem_check reported, kept to be printed once classified. */
struct check_findings {
    unsigned n;
    struct {
        unsigned kind;
        char text[160];
    } found[64];
};

static void keep_finding(void *arg, unsigned kind, const char *message)
{
    struct check_findings *f = arg;
    if (f->n < sizeof f->found / sizeof f->found[0]) {
        f->found[f->n].kind = kind;
        snprintf(f->found[f->n++].text, sizeof f->found[0].text, "%s", message);
    }
}

static void count_dead(void *arg, const fairsem_proc_info_t *p) { *(unsigned *)arg += !p->alive; }

static int cmd_check(int argc, char **argv)
{
    static const char *help = "usage: fairsem check NAME [--strict]\n"
                              "Verify every invariant of the segment.  Exit 0 when all hold.  What only\n"
                              "dead processes that nobody has reaped yet hold (the next waiter, or\n"
                              "'fairsem reap', frees it) is printed as warnings and exits 0, or 18 with\n"
                              "--strict.  Otherwise print one line per violation and exit 16 + the sum of\n"
                              "the kinds found: 1 slots, 2 dead or gone holders/waiters, 4 queue, 8 tenants.\n";
    bool strict = false;
    struct flag_opt flags[] = {{"--strict", &strict}, {NULL, NULL}};
    const char *name;
    int rc = parse_flags(argc, argv, help, flags, &name);
    if (rc)
        return rc < 0 ? EXIT_OK : rc;
    fairsem_t *sem;
    if ((rc = cli_open(name, true, &sem)) < 0)
        return cli_fail(name, rc);
    /* Findings of kind "dead" alone, while dead processes wait to be
     * reaped, are theirs: reaping frees what names them.  If the dead were
     * reaped between the check and the count, look again. */
    static struct check_findings findings;
    unsigned dead = 0;
    int kinds;
    for (int attempt = 0; attempt < 3; attempt++) {
        findings.n = 0;
        dead = 0;
        kinds = fairsem_check(sem, keep_finding, &findings);
        fairsem_dump_ops_t ops = {.proc = count_dead};
        fairsem_dump(sem, &ops, &dead);
        if (kinds != FAIRSEM_CHECK_DEAD || dead > 0)
            break;
    }
    fairsem_stats_t st;
    fairsem_stats(sem, &st, NULL, 0, NULL);
    fairsem_close(sem);
    if (kinds < 0)
        return cli_fail(name, kinds);
    bool unreaped = kinds == FAIRSEM_CHECK_DEAD && dead > 0;
    static const char *names[] = {"slots", "dead", "queue", "tenants"};
    for (unsigned k = 0; k < findings.n; k++)
        printf("%s [%s]: %s\n", unreaped ? "warning" : "violation",
               names[__builtin_ctz(findings.found[k].kind) & 3], findings.found[k].text);
    if (kinds == 0 || unreaped)
        printf("%s: ok (%u slots: %u in use, %u free, %u waiting)\n", name, st.max_slots, st.slots_in_use,
               st.slots_available, st.waiters);
    if (unreaped)
        printf("%s: %u dead processes not yet reaped ('fairsem reap %s' frees what they hold)\n", name, dead,
               name);
    if (kinds == 0 || (unreaped && !strict))
        return EXIT_OK;
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
    static const char *help = "usage: fairsem reap NAME [--dry-run]\n"
                              "Reclaim the slots, queued requests and registrations of dead processes,\n"
                              "and reset corrupt words that nobody owns.  Live processes are never touched.  "
                              "--dry-run only says what it would do.\n";
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
    printf("%s: reaped %u dead processes, %u slots, %u queued requests, %u registrations", name, r.procs, r.slots,
           r.tickets, r.registrations);
    if (r.repaired)
        printf(", %u corrupt words repaired", r.repaired);
    printf("\n");
    return EXIT_OK;
}

static void count_live(void *arg, const fairsem_proc_info_t *p) { *(unsigned *)arg += p->alive != 0; }

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
    static const char *help = "usage: fairsem rm NAME [--force]\n"
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
        {"create", cmd_create}, {"list", cmd_list},       {"dump", cmd_dump},
        {"check", cmd_check},   {"reap", cmd_reap},       {"rm", cmd_rm},
        {"run", cmd_run},       {"metrics", cmd_metrics}, {"serve", cmd_serve},
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
