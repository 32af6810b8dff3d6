/* ThreadSanitizer build only: liburcu's shared loads and stores as atomic
 * builtins (see uatomic.h here for why). */
#ifndef FAIRSEM_TSAN_URCU_SYSTEM_H
#define FAIRSEM_TSAN_URCU_SYSTEM_H
#include_next <urcu/system.h>

#undef CMM_LOAD_SHARED
#define CMM_LOAD_SHARED(p) __atomic_load_n(&(p), __ATOMIC_SEQ_CST)
#undef CMM_STORE_SHARED
#define CMM_STORE_SHARED(x, v)                                                                    \
    __extension__({                                                                               \
        __typeof__(x) cmm_stored_ = (v);                                                          \
        __atomic_store_n(&(x), cmm_stored_, __ATOMIC_SEQ_CST);                                    \
        cmm_stored_;                                                                              \
    })
#endif
