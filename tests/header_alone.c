/* Built by the test suite: fairsem.h must compile with nothing before it. */
#include <fairsem.h>

int header_alone_c(void);
int header_alone_c(void) { return FAIRSEM_ENOTREG < 0 && sizeof(fairsem_slot_t) == 8; }
