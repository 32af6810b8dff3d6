/*
 * evidence.h - the shared-memory record that `prog_worker loop` processes
 * fill and test_multiproc.c reads (one definition for both sides; the
 * worker still checks magic and size, so a stale binary is refused).
 */
#ifndef FAIRSEM_TEST_EVIDENCE_H
#define FAIRSEM_TEST_EVIDENCE_H

#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#define PW_MAGIC 0x50574556u /* "PWEV" */
#define PW_MAX_TENANTS 8

struct pw_evidence {
    uint32_t magic;
    uint32_t size;
    _Atomic int ready;       /* workers registered and looping */
    _Atomic int stop;        /* set by the test: leave the loop */
    _Atomic int check_share; /* set by the test once every tenant demands */
    _Atomic int total;       /* holders now (lower bound) */
    _Atomic int max_total;
    _Atomic int over_slots;  /* times total > max_slots */
    _Atomic int held[PW_MAX_TENANTS];
    _Atomic int max_held[PW_MAX_TENANTS]; /* while check_share */
    _Atomic int over_share[PW_MAX_TENANTS];
    _Atomic long acquisitions[PW_MAX_TENANTS];
    _Atomic int errors;
};

/* Create the shared-memory object `name` (it must not exist) holding a
 * zeroed, stamped evidence record, and map it; NULL on failure. */
static inline struct pw_evidence *evidence_create(const char *name)
{
    int fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return NULL;
    struct pw_evidence *ev = NULL;
    if (ftruncate(fd, sizeof *ev) == 0) {
        ev = mmap(NULL, sizeof *ev, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (ev == MAP_FAILED)
            ev = NULL;
    }
    close(fd);
    if (ev) {
        ev->magic = PW_MAGIC;
        ev->size = sizeof *ev;
    }
    return ev;
}

/* Map the existing evidence object `name`; NULL if it cannot be mapped or
 * its magic or size is not this header's. */
static inline struct pw_evidence *evidence_map(const char *name)
{
    int fd = shm_open(name, O_RDWR, 0);
    if (fd < 0)
        return NULL;
    struct pw_evidence *ev = mmap(NULL, sizeof *ev, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (ev == MAP_FAILED)
        return NULL;
    if (ev->magic != PW_MAGIC || ev->size != sizeof *ev) {
        munmap(ev, sizeof *ev);
        return NULL;
    }
    return ev;
}

#endif
