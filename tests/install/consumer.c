/* Uses an installed fairsem: one anonymous pool, one slot taken and given back. */
#include <fairsem.h>
#include <stdio.h>

int main(void)
{
    fairsem_options_t o = {.max_slots = 1};
    fairsem_t *sem;
    fairsem_tenant_t *t;
    fairsem_slot_t s;
    if (fairsem_open_anonymous(&o, &sem) || fairsem_tenant_register(sem, "consumer", 0, &t) ||
        fairsem_acquire(t, &s) || fairsem_release(t, s))
        return 1;
    fairsem_close(sem);
    printf("fairsem %s ok\n", fairsem_version());
    return 0;
}
