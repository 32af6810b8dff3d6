/*
 * test_exporter.c - `fairsem metrics`, `fairsem serve` and the --watch
 * pictures, checked by real consumers: promtool (Prometheus' own linter and
 * text parser) on the 0.0.4 text, Python's prometheus_client OpenMetrics
 * parser on the OpenMetrics text, a Prometheus server scraping `serve`,
 * node_exporter's textfile collector reading `metrics --textfile`, and
 * HTTP requests over a real socket to `fairsem serve` listening on
 * 127.0.0.1 (port 0: the one it prints).
 *
 * The pools are driven through the C API in this process, and by
 * prog_worker ctl processes where one has to die (procs.h).
 */
#define _GNU_SOURCE
#include "command.h" /* procs.h, common.h, Criterion, signals, pipes */

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#define PROMTOOL "/usr/bin/promtool"
#define PROMETHEUS "/usr/bin/prometheus"
#define NODE_EXPORTER "/usr/bin/prometheus-node-exporter"
#define PYTHON "/usr/bin/python3"

static char g_seg[FAIRSEM_NAME_MAX + 1];

static void cleanup(void)
{
    kill_command_groups();
    kill_all_unlink(g_seg);
}

TestSuite(exporter, .fini = cleanup, .timeout = 120);

/* ------------------------------------------------------------ consumers */

/* promtool check metrics accepts text (its complaints are logged). */
static bool promtool_ok(const char *text)
{
    static struct result r;
    char *argv[] = {(char *)PROMTOOL, (char *)"check", (char *)"metrics", NULL};
    run_argv(&r, argv, text, 0);
    if (r.code != 0)
        cr_log_error("promtool: %s%s\non:\n%.4000s", r.out, r.err, text);
    return r.code == 0;
}

/* Python's prometheus_client parses text as OpenMetrics; `script` then
 * runs with the families in `fams` (a dict by name) and the extra
 * arguments in `a`. */
static bool openmetrics_ok(const char *text, const char *script, const char *const extra[])
{
    static struct result r;
    char prog[8192];
    snprintf(prog, sizeof prog,
             "import sys\n"
             "from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse\n"
             "a = sys.argv[1:]\n"
             "text = sys.stdin.read()\n"
             "assert text.endswith('# EOF\\n'), 'no # EOF at the end'\n"
             "fams = {f.name: f for f in parse(text)}\n"
             "%s\n",
             script ? script : "");
    char *argv[16] = {(char *)PYTHON, (char *)"-c", prog};
    size_t n = 3;
    for (size_t i = 0; extra && extra[i] && n < 15; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    run_argv(&r, argv, text, 0);
    if (r.code != 0)
        cr_log_error("prometheus_client: %s%s\non:\n%.4000s", r.out, r.err, text);
    return r.code == 0;
}

/* The value of the sample `series` (name and labels, exactly as written)
 * in text; -1 when there is none. */
static double sample(const char *text, const char *series)
{
    size_t len = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, len) && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    return -1;
}

/* sample() of NAME{pool="<g_seg>"LABELS}, e.g. pool_sample(t, "fairsem_up", ""). */
static double pool_sample(const char *text, const char *name, const char *labels)
{
    char series[1024];
    snprintf(series, sizeof series, "%s{pool=\"%s\"%s}", name, g_seg, labels);
    return sample(text, series);
}

/* How many samples of text start with `prefix`. */
static int count_samples(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        n += !strncmp(p, prefix, len);
    return n;
}

/* ---------------------------------------------------------------- HTTP */

struct http_reply {
    int status;
    char head[4096]; /* status line and headers */
    char *body;      /* into all */
    size_t body_len;
    char all[1 << 19];
};

/* Send `request` (whole, with its blank line) to 127.0.0.1:port and read
 * the reply to EOF (every request here says Connection: close); status 0
 * when the server closed the connection without a reply. */
static void http_raw(unsigned port, const char *request, size_t len, struct http_reply *r)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "connect: %s", strerror(errno));
    for (size_t done = 0; done < len;) {
        ssize_t n = send(fd, request + done, len - done, MSG_NOSIGNAL);
        if (n < 0) /* a server that refuses a request may close before reading it all */
            break;
        done += (size_t)n;
    }
    size_t got = 0;
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    while (got < sizeof r->all - 1 && test_now_ns() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = recv(fd, r->all + got, sizeof r->all - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    r->all[got] = '\0';
    r->status = 0;
    r->head[0] = '\0';
    r->body = r->all;
    r->body_len = 0;
    if (got == 0) /* closed without a reply */
        return;
    char *blank = strstr(r->all, "\r\n\r\n");
    cr_assert_not_null(blank, "no end of headers in: %.300s", r->all);
    snprintf(r->head, sizeof r->head, "%.*s", (int)(blank - r->all), r->all);
    r->body = blank + 4;
    r->body_len = got - (size_t)(r->body - r->all);
    cr_assert_eq(sscanf(r->all, "HTTP/1.%*d %d", &r->status), 1, "no status line: %.200s", r->all);
}

static void http(unsigned port, const char *method, const char *path, const char *accept, struct http_reply *r)
{
    char request[1024];
    int len =
        snprintf(request, sizeof request, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s%s%s\r\n",
                 method, path, accept ? "Accept: " : "", accept ? accept : "", accept ? "\r\n" : "");
    http_raw(port, request, (size_t)len, r);
}

/* The value of header `name` (case as sent by the server) in r, or "". */
static const char *header(const struct http_reply *r, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof key, "\r\n%s: ", name);
    const char *p = strcasestr(r->head, key);
    out[0] = '\0';
    if (p)
        snprintf(out, cap, "%.*s", (int)strcspn(p + strlen(key), "\r"), p + strlen(key));
    return out;
}

/* `fairsem serve --listen 127.0.0.1:0 ARGS...`; its port, from the line it
 * prints once it listens. */
static unsigned serve_start(struct cmd *c, ...)
{
    char *argv[32] = {(char *)FAIRSEM_TOOL, (char *)"serve", (char *)"--listen", (char *)"127.0.0.1:0"};
    size_t n = 4;
    va_list ap;
    va_start(ap, c);
    const char *a;
    while ((a = va_arg(ap, const char *)) && n + 1 < 32)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    cr_assert(cmd_start(c, argv, -1, 0));
    char line[256];
    cr_assert_gt(read_line(c->out, line, sizeof line, TEST_PATIENCE_MS), 0, "serve printed nothing");
    unsigned port = 0;
    cr_assert_eq(sscanf(line, "listening on http://127.0.0.1:%u/metrics", &port), 1, "'%s'", line);
    cr_assert_gt(port, 0);
    return port;
}

/* Whether a line of fd (skipping others) is `want`. */
static bool line_said(int fd, const char *want)
{
    char line[1024];
    while (read_line(fd, line, sizeof line, TEST_PATIENCE_MS) >= 0)
        if (!strcmp(line, want))
            return true;
    return false;
}

/* SIGTERM ends serve cleanly (exit 0). */
static void serve_stop(struct cmd *c)
{
    cr_assert_eq(kill(c->pid, SIGTERM), 0);
    int status = wait_exit(c->pid, TEST_PATIENCE_MS);
    cr_assert_neq(status, -1, "serve did not stop on SIGTERM");
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "serve ended with status %d", shell_status(status));
    close(c->out);
    close(c->err);
}

/* GET /metrics as Prometheus text; the body. */
static const char *scrape(unsigned port, struct http_reply *r)
{
    http(port, "GET", "/metrics", NULL, r);
    cr_assert_eq(r->status, 200, "%s", r->head);
    return r->body;
}

/* Start a server of the Prometheus project (prometheus, node_exporter)
 * told to listen on 127.0.0.1:0; the port it chose, from the line it logs
 * on stderr once it listens. */
static unsigned go_server_start(struct cmd *c, char *const argv[])
{
    cr_assert(cmd_start(c, argv, -1, 0), "cannot start %s", argv[0]);
    char line[1024];
    for (;;) {
        cr_assert_geq(read_line(c->err, line, sizeof line, TEST_PATIENCE_MS), 0, "%s did not listen", argv[0]);
        const char *at = strstr(line, "msg=\"Listening on\" address=127.0.0.1:");
        if (at)
            return (unsigned)atoi(strrchr(at, ':') + 1);
    }
}

static void go_server_stop(struct cmd *c)
{
    cr_assert_eq(kill(c->pid, SIGTERM), 0);
    cr_assert_neq(wait_exit(c->pid, TEST_PATIENCE_MS), -1, "a server did not stop on SIGTERM");
    close(c->out);
    close(c->err);
}

static fairsem_t *new_pool(const char *what, unsigned slots, unsigned max_tenants)
{
    fairsem_options_t o = {.max_slots = slots, .max_tenants = max_tenants};
    return seg_create_opts(g_seg, sizeof g_seg, what, &o);
}

/* ---------------------------------------------------------------- tests */

/* Tenant ids are any bytes but NUL: quotes, backslashes, newlines, control
 * characters and bytes that are not UTF-8 still give text both parsers
 * accept, with the labels docs/fairsem.1 promises.  A missing pool is
 * reported (exit 3) and exported as fairsem_up 0; the others still are. */
Test(exporter, metrics_pass_promtool_and_the_openmetrics_parser)
{
    fairsem_t *sem = new_pool("ex-text", 4, 0);
    static const char *ids[] = {"plain",     "quo\"te",        "back\\slash", "new\nline",
                                "tab\tcr\r", "\xff\xfe-bytes", "caf\xc3\xa9", "__other__"};
    fairsem_tenant_t *t[8];
    fairsem_slot_t s[3];
    for (int i = 0; i < 8; i++) {
        t[i] = tenant_reg(sem, ids[i]);
        if (i < 3)
            cr_assert_eq(fairsem_try_acquire(t[i], &s[i]), 0);
    }
    char missing[FAIRSEM_NAME_MAX + 1];
    test_name(missing, sizeof missing, "ex-missing");
    static struct result r;
    cr_assert_eq(tool(&r, "metrics", g_seg, missing, NULL), 3, "%s", r.err);
    cr_assert(strstr(r.err, missing) && strstr(r.err, "No such file"), "%s", r.err);
    cr_assert(promtool_ok(r.out));
    cr_assert_eq(pool_sample(r.out, "fairsem_up", ""), 1);
    char series[512];
    snprintf(series, sizeof series, "fairsem_up{pool=\"%s\"}", missing);
    cr_assert_eq(sample(r.out, series), 0, "%s", r.out);
    /* ... and nothing else of it: no zeros that would read as an idle pool. */
    snprintf(series, sizeof series, "{pool=\"%s\"", missing);
    const char *first = strstr(r.out, series);
    cr_assert(first && !strstr(first + 1, series), "%s has series besides fairsem_up:\n%s", missing, r.out);
    cr_assert_eq(pool_sample(r.out, "fairsem_slots", ",state=\"in_use\""), 3);
    cr_assert_eq(pool_sample(r.out, "fairsem_slots", ",state=\"free\""), 1);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_held_slots", ",tenant=\"quo\\\"te\""), 1, "%s", r.out);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_held_slots", ",tenant=\"back\\\\slash\""), 1);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_held_slots", ",tenant=\"new\\nline\""), 0);
    cr_assert_eq(pool_sample(r.out, "fairsem_grants_total", ",kind=\"immediate\""), 3);
    cr_assert(!strstr(r.out, "# EOF") && !strstr(r.out, "# UNIT"), "0.0.4 text has no OpenMetrics lines");

    cr_assert_eq(tool(&r, "metrics", "--openmetrics", g_seg, NULL), 0, "%s", r.err);
    const char *args[] = {g_seg, NULL};
    cr_assert(
        openmetrics_ok(r.out,
                       "held = {s.labels['tenant']: s.value for s in fams['fairsem_tenant_held_slots'].samples}\n"
                       "want = {'plain': 1, 'quo\"te': 1, 'back\\\\slash': 1, 'new\\nline': 0,\n"
                       "        'tab\\u2409cr\\u240d': 0, '\\u00ff\\u00fe-bytes': 0, 'caf\\u00e9': 0,\n"
                       "        '__other__': 0}\n"
                       "assert held == want, held\n"
                       "assert fams['fairsem_grants'].type == 'counter'\n"
                       "assert fams['fairsem_wait_seconds'].type == 'histogram'\n"
                       "assert fams['fairsem_wait_seconds'].unit == 'seconds'\n"
                       "assert fams['fairsem_tenant_wait_seconds'].type == 'summary'\n"
                       "assert {s.labels['pool'] for s in fams['fairsem_up'].samples} == {a[0]}\n",
                       args));
    /* The real tenant "__other__" is folded into the aggregate, once. */
    cr_assert_eq(pool_sample(r.out, "fairsem_folded_tenants", ""), 1);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_release(t[i], s[i]), 0);
    seg_close_unlink(sem, g_seg);
}

/* A scripted run seen through `fairsem serve`: N immediate grants, W
 * grants after waiting, M timeouts, one cancel, one SIGKILLed holder
 * reclaimed; the histogram's count is the grants after waiting.  Both
 * formats, as the scrape's Accept header asks, pass their parsers. */
Test(exporter, counters_move_as_scripted_through_serve)
{
    enum { FIRST = 3, WAITED = 3, TIMEOUTS = 2 };
    fairsem_t *sem = new_pool("ex-run", 2, 0);
    struct cmd c;
    unsigned port = serve_start(&c, g_seg, NULL);
    static struct http_reply h;
    const char *m = scrape(port, &h);
    cr_assert(promtool_ok(m));
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 1);
    cr_assert_eq(pool_sample(m, "fairsem_grants_total", ",kind=\"immediate\""), 0);
    cr_assert_eq(pool_sample(m, "fairsem_wait_seconds_count", ""), 0);

    fairsem_tenant_t *a = tenant_reg(sem, "a"), *b = tenant_reg(sem, "b");
    fairsem_slot_t sa[2], sb;
    for (int i = 0; i < FIRST; i++) {
        cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
        cr_assert_eq(fairsem_release(a, sa[0]), 0);
    }
    cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
    cr_assert_eq(fairsem_try_acquire(a, &sa[1]), 0);
    for (int i = 0; i < TIMEOUTS; i++)
        cr_assert_eq(fairsem_acquire_timeout(b, 1000000, &sb), -ETIMEDOUT);
    for (int i = 0; i < WAITED; i++) {
        fairsem_request_t *req;
        cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
        cr_assert_eq(fairsem_request_result(req, &sb), -EAGAIN);
        if (i == 0) { /* seen while it waits */
            m = scrape(port, &h);
            cr_assert_eq(pool_sample(m, "fairsem_waiting_requests", ""), 1);
            cr_assert_eq(pool_sample(m, "fairsem_tenant_waiting_requests", ",tenant=\"b\""), 1);
            cr_assert_gt(pool_sample(m, "fairsem_oldest_wait_seconds", ""), 0, "%s", m);
        }
        cr_assert_eq(fairsem_release(a, sa[0]), 0); /* straight to b's request */
        cr_assert_eq(fairsem_request_result(req, &sb), 0);
        fairsem_request_free(req);
        cr_assert_eq(fairsem_release(b, sb), 0);
        cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
    }
    fairsem_request_t *req;
    cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
    cr_assert_eq(fairsem_request_cancel(req), 0);
    fairsem_request_free(req);

    /* A holder SIGKILLed, its slot reclaimed by a reap.  The tenant stays
     * registered here, so its entry (and its counters) outlive the reap. */
    cr_assert_eq(fairsem_release(a, sa[1]), 0);
    fairsem_tenant_t *victim = tenant_reg(sem, "victim");
    struct worker v;
    cr_assert(spawn_ctl(&v, g_seg, "victim", "V"));
    worker_expect(&v, 'a', 'A');
    worker_kill(&v);
    fairsem_reap_report_t rep;
    cr_assert_eq(fairsem_reap(sem, &rep), 0);
    cr_assert_eq(rep.slots, 1);

    m = scrape(port, &h);
    cr_assert(promtool_ok(m));
    unsigned immediate = FIRST + 2 + WAITED + 1; /* a's, then the victim's */
    cr_assert_eq(pool_sample(m, "fairsem_grants_total", ",kind=\"immediate\""), immediate, "%s", m);
    cr_assert_eq(pool_sample(m, "fairsem_grants_total", ",kind=\"waited\""), WAITED);
    cr_assert_eq(pool_sample(m, "fairsem_timeouts_total", ""), TIMEOUTS);
    cr_assert_eq(pool_sample(m, "fairsem_cancels_total", ""), 1);
    cr_assert_eq(pool_sample(m, "fairsem_reclaimed_slots_total", ""), 1);
    cr_assert_eq(pool_sample(m, "fairsem_wait_seconds_count", ""), WAITED);
    cr_assert_eq(pool_sample(m, "fairsem_wait_seconds_bucket", ",le=\"+Inf\""), WAITED);
    cr_assert_gt(pool_sample(m, "fairsem_wait_seconds_sum", ""), 0);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_grants_total", ",tenant=\"a\",kind=\"immediate\""),
                 FIRST + 2 + WAITED);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_grants_total", ",tenant=\"b\",kind=\"waited\""), WAITED);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_timeouts_total", ",tenant=\"b\""), TIMEOUTS);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_cancels_total", ",tenant=\"b\""), 1);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_wait_seconds_count", ",tenant=\"b\""), WAITED);
    cr_assert_eq(pool_sample(m, "fairsem_tenant_reclaimed_slots_total", ",tenant=\"victim\""), 1, "%s", m);
    cr_assert_eq(pool_sample(m, "fairsem_slots", ",state=\"in_use\""), 1);
    cr_assert_eq(pool_sample(m, "fairsem_waiting_requests", ""), 0);
    cr_assert_eq(pool_sample(m, "fairsem_oldest_wait_seconds", ""), 0);
    /* Buckets are cumulative: never decreasing, up to the count. */
    double last = 0;
    int buckets = 0;
    for (unsigned k = 0; k + 1 < FAIRSEM_WAIT_BUCKETS; k++) {
        char le[64];
        snprintf(le, sizeof le, ",le=\"%.9g\"", (double)fairsem_wait_bucket_bound_ns(k) / 1e9);
        double v = pool_sample(m, "fairsem_wait_seconds_bucket", le);
        cr_assert_geq(v, last, "bucket %s: %g after %g", le, v, last);
        last = v;
        buckets++;
    }
    cr_assert_eq(buckets, FAIRSEM_WAIT_BUCKETS - 1);

    /* OpenMetrics when asked (as Prometheus asks), with the same values. */
    http(port, "GET", "/metrics", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5", &h);
    char type[256];
    cr_assert_eq(h.status, 200);
    cr_assert_str_eq(header(&h, "Content-Type", type, sizeof type),
                     "application/openmetrics-text; version=1.0.0; charset=utf-8");
    char want[64];
    snprintf(want, sizeof want, "%d", WAITED);
    const char *args[] = {g_seg, want, NULL};
    cr_assert(openmetrics_ok(h.body,
                             "g = {s.labels['kind']: s.value for s in fams['fairsem_grants'].samples"
                             " if s.name == 'fairsem_grants_total'}\n"
                             "assert g['waited'] == int(a[1]), g\n"
                             "h = {s.name: s.value for s in fams['fairsem_wait_seconds'].samples"
                             " if s.labels.get('le') in (None, '+Inf')}\n"
                             "assert h['fairsem_wait_seconds_count'] == int(a[1]), h\n",
                             args));
    http(port, "GET", "/metrics", "text/plain", &h);
    cr_assert_str_eq(header(&h, "Content-Type", type, sizeof type), "text/plain; version=0.0.4; charset=utf-8");
    serve_stop(&c);
    fairsem_tenant_free(a);
    fairsem_tenant_free(b);
    fairsem_tenant_free(victim);
    seg_close_unlink(sem, g_seg);
}

/* Bad requests get HTTP errors and the exporter goes on serving. */
Test(exporter, bad_requests_get_http_errors)
{
    fairsem_t *sem = new_pool("ex-http", 2, 0);
    struct cmd c;
    unsigned port = serve_start(&c, g_seg, NULL);
    static struct http_reply h;
    char value[256];
    http(port, "GET", "/", NULL, &h);
    cr_assert_eq(h.status, 200);
    cr_assert(strstr(h.body, "href=\"/metrics\""), "%s", h.body);
    cr_assert(strstr(header(&h, "Content-Type", value, sizeof value), "text/html"), "%s", value);
    http(port, "GET", "/nothing-here", NULL, &h);
    cr_assert_eq(h.status, 404);
    http(port, "GET", "/metrics/", NULL, &h);
    cr_assert_eq(h.status, 404);
    static const char *methods[] = {"POST", "PUT", "DELETE", "OPTIONS"};
    for (int i = 0; i < 4; i++) {
        http(port, methods[i], "/metrics", NULL, &h);
        cr_assert_eq(h.status, 405, "%s: %s", methods[i], h.head);
        cr_assert_str_eq(header(&h, "Allow", value, sizeof value), "GET, HEAD");
    }
    http(port, "HEAD", "/metrics", NULL, &h);
    cr_assert_eq(h.status, 200);
    cr_assert_eq(h.body_len, 0, "HEAD got a body");
    /* A 100 kB URL does not fit the server's request memory. */
    static char request[110000];
    int len = snprintf(request, sizeof request,
                       "GET /metrics?%0*d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 100000, 0);
    http_raw(port, request, (size_t)len, &h);
    cr_assert_geq(h.status, 400, "%s", h.head);
    cr_assert_lt(h.status, 500, "%s", h.head);
    /* Not HTTP at all: refused, or the connection closed. */
    http_raw(port, "hello\r\n\r\n", 9, &h);
    cr_assert(h.status == 0 || h.status == 400, "%s", h.head);
    const char *m = scrape(port, &h);
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 1);
    serve_stop(&c);
    seg_close_unlink(sem, g_seg);
}

/* The Accept header picks the format as fairsem(1) says: OpenMetrics when
 * it is listed with a q above 0 and at least that of text/plain or a
 * wildcard (media types compared without case), else 0.0.4. */
Test(exporter, accept_header_picks_the_format)
{
    fairsem_t *sem = new_pool("ex-accept", 2, 0);
    struct cmd c;
    unsigned port = serve_start(&c, g_seg, NULL);
    static const struct {
        const char *accept;
        bool openmetrics;
    } cases[] = {
        {NULL, false},
        {"application/openmetrics-text", true},
        {"application/openmetrics-text;q=0", false},
        {"text/plain;q=1,application/openmetrics-text;q=0.5", false},
        {"application/openmetrics-text; q=0.9, */*", false},
        {"application/openmetrics-text;q=0.5, text/*;q=0.2", true},
        {"APPLICATION/OpenMetrics-Text;version=1.0.0;q=0.8, text/plain;q=0.8", true},
        {"text/html", false},
    };
    static struct http_reply h;
    char type[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        http(port, "GET", "/metrics", cases[i].accept, &h);
        cr_assert_eq(h.status, 200);
        cr_expect_str_eq(header(&h, "Content-Type", type, sizeof type),
                         cases[i].openmetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                              : "text/plain; version=0.0.4; charset=utf-8",
                         "Accept: %s", cases[i].accept ? cases[i].accept : "(none)");
        cr_expect_eq(strstr(h.body, "# EOF\n") != NULL, cases[i].openmetrics, "Accept: %s",
                     cases[i].accept ? cases[i].accept : "(none)");
    }
    serve_stop(&c);
    seg_close_unlink(sem, g_seg);
}

/* A pool removed while served is fairsem_up 0 (the exporter lives on and
 * says so on stderr); created again, it is served again, with its new
 * counters.  A pool that
 * did not exist when serve started is served once created. */
Test(exporter, a_removed_pool_is_down_and_comes_back)
{
    fairsem_t *sem = new_pool("ex-gone", 2, 0);
    char later[FAIRSEM_NAME_MAX + 1];
    test_name(later, sizeof later, "ex-later");
    struct cmd c;
    unsigned port = serve_start(&c, g_seg, later, NULL);
    static struct http_reply h;
    char series[512];
    snprintf(series, sizeof series, "fairsem_up{pool=\"%s\"}", later);
    fairsem_slot_t s;
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "x", &s);
    const char *m = scrape(port, &h);
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 1);
    cr_assert_eq(sample(m, series), 0);
    cr_assert_eq(pool_sample(m, "fairsem_grants_total", ",kind=\"immediate\""), 1);
    cr_assert_eq(fairsem_release(t, s), 0);
    fairsem_close(sem);
    cr_assert_eq(fairsem_unlink(g_seg, 0), 0, "a read-only exporter keeps no pool from being removed");

    m = scrape(port, &h);
    cr_assert(promtool_ok(m));
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 0, "%s", m);
    cr_assert_eq(pool_sample(m, "fairsem_slots", ",state=\"free\""), -1,
                 "a pool that is down has no other series");
    cr_assert_eq(kill(c.pid, 0), 0, "the exporter died");
    char said[512];
    snprintf(said, sizeof said, "fairsem serve: %s: No such file or directory (fairsem_up 0)", g_seg);
    cr_assert(line_said(c.err, said), "serve did not say the pool went down");

    fairsem_options_t o = {.max_slots = 3};
    cr_assert_eq(fairsem_create(g_seg, &o, &sem), 0);
    fairsem_t *sem2;
    cr_assert_eq(fairsem_create(later, &o, &sem2), 0);
    m = scrape(port, &h);
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 1);
    cr_assert_eq(sample(m, series), 1);
    cr_assert_eq(pool_sample(m, "fairsem_slots", ",state=\"free\""), 3, "the new pool's");
    cr_assert_eq(pool_sample(m, "fairsem_grants_total", ",kind=\"immediate\""), 0, "the new pool's counters");
    snprintf(said, sizeof said, "fairsem serve: %s: readable again", g_seg);
    cr_assert(line_said(c.err, said), "serve did not say the pool came back");
    serve_stop(&c);
    fairsem_close(sem2);
    cr_assert_eq(fairsem_unlink(later, 0), 0);
    seg_close_unlink(sem, g_seg);
}

/* 200 tenants: the busiest --max-tenants (holding or waiting, then by
 * grants, then by id) get series of their own, the others are summed
 * under tenant="__other__", and the sums add up. */
Test(exporter, the_tenant_cap_keeps_the_busiest)
{
    enum { TENANTS = 200, CAP = 10 };
    fairsem_t *sem = new_pool("ex-cap", 4, 256);
    static fairsem_tenant_t *t[TENANTS];
    fairsem_slot_t held[3];
    unsigned total = 0;
    for (int i = 0; i < TENANTS; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%03d", i);
        t[i] = tenant_reg(sem, id);
        for (int k = 0; k < i % 10; k++, total++) {
            fairsem_slot_t s;
            cr_assert_eq(fairsem_try_acquire(t[i], &s), 0);
            cr_assert_eq(fairsem_release(t[i], s), 0);
        }
    }
    for (int k = 0; k < 3; k++, total++) /* t050, t100, t150 hold a slot */
        cr_assert_eq(fairsem_try_acquire(t[50 * (k + 1)], &held[k]), 0);
    static struct result r;
    char cap[16];
    snprintf(cap, sizeof cap, "%d", CAP);
    cr_assert_eq(tool(&r, "metrics", "--max-tenants", cap, g_seg, NULL), 0, "%s", r.err);
    cr_assert(promtool_ok(r.out));
    /* The holders, then the 9-grant tenants by id. */
    static const char *kept[CAP] = {"t050", "t100", "t150", "t009", "t019",
                                    "t029", "t039", "t049", "t059", "t069"};
    double kept_grants = 0;
    for (int k = 0; k < CAP; k++) {
        char labels[64];
        snprintf(labels, sizeof labels, ",tenant=\"%s\",kind=\"immediate\"", kept[k]);
        double g = pool_sample(r.out, "fairsem_tenant_grants_total", labels);
        cr_assert_geq(g, 1, "%s has no series of its own", kept[k]);
        kept_grants += g;
    }
    char prefix[FAIRSEM_NAME_MAX + 64];
    snprintf(prefix, sizeof prefix, "fairsem_tenant_held_slots{pool=\"%s\",", g_seg);
    cr_assert_eq(count_samples(r.out, prefix), CAP + 1, "%s", r.out);
    cr_assert_eq(pool_sample(r.out, "fairsem_folded_tenants", ""), TENANTS - CAP);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_entries", ""), TENANTS);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_held_slots", ",tenant=\"__other__\""), 0);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_share_slots", ",tenant=\"t050\""), 1, "4 slots, 3 demanding");
    double other = pool_sample(r.out, "fairsem_tenant_grants_total", ",tenant=\"__other__\",kind=\"immediate\"");
    cr_assert_eq(kept_grants + other, total, "%g + %g", kept_grants, other);
    cr_assert_eq(pool_sample(r.out, "fairsem_grants_total", ",kind=\"immediate\""), total);

    cr_assert_eq(tool(&r, "metrics", g_seg, NULL), 0);
    cr_assert_eq(count_samples(r.out, prefix), 50 + 1, "the default cap is 50");
    cr_assert(promtool_ok(r.out));
    cr_assert_eq(tool(&r, "metrics", "--max-tenants", "0", g_seg, NULL), 0);
    cr_assert_eq(count_samples(r.out, prefix), 1);
    cr_assert_eq(pool_sample(r.out, "fairsem_tenant_held_slots", ",tenant=\"__other__\""), 3);
    cr_assert_eq(tool(&r, "metrics", "--max-tenants", "x", g_seg, NULL), 2);
    for (int k = 0; k < 3; k++)
        cr_assert_eq(fairsem_release(t[50 * (k + 1)], held[k]), 0);
    seg_close_unlink(sem, g_seg);
}

/* --textfile replaces DIR/fairsem.prom by a rename: a reader holding the
 * old file keeps reading it whole, no temporary file stays behind, and the
 * new file is what the textfile collector can read (0644, promtool):
 * node_exporter's collector reads it without error, and then the next. */
Test(exporter, the_textfile_is_replaced_atomically)
{
    fairsem_t *sem = new_pool("ex-textfile", 2, 0);
    char dir[] = "/tmp/fairsem-textfile-XXXXXX", path[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/fairsem.prom", dir);
    FILE *old = fopen(path, "w");
    cr_assert_not_null(old);
    fputs("# the old file\n", old);
    fclose(old);
    struct stat before, after;
    cr_assert_eq(stat(path, &before), 0);
    FILE *reader = fopen(path, "r");
    cr_assert_not_null(reader);

    static struct result r;
    cr_assert_eq(tool(&r, "metrics", "--textfile", dir, g_seg, NULL), 0, "%s", r.err);
    cr_assert_str_eq(r.out, "", "--textfile prints nothing");
    cr_assert_eq(stat(path, &after), 0);
    cr_assert_neq(before.st_ino, after.st_ino, "written in place, not renamed over");
    cr_assert_eq(after.st_mode & 0777, 0644);
    char line[64];
    cr_assert_not_null(fgets(line, sizeof line, reader));
    cr_assert_str_eq(line, "# the old file\n");
    fclose(reader);
    static char text[1 << 16];
    FILE *f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cr_assert(promtool_ok(text));
    cr_assert_eq(pool_sample(text, "fairsem_up", ""), 1);
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0;
    while ((e = readdir(d)))
        files += e->d_name[0] != '.' || strlen(e->d_name) > 2;
    closedir(d);
    cr_assert_eq(files, 1, "a temporary file was left in %s", dir);

    /* node_exporter's textfile collector reads it, and the next version. */
    char flag[128];
    snprintf(flag, sizeof flag, "--collector.textfile.directory=%s", dir);
    char *argv[] = {(char *)NODE_EXPORTER,
                    (char *)"--collector.disable-defaults",
                    (char *)"--collector.textfile",
                    flag,
                    (char *)"--web.listen-address=127.0.0.1:0",
                    NULL};
    struct cmd node;
    unsigned port = go_server_start(&node, argv);
    static struct http_reply h;
    const char *m = scrape(port, &h);
    cr_assert_eq(sample(m, "node_textfile_scrape_error"), 0, "%s", m);
    cr_assert_eq(pool_sample(m, "fairsem_up", ""), 1, "%s", m);
    /* (node_exporter writes the labels sorted by name) */
    char grants[FAIRSEM_NAME_MAX + 64];
    snprintf(grants, sizeof grants, "fairsem_grants_total{kind=\"immediate\",pool=\"%s\"}", g_seg);
    cr_assert_eq(sample(m, grants), 0, "%s", m);
    fairsem_slot_t s;
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "textfile", &s);
    cr_assert_eq(tool(&r, "metrics", "--textfile", dir, g_seg, NULL), 0, "%s", r.err);
    m = scrape(port, &h);
    cr_assert_eq(sample(m, grants), 1, "%s", m);
    go_server_stop(&node);
    cr_assert_eq(fairsem_release(t, s), 0);

    cr_assert_eq(tool(&r, "metrics", "--textfile", path, g_seg, NULL), 2, "a file is not a directory");
    cr_assert_eq(tool(&r, "metrics", "--textfile", dir, "--openmetrics", g_seg, NULL), 2);
    unlink(path);
    rmdir(dir);
    seg_close_unlink(sem, g_seg);
}

/* --all exports every pool `fairsem list` shows (others of this machine
 * too, so only ours are checked); usage errors exit 2, naming the problem;
 * a port in use exits 1. */
Test(exporter, all_pools_and_usage_errors)
{
    fairsem_t *sem = new_pool("ex-all", 2, 0);
    static struct result r;
    cr_assert_eq(tool(&r, "metrics", "--all", NULL), 0, "%s", r.err);
    cr_assert_eq(pool_sample(r.out, "fairsem_up", ""), 1, "%s", r.out);
    cr_assert_eq(pool_sample(r.out, "fairsem_slots", ",state=\"free\""), 2);
    cr_assert(promtool_ok(r.out));

    cr_assert_eq(tool(&r, "metrics", NULL), 2);
    cr_assert(strstr(r.err, "missing NAME"), "%s", r.err);
    cr_assert_eq(tool(&r, "metrics", "no-slash", NULL), 2);
    cr_assert_eq(tool(&r, "metrics", "--bogus", g_seg, NULL), 2);
    cr_assert_eq(tool(&r, "serve", g_seg, NULL), 2);
    cr_assert(strstr(r.err, "--listen"), "%s", r.err);
    cr_assert_eq(tool(&r, "serve", "--listen", "127.0.0.1", g_seg, NULL), 2);
    cr_assert_eq(tool(&r, "serve", "--listen", "127.0.0.1:70000", g_seg, NULL), 2);
    cr_assert(strstr(r.err, "0 to 65535"), "%s", r.err);
    cr_assert_eq(tool(&r, "serve", "--listen", "127.0.0.1:0", NULL), 2);
    struct cmd c;
    unsigned port = serve_start(&c, g_seg, NULL);
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%u", port);
    cr_assert_eq(tool(&r, "serve", "--listen", taken, g_seg, NULL), 1, "%s", r.err);
    cr_assert(strstr(r.err, "in use"), "%s", r.err);
    serve_stop(&c);
    seg_close_unlink(sem, g_seg);
}

/* `text` with what a URL query cannot hold %-escaped. */
static void url_escape(char *out, size_t cap, const char *text)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)text; *p && n + 4 < cap; p++)
        n += (size_t)snprintf(out + n, cap - n, isalnum(*p) || *p == '_' ? "%c" : "%%%02X", *p);
    out[n] = '\0';
}

/* Ask Prometheus on `port` the instant query `query`; the JSON reply. */
static const char *prom_query(unsigned port, const char *query, struct http_reply *h)
{
    char path[1024] = "/api/v1/query?query=";
    url_escape(path + strlen(path), sizeof path - strlen(path), query);
    http(port, "GET", path, NULL, h);
    cr_assert_eq(h->status, 200, "%s\n%s", h->head, h->body);
    return h->body;
}

/* The real consumer: a Prometheus server scraping `fairsem serve` every
 * second asks for OpenMetrics (its metadata then names the counter family
 * without "_total" and knows the unit, which only OpenMetrics carries),
 * finds the target up without error, and stores the values the pool
 * counted. */
Test(exporter, prometheus_scrapes_serve_as_openmetrics)
{
    fairsem_t *sem = new_pool("ex-prom", 2, 0);
    fairsem_slot_t s[2];
    fairsem_tenant_t *t = tenant_reg_acquire(sem, "scraped", &s[0]);
    cr_assert_eq(fairsem_try_acquire(t, &s[1]), 0);
    struct cmd serve;
    unsigned port = serve_start(&serve, g_seg, NULL);

    char dir[] = "/tmp/fairsem-prometheus-XXXXXX", config[64], data[64], flags[3][128];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(config, sizeof config, "%s/prometheus.yml", dir);
    snprintf(data, sizeof data, "%s/data", dir);
    FILE *f = fopen(config, "w");
    cr_assert_not_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: fairsem\n"
            "    static_configs:\n      - targets: ['127.0.0.1:%u']\n",
            port);
    fclose(f);
    snprintf(flags[0], sizeof flags[0], "--config.file=%s", config);
    snprintf(flags[1], sizeof flags[1], "--storage.tsdb.path=%s", data);
    snprintf(flags[2], sizeof flags[2], "--web.listen-address=127.0.0.1:0");
    char *argv[] = {(char *)PROMETHEUS, flags[0], flags[1], flags[2], NULL};
    struct cmd prom;
    unsigned prom_port = go_server_start(&prom, argv);
    /* Until it is ready (503 before), then until its first scrape is stored. */
    static struct http_reply h;
    uint64_t end = test_now_ns() + TEST_PATIENCE_NS;
    for (http(prom_port, "GET", "/-/ready", NULL, &h); h.status != 200;
         http(prom_port, "GET", "/-/ready", NULL, &h)) {
        cr_assert_lt(test_now_ns(), end, "prometheus never ready: %s", h.head);
        test_sleep_ms(50);
    }
    char query[512];
    snprintf(query, sizeof query, "fairsem_grants_total{pool=\"%s\",kind=\"immediate\"}", g_seg);
    while (!strstr(prom_query(prom_port, query, &h), "\"value\"")) {
        cr_assert_lt(test_now_ns(), end, "no sample stored: %s", h.body);
        test_sleep_ms(50);
    }
    cr_assert(strstr(h.body, ",\"2\"]"), "2 grants: %s", h.body);
    snprintf(query, sizeof query, "fairsem_tenant_held_slots{pool=\"%s\",tenant=\"scraped\"}", g_seg);
    cr_assert(strstr(prom_query(prom_port, query, &h), ",\"2\"]"), "%s", h.body);
    http(prom_port, "GET", "/api/v1/targets", NULL, &h);
    cr_assert(strstr(h.body, "\"health\":\"up\"") && strstr(h.body, "\"lastError\":\"\""), "%s", h.body);
    http(prom_port, "GET", "/api/v1/metadata?metric=fairsem_grants", NULL, &h);
    cr_assert(strstr(h.body, "\"type\":\"counter\""), "not scraped as OpenMetrics: %s", h.body);
    http(prom_port, "GET", "/api/v1/metadata?metric=fairsem_wait_seconds", NULL, &h);
    cr_assert(strstr(h.body, "\"unit\":\"seconds\""), "%s", h.body);

    go_server_stop(&prom);
    serve_stop(&serve);
    static struct result r;
    char *rm[] = {(char *)"/bin/rm", (char *)"-rf", dir, NULL};
    cr_assert_eq(run_argv(&r, rm, NULL, 0), 0);
    cr_assert_eq(fairsem_release(t, s[0]), 0);
    cr_assert_eq(fairsem_release(t, s[1]), 0);
    seg_close_unlink(sem, g_seg);
}

/* "850µs", "12.5ms", "3.20s" back to ns. */
static uint64_t parse_wait(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (!strncmp(end, "\u00b5s", 3))
        return (uint64_t)(v * 1e3);
    if (!strncmp(end, "ms", 2))
        return (uint64_t)(v * 1e6);
    return (uint64_t)(v * 1e9);
}

/* Bucket of the histogram a wait of ns falls in. */
static unsigned bucket_of(uint64_t ns)
{
    unsigned k = 0;
    while (k + 1 < FAIRSEM_WAIT_BUCKETS && ns > fairsem_wait_bucket_bound_ns(k))
        k++;
    return k;
}

/* dump --watch: each tenant's bar of held against share, and the wait
 * quantiles estimated from the histogram; one wait only, so each quantile
 * lies within the bucket of that wait (bounded here from both sides). */
Test(exporter, watch_draws_bars_and_wait_quantiles)
{
    fairsem_t *sem = new_pool("ex-watch", 2, 0);
    fairsem_tenant_t *a = tenant_reg(sem, "a"), *b = tenant_reg(sem, "b");
    fairsem_slot_t sa[2], sb;
    cr_assert_eq(fairsem_try_acquire(a, &sa[0]), 0);
    cr_assert_eq(fairsem_try_acquire(a, &sa[1]), 0);
    fairsem_request_t *req;
    uint64_t t0 = test_now_ns();
    cr_assert_eq(fairsem_request_start(b, NULL, &req), 0);
    test_sleep_ms(20);
    uint64_t least = test_now_ns() - t0;
    cr_assert_eq(fairsem_release(a, sa[0]), 0);
    cr_assert_eq(fairsem_request_result(req, &sb), 0);
    uint64_t most = test_now_ns() - t0;
    fairsem_request_free(req);

    const char *frame = watch_frame(g_seg);
    /* a and b hold 1 each, their share (2 slots, 2 demanding): full bars. */
    static const char full[] = "\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588"
                               "\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588\u2588";
    for (const char *id = "a"; id; id = *id == 'a' ? "b" : NULL) {
        char start[128];
        snprintf(start, sizeof start, "\n%-24s %s     1/1    ", id, full);
        cr_assert(strstr(frame, start), "no full bar for %s in:\n%s", id, frame);
    }
    const char *waits = strstr(frame, "\nwaits p50 ");
    cr_assert_not_null(waits, "%s", frame);
    char q[3][24];
    cr_assert_eq(sscanf(waits, "\nwaits p50 %23s p90 %23s p99 %23s of 1", q[0], q[1], q[2]), 3, "%s", waits);
    unsigned lo = bucket_of(least), hi = bucket_of(most);
    uint64_t floor_ns = lo ? fairsem_wait_bucket_bound_ns(lo - 1) : 0, ceil_ns = fairsem_wait_bucket_bound_ns(hi);
    uint64_t prev = 0;
    for (int k = 0; k < 3; k++) {
        uint64_t v = parse_wait(q[k]);
        cr_assert(v >= floor_ns * 0.99 && v <= ceil_ns * 1.01, "quantile %s outside %llu..%llu ns", q[k],
                  (unsigned long long)floor_ns, (unsigned long long)ceil_ns);
        cr_assert_geq(v, prev, "quantiles go down: %s", waits);
        prev = v;
    }
    cr_assert_eq(fairsem_release(a, sa[1]), 0);
    cr_assert_eq(fairsem_release(b, sb), 0);
    seg_close_unlink(sem, g_seg);
}

/* The bar of n full cells, then lent dark-shade ones, the rest light. */
static void expected_bar(char *out, unsigned full, unsigned lent)
{
    out[0] = '\0';
    for (unsigned k = 0; k < 20; k++)
        strcat(out, k < full ? "\u2588" : k < full + lent ? "\u2593" : "\u2591");
}

/* dump --watch on a work-conserving pool of 4: a-busy took 3 slots while
 * x-light (registered first) asked for none, then x-light took 1, so each's
 * share is 2.  a-busy's bar stands for 3 slots: 2 within the share (13
 * cells) and 1 lent (7); x-light's for its share of 2: 1 held (10 cells)
 * and 1 not (10).  The busiest comes first (the pool lists x-light first). */
Test(exporter, watch_bars_show_lent_slots_and_unheld_share)
{
    fairsem_options_t o = {.max_slots = 4, .flags = FAIRSEM_WORK_CONSERVING};
    fairsem_t *sem = seg_create_opts(g_seg, sizeof g_seg, "ex-bars", &o);
    fairsem_tenant_t *light = tenant_reg(sem, "x-light"), *busy = tenant_reg(sem, "a-busy");
    fairsem_slot_t s[4];
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_try_acquire(busy, &s[i]), 0);
    cr_assert_eq(fairsem_try_acquire(light, &s[3]), 0);
    fairsem_tenant_stats_t ts[2];
    fairsem_stats_t st;
    size_t n = 0;
    cr_assert_eq(fairsem_stats(sem, &st, ts, 2, &n), 0);
    cr_assert_eq(n, 2);
    cr_assert(ts[0].share == 2 && ts[1].share == 2, "shares %u and %u", ts[0].share, ts[1].share);

    const char *frame = watch_frame(g_seg);
    char bar[4 * 20 + 1], want[256];
    expected_bar(bar, 13, 7);
    snprintf(want, sizeof want, "\n%-24s %s     3/2    ", "a-busy", bar);
    const char *busy_row = strstr(frame, want);
    cr_assert_not_null(busy_row, "no bar '%s' in:\n%s", want, frame);
    expected_bar(bar, 10, 0);
    snprintf(want, sizeof want, "\n%-24s %s     1/2    ", "x-light", bar);
    const char *light_row = strstr(frame, want);
    cr_assert_not_null(light_row, "no bar '%s' in:\n%s", want, frame);
    cr_assert_lt(busy_row, light_row, "the busiest tenant is not first:\n%s", frame);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(fairsem_release(busy, s[i]), 0);
    cr_assert_eq(fairsem_release(light, s[3]), 0);
    fairsem_tenant_free(busy);
    fairsem_tenant_free(light);
    seg_close_unlink(sem, g_seg);
}
