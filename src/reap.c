/*
 * reap.c - fairsem_reap(): reclaim at once what dead processes left.
 * (Waiters do the same on their own for the records they depend on; see
 * fairsem__reap_referenced in wait.c.)
 */
#include "internal.h"

#include <errno.h>
#include <string.h>

int fairsem_reap(fairsem_t *sem, fairsem_reap_report_t *report)
{
    if (!sem)
        return -EINVAL;
    fairsem_reap_report_t local;
    if (!report)
        report = &local;
    memset(report, 0, sizeof *report);
    int rc = fairsem__attach(sem);
    if (rc < 0)
        return rc;
    for (uint32_t p = 0; p < sem->geo.max_procs; p++)
        fairsem__proc_reap_if_dead(sem, p, report);
    for (uint32_t t = 0; t < sem->geo.max_tenants; t++)
        fairsem__tenant_retire(sem, t);
    fairsem__schedule(sem, NULL, NULL);
    return 0;
}
