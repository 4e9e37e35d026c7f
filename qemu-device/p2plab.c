/*
 * p2plab - a PCIe DMA-engine endpoint for Linux P2PDMA / HMM labs.
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The device<->driver contract (registers, descriptor ring, error codes, interrupts, routing
 * rule, QOM properties) is docs/device.md in the p2plab repository; the register and descriptor
 * definitions come from p2plab_hw.h, shared with the guest driver.
 *
 *   BAR0  16 KiB   registers (0x0000), MSI-X table (0x2000), PBA (0x3000); 3 vectors (DONE,
 *                  ERROR, FAULT)
 *   BAR2  mem-size 64-bit prefetchable device memory (RAM, or a memory backend)
 *
 * QOM properties
 *   Configuration (set on -device, fixed after realize):
 *     mem-size=SIZE    BAR2 size; power of two, 1 MiB .. 64 GiB; default 256 MiB, or the size
 *                      of memdev when memdev is given (qom-get returns the effective size)
 *     memdev=ID        back BAR2 with a host memory backend (memory-backend-ram/-file/-memfd)
 *   Fault injection (read/write at any time, e.g. QMP qom-set/qom-get):
 *     fail-nth=N       uint32: the Nth descriptor fetched from now fails with fail-code (1 = next);
 *                      counts down, 0 = off
 *     fail-code=C      uint32: error code for fail-nth (bits 7:0 used; 0 -> P2PLAB_ERR_INJECTED);
 *                      default P2PLAB_ERR_INJECTED
 *     latency-us=U     uint32: extra latency before each descriptor starts (QEMU_CLOCK_VIRTUAL)
 *     bandwidth-mbps=M uint32: cap the copy rate at M MB/s (10^6 bytes/s); 0 = unlimited
 *     corrupt-next=B   bool: flip bit 0 of the first destination byte of the next descriptor that
 *                      completes successfully (self-clearing)
 *     drop-irqs=N      uint32: drop the next N interrupt messages (MSI-X or INTx assertions)
 *     link-down=B      bool: surprise link down: BAR/config reads all-ones, writes ignored, DMA
 *                      stops (in-flight work resumes when set back to false)
 *   Counters (read-only, uint64, since realize): stat-descriptors, stat-bytes-host,
 *     stat-bytes-local, stat-bytes-peer, stat-bytes-peer-switch, stat-errors, stat-irqs,
 *     stat-irqs-dropped, stat-ring-skipped (entries passed over at fetch: status DONE or STALLED)
 *
 * Interface 1.1 adds the device MMU (p2plab-mmu.c; registers 0x800-0x9ff, VA descriptors, fault
 * ring on MSI-X vector 2): property tlb-entries, knobs mmu-*, counters stat-mmu-*. This file only
 * hooks it in: MMIO dispatch, descriptor validation and steps, parked descriptors in the bottom
 * half, reset, VMState subsection.
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/units.h"
#include "qemu/module.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qemu/rcu.h"
#include "qemu/queue.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qom/object.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_bridge.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "hw/registerfields.h"
#include "system/hostmem.h"
#include "migration/vmstate.h"
#include "trace.h"
#include "p2plab_hw.h"
#include "p2plab-internal.h"
#if defined(__x86_64__) && defined(CONFIG_CPUID_H)
#include <immintrin.h>
#include "host/cpuinfo.h"
#define P2PLAB_STREAM_X86 1
#endif

/* QEMU 10.1 made class_init's data pointer const */
#if QEMU_VERSION_MAJOR > 10 || (QEMU_VERSION_MAJOR == 10 && QEMU_VERSION_MINOR >= 1)
#define P2PLAB_CLASS_DATA const void
#else
#define P2PLAB_CLASS_DATA void
#endif


REG32(ID,           P2PLAB_REG_ID)
REG32(VERSION,      P2PLAB_REG_VERSION)
REG32(CAPS,         P2PLAB_REG_CAPS)
REG32(MEM_SIZE_LO,  P2PLAB_REG_MEM_SIZE_LO)
REG32(MEM_SIZE_HI,  P2PLAB_REG_MEM_SIZE_HI)
REG32(CTRL,         P2PLAB_REG_CTRL)
REG32(STATUS,       P2PLAB_REG_STATUS)
REG32(RING_MAX,     P2PLAB_REG_RING_MAX)
REG32(RING_BASE_LO, P2PLAB_REG_RING_BASE_LO)
REG32(RING_BASE_HI, P2PLAB_REG_RING_BASE_HI)
REG32(RING_SIZE,    P2PLAB_REG_RING_SIZE)
REG32(RING_HEAD,    P2PLAB_REG_RING_HEAD)
REG32(RING_TAIL,    P2PLAB_REG_RING_TAIL)
REG32(INT_STATUS,   P2PLAB_REG_INT_STATUS)
REG32(INT_MASK,     P2PLAB_REG_INT_MASK)
REG32(ERR_CODE,     P2PLAB_REG_ERR_CODE)
REG32(ERR_INDEX,    P2PLAB_REG_ERR_INDEX)
REG32(SCRATCH,      P2PLAB_REG_SCRATCH)
REG32(COMPLETED,    P2PLAB_REG_COMPLETED)

#define P2PLAB_MEM_DEFAULT      (256 * MiB)
#define P2PLAB_MEM_MIN          (1 * MiB)
#define P2PLAB_MEM_MAX          (64 * GiB)
#define P2PLAB_SLICE_DESCS      64              /* per bottom-half run */
#define P2PLAB_SLICE_BYTES      (4 * MiB)       /* per bottom-half run */
#define P2PLAB_SLICE_NS         (2 * SCALE_MS)  /* per bottom-half run (slow MMIO targets) */
#define P2PLAB_CHUNK            (1 * MiB)       /* largest single copy step */
#define P2PLAB_BW_CHUNK         (64 * KiB)      /* copy step while bandwidth-capped */
#define P2PLAB_EXP_OFFSET       0x80
#define P2PLAB_VALID_CTRL       (P2PLAB_CTRL_ENABLE | P2PLAB_CTRL_RESET)


static QLIST_HEAD(, P2plabState) p2plab_devices = QLIST_HEAD_INITIALIZER(p2plab_devices);

void p2plab_guest_error(P2plabState *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, fmt);
    msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    qemu_log_mask(LOG_GUEST_ERROR, "p2plab %s: %s\n",
                  DEVICE(s)->id ? DEVICE(s)->id : "(anon)", msg);
}

bool p2plab_ring_size_ok(uint32_t size)
{
    return size >= 2 && size <= P2PLAB_RING_MAX && is_power_of_2(size);
}

static uint64_t p2plab_ring_base(P2plabState *s)
{
    return deposit64(s->regs[R_RING_BASE_LO], 32, 32, s->regs[R_RING_BASE_HI]);
}

/* work posted or started and not completed (STATUS.BUSY): includes parked descriptors */
static bool p2plab_pending(P2plabState *s)
{
    return s->in_flight || s->regs[R_RING_HEAD] != s->regs[R_RING_TAIL] || p2plab_mmu_busy(s);
}

/* something the engine can do now */
static bool p2plab_has_work(P2plabState *s)
{
    return s->in_flight || p2plab_mmu_has_work(s) ||
           (s->regs[R_RING_HEAD] != s->regs[R_RING_TAIL] && p2plab_mmu_can_fetch(s));
}

static bool p2plab_runnable(P2plabState *s)
{
    return (s->regs[R_CTRL] & P2PLAB_CTRL_ENABLE) &&
           !(s->regs[R_STATUS] & P2PLAB_STATUS_HALTED) && !s->link_down;
}

void p2plab_kick(P2plabState *s)
{
    if (p2plab_runnable(s) && p2plab_has_work(s)) {
        qemu_bh_schedule(s->bh);
    }
}

/* ---- interrupts ------------------------------------------------------------------------------- */

static void p2plab_update_intx(P2plabState *s, bool assert_allowed)
{
    PCIDevice *pd = PCI_DEVICE(s);
    bool want = !msix_enabled(pd) &&
                (s->regs[R_INT_STATUS] & ~s->regs[R_INT_MASK] & P2PLAB_INT_ALL);

    if (!want && s->intx_level) {
        s->intx_level = false;
        pci_set_irq(pd, 0);
    } else if (want && !s->intx_level && assert_allowed) {
        s->intx_level = true;
        pci_set_irq(pd, 1);
    }
}

/* Set INT_STATUS bits and send one message per unmasked cause (MSI-X vector or INTx). */
void p2plab_raise(P2plabState *s, uint32_t bits)
{
    PCIDevice *pd = PCI_DEVICE(s);

    s->regs[R_INT_STATUS] |= bits;
    for (unsigned vec = 0; vec < P2PLAB_NUM_VECTORS; vec++) {
        uint32_t bit = 1u << vec;     /* VEC_DONE/ERROR/FAULT = INT_DONE/ERROR/FAULT */

        if (!(bits & bit) || (s->regs[R_INT_MASK] & bit)) {
            continue;
        }
        if (s->drop_irqs) {
            s->drop_irqs--;
            s->stat_irqs_dropped++;
            trace_p2plab_irq_dropped(vec, s->drop_irqs);
            continue;
        }
        s->stat_irqs++;
        if (msix_enabled(pd)) {
            trace_p2plab_irq_msix(vec);
            msix_notify(pd, vec);
        } else {
            trace_p2plab_irq_intx(vec);
            p2plab_update_intx(s, true);
        }
    }
}

/* ---- peer-to-peer routing -------------------------------------------------------------------- */

typedef struct {
    PCIDevice *self_port;
    uint64_t addr, last;
    bool hit;
} P2plabPeerSearch;

static bool p2plab_window_contains(PCIDevice *br, uint8_t type, uint64_t addr, uint64_t last)
{
    pcibus_t base = pci_bridge_get_base(br, type);
    pcibus_t limit = pci_bridge_get_limit(br, type);

    return base <= limit && addr >= base && last <= limit;
}

static void p2plab_peer_search(PCIBus *bus, PCIDevice *dev, void *opaque)
{
    P2plabPeerSearch *ps = opaque;

    if (ps->hit || dev == ps->self_port || !object_dynamic_cast(OBJECT(dev), TYPE_PCI_BRIDGE) ||
        !pci_is_express(dev) || pcie_cap_get_type(dev) != PCI_EXP_TYPE_DOWNSTREAM ||
        !(pci_get_word(dev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY)) {
        return;
    }
    ps->hit = p2plab_window_contains(dev, PCI_BASE_ADDRESS_SPACE_MEMORY, ps->addr, ps->last) ||
              p2plab_window_contains(dev, PCI_BASE_ADDRESS_SPACE_MEMORY |
                                          PCI_BASE_ADDRESS_MEM_PREFETCH, ps->addr, ps->last);
}

/*
 * The switch-peer address space is heap-allocated and freed by RCU (address_space_destroy_free):
 * its last FlatView may still be in use by an RCU reader, and it must not live inside the device
 * state, which can be finalized before the RCU callback runs.
 */
static void p2plab_peer_as_free(P2plabState *s)
{
    if (s->peer_as) {
        address_space_destroy_free(s->peer_as);
        s->peer_as = NULL;
        s->peer_as_root = NULL;
    }
}

/*
 * Where does a bus-address request [addr, addr+len) from this device go?
 * Like a PCIe switch without ACS redirect: if our parent bridge is a switch downstream port whose
 * ACS control lacks P2P Request Redirect, and the range lies in the memory or prefetchable window
 * of a sibling downstream port (memory decoding on), the switch routes it to that port directly
 * (no IOMMU, no root complex): return an AddressSpace over the switch's internal bus and set
 * *sw. Otherwise the request goes upstream: the bus-master address space (IOMMU, system memory).
 */
AddressSpace *p2plab_route(P2plabState *s, uint64_t addr, uint64_t len, bool *sw)
{
    PCIDevice *pd = PCI_DEVICE(s);
    PCIDevice *port = pci_bridge_get_device(pci_get_bus(pd));
    P2plabPeerSearch ps = { .self_port = port, .addr = addr, .last = addr + len - 1 };
    PCIBus *ibus;
    uint16_t acs;

    *sw = false;
    if (!port || !pci_is_express(port) || pcie_cap_get_type(port) != PCI_EXP_TYPE_DOWNSTREAM) {
        return pci_get_address_space(pd);
    }
    acs = pcie_find_capability(port, PCI_EXT_CAP_ID_ACS);
    if (acs && (pci_get_word(port->config + acs + PCI_ACS_CTRL) & PCI_ACS_RR)) {
        trace_p2plab_route_acs_redirect(addr, len);
        return pci_get_address_space(pd);
    }
    ibus = pci_get_bus(port);
    pci_for_each_device_under_bus(ibus, p2plab_peer_search, &ps);
    if (!ps.hit) {
        return pci_get_address_space(pd);
    }
    if (s->peer_as_root != ibus->address_space_mem) {
        p2plab_peer_as_free(s);
        s->peer_as = g_new0(AddressSpace, 1);
        address_space_init(s->peer_as, ibus->address_space_mem, "p2plab-switch-peer");
        s->peer_as_root = ibus->address_space_mem;
    }
    *sw = true;
    return s->peer_as;
}

/* Is the memory region that a bus access reached a device's (a BAR) rather than system RAM? */
static bool p2plab_mr_is_device(MemoryRegion *mr)
{
    Object *owner = memory_region_owner(mr);
    P2plabState *p;

    if (!memory_region_is_ram(mr) || (owner && object_dynamic_cast(owner, TYPE_PCI_DEVICE))) {
        return true;
    }
    QLIST_FOREACH(p, &p2plab_devices, link) {
        if (p->mem_mr == mr) {
            return true;
        }
    }
    return false;
}

void p2plab_count_bus(P2plabState *s, bool sw, bool dev, uint64_t n)
{
    if (sw) {
        s->stat_bytes_peer += n;
        s->stat_bytes_peer_switch += n;
    } else if (dev) {
        s->stat_bytes_peer += n;
    } else {
        s->stat_bytes_host += n;
    }
}

/* ---- bulk copies ------------------------------------------------------------------------------- */

/*
 * Why not plain memmove (issue 16): glibc switches a copy to non-temporal (streaming) stores only
 * for a single call above its x86_non_temporal_threshold (3/4 of the LLC: 181 MiB on the lab
 * host). The engine copies in steps of at most 1 MiB, which glibc does with cached stores
 * (rep movsb): each destination line is read for ownership, then written back later, a third more
 * memory traffic than the streaming copy that one host memcpy of the whole 256 MiB buffer gets
 * (profile: 84% of the engine's time in rep movsb, memcpy-bench in the vmovntdq loop). A
 * descriptor of P2PLAB_STREAM_MIN bytes or more, which would not stay cached anyway, is copied
 * with streaming stores (AVX-512, AVX2 or SSE2, whatever the host has); shorter ones, pieces
 * below P2PLAB_STREAM_PIECE and overlapping ranges keep memmove (destination left in cache).
 */
#define P2PLAB_STREAM_MIN       (4 * MiB)       /* descriptor length */
#define P2PLAB_STREAM_PIECE     (4 * KiB)       /* smallest piece streamed */

#ifdef P2PLAB_STREAM_X86
/*
 * Streaming copy of @n bytes, @d 64-byte aligned, @n a multiple of 128. Like glibc's large copy,
 * 4 pages side by side (16 KiB blocks, 128-byte columns, source prefetched 2 columns ahead): the
 * interleave keeps more DRAM pages open at once; measured 15-20% faster than a linear loop.
 */
#define P2PLAB_STREAM_FN(name, attr, copy128)                                                  \
static void attr name(uint8_t *d, const uint8_t *s, size_t n)                                   \
{                                                                                               \
    for (; n >= 4 * 4096; n -= 4 * 4096, d += 4 * 4096, s += 4 * 4096) {                        \
        for (size_t i = 0; i < 4096; i += 128) {                                                \
            for (size_t pg = 0; pg < 4 * 4096; pg += 4096) {                                    \
                _mm_prefetch((const char *)s + pg + i + 256, _MM_HINT_T0);                      \
                copy128(d + pg + i, s + pg + i);                                                \
            }                                                                                   \
        }                                                                                       \
    }                                                                                           \
    for (; n; n -= 128, d += 128, s += 128) {                                                   \
        copy128(d, s);                                                                          \
    }                                                                                           \
}

static inline __attribute__((always_inline, target("avx512f")))
void p2plab_copy128_avx512(uint8_t *d, const uint8_t *s)
{
    __m512i a = _mm512_loadu_si512((const void *)s);
    __m512i b = _mm512_loadu_si512((const void *)(s + 64));

    _mm512_stream_si512((void *)d, a);
    _mm512_stream_si512((void *)(d + 64), b);
}

static inline __attribute__((always_inline, target("avx2")))
void p2plab_copy128_avx2(uint8_t *d, const uint8_t *s)
{
    for (int k = 0; k < 128; k += 64) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(s + k));
        __m256i b = _mm256_loadu_si256((const __m256i *)(s + k + 32));

        _mm256_stream_si256((__m256i *)(d + k), a);
        _mm256_stream_si256((__m256i *)(d + k + 32), b);
    }
}

static inline __attribute__((always_inline))
void p2plab_copy128_sse2(uint8_t *d, const uint8_t *s)
{
    for (int k = 0; k < 128; k += 32) {
        __m128i a = _mm_loadu_si128((const __m128i *)(s + k));
        __m128i b = _mm_loadu_si128((const __m128i *)(s + k + 16));

        _mm_stream_si128((__m128i *)(d + k), a);
        _mm_stream_si128((__m128i *)(d + k + 16), b);
    }
}

P2PLAB_STREAM_FN(p2plab_stream_avx512, __attribute__((target("avx512f"))), p2plab_copy128_avx512)
P2PLAB_STREAM_FN(p2plab_stream_avx2, __attribute__((target("avx2"))), p2plab_copy128_avx2)
P2PLAB_STREAM_FN(p2plab_stream_sse2, , p2plab_copy128_sse2)
#endif

/*
 * Copy @n bytes @src -> @dst (memmove semantics). @stream: the caller's descriptor is a bulk one,
 * use non-temporal stores where they help. The stores are fenced before returning: whatever the
 * engine does next (status write-back, MSI-X) is ordered after the data.
 */
static void p2plab_copy(void *dst, const void *src, size_t n, bool stream)
{
#ifdef P2PLAB_STREAM_X86
    uint8_t *d = dst;
    const uint8_t *s = src;
    size_t head, body;

    if (!stream || n < P2PLAB_STREAM_PIECE || (d < s + n && s < d + n)) {
        memmove(dst, src, n);
        return;
    }
    head = -(uintptr_t)d & 63;      /* align the destination for the streaming stores */
    memcpy(d, s, head);
    d += head; s += head; n -= head;
    body = n & ~(size_t)127;
    if (cpuinfo & CPUINFO_AVX512F) {
        p2plab_stream_avx512(d, s, body);
    } else if (cpuinfo & CPUINFO_AVX2) {
        p2plab_stream_avx2(d, s, body);
    } else {
        p2plab_stream_sse2(d, s, body);
    }
    memcpy(d + body, s + body, n - body);
    _mm_sfence();
#else
    memmove(dst, src, n);
#endif
}

/* Is the in-flight descriptor a bulk copy (see p2plab_copy)? */
static bool p2plab_stream(P2plabState *s)
{
    return s->in_flight && s->cur_len >= P2PLAB_STREAM_MIN;
}

/*
 * Map bus range [addr, addr + *len) reached through @as for a direct copy if it is RAM (not a
 * ram_device, not ROM for a write): returns the host pointer with *len shortened to what maps in
 * one piece. NULL: not directly accessible (the caller takes address_space_rw, which reports
 * errors), *len shortened to the region's extent, 0 if nothing decodes there. *dev as
 * p2plab_mr_is_device.
 */
static void *p2plab_bus_map(AddressSpace *as, uint64_t addr, hwaddr *len, bool is_write,
                            bool *dev)
{
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;
    hwaddr xlat, l = *len, ml;
    MemoryRegion *mr;
    bool direct;
    void *p;

    WITH_RCU_READ_LOCK_GUARD() {
        mr = address_space_translate(as, addr, &xlat, &l, is_write, attrs);
        direct = memory_region_is_ram(mr) && !memory_region_is_ram_device(mr) &&
                 !(is_write && memory_region_is_rom(mr));
        *dev = p2plab_mr_is_device(mr);
    }
    *len = l;
    if (!direct || !l) {
        return NULL;
    }
    ml = l;
    p = address_space_map(as, addr, &ml, is_write, attrs);
    if (p && ml) {
        *len = ml;
        return p;
    }
    if (p) {
        address_space_unmap(as, p, ml, is_write, 0);
    }
    return NULL;
}

/*
 * Copy between host buffer @buf and bus range [addr, addr+len) through @as.
 * RAM targets are mapped and memmove'd in large pieces; anything else (MMIO such as an NVMe CMB,
 * unassigned space, IOMMU faults) goes through address_space_rw so that errors are seen.
 */
static MemTxResult p2plab_bus_rw(P2plabState *s, AddressSpace *as, bool sw, uint64_t addr,
                                 uint8_t *buf, uint64_t len, bool is_write)
{
    MemTxAttrs attrs = MEMTXATTRS_UNSPECIFIED;

    while (len) {
        hwaddr l = len;
        bool dev;
        void *p = p2plab_bus_map(as, addr, &l, is_write, &dev);
        MemTxResult r;

        if (l == 0) {
            return MEMTX_DECODE_ERROR;
        }
        if (p) {
            /* the bus -> bus staging buffer is read back at once: keep it cached */
            bool stream = p2plab_stream(s) && (is_write || buf != s->bounce);

            if (is_write) {
                p2plab_copy(p, buf, l, stream);
            } else {
                p2plab_copy(buf, p, l, stream);
            }
            address_space_unmap(as, p, l, is_write, l);
            p2plab_count_bus(s, sw, dev, l);
            addr += l; buf += l; len -= l;
            continue;
        }
        l = MIN(l, (hwaddr)P2PLAB_BOUNCE);
        /* a failed read must not leave junk in the destination: stage it */
        r = address_space_rw(as, addr, attrs, is_write ? buf : s->stage, l, is_write);
        if (r != MEMTX_OK) {
            trace_p2plab_err_bus_access(addr, l, is_write, r);
            return r;
        }
        if (!is_write) {
            memcpy(buf, s->stage, l);
        }
        p2plab_count_bus(s, sw, dev, l);
        addr += l; buf += l; len -= l;
    }
    return MEMTX_OK;
}

MemTxResult p2plab_bus_xfer(P2plabState *s, uint64_t addr, uint8_t *buf, uint64_t len,
                            bool is_write)
{
    PCIDevice *pd = PCI_DEVICE(s);
    bool sw;
    AddressSpace *as;

    if (!(pci_get_word(pd->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        trace_p2plab_err_bus_master_off(addr, len);
        return MEMTX_ERROR;
    }
    as = p2plab_route(s, addr, len, &sw);
    trace_p2plab_route(addr, len, is_write, sw ? "switch" : "upstream");
    return p2plab_bus_rw(s, as, sw, addr, buf, len, is_write);
}

/*
 * Bus -> bus piece [src, src + *n) -> [dst, dst + *n) when both sides are RAM: one copy between
 * the two mappings instead of two through the staging buffer. Same routes, same counters as the
 * staged path; *n shortened to what both sides map in one piece. Returns false (nothing done)
 * when either side is not directly accessible: the caller stages, which reports the errors.
 */
static bool p2plab_bus_copy(P2plabState *s, uint64_t src, uint64_t dst, uint64_t *n)
{
    PCIDevice *pd = PCI_DEVICE(s);
    AddressSpace *sas, *das;
    bool ssw, dsw, sdev, ddev;
    hwaddr sl = *n, dl = *n, l;
    void *sp, *dp;

    if (!(pci_get_word(pd->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        return false;
    }
    sas = p2plab_route(s, src, *n, &ssw);
    sp = p2plab_bus_map(sas, src, &sl, false, &sdev);
    if (!sp) {
        return false;
    }
    das = p2plab_route(s, dst, *n, &dsw);
    dp = p2plab_bus_map(das, dst, &dl, true, &ddev);
    if (!dp) {
        address_space_unmap(sas, sp, sl, false, 0);
        return false;
    }
    l = MIN(sl, dl);
    trace_p2plab_route(src, *n, false, ssw ? "switch" : "upstream");
    trace_p2plab_route(dst, *n, true, dsw ? "switch" : "upstream");
    p2plab_copy(dp, sp, l, p2plab_stream(s));
    address_space_unmap(das, dp, dl, true, l);
    address_space_unmap(sas, sp, sl, false, l);
    p2plab_count_bus(s, ssw, sdev, l);
    p2plab_count_bus(s, dsw, ddev, l);
    *n = l;
    return true;
}

/* ---- DMA engine --------------------------------------------------------------------------------- */

void p2plab_halt(P2plabState *s, uint32_t code)
{
    trace_p2plab_err_halt(code, s->regs[R_RING_HEAD], s->regs[R_RING_TAIL]);
    p2plab_guest_error(s, "engine halted, error 0x%x (head %u tail %u)", code,
                       s->regs[R_RING_HEAD], s->regs[R_RING_TAIL]);
    s->regs[R_STATUS] |= P2PLAB_STATUS_HALTED;
    s->regs[R_ERR_CODE] = code;
    s->in_flight = false;
    s->stat_errors++;
    qemu_bh_cancel(s->bh);
    timer_del(s->timer);
    p2plab_raise(s, P2PLAB_INT_ERROR);
}

uint64_t p2plab_desc_addr(P2plabState *s, uint32_t idx)
{
    return p2plab_ring_base(s) + (uint64_t)idx * P2PLAB_DESC_SIZE;
}

/* Write @status (P2PLAB_DESC_DONE | error, or P2PLAB_DESC_STALLED) into descriptor @idx. */
MemTxResult p2plab_desc_write_status(P2plabState *s, uint32_t idx, uint32_t status)
{
    uint32_t le = cpu_to_le32(status);
    uint64_t a = p2plab_desc_addr(s, idx) + offsetof(struct p2plab_desc, status);

    return pci_dma_write(PCI_DEVICE(s), a, &le, sizeof(le));
}

/*
 * Write back status for the in-flight descriptor, count, interrupt. From the ring HEAD: advance
 * HEAD. A parked descriptor (MMU, p2plab-mmu.c) completes at its own index and leaves HEAD alone.
 */
void p2plab_complete(P2plabState *s, uint32_t err)
{
    uint32_t idx = s->cur_idx;
    bool parked = s->mmu.cur_slot >= 0;
    uint32_t bits = 0;

    if (p2plab_desc_write_status(s, idx, P2PLAB_DESC_DONE | (err & P2PLAB_DESC_ERR_MASK))
        != MEMTX_OK) {
        p2plab_halt(s, P2PLAB_ERR_STATUS_WRITE);
        return;
    }
    s->in_flight = false;
    if (parked) {
        p2plab_mmu_completed(s);
    } else {
        s->regs[R_RING_HEAD] = (idx + 1) & (s->regs[R_RING_SIZE] - 1);
    }
    s->regs[R_COMPLETED]++;
    s->stat_descs++;
    trace_p2plab_desc_done(idx, err);
    if (err) {
        s->stat_errors++;
        s->regs[R_ERR_INDEX] = idx;
        trace_p2plab_err_desc(idx, err);
        p2plab_guest_error(s, "descriptor %u failed with error 0x%x", idx, err);
        bits |= P2PLAB_INT_ERROR;
    }
    if (s->cur_flags & P2PLAB_DESC_F_IRQ) {
        bits |= P2PLAB_INT_DONE;
    }
    if (bits) {
        p2plab_raise(s, bits);
    }
}

/* Fetch and validate the descriptor at HEAD. Returns false if the engine halted. */
static bool p2plab_fetch(P2plabState *s, uint32_t *err)
{
    struct p2plab_desc d;
    uint32_t idx = s->regs[R_RING_HEAD];
    uint64_t ms = s->mem_size;

    if (pci_dma_read(PCI_DEVICE(s), p2plab_desc_addr(s, idx), &d, sizeof(d)) != MEMTX_OK) {
        p2plab_halt(s, P2PLAB_ERR_DESC_READ);
        return false;
    }
    if (le32_to_cpu(d.status) & (P2PLAB_DESC_DONE | P2PLAB_DESC_STALLED)) {
        /*
         * Still the record of an earlier descriptor (parked on a fault, or completed and not yet
         * read by the driver): the driver let TAIL pass over it without rewriting it. Nothing is
         * run or written; HEAD moves on (docs/device.md §3).
         */
        s->regs[R_RING_HEAD] = (idx + 1) & (s->regs[R_RING_SIZE] - 1);
        s->stat_ring_skipped++;
        trace_p2plab_desc_skip(idx, le32_to_cpu(d.status));
        *err = P2PLAB_FETCH_SKIPPED;
        return true;
    }
    s->cur_src = le64_to_cpu(d.src);
    s->cur_dst = le64_to_cpu(d.dst);
    s->cur_len = le32_to_cpu(d.len);
    s->cur_flags = le32_to_cpu(d.flags);
    s->cur_done = 0;
    s->cur_idx = idx;
    s->mmu.cur_slot = -1;
    s->in_flight = true;
    trace_p2plab_desc_fetch(idx, s->cur_src, s->cur_dst, s->cur_len, s->cur_flags);

    *err = P2PLAB_ERR_OK;
    if (s->fail_nth && --s->fail_nth == 0) {
        *err = (s->fail_code & P2PLAB_DESC_ERR_MASK) ?: P2PLAB_ERR_INJECTED;
        trace_p2plab_inject_fail(idx, *err);
    } else if (s->cur_len == 0 || s->cur_len > P2PLAB_DESC_MAX_LEN) {
        *err = P2PLAB_ERR_BAD_LEN;
    } else if (s->cur_flags & ~P2PLAB_DESC_F_VALID_MASK) {
        *err = P2PLAB_ERR_BAD_FLAGS;
    } else if (p2plab_mmu_desc(s->cur_flags) && (*err = p2plab_mmu_validate(s))) {
        /* a 1.1 (VA / atomic / prefetch) descriptor: error set by the MMU */
    } else if ((s->cur_flags & P2PLAB_DESC_F_SRC_LOCAL) &&
               (s->cur_src >= ms || s->cur_len > ms - s->cur_src)) {
        *err = P2PLAB_ERR_SRC_RANGE;
    } else if ((s->cur_flags & P2PLAB_DESC_F_DST_LOCAL) &&
               (s->cur_dst >= ms || s->cur_len > ms - s->cur_dst)) {
        *err = P2PLAB_ERR_DST_RANGE;
    } else if (!(s->cur_flags & P2PLAB_DESC_F_SRC_LOCAL) &&
               s->cur_src + s->cur_len - 1 < s->cur_src) {
        *err = P2PLAB_ERR_SRC_DMA;
    } else if (!(s->cur_flags & P2PLAB_DESC_F_DST_LOCAL) &&
               s->cur_dst + s->cur_len - 1 < s->cur_dst) {
        *err = P2PLAB_ERR_DST_DMA;
    }
    return true;
}

/* Copy the next piece (at most @max bytes) of the in-flight descriptor. Returns an error code. */
static uint32_t p2plab_copy_step(P2plabState *s, uint64_t max, uint64_t *copied)
{
    bool sl = s->cur_flags & P2PLAB_DESC_F_SRC_LOCAL;
    bool dl = s->cur_flags & P2PLAB_DESC_F_DST_LOCAL;
    uint64_t n = MIN(s->cur_len - s->cur_done, max);
    uint64_t off = s->cur_done;

    *copied = 0;
    if (sl && dl) {
        /* memmove semantics across steps: copy backwards when dst overlaps above src */
        if (s->cur_dst > s->cur_src && s->cur_dst < s->cur_src + s->cur_len) {
            off = s->cur_len - s->cur_done - n;
        }
        p2plab_copy(s->mem_ptr + s->cur_dst + off, s->mem_ptr + s->cur_src + off, n,
                    p2plab_stream(s));
        memory_region_set_dirty(s->mem_mr, s->cur_dst + off, n);
        s->stat_bytes_local += n;
    } else if (dl) {
        MemTxResult r = p2plab_bus_xfer(s, s->cur_src + off, s->mem_ptr + s->cur_dst + off, n,
                                        false);

        /* dirty even on failure: the part before the failing point may have been written */
        memory_region_set_dirty(s->mem_mr, s->cur_dst + off, n);
        if (r != MEMTX_OK) {
            return P2PLAB_ERR_SRC_DMA;
        }
    } else if (sl) {
        if (p2plab_bus_xfer(s, s->cur_dst + off, s->mem_ptr + s->cur_src + off, n, true)
            != MEMTX_OK) {
            return P2PLAB_ERR_DST_DMA;
        }
    } else {
        /* pieces of the staging size either way: the same routing decisions */
        n = MIN(n, (uint64_t)P2PLAB_BOUNCE);
        if (!p2plab_bus_copy(s, s->cur_src + off, s->cur_dst + off, &n)) {
            if (p2plab_bus_xfer(s, s->cur_src + off, s->bounce, n, false) != MEMTX_OK) {
                return P2PLAB_ERR_SRC_DMA;
            }
            if (p2plab_bus_xfer(s, s->cur_dst + off, s->bounce, n, true) != MEMTX_OK) {
                return P2PLAB_ERR_DST_DMA;
            }
        }
    }
    s->cur_done += n;
    *copied = n;
    return P2PLAB_ERR_OK;
}

/* corrupt-next: flip bit 0 of the first destination byte of a successfully copied descriptor. */
static void p2plab_corrupt(P2plabState *s)
{
    /* the read-modify-write of a bus destination is not traffic the guest asked for */
    uint64_t host = s->stat_bytes_host, peer = s->stat_bytes_peer;
    uint64_t peer_sw = s->stat_bytes_peer_switch;
    uint8_t b;

    s->corrupt_next = false;
    if (s->cur_flags & P2PLAB_DESC_F_DST_LOCAL) {
        s->mem_ptr[s->cur_dst] ^= 1;
        memory_region_set_dirty(s->mem_mr, s->cur_dst, 1);
    } else if (p2plab_bus_xfer(s, s->cur_dst, &b, 1, false) == MEMTX_OK) {
        b ^= 1;
        p2plab_bus_xfer(s, s->cur_dst, &b, 1, true);
    }
    s->stat_bytes_host = host;
    s->stat_bytes_peer = peer;
    s->stat_bytes_peer_switch = peer_sw;
    trace_p2plab_inject_corrupt(s->regs[R_RING_HEAD], s->cur_dst);
}

static bool p2plab_wait(P2plabState *s)
{
    int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);

    if (s->wait_until > now) {
        timer_mod(s->timer, s->wait_until);
        return true;
    }
    return false;
}

static void p2plab_bh(void *opaque)
{
    P2plabState *s = opaque;
    unsigned descs = 0;
    uint64_t bytes = 0;
    int64_t t0 = qemu_clock_get_ns(QEMU_CLOCK_REALTIME);

    trace_p2plab_bh(s->regs[R_RING_HEAD], s->regs[R_RING_TAIL], s->in_flight);
    while (p2plab_runnable(s) && p2plab_has_work(s)) {
        uint32_t err;
        uint64_t n;

        if (descs >= P2PLAB_SLICE_DESCS || bytes >= P2PLAB_SLICE_BYTES ||
            qemu_clock_get_ns(QEMU_CLOCK_REALTIME) - t0 > P2PLAB_SLICE_NS) {
            qemu_bh_schedule(s->bh);        /* yield to the main loop */
            return;
        }
        if (p2plab_wait(s)) {
            return;                         /* the timer reschedules us */
        }
        if (!s->in_flight) {
            /* parked descriptors first (cancels, held faults, replays): they are older */
            if (p2plab_mmu_service(s)) {
                descs++;
                continue;
            }
            if (s->regs[R_RING_HEAD] == s->regs[R_RING_TAIL] || !p2plab_mmu_can_fetch(s)) {
                break;
            }
            if (!p2plab_fetch(s, &err)) {
                return;                     /* halted */
            }
            descs++;
            if (err == P2PLAB_FETCH_SKIPPED) {
                continue;
            }
            if (err) {
                p2plab_complete(s, err);
                continue;
            }
            if (p2plab_mmu_must_wait(s)) {
                /* its context has parked descriptors: keep the context's order */
                p2plab_mmu_park(s, P2PLAB_PARK_WAITING);
                continue;
            }
            if (s->latency_us) {
                s->wait_until = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                                (int64_t)s->latency_us * SCALE_US;
                trace_p2plab_inject_latency(s->regs[R_RING_HEAD], s->latency_us);
                continue;
            }
        }
        if (s->cur_done < s->cur_len) {
            uint64_t max = s->bandwidth_mbps ? P2PLAB_BW_CHUNK : P2PLAB_CHUNK;

            if (p2plab_mmu_desc(s->cur_flags)) {
                err = p2plab_mmu_step(s, MIN(max, P2PLAB_SLICE_BYTES - bytes), &n);
                if (err == P2PLAB_STEP_STALLED) {
                    continue;               /* parked on a fault (or halted) */
                }
            } else {
                err = p2plab_copy_step(s, MIN(max, P2PLAB_SLICE_BYTES - bytes), &n);
            }
            bytes += n;
            if (err) {
                p2plab_complete(s, err);
                continue;
            }
            if (s->bandwidth_mbps) {
                /*
                 * n bytes at M MB/s take n * 1000 / M ns. Within a descriptor the budget is
                 * cumulative from its first byte, so the average rate holds however late the
                 * bottom half runs; a new descriptor starts from now.
                 */
                int64_t now = qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL);
                int64_t base = s->cur_done == n ? MAX(s->wait_until, now) : s->wait_until;
                s->wait_until = base + (int64_t)(n * 1000 / s->bandwidth_mbps);
            }
            if (s->cur_done < s->cur_len) {
                continue;
            }
            if (s->corrupt_next && !p2plab_mmu_desc(s->cur_flags)) {
                p2plab_corrupt(s);
            }
        }
        if (p2plab_wait(s)) {
            return;                         /* complete after the bandwidth delay */
        }
        p2plab_complete(s, P2PLAB_ERR_OK);
    }
}

static void p2plab_timer_cb(void *opaque)
{
    P2plabState *s = opaque;

    /* never process from the timer itself: the guarded bottom half does the work */
    p2plab_kick(s);
}

/* Abort the in-flight descriptor (write back ABORTED if @writeback), stop all deferred work. */
static void p2plab_quiesce(P2plabState *s, bool writeback)
{
    qemu_bh_cancel(s->bh);
    timer_del(s->timer);
    s->wait_until = 0;
    if (s->in_flight && writeback && p2plab_ring_size_ok(s->regs[R_RING_SIZE])) {
        trace_p2plab_abort(s->cur_idx);
        p2plab_desc_write_status(s, s->cur_idx, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    }
    s->in_flight = false;
}

static void p2plab_reset_regs(P2plabState *s)
{
    memset(s->regs, 0, sizeof(s->regs));
    s->regs[R_ID] = P2PLAB_ID_MAGIC;
    s->regs[R_VERSION] = P2PLAB_IF_VERSION;
    s->regs[R_CAPS] = P2PLAB_CAP_P2P_ROUTING | P2PLAB_CAP_FAULT_INJ | p2plab_mmu_caps(s) |
                      (s->hostmem ? P2PLAB_CAP_MEMDEV : 0);
    s->regs[R_MEM_SIZE_LO] = (uint32_t)s->mem_size;
    s->regs[R_MEM_SIZE_HI] = s->mem_size >> 32;
    s->regs[R_RING_MAX] = P2PLAB_RING_MAX;
    s->cur_src = s->cur_dst = s->cur_done = 0;
    s->cur_len = s->cur_flags = s->cur_idx = 0;
    p2plab_update_intx(s, false);
}

static void p2plab_engine_reset(P2plabState *s, bool writeback)
{
    trace_p2plab_reset(writeback);
    p2plab_quiesce(s, writeback);
    p2plab_mmu_reset(s, writeback);
    p2plab_reset_regs(s);
}

/* ---- MMIO ---------------------------------------------------------------------------------------- */

static uint64_t p2plab_mmio_read(void *opaque, hwaddr addr, unsigned size)
{
    P2plabState *s = opaque;
    uint32_t val;

    if (size != 4 || (addr & 3)) {
        trace_p2plab_err_mmio_access(addr, size, false);
        p2plab_guest_error(s, "bad register read: offset 0x%" HWADDR_PRIx " size %u "
                           "(only aligned 32-bit accesses)", addr, size);
        return ~0ULL;
    }
    if (p2plab_mmu_is_reg(addr)) {
        val = p2plab_mmu_read(s, addr);
        trace_p2plab_mmio_read(addr, val);
        return val;
    }
    if (addr >= P2PLAB_NUM_REGS * 4) {
        trace_p2plab_err_mmio_unknown(addr, false);
        p2plab_guest_error(s, "read of unimplemented register 0x%" HWADDR_PRIx, addr);
        return 0;
    }
    val = s->regs[addr / 4];
    if (addr == A_STATUS) {
        val = (s->regs[R_STATUS] & P2PLAB_STATUS_HALTED) |
              ((s->regs[R_CTRL] & P2PLAB_CTRL_ENABLE) ? P2PLAB_STATUS_ENABLED : 0) |
              (p2plab_pending(s) ? P2PLAB_STATUS_BUSY : 0);
    }
    trace_p2plab_mmio_read(addr, val);
    return val;
}

static void p2plab_write_ctrl(P2plabState *s, uint32_t val)
{
    uint32_t old = s->regs[R_CTRL];

    if (val & ~P2PLAB_VALID_CTRL) {
        trace_p2plab_err_reserved_bits(A_CTRL, val);
        p2plab_guest_error(s, "CTRL: reserved bits 0x%x ignored", val & ~P2PLAB_VALID_CTRL);
    }
    if (val & P2PLAB_CTRL_RESET) {
        p2plab_engine_reset(s, true);
        return;
    }
    if (s->regs[R_STATUS] & P2PLAB_STATUS_HALTED) {
        if (val & P2PLAB_CTRL_ENABLE) {
            trace_p2plab_err_halted_write(A_CTRL, val);
            p2plab_guest_error(s, "CTRL.ENABLE while halted: write CTRL.RESET first");
        }
        s->regs[R_CTRL] = 0;
        return;
    }
    if ((old & P2PLAB_CTRL_ENABLE) && !(val & P2PLAB_CTRL_ENABLE)) {
        /* disable: abort the in-flight descriptor, keep HEAD/TAIL */
        s->regs[R_CTRL] = 0;
        if (s->in_flight) {
            p2plab_quiesce(s, false);
            s->in_flight = true;
            p2plab_complete(s, P2PLAB_ERR_ABORTED);
        }
        /* parked (MMU-stalled) descriptors are started work too: aborted */
        if (p2plab_mmu_abort_parked(s, true, true)) {
            p2plab_guest_error(s, "engine disabled with parked descriptors: aborted");
            p2plab_raise(s, P2PLAB_INT_ERROR);
        }
        qemu_bh_cancel(s->bh);
        timer_del(s->timer);
        s->wait_until = 0;
        return;
    }
    if (!(old & P2PLAB_CTRL_ENABLE) && (val & P2PLAB_CTRL_ENABLE)) {
        s->regs[R_CTRL] = P2PLAB_CTRL_ENABLE;
        if (p2plab_ring_base(s) & (P2PLAB_RING_ALIGN - 1)) {
            p2plab_halt(s, P2PLAB_ERR_RING_BASE);
        } else if (!p2plab_ring_size_ok(s->regs[R_RING_SIZE])) {
            p2plab_halt(s, P2PLAB_ERR_RING_SIZE);
        } else if (s->regs[R_RING_TAIL] >= s->regs[R_RING_SIZE]) {
            p2plab_halt(s, P2PLAB_ERR_RING_TAIL);
        } else {
            trace_p2plab_enable(p2plab_ring_base(s), s->regs[R_RING_SIZE]);
            p2plab_kick(s);
        }
    }
}

static void p2plab_mmio_write(void *opaque, hwaddr addr, uint64_t val64, unsigned size)
{
    P2plabState *s = opaque;
    uint32_t val = val64;

    if (size != 4 || (addr & 3)) {
        trace_p2plab_err_mmio_access(addr, size, true);
        p2plab_guest_error(s, "bad register write: offset 0x%" HWADDR_PRIx " size %u "
                           "(only aligned 32-bit accesses)", addr, size);
        return;
    }
    trace_p2plab_mmio_write(addr, val);
    if (p2plab_mmu_is_reg(addr)) {
        p2plab_mmu_write(s, addr, val);
        return;
    }
    switch (addr) {
    case A_CTRL:
        p2plab_write_ctrl(s, val);
        break;
    case A_RING_BASE_LO:
    case A_RING_BASE_HI:
    case A_RING_SIZE:
        if (s->regs[R_CTRL] & P2PLAB_CTRL_ENABLE) {
            trace_p2plab_err_ring_write_enabled(addr, val);
            p2plab_guest_error(s, "ring register 0x%" HWADDR_PRIx " written while enabled: "
                               "ignored", addr);
            break;
        }
        s->regs[addr / 4] = val;
        /* (re)programming the ring restarts it at index 0 */
        s->regs[R_RING_HEAD] = s->regs[R_RING_TAIL] = 0;
        break;
    case A_RING_TAIL:
        if (s->regs[R_STATUS] & P2PLAB_STATUS_HALTED) {
            trace_p2plab_err_halted_write(addr, val);
            p2plab_guest_error(s, "TAIL written while halted: ignored");
            break;
        }
        if (p2plab_ring_size_ok(s->regs[R_RING_SIZE]) && val >= s->regs[R_RING_SIZE]) {
            s->regs[R_RING_TAIL] = val;
            p2plab_halt(s, P2PLAB_ERR_RING_TAIL);
            break;
        }
        s->regs[R_RING_TAIL] = val;
        p2plab_kick(s);
        break;
    case A_INT_STATUS:
        s->regs[R_INT_STATUS] &= ~(val & P2PLAB_INT_ALL);
        p2plab_update_intx(s, false);
        break;
    case A_INT_MASK:
        s->regs[R_INT_MASK] = val & P2PLAB_INT_ALL;
        p2plab_update_intx(s, true);
        break;
    case A_SCRATCH:
        s->regs[R_SCRATCH] = val;
        break;
    default:
        if (addr < P2PLAB_NUM_REGS * 4) {
            trace_p2plab_err_ro_write(addr, val);
            p2plab_guest_error(s, "write to read-only register 0x%" HWADDR_PRIx " ignored",
                               addr);
        } else {
            trace_p2plab_err_mmio_unknown(addr, true);
            p2plab_guest_error(s, "write to unimplemented register 0x%" HWADDR_PRIx, addr);
        }
        break;
    }
}

static const MemoryRegionOps p2plab_mmio_ops = {
    .read = p2plab_mmio_read,
    .write = p2plab_mmio_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* link-down overlay: reads all-ones, writes dropped */
static uint64_t p2plab_dead_read(void *opaque, hwaddr addr, unsigned size)
{
    trace_p2plab_link_down_access(addr, false);
    return ~0ULL;
}

static void p2plab_dead_write(void *opaque, hwaddr addr, uint64_t val, unsigned size)
{
    trace_p2plab_link_down_access(addr, true);
}

static const MemoryRegionOps p2plab_dead_ops = {
    .read = p2plab_dead_read,
    .write = p2plab_dead_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

static uint32_t p2plab_config_read(PCIDevice *pd, uint32_t addr, int len)
{
    if (P2PLAB(pd)->link_down) {
        return len == 4 ? ~0u : (1u << (len * 8)) - 1;
    }
    return pci_default_read_config(pd, addr, len);
}

static void p2plab_config_write(PCIDevice *pd, uint32_t addr, uint32_t val, int len)
{
    if (P2PLAB(pd)->link_down) {
        return;
    }
    pci_default_write_config(pd, addr, val, len);
    /* MSI-X enable/disable changes where INTx stands */
    p2plab_update_intx(P2PLAB(pd), true);
}

/* ---- QOM: fault injection and counters ---------------------------------------------------------- */

static bool p2plab_get_link_down(Object *obj, Error **errp)
{
    return P2PLAB(obj)->link_down;
}

static void p2plab_set_link_down(Object *obj, bool value, Error **errp)
{
    P2plabState *s = P2PLAB(obj);

    if (s->link_down == value) {
        return;
    }
    s->link_down = value;
    trace_p2plab_link(value);
    if (DEVICE(obj)->realized) {
        memory_region_set_enabled(&s->bar0_dead, value);
        memory_region_set_enabled(&s->bar2_dead, value);
        if (value) {
            qemu_bh_cancel(s->bh);
            timer_del(s->timer);
        } else {
            p2plab_kick(s);
        }
    }
}

static bool p2plab_get_corrupt_next(Object *obj, Error **errp)
{
    return P2PLAB(obj)->corrupt_next;
}

static void p2plab_set_corrupt_next(Object *obj, bool value, Error **errp)
{
    P2PLAB(obj)->corrupt_next = value;
}

static void p2plab_instance_init(Object *obj)
{
    P2plabState *s = P2PLAB(obj);
    static const struct { const char *name; size_t off; } stats[] = {
        { "stat-descriptors", offsetof(P2plabState, stat_descs) },
        { "stat-ring-skipped", offsetof(P2plabState, stat_ring_skipped) },
        { "stat-bytes-host", offsetof(P2plabState, stat_bytes_host) },
        { "stat-bytes-local", offsetof(P2plabState, stat_bytes_local) },
        { "stat-bytes-peer", offsetof(P2plabState, stat_bytes_peer) },
        { "stat-bytes-peer-switch", offsetof(P2plabState, stat_bytes_peer_switch) },
        { "stat-errors", offsetof(P2plabState, stat_errors) },
        { "stat-irqs", offsetof(P2plabState, stat_irqs) },
        { "stat-irqs-dropped", offsetof(P2plabState, stat_irqs_dropped) },
    };

    s->fail_code = P2PLAB_ERR_INJECTED;
    p2plab_mmu_instance_init(s);
    object_property_add_uint32_ptr(obj, "fail-nth", &s->fail_nth, OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "fail-code", &s->fail_code, OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "latency-us", &s->latency_us, OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "bandwidth-mbps", &s->bandwidth_mbps,
                                   OBJ_PROP_FLAG_READWRITE);
    object_property_add_uint32_ptr(obj, "drop-irqs", &s->drop_irqs, OBJ_PROP_FLAG_READWRITE);
    object_property_add_bool(obj, "corrupt-next", p2plab_get_corrupt_next,
                             p2plab_set_corrupt_next);
    object_property_add_bool(obj, "link-down", p2plab_get_link_down, p2plab_set_link_down);
    for (size_t i = 0; i < ARRAY_SIZE(stats); i++) {
        object_property_add_uint64_ptr(obj, stats[i].name,
                                       (uint64_t *)((char *)s + stats[i].off), OBJ_PROP_FLAG_READ);
        object_property_set_description(obj, stats[i].name, "counter (read-only, since creation)");
    }
    object_property_set_description(obj, "fail-nth",
        "fault: the Nth descriptor fetched from now fails with fail-code (0 = off)");
    object_property_set_description(obj, "fail-code",
        "fault: error code used by fail-nth (bits 7:0; default 7 = injected)");
    object_property_set_description(obj, "latency-us",
        "fault: extra latency before each descriptor starts, in virtual-clock microseconds");
    object_property_set_description(obj, "bandwidth-mbps",
        "fault: copy rate cap in MB/s (10^6 bytes/s); 0 = unlimited");
    object_property_set_description(obj, "drop-irqs",
        "fault: drop the next N interrupt messages (MSI-X or INTx)");
    object_property_set_description(obj, "corrupt-next",
        "fault: flip bit 0 of the first destination byte of the next successful descriptor");
    object_property_set_description(obj, "link-down",
        "fault: surprise link down (all-ones reads, writes dropped, DMA stops) while true");
}

/* ---- realize / reset / migration ---------------------------------------------------------------- */

/*
 * Take our subregions out of the BAR containers. In QEMU 10.0 a subregion holds a reference on
 * its owner while it sits in a container (memory_region_add_subregion -> memory_region_ref), so a
 * subregion owned by this device inside a container owned by this device is a reference cycle:
 * left in place, the device is never finalized after unplug (no DEVICE_DELETED, the RAM of BAR2
 * leaks) and a memdev's region stays attached to the dead container (cannot be used again).
 */
static void p2plab_del_subregions(P2plabState *s)
{
    MemoryRegion *const subs[][2] = {
        { &s->bar0, &s->regs_io }, { &s->bar0, &s->bar0_dead },
        { &s->bar2, s->mem_mr }, { &s->bar2, &s->bar2_dead },
    };

    for (size_t i = 0; i < ARRAY_SIZE(subs); i++) {
        if (subs[i][1] && subs[i][1]->container == subs[i][0]) {
            memory_region_del_subregion(subs[i][0], subs[i][1]);
        }
    }
}

static void p2plab_realize(PCIDevice *pd, Error **errp)
{
    P2plabState *s = P2PLAB(pd);
    Error *err = NULL;

    if (s->hostmem) {
        uint64_t bsize;

        if (host_memory_backend_is_mapped(s->hostmem)) {
            error_setg(errp, "p2plab: memdev '%s' is already in use",
                       object_get_canonical_path_component(OBJECT(s->hostmem)));
            return;
        }
        s->mem_mr = host_memory_backend_get_memory(s->hostmem);
        bsize = memory_region_size(s->mem_mr);
        if (s->mem_size && s->mem_size != bsize) {
            error_setg(errp, "p2plab: mem-size 0x%" PRIx64 " differs from the size of memdev "
                       "'%s' (0x%" PRIx64 "); give only one", s->mem_size,
                       object_get_canonical_path_component(OBJECT(s->hostmem)), bsize);
            return;
        }
        s->mem_size = bsize;
    } else if (!s->mem_size) {
        s->mem_size = P2PLAB_MEM_DEFAULT;
    }
    if (!is_power_of_2(s->mem_size) || s->mem_size < P2PLAB_MEM_MIN ||
        s->mem_size > P2PLAB_MEM_MAX) {
        error_setg(errp, "p2plab: %s size 0x%" PRIx64 " must be a power of two between 1 MiB "
                   "and 64 GiB", s->hostmem ? "memdev" : "mem-size", s->mem_size);
        return;
    }
    if (s->mmu.tlb_entries > P2PLAB_MMU_TLB_MAX) {
        error_setg(errp, "p2plab: tlb-entries %u must be at most %u (0 = no TLB)",
                   s->mmu.tlb_entries, P2PLAB_MMU_TLB_MAX);
        return;
    }

    pci_config_set_revision(pd->config, P2PLAB_REVISION);
    pci_config_set_class(pd->config, P2PLAB_CLASS);
    pd->config[PCI_INTERRUPT_PIN] = 1;

    if (pcie_endpoint_cap_init(pd, P2PLAB_EXP_OFFSET) < 0) {
        error_setg(errp, "p2plab: failed to add the PCIe capability");
        return;
    }

    /* BAR0: registers, MSI-X table and PBA; link-down overlay on top */
    memory_region_init(&s->bar0, OBJECT(s), "p2plab-bar0", P2PLAB_REGS_SIZE);
    memory_region_init_io(&s->regs_io, OBJECT(s), &p2plab_mmio_ops, s, "p2plab-regs",
                          P2PLAB_MSIX_TABLE_OFF);
    memory_region_add_subregion(&s->bar0, 0, &s->regs_io);
    memory_region_init_io(&s->bar0_dead, OBJECT(s), &p2plab_dead_ops, s, "p2plab-bar0-down",
                          P2PLAB_REGS_SIZE);
    memory_region_add_subregion_overlap(&s->bar0, 0, &s->bar0_dead, 10);
    memory_region_set_enabled(&s->bar0_dead, s->link_down);
    pci_register_bar(pd, P2PLAB_BAR_REGS, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->bar0);
    if (msix_init(pd, P2PLAB_NUM_VECTORS, &s->bar0, P2PLAB_BAR_REGS, P2PLAB_MSIX_TABLE_OFF,
                  &s->bar0, P2PLAB_BAR_REGS, P2PLAB_MSIX_PBA_OFF, 0, &err) < 0) {
        error_propagate_prepend(errp, err, "p2plab: MSI-X: ");
        p2plab_del_subregions(s);
        pcie_cap_exit(pd);
        return;
    }
    for (unsigned v = 0; v < P2PLAB_NUM_VECTORS; v++) {
        msix_vector_use(pd, v);
    }

    /* BAR2: device memory */
    if (s->hostmem) {
        host_memory_backend_set_mapped(s->hostmem, true);
    } else {
        if (!memory_region_init_ram(&s->mem_ram, OBJECT(s), "p2plab-mem", s->mem_size, errp)) {
            msix_uninit(pd, &s->bar0, &s->bar0);
            p2plab_del_subregions(s);
            pcie_cap_exit(pd);
            return;
        }
        s->mem_mr = &s->mem_ram;
    }
    s->mem_ptr = memory_region_get_ram_ptr(s->mem_mr);
    memory_region_init(&s->bar2, OBJECT(s), "p2plab-bar2", s->mem_size);
    memory_region_add_subregion(&s->bar2, 0, s->mem_mr);
    memory_region_init_io(&s->bar2_dead, OBJECT(s), &p2plab_dead_ops, s, "p2plab-bar2-down",
                          s->mem_size);
    memory_region_add_subregion_overlap(&s->bar2, 0, &s->bar2_dead, 10);
    memory_region_set_enabled(&s->bar2_dead, s->link_down);
    pci_register_bar(pd, P2PLAB_BAR_MEM, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH, &s->bar2);

    s->bounce = g_malloc(P2PLAB_BOUNCE);
    s->stage = g_malloc(P2PLAB_BOUNCE);
    s->bh = qemu_bh_new_guarded(p2plab_bh, s, &DEVICE(s)->mem_reentrancy_guard);
    s->timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, p2plab_timer_cb, s);
    p2plab_mmu_realize(s, &error_abort);    /* cannot fail: tlb-entries checked above */
    QLIST_INSERT_HEAD(&p2plab_devices, s, link);
    p2plab_mmu_reset(s, false);
    p2plab_reset_regs(s);
}

static void p2plab_exit(PCIDevice *pd)
{
    P2plabState *s = P2PLAB(pd);

    p2plab_quiesce(s, false);
    p2plab_mmu_reset(s, false);     /* parked descriptors are dropped, no write-back */
    p2plab_mmu_exit(s);
    QLIST_REMOVE(s, link);
    qemu_bh_delete(s->bh);
    timer_free(s->timer);
    g_free(s->bounce);
    g_free(s->stage);
    p2plab_peer_as_free(s);
    if (s->hostmem) {
        host_memory_backend_set_mapped(s->hostmem, false);
    }
    msix_uninit(pd, &s->bar0, &s->bar0);
    p2plab_del_subregions(s);
    pcie_cap_exit(pd);
}

static void p2plab_device_reset(DeviceState *dev)
{
    P2plabState *s = P2PLAB(dev);

    /* a bus/system reset: no DMA any more, no write-back */
    p2plab_engine_reset(s, false);
}

static int p2plab_post_load(void *opaque, int version_id)
{
    P2plabState *s = opaque;

    if (s->regs[R_RING_HEAD] >= P2PLAB_RING_MAX || s->regs[R_RING_TAIL] >= P2PLAB_RING_MAX ||
        s->cur_len > P2PLAB_DESC_MAX_LEN || s->cur_done > s->cur_len ||
        (s->in_flight && !p2plab_ring_size_ok(s->regs[R_RING_SIZE]))) {
        return -EINVAL;
    }
    if (p2plab_mmu_post_load(s) < 0) {
        return -EINVAL;
    }
    /* pending latency/bandwidth waits are not migrated: work resumes at once */
    s->wait_until = 0;
    p2plab_kick(s);
    return 0;
}

static const VMStateDescription vmstate_p2plab = {
    .name = "p2plab",
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = p2plab_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, P2plabState),
        VMSTATE_MSIX(parent_obj, P2plabState),
        VMSTATE_UINT32_ARRAY(regs, P2plabState, P2PLAB_NUM_REGS),
        VMSTATE_BOOL(in_flight, P2plabState),
        VMSTATE_UINT64(cur_src, P2plabState),
        VMSTATE_UINT64(cur_dst, P2plabState),
        VMSTATE_UINT64(cur_done, P2plabState),
        VMSTATE_UINT32(cur_len, P2plabState),
        VMSTATE_UINT32(cur_flags, P2plabState),
        VMSTATE_BOOL(intx_level, P2plabState),
        VMSTATE_UINT64(stat_descs, P2plabState),
        VMSTATE_UINT64(stat_bytes_host, P2plabState),
        VMSTATE_UINT64(stat_bytes_local, P2plabState),
        VMSTATE_UINT64(stat_bytes_peer, P2plabState),
        VMSTATE_UINT64(stat_bytes_peer_switch, P2plabState),
        VMSTATE_UINT64(stat_errors, P2plabState),
        VMSTATE_UINT64(stat_irqs, P2plabState),
        VMSTATE_UINT64(stat_irqs_dropped, P2plabState),
        VMSTATE_UINT64(stat_ring_skipped, P2plabState),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_p2plab_mmu,    /* 1.1: device MMU, parked descriptors */
        NULL
    }
};

static const Property p2plab_properties[] = {
    DEFINE_PROP_SIZE("mem-size", P2plabState, mem_size, 0),
    DEFINE_PROP_LINK("memdev", P2plabState, hostmem, TYPE_MEMORY_BACKEND, HostMemoryBackend *),
    DEFINE_PROP_UINT32("tlb-entries", P2plabState, mmu.tlb_entries, P2PLAB_MMU_TLB_DEFAULT),
};

static void p2plab_class_init(ObjectClass *klass, P2PLAB_CLASS_DATA *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = p2plab_realize;
    k->exit = p2plab_exit;
    k->config_read = p2plab_config_read;
    k->config_write = p2plab_config_write;
    k->vendor_id = P2PLAB_VENDOR_ID;
    k->device_id = P2PLAB_DEVICE_ID;
    k->revision = P2PLAB_REVISION;
    k->class_id = P2PLAB_CLASS;
    dc->desc = "p2plab PCIe DMA engine with device memory (P2PDMA/HMM lab)";
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    device_class_set_legacy_reset(dc, p2plab_device_reset);
    dc->vmsd = &vmstate_p2plab;
    device_class_set_props(dc, p2plab_properties);
    object_class_property_set_description(klass, "mem-size",
        "BAR2 device memory size, power of two 1M..64G (0 = 256M, or the memdev size)");
    object_class_property_set_description(klass, "memdev",
        "host memory backend for BAR2 (its size sets mem-size)");
    object_class_property_set_description(klass, "tlb-entries",
        "device-MMU TLB entries, 0..4096 (0 = every access walks the page table)");
}

static const TypeInfo p2plab_info = {
    .name = TYPE_P2PLAB,
    .parent = TYPE_PCI_DEVICE,
    .instance_size = sizeof(P2plabState),
    .instance_init = p2plab_instance_init,
    .class_init = p2plab_class_init,
    .interfaces = (InterfaceInfo[]) {
        { INTERFACE_PCIE_DEVICE },
        { }
    },
};

static void p2plab_register_types(void)
{
    type_register_static(&p2plab_info);
}

type_init(p2plab_register_types)
