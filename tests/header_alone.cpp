// Built by the test suite: fairsem.h must compile alone as C++ too.
#include <fairsem.h>

int header_alone_cxx();
int header_alone_cxx() { return FAIRSEM_ENOTREG < 0 && sizeof(fairsem_slot_t) == 8; }
