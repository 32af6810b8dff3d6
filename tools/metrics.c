/*
 * metrics.c - `fairsem metrics`: the Prometheus (or OpenMetrics) text of
 * pools, on stdout or as a file for node_exporter's textfile collector.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "exposition.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The file the textfile collector reads, in DIR.  The temporary file
 * beside it does not end in ".prom", so the collector never reads it. */
#define TEXTFILE_NAME "fairsem.prom"

/* Write text to DIR/fairsem.prom atomically: a temporary file in DIR,
 * written, fsynced, renamed over the old one (a reader sees the old file
 * or the new one, never a part), then DIR fsynced so the rename lasts. */
static int write_textfile(const char *dir, const char *text, size_t len)
{
    char tmp[4096], path[4096];
    if (snprintf(tmp, sizeof tmp, "%s/." TEXTFILE_NAME ".XXXXXX", dir) >= (int)sizeof tmp ||
        snprintf(path, sizeof path, "%s/" TEXTFILE_NAME, dir) >= (int)sizeof path)
        return -ENAMETOOLONG;
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (size_t done = 0; done < len && rc == 0;) {
        ssize_t n = write(fd, text + done, len - done);
        if (n < 0 && errno != EINTR)
            rc = -errno;
        done += n > 0 ? (size_t)n : 0;
    }
    /* Readable by the collector, whoever runs it (mkostemp gives 0600). */
    if (rc == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0))
        rc = -errno;
    if (close(fd) < 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int cmd_metrics(int argc, char **argv)
{
    static const char *help =
        "usage: fairsem metrics [--max-tenants N] [--openmetrics] [--textfile DIR] [--all] [NAME...]\n"
        "Print the gauges and counters of each pool NAME (and with --all of every pool\n"
        "'fairsem list' shows that opens) as Prometheus text 0.0.4, or OpenMetrics 1.0\n"
        "with --openmetrics.  Per pool, the N busiest tenants (default 50) get series\n"
        "of their own, the others are summed under tenant=\"__other__\".  --textfile:\n"
        "write DIR/fairsem.prom atomically instead (node_exporter's textfile collector).\n"
        "A pool that cannot be read is reported on stderr and exported as fairsem_up 0;\n"
        "the exit status is then that of the first such pool (see fairsem(1)).\n";
    static const struct option longopts[] = {
        {"max-tenants", required_argument, NULL, 't'},
        {"openmetrics", no_argument, NULL, 'o'},
        {"textfile", required_argument, NULL, 'f'},
        {"all", no_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned max_tenants = EXPOSITION_DEFAULT_MAX_TENANTS;
    enum exposition_format format = EXPOSITION_PROMETHEUS;
    const char *textfile = NULL;
    struct pool_set set = {0};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (!cli_parse_unsigned(optarg, &max_tenants))
                return cli_usage("metrics", help, "--max-tenants '%s' is not a number (0 or more)", optarg);
            break;
        case 'o': format = EXPOSITION_OPENMETRICS; break;
        case 'f': textfile = optarg; break;
        case 'a': set.all = true; break;
        case 'h': fputs(help, stdout); return EXIT_OK;
        default: return cli_usage("metrics", help, "%s", cli_option_problem(c, argv));
        }
    }
    if (textfile && format == EXPOSITION_OPENMETRICS)
        return cli_usage("metrics", help, "--textfile writes Prometheus text: the collector reads no OpenMetrics");
    if (optind >= argc && !set.all)
        return cli_usage("metrics", help, "missing NAME (or --all)");
    for (int i = optind; i < argc; i++) {
        const char *problem = cli_name_problem(argv[i]);
        if (problem)
            return cli_usage("metrics", help, "%s", problem);
    }
    struct stat st;
    if (textfile && (stat(textfile, &st) < 0 || !S_ISDIR(st.st_mode)))
        return cli_usage("metrics", help, "--textfile '%s' is not a directory", textfile);
    for (int i = optind; i < argc; i++) {
        if (pool_set_add(&set, argv[i]) < 0) {
            pool_set_close(&set);
            return cli_fail(argv[i], -ENOMEM);
        }
    }
    pool_set_refresh(&set);
    int status = EXIT_OK;
    for (size_t i = 0; i < set.count; i++) {
        int failed = set.pools[i].err < 0 ? cli_fail(set.pools[i].name, set.pools[i].err) : EXIT_OK;
        status = status == EXIT_OK ? failed : status;
    }
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    int rc = out ? exposition_write(out, &set, max_tenants, format) : -ENOMEM;
    if (out && fclose(out) != 0 && rc == 0)
        rc = -ENOMEM;
    pool_set_close(&set);
    if (rc == 0 && textfile) {
        if ((rc = write_textfile(textfile, text, len)) < 0) {
            fprintf(stderr, "fairsem metrics: %s/" TEXTFILE_NAME ": %s\n", textfile, fairsem_strerror(rc));
            free(text);
            return EXIT_FAIL;
        }
    } else if (rc == 0) {
        fwrite(text, 1, len, stdout);
    }
    free(text);
    if (rc < 0)
        return cli_fail("metrics", rc);
    return fflush(stdout) == 0 ? status : EXIT_FAIL;
}
