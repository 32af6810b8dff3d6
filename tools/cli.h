/*
 * cli.h - what the fairsem command's files share.  The command uses the
 * public API only.
 */
#ifndef FAIRSEM_CLI_H
#define FAIRSEM_CLI_H

#include <fairsem.h>
#include <stdbool.h>

/* Exit statuses (documented in docs/fairsem.1). */
enum {
    EXIT_OK = 0,
    EXIT_FAIL = 1,         /* an operation failed for another reason */
    EXIT_USAGE = 2,        /* bad command line */
    EXIT_MISSING = 3,      /* no such segment */
    EXIT_INCOMPATIBLE = 4, /* not a fairsem segment, other layout, corrupt */
    EXIT_PERMISSION = 5,   /* permission denied */
    EXIT_BUSY = 6,         /* rm: live processes attached */
    EXIT_CHECK_BASE = 16,  /* check: 16 | FAIRSEM_CHECK_* bits */
};

/* Map an API error to the exit status above. */
int cli_exit_status(int err);
/* "fairsem: NAME: reason" on stderr; returns cli_exit_status(err). */
int cli_fail(const char *name, int err);
/* Open NAME for reading (stats, dump, check) or for use. */
int cli_open(const char *name, bool readonly, fairsem_t **out);
/* Where the segments' files are. */
#define CLI_SHM_DIR "/dev/shm"
/* Call fn for every fairsem segment in CLI_SHM_DIR (what `fairsem list`
 * shows), opened read-only: sem is NULL and err < 0 when it cannot be
 * opened.  fn returns true when it keeps sem (then it closes it), false to
 * have it closed.  Files that are not fairsem segments are skipped.
 * @return 0; a negative errno of opendir. */
int cli_each_segment(bool (*fn)(void *arg, const char *name, fairsem_t *sem, int err), void *arg);
/* Length of the well-formed UTF-8 sequence at p, or 0. */
int cli_utf8_length(const unsigned char *p);
/* Parse an unsigned number; false if not one. */
bool cli_parse_unsigned(const char *s, unsigned *out);
bool cli_parse_seconds(const char *s, double *out);

/* "fairsem CMD: <message>" and CMD's usage on stderr; returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *help, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* What is wrong with a segment name (as its limit says), or NULL. */
const char *cli_name_problem(const char *name);
/* What getopt_long (optstring starting "+:" or ":") found wrong, naming the
 * option: c is what it returned. */
const char *cli_option_problem(int c, char **argv);

int cmd_dump(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_metrics(int argc, char **argv);
int cmd_serve(int argc, char **argv);

#endif
