/*
 * ThreadSanitizer build only: liburcu 0.13's x86 atomics are inline
 * assembly, invisible to TSan, so every handoff through its wait-free queue
 * (a request passed to the library thread and back) would look like a race
 * and hide the real ones.  The same operations as compiler builtins, which
 * TSan understands; the queue's algorithm is unchanged.
 */
#ifndef FAIRSEM_TSAN_URCU_UATOMIC_H
#define FAIRSEM_TSAN_URCU_UATOMIC_H
#include_next <urcu/uatomic.h>

#undef uatomic_xchg
#define uatomic_xchg(addr, v) __atomic_exchange_n((addr), (v), __ATOMIC_SEQ_CST)
#undef uatomic_cmpxchg
#define uatomic_cmpxchg(addr, old, _new)                                                          \
    __extension__({                                                                               \
        __typeof__(*(addr)) uatomic_seen_ = (old);                                                \
        __atomic_compare_exchange_n((addr), &uatomic_seen_, (_new), 0, __ATOMIC_SEQ_CST,          \
                                    __ATOMIC_SEQ_CST);                                            \
        uatomic_seen_;                                                                            \
    })
#endif
