/*
 * test_tools.c - the `fairsem` command (tools/), run as a subprocess:
 * exit statuses and output formats as docs/fairsem.1 documents them.
 *
 * Holders and waiters are set up through the C API, in this process or in
 * prog_worker ctl processes (procs.h).  Every command is started in a
 * process group of its own, so that what it starts (run's CMD) is killed
 * with it if a test stops early.
 */
#define _GNU_SOURCE
#include "common.h"
#include "layout.h"
#include "command.h"
#include "procs.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PYTHON "/usr/bin/python3"

/* ------------------------------------------------------------ housekeeping */

static char g_seg[FAIRSEM_NAME_MAX + 1];

/* Kill the commands' process groups (what `run` started with them), then
 * every tracked process; unlink the segment. */
static void cleanup(void)
{
    kill_command_groups();
    kill_all_unlink(g_seg);
}

TestSuite(tools, .fini = cleanup, .timeout = 60);

/* Validate json (one object per line) with Python: `script` runs once
 * per object, as d, with the extra arguments in a (a list of strings).
 * Skipped (true) when there is no Python. */
static bool json_ok(const char *json, const char *script, const char *const extra[])
{
    if (access(PYTHON, X_OK) != 0) {
        cr_log_warn("no %s: JSON checked by substrings only", PYTHON);
        return true;
    }
    char prog[4096];
    snprintf(prog, sizeof prog,
             "import json, sys\n"
             "a = sys.argv[1:]\n"
             "lines = [l for l in sys.stdin.read().split('\\n') if l]\n"
             "assert lines, 'no output'\n"
             "for l in lines:\n"
             "    d = json.loads(l)\n"
             "    assert isinstance(d, dict), d\n"
             "    assert d['schema'] == 'fairsem-dump' and d['version'] == 2, d\n"
             "%s\n"
             "print(len(lines))\n",
             script);
    char *argv[16] = {(char *)PYTHON, (char *)"-c", prog};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    struct result r;
    run_argv(&r, argv, json, 0);
    if (r.code != 0)
        cr_log_error("python: %s\non: %s", r.err, json);
    return r.code == 0;
}

/* ------------------------------------------------------------ text helpers */

/* Up to max lines of `text` after the line that begins with `header` (after
 * blanks), until an empty line; their number. */
static int section(const char *text, const char *header, char rows[][256], int max)
{
    const char *p = text;
    while (*p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (strncmp(p, header, strlen(header)) == 0) {
            int n = 0;
            p = eol ? eol + 1 : p + len;
            while (*p && *p != '\n' && n < max) {
                eol = strchr(p, '\n');
                len = eol ? (size_t)(eol - p) : strlen(p);
                snprintf(rows[n++], 256, "%.*s", (int)len, p);
                p = eol ? eol + 1 : p + len;
            }
            return n;
        }
        p = eol ? eol + 1 : p + len;
    }
    return -1;
}

/* The line of `text` that begins with `start` followed by a blank, copied
 * into line; false if none. */
static bool line_of(const char *text, const char *start, char *line, size_t cap)
{
    size_t sl = strlen(start);
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        if (len > sl && strncmp(p, start, sl) == 0 && p[sl] == ' ') {
            snprintf(line, cap, "%.*s", (int)len, p);
            return true;
        }
        p = eol ? eol + 1 : p + len;
    }
    return false;
}

static void shm_path(char *path, size_t cap, const char *name) { snprintf(path, cap, "/dev/shm%s", name); }

static bool exists(const char *name)
{
    char path[FAIRSEM_NAME_MAX + 16];
    shm_path(path, sizeof path, name);
    return access(path, F_OK) == 0;
}

static fairsem_stats_t stats_of(fairsem_t *sem)
{
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sem, &st, NULL, 0, NULL), 0);
    return st;
}

/* Create g_seg (a fresh name) with `slots` slots and permission bits
 * `mode` (0: the default), attached here.  With tenant != NULL, register
 * it into *t, and with s != NULL take one slot into *s. */
static fairsem_t *new_segment(const char *what, unsigned slots, unsigned mode, const char *tenant,
                              fairsem_tenant_t **t, fairsem_slot_t *s)
{
    test_name(g_seg, sizeof g_seg, what);
    fairsem_options_t o = {.max_slots = slots, .mode = mode};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    if (tenant)
        cr_assert_eq(fairsem_tenant_register(sem, tenant, 1, t), 0);
    if (tenant && s)
        cr_assert_eq(fairsem_try_acquire(*t, s), 0);
    return sem;
}

/* Give back s (when t is not NULL), detach and remove g_seg. */
static void remove_segment(fairsem_t *sem, fairsem_tenant_t *t, fairsem_slot_t s)
{
    if (t)
        cr_assert_eq(fairsem_release(t, s), 0);
    seg_close_unlink(sem, g_seg);
}

/* ----------------------------------------------------------------- create */

Test(tools, create_mode_is_exact_whatever_the_umask)
{
    struct result r;
    char path[FAIRSEM_NAME_MAX + 16];
    struct stat sb;
    mode_t old = umask(0077);
    test_name(g_seg, sizeof g_seg, "tl-mode");
    int code = tool(&r, "create", g_seg, "--slots", "3", "--mode", "0660", NULL);
    umask(old);
    cr_assert_eq(code, 0, "create: %s", r.err);
    char want[300];
    snprintf(want, sizeof want, "created %s: 3 slots\n", g_seg);
    cr_assert_str_eq(r.out, want);
    shm_path(path, sizeof path, g_seg);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0660, "mode %o under umask 0077", sb.st_mode & 07777);
    fairsem_t *sem;
    cr_assert_eq(fairsem_open(g_seg, NULL, &sem), 0);
    fairsem_info_t info;
    cr_assert_eq(fairsem_info(sem, &info), 0);
    cr_assert_eq(info.max_slots, 3u);
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0);

    /* Default 0600, under a umask that would give more. */
    old = umask(0);
    code =
        tool(&r, "create", g_seg, "--slots", "2", "--min-share", "2", "--work-conserving", "--strict-fifo", NULL);
    umask(old);
    cr_assert_eq(code, 0, "create: %s", r.err);
    cr_assert_eq(stat(path, &sb), 0);
    cr_assert_eq(sb.st_mode & 07777, 0600, "mode %o under umask 0", sb.st_mode & 07777);
    cr_assert_eq(fairsem_open(g_seg, NULL, &sem), 0);
    cr_assert_eq(fairsem_info(sem, &info), 0);
    cr_assert_eq(info.max_slots, 2u);
    cr_assert_eq(info.min_share, 2u);
    cr_assert_eq(info.flags, FAIRSEM_WORK_CONSERVING | FAIRSEM_STRICT_FIFO);
    seg_close_unlink(sem, g_seg);
}

Test(tools, create_usage_errors)
{
    struct result r;
    test_name(g_seg, sizeof g_seg, "tl-cusage");
    cr_assert_eq(tool(&r, "create", g_seg, NULL), 2, "no --slots");
    cr_assert(strstr(r.err, "--slots"), "stderr: %s", r.err);
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "0", NULL), 2);
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "x", NULL), 2);
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "2", "--mode", "999", NULL), 2);
    cr_assert_eq(tool(&r, "create", "--slots", "2", NULL), 2, "no NAME");
    cr_assert_eq(tool(&r, "create", g_seg, g_seg, "--slots", "2", NULL), 2, "two NAMEs");
    cr_assert_eq(tool(&r, "create", "no-slash", "--slots", "2", NULL), 2, "bad NAME");
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "2", "--bogus", NULL), 2);
    cr_assert_not(exists(g_seg), "a failed create left a segment");
    g_seg[0] = '\0';
}

Test(tools, create_existing_fails_naming_it)
{
    struct result r;
    test_name(g_seg, sizeof g_seg, "tl-exists");
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "4", NULL), 0, "%s", r.err);
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "5", NULL), 1);
    cr_assert(strstr(r.err, g_seg), "the message does not name the segment: %s", r.err);
    cr_assert_str_eq(r.out, "");
    fairsem_t *sem;
    cr_assert_eq(fairsem_open(g_seg, NULL, &sem), 0);
    fairsem_info_t info;
    cr_assert_eq(fairsem_info(sem, &info), 0);
    cr_assert_eq(info.max_slots, 4u, "the existing segment was replaced");
    seg_close_unlink(sem, g_seg);
}

/* ------------------------------------------------------------------- list */

Test(tools, list_shows_the_segment)
{
    fairsem_tenant_t *t;
    fairsem_slot_t s[2];
    fairsem_t *sem = new_segment("tl-list", 5, 0, "lister", &t, &s[0]);
    cr_assert_eq(fairsem_try_acquire(t, &s[1]), 0);

    struct result r;
    cr_assert_eq(tool(&r, "list", NULL), 0, "%s", r.err);
    cr_assert_eq(strncmp(r.out, "NAME", 4), 0, "no header: %s", r.out);
    cr_assert(strstr(r.out, "SLOTS") && strstr(r.out, "INUSE") && strstr(r.out, "FREE") &&
              strstr(r.out, "WAITERS") && strstr(r.out, "PROCS") && strstr(r.out, "AGE") &&
              strstr(r.out, "OWNER") && strstr(r.out, "MODE") && strstr(r.out, "STATUS"));
    char line[512], name[300], age[16], owner[32], mode[16], status[64];
    cr_assert(line_of(r.out, g_seg, line, sizeof line), "%s not listed:\n%s", g_seg, r.out);
    unsigned slots, inuse, avail, waiters, procs;
    cr_assert_eq(sscanf(line, "%299s %u %u %u %u %u %15s %31s %15s %63s", name, &slots, &inuse, &avail, &waiters,
                        &procs, age, owner, mode, status),
                 10, "'%s'", line);
    unsigned age_s;
    char unit;
    cr_assert_eq(sscanf(age, "%u%c", &age_s, &unit), 2, "age '%s'", age);
    cr_assert(unit == 's' && age_s < 120, "a segment just created is %s old", age);
    struct passwd *me = getpwuid(getuid());
    cr_assert_not_null(me);
    char want_owner[32];
    snprintf(want_owner, sizeof want_owner, "%.10s", me->pw_name);
    cr_assert_str_eq(owner, want_owner);
    struct stat file;
    char path[FAIRSEM_NAME_MAX + 16], want_mode[16];
    shm_path(path, sizeof path, g_seg);
    cr_assert_eq(stat(path, &file), 0);
    snprintf(want_mode, sizeof want_mode, "%04o", (unsigned)(file.st_mode & 07777));
    cr_assert_str_eq(mode, want_mode);
    cr_assert_eq(slots, 5u);
    cr_assert_eq(inuse, 2u);
    cr_assert_eq(avail, 3u);
    cr_assert_eq(waiters, 0u);
    cr_assert_eq(procs, 1u, "the list counted itself or missed this process");
    cr_assert_str_eq(status, "ok");

    cr_assert_eq(tool(&r, "list", "extra", NULL), 2);
    cr_assert_eq(fairsem_release(t, s[1]), 0);
    remove_segment(sem, t, s[0]);
}

/* ------------------------------------------------------------------- dump */

/* The scene the dump tests look at: 3 slots, all held by tenant "alpha"
 * (weight 3) in this process, and one request of "beta" queued by a
 * prog_worker; a and b are the two tenants as fairsem_stats sees them. */
struct scene {
    fairsem_t *sem;
    struct worker w;
    fairsem_tenant_t *alpha;
    fairsem_slot_t held[3];
    fairsem_tenant_stats_t a, b;
};

static void scene_start(struct scene *sc, const char *what)
{
    sc->sem = new_segment(what, 3, 0, NULL, NULL, NULL);
    cr_assert_eq(fairsem_tenant_register(sc->sem, "alpha", 3, &sc->alpha), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_try_acquire(sc->alpha, &sc->held[i]), 0);
    cr_assert(spawn_ctl(&sc->w, g_seg, "beta", "b"));
    send_cmd(&sc->w, 'a');
    cr_assert(wait_waiters(sc->sem, 1, TEST_PATIENCE_MS), "beta did not queue");
    fairsem_tenant_stats_t ts[4];
    size_t n;
    fairsem_stats_t st;
    cr_assert_eq(fairsem_stats(sc->sem, &st, ts, 4, &n), 0);
    const fairsem_tenant_stats_t *a = find_tenant(ts, n, "alpha"), *b = find_tenant(ts, n, "beta");
    cr_assert(a && b);
    sc->a = *a;
    sc->b = *b;
}

static void scene_end(struct scene *sc)
{
    cr_assert(kill_wait(sc->w.pid));
    worker_close(&sc->w);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(fairsem_release(sc->alpha, sc->held[i]), 0);
    remove_segment(sc->sem, sc->alpha, sc->held[2]);
}

Test(tools, dump_tables_show_holders_and_waiters)
{
    struct scene sc;
    scene_start(&sc, "tl-dump");
    const fairsem_tenant_stats_t *a = &sc.a, *b = &sc.b;
    struct worker w = sc.w;

    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, NULL), 0, "%s", r.err);
    cr_log_info("dump:\n%s", r.out);
    /* Header line. */
    char name[300];
    unsigned layout, slots, inuse, avail, waiters, demanding;
    cr_assert_eq(sscanf(r.out, "%299s layout %u slots %u in use %u free %u waiters %u demanding tenants %u", name,
                        &layout, &slots, &inuse, &avail, &waiters, &demanding),
                 7, "header: %s", r.out);
    cr_assert_str_eq(name, g_seg);
    cr_assert_eq(layout, FS_LAYOUT_VERSION);
    cr_assert_eq(slots, 3u);
    cr_assert_eq(inuse, 3u);
    cr_assert_eq(avail, 0u);
    cr_assert_eq(waiters, 1u);
    cr_assert_eq(demanding, 2u);
    cr_assert(strstr(r.out, "min share 1  rule built-in  work-conserving no  strict-fifo no  processes 2"), "%s",
              r.out);

    /* TENANT WEIGHT SHARE HELD WAITING */
    char rows[8][256];
    int n = section(r.out, "TENANT ", rows, 8);
    cr_assert_eq(n, 2, "tenant rows: %d", n);
    bool seen_a = false, seen_b = false;
    for (int i = 0; i < n; i++) {
        char id[64];
        unsigned weight, share, h, wt;
        cr_assert_eq(sscanf(rows[i], "%63s %u %u %u %u", id, &weight, &share, &h, &wt), 5, "'%s'", rows[i]);
        const fairsem_tenant_stats_t *x = strcmp(id, "alpha") == 0 ? a : b;
        cr_assert_str_eq(id, x->id);
        cr_assert_eq(weight, x->weight);
        cr_assert_eq(share, x->share);
        cr_assert_eq(h, x->held);
        cr_assert_eq(wt, x->waiting);
        if (x == a) {
            seen_a = true;
            cr_assert_eq(weight, 3u);
            cr_assert_eq(h, 3u);
            cr_assert_eq(wt, 0u);
            cr_assert(strstr(rows[i], "at share"), "alpha holds %u of share %u: '%s'", h, share, rows[i]);
        } else {
            seen_b = true;
            cr_assert_eq(weight, 1u);
            cr_assert_eq(h, 0u);
            cr_assert_eq(wt, 1u);
            cr_assert_null(strstr(rows[i], "at share"), "'%s'", rows[i]);
        }
    }
    cr_assert(seen_a && seen_b);

    /* SLOT TENANT PID SINCE ALIVE: our three slots, by slot. */
    n = section(r.out, "SLOT ", rows, 8);
    cr_assert_eq(n, 3, "holder rows: %d", n);
    for (int i = 0; i < n; i++) {
        unsigned slot;
        char tenant[64], alive[16];
        int pid;
        double since;
        cr_assert_eq(sscanf(rows[i], "%u %63s %d %lfs %15s", &slot, tenant, &pid, &since, alive), 5, "'%s'",
                     rows[i]);
        cr_assert_eq(slot, (unsigned)i, "not by slot: '%s'", rows[i]);
        bool ours = false;
        for (int k = 0; k < 3; k++)
            ours |= fairsem_slot_index(sc.held[k]) == slot;
        cr_assert(ours);
        cr_assert_str_eq(tenant, "alpha");
        cr_assert_eq(pid, (int)getpid());
        cr_assert_geq(since, 0.0);
        cr_assert_str_eq(alive, "yes");
    }

    /* TICKET TENANT PID AGE STATE */
    n = section(r.out, "TICKET ", rows, 8);
    cr_assert_eq(n, 1, "waiter rows: %d", n);
    unsigned long long ticket;
    char tenant[64], state[32];
    int pid;
    double age;
    cr_assert_eq(sscanf(rows[0], "%llu %63s %d %lfs %31s", &ticket, tenant, &pid, &age, state), 5, "'%s'",
                 rows[0]);
    cr_assert_str_eq(tenant, "beta");
    cr_assert_eq(pid, (int)w.pid);
    cr_assert_str_eq(state, "waiting");
    cr_assert_null(strstr(rows[0], "dead"));

    /* RECORD PID ALIVE: this process and the worker, not the dump. */
    n = section(r.out, "RECORD ", rows, 8);
    cr_assert_eq(n, 2, "process rows: %d", n);
    bool me = false, worker = false;
    for (int i = 0; i < n; i++) {
        unsigned rec;
        char alive[16];
        cr_assert_eq(sscanf(rows[i], "%u %d %15s", &rec, &pid, alive), 3, "'%s'", rows[i]);
        cr_assert_str_eq(alive, "yes");
        me |= pid == (int)getpid();
        worker |= pid == (int)w.pid;
    }
    cr_assert(me && worker, "%s", r.out);

    scene_end(&sc);
}

Test(tools, dump_json_is_schema_fairsem_dump_v2)
{
    struct scene sc;
    scene_start(&sc, "tl-json");
    const fairsem_tenant_stats_t *a = &sc.a, *b = &sc.b;
    struct worker w = sc.w;

    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
    cr_log_info("dump --json: %s", r.out);
    size_t len = strlen(r.out);
    cr_assert(len > 2 && r.out[0] == '{' && r.out[len - 1] == '\n' && r.out[len - 2] == '}', "%s", r.out);
    cr_assert_eq(strchr(r.out, '\n'), r.out + len - 1, "more than one line: %s", r.out);
    cr_assert(strstr(r.out, "\"schema\":\"fairsem-dump\""));
    cr_assert(strstr(r.out, "\"version\":2,"));
    cr_assert(strstr(r.out, "\"max_slots\":3,"));
    cr_assert(strstr(r.out, "\"in_use\":3,"));
    cr_assert(strstr(r.out, "\"free\":0,"));
    cr_assert(strstr(r.out, "\"waiting\":1,"));

    char me[16], wpid[16], share_a[16], share_b[16];
    snprintf(me, sizeof me, "%d", (int)getpid());
    snprintf(wpid, sizeof wpid, "%d", (int)w.pid);
    snprintf(share_a, sizeof share_a, "%u", a->share);
    snprintf(share_b, sizeof share_b, "%u", b->share);
    char layout[16];
    snprintf(layout, sizeof layout, "%u", FS_LAYOUT_VERSION);
    const char *args[] = {g_seg, me, wpid, share_a, share_b, layout, NULL};
    cr_assert(json_ok(r.out,
                      "    name, me, wpid, sa, sb = a[0], int(a[1]), int(a[2]), int(a[3]), int(a[4])\n"
                      "    assert d['name'] == name, d['name']\n"
                      "    assert isinstance(d['time_ms'], int) and d['time_ms'] > 1600000000000\n"
                      "    want = dict(layout_version=int(a[5]), max_slots=3, min_share=1, rule='',\n"
                      "                work_conserving=False, in_use=3, free=0,\n"
                      "                demanding_tenants=2, registered_tenants=2)\n"
                      "    for k, v in want.items():\n"
                      "        assert d[k] == v and type(d[k]) is type(v), (k, d[k], v)\n"
                      "    assert sorted((p['pid'], p['alive']) for p in d['procs']) == "
                      "sorted([(me, True), (wpid, True)]), d['procs']\n"
                      "    assert all(isinstance(p['record'], int) for p in d['procs'])\n"
                      "    t = {x['id']: x for x in d['tenants']}\n"
                      "    assert sorted(t) == ['alpha', 'beta'], t\n"
                      "    ca, cb = t['alpha'].pop('counters'), t['beta'].pop('counters')\n"
                      "    wa, wb = t['alpha'].pop('oldest_wait_seconds'), t['beta'].pop('oldest_wait_seconds')\n"
                      "    assert t['alpha'] == dict(id='alpha', weight=3, share=sa, held=3, waiting=0,"
                      " registrations=1), t['alpha']\n"
                      "    assert t['beta'] == dict(id='beta', weight=1, share=sb, held=0, waiting=1,"
                      " registrations=1), t['beta']\n"
                      "    zero = dict(grants_immediate=0, grants_waited=0, timeouts=0, cancels=0,\n"
                      "                reclaimed_slots=0, reclaimed_requests=0, held_ns=0, wait_ns=0,\n"
                      "                wait_buckets=[0] * 26)\n"
                      "    assert ca == dict(zero, grants_immediate=3), ca\n"
                      "    assert cb == zero, cb\n"
                      "    assert d['counters'] == ca, d['counters']\n"
                      "    assert wa == 0 and type(wb) is float and 0 < wb <= d['oldest_wait_seconds'], (wa, wb)\n"
                      "    b = d['wait_bucket_bounds_ns']\n"
                      "    assert len(b) == 26 and b[0] == 1000 and b[24] == 10**11 and b[25] is None, b\n"
                      "    h = d['holders']\n"
                      "    assert [x['slot'] for x in h] == [0, 1, 2], h\n"
                      "    for x in h:\n"
                      "        assert x['tenant'] == 'alpha' and x['pid'] == me and x['alive'] is True\n"
                      "        assert x['granted'] is False and x['held_ms'] >= 0, x\n"
                      "    w = d['waiters']\n"
                      "    assert len(w) == 1, w\n"
                      "    assert w[0]['tenant'] == 'beta' and w[0]['pid'] == wpid, w\n"
                      "    assert w[0]['state'] == 'waiting' and w[0]['alive'] is True, w\n"
                      "    assert isinstance(w[0]['ticket'], int) and w[0]['age_ms'] >= 0, w\n",
                      args),
              "dump --json is not what fairsem(1) describes");

    scene_end(&sc);
}

/* Every key of the dump object is there once (a repeated key makes most
 * parsers keep one of the two values and strict ones refuse the object). */
Test(tools, dump_json_keys_are_unique)
{
    struct scene sc;
    scene_start(&sc, "tl-keys");
    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
    const char *first = strstr(r.out, "\"waiters\":");
    cr_assert(first, "%s", r.out);
    cr_assert_null(strstr(first + 1, "\"waiters\":"), "key \"waiters\" appears twice: %s", r.out);
    cr_assert(json_ok(r.out,
                      "    def pairs(kv):\n"
                      "        keys = [k for k, _ in kv]\n"
                      "        assert len(keys) == len(set(keys)), 'duplicate keys: %r' % keys\n"
                      "        return dict(kv)\n"
                      "    json.loads(l, object_pairs_hook=pairs)\n",
                      NULL),
              "dump --json repeats a key");
    scene_end(&sc);
}

/* Tenant ids are any bytes but NUL: quotes, backslashes and control
 * characters come out escaped, and the id reads back as it was. */
Test(tools, dump_json_escapes_tenant_ids)
{
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_t *sem = new_segment("tl-esc", 2, 0, "q\"b\\s/t\tn\nend", &t, &s);
    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
    cr_assert_eq(strchr(r.out, '\n'), r.out + strlen(r.out) - 1, "a raw newline in the JSON: %s", r.out);
    const char *args[] = {"q\"b\\s/t", "n", "end", NULL};
    cr_assert(json_ok(r.out,
                      "    want = a[0] + '\\t' + a[1] + '\\n' + a[2]\n"
                      "    assert [x['id'] for x in d['tenants']] == [want], d['tenants']\n"
                      "    assert [x['tenant'] for x in d['holders']] == [want], d['holders']\n",
                      args),
              "%s", r.out);
    remove_segment(sem, t, s);
}

/* Tenant ids need not be UTF-8: valid sequences are copied, other bytes
 * come out as \u00XX, so the object is always valid JSON. */
Test(tools, dump_json_non_utf8_tenant_ids)
{
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_t *sem = new_segment("tl-utf", 2, 0, "caf\xe9 na\xc3\xafve \xf5\x80\x80", &t, &s);
    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
    cr_assert(
        json_ok(
            r.out,
            "    assert [x['id'] for x in d['tenants']] == ['caf\\xe9 na\\xefve \\xf5\\x80\\x80'], d['tenants']\n",
            NULL),
        "%s", r.out);
    remove_segment(sem, t, s);
}

/* --watch tables show the time and fit 80x24: long tables end "... N more". */
Test(tools, dump_watch_fits_80x24_and_shows_the_time)
{
    enum { TENANTS = 7 };
    fairsem_tenant_t *t[TENANTS];
    fairsem_slot_t s[TENANTS];
    fairsem_t *sem = new_segment("tl-watch80", TENANTS, 0, NULL, NULL, NULL);
    for (int i = 0; i < TENANTS; i++) {
        char id[64];
        snprintf(id, sizeof id, "tenant-with-a-rather-long-name-of-forty-%d", i);
        cr_assert_eq(fairsem_tenant_register(sem, id, 1, &t[i]), 0);
        cr_assert_eq(fairsem_try_acquire(t[i], &s[i]), 0);
    }
    const char *frame = watch_frame(g_seg);
    unsigned y, mo, d, h, mi, sec;
    const char *stamp = strchr(frame, ' ');
    cr_assert_not_null(stamp);
    cr_assert_eq(sscanf(stamp, " %4u-%2u-%2u %2u:%2u:%2u", &y, &mo, &d, &h, &mi, &sec), 6, "no time: %s", frame);
    cr_assert_eq(strncmp(frame, g_seg, strlen(g_seg)), 0, "%s", frame);
    char rows[8][256];
    cr_assert_eq(section(frame, "TENANT ", rows, 8), 4, "%s", frame);
    cr_assert_str_eq(rows[3], "\u2026 4 more");
    cr_assert(strstr(rows[0], "tenant-with-a-rather-lon ") == rows[0], "id not cut to 24: '%s'", rows[0]);
    cr_assert_eq(section(frame, "SLOT ", rows, 8), 4, "%s", frame);
    cr_assert_str_eq(rows[3], "\u2026 4 more");
    for (int i = 0; i < TENANTS; i++)
        cr_assert_eq(fairsem_release(t[i], s[i]), 0);
    remove_segment(sem, NULL, (fairsem_slot_t){0});
}

/* --watch=0.2 --json: one object per line, about every 0.2 s, until
 * SIGINT (then exit 0).  The dump holds no process record meanwhile. */
Test(tools, dump_watch_json_lines_until_sigint)
{
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_t *sem = new_segment("tl-watch", 2, 0, "watched", &t, &s);
    unsigned procs_before = stats_of(sem).attached_procs;

    struct cmd c;
    uint64_t t0 = test_now_ns();
    tool_start(&c, "dump", g_seg, "--watch=0.2", "--json", NULL);
    enum { LINES = 4 };
    static char lines[LINES][4096];
    char all[LINES * 4096 + 1] = "";
    for (int i = 0; i < LINES; i++) {
        int n = read_line(c.out, lines[i], sizeof lines[i], TEST_PATIENCE_MS);
        cr_assert_gt(n, 0, "line %d never came", i);
        cr_assert_eq(lines[i][0], '{');
        cr_assert_eq(lines[i][n - 1], '}');
        cr_assert(strstr(lines[i], "\"in_use\":1,"), "%s", lines[i]);
        strcat(all, lines[i]);
        strcat(all, "\n");
        if (i == 0)
            cr_assert_eq(stats_of(sem).attached_procs, procs_before, "dump --watch took a process record");
    }
    double secs = (double)(test_now_ns() - t0) / 1e9;
    cr_log_info("%d lines in %.2f s", LINES, secs);
    cr_assert_geq(secs, 0.55, "%d refreshes in %.2f s: faster than every 0.2 s", LINES, secs);
    cr_assert_eq(stats_of(sem).attached_procs, procs_before);

    cr_assert_eq(kill(c.pid, SIGINT), 0);
    int status = wait_exit(c.pid, TEST_PATIENCE_MS);
    cr_assert_neq(status, -1, "dump --watch did not stop on SIGINT");
    cr_assert(WIFEXITED(status), "killed by signal %d instead of stopping", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 0);
    /* Whatever came after the lines read is whole lines too. */
    char more[4096];
    while (read_line(c.out, more, sizeof more, 100) >= 0) {
        cr_assert(more[0] == '{' && more[strlen(more) - 1] == '}', "'%s'", more);
    }
    close(c.out);
    close(c.err);
    const char *args[] = {g_seg, NULL};
    cr_assert(json_ok(all,
                      "    assert d['name'] == a[0] and d['max_slots'] == 2 and d['in_use'] == 1\n"
                      "    assert len(d['holders']) == 1 and d['holders'][0]['tenant'] == 'watched'\n",
                      args));

    /* Usage: a bad interval. */
    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--watch=0", NULL), 2);
    cr_assert_eq(tool(&r, "dump", g_seg, "--watch=x", NULL), 2);
    remove_segment(sem, t, s);
}

/* dump (and check, reap --dry-run) open read-only: no process record is
 * taken, a 0444 segment is enough, and (when this runs as root) another
 * user with read permission only can run them while one without cannot. */
Test(tools, dump_needs_only_read_permission)
{
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    fairsem_t *sem = new_segment("tl-ro", 2, 0644, "ro", &t, &s);
    fairsem_stats_t before = stats_of(sem);
    cr_assert_eq(before.attached_procs, 1u);

    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
    cr_assert_eq(stats_of(sem).attached_procs, before.attached_procs);
    const char *p = strstr(r.out, "\"procs\":[{\"record\":");
    cr_assert(p, "%s", r.out);
    cr_assert_null(strstr(p + strlen("\"procs\":[{\"record\":"), "{\"record\":"),
                   "procs lists more than this process: %s", r.out);
    char me[48];
    snprintf(me, sizeof me, "\"pid\":%d,\"alive\":true}],", (int)getpid());
    cr_assert(strstr(r.out, me), "%s", r.out);

    char path[FAIRSEM_NAME_MAX + 16];
    shm_path(path, sizeof path, g_seg);
    cr_assert_eq(chmod(path, 0444), 0);
    cr_assert_eq(tool(&r, "dump", g_seg, NULL), 0, "%s", r.err);
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "%s", r.err);
    cr_assert_eq(tool(&r, "reap", g_seg, "--dry-run", NULL), 0, "%s", r.err);
    cr_assert_eq(stats_of(sem).attached_procs, before.attached_procs);

    if (geteuid() == 0) {
        uid_t nobody = 65534;
        cr_assert_eq(chmod(path, 0644), 0);
        cr_assert_eq(tool_as(nobody, &r, "dump", g_seg, NULL), 0, "dump as another user: %s", r.err);
        cr_assert(strstr(r.out, "in use 1"), "%s", r.out);
        cr_assert_eq(tool_as(nobody, &r, "dump", g_seg, "--json", NULL), 0, "%s", r.err);
        cr_assert_eq(tool_as(nobody, &r, "check", g_seg, NULL), 0, "%s", r.err);
        cr_assert_eq(tool_as(nobody, &r, "reap", g_seg, "--dry-run", NULL), 0, "%s", r.err);
        cr_assert_eq(tool_as(nobody, &r, "reap", g_seg, NULL), 5, "reap needs write permission: %s", r.err);
        cr_assert_eq(tool_as(nobody, &r, "run", g_seg, "--tenant", "x", "--", "/bin/true", NULL), 5, "%s", r.err);
        cr_assert_eq(chmod(path, 0600), 0);
        cr_assert_eq(tool_as(nobody, &r, "dump", g_seg, NULL), 5, "dump without read permission");
        cr_assert(strstr(r.err, g_seg), "%s", r.err);
        cr_assert_eq(tool_as(nobody, &r, "check", g_seg, NULL), 5);
        cr_assert_eq(stats_of(sem).attached_procs, before.attached_procs);
    } else {
        cr_log_warn("not root: the other-user part is skipped");
    }
    remove_segment(sem, t, s);
}

/* ------------------------------------------------------------ check, reap */

Test(tools, check_reports_dead_holder_until_reaped)
{
    fairsem_t *sem = new_segment("tl-check", 2, 0, NULL, NULL, NULL);
    struct result r;
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "healthy: %s%s", r.out, r.err);
    char want[400];
    snprintf(want, sizeof want, "%s: ok (2 slots: 0 in use, 2 free, 0 waiting)\n", g_seg);
    cr_assert_str_eq(r.out, want);

    struct worker w;
    cr_assert(spawn_ctl(&w, g_seg, "doomed", "d"));
    unsigned slot = (unsigned)worker_expect(&w, 'a', 'A');
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "a live holder is fine: %s", r.out);
    pid_t dead = w.pid;
    worker_kill(&w);

    /* Nobody has reaped: check sees the dead holder, every time, and tells
     * it apart from a violated invariant: a warning, exit 0 (18 --strict). */
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "check after SIGKILL: %s", r.out);
        cr_assert(strstr(r.out, "warning [dead]: "), "no dead line: %s", r.out);
        cr_assert_null(strstr(r.out, "violation"), "%s", r.out);
        snprintf(want, sizeof want, "%s: 1 dead processes not yet reaped", g_seg);
        cr_assert(strstr(r.out, want), "%s", r.out);
        cr_assert_eq(tool(&r, "check", g_seg, "--strict", NULL), 16 + 2, "--strict after SIGKILL: %s", r.out);
        cr_assert(strstr(r.out, "warning [dead]: "), "%s", r.out);
    }
    cr_assert(tool(&r, "dump", g_seg, NULL) == 0);
    char rows[8][256];
    cr_assert_eq(section(r.out, "SLOT ", rows, 8), 1, "%s", r.out);
    cr_assert(strstr(rows[0], "doomed") && strstr(rows[0], " NO"), "'%s'", rows[0]);

    /* --dry-run says what it would do and does nothing. */
    cr_assert_eq(tool(&r, "reap", g_seg, "--dry-run", NULL), 0, "%s", r.err);
    cr_log_info("reap --dry-run:\n%s", r.out);
    char line[512];
    snprintf(line, sizeof line, "would free slot %u held for doomed by pid %d\n", slot, (int)dead);
    cr_assert(strstr(r.out, line), "'%s' missing from: %s", line, r.out);
    snprintf(line, sizeof line, "(pid %d)\n", (int)dead);
    cr_assert(strstr(r.out, line), "%s", r.out);
    snprintf(line, sizeof line, "%s: would reap 1 dead processes, 1 slots, 0 queued requests\n", g_seg);
    cr_assert(strstr(r.out, line), "%s", r.out);
    cr_assert_eq(stats_of(sem).slots_in_use, 1u, "--dry-run reclaimed the slot");
    cr_assert_eq(tool(&r, "check", g_seg, "--strict", NULL), 18, "after --dry-run: %s", r.out);

    /* The real thing. */
    cr_assert_eq(tool(&r, "reap", g_seg, NULL), 0, "%s", r.err);
    snprintf(line, sizeof line, "%s: reaped 1 dead processes, 1 slots, 0 queued requests, 1 registrations\n",
             g_seg);
    cr_assert_str_eq(r.out, line);
    fairsem_stats_t st = stats_of(sem);
    cr_assert_eq(st.slots_in_use, 0u);
    cr_assert_eq(st.attached_procs, 1u);
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "after reap: %s", r.out);
    cr_assert_eq(tool(&r, "reap", g_seg, NULL), 0);
    snprintf(line, sizeof line, "%s: reaped 0 dead processes, 0 slots, 0 queued requests, 0 registrations\n",
             g_seg);
    cr_assert_str_eq(r.out, line);
    remove_segment(sem, NULL, (fairsem_slot_t){0});
}

/* --------------------------------------------------------------------- rm */

Test(tools, rm_refuses_while_live_processes_are_attached)
{
    fairsem_t *sem = new_segment("tl-rm", 1, 0, NULL, NULL, NULL);
    struct result r;
    cr_assert_eq(tool(&r, "rm", g_seg, NULL), 6);
    cr_assert(strstr(r.err, g_seg) && strstr(r.err, "1 live"), "%s", r.err);
    cr_assert(exists(g_seg), "rm removed it anyway");
    cr_assert_eq(fairsem_check_linked(sem), 0);
    cr_assert_eq(tool(&r, "rm", g_seg, "--force", NULL), 0, "%s", r.err);
    cr_assert_not(exists(g_seg));
    cr_assert_eq(fairsem_check_linked(sem), FAIRSEM_EUNLINKED);
    /* Attached processes go on working. */
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    cr_assert_eq(fairsem_tenant_register(sem, "after", 1, &t), 0);
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    cr_assert_eq(fairsem_release(t, s), 0);
    fairsem_close(sem);
    g_seg[0] = '\0';

    /* Nobody attached (created by the command): plain rm works. */
    test_name(g_seg, sizeof g_seg, "tl-rm2");
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "1", NULL), 0);
    cr_assert_eq(tool(&r, "rm", g_seg, NULL), 0, "%s", r.err);
    cr_assert_not(exists(g_seg));
    cr_assert_eq(tool(&r, "rm", g_seg, NULL), 3);
    g_seg[0] = '\0';
}

/* ------------------------------------------------------- errors and usage */

Test(tools, missing_segment_is_exit_3)
{
    test_name(g_seg, sizeof g_seg, "tl-missing");
    struct result r;
    const char *cmds[][3] = {{"dump", NULL, NULL},   {"dump", "--json", NULL},    {"check", NULL, NULL},
                             {"reap", NULL, NULL},   {"reap", "--dry-run", NULL}, {"rm", NULL, NULL},
                             {"rm", "--force", NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int code = tool(&r, cmds[i][0], g_seg, cmds[i][1], NULL);
        cr_assert_eq(code, 3, "%s %s: exit %d", cmds[i][0], cmds[i][1] ? cmds[i][1] : "", code);
        cr_assert(strstr(r.err, g_seg), "%s: %s", cmds[i][0], r.err);
    }
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "t", "--", "/bin/true", NULL), 3);
    cr_assert_not(exists(g_seg));
    g_seg[0] = '\0';
}

static void write_file(const char *path, const char *text, size_t times)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
    for (size_t i = 0; i < times; i++)
        cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

Test(tools, not_a_fairsem_segment_is_exit_4)
{
    char path[FAIRSEM_NAME_MAX + 16];
    struct result r;
    const char *cmds[][3] = {{"dump", NULL, NULL},   {"dump", "--json", NULL},    {"check", NULL, NULL},
                             {"reap", NULL, NULL},   {"reap", "--dry-run", NULL}, {"rm", NULL, NULL},
                             {"rm", "--force", NULL}};
    /* Text, large and small. */
    for (int k = 0; k < 2; k++) {
        test_name(g_seg, sizeof g_seg, "tl-junk");
        shm_path(path, sizeof path, g_seg);
        write_file(path, "this is not a fairsem segment\n", k ? 1 : 4096);
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
            int code = tool(&r, cmds[i][0], g_seg, cmds[i][1], NULL);
            cr_assert_eq(code, 4, "%s %s on junk: exit %d (%s)", cmds[i][0], cmds[i][1] ? cmds[i][1] : "", code,
                         r.err);
            cr_assert(strstr(r.err, g_seg), "%s", r.err);
        }
        cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "t", "--", "/bin/true", NULL), 4);
        cr_assert(exists(g_seg), "a refused rm removed the file");
        cr_assert_eq(tool(&r, "list", NULL), 0);
        cr_assert_null(strstr(r.out, g_seg), "list shows a file that is not a segment: %s", r.out);
        cr_assert_eq(unlink(path), 0);
    }

    /* A real segment of another layout version. */
    test_name(g_seg, sizeof g_seg, "tl-ver");
    cr_assert_eq(tool(&r, "create", g_seg, "--slots", "1", NULL), 0);
    shm_path(path, sizeof path, g_seg);
    int fd = open(path, O_WRONLY);
    cr_assert_geq(fd, 0);
    uint32_t v = FS_LAYOUT_VERSION + 1;
    cr_assert_eq(pwrite(fd, &v, sizeof v, offsetof(struct fs_header, layout_version)), (ssize_t)sizeof v);
    close(fd);
    cr_assert_eq(tool(&r, "dump", g_seg, NULL), 4, "%s", r.err);
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 4, "%s", r.err);
    /* Its leases may live elsewhere: plain rm cannot tell who is attached. */
    cr_assert_eq(tool(&r, "rm", g_seg, NULL), 4, "%s", r.err);
    cr_assert(exists(g_seg));
    cr_assert_eq(tool(&r, "rm", g_seg, "--force", NULL), 0, "%s", r.err);
    cr_assert_not(exists(g_seg));
    g_seg[0] = '\0';
}

Test(tools, bad_usage_is_exit_2)
{
    test_name(g_seg, sizeof g_seg, "tl-usage");
    struct result r;
    cr_assert_eq(tool(&r, NULL), 2, "no command");
    cr_assert(strstr(r.err, "usage: fairsem"), "%s", r.err);
    cr_assert_eq(tool(&r, "frobnicate", NULL), 2);
    cr_assert(strstr(r.err, "frobnicate"), "%s", r.err);
    const char *bad[][6] = {
        {"dump", NULL},
        {"dump", g_seg, "--bogus", NULL},
        {"dump", g_seg, g_seg, NULL},
        {"check", NULL},
        {"check", g_seg, "--force", NULL},
        {"reap", NULL},
        {"reap", g_seg, "--force", NULL},
        {"rm", NULL},
        {"rm", g_seg, "--dry-run", NULL},
        {"run", g_seg, "--", "/bin/true", NULL},           /* no --tenant */
        {"run", g_seg, "--tenant", "t", NULL},             /* no CMD */
        {"run", "--tenant", "t", "--", "/bin/true", NULL}, /* no NAME */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int code = tool(&r, bad[i][0], bad[i][1], bad[i][2], bad[i][3], bad[i][4], NULL);
        cr_assert_eq(code, 2, "case %zu (%s %s %s): exit %d", i, bad[i][0], bad[i][1] ? bad[i][1] : "",
                     bad[i][1] && bad[i][2] ? bad[i][2] : "", code);
        cr_assert_neq(r.err[0], '\0', "case %zu: no message", i);
    }
    const char *runbad[][10] = {
        {"run", g_seg, "--tenant", "t", "-n", "-w", "1", "--", "/bin/true", NULL},
        {"run", g_seg, "--tenant", "t", "-w", "soon", "--", "/bin/true", NULL},
        {"run", g_seg, "--tenant", "t", "-E", "256", "--", "/bin/true", NULL},
        {"run", g_seg, "--tenant", "t", "--weight", "0", "--", "/bin/true", NULL},
    };
    for (size_t i = 0; i < sizeof runbad / sizeof runbad[0]; i++) {
        int code = tool(&r, runbad[i][0], runbad[i][1], runbad[i][2], runbad[i][3], runbad[i][4], runbad[i][5],
                        runbad[i][6], runbad[i][7], runbad[i][8], NULL);
        cr_assert_eq(code, 2, "run case %zu: exit %d", i, code);
    }
    /* Help is not an error. */
    cr_assert_eq(tool(&r, "--help", NULL), 0);
    cr_assert(strstr(r.out, "usage: fairsem COMMAND"), "%s", r.out);
    const char *cmds[] = {"create", "list", "dump", "check", "reap", "rm", "run"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        cr_assert_eq(tool(&r, cmds[i], "--help", NULL), 0, "%s --help", cmds[i]);
        char want[64];
        snprintf(want, sizeof want, "usage: fairsem %s", cmds[i]);
        cr_assert_eq(strncmp(r.out, want, strlen(want)), 0, "%s --help: %s", cmds[i], r.out);
    }
    cr_assert_not(exists(g_seg));
    g_seg[0] = '\0';
}

/* -------------------------------------------------------------------- run */

/* A segment of `slots` slots with this process attached (tenant "local"). */
static fairsem_t *run_segment(const char *what, unsigned slots, fairsem_tenant_t **t)
{
    return new_segment(what, slots, 0, "local", t, NULL);
}

static void end_run_segment(fairsem_t *sem)
{
    fairsem_stats_t st = stats_of(sem);
    cr_assert_eq(st.slots_in_use, 0u, "a slot is still held");
    cr_assert_eq(st.attached_procs, 1u, "a wrapper's record is left");
    remove_segment(sem, NULL, (fairsem_slot_t){0});
}

Test(tools, run_exits_with_the_command_status)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-run", 1, &t);
    struct result r;
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/bin/sh", "-c", "exit 7", NULL), 7, "%s", r.err);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/bin/sh", "-c", "kill -TERM $$", NULL), 143,
                 "%s", r.err);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/bin/sh", "-c", "echo out; echo err >&2", NULL),
                 0);
    cr_assert_str_eq(r.out, "out\n");
    cr_assert_str_eq(r.err, "err\n");
    /* CMD's own options stay CMD's. */
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/bin/echo", "-n", "x", NULL), 0);
    cr_assert_str_eq(r.out, "x");
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/nonexistent/cmd", NULL), 127);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "sh", "-c", "exit 3", NULL), 3,
                 "CMD is looked up in PATH");
    end_run_segment(sem);
}

Test(tools, run_exports_name_tenant_and_slot)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-env", 2, &t);
    fairsem_slot_t mine;
    cr_assert_eq(fairsem_try_acquire(t, &mine), 0);
    unsigned other = 1 - fairsem_slot_index(mine);
    struct result r;
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "env-t", "--", "/bin/sh", "-c",
                      "echo \"$FAIRSEM_NAME|$FAIRSEM_TENANT|$FAIRSEM_SLOT\"", NULL),
                 0, "%s", r.err);
    char want[400];
    snprintf(want, sizeof want, "%s|env-t|%u\n", g_seg, other);
    cr_assert_str_eq(r.out, want);
    cr_assert_eq(fairsem_release(t, mine), 0);
    end_run_segment(sem);
}

Test(tools, run_nonblocking_and_timeout_conflicts)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-conflict", 1, &t);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    struct result r;
    /* Quiet, as flock -n: exit 1 and nothing on stderr (unless -v). */
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-n", "--", "/bin/echo", "ran", NULL), 1);
    cr_assert_str_eq(r.out, "", "CMD ran without a slot");
    cr_assert_str_eq(r.err, "");
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-n", "-v", "--", "/bin/echo", "ran", NULL), 1);
    cr_assert(strstr(r.err, g_seg) && strstr(r.err, "late"), "%s", r.err);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-n", "-E", "9", "--", "/bin/echo", "ran", NULL), 9);
    cr_assert_str_eq(r.out, "");

    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-w", "0.2", "--", "/bin/echo", "ran", NULL), 1);
    cr_log_info("-w 0.2 gave up after %.3f s", r.secs);
    cr_assert_geq(r.secs, 0.19, "gave up after %.3f s", r.secs);
    cr_assert_lt(r.secs, 3.0, "gave up after %.3f s", r.secs);
    cr_assert_str_eq(r.out, "");
    cr_assert_str_eq(r.err, "");
    cr_assert_eq(
        tool(&r, "run", g_seg, "--tenant", "late", "-w", "0.2", "-E", "75", "--", "/bin/echo", "ran", NULL), 75);
    cr_assert_geq(r.secs, 0.19);
    cr_assert_eq(stats_of(sem).waiters, 0u, "a timed-out wrapper left its request queued");

    /* With the slot free, -n and -w run the command. */
    cr_assert_eq(fairsem_release(t, s), 0);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-n", "-E", "9", "--", "/bin/echo", "ran", NULL), 0);
    cr_assert_str_eq(r.out, "ran\n");
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "late", "-w", "0.2", "--", "/bin/echo", "ran", NULL), 0);
    cr_assert_str_eq(r.out, "ran\n");
    end_run_segment(sem);
}

/* The slot is held while CMD runs and free after; SIGTERM to the wrapper
 * reaches CMD (the wrapper then exits 143 itself). */
Test(tools, run_holds_the_slot_and_forwards_sigterm)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-hold", 1, &t);
    struct cmd c;
    tool_start(&c, "run", g_seg, "--tenant", "worker", "--", "/bin/sh", "-c",
               "echo \"$FAIRSEM_SLOT\"; exec sleep 30", NULL);
    char line[64];
    cr_assert_gt(read_line(c.out, line, sizeof line, TEST_PATIENCE_MS), 0, "CMD never started");
    cr_assert_str_eq(line, "0");

    fairsem_stats_t st;
    fairsem_tenant_stats_t ts[4];
    size_t n;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 4, &n), 0);
    cr_assert_eq(st.slots_in_use, 1u);
    cr_assert_eq(st.attached_procs, 2u);
    const fairsem_tenant_stats_t *w = find_tenant(ts, n, "worker");
    cr_assert(w && w->held == 1u);
    fairsem_slot_t s;
    cr_assert_eq(fairsem_try_acquire(t, &s), -EAGAIN, "the slot is not held while CMD runs");
    struct result r;
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "%s", r.out);

    uint64_t t0 = test_now_ns();
    cr_assert_eq(kill(c.pid, SIGTERM), 0);
    int status = wait_exit(c.pid, TEST_PATIENCE_MS);
    cr_assert_neq(status, -1, "the wrapper did not end after SIGTERM");
    cr_assert(WIFEXITED(status), "the wrapper died of signal %d instead of forwarding it", WTERMSIG(status));
    cr_assert_eq(WEXITSTATUS(status), 143, "CMD was not ended by the forwarded SIGTERM");
    cr_log_info("SIGTERM -> wrapper exit in %.1f ms", (double)(test_now_ns() - t0) / 1e6);
    cr_assert_lt(read_line(c.out, line, sizeof line, 1000), 0, "CMD still writing");
    close(c.out);
    close(c.err);

    cr_assert_eq(fairsem_try_acquire(t, &s), 0, "the slot is not free after the wrapper ended");
    cr_assert_eq(fairsem_release(t, s), 0);
    end_run_segment(sem);
}

/* SIGKILL the wrapper: as with flock(1), the slot stays held while CMD
 * lives (CMD inherited the lease), and comes back when CMD ends. */
Test(tools, run_killed_wrapper_keeps_the_slot_until_the_command_ends)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-kill", 1, &t);
    struct cmd c;
    tool_start(&c, "run", g_seg, "--tenant", "worker", "-c", "echo up; exec sleep 30", NULL);
    char line[64];
    cr_assert_gt(read_line(c.out, line, sizeof line, TEST_PATIENCE_MS), 0, "CMD never started");
    cr_assert(kill_wait(c.pid));
    cr_assert_eq(kill(-c.pid, 0), 0, "CMD died with the wrapper (nothing to prove)");

    /* The wrapper is dead and CMD runs: nothing is reapable, the slot is held. */
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.procs, 0u, "the running command's record was reaped");
    fairsem_slot_t s;
    cr_assert_eq(fairsem_acquire_timeout(t, 100000000u, &s), -ETIMEDOUT,
                 "the slot came back while the command still runs");
    struct result r;
    cr_assert_eq(tool(&r, "check", g_seg, "--strict", NULL), 0, "%s", r.out);
    cr_assert_eq(stats_of(sem).slots_in_use, 1u);

    /* CMD ends: the last holder of the lease is gone, the slot comes back
     * (a blocked acquire finds the dead holder within its poll). */
    cr_assert_eq(kill(-c.pid, SIGTERM), 0);
    uint64_t t0 = test_now_ns();
    cr_assert_eq(fairsem_acquire_timeout(t, TEST_PATIENCE_NS, &s), 0,
                 "the slot did not come back after CMD ended");
    cr_log_info("slot back %.1f ms after SIGTERM to CMD", (double)(test_now_ns() - t0) / 1e6);
    close(c.out);
    close(c.err);
    cr_assert_eq(fairsem_release(t, s), 0);
    cr_assert_eq(fairsem_reap(sem, NULL), 0);
    cr_assert_eq(tool(&r, "check", g_seg, "--strict", NULL), 0, "%s", r.out);
    end_run_segment(sem);
}

/* A pool with a custom share rule stores the rule's shares, so the command
 * (which has no such function) shows real shares and operates the pool. */
static unsigned two_each(unsigned max_slots, unsigned demanding, void *arg)
{
    (void)max_slots, (void)demanding, (void)arg;
    return 2;
}

Test(tools, custom_rule_pool_is_operable)
{
    test_name(g_seg, sizeof g_seg, "tl-rule");
    fairsem_options_t o = {.max_slots = 4, .share_fn_name = "two-each", .share_fn = two_each};
    fairsem_t *sem;
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    cr_assert_eq(fairsem_tenant_register(sem, "alpha", 1, &t), 0);
    cr_assert_eq(fairsem_try_acquire(t, &s), 0);
    struct result r;
    cr_assert_eq(tool(&r, "dump", g_seg, NULL), 0, "%s", r.err);
    cr_assert(strstr(r.out, "rule two-each"), "%s", r.out);
    char rows[4][256];
    cr_assert_eq(section(r.out, "TENANT ", rows, 4), 1, "%s", r.out);
    char id[64];
    unsigned weight, share, held, waiting;
    cr_assert_eq(sscanf(rows[0], "%63s %u %u %u %u", id, &weight, &share, &held, &waiting), 5, "'%s'", rows[0]);
    cr_assert_str_eq(id, "alpha");
    cr_assert_eq(share, 2u, "the stored rule's share, not 0: '%s'", rows[0]);
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "%s%s", r.out, r.err);
    cr_assert_eq(tool(&r, "reap", g_seg, NULL), 0, "%s%s", r.out, r.err);
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "--", "/bin/true", NULL), 0, "%s", r.err);
    remove_segment(sem, t, s);
}

/* fairsem_lease_dup, which run hands to its command: a descriptor on the
 * lease's open file description, refused where there is no lease. */
Test(tools, lease_dup_gives_the_lease_descriptor_only_to_an_attached_handle)
{
    cr_assert_eq(fairsem_lease_dup(NULL), -EINVAL);
    fairsem_t *sem = new_segment("tl-lease", 1, 0, NULL, NULL, NULL);
    int fd = fairsem_lease_dup(sem);
    cr_assert_geq(fd, 3, "%s", fairsem_strerror(fd));
    cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "the caller chooses who inherits it");
    struct stat a, b;
    char path[FAIRSEM_NAME_MAX + 16];
    shm_path(path, sizeof path, g_seg);
    cr_assert_eq(fstat(fd, &a), 0);
    cr_assert_eq(stat(path, &b), 0);
    cr_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "not the segment file");
    close(fd);
    fairsem_t *reader;
    fairsem_options_t ro = {.flags = FAIRSEM_READONLY};
    cr_assert_eq(fairsem_open(g_seg, &ro, &reader), 0);
    cr_assert_eq(fairsem_lease_dup(reader), -EPERM, "a read-only handle has no lease");
    fairsem_close(reader);
    remove_segment(sem, NULL, (fairsem_slot_t){0});
}

/* -c runs COMMAND through /bin/sh -c, like flock -c. */
Test(tools, run_dash_c_runs_a_shell_command)
{
    fairsem_tenant_t *t;
    fairsem_t *sem = run_segment("tl-dashc", 1, &t);
    struct result r;
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "-c", "echo \"$FAIRSEM_SLOT\" | tr 0 z; exit 5", NULL),
                 5, "%s", r.err);
    cr_assert_str_eq(r.out, "z\n");
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", "job", "-c", "true", "--", "/bin/true", NULL), 2);
    cr_assert(strstr(r.err, "-c 'COMMAND' and CMD exclude each other"), "%s", r.err);
    end_run_segment(sem);
}

/* Operator-facing messages name the argument and its limit, come without
 * the pool name for option errors, and show the subcommand's own usage. */
Test(tools, messages_name_the_argument_and_its_limit)
{
    test_name(g_seg, sizeof g_seg, "tl-msg");
    struct result r;
    char long_id[71];
    memset(long_id, 'x', 70);
    long_id[70] = '\0';
    cr_assert_eq(tool(&r, "run", g_seg, "--tenant", long_id, "--", "/bin/true", NULL), 2);
    cr_assert(strstr(r.err, "is 70 bytes; the limit is 63"), "%s", r.err);
    cr_assert(strstr(r.err, "usage: fairsem run "), "%s", r.err);
    cr_assert_null(strstr(r.err, "File name too long"), "%s", r.err);
    const struct {
        const char *args[4];
        const char *says;
    } cases[] = {
        {{"--slots", "0"}, "--slots '0' is out of range: 1 to 65535"},
        {{"--slots", "70000"}, "--slots '70000' is out of range: 1 to 65535"},
        {{"--slots", "4", "--min-share", "9"}, "--min-share 9 is out of range: 1 to --slots (4)"},
        {{"--slots", "4", "--max-tenants", "5000"}, "--max-tenants '5000' is out of range: 1 to 4095"},
        {{"--slots", "x"}, "--slots 'x' is out of range"},
        {{"--slots", "4", "--mode", "999"}, "--mode '999' is not octal"},
        {{"--slots", "4", "--bogus"}, "unknown option '--bogus'"},
        {{"--slots"}, "option '--slots' needs a value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int code = tool(&r, "create", g_seg, cases[i].args[0], cases[i].args[1], cases[i].args[2],
                        cases[i].args[3], NULL);
        cr_assert_eq(code, 2, "case %zu: exit %d", i, code);
        char want[200];
        snprintf(want, sizeof want, "fairsem create: %s", cases[i].says);
        cr_assert_eq(strncmp(r.err, want, strlen(want)), 0, "case %zu: '%s'", i, r.err);
        cr_assert(strstr(r.err, "usage: fairsem create "), "case %zu: %s", i, r.err);
        cr_assert_null(strstr(r.err, g_seg), "case %zu: option error prefixed with the pool name: %s", i, r.err);
    }
    const char *sub[][3] = {{"dump", "--bogus"}, {"check", "--bogus"}, {"reap", "--bogus"},
                            {"rm", "--bogus"},   {"list", "extra"},    {"run", "-Q"}};
    for (size_t i = 0; i < sizeof sub / sizeof sub[0]; i++) {
        cr_assert_eq(tool(&r, sub[i][0], g_seg, sub[i][1], NULL), 2);
        char want[64];
        snprintf(want, sizeof want, "usage: fairsem %s", sub[i][0]);
        cr_assert(strstr(r.err, want), "%s: %s", sub[i][0], r.err);
        cr_assert_null(strstr(r.err, "usage: fairsem COMMAND"), "%s: %s", sub[i][0], r.err);
    }
    cr_assert_eq(tool(&r, "dump", "no-slash", NULL), 2);
    cr_assert(strstr(r.err, "NAME must be one '/'"), "%s", r.err);
    cr_assert_not(exists(g_seg));
    g_seg[0] = '\0';
}

/* A violated invariant is a violation even when no process is dead. */
Test(tools, check_tells_a_violation_from_an_unreaped_holder)
{
    fairsem_t *sem = new_segment("tl-viol", 2, 0, NULL, NULL, NULL);
    char path[FAIRSEM_NAME_MAX + 16];
    shm_path(path, sizeof path, g_seg);
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0);
    struct fs_header h;
    cr_assert_eq(pread(fd, &h, sizeof h, 0), (ssize_t)sizeof h);
    uint64_t malformed = 3ull << 62, free_word = 0;
    off_t at = (off_t)(h.off_slots + sizeof(uint64_t));
    cr_assert_eq(pwrite(fd, &malformed, sizeof malformed, at), (ssize_t)sizeof malformed);
    struct result r;
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 16 + 1, "%s", r.out);
    cr_assert(strstr(r.out, "violation [slots]: slot 1"), "%s", r.out);
    cr_assert_null(strstr(r.out, "warning"), "%s", r.out);
    cr_assert_eq(pwrite(fd, &free_word, sizeof free_word, at), (ssize_t)sizeof free_word);
    close(fd);
    cr_assert_eq(tool(&r, "check", g_seg, NULL), 0, "%s", r.out);
    remove_segment(sem, NULL, (fairsem_slot_t){0});
}
