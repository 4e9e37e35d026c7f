/*
 * p2plab - device MMU: contexts, 4-level page tables, TLB, invalidation, replayable faults,
 * VA descriptors (copies, atomics, prefetch).
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The contract is docs/device.md section 15 (p2plab repository) and p2plab_hw.h. The DMA engine
 * (p2plab.c) calls in here from its guarded bottom half only; MMIO handlers and the invalidation
 * timer never do DMA.
 *
 * Parking: a VA descriptor that faults is copied into one of P2PLAB_MMU_PARK_MAX park slots,
 * gets P2PLAB_DESC_STALLED in its status and HEAD moves on, so other contexts keep running. Later
 * descriptors of a context with parked descriptors are parked behind it (WAITING) so that each
 * context keeps ring order. A replay makes the oldest parked descriptor of the context READY, the
 * engine runs it again from where it stopped; on completion the next one of its context is
 * promoted. The ring fetches only while a park slot is free.
 *
 * QOM properties (p2plab_mmu_instance_init; tlb-entries is a qdev property in p2plab.c)
 *   mmu-hold-faults, mmu-spurious-fault, mmu-inv-delay-us, mmu-ignore-inv, mmu-drop-replay;
 *   counters stat-mmu-*.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qemu/timer.h"
#include "qemu/atomic.h"
#include "qemu/rcu.h"
#include "qapi/error.h"
#include "qom/object.h"
#include "hw/pci/pci_device.h"
#include "hw/registerfields.h"
#include "system/dma.h"
#include "migration/vmstate.h"
#include "trace.h"
#include "p2plab-internal.h"

#define MMU_REG(a)  (((a) - P2PLAB_MMU_REGS_BASE) / 4)

REG32(MMU_CAPS,      P2PLAB_REG_MMU_CAPS)
REG32(MMU_TLB_SIZE,  P2PLAB_REG_MMU_TLB_SIZE)
REG32(MMU_STALLED,   P2PLAB_REG_MMU_STALLED)
REG32(MMU_PARKED,    P2PLAB_REG_MMU_PARKED)
REG32(FAULT_BASE_LO, P2PLAB_REG_FAULT_BASE_LO)
REG32(FAULT_BASE_HI, P2PLAB_REG_FAULT_BASE_HI)
REG32(FAULT_SIZE,    P2PLAB_REG_FAULT_SIZE)
REG32(FAULT_HEAD,    P2PLAB_REG_FAULT_HEAD)
REG32(FAULT_TAIL,    P2PLAB_REG_FAULT_TAIL)
REG32(FAULT_CTRL,    P2PLAB_REG_FAULT_CTRL)
REG32(FAULT_STATUS,  P2PLAB_REG_FAULT_STATUS)
REG32(FAULT_RESP,    P2PLAB_REG_FAULT_RESP)
REG32(INV_CTX,       P2PLAB_REG_INV_CTX)
REG32(INV_VA_LO,     P2PLAB_REG_INV_VA_LO)
REG32(INV_VA_HI,     P2PLAB_REG_INV_VA_HI)
REG32(INV_SIZE_LO,   P2PLAB_REG_INV_SIZE_LO)
REG32(INV_SIZE_HI,   P2PLAB_REG_INV_SIZE_HI)
REG32(INV_CMD,       P2PLAB_REG_INV_CMD)
REG32(INV_ISSUED,    P2PLAB_REG_INV_ISSUED)
REG32(INV_DONE,      P2PLAB_REG_INV_DONE)
REG32(CTX_ROOT_LO0,  P2PLAB_REG_CTX_ROOT_LO(0))
REG32(CTX_ROOT_HIF,  P2PLAB_REG_CTX_ROOT_HI(P2PLAB_MMU_CONTEXTS - 1))

#define R(x)                MMU_REG(A_ ## x)
#define MMU_VA_LIMIT        (1ULL << P2PLAB_MMU_VA_BITS)
#define MMU_LEVELS          4
#define MMU_PTE_PERMS       (P2PLAB_PTE_R | P2PLAB_PTE_W | P2PLAB_PTE_A | P2PLAB_PTE_LOCAL)
#define MMU_ROOT_LO_RSVD    0x00000ffeu
#define MMU_ROOT_HI_RSVD    0xfff00000u
#define MMU_VA_FLAGS        (P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_VA)

typedef enum {
    MMU_OK,
    MMU_FAULT,
    MMU_ERROR,
} MmuResult;

typedef struct {
    uint64_t addr;      /* bus address or device-memory offset of va */
    uint64_t avail;     /* bytes from va to the end of the leaf */
    bool local;
} MmuXlat;

static const char *const acc_names[] = { "?", "read", "write", "atomic", "prefetch" };

static uint32_t *mr(P2plabState *s, hwaddr a)
{
    return &s->mmu.regs[MMU_REG(a)];
}

static uint32_t desc_ctx(uint32_t flags)
{
    return (flags & P2PLAB_DESC_F_CTX_MASK) >> P2PLAB_DESC_F_CTX_SHIFT;
}

static uint32_t desc_op(uint32_t flags)
{
    return (flags & P2PLAB_DESC_F_OP_MASK) >> P2PLAB_DESC_F_OP_SHIFT;
}

bool p2plab_mmu_desc(uint32_t flags)
{
    return flags & (MMU_VA_FLAGS | P2PLAB_DESC_F_OP_MASK | P2PLAB_DESC_F_CTX_MASK);
}

uint32_t p2plab_mmu_caps(P2plabState *s)
{
    return P2PLAB_CAP_MMU;
}

bool p2plab_mmu_is_reg(hwaddr addr)
{
    return addr >= P2PLAB_MMU_REGS_BASE && addr < P2PLAB_MMU_REGS_BASE + P2PLAB_MMU_NUM_REGS * 4;
}

/* ---- contexts -------------------------------------------------------------------------------- */

static uint32_t ctx_lo(P2plabState *s, uint32_t ctx)
{
    return *mr(s, P2PLAB_REG_CTX_ROOT_LO(ctx));
}

static uint32_t ctx_hi(P2plabState *s, uint32_t ctx)
{
    return *mr(s, P2PLAB_REG_CTX_ROOT_HI(ctx));
}

static bool ctx_ok(P2plabState *s, uint32_t ctx)
{
    return ctx < P2PLAB_MMU_CONTEXTS && (ctx_lo(s, ctx) & P2PLAB_CTX_ROOT_ENABLE) &&
           !(ctx_lo(s, ctx) & MMU_ROOT_LO_RSVD) && !(ctx_hi(s, ctx) & MMU_ROOT_HI_RSVD);
}

static uint64_t ctx_root(P2plabState *s, uint32_t ctx)
{
    return deposit64(ctx_lo(s, ctx) & ~0xfffu, 32, 32, ctx_hi(s, ctx));
}

/* ---- TLB ------------------------------------------------------------------------------------- */

/*
 * Fully associative: a hash over (ctx, leaf base, leaf size) finds the entry, FIFO replacement
 * (a clock hand over the tlb-entries slots). A lookup probes the 2 MiB key, then the 4 KiB key.
 */
static uint64_t tlb_key(uint32_t ctx, uint64_t va, uint64_t size)
{
    return QEMU_ALIGN_DOWN(va, size) | ((uint64_t)ctx << 1) | (size == 2 * MiB);
}

static P2plabTlbEntry *tlb_lookup(P2plabState *s, uint32_t ctx, uint64_t va)
{
    static const uint64_t sizes[] = { 2 * MiB, 4 * KiB };

    if (!s->mmu.tlb_entries) {
        return NULL;
    }
    for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
        uint64_t key = tlb_key(ctx, va, sizes[i]);
        P2plabTlbEntry *e = g_hash_table_lookup(s->mmu.tlb_hash, &key);

        if (e) {
            return e;
        }
    }
    return NULL;
}

static void tlb_kill(P2plabState *s, P2plabTlbEntry *e)
{
    if (e->size) {
        g_hash_table_remove(s->mmu.tlb_hash, &e->key);
        e->size = 0;
    }
}

static void tlb_insert(P2plabState *s, uint32_t ctx, const P2plabTlbEntry *n)
{
    P2plabTlbEntry *e;

    if (!s->mmu.tlb_entries) {
        return;
    }
    e = &s->mmu.tlb[s->mmu.tlb_next];
    s->mmu.tlb_next = (s->mmu.tlb_next + 1) % s->mmu.tlb_entries;
    tlb_kill(s, e);
    *e = *n;
    e->key = tlb_key(ctx, n->va, n->size);
    g_hash_table_replace(s->mmu.tlb_hash, &e->key, e);
}

static void tlb_flush_all(P2plabState *s)
{
    if (s->mmu.tlb_hash) {
        g_hash_table_remove_all(s->mmu.tlb_hash);
    }
    if (s->mmu.tlb) {
        memset(s->mmu.tlb, 0, sizeof(P2plabTlbEntry) * MAX(s->mmu.tlb_entries, 1));
    }
    s->mmu.tlb_next = 0;
}

/* drop every entry of @ctx (or all contexts) overlapping [va, va + size); size 0 = all VAs */
static unsigned tlb_drop(P2plabState *s, bool all_ctx, uint32_t ctx, uint64_t va, uint64_t size)
{
    uint64_t last = size ? (va + size - 1 < va ? UINT64_MAX : va + size - 1) : UINT64_MAX;
    unsigned n = 0;

    if (!size) {
        va = 0;
    }
    for (uint32_t i = 0; i < s->mmu.tlb_entries; i++) {
        P2plabTlbEntry *e = &s->mmu.tlb[i];

        if (e->size && (all_ctx || e->ctx == ctx) && e->va <= last &&
            e->va + e->size - 1 >= va) {
            tlb_kill(s, e);
            n++;
        }
    }
    return n;
}

/* ---- translation ----------------------------------------------------------------------------- */

static uint64_t acc_perm(uint32_t acc)
{
    switch (acc) {
    case P2PLAB_FAULT_ACC_WRITE:
        return P2PLAB_PTE_W;
    case P2PLAB_FAULT_ACC_ATOMIC:
        return P2PLAB_PTE_A;
    default:
        return P2PLAB_PTE_R;
    }
}

static void walk_error(P2plabState *s, uint32_t ctx, uint64_t va, int level, uint64_t pte,
                       uint32_t code, uint32_t *err)
{
    trace_p2plab_err_mmu_walk(ctx, va, level, pte, code);
    p2plab_guest_error(s, "MMU: context %u VA 0x%" PRIx64 ": bad page table at level %d "
                       "(entry 0x%" PRIx64 "): error 0x%x", ctx, va, level, pte, code);
    *err = code;
}

/*
 * Walk the 4 levels for (ctx, va). At most MMU_LEVELS table reads: a table that points at itself
 * (a loop) is just read again at the next level, the walk cannot run away.
 */
static MmuResult mmu_walk(P2plabState *s, uint32_t ctx, uint64_t va, P2plabTlbEntry *out,
                          uint32_t *reason, uint32_t *err)
{
    uint64_t table = ctx_root(s, ctx);
    uint64_t pte = 0;

    s->mmu.stat_walks++;
    for (int level = MMU_LEVELS; level >= 1; level--) {
        unsigned shift = 12 + 9 * (level - 1);
        uint64_t ea = table + ((va >> shift) & 511) * 8;
        bool leaf;

        if (pci_dma_read(PCI_DEVICE(s), ea, &pte, 8) != MEMTX_OK) {
            walk_error(s, ctx, va, level, ea, P2PLAB_ERR_MMU_PT_READ, err);
            return MMU_ERROR;
        }
        pte = le64_to_cpu(pte);
        trace_p2plab_mmu_walk_level(ctx, va, level, ea, pte);
        if (!(pte & P2PLAB_PTE_V)) {
            *reason = P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(level);
            return MMU_FAULT;
        }
        if (pte & P2PLAB_PTE_RSVD_MASK) {
            walk_error(s, ctx, va, level, pte, P2PLAB_ERR_MMU_PT_RSVD, err);
            return MMU_ERROR;
        }
        leaf = level == 1 || (level == 2 && (pte & P2PLAB_PTE_PS));
        if (!leaf) {
            if (pte & (MMU_PTE_PERMS | P2PLAB_PTE_PS)) {
                walk_error(s, ctx, va, level, pte, P2PLAB_ERR_MMU_PT_RSVD, err);
                return MMU_ERROR;
            }
            table = pte & P2PLAB_PTE_ADDR_MASK;
            continue;
        }
        if (level == 1 && (pte & P2PLAB_PTE_PS)) {
            walk_error(s, ctx, va, level, pte, P2PLAB_ERR_MMU_PT_RSVD, err);
            return MMU_ERROR;
        }
        out->size = level == 2 ? 2 * MiB : 4 * KiB;
        out->target = pte & P2PLAB_PTE_ADDR_MASK;
        if (out->target & (out->size - 1)) {
            walk_error(s, ctx, va, level, pte, P2PLAB_ERR_MMU_PT_RSVD, err);
            return MMU_ERROR;
        }
        if ((pte & P2PLAB_PTE_LOCAL) &&
            (out->target >= s->mem_size || out->size > s->mem_size - out->target)) {
            walk_error(s, ctx, va, level, pte, P2PLAB_ERR_MMU_TARGET, err);
            return MMU_ERROR;
        }
        out->va = QEMU_ALIGN_DOWN(va, out->size);
        out->ctx = ctx;
        out->pte_flags = pte & MMU_PTE_PERMS;
        *reason = P2PLAB_FAULT_R_LEVEL(level);
        trace_p2plab_mmu_walk(ctx, va, out->target, out->size, out->pte_flags);
        return MMU_OK;
    }
    g_assert_not_reached();
}

/*
 * Translate (ctx, va) for @acc. MMU_FAULT: *reason set (P2PLAB_FAULT_R_* | FAULT_R_LEVEL(level)).
 * MMU_ERROR: *err set (a bad table: the descriptor fails). A TLB hit that lacks the permission
 * is dropped and walked again before a permission fault is declared.
 */
static MmuResult mmu_translate(P2plabState *s, uint32_t ctx, uint64_t va, uint32_t acc,
                               MmuXlat *x, uint32_t *reason, uint32_t *err)
{
    P2plabTlbEntry *e = tlb_lookup(s, ctx, va), walked;
    MmuResult r;

    if (e && (e->pte_flags & acc_perm(acc))) {
        s->mmu.stat_tlb_hits++;
        trace_p2plab_mmu_tlb_hit(ctx, va);
        *reason = 0;
    } else {
        if (e) {
            tlb_kill(s, e);     /* re-walk before declaring a permission fault */
        }
        s->mmu.stat_tlb_misses++;
        trace_p2plab_mmu_tlb_miss(ctx, va);
        r = mmu_walk(s, ctx, va, &walked, reason, err);
        if (r != MMU_OK) {
            return r;
        }
        tlb_insert(s, ctx, &walked);
        e = &walked;
        if (!(e->pte_flags & acc_perm(acc))) {
            *reason = P2PLAB_FAULT_R_PERM | (*reason & 0xff00);
            return MMU_FAULT;
        }
    }
    if (s->mmu.spurious_fault && --s->mmu.spurious_fault == 0) {
        trace_p2plab_mmu_inject_spurious(ctx, va);
        *reason = P2PLAB_FAULT_R_INJECTED;
        return MMU_FAULT;
    }
    x->addr = e->target + (va - e->va);
    x->avail = e->va + e->size - va;
    x->local = e->pte_flags & P2PLAB_PTE_LOCAL;
    return MMU_OK;
}

/* ---- interrupts and fault records ------------------------------------------------------------ */

static uint64_t fault_base(P2plabState *s)
{
    return deposit64(*mr(s, A_FAULT_BASE_LO), 32, 32, *mr(s, A_FAULT_BASE_HI));
}

static void fault_lost(P2plabState *s, P2plabParked *p, uint32_t bit)
{
    bool first = !(*mr(s, A_FAULT_STATUS) & bit);

    p->state = P2PLAB_PARK_LOST;
    *mr(s, A_FAULT_STATUS) |= bit;
    if (bit == P2PLAB_FAULT_STATUS_OVERFLOW) {
        s->mmu.stat_overflows++;
        trace_p2plab_mmu_fault_overflow(p->idx, desc_ctx(p->flags));
    }
    if (first) {
        p2plab_raise(s, P2PLAB_INT_FAULT);
    }
}

/* Write @p's fault record into the fault ring (bottom half only). */
static void fault_report(P2plabState *s, P2plabParked *p)
{
    uint32_t size = *mr(s, A_FAULT_SIZE);
    uint32_t tail = *mr(s, A_FAULT_TAIL);
    struct p2plab_fault rec;

    if (((tail + 1) & (size - 1)) == *mr(s, A_FAULT_HEAD)) {
        fault_lost(s, p, P2PLAB_FAULT_STATUS_OVERFLOW);
        return;
    }
    rec.va = cpu_to_le64(p->fault_va);
    rec.timestamp = cpu_to_le64(p->fault_ts);
    rec.desc_index = cpu_to_le32(p->idx);
    rec.ctx = cpu_to_le32(desc_ctx(p->flags));
    rec.access = cpu_to_le32(p->fault_access);
    rec.reason = cpu_to_le32(p->fault_reason);
    if (pci_dma_write(PCI_DEVICE(s), fault_base(s) + (uint64_t)tail * P2PLAB_FAULT_REC_SIZE,
                      &rec, sizeof(rec)) != MEMTX_OK) {
        trace_p2plab_err_fault_ring(fault_base(s), tail);
        p2plab_guest_error(s, "MMU: fault record write to 0x%" PRIx64 " failed",
                           fault_base(s) + (uint64_t)tail * P2PLAB_FAULT_REC_SIZE);
        fault_lost(s, p, P2PLAB_FAULT_STATUS_WRITE_ERR);
        return;
    }
    *mr(s, A_FAULT_TAIL) = (tail + 1) & (size - 1);
    p->state = P2PLAB_PARK_FAULTED;
    trace_p2plab_mmu_fault_record(tail, p->idx, desc_ctx(p->flags), p->fault_va);
    p2plab_raise(s, P2PLAB_INT_FAULT);
}

/* ---- parking --------------------------------------------------------------------------------- */

static unsigned parked_count(P2plabState *s)
{
    unsigned n = 0;

    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        n += s->mmu.park[i].state != P2PLAB_PARK_FREE;
    }
    return n;
}

/* the oldest parked descriptor of @ctx, or NULL */
static P2plabParked *ctx_first(P2plabState *s, uint32_t ctx)
{
    P2plabParked *best = NULL;

    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        P2plabParked *p = &s->mmu.park[i];

        if (p->state != P2PLAB_PARK_FREE && desc_ctx(p->flags) == ctx &&
            (!best || (int32_t)(p->order - best->order) < 0)) {
            best = p;
        }
    }
    return best;
}

static uint32_t stalled_mask(P2plabState *s)
{
    uint32_t m = 0;

    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        if (s->mmu.park[i].state != P2PLAB_PARK_FREE) {
            m |= 1u << desc_ctx(s->mmu.park[i].flags);
        }
    }
    return m;
}

bool p2plab_mmu_can_fetch(P2plabState *s)
{
    return parked_count(s) < P2PLAB_MMU_PARK_MAX;
}

bool p2plab_mmu_busy(P2plabState *s)
{
    return parked_count(s) != 0;
}

bool p2plab_mmu_has_work(P2plabState *s)
{
    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        uint32_t st = s->mmu.park[i].state;

        if (st == P2PLAB_PARK_READY || st == P2PLAB_PARK_CANCEL ||
            (st == P2PLAB_PARK_HELD && !s->mmu.hold_faults)) {
            return true;
        }
    }
    return false;
}

bool p2plab_mmu_must_wait(P2plabState *s)
{
    return p2plab_mmu_desc(s->cur_flags) && ctx_first(s, desc_ctx(s->cur_flags));
}

/*
 * Park the in-flight descriptor in @state (WAITING, or a fault state set by mmu_fault). From the
 * ring HEAD: take a slot, write STALLED into its status, advance HEAD. Returns false if the engine
 * halted (status write failed).
 */
static P2plabParked *park_cur(P2plabState *s, uint32_t state)
{
    P2plabParked *p = NULL;
    int slot = s->mmu.cur_slot;

    if (slot < 0) {
        for (slot = 0; slot < P2PLAB_MMU_PARK_MAX; slot++) {
            if (s->mmu.park[slot].state == P2PLAB_PARK_FREE) {
                break;
            }
        }
        /* the engine fetches only with a free slot and nothing else parks meanwhile */
        assert(slot < P2PLAB_MMU_PARK_MAX);
        if (p2plab_desc_write_status(s, s->cur_idx, P2PLAB_DESC_STALLED) != MEMTX_OK) {
            p2plab_halt(s, P2PLAB_ERR_STATUS_WRITE);
            return NULL;
        }
        p = &s->mmu.park[slot];
        p->order = s->mmu.park_order++;
        s->regs[P2PLAB_R_RING_HEAD] = (s->cur_idx + 1) & (s->regs[P2PLAB_R_RING_SIZE] - 1);
    }
    p = &s->mmu.park[slot];
    p->src = s->cur_src;
    p->dst = s->cur_dst;
    p->done = s->cur_done;
    p->len = s->cur_len;
    p->flags = s->cur_flags;
    p->idx = s->cur_idx;
    p->state = state;
    s->in_flight = false;
    s->mmu.cur_slot = -1;
    trace_p2plab_mmu_park(p->idx, desc_ctx(p->flags), state, p->done);
    return p;
}

bool p2plab_mmu_park(P2plabState *s, uint32_t state)
{
    return park_cur(s, state) != NULL;
}

/* the in-flight parked descriptor completed (p2plab_complete): free it, promote the next */
void p2plab_mmu_completed(P2plabState *s)
{
    P2plabParked *p, *next;

    if (s->mmu.cur_slot < 0) {
        return;
    }
    p = &s->mmu.park[s->mmu.cur_slot];
    p->state = P2PLAB_PARK_FREE;
    s->mmu.cur_slot = -1;
    next = ctx_first(s, desc_ctx(p->flags));
    if (next && next->state == P2PLAB_PARK_WAITING) {
        next->state = P2PLAB_PARK_READY;
    }
}

static void load_parked(P2plabState *s, int slot)
{
    P2plabParked *p = &s->mmu.park[slot];

    s->cur_src = p->src;
    s->cur_dst = p->dst;
    s->cur_done = p->done;
    s->cur_len = p->len;
    s->cur_flags = p->flags;
    s->cur_idx = p->idx;
    s->mmu.cur_slot = slot;
    s->in_flight = true;
}

/*
 * One unit of parked work, bottom half only, engine idle (nothing in flight): complete a cancelled
 * descriptor, record a fault that was held, or take the oldest READY descriptor back in flight.
 * Returns false if there was nothing to do.
 */
bool p2plab_mmu_service(P2plabState *s)
{
    int ready = -1;

    for (int i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        P2plabParked *p = &s->mmu.park[i];

        if (p->state == P2PLAB_PARK_CANCEL) {
            load_parked(s, i);
            p->state = P2PLAB_PARK_RUNNING;
            trace_p2plab_mmu_cancel(p->idx, desc_ctx(p->flags));
            p2plab_complete(s, P2PLAB_ERR_MMU_FAULT);
            return true;
        }
        if (p->state == P2PLAB_PARK_HELD && !s->mmu.hold_faults) {
            if (*mr(s, A_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE) {
                fault_report(s, p);
            } else {
                p->state = P2PLAB_PARK_LOST;
            }
            return true;
        }
        if (p->state == P2PLAB_PARK_READY &&
            (ready < 0 || (int32_t)(p->order - s->mmu.park[ready].order) < 0)) {
            ready = i;
        }
    }
    if (ready < 0) {
        return false;
    }
    load_parked(s, ready);
    s->mmu.park[ready].state = P2PLAB_PARK_RUNNING;
    trace_p2plab_mmu_resume(s->cur_idx, desc_ctx(s->cur_flags), s->cur_done);
    return true;
}

/* A translation fault of the in-flight descriptor: record (or hold) it and park the descriptor. */
static uint32_t mmu_fault(P2plabState *s, uint64_t va, uint32_t acc, uint32_t reason)
{
    uint32_t ctx = desc_ctx(s->cur_flags);
    P2plabParked *p;

    s->mmu.stat_faults[acc - 1]++;
    trace_p2plab_mmu_fault(s->cur_idx, ctx, va, acc_names[acc], reason);
    if (!(*mr(s, A_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE)) {
        /* nobody to answer: the fault is final */
        return P2PLAB_ERR_MMU_FAULT;
    }
    /* the faulting descriptor is its context's oldest: younger ones wait behind it */
    p = park_cur(s, P2PLAB_PARK_HELD);
    if (!p) {
        return P2PLAB_STEP_STALLED;     /* halted */
    }
    p->fault_va = va;
    p->fault_ts = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
    p->fault_access = acc;
    p->fault_reason = reason;
    if (s->mmu.hold_faults) {
        trace_p2plab_mmu_inject_hold(p->idx, ctx);
    } else {
        fault_report(s, p);
    }
    return P2PLAB_STEP_STALLED;
}

/*
 * Abort every parked descriptor: with @writeback write DONE | ABORTED into their status (best
 * effort); with @count also count them as completed descriptors (CTRL.ENABLE 1 -> 0, like the
 * in-flight one). Returns how many there were.
 */
unsigned p2plab_mmu_abort_parked(P2plabState *s, bool writeback, bool count)
{
    unsigned n = 0;

    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        P2plabParked *p = &s->mmu.park[i];

        if (p->state == P2PLAB_PARK_FREE) {
            continue;
        }
        trace_p2plab_abort(p->idx);
        if (writeback && p2plab_ring_size_ok(s->regs[P2PLAB_R_RING_SIZE])) {
            p2plab_desc_write_status(s, p->idx, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
        }
        if (count) {
            s->regs[P2PLAB_R_COMPLETED]++;
            s->regs[P2PLAB_R_ERR_INDEX] = p->idx;
            s->stat_descs++;
            s->stat_errors++;
        }
        p->state = P2PLAB_PARK_FREE;
        n++;
    }
    s->mmu.cur_slot = -1;
    return n;
}

/* ---- descriptors ----------------------------------------------------------------------------- */

static bool va_range_ok(uint64_t va, uint64_t len)
{
    return va < MMU_VA_LIMIT && len <= MMU_VA_LIMIT - va;
}

/* Validation of a 1.1 descriptor (after BAD_LEN/BAD_FLAGS of the 1.0 checks, before ranges). */
uint32_t p2plab_mmu_validate(P2plabState *s)
{
    uint32_t f = s->cur_flags, op = desc_op(f), ctx = desc_ctx(f);
    bool sva = f & P2PLAB_DESC_F_SRC_VA, dva = f & P2PLAB_DESC_F_DST_VA;
    uint32_t err = P2PLAB_ERR_OK;

    if ((sva && (f & P2PLAB_DESC_F_SRC_LOCAL)) || (dva && (f & P2PLAB_DESC_F_DST_LOCAL))) {
        err = P2PLAB_ERR_BAD_FLAGS;
    } else if (op > P2PLAB_OP_PREFETCH ||
               (op != P2PLAB_OP_COPY &&
                (!dva || sva || (f & (P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_LOCAL))))) {
        err = P2PLAB_ERR_BAD_FLAGS;
    } else if ((op == P2PLAB_OP_FETCH_ADD || op == P2PLAB_OP_CMPXCHG) &&
               s->cur_len != 4 && s->cur_len != 8) {
        err = P2PLAB_ERR_BAD_LEN;
    } else if (!(sva || dva)) {
        err = P2PLAB_ERR_BAD_FLAGS;     /* CTX/OP bits without a VA side */
    } else if (!ctx_ok(s, ctx)) {
        err = P2PLAB_ERR_MMU_CTX;
    } else if ((sva && !va_range_ok(s->cur_src, s->cur_len)) ||
               (dva && !va_range_ok(s->cur_dst, s->cur_len))) {
        err = P2PLAB_ERR_MMU_VA;
    } else if ((op == P2PLAB_OP_FETCH_ADD || op == P2PLAB_OP_CMPXCHG) &&
               ((s->cur_dst & (s->cur_len - 1)) || (s->cur_src & (P2PLAB_ATOMIC_ARGS_ALIGN - 1)))) {
        err = P2PLAB_ERR_ATOMIC_ALIGN;
    } else if ((op == P2PLAB_OP_FETCH_ADD || op == P2PLAB_OP_CMPXCHG) &&
               s->cur_src + P2PLAB_ATOMIC_ARGS_SIZE - 1 < s->cur_src) {
        err = P2PLAB_ERR_SRC_DMA;
    }
    if (err) {
        trace_p2plab_err_mmu_desc(s->cur_idx, ctx, err);
    }
    return err;
}

/* resolve one side of a copy at offset s->cur_done: VA (translated), local or bus */
static uint32_t side(P2plabState *s, bool is_dst, MmuXlat *x, uint64_t *fault_va)
{
    uint32_t f = s->cur_flags;
    uint64_t a = (is_dst ? s->cur_dst : s->cur_src) + s->cur_done;
    bool va = f & (is_dst ? P2PLAB_DESC_F_DST_VA : P2PLAB_DESC_F_SRC_VA);
    uint32_t reason = 0, err = P2PLAB_ERR_OK;
    uint32_t acc = is_dst ? P2PLAB_FAULT_ACC_WRITE : P2PLAB_FAULT_ACC_READ;

    if (!va) {
        x->addr = a;
        x->avail = UINT64_MAX;
        x->local = f & (is_dst ? P2PLAB_DESC_F_DST_LOCAL : P2PLAB_DESC_F_SRC_LOCAL);
        return P2PLAB_ERR_OK;
    }
    switch (mmu_translate(s, desc_ctx(f), a, acc, x, &reason, &err)) {
    case MMU_OK:
        return P2PLAB_ERR_OK;
    case MMU_FAULT:
        *fault_va = a;
        return mmu_fault(s, a, acc, reason);
    default:
        return err;
    }
}

static uint32_t step_copy(P2plabState *s, uint64_t max, uint64_t *copied)
{
    MmuXlat sx, dx;
    uint64_t n, fva = 0;
    uint32_t err;

    err = side(s, false, &sx, &fva);
    if (err) {
        return err;
    }
    err = side(s, true, &dx, &fva);
    if (err) {
        return err;
    }
    n = MIN(MIN(s->cur_len - s->cur_done, max), MIN(sx.avail, dx.avail));
    if (sx.local && dx.local) {
        memmove(s->mem_ptr + dx.addr, s->mem_ptr + sx.addr, n);
        memory_region_set_dirty(s->mem_mr, dx.addr, n);
        s->stat_bytes_local += n;
    } else if (dx.local) {
        MemTxResult r = p2plab_bus_xfer(s, sx.addr, s->mem_ptr + dx.addr, n, false);

        memory_region_set_dirty(s->mem_mr, dx.addr, n);
        if (r != MEMTX_OK) {
            return P2PLAB_ERR_SRC_DMA;
        }
    } else if (sx.local) {
        if (p2plab_bus_xfer(s, dx.addr, s->mem_ptr + sx.addr, n, true) != MEMTX_OK) {
            return P2PLAB_ERR_DST_DMA;
        }
    } else {
        n = MIN(n, (uint64_t)P2PLAB_BOUNCE);
        if (p2plab_bus_xfer(s, sx.addr, s->bounce, n, false) != MEMTX_OK) {
            return P2PLAB_ERR_SRC_DMA;
        }
        if (p2plab_bus_xfer(s, dx.addr, s->bounce, n, true) != MEMTX_OK) {
            return P2PLAB_ERR_DST_DMA;
        }
    }
    s->cur_done += n;
    *copied = n;
    return P2PLAB_ERR_OK;
}

static uint32_t step_prefetch(P2plabState *s, uint64_t *copied)
{
    uint64_t va = s->cur_dst + s->cur_done;
    uint32_t reason = 0, err = P2PLAB_ERR_OK;
    MmuXlat x;

    switch (mmu_translate(s, desc_ctx(s->cur_flags), va, P2PLAB_FAULT_ACC_PREFETCH, &x,
                          &reason, &err)) {
    case MMU_OK:
        break;
    case MMU_FAULT:
        return mmu_fault(s, va, P2PLAB_FAULT_ACC_PREFETCH, reason);
    default:
        return err;
    }
    *copied = MIN(x.avail, s->cur_len - s->cur_done);
    s->cur_done += *copied;
    return P2PLAB_ERR_OK;
}

/* host-atomic read-modify-write of a little-endian word at @p */
static uint64_t atomic_rmw(void *p, unsigned width, uint32_t op, uint64_t operand,
                           uint64_t compare)
{
    if (width == 4) {
        uint32_t *w = p, old = qatomic_read(w), upd;

        if (op == P2PLAB_OP_CMPXCHG) {
            return le32_to_cpu(qatomic_cmpxchg(w, cpu_to_le32((uint32_t)compare),
                                               cpu_to_le32((uint32_t)operand)));
        }
        for (;;) {
            uint32_t seen;

            upd = cpu_to_le32(le32_to_cpu(old) + (uint32_t)operand);
            seen = qatomic_cmpxchg(w, old, upd);
            if (seen == old) {
                return le32_to_cpu(old);
            }
            old = seen;
        }
    } else {
        uint64_t *w = p, old = qatomic_read__nocheck(w), upd;

        if (op == P2PLAB_OP_CMPXCHG) {
            return le64_to_cpu(qatomic_cmpxchg__nocheck(w, cpu_to_le64(compare),
                                                        cpu_to_le64(operand)));
        }
        for (;;) {
            uint64_t seen;

            upd = cpu_to_le64(le64_to_cpu(old) + operand);
            seen = qatomic_cmpxchg__nocheck(w, old, upd);
            if (seen == old) {
                return le64_to_cpu(old);
            }
            old = seen;
        }
    }
}

static uint32_t step_atomic(P2plabState *s, uint64_t *copied)
{
    uint32_t op = desc_op(s->cur_flags), width = s->cur_len;
    uint32_t reason = 0, err = P2PLAB_ERR_OK;
    struct p2plab_atomic_args args;
    uint64_t old, res;
    MmuXlat x;

    switch (mmu_translate(s, desc_ctx(s->cur_flags), s->cur_dst, P2PLAB_FAULT_ACC_ATOMIC, &x,
                          &reason, &err)) {
    case MMU_OK:
        break;
    case MMU_FAULT:
        return mmu_fault(s, s->cur_dst, P2PLAB_FAULT_ACC_ATOMIC, reason);
    default:
        return err;
    }
    if (pci_dma_read(PCI_DEVICE(s), s->cur_src, &args, sizeof(args)) != MEMTX_OK) {
        trace_p2plab_err_bus_access(s->cur_src, sizeof(args), false, MEMTX_ERROR);
        return P2PLAB_ERR_SRC_DMA;
    }
    if (x.local) {
        old = atomic_rmw(s->mem_ptr + x.addr, width, op, le64_to_cpu(args.operand),
                         le64_to_cpu(args.compare));
        memory_region_set_dirty(s->mem_mr, x.addr, width);
    } else {
        PCIDevice *pd = PCI_DEVICE(s);
        MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
        bool sw, ram;
        AddressSpace *as;
        hwaddr xlat, l = width, ml = width;
        void *p;

        if (!(pci_get_word(pd->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
            trace_p2plab_err_bus_master_off(x.addr, width);
            return P2PLAB_ERR_ATOMIC_TARGET;
        }
        as = p2plab_route(s, x.addr, width, &sw);
        WITH_RCU_READ_LOCK_GUARD() {
            MemoryRegion *m = address_space_translate(as, x.addr, &xlat, &l, true, attrs);

            ram = memory_region_is_ram(m) && !memory_region_is_ram_device(m) &&
                  !memory_region_is_rom(m) && l >= width;
        }
        p = ram ? address_space_map(as, x.addr, &ml, true, attrs) : NULL;
        if (!p || ml < width) {
            if (p) {
                address_space_unmap(as, p, ml, true, 0);
            }
            trace_p2plab_err_mmu_atomic(x.addr, width);
            p2plab_guest_error(s, "MMU: atomic at bus 0x%" PRIx64 ": not RAM", x.addr);
            return P2PLAB_ERR_ATOMIC_TARGET;
        }
        old = atomic_rmw(p, width, op, le64_to_cpu(args.operand), le64_to_cpu(args.compare));
        address_space_unmap(as, p, ml, true, width);
    }
    trace_p2plab_mmu_atomic(s->cur_idx, op, s->cur_dst, width, old);
    res = cpu_to_le64(old);
    if (pci_dma_write(PCI_DEVICE(s), s->cur_src + offsetof(struct p2plab_atomic_args, result),
                      &res, 8) != MEMTX_OK) {
        return P2PLAB_ERR_DST_DMA;
    }
    s->cur_done = s->cur_len;
    *copied = width;
    return P2PLAB_ERR_OK;
}

/*
 * One step of the in-flight 1.1 descriptor. Returns an error code (the descriptor completes),
 * P2PLAB_ERR_OK (progress in *copied), or P2PLAB_STEP_STALLED (parked, nothing in flight).
 */
uint32_t p2plab_mmu_step(P2plabState *s, uint64_t max, uint64_t *copied)
{
    *copied = 0;
    switch (desc_op(s->cur_flags)) {
    case P2PLAB_OP_FETCH_ADD:
    case P2PLAB_OP_CMPXCHG:
        return step_atomic(s, copied);
    case P2PLAB_OP_PREFETCH:
        return step_prefetch(s, copied);
    default:
        return step_copy(s, max, copied);
    }
}

/* ---- invalidation ---------------------------------------------------------------------------- */

static void inv_complete_one(P2plabState *s)
{
    P2plabInv *inv = &s->mmu.inv[0];
    unsigned dropped = 0;

    if (inv->ignore) {
        trace_p2plab_mmu_inject_ignore_inv(inv->seq);
    } else {
        dropped = tlb_drop(s, inv->cmd & P2PLAB_INV_CMD_ALL, inv->ctx, inv->va, inv->size);
    }
    s->mmu.stat_invs++;
    *mr(s, A_INV_DONE) = inv->seq;
    trace_p2plab_mmu_inv_done(inv->seq, dropped);
    s->mmu.inv_count--;
    memmove(&s->mmu.inv[0], &s->mmu.inv[1], s->mmu.inv_count * sizeof(P2plabInv));
}

static void inv_run(P2plabState *s, bool all)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    while (s->mmu.inv_count && (all || s->mmu.inv[0].due <= now)) {
        inv_complete_one(s);
    }
    if (s->mmu.inv_count) {
        timer_mod(s->mmu.inv_timer, s->mmu.inv[0].due);
    } else {
        timer_del(s->mmu.inv_timer);
    }
}

static void inv_timer_cb(void *opaque)
{
    inv_run(opaque, false);
}

static void inv_submit(P2plabState *s, uint32_t cmd)
{
    P2plabInv *inv;

    if (!(cmd & P2PLAB_INV_CMD_SUBMIT)) {
        trace_p2plab_err_reserved_bits(A_INV_CMD, cmd);
        p2plab_guest_error(s, "INV_CMD 0x%x without SUBMIT: ignored", cmd);
        return;
    }
    if (cmd & ~(P2PLAB_INV_CMD_SUBMIT | P2PLAB_INV_CMD_ALL)) {
        trace_p2plab_err_reserved_bits(A_INV_CMD, cmd);
        p2plab_guest_error(s, "INV_CMD: reserved bits 0x%x ignored",
                           cmd & ~(P2PLAB_INV_CMD_SUBMIT | P2PLAB_INV_CMD_ALL));
    }
    if (s->mmu.inv_count == P2PLAB_MMU_INV_QUEUE) {
        inv_complete_one(s);        /* queue full: the oldest completes now */
    }
    inv = &s->mmu.inv[s->mmu.inv_count++];
    inv->seq = ++*mr(s, A_INV_ISSUED);
    inv->cmd = cmd;
    inv->ctx = *mr(s, A_INV_CTX);
    inv->va = deposit64(*mr(s, A_INV_VA_LO), 32, 32, *mr(s, A_INV_VA_HI));
    inv->size = deposit64(*mr(s, A_INV_SIZE_LO), 32, 32, *mr(s, A_INV_SIZE_HI));
    inv->due = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) + (int64_t)s->mmu.inv_delay_us * SCALE_US;
    inv->ignore = s->mmu.ignore_inv;
    s->mmu.ignore_inv = false;
    trace_p2plab_mmu_inv_submit(inv->seq, inv->ctx, inv->va, inv->size, cmd);
    if (s->mmu.inv_delay_us) {
        trace_p2plab_mmu_inject_inv_delay(inv->seq, s->mmu.inv_delay_us);
    }
    inv_run(s, s->mmu.inv_delay_us == 0);
}

/* ---- replay / cancel ------------------------------------------------------------------------- */

static void fault_resp(P2plabState *s, uint32_t val)
{
    uint32_t ctx = (val & P2PLAB_FAULT_RESP_CTX_MASK) >> P2PLAB_FAULT_RESP_CTX_SHIFT;
    uint32_t idx = val & P2PLAB_FAULT_RESP_INDEX_MASK;
    bool cancel = val & P2PLAB_FAULT_RESP_CANCEL, all = val & P2PLAB_FAULT_RESP_ALL_CTX;
    unsigned n = 0;

    if (val & ~(P2PLAB_FAULT_RESP_INDEX_MASK | P2PLAB_FAULT_RESP_CTX_MASK |
                P2PLAB_FAULT_RESP_CANCEL | P2PLAB_FAULT_RESP_ALL_CTX)) {
        trace_p2plab_err_reserved_bits(A_FAULT_RESP, val);
        p2plab_guest_error(s, "FAULT_RESP: reserved bits in 0x%x ignored", val);
    }
    if (!cancel && s->mmu.drop_replay) {
        s->mmu.drop_replay = false;
        trace_p2plab_mmu_inject_drop_replay(ctx, idx);
        return;
    }
    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        P2plabParked *p = &s->mmu.park[i];
        bool faulted = p->state == P2PLAB_PARK_FAULTED || p->state == P2PLAB_PARK_HELD ||
                       p->state == P2PLAB_PARK_LOST;

        if (p->state == P2PLAB_PARK_FREE || desc_ctx(p->flags) != ctx ||
            (!all && p->idx != idx)) {
            continue;
        }
        if (faulted || (cancel && all && p->state != P2PLAB_PARK_RUNNING)) {
            p->state = cancel ? P2PLAB_PARK_CANCEL : P2PLAB_PARK_READY;
            n++;
        }
    }
    if (!n) {
        trace_p2plab_err_mmu_resp(val);
        p2plab_guest_error(s, "FAULT_RESP 0x%x: no such stalled descriptor", val);
        return;
    }
    if (cancel) {
        s->mmu.stat_cancels += n;
    } else {
        s->mmu.stat_replays += n;
    }
    trace_p2plab_mmu_resp(ctx, idx, cancel, all, n);
    p2plab_kick(s);
}

/* ---- registers ------------------------------------------------------------------------------- */

uint32_t p2plab_mmu_read(P2plabState *s, hwaddr addr)
{
    switch (addr) {
    case A_MMU_STALLED:
        return stalled_mask(s);
    case A_MMU_PARKED:
        return parked_count(s);
    case A_FAULT_RESP:
    case A_INV_CMD:
        return 0;
    default:
        if (addr > A_INV_DONE && addr < A_CTX_ROOT_LO0) {
            trace_p2plab_err_mmio_unknown(addr, false);
            p2plab_guest_error(s, "read of unimplemented register 0x%" HWADDR_PRIx, addr);
            return 0;
        }
        if (addr > A_CTX_ROOT_HIF) {
            trace_p2plab_err_mmio_unknown(addr, false);
            p2plab_guest_error(s, "read of unimplemented register 0x%" HWADDR_PRIx, addr);
            return 0;
        }
        return *mr(s, addr);
    }
}

static void fault_ring_write(P2plabState *s, hwaddr addr, uint32_t val)
{
    if (*mr(s, A_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE) {
        trace_p2plab_err_ring_write_enabled(addr, val);
        p2plab_guest_error(s, "fault ring register 0x%" HWADDR_PRIx " written while enabled: "
                           "ignored", addr);
        return;
    }
    *mr(s, addr) = val;
    *mr(s, A_FAULT_HEAD) = *mr(s, A_FAULT_TAIL) = 0;
}

static void fault_ctrl_write(P2plabState *s, uint32_t val)
{
    uint32_t size = *mr(s, A_FAULT_SIZE);

    if (val & ~P2PLAB_FAULT_CTRL_ENABLE) {
        trace_p2plab_err_reserved_bits(A_FAULT_CTRL, val);
        p2plab_guest_error(s, "FAULT_CTRL: reserved bits 0x%x ignored",
                           val & ~P2PLAB_FAULT_CTRL_ENABLE);
    }
    if (!(val & P2PLAB_FAULT_CTRL_ENABLE)) {
        *mr(s, A_FAULT_CTRL) = 0;
        return;
    }
    if ((fault_base(s) & (P2PLAB_FAULT_RING_ALIGN - 1)) || size < 2 || size > P2PLAB_FAULT_RING_MAX ||
        !is_power_of_2(size) || *mr(s, A_FAULT_HEAD) >= size) {
        trace_p2plab_err_fault_ring(fault_base(s), size);
        p2plab_guest_error(s, "FAULT_CTRL.ENABLE refused: base 0x%" PRIx64 " (32-byte aligned?) "
                           "size %u (power of two 2..%u?)", fault_base(s), size,
                           P2PLAB_FAULT_RING_MAX);
        *mr(s, A_FAULT_CTRL) = 0;
        return;
    }
    *mr(s, A_FAULT_CTRL) = P2PLAB_FAULT_CTRL_ENABLE;
}

void p2plab_mmu_write(P2plabState *s, hwaddr addr, uint32_t val)
{
    switch (addr) {
    case A_FAULT_BASE_LO:
    case A_FAULT_BASE_HI:
    case A_FAULT_SIZE:
        fault_ring_write(s, addr, val);
        return;
    case A_FAULT_HEAD:
        if (!(*mr(s, A_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE) || val >= *mr(s, A_FAULT_SIZE)) {
            trace_p2plab_err_fault_ring(fault_base(s), val);
            p2plab_guest_error(s, "FAULT_HEAD %u: ring not enabled or beyond FAULT_SIZE", val);
            return;
        }
        *mr(s, A_FAULT_HEAD) = val;
        return;
    case A_FAULT_CTRL:
        fault_ctrl_write(s, val);
        return;
    case A_FAULT_STATUS:
        *mr(s, A_FAULT_STATUS) &= ~val;
        return;
    case A_FAULT_RESP:
        fault_resp(s, val);
        return;
    case A_INV_CTX:
        if (val >= P2PLAB_MMU_CONTEXTS) {
            trace_p2plab_err_reserved_bits(addr, val);
            p2plab_guest_error(s, "INV_CTX %u: only bits 3:0 are used", val);
        }
        *mr(s, addr) = val & (P2PLAB_MMU_CONTEXTS - 1);
        return;
    case A_INV_VA_LO:
    case A_INV_VA_HI:
    case A_INV_SIZE_LO:
    case A_INV_SIZE_HI:
        *mr(s, addr) = val;
        return;
    case A_INV_CMD:
        inv_submit(s, val);
        return;
    default:
        break;
    }
    if (addr >= A_CTX_ROOT_LO0 && addr <= A_CTX_ROOT_HIF) {
        uint32_t ctx = (addr - A_CTX_ROOT_LO0) / 8;
        bool lo = !((addr - A_CTX_ROOT_LO0) & 4);

        if (val & (lo ? MMU_ROOT_LO_RSVD : MMU_ROOT_HI_RSVD)) {
            trace_p2plab_err_reserved_bits(addr, val);
            p2plab_guest_error(s, "CTX_ROOT of context %u: reserved bits in 0x%x (the context "
                               "fails descriptors with error 0x%x until fixed)", ctx, val,
                               P2PLAB_ERR_MMU_CTX);
        }
        *mr(s, addr) = val;
        /* a new root: nothing cached for the old one may be used */
        tlb_drop(s, false, ctx, 0, 0);
        trace_p2plab_mmu_ctx(ctx, ctx_root(s, ctx), ctx_ok(s, ctx));
        return;
    }
    if (addr < A_CTX_ROOT_LO0 && addr <= A_INV_DONE) {
        trace_p2plab_err_ro_write(addr, val);
        p2plab_guest_error(s, "write to read-only register 0x%" HWADDR_PRIx " ignored", addr);
    } else {
        trace_p2plab_err_mmio_unknown(addr, true);
        p2plab_guest_error(s, "write to unimplemented register 0x%" HWADDR_PRIx, addr);
    }
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

static void mmu_reset_regs(P2plabState *s)
{
    memset(s->mmu.regs, 0, sizeof(s->mmu.regs));
    *mr(s, A_MMU_CAPS) = P2PLAB_MMU_CONTEXTS | P2PLAB_MMU_CAP_VA_BITS(P2PLAB_MMU_VA_BITS) |
                         P2PLAB_MMU_CAP_2M | P2PLAB_MMU_CAP_LOCAL | P2PLAB_MMU_CAP_ATOMIC;
    *mr(s, A_MMU_TLB_SIZE) = s->mmu.tlb_entries;
}

/* CTRL.RESET (@writeback: ABORTED into parked descriptors' status) and device reset */
void p2plab_mmu_reset(P2plabState *s, bool writeback)
{
    p2plab_mmu_abort_parked(s, writeback, false);
    s->mmu.inv_count = 0;
    if (s->mmu.inv_timer) {
        timer_del(s->mmu.inv_timer);
    }
    tlb_flush_all(s);
    s->mmu.park_order = 0;
    mmu_reset_regs(s);
}

void p2plab_mmu_realize(P2plabState *s, Error **errp)
{
    if (s->mmu.tlb_entries > P2PLAB_MMU_TLB_MAX) {
        error_setg(errp, "p2plab: tlb-entries %u must be at most %u (0 = no TLB)",
                   s->mmu.tlb_entries, P2PLAB_MMU_TLB_MAX);
        return;
    }
    s->mmu.tlb = g_new0(P2plabTlbEntry, MAX(s->mmu.tlb_entries, 1));
    s->mmu.tlb_hash = g_hash_table_new(g_int64_hash, g_int64_equal);
    s->mmu.inv_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, inv_timer_cb, s);
    s->mmu.cur_slot = -1;
}

void p2plab_mmu_exit(P2plabState *s)
{
    timer_free(s->mmu.inv_timer);
    s->mmu.inv_timer = NULL;
    g_hash_table_destroy(s->mmu.tlb_hash);
    s->mmu.tlb_hash = NULL;
    g_free(s->mmu.tlb);
    s->mmu.tlb = NULL;
}

int p2plab_mmu_post_load(P2plabState *s)
{
    uint32_t fsize = *mr(s, A_FAULT_SIZE);

    /* cur_slot >= 0 without in_flight is legal: the engine halted while it ran */
    if (s->mmu.cur_slot < -1 || s->mmu.cur_slot >= P2PLAB_MMU_PARK_MAX ||
        (s->mmu.cur_slot >= 0 && s->mmu.park[s->mmu.cur_slot].state != P2PLAB_PARK_RUNNING)) {
        return -EINVAL;
    }
    for (unsigned i = 0; i < P2PLAB_MMU_PARK_MAX; i++) {
        P2plabParked *p = &s->mmu.park[i];

        if (p->state >= P2PLAB_PARK__MAX || (p->state != P2PLAB_PARK_FREE &&
            (p->idx >= P2PLAB_RING_MAX || p->done > p->len ||
             p->len > P2PLAB_DESC_MAX_LEN || !p2plab_ring_size_ok(s->regs[P2PLAB_R_RING_SIZE])))) {
            return -EINVAL;
        }
        if (p->state == P2PLAB_PARK_RUNNING && (int)i != s->mmu.cur_slot) {
            return -EINVAL;
        }
    }
    /* the engine only fetches with a free park slot: a ring descriptor in flight needs one */
    if (s->in_flight && s->mmu.cur_slot < 0 && parked_count(s) >= P2PLAB_MMU_PARK_MAX) {
        return -EINVAL;
    }
    if ((*mr(s, A_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE) &&
        (fsize < 2 || fsize > P2PLAB_FAULT_RING_MAX || !is_power_of_2(fsize) ||
         *mr(s, A_FAULT_HEAD) >= fsize || *mr(s, A_FAULT_TAIL) >= fsize)) {
        return -EINVAL;
    }
    /* the TLB is not migrated (empty here): pending invalidations are complete */
    *mr(s, A_INV_DONE) = *mr(s, A_INV_ISSUED);
    *mr(s, A_MMU_TLB_SIZE) = s->mmu.tlb_entries;
    s->mmu.inv_count = 0;
    return 0;
}

static const VMStateDescription vmstate_p2plab_parked = {
    .name = "p2plab/parked",
    .version_id = 1,
    .minimum_version_id = 1,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT64(src, P2plabParked),
        VMSTATE_UINT64(dst, P2plabParked),
        VMSTATE_UINT64(done, P2plabParked),
        VMSTATE_UINT64(fault_va, P2plabParked),
        VMSTATE_UINT64(fault_ts, P2plabParked),
        VMSTATE_UINT32(len, P2plabParked),
        VMSTATE_UINT32(flags, P2plabParked),
        VMSTATE_UINT32(idx, P2plabParked),
        VMSTATE_UINT32(state, P2plabParked),
        VMSTATE_UINT32(fault_access, P2plabParked),
        VMSTATE_UINT32(fault_reason, P2plabParked),
        VMSTATE_UINT32(order, P2plabParked),
        VMSTATE_END_OF_LIST()
    }
};

static bool p2plab_mmu_vmstate_needed(void *opaque)
{
    return true;
}

const VMStateDescription vmstate_p2plab_mmu = {
    .name = "p2plab/mmu",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = p2plab_mmu_vmstate_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_UINT32(cur_idx, P2plabState),
        VMSTATE_UINT32_ARRAY(mmu.regs, P2plabState, P2PLAB_MMU_NUM_REGS),
        VMSTATE_STRUCT_ARRAY(mmu.park, P2plabState, P2PLAB_MMU_PARK_MAX, 1,
                             vmstate_p2plab_parked, P2plabParked),
        VMSTATE_UINT32(mmu.park_order, P2plabState),
        VMSTATE_INT32(mmu.cur_slot, P2plabState),
        VMSTATE_UINT64_ARRAY(mmu.stat_faults, P2plabState, 4),
        VMSTATE_UINT64(mmu.stat_replays, P2plabState),
        VMSTATE_UINT64(mmu.stat_cancels, P2plabState),
        VMSTATE_UINT64(mmu.stat_tlb_hits, P2plabState),
        VMSTATE_UINT64(mmu.stat_tlb_misses, P2plabState),
        VMSTATE_UINT64(mmu.stat_invs, P2plabState),
        VMSTATE_UINT64(mmu.stat_walks, P2plabState),
        VMSTATE_UINT64(mmu.stat_overflows, P2plabState),
        VMSTATE_END_OF_LIST()
    }
};

/* ---- QOM: fault injection and counters ------------------------------------------------------- */

static bool get_hold(Object *obj, Error **errp)
{
    return P2PLAB(obj)->mmu.hold_faults;
}

static void set_hold(Object *obj, bool v, Error **errp)
{
    P2plabState *s = P2PLAB(obj);

    s->mmu.hold_faults = v;
    if (!v && DEVICE(obj)->realized) {
        p2plab_kick(s);         /* held faults are recorded by the bottom half */
    }
}

static bool get_ignore_inv(Object *obj, Error **errp)
{
    return P2PLAB(obj)->mmu.ignore_inv;
}

static void set_ignore_inv(Object *obj, bool v, Error **errp)
{
    P2PLAB(obj)->mmu.ignore_inv = v;
}

static bool get_drop_replay(Object *obj, Error **errp)
{
    return P2PLAB(obj)->mmu.drop_replay;
}

static void set_drop_replay(Object *obj, bool v, Error **errp)
{
    P2PLAB(obj)->mmu.drop_replay = v;
}

void p2plab_mmu_instance_init(P2plabState *s)
{
    Object *obj = OBJECT(s);
    static const struct { const char *name; size_t off; } stats[] = {
        { "stat-mmu-faults-read", offsetof(P2plabState, mmu.stat_faults[0]) },
        { "stat-mmu-faults-write", offsetof(P2plabState, mmu.stat_faults[1]) },
        { "stat-mmu-faults-atomic", offsetof(P2plabState, mmu.stat_faults[2]) },
        { "stat-mmu-faults-prefetch", offsetof(P2plabState, mmu.stat_faults[3]) },
        { "stat-mmu-replays", offsetof(P2plabState, mmu.stat_replays) },
        { "stat-mmu-cancels", offsetof(P2plabState, mmu.stat_cancels) },
        { "stat-mmu-tlb-hits", offsetof(P2plabState, mmu.stat_tlb_hits) },
        { "stat-mmu-tlb-misses", offsetof(P2plabState, mmu.stat_tlb_misses) },
        { "stat-mmu-invalidations", offsetof(P2plabState, mmu.stat_invs) },
        { "stat-mmu-walks", offsetof(P2plabState, mmu.stat_walks) },
        { "stat-mmu-fault-overflows", offsetof(P2plabState, mmu.stat_overflows) },
    };

    s->mmu.cur_slot = -1;
    object_property_add_bool(obj, "mmu-hold-faults", get_hold, set_hold);
    object_property_add_uint32_ptr(obj, "mmu-spurious-fault", &s->mmu.spurious_fault,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "mmu-inv-delay-us", &s->mmu.inv_delay_us,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_bool(obj, "mmu-ignore-inv", get_ignore_inv, set_ignore_inv);
    object_property_add_bool(obj, "mmu-drop-replay", get_drop_replay, set_drop_replay);
    object_property_set_description(obj, "mmu-hold-faults",
        "fault: while true, MMU faults stall their descriptor but are not recorded or "
        "signalled; recorded when set back to false");
    object_property_set_description(obj, "mmu-spurious-fault",
        "fault: the Nth translation from now faults although the mapping is valid (0 = off)");
    object_property_set_description(obj, "mmu-inv-delay-us",
        "fault: invalidations complete (and take effect) this many virtual-clock us late");
    object_property_set_description(obj, "mmu-ignore-inv",
        "fault: the next invalidation completes without dropping TLB entries (self-clearing)");
    object_property_set_description(obj, "mmu-drop-replay",
        "fault: the next replay response is ignored (self-clearing)");
    for (size_t i = 0; i < ARRAY_SIZE(stats); i++) {
        object_property_add_uint64_ptr(obj, stats[i].name,
                                       (uint64_t *)((char *)s + stats[i].off), OBJ_PROP_FLAG_READ);
        object_property_set_description(obj, stats[i].name, "counter (read-only, since creation)");
    }
}
