/*
 * serve.c - `fairsem serve`: an HTTP exporter (libmicrohttpd) serving
 * /metrics for the pools it is given, read at each scrape.
 *
 * One internal thread of libmicrohttpd answers every request, so the pool
 * set is only ever used by that thread; the main thread waits for SIGTERM
 * or SIGINT and then stops the daemon (which ends the connections).
 */
#define _GNU_SOURCE
#include "cli.h"
#include "exposition.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct server {
    struct pool_set set;
    unsigned max_tenants;
};

static const char index_page[] =
    "<!DOCTYPE html>\n<html><head><title>fairsem exporter</title></head>\n"
    "<body><h1>fairsem exporter</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

/* Queue a response (the body copied, or taken when owned). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                             size_t len, bool owned)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, body, owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_MUST_COPY);
    if (!r) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result reply_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
    return reply(conn, status, "text/plain; charset=utf-8", (char *)text, strlen(text), false);
}

/* A pool that went down, or came back, is said once on stderr. */
static void say_changes(struct pool_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        struct exposed_pool *p = &set->pools[i];
        if (p->err == p->said)
            continue;
        if (p->err < 0)
            fprintf(stderr, "fairsem serve: %s: %s (fairsem_up 0)\n", p->name, fairsem_strerror(p->err));
        else
            fprintf(stderr, "fairsem serve: %s: readable again\n", p->name);
        p->said = p->err;
    }
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size, (void)state;
    struct server *s = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
        return reply_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET and HEAD\n");
    if (!strcmp(url, "/"))
        return reply(conn, MHD_HTTP_OK, "text/html; charset=utf-8", (char *)index_page, sizeof index_page - 1,
                     false);
    if (strcmp(url, "/metrics"))
        return reply_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics\n");
    enum exposition_format format =
        exposition_negotiate(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT));
    pool_set_refresh(&s->set);
    say_changes(&s->set);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = out ? exposition_write(out, &s->set, s->max_tenants, format) : -ENOMEM;
    if (out && fclose(out) != 0 && rc == 0)
        rc = -ENOMEM;
    if (rc < 0) {
        free(text);
        return reply_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "cannot read the pools: out of memory\n");
    }
    return reply(conn, MHD_HTTP_OK, exposition_content_type(format), text, len, true);
}

/* A listening socket on "ADDR:PORT" ("[v6]:PORT"; ADDR may be a host
 * name, or empty for every address); its descriptor or a negative errno,
 * *problem set when the text itself is wrong. */
static int listen_on(const char *spec, const char **problem)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    *problem = NULL;
    if (!colon || !colon[1] || (size_t)(colon - spec) >= sizeof host) {
        *problem = "--listen wants ADDR:PORT, e.g. 127.0.0.1:9464, [::1]:9464 or :9464";
        return -EINVAL;
    }
    size_t hl = (size_t)(colon - spec);
    memcpy(host, spec, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    unsigned port;
    if (!cli_parse_unsigned(colon + 1, &port) || port > 65535) {
        *problem = "--listen: PORT must be 0 to 65535 (0: any free port, printed on stdout)";
        return -EINVAL;
    }
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM}, *ai;
    int rc = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai);
    if (rc != 0) {
        *problem = gai_strerror(rc);
        return -EINVAL;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 64) < 0) {
        rc = -errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return rc;
    }
    freeaddrinfo(ai);
    return fd;
}

/* "http://ADDR:PORT/metrics" of a listening socket. */
static void describe(int fd, char *out, size_t cap)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    char addr[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    if (sa.ss_family == AF_INET6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
        port = ntohs(in6->sin6_port);
        snprintf(out, cap, "http://[%s]:%u/metrics", addr, port);
    } else {
        struct sockaddr_in *in = (struct sockaddr_in *)&sa;
        inet_ntop(AF_INET, &in->sin_addr, addr, sizeof addr);
        port = ntohs(in->sin_port);
        snprintf(out, cap, "http://%s:%u/metrics", addr, port);
    }
}

int cmd_serve(int argc, char **argv)
{
    static const char *help = "usage: fairsem serve --listen ADDR:PORT [--max-tenants N] [--all] [NAME...]\n"
                              "Serve /metrics over HTTP: what 'fairsem metrics' prints for the pools NAME\n"
                              "(and with --all for every pool 'fairsem list' shows that opens), read at each\n"
                              "scrape, as OpenMetrics when the scrape's Accept header asks for it, else as\n"
                              "Prometheus text 0.0.4.  Pools are attached read-only; a pool removed, or not\n"
                              "there yet, is fairsem_up 0 until it exists again.  / is a page linking\n"
                              "/metrics.  Prints \"listening on URL\" (PORT 0: a free port) and runs until\n"
                              "SIGTERM or SIGINT.\n";
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"max-tenants", required_argument, NULL, 't'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static struct server server = {.max_tenants = EXPOSITION_DEFAULT_MAX_TENANTS};
    const char *listen_spec = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_spec = optarg; break;
        case 't':
            if (!cli_parse_unsigned(optarg, &server.max_tenants))
                return cli_usage("serve", help, "--max-tenants '%s' is not a number (0 or more)", optarg);
            break;
        case 'a': server.set.all = true; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return cli_usage("serve", help, "%s", cli_option_problem(c, argv));
        }
    }
    if (!listen_spec)
        return cli_usage("serve", help, "--listen ADDR:PORT is required");
    if (optind >= argc && !server.set.all)
        return cli_usage("serve", help, "missing NAME (or --all)");
    for (int i = optind; i < argc; i++) {
        const char *problem = cli_name_problem(argv[i]);
        if (problem)
            return cli_usage("serve", help, "%s", problem);
    }
    const char *problem;
    int fd = listen_on(listen_spec, &problem);
    if (fd < 0 && problem)
        return cli_usage("serve", help, "%s ('%s')", problem, listen_spec);
    if (fd < 0)
        return cli_fail(listen_spec, fd);
    for (int i = optind; i < argc; i++) {
        if (pool_set_add(&server.set, argv[i]) < 0) {
            close(fd);
            pool_set_close(&server.set);
            return cli_fail(argv[i], -ENOMEM);
        }
    }
    /* The daemon's thread inherits this mask: the signals come to
     * sigwait below, and a closed connection raises no SIGPIPE. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    signal(SIGPIPE, SIG_IGN);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    struct MHD_Daemon *d =
        MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, &server,
                         MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!d) {
        close(fd);
        pool_set_close(&server.set);
        fprintf(stderr, "fairsem serve: cannot start the HTTP server on %s\n", listen_spec);
        return EXIT_FAIL;
    }
    char url[INET6_ADDRSTRLEN + 32];
    describe(fd, url, sizeof url);
    printf("listening on %s\n", url);
    fflush(stdout);
    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d); /* closes fd too */
    pool_set_close(&server.set);
    return EXIT_OK;
}
