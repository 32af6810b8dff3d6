/*
 * slot.c - slot words, and the slot handle that names one acquisition.
 *
 * A slot word is FREE (exactly 0), HELD by one acquisition, or RESERVED by
 * a granter for one queued request (layout.h, "slot word").  Every change
 * here is one CAS from the exact word expected, so a word is only ever
 * taken from FREE, and only freed by whoever it names.  Like the ticket,
 * proc and tenant modules, this one changes shared words and reports what
 * it did (a freed slot makes the state more permissive); it never runs the
 * scheduler itself (the rule is in schedule.c).
 */
#define _GNU_SOURCE
#include "internal.h"

/* fairsem_slot_t.tag: handle serial:24 << 40 | stamp:24 << 16 | slot index:16.
 * The slot word itself names the process, so the serial only has to tell
 * this process's tenant handles apart. */
#define HANDLE_INDEX_BITS 16
#define HANDLE_STAMP_SHIFT HANDLE_INDEX_BITS
#define HANDLE_SERIAL_SHIFT (HANDLE_STAMP_SHIFT + FS_STAMP_BITS)
#define HANDLE_SERIAL_MASK 0xffffffu
_Static_assert(FAIRSEM_MAX_SLOTS_LIMIT < 1u << HANDLE_INDEX_BITS, "a slot index fits a slot handle");
_Static_assert(HANDLE_SERIAL_SHIFT + 24 == 64, "slot handle: serial, stamp and index fill the tag");

static fairsem_slot_t handle_of(const fairsem_tenant_t *t, uint32_t stamp, uint32_t i)
{
    return (fairsem_slot_t){(uint64_t)(t->serial & HANDLE_SERIAL_MASK) << HANDLE_SERIAL_SHIFT |
                            (uint64_t)stamp << HANDLE_STAMP_SHIFT | i};
}

unsigned fairsem_slot_index(fairsem_slot_t slot) { return (unsigned)(slot.tag & ((1u << HANDLE_INDEX_BITS) - 1)); }

static uint32_t handle_serial(fairsem_slot_t slot) { return (uint32_t)(slot.tag >> HANDLE_SERIAL_SHIFT); }
static uint32_t handle_stamp(fairsem_slot_t slot)
{
    return (uint32_t)(slot.tag >> HANDLE_STAMP_SHIFT) & FS_STAMP_MASK;
}

uint32_t fairsem__slot_stamp(fairsem_t *sem) { return atomic_fetch_add(&sem->next_stamp, 1) & FS_STAMP_MASK; }

bool fairsem__slot_claim(fairsem_t *sem, uint32_t i, uint64_t word)
{
    uint64_t free_word = 0;
    return atomic_compare_exchange_strong(&sem->slots[i], &free_word, word);
}

void fairsem__slot_unclaim(fairsem_t *sem, uint32_t i) { atomic_store(&sem->slots[i], 0); }

void fairsem__slot_withdraw(fairsem_t *sem, uint32_t i, uint64_t reservation)
{
    atomic_compare_exchange_strong(&sem->slots[i], &reservation, 0);
}

fairsem_slot_t fairsem__slot_taken(fairsem_tenant_t *t, uint32_t i, uint32_t stamp)
{
    atomic_store_explicit(&t->sem->since[i], fs_coarse_ns(), memory_order_relaxed);
    return handle_of(t, stamp, i);
}

/* A grant that names no slot reserved for its cell (only a corrupt word
 * does that: nobody frees a reservation its GRANTED cell points at) is
 * dropped, and the cell freed so that it is not lost as well. */
static int grant_corrupt(fairsem_t *sem, uint32_t c)
{
    fairsem__ticket_free(sem, c);
    return FAIRSEM_ECORRUPT;
}

int fairsem__slot_consume_grant(fairsem_tenant_t *t, uint32_t c, fairsem_slot_t *slot)
{
    fairsem_t *sem = t->sem;
    struct fs_cell *cell = &sem->cells[c];
    uint64_t s = atomic_load(&cell->state);
    uint32_t i = fs_cell_slot(s);
    if (fs_cell_kind(s) != FS_CELL_GRANTED || i >= sem->geo.max_slots)
        return grant_corrupt(sem, c);
    uint64_t w = atomic_load(&sem->slots[i]);
    if (!fs_slot_reserved_for(w, c, fs_cell_seq(s)))
        return grant_corrupt(sem, c);
    uint32_t stamp = fairsem__slot_stamp(sem);
    if (!atomic_compare_exchange_strong(&sem->slots[i], &w,
                                        fs_slot_word(FS_SLOT_HELD, stamp, t->idx, sem->proc_tag)))
        return grant_corrupt(sem, c);
    FS_CRASHPOINT("consume.held");
    *slot = fairsem__slot_taken(t, i, stamp);
    fs_count_wait(sem, t->idx, atomic_load(&cell->enqueued_ns));
    fairsem__ticket_free(sem, c);
    return 0;
}

bool fairsem__slot_give_back(fairsem_tenant_t *t, fairsem_slot_t slot)
{
    fairsem_t *sem = t->sem;
    uint32_t i = fairsem_slot_index(slot);
    uint64_t word = fs_slot_word(FS_SLOT_HELD, handle_stamp(slot), t->idx, sem->proc_tag);
    if (handle_serial(slot) != (t->serial & HANDLE_SERIAL_MASK) || i >= sem->geo.max_slots)
        return false;
    /* The hold's stamp, read while the slot is still ours. */
    uint64_t since = atomic_load_explicit(&sem->since[i], memory_order_relaxed);
    if (!atomic_compare_exchange_strong(&sem->slots[i], &word, 0))
        return false;
    FS_CRASHPOINT("release.freed");
    fs_count_hold_end(sem, t->idx, since);
    return true;
}
