/*
 * p2plab - state shared by the device core (p2plab.c) and its device MMU (p2plab-mmu.c).
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Not an interface: the device<->driver contract is p2plab_hw.h + docs/device.md.
 */
#ifndef HW_MISC_P2PLAB_INTERNAL_H
#define HW_MISC_P2PLAB_INTERNAL_H

#include "hw/pci/pci_device.h"
#include "system/hostmem.h"
#include "exec/memattrs.h"
#include "qemu/queue.h"
#include "qemu/units.h"
#include "p2plab_hw.h"

#define TYPE_P2PLAB "p2plab"
OBJECT_DECLARE_SIMPLE_TYPE(P2plabState, P2PLAB)

#define P2PLAB_MMU_TLB_DEFAULT  64
#define P2PLAB_RING_MAX         4096            /* entries (128 KiB of descriptors) */
#define P2PLAB_BOUNCE           (256 * KiB)     /* bus->bus and MMIO staging buffer */
#define P2PLAB_R_RING_HEAD      (P2PLAB_REG_RING_HEAD / 4)
#define P2PLAB_R_RING_SIZE      (P2PLAB_REG_RING_SIZE / 4)
#define P2PLAB_R_COMPLETED      (P2PLAB_REG_COMPLETED / 4)
#define P2PLAB_R_ERR_INDEX      (P2PLAB_REG_ERR_INDEX / 4)

/* a parked (stalled or waiting) descriptor; see docs/device.md 15.6 */
typedef enum {
    P2PLAB_PARK_FREE = 0,
    P2PLAB_PARK_WAITING,        /* behind an older parked descriptor of its context */
    P2PLAB_PARK_FAULTED,        /* fault recorded in the ring, waits for replay/cancel */
    P2PLAB_PARK_HELD,           /* fault not yet recorded: mmu-hold-faults */
    P2PLAB_PARK_LOST,           /* fault not recorded: ring full / off / write error */
    P2PLAB_PARK_READY,          /* replayed: runs again */
    P2PLAB_PARK_CANCEL,         /* cancelled: completes with ERR_MMU_FAULT */
    P2PLAB_PARK_RUNNING,        /* taken back into the engine (in flight) */
    P2PLAB_PARK__MAX,
} P2plabParkState;

typedef struct P2plabParked {
    uint64_t src, dst, done;
    uint64_t fault_va, fault_ts;
    uint32_t len, flags, idx;
    uint32_t state;             /* P2plabParkState */
    uint32_t fault_access, fault_reason;
    uint32_t order;             /* parking order: FIFO per context */
} P2plabParked;

typedef struct P2plabTlbEntry {
    uint64_t key;               /* hash key: leaf base | ctx << 1 | (size == 2 MiB) */
    uint64_t va;                /* leaf base (aligned to size) */
    uint64_t target;            /* bus address or device-memory offset of the leaf */
    uint64_t size;              /* 4 KiB or 2 MiB; 0 = invalid */
    uint32_t ctx;
    uint32_t pte_flags;         /* P2PLAB_PTE_R/W/A/LOCAL */
} P2plabTlbEntry;

typedef struct P2plabInv {
    uint64_t va, size;
    int64_t due;                /* QEMU_CLOCK_VIRTUAL ns */
    uint32_t ctx, cmd, seq;
    bool ignore;
} P2plabInv;

typedef struct P2plabMmu {
    /* migrated */
    uint32_t regs[P2PLAB_MMU_NUM_REGS];
    P2plabParked park[P2PLAB_MMU_PARK_MAX];
    uint32_t park_order;
    int32_t cur_slot;           /* park slot of the in-flight descriptor, -1 = ring HEAD */

    /* not migrated (caches and pending timers; see post_load) */
    P2plabTlbEntry *tlb;
    GHashTable *tlb_hash;       /* key -> entry in tlb[] */
    uint32_t tlb_next;          /* FIFO replacement hand */
    uint32_t tlb_entries;       /* property tlb-entries */
    P2plabInv inv[P2PLAB_MMU_INV_QUEUE];
    unsigned inv_count;
    QEMUTimer *inv_timer;

    /* fault injection */
    bool hold_faults, ignore_inv, drop_replay;
    uint32_t spurious_fault, inv_delay_us;

    /* counters */
    uint64_t stat_faults[4];    /* read, write, atomic, prefetch */
    uint64_t stat_replays, stat_cancels, stat_tlb_hits, stat_tlb_misses, stat_invs,
             stat_walks, stat_overflows;
} P2plabMmu;

struct P2plabState {
    PCIDevice parent_obj;

    /* configuration */
    uint64_t mem_size;
    HostMemoryBackend *hostmem;

    /* BARs */
    MemoryRegion bar0;          /* container: regs + MSI-X + link-down overlay */
    MemoryRegion regs_io;
    MemoryRegion bar0_dead;
    MemoryRegion bar2;          /* container: device memory + link-down overlay */
    MemoryRegion mem_ram;       /* when no memdev */
    MemoryRegion bar2_dead;
    MemoryRegion *mem_mr;       /* the RAM region behind BAR2 */
    uint8_t *mem_ptr;

    /* register file and engine state (migrated) */
    uint32_t regs[P2PLAB_NUM_REGS];
    bool in_flight;             /* descriptor at HEAD (or a parked one) being processed */
    uint64_t cur_src, cur_dst, cur_done;
    uint32_t cur_len, cur_flags;
    uint32_t cur_idx;           /* ring index of the in-flight descriptor */
    bool intx_level;

    /* not migrated */
    QEMUBH *bh;
    QEMUTimer *timer;
    int64_t wait_until;         /* QEMU_CLOCK_VIRTUAL ns; work waits until then */
    uint8_t *bounce;            /* bus -> bus staging */
    uint8_t *stage;             /* MMIO read staging */
    AddressSpace *peer_as;      /* over the switch's internal bus (see p2plab_route) */
    MemoryRegion *peer_as_root;
    QLIST_ENTRY(P2plabState) link;

    /* fault injection */
    uint32_t fail_nth, fail_code, latency_us, bandwidth_mbps, drop_irqs;
    bool corrupt_next, link_down;

    /* counters */
    uint64_t stat_ring_skipped;     /* entries passed over at fetch (status DONE / STALLED) */
    uint64_t stat_descs, stat_bytes_host, stat_bytes_local, stat_bytes_peer,
             stat_bytes_peer_switch, stat_errors, stat_irqs, stat_irqs_dropped;

    P2plabMmu mmu;
};

/* pseudo error code: the in-flight descriptor was parked on an MMU fault (never written) */
#define P2PLAB_STEP_STALLED     0x100

/* p2plab.c, used by the MMU */
void p2plab_guest_error(P2plabState *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
void p2plab_raise(P2plabState *s, uint32_t bits);
void p2plab_kick(P2plabState *s);
MemTxResult p2plab_bus_xfer(P2plabState *s, uint64_t addr, uint8_t *buf, uint64_t len,
                            bool is_write);
AddressSpace *p2plab_route(P2plabState *s, uint64_t addr, uint64_t len, bool *sw);
void p2plab_count_bus(P2plabState *s, bool sw, bool dev, uint64_t n);
uint64_t p2plab_desc_addr(P2plabState *s, uint32_t idx);
MemTxResult p2plab_desc_write_status(P2plabState *s, uint32_t idx, uint32_t status);
bool p2plab_ring_size_ok(uint32_t size);
void p2plab_halt(P2plabState *s, uint32_t code);
void p2plab_complete(P2plabState *s, uint32_t err);

/* p2plab-mmu.c */
void p2plab_mmu_realize(P2plabState *s, Error **errp);
void p2plab_mmu_exit(P2plabState *s);
void p2plab_mmu_instance_init(P2plabState *s);
void p2plab_mmu_reset(P2plabState *s, bool writeback);
uint32_t p2plab_mmu_caps(P2plabState *s);
bool p2plab_mmu_is_reg(hwaddr addr);
uint32_t p2plab_mmu_read(P2plabState *s, hwaddr addr);
void p2plab_mmu_write(P2plabState *s, hwaddr addr, uint32_t val);
bool p2plab_mmu_desc(uint32_t flags);
uint32_t p2plab_mmu_validate(P2plabState *s);
bool p2plab_mmu_must_wait(P2plabState *s);
uint32_t p2plab_mmu_step(P2plabState *s, uint64_t max, uint64_t *copied);
bool p2plab_mmu_has_work(P2plabState *s);
bool p2plab_mmu_can_fetch(P2plabState *s);
bool p2plab_mmu_busy(P2plabState *s);
bool p2plab_mmu_service(P2plabState *s);
bool p2plab_mmu_park(P2plabState *s, uint32_t state);
void p2plab_mmu_completed(P2plabState *s);
unsigned p2plab_mmu_abort_parked(P2plabState *s, bool writeback, bool count);
int p2plab_mmu_post_load(P2plabState *s);
extern const VMStateDescription vmstate_p2plab_mmu;

/* p2plab_fetch(): the entry at HEAD was passed over (its status has DONE or STALLED), not fetched */
#define P2PLAB_FETCH_SKIPPED 0x100u

#endif /* HW_MISC_P2PLAB_INTERNAL_H */
