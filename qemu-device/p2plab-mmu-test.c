/*
 * qtest for the p2plab device MMU (hw/misc/p2plab-mmu.c; docs/device.md section 15): page-table
 * walks, permissions, fault records, replay/cancel, invalidation, fault-ring overflow, bad tables,
 * atomics, fault knobs, reset, migration and unplug with stalled descriptors.
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The test is the driver: page tables are built in guest RAM from a host-side shadow (PT_BASE ..),
 * the fault ring is at FRING, atomic argument blocks at ARGS. Layouts come from p2plab_hw.h
 * (offsetof), never from magic offsets.
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/units.h"
#include "qemu/bswap.h"
#include "qobject/qdict.h"
#include "standard-headers/linux/pci_regs.h"
#include "p2plab-qtest.h"

#define PT_BASE         0x10000000ULL   /* page tables: 16 MiB of guest RAM per lab */
#define PT_SIZE         (16 * MiB)
#define FRING           0x0f000000ULL   /* fault ring */
#define ARGS            0x0e000000ULL   /* atomic argument blocks */
#define VA0             0x00007f0000000000ULL
#define VEC_FAULT_DATA  (0x100 + P2PLAB_VEC_FAULT)

#define FLT(f)          offsetof(struct p2plab_fault, f)
#define ARG(f)          offsetof(struct p2plab_atomic_args, f)

/* ---- page tables (host shadow + guest copy) -------------------------------------------------- */

typedef struct {
    Lab *l;
    uint64_t base, size, next;
    uint8_t *shadow;
    bool batch;                 /* defer guest writes to pt_flush() */
    uint64_t dirty_lo, dirty_hi;
} Pt;

static Pt *pt_new(Lab *l, uint64_t base, uint64_t size)
{
    Pt *pt = g_new0(Pt, 1);

    pt->l = l;
    pt->base = base;
    pt->size = size;
    pt->next = base;
    pt->shadow = g_malloc0(size);
    return pt;
}

static void pt_free(Pt *pt)
{
    g_free(pt->shadow);
    g_free(pt);
}

static uint64_t pt_get(Pt *pt, uint64_t a)
{
    uint64_t v;

    memcpy(&v, pt->shadow + (a - pt->base), 8);
    return le64_to_cpu(v);
}

static void pt_set(Pt *pt, uint64_t a, uint64_t v)
{
    uint64_t le = cpu_to_le64(v);

    g_assert(a >= pt->base && a + 8 <= pt->base + pt->size);
    memcpy(pt->shadow + (a - pt->base), &le, 8);
    if (pt->batch) {
        pt->dirty_lo = MIN(pt->dirty_lo, a);
        pt->dirty_hi = MAX(pt->dirty_hi, a + 8);
    } else {
        qtest_writeq(pt->l->qts, a, v);
    }
}

static void pt_begin(Pt *pt)
{
    pt->batch = true;
    pt->dirty_lo = UINT64_MAX;
    pt->dirty_hi = 0;
}

static void pt_flush(Pt *pt)
{
    if (pt->dirty_hi > pt->dirty_lo) {
        qtest_bufwrite(pt->l->qts, pt->dirty_lo, pt->shadow + (pt->dirty_lo - pt->base),
                       pt->dirty_hi - pt->dirty_lo);
    }
    pt->batch = false;
}

static uint64_t pt_alloc(Pt *pt)
{
    uint64_t a = pt->next;

    g_assert(a + 4096 <= pt->base + pt->size);
    pt->next += 4096;
    memset(pt->shadow + (a - pt->base), 0, 4096);
    if (!pt->batch) {
        qtest_memset(pt->l->qts, a, 0, 4096);
    } else {
        pt->dirty_lo = MIN(pt->dirty_lo, a);
        pt->dirty_hi = MAX(pt->dirty_hi, a + 4096);
    }
    return a;
}

/* address of the entry for @va at @level (4..1) below @root, creating tables on the way */
static uint64_t pt_slot(Pt *pt, uint64_t root, uint64_t va, int level)
{
    uint64_t table = root;

    for (int lv = 4; lv > level; lv--) {
        uint64_t ea = table + ((va >> (12 + 9 * (lv - 1))) & 511) * 8;
        uint64_t e = pt_get(pt, ea);

        if (!(e & P2PLAB_PTE_V)) {
            e = pt_alloc(pt) | P2PLAB_PTE_V;
            pt_set(pt, ea, e);
        }
        table = e & P2PLAB_PTE_ADDR_MASK;
    }
    return table + ((va >> (12 + 9 * (level - 1))) & 511) * 8;
}

/* map [va, va + len) -> target in leaves of @leaf (4 KiB or 2 MiB) with @perm */
static void pt_map(Pt *pt, uint64_t root, uint64_t va, uint64_t target, uint64_t len,
                   uint64_t leaf, uint64_t perm)
{
    for (uint64_t off = 0; off < len; off += leaf) {
        int level = leaf == 2 * MiB ? 2 : 1;
        uint64_t e = ((target + off) & P2PLAB_PTE_ADDR_MASK) | P2PLAB_PTE_V | perm |
                     (level == 2 ? P2PLAB_PTE_PS : 0);

        pt_set(pt, pt_slot(pt, root, va + off, level), e);
    }
}

static void pt_unmap(Pt *pt, uint64_t root, uint64_t va, uint64_t leaf)
{
    pt_set(pt, pt_slot(pt, root, va, leaf == 2 * MiB ? 2 : 1), 0);
}

/* ---- device side ------------------------------------------------------------------------------ */

#define RW      (P2PLAB_PTE_R | P2PLAB_PTE_W)
#define RWA     (P2PLAB_PTE_R | P2PLAB_PTE_W | P2PLAB_PTE_A)
#define LOC     P2PLAB_PTE_LOCAL

static void ctx_set(Lab *l, int dev, int ctx, uint64_t root)
{
    wr(l, dev, P2PLAB_REG_CTX_ROOT_HI(ctx), root >> 32);
    wr(l, dev, P2PLAB_REG_CTX_ROOT_LO(ctx), (uint32_t)root | P2PLAB_CTX_ROOT_ENABLE);
}

static uint64_t fring(int dev) { return FRING + dev * 0x100000; }

static void fault_ring_setup(Lab *l, int dev, uint32_t size)
{
    wr(l, dev, P2PLAB_REG_FAULT_CTRL, 0);
    wr(l, dev, P2PLAB_REG_FAULT_BASE_LO, (uint32_t)fring(dev));
    wr(l, dev, P2PLAB_REG_FAULT_BASE_HI, fring(dev) >> 32);
    wr(l, dev, P2PLAB_REG_FAULT_SIZE, size);
    qtest_memset(l->qts, fring(dev), 0, size * P2PLAB_FAULT_REC_SIZE);
    wr(l, dev, P2PLAB_REG_FAULT_CTRL, P2PLAB_FAULT_CTRL_ENABLE);
    g_assert_cmphex(rd(l, dev, P2PLAB_REG_FAULT_CTRL), ==, P2PLAB_FAULT_CTRL_ENABLE);
}

typedef struct {
    uint64_t va, ts;
    uint32_t idx, ctx, access, reason;
} Fault;

static Fault fault_at(Lab *l, int dev, uint32_t slot)
{
    uint64_t a = fring(dev) + slot * P2PLAB_FAULT_REC_SIZE;
    Fault f = {
        .va = qtest_readq(l->qts, a + FLT(va)),
        .ts = qtest_readq(l->qts, a + FLT(timestamp)),
        .idx = qtest_readl(l->qts, a + FLT(desc_index)),
        .ctx = qtest_readl(l->qts, a + FLT(ctx)),
        .access = qtest_readl(l->qts, a + FLT(access)),
        .reason = qtest_readl(l->qts, a + FLT(reason)),
    };
    return f;
}

/* consume the next fault record (asserts there is one) */
static Fault fault_pop(Lab *l, int dev)
{
    uint32_t head = rd(l, dev, P2PLAB_REG_FAULT_HEAD), size = rd(l, dev, P2PLAB_REG_FAULT_SIZE);
    Fault f;

    g_assert_cmpuint(rd(l, dev, P2PLAB_REG_FAULT_TAIL), !=, head);
    f = fault_at(l, dev, head);
    wr(l, dev, P2PLAB_REG_FAULT_HEAD, (head + 1) % size);
    return f;
}

static void resp(Lab *l, int dev, int ctx, uint32_t idx, bool cancel, bool all)
{
    wr(l, dev, P2PLAB_REG_FAULT_RESP, (idx & P2PLAB_FAULT_RESP_INDEX_MASK) |
       ((uint32_t)ctx << P2PLAB_FAULT_RESP_CTX_SHIFT) | (cancel ? P2PLAB_FAULT_RESP_CANCEL : 0) |
       (all ? P2PLAB_FAULT_RESP_ALL_CTX : 0));
}

static uint32_t invalidate(Lab *l, int dev, int ctx, uint64_t va, uint64_t size, uint32_t cmd)
{
    wr(l, dev, P2PLAB_REG_INV_CTX, ctx);
    wr(l, dev, P2PLAB_REG_INV_VA_LO, (uint32_t)va);
    wr(l, dev, P2PLAB_REG_INV_VA_HI, va >> 32);
    wr(l, dev, P2PLAB_REG_INV_SIZE_LO, (uint32_t)size);
    wr(l, dev, P2PLAB_REG_INV_SIZE_HI, size >> 32);
    wr(l, dev, P2PLAB_REG_INV_CMD, P2PLAB_INV_CMD_SUBMIT | cmd);
    return rd(l, dev, P2PLAB_REG_INV_ISSUED);
}

static uint32_t va_flags(int ctx, uint32_t flags)
{
    return flags | P2PLAB_DESC_F_CTX(ctx);
}

/* wait until descriptor @idx is parked (STALLED without DONE) */
static void wait_stalled(Lab *l, int dev, uint32_t idx)
{
    gint64 end = g_get_monotonic_time() + POLL_US;

    while (desc_status(l, dev, idx) != P2PLAB_DESC_STALLED) {
        g_assert_cmphex(desc_status(l, dev, idx) & P2PLAB_DESC_DONE, ==, 0);
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(100);
    }
}

/* a lab with p0's MMU ready: context 0 root, fault ring of @fsize records */
typedef struct {
    Lab *l;
    Pt *pt;
    uint64_t root[P2PLAB_MMU_CONTEXTS];
    int nctx;
    uint32_t fsize;
} MmuLab;

/* CTRL.RESET (in ring_setup) clears the MMU registers: program ring, fault ring, roots again */
static void mlab_rearm(MmuLab *m, uint32_t ring_size)
{
    ring_setup(m->l, 0, ring_size);
    if (m->fsize) {
        fault_ring_setup(m->l, 0, m->fsize);
    }
    for (int c = 0; c < m->nctx; c++) {
        ctx_set(m->l, 0, c, m->root[c]);
    }
}

static MmuLab *mlab_start_full(const char *p_extra, const char *extra, uint32_t fsize, int nctx)
{
    MmuLab *m = g_new0(MmuLab, 1);

    m->l = lab_start_full("", p_extra, 16 * MiB, 512, extra, true);
    m->pt = pt_new(m->l, PT_BASE, PT_SIZE);
    m->nctx = nctx;
    m->fsize = fsize;
    for (int c = 0; c < nctx; c++) {
        m->root[c] = pt_alloc(m->pt);
    }
    mlab_rearm(m, 64);
    return m;
}

static MmuLab *mlab_start_args(const char *p_extra, uint32_t fsize, int nctx)
{
    return mlab_start_full(p_extra, "", fsize, nctx);
}

static MmuLab *mlab_start(void)
{
    return mlab_start_args("", 64, 4);
}

static void mlab_stop(MmuLab *m)
{
    assert_alive(m->l);
    pt_free(m->pt);
    lab_stop(m->l);
    g_free(m);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_mmu_identity(void)
{
    MmuLab *m = mlab_start_args("", 0, 0);
    Lab *l = m->l;
    int cap = find_cap(l, 3, 0, PCI_CAP_ID_MSIX);

    g_assert_cmphex(rd(l, 0, P2PLAB_REG_VERSION), ==, 0x00010001);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CAPS) & P2PLAB_CAP_MMU, ==, P2PLAB_CAP_MMU);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_MMU_CAPS), ==,
                    P2PLAB_MMU_CONTEXTS | P2PLAB_MMU_CAP_VA_BITS(P2PLAB_MMU_VA_BITS) |
                    P2PLAB_MMU_CAP_2M | P2PLAB_MMU_CAP_LOCAL | P2PLAB_MMU_CAP_ATOMIC);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_TLB_SIZE), ==, 64);
    g_assert_cmpuint((cfg_rw(l, 3, 0, cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1, ==, 3);
    for (uint32_t r = P2PLAB_REG_MMU_STALLED; r <= P2PLAB_REG_INV_DONE; r += 4) {
        g_assert_cmphex(rd(l, 0, r), ==, 0);
    }
    for (int c = 0; c < P2PLAB_MMU_CONTEXTS; c++) {
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_CTX_ROOT_LO(c)), ==, 0);
    }
    /* RO registers ignore writes, holes read 0, fault ring refuses a bad configuration */
    wr(l, 0, P2PLAB_REG_MMU_CAPS, 0);
    wr(l, 0, P2PLAB_REG_INV_DONE, 5);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, 0);
    g_assert_cmphex(rd(l, 0, 0x880), ==, 0);
    g_assert_cmphex(rd(l, 0, 0x9fc), ==, 0);
    wr(l, 0, P2PLAB_REG_FAULT_SIZE, 3);
    wr(l, 0, P2PLAB_REG_FAULT_CTRL, P2PLAB_FAULT_CTRL_ENABLE);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_FAULT_CTRL), ==, 0);
    wr(l, 0, P2PLAB_REG_FAULT_SIZE, 8);
    wr(l, 0, P2PLAB_REG_FAULT_BASE_LO, (uint32_t)FRING + P2PLAB_FAULT_RING_ALIGN / 4);
    wr(l, 0, P2PLAB_REG_FAULT_CTRL, P2PLAB_FAULT_CTRL_ENABLE);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_FAULT_CTRL), ==, 0);
    /* tlb-entries is a property; bad values are refused */
    g_assert_cmpuint(qom_get_int(l, "p0", "tlb-entries"), ==, 64);
    mlab_stop(m);
}

static void copy_check(MmuLab *m, uint32_t ctx, uint64_t leaf, uint64_t len)
{
    Lab *l = m->l;
    g_autofree uint8_t *data = NULL;
    uint64_t walks, hits;
    uint64_t dva = VA0 + 64 * MiB;

    fill_random(l, BUF_A, len, 7 + leaf, &data);
    /* VA -> local, local -> VA, VA -> VA, VA -> bus */
    pt_map(m->pt, m->root[ctx], VA0, BUF_A, len, leaf, P2PLAB_PTE_R);
    pt_map(m->pt, m->root[ctx], dva, BUF_B, len, leaf, P2PLAB_PTE_W);
    g_assert_cmphex(run1(l, 0, VA0, 0, len, va_flags(ctx, P2PLAB_DESC_F_SRC_VA |
                                                       P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0], data, len);
    g_assert_cmphex(run1(l, 0, 0, dva, len, va_flags(ctx, P2PLAB_DESC_F_SRC_LOCAL |
                                                     P2PLAB_DESC_F_DST_VA)), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, len);
    qtest_memset(l->qts, BUF_B, 0, len);
    walks = qom_get_int(l, "p0", "stat-mmu-walks");
    hits = qom_get_int(l, "p0", "stat-mmu-tlb-hits");
    g_assert_cmphex(run1(l, 0, VA0, dva, len, va_flags(ctx, P2PLAB_DESC_F_SRC_VA |
                                                       P2PLAB_DESC_F_DST_VA)), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, len);
    /* everything was in the TLB already (2 * len / leaf leaves fit in 64 entries) */
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-walks"), ==, walks);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-tlb-hits"), >=, hits + 2 * (len / leaf));
    qtest_memset(l->qts, BUF_B + 16 * MiB, 0, len);
    g_assert_cmphex(run1(l, 0, VA0, BUF_B + 16 * MiB, len, va_flags(ctx, P2PLAB_DESC_F_SRC_VA)),
                    ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B + 16 * MiB, data, len);
}

static void test_mmu_walk_4k(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    g_autofree uint8_t *data = NULL;
    uint64_t walks;

    copy_check(m, 1, 4 * KiB, 64 * KiB);
    /* scattered 4 KiB pages: VA page i -> BUF_A page (7 * i) % 16, reassembled in order */
    fill_random(l, BUF_A, 64 * KiB, 3, &data);
    for (int i = 0; i < 16; i++) {
        pt_map(m->pt, m->root[2], VA0 + i * 4096, BUF_A + ((7 * i) % 16) * 4096, 4096, 4096,
               P2PLAB_PTE_R);
    }
    walks = qom_get_int(l, "p0", "stat-mmu-walks");
    g_assert_cmphex(run1(l, 0, VA0 + 100, 0, 16 * 4096 - 200,
                         va_flags(2, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-walks"), ==, walks + 16);
    for (int i = 0; i < 16; i++) {
        uint32_t from = i == 0 ? 100 : 0, to = i == 15 ? 4096 - 100 : 4096;
        assert_mem_eq(l, l->bar2[0] + i * 4096 + from - 100,
                      data + ((7 * i) % 16) * 4096 + from, to - from);
    }
    /* a leaf that targets device memory (LOCAL): VA -> bus reads device memory */
    pt_map(m->pt, m->root[3], VA0, 1 * MiB, 8192, 4096, P2PLAB_PTE_R | LOC);
    qtest_memset(l->qts, l->bar2[0] + MiB, 0x5a, 8192);
    g_assert_cmphex(run1(l, 0, VA0, BUF_B, 8192, va_flags(3, P2PLAB_DESC_F_SRC_VA)), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, BUF_B + 8184), ==, 0x5a5a5a5a5a5a5a5aULL);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-tlb-misses"), >, 0);
    mlab_stop(m);
}

static void test_mmu_walk_2m(void)
{
    MmuLab *m = mlab_start_args(",tlb-entries=0", 64, 2);
    Lab *l = m->l;
    g_autofree uint8_t *data = NULL;
    uint64_t walks;

    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_TLB_SIZE), ==, 0);
    /* no TLB: every page of every pass is a walk */
    fill_random(l, BUF_A, 4 * MiB, 9, &data);
    pt_map(m->pt, m->root[1], VA0, BUF_A, 4 * MiB, 2 * MiB, P2PLAB_PTE_R);
    walks = qom_get_int(l, "p0", "stat-mmu-walks");
    g_assert_cmphex(run1(l, 0, VA0 + 4096, 0, 4 * MiB - 8192,
                         va_flags(1, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    /* a step ends at a leaf boundary and at 1 MiB: 4 steps, one walk each */
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-walks"), >=, walks + 2);
    assert_mem_eq(l, l->bar2[0], data + 4096, 4 * MiB - 8192);
    /* 2 MiB leaf on device memory, VA -> VA inside the device */
    pt_map(m->pt, m->root[0], VA0, 0, 2 * MiB, 2 * MiB, RW | LOC);
    pt_map(m->pt, m->root[0], VA0 + 2 * MiB, 8 * MiB, 2 * MiB, 2 * MiB, RW | LOC);
    g_assert_cmphex(run1(l, 0, VA0, VA0 + 2 * MiB, 2 * MiB,
                         va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_VA)), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0] + 8 * MiB, data + 4096, 2 * MiB);
    mlab_stop(m);

    m = mlab_start_args("", 64, 1);
    copy_check(m, 0, 2 * MiB, 4 * MiB);
    mlab_stop(m);
}

static void expect_fault(Lab *l, uint32_t idx, uint64_t va, uint32_t ctx, uint32_t acc,
                         uint32_t reason)
{
    gint64 end = g_get_monotonic_time() + POLL_US;
    Fault f;

    wait_stalled(l, 0, idx);
    /* a replayed descriptor is STALLED already: wait for its new record */
    while (rd(l, 0, P2PLAB_REG_FAULT_TAIL) == rd(l, 0, P2PLAB_REG_FAULT_HEAD)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(100);
    }
    f = fault_pop(l, 0);
    g_assert_cmphex(f.va, ==, va);
    g_assert_cmpuint(f.idx, ==, idx);
    g_assert_cmpuint(f.ctx, ==, ctx);
    g_assert_cmpuint(f.access, ==, acc);
    g_assert_cmphex(f.reason, ==, reason);
}

static void test_mmu_permissions(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    uint64_t args = ARGS;
    uint32_t idx;

    pt_map(m->pt, m->root[0], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);           /* RO */
    pt_map(m->pt, m->root[0], VA0 + 4096, BUF_A + 4096, 4096, 4096, P2PLAB_PTE_W); /* WO */
    pt_map(m->pt, m->root[0], VA0 + 8192, BUF_A + 8192, 4096, 4096, RW);       /* no A */
    /* write to a read-only page */
    idx = post(l, 0, 0, VA0 + 8, 64, va_flags(0, P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_VA));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + 8, 0, P2PLAB_FAULT_ACC_WRITE,
                 P2PLAB_FAULT_R_PERM | P2PLAB_FAULT_R_LEVEL(1));
    resp(l, 0, 0, idx, true, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    /* read from a write-only page */
    idx = post(l, 0, VA0 + 4096, 0, 64, va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + 4096, 0, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_PERM | P2PLAB_FAULT_R_LEVEL(1));
    resp(l, 0, 0, idx, true, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    /* atomic on a page without A */
    qtest_memset(l->qts, args, 0, P2PLAB_ATOMIC_ARGS_SIZE);
    idx = post(l, 0, args, VA0 + 8192, 8,
               va_flags(0, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_FETCH_ADD)));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + 8192, 0, P2PLAB_FAULT_ACC_ATOMIC,
                 P2PLAB_FAULT_R_PERM | P2PLAB_FAULT_R_LEVEL(1));
    /* upgrade the permission and replay: the stale TLB entry is re-walked before faulting */
    pt_map(m->pt, m->root[0], VA0 + 8192, BUF_A + 8192, 4096, 4096, RWA);
    resp(l, 0, 0, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-faults-write"), ==, 1);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-faults-read"), ==, 1);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-faults-atomic"), ==, 1);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-cancels"), ==, 2);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-replays"), ==, 1);
    mlab_stop(m);
}

/* every field of a fault record, the STALLED status, registers and the fault vector */
static void test_mmu_fault_record(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    uint32_t idx, phys;
    int64_t now;
    Fault f;

    pt_map(m->pt, m->root[3], VA0, BUF_A, 8192, 4096, RW);
    run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);     /* move the ring index along */
    now = qtest_clock_step(l->qts, 12345);
    idx = post(l, 0, VA0 + 4000, 0, 8192,
               va_flags(3, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ));
    doorbell(l, 0);
    wait_stalled(l, 0, idx);
    g_assert_cmpuint(idx, ==, 1);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, idx + 1);  /* HEAD moved on */
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 1);        /* not completed */
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED | P2PLAB_STATUS_BUSY);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_MMU_STALLED), ==, 1u << 3);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 1);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_FAULT_TAIL), ==, 1);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, P2PLAB_INT_FAULT);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, VEC_FAULT_DATA);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0);
    /* two 4 KiB pages are mapped: bytes 4000..8191 were copied, the fault is at VA0 + 8192 */
    f = fault_at(l, 0, 0);
    g_assert_cmphex(f.va, ==, VA0 + 8192);
    g_assert_cmpint(f.ts, ==, now);
    g_assert_cmpuint(f.idx, ==, idx);
    g_assert_cmpuint(f.ctx, ==, 3);
    g_assert_cmpuint(f.access, ==, P2PLAB_FAULT_ACC_READ);
    g_assert_cmphex(f.reason, ==, P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-faults-read"), ==, 1);
    /* a fault higher up: level 3 entry missing */
    phys = post(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);
    idx = post(l, 0, VA0 + (1ULL << 39), 0, 64,
               va_flags(2, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, phys), ==, P2PLAB_DESC_DONE);  /* physical work goes on */
    wait_stalled(l, 0, idx);
    f = fault_at(l, 0, 1);
    g_assert_cmphex(f.reason, ==, P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(4));
    g_assert_cmpuint(f.ctx, ==, 2);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, VEC_FAULT_DATA);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_MMU_STALLED), ==, (1u << 3) | (1u << 2));
    wr(l, 0, P2PLAB_REG_INT_STATUS, P2PLAB_INT_FAULT);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, 0);
    /* masked: INT_STATUS set, no message */
    wr(l, 0, P2PLAB_REG_INT_MASK, P2PLAB_INT_FAULT);
    idx = post(l, 0, VA0 + (2ULL << 39), 0, 64,
               va_flags(1, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    doorbell(l, 0);
    wait_stalled(l, 0, idx);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, P2PLAB_INT_FAULT);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, 0);
    /* a response that matches nothing is a harmless guest error */
    resp(l, 0, 5, 3, false, false);
    resp(l, 0, 3, 9, false, false);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 3);
    mlab_stop(m);
}

/* replay finishes the copy with the right bytes; other contexts run while one is stalled */
static void test_mmu_replay(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    g_autofree uint8_t *data = NULL;
    uint32_t idx, w1, w2, other;
    uint64_t len = 256 * KiB;

    fill_random(l, BUF_A, len, 21, &data);
    /* the source's second half is not mapped yet */
    pt_map(m->pt, m->root[0], VA0, BUF_A, len / 2, 4096, P2PLAB_PTE_R);
    pt_map(m->pt, m->root[1], VA0, BUF_A, len, 4096, P2PLAB_PTE_R);
    idx = post(l, 0, VA0, 0, len, va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL |
                                                P2PLAB_DESC_F_IRQ));
    w1 = post(l, 0, VA0, MiB, 4096, va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    other = post(l, 0, VA0, 2 * MiB, len, va_flags(1, P2PLAB_DESC_F_SRC_VA |
                                                      P2PLAB_DESC_F_DST_LOCAL));
    w2 = post(l, 0, VA0 + len - 4096, 3 * MiB, 4096,
              va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + len / 2, 0, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
    /* context 1 ran past the stalled context 0; context 0's later descriptors wait in order */
    g_assert_cmphex(wait_desc(l, 0, other), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0] + 2 * MiB, data, len);
    g_assert_cmphex(desc_status(l, 0, w1), ==, P2PLAB_DESC_STALLED);
    g_assert_cmphex(desc_status(l, 0, w2), ==, P2PLAB_DESC_STALLED);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 3);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, w2 + 1);
    /* the bytes before the fault are there already */
    assert_mem_eq(l, l->bar2[0], data, len / 2);
    /* a replay without a fix faults again (same VA), a replay after the fix completes */
    resp(l, 0, 0, idx, false, false);
    expect_fault(l, idx, VA0 + len / 2, 0, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
    pt_map(m->pt, m->root[0], VA0 + len / 2, BUF_A + len / 2, len / 2, 4096, P2PLAB_PTE_R);
    resp(l, 0, 0, 0, false, true);                  /* per-context replay */
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(l, 0, w1), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(l, 0, w2), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0], data, len);
    assert_mem_eq(l, l->bar2[0] + MiB, data, 4096);
    assert_mem_eq(l, l->bar2[0] + 3 * MiB, data + len - 4096, 4096);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0x100);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_STALLED), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 4);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-replays"), ==, 2);
    /* VA -> VA: the destination faults (write), replay, data right */
    qtest_memset(l->qts, BUF_B, 0, len);
    pt_map(m->pt, m->root[2], VA0, BUF_A, len, 4096, P2PLAB_PTE_R);
    pt_map(m->pt, m->root[2], VA0 + GiB, BUF_B, len / 4, 4096, P2PLAB_PTE_W);
    idx = post(l, 0, VA0, VA0 + GiB, len, va_flags(2, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_VA));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + GiB + len / 4, 2, P2PLAB_FAULT_ACC_WRITE,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
    pt_map(m->pt, m->root[2], VA0 + GiB + len / 4, BUF_B + len / 4, len * 3 / 4, 4096,
           P2PLAB_PTE_W);
    resp(l, 0, 2, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, len);
    mlab_stop(m);
}

/*
 * The ring wraps onto a parked descriptor's entry: the driver leaves the entry alone (its status is
 * the parked descriptor's) and lets TAIL pass over it; the engine skips an entry whose status has
 * STALLED or DONE at fetch, runs the rest, and the parked one still completes at its own index.
 */
static void test_mmu_ring_wrap(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    g_autofree uint8_t *data = NULL;
    uint32_t idx, i, last = 0;

    mlab_rearm(m, 8);
    fill_random(l, BUF_A, 8192, 31, &data);
    pt_map(m->pt, m->root[0], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    idx = post(l, 0, VA0, 0, 8192, va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL));
    g_assert_cmpuint(idx, ==, 0);
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + 4096, 0, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 1);
    /* seven physical copies fill the ring up to the parked entry */
    for (i = 1; i < 8; i++) {
        last = post(l, 0, BUF_A, MiB + i * 4096, 4096, P2PLAB_DESC_F_DST_LOCAL);
    }
    g_assert_cmpuint(l->tail[0], ==, 0);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, last), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 0);
    /* TAIL passes over the parked entry without rewriting it; the copy after it runs */
    l->tail[0] = 1;
    last = post(l, 0, BUF_A + 4096, 2 * MiB, 4096, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, last), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0] + 2 * MiB, data + 4096, 4096);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-ring-skipped"), ==, 1);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_STALLED);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 1);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 2);
    /* the fault is answered: the parked descriptor completes at its own index */
    pt_map(m->pt, m->root[0], VA0 + 4096, BUF_A + 4096, 4096, 4096, P2PLAB_PTE_R);
    resp(l, 0, 0, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0], data, 8192);
    /* a completed entry the driver has not reused yet (DONE) is passed over too */
    for (i = 2; i < 8; i++) {
        last = post(l, 0, BUF_A, 3 * MiB + i * 4096, 4096, P2PLAB_DESC_F_DST_LOCAL);
    }
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, last), ==, P2PLAB_DESC_DONE);
    l->tail[0] = 1;
    last = post(l, 0, BUF_A, 4 * MiB, 4096, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, last), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-ring-skipped"), ==, 2);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
    mlab_stop(m);
}

static void test_mmu_cancel(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    uint32_t idx, w1, ok;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;

    pt_map(m->pt, m->root[1], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    idx = post(l, 0, VA0 + GiB, 0, 64, va_flags(1, F));
    w1 = post(l, 0, VA0, 0, 64, va_flags(1, F));
    doorbell(l, 0);
    wait_stalled(l, 0, idx);
    wait_stalled(l, 0, w1);
    /* per-fault cancel: the faulted one fails, the waiting one then runs */
    resp(l, 0, 1, idx, true, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    g_assert_cmphex(wait_desc(l, 0, w1), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_ERR_INDEX), ==, idx);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_ERROR), ==, 0x101);
    /* per-context cancel: the faulted one and the ones waiting behind it */
    idx = post(l, 0, VA0 + GiB, 0, 64, va_flags(1, F));
    w1 = post(l, 0, VA0, 0, 64, va_flags(1, F));
    doorbell(l, 0);
    wait_stalled(l, 0, w1);
    resp(l, 0, 1, 0, true, true);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    g_assert_cmphex(wait_desc(l, 0, w1), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-cancels"), ==, 3);
    /* fault ring disabled: a fault is final at once */
    wr(l, 0, P2PLAB_REG_FAULT_CTRL, 0);
    g_assert_cmphex(run1(l, 0, VA0 + GiB, 0, 64, va_flags(1, F)), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    ok = post(l, 0, VA0, 0, 64, va_flags(1, F));
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, ok), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    mlab_stop(m);
}

/* invalidation drops TLB entries; an ignored or delayed one is observable */
static void test_mmu_invalidate(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    const uint32_t F = va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL);
    uint32_t seq;

    qtest_memset(l->qts, BUF_A, 0x11, 4096);
    qtest_memset(l->qts, BUF_B, 0x22, 4096);
    pt_map(m->pt, m->root[0], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x1111111111111111ULL);
    /* remap without invalidation: the device still uses the cached translation */
    pt_map(m->pt, m->root[0], VA0, BUF_B, 4096, 4096, P2PLAB_PTE_R);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x1111111111111111ULL);
    /* an invalidation of another context or range does not help */
    seq = invalidate(l, 0, 1, VA0, 4096, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq);
    invalidate(l, 0, 0, VA0 + 4096, 4096, 0);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x1111111111111111ULL);
    /* mmu-ignore-inv: completes (sequence advances) but the entry stays: the stale-TLB bug */
    qom_set_bool(l, "p0", "mmu-ignore-inv", true);
    seq = invalidate(l, 0, 0, VA0, 4096, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq);
    g_assert(!qom_get_bool(l, "p0", "mmu-ignore-inv"));
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x1111111111111111ULL);
    /* mmu-inv-delay-us: not done (and not applied) until the virtual clock passes */
    qom_set_int(l, "p0", "mmu-inv-delay-us", 1000);
    seq = invalidate(l, 0, 0, VA0, 4096, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_ISSUED), ==, seq);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq - 1);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x1111111111111111ULL);
    qtest_clock_step(l->qts, 999 * 1000);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq - 1);
    qtest_clock_step(l->qts, 1000);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq);
    qom_set_int(l, "p0", "mmu-inv-delay-us", 0);
    /* completed: the new mapping is used */
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, F), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x2222222222222222ULL);
    /* unmap + invalidate (whole context, size 0): the next access faults */
    pt_unmap(m->pt, m->root[0], VA0, 4096);
    invalidate(l, 0, 0, 0, 0, 0);
    {
        uint32_t idx = post(l, 0, VA0, 0, 8, F);
        doorbell(l, 0);
        expect_fault(l, idx, VA0, 0, P2PLAB_FAULT_ACC_READ,
                     P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(1));
        resp(l, 0, 0, idx, true, false);
        wait_desc(l, 0, idx);
    }
    /* all-contexts invalidation; a new root drops the context's entries too */
    pt_map(m->pt, m->root[1], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, va_flags(1, P2PLAB_DESC_F_SRC_VA |
                                                   P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    pt_map(m->pt, m->root[1], VA0, BUF_B, 4096, 4096, P2PLAB_PTE_R);
    invalidate(l, 0, 9, 0, 0, P2PLAB_INV_CMD_ALL);
    g_assert_cmphex(run1(l, 0, VA0, 0, 8, va_flags(1, P2PLAB_DESC_F_SRC_VA |
                                                   P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0]), ==, 0x2222222222222222ULL);
    /* a full queue of delayed invalidations: the oldest completes early, in order */
    qom_set_int(l, "p0", "mmu-inv-delay-us", 5000);
    for (int i = 0; i < P2PLAB_MMU_INV_QUEUE + 3; i++) {
        seq = invalidate(l, 0, 0, VA0, 4096, 0);
    }
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq - P2PLAB_MMU_INV_QUEUE);
    qtest_clock_step(l->qts, 5000 * 1000);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_INV_DONE), ==, seq);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-invalidations"), ==, seq);
    mlab_stop(m);
}

/* a full fault ring: overflow flag, nothing lost, every stalled descriptor completes on replay */
static void test_mmu_overflow(void)
{
    MmuLab *m = mlab_start_args("", 2, 4);      /* room for one record */
    Lab *l = m->l;
    uint32_t idx[4], stalled;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;

    qtest_memset(l->qts, BUF_A, 0x3c, 4096);
    for (int c = 0; c < 4; c++) {
        idx[c] = post(l, 0, VA0, c * 4096, 4096, va_flags(c, F));
    }
    doorbell(l, 0);
    for (int c = 0; c < 4; c++) {
        wait_stalled(l, 0, idx[c]);
    }
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_FAULT_TAIL), ==, 1);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_FAULT_STATUS), ==, P2PLAB_FAULT_STATUS_OVERFLOW);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-fault-overflows"), ==, 3);
    g_assert_cmpuint(fault_at(l, 0, 0).idx, ==, idx[0]);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, VEC_FAULT_DATA);
    /* the driver drains the ring, clears the flag, and replays every stalled context */
    fault_pop(l, 0);
    wr(l, 0, P2PLAB_REG_FAULT_STATUS, P2PLAB_FAULT_STATUS_OVERFLOW);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_FAULT_STATUS), ==, 0);
    stalled = rd(l, 0, P2PLAB_REG_MMU_STALLED);
    g_assert_cmphex(stalled, ==, 0xf);
    for (int c = 0; c < 4; c++) {
        pt_map(m->pt, m->root[c], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    }
    for (int c = 0; c < 4; c++) {
        if (stalled & (1u << c)) {
            resp(l, 0, c, 0, false, true);
        }
    }
    for (int c = 0; c < 4; c++) {
        g_assert_cmphex(wait_desc(l, 0, idx[c]), ==, P2PLAB_DESC_DONE);
        g_assert_cmphex(qtest_readq(l->qts, l->bar2[0] + c * 4096 + 4088), ==,
                        0x3c3c3c3c3c3c3c3cULL);
    }
    /* more stalled descriptors than park slots: the ring waits, nothing is lost */
    mlab_rearm(m, 64);
    for (int i = 0; i < P2PLAB_MMU_PARK_MAX + 8; i++) {
        post(l, 0, VA0 + GiB, 0, 64, va_flags(3, F));
    }
    doorbell(l, 0);
    wait_stalled(l, 0, P2PLAB_MMU_PARK_MAX - 1);
    settle(l, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, P2PLAB_MMU_PARK_MAX);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, P2PLAB_MMU_PARK_MAX);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED | P2PLAB_STATUS_BUSY);
    g_assert_cmphex(desc_status(l, 0, P2PLAB_MMU_PARK_MAX), ==, 0);     /* not fetched */
    /* cancel the context until the ring has drained: the last 8 fault after the first 32 */
    for (int tries = 0; tries < 100 && (rd(l, 0, P2PLAB_REG_MMU_PARKED) ||
                                        rd(l, 0, P2PLAB_REG_RING_HEAD) != l->tail[0]); tries++) {
        resp(l, 0, 3, 0, true, true);
        settle(l, 0);
    }
    for (int i = 0; i < P2PLAB_MMU_PARK_MAX + 8; i++) {
        g_assert_cmphex(desc_status(l, 0, i), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    }
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    mlab_stop(m);
}

/* every bad-table / bad-descriptor case: a documented error, the engine keeps working */
static void test_mmu_bad_tables(void)
{
    MmuLab *m = mlab_start_args("", 64, 3);
    Lab *l = m->l;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;
    const uint32_t FADD = P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_FETCH_ADD);
    const uint64_t V = P2PLAB_PTE_V;
    uint64_t r0 = m->root[0], l1, l2, l3;
    uint32_t idx;
    static const struct { uint64_t src, dst; uint32_t len, flags, err; const char *what; } c[] = {
        { VA0, 0, 64, P2PLAB_DESC_F_CTX(9) | F, P2PLAB_ERR_MMU_CTX, "context not enabled" },
        { VA0, 0, 64, P2PLAB_DESC_F_CTX(3) | F, P2PLAB_ERR_MMU_CTX, "root with reserved bits" },
        { VA0, 0, 64, P2PLAB_DESC_F_CTX(4) | F, P2PLAB_ERR_MMU_PT_READ, "root in unmapped memory" },
        { 1ULL << 48, 0, 64, F, P2PLAB_ERR_MMU_VA, "VA beyond 48 bits" },
        { (1ULL << 48) - 32, 0, 64, F, P2PLAB_ERR_MMU_VA, "range crosses 2^48" },
        { ~0ULL - 8, 0, 64, F, P2PLAB_ERR_MMU_VA, "range wraps" },
        { VA0, 0, 64, F | P2PLAB_DESC_F_SRC_LOCAL, P2PLAB_ERR_BAD_FLAGS, "SRC_VA | SRC_LOCAL" },
        { VA0, 0, 64, P2PLAB_DESC_F_CTX(1) | P2PLAB_DESC_F_DST_LOCAL, P2PLAB_ERR_BAD_FLAGS,
          "CTX, no VA" },
        { 0, 0, 64, P2PLAB_DESC_F_OP(P2PLAB_OP_PREFETCH), P2PLAB_ERR_BAD_FLAGS, "OP, no VA" },
        { 0, VA0, 64, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(5), P2PLAB_ERR_BAD_FLAGS, "OP 5" },
        { VA0, VA0, 8, F | P2PLAB_DESC_F_OP(P2PLAB_OP_CMPXCHG), P2PLAB_ERR_BAD_FLAGS,
          "atomic with SRC_VA" },
        { ARGS, VA0, 2, FADD, P2PLAB_ERR_BAD_LEN, "atomic len 2" },
        { ARGS, VA0 + 4, 8, FADD, P2PLAB_ERR_ATOMIC_ALIGN, "atomic VA misaligned" },
        { ARGS + 4, VA0, 8, FADD, P2PLAB_ERR_ATOMIC_ALIGN, "atomic args misaligned" },
        { VA0 + 0x2000, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "reserved bit 63" },
        { VA0 + 0x3000, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "reserved bit 8" },
        { VA0 + 0x4000, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "PS on a 4K leaf" },
        { VA0 + 0x5000, 0, 64, F, P2PLAB_ERR_MMU_TARGET, "local leaf beyond mem-size" },
        { ARGS, VA0 + 0x6000, 8, FADD, P2PLAB_ERR_ATOMIC_TARGET, "atomic on MMIO (peer regs)" },
        { UNMAPPED, VA0 + 0x7000, 8, FADD, P2PLAB_ERR_SRC_DMA, "atomic args unmapped" },
        { VA0 + 2 * MiB, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "2 MiB leaf misaligned" },
        { VA0 + 4 * MiB, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "permission bits in a table" },
        { VA0 + 8 * MiB, 0, 64, F, P2PLAB_ERR_MMU_PT_READ, "table in unmapped memory" },
        { VA0 + GiB, 0, 64, F, P2PLAB_ERR_MMU_PT_RSVD, "PS at level 3" },
        { VA0 + 0x8000, BUF_B, 64, F & ~P2PLAB_DESC_F_DST_LOCAL, P2PLAB_ERR_SRC_DMA,
          "bus leaf in unmapped memory" },
    };

    /* context 3: reserved bits in its root; context 4: root in unmapped memory */
    wr(l, 0, P2PLAB_REG_CTX_ROOT_LO(3), (uint32_t)m->root[2] | P2PLAB_CTX_ROOT_ENABLE | 0x10);
    ctx_set(l, 0, 4, UNMAPPED);
    pt_map(m->pt, r0, VA0, BUF_A, 4096, 4096, RWA);
    l1 = pt_slot(m->pt, r0, VA0, 1) & ~0xfffULL;
    l2 = pt_slot(m->pt, r0, VA0, 2) & ~0xfffULL;
    l3 = pt_slot(m->pt, r0, VA0, 3) & ~0xfffULL;
    pt_set(m->pt, l1 + 2 * 8, BUF_A | V | P2PLAB_PTE_R | (1ULL << 63));
    pt_set(m->pt, l1 + 3 * 8, BUF_A | V | P2PLAB_PTE_R | (1ULL << 8));
    pt_set(m->pt, l1 + 4 * 8, BUF_A | V | P2PLAB_PTE_R | P2PLAB_PTE_PS);
    pt_set(m->pt, l1 + 5 * 8, (16 * MiB) | V | P2PLAB_PTE_R | LOC);
    pt_set(m->pt, l1 + 6 * 8, BAR0_P1 | V | RWA);
    pt_set(m->pt, l1 + 7 * 8, BUF_A | V | RWA);
    pt_set(m->pt, l1 + 8 * 8, UNMAPPED | V | RWA);
    pt_set(m->pt, l2 + 1 * 8, (BUF_A + 4096) | V | P2PLAB_PTE_R | P2PLAB_PTE_PS);
    pt_set(m->pt, l2 + 2 * 8, l1 | V | P2PLAB_PTE_R);
    pt_set(m->pt, l2 + 4 * 8, UNMAPPED | V);
    pt_set(m->pt, l3 + 1 * 8, BUF_A | V | P2PLAB_PTE_PS | P2PLAB_PTE_R);
    qtest_memset(l->qts, ARGS, 0, P2PLAB_ATOMIC_ARGS_SIZE);

    for (size_t i = 0; i < G_N_ELEMENTS(c); i++) {
        uint32_t st = run1(l, 0, c[i].src, c[i].dst, c[i].len, c[i].flags);

        if (st != (P2PLAB_DESC_DONE | c[i].err)) {
            g_test_message("case %zu (%s): status 0x%x, expected 0x%x", i, c[i].what, st,
                           P2PLAB_DESC_DONE | c[i].err);
        }
        g_assert_cmphex(st, ==, P2PLAB_DESC_DONE | c[i].err);
        g_assert_cmpuint(rd(l, 0, P2PLAB_REG_ERR_INDEX), ==, (l->tail[0] + 63) % 64);
        g_assert_cmphex(run1(l, 0, VA0, 0, 64, F), ==, P2PLAB_DESC_DONE);
    }
    /*
     * A loop: every level-4/3/2 entry on the way points back at the level-4 table itself. The
     * walk still reads exactly 4 entries, ends on a "leaf" without permissions: a fault.
     */
    pt_set(m->pt, m->root[1] + ((VA0 >> 39) & 511) * 8, m->root[1] | V);
    pt_set(m->pt, m->root[1], m->root[1] | V);
    idx = post(l, 0, VA0, 0, 64, va_flags(1, F));
    doorbell(l, 0);
    expect_fault(l, idx, VA0, 1, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_PERM | P2PLAB_FAULT_R_LEVEL(1));
    resp(l, 0, 1, idx, true, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ERR_CODE), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
    mlab_stop(m);
}

/* post one atomic, return its status */
static uint32_t atomic_run_st(Lab *l, uint64_t args, uint64_t va, uint32_t width, uint32_t op,
                              int ctx, uint64_t operand, uint64_t compare)
{
    qtest_writeq(l->qts, args + ARG(operand), operand);
    qtest_writeq(l->qts, args + ARG(compare), compare);
    return run1(l, 0, args, va, width, va_flags(ctx, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(op)));
}

static uint64_t atomic_run(Lab *l, uint64_t args, uint64_t va, uint32_t width, uint32_t op,
                           int ctx, uint64_t operand, uint64_t compare)
{
    qtest_writeq(l->qts, args + ARG(operand), operand);
    qtest_writeq(l->qts, args + ARG(compare), compare);
    qtest_writeq(l->qts, args + ARG(result), 0xdeadbeefdeadbeefULL);
    qtest_writeq(l->qts, args + ARG(reserved), 0x5555);
    g_assert_cmphex(run1(l, 0, args, va, width, va_flags(ctx, P2PLAB_DESC_F_DST_VA |
                                                        P2PLAB_DESC_F_OP(op))), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readq(l->qts, args + ARG(reserved)), ==, 0x5555);
    return qtest_readq(l->qts, args + ARG(result));
}

static void test_mmu_atomics(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    const uint64_t w = BUF_A + 0x100;       /* VA0 + 0x100 */
    uint64_t sum = 0;
    GRand *r = g_rand_new_with_seed(77);
    int n = 0;

    pt_map(m->pt, m->root[0], VA0, BUF_A, 4096, 4096, RWA);
    pt_map(m->pt, m->root[1], VA0, 2 * MiB, 4096, 4096, RWA | LOC);
    qtest_writeq(l->qts, w, 0x00000001fffffffeULL);
    /* 32-bit fetch-add wraps inside its word, the neighbour is untouched */
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x100, 4, P2PLAB_OP_FETCH_ADD, 0, 3, 0), ==,
                    0xfffffffe);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, 0x0000000100000001ULL);
    /* 64-bit fetch-add */
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x100, 8, P2PLAB_OP_FETCH_ADD, 0,
                               0x100000000ULL, 0), ==, 0x0000000100000001ULL);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, 0x0000000200000001ULL);
    /* cmpxchg: success and failure, 32 and 64 */
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x104, 4, P2PLAB_OP_CMPXCHG, 0, 7, 2), ==, 2);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, 0x0000000700000001ULL);
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x104, 4, P2PLAB_OP_CMPXCHG, 0, 9, 2), ==, 7);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, 0x0000000700000001ULL);
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x100, 8, P2PLAB_OP_CMPXCHG, 0, ~0ULL,
                               0x0000000700000001ULL), ==, 0x0000000700000001ULL);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, ~0ULL);
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x100, 8, P2PLAB_OP_CMPXCHG, 0, 1, 0), ==, ~0ULL);
    g_assert_cmphex(qtest_readq(l->qts, w), ==, ~0ULL);
    /* on device memory (LOCAL leaf) */
    qtest_writeq(l->qts, l->bar2[0] + 2 * MiB + 8, 40);
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 8, 8, P2PLAB_OP_FETCH_ADD, 1, 2, 0), ==, 40);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0] + 2 * MiB + 8), ==, 42);

    /*
     * Exactness against concurrent CPU writes: batches of 8 device fetch-adds on one word are
     * in flight while the "CPU" (qtest) stores to the words on both sides of it; every device
     * update must be in the final value and no neighbour store may be lost or clobbered (a
     * device atomic touches exactly its own naturally aligned word).
     */
    qtest_writeq(l->qts, w, 0);
    for (int i = 0; i < 8; i++) {
        qtest_writeq(l->qts, ARGS + 64 * i + ARG(operand), (i + 1) * 0x10001ULL);
    }
    for (int batch = 0; batch < 40; batch++) {
        uint32_t last = 0;

        for (int i = 0; i < 8; i++) {
            last = post(l, 0, ARGS + 64 * i, VA0 + 0x100, 8,
                        va_flags(0, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_FETCH_ADD)));
            sum += (i + 1) * 0x10001ULL;
            n++;
        }
        doorbell(l, 0);
        for (int k = 0; k < 4; k++) {
            qtest_writel(l->qts, w + 8, batch * 4 + k);
            qtest_writel(l->qts, w - 4, ~(batch * 4 + k));
        }
        wait_desc(l, 0, last);
    }
    g_assert_cmphex(qtest_readq(l->qts, w), ==, sum);
    g_assert_cmphex(qtest_readl(l->qts, w + 8), ==, 39 * 4 + 3);
    g_assert_cmphex(qtest_readl(l->qts, w - 4), ==, ~(39u * 4 + 3));
    /* CPU stores to the word itself between device atomics are seen by the next one */
    for (int i = 0; i < 50; i++) {
        uint64_t v = g_rand_int(r);
        qtest_writeq(l->qts, w, v);
        g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x100, 8, P2PLAB_OP_FETCH_ADD, 0, i, 0), ==, v);
        g_assert_cmphex(qtest_readq(l->qts, w), ==, v + i);
    }
    g_test_message("atomics: %d device fetch-adds in the mixed run", n);
    g_rand_free(r);
    mlab_stop(m);
}

/* hold-faults, spurious fault, drop-replay, prefetch */
static void test_mmu_knobs(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    const uint32_t F = va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL);
    uint32_t idx;
    uint64_t misses;
    Fault f;

    qtest_memset(l->qts, BUF_A, 0x77, 8192);
    /* hold: stalled but not recorded, no interrupt; released: recorded */
    qom_set_bool(l, "p0", "mmu-hold-faults", true);
    idx = post(l, 0, VA0, 0, 64, F);
    doorbell(l, 0);
    wait_stalled(l, 0, idx);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_FAULT_TAIL), ==, 0);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, 0);
    /* the scenario changes the mapping while the fault is held */
    pt_map(m->pt, m->root[0], VA0, BUF_A, 8192, 4096, P2PLAB_PTE_R);
    qom_set_bool(l, "p0", "mmu-hold-faults", false);
    settle(l, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_FAULT_TAIL), ==, 1);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, VEC_FAULT_DATA);
    f = fault_pop(l, 0);
    g_assert_cmpuint(f.idx, ==, idx);
    resp(l, 0, 0, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    /* spurious fault on a valid mapping */
    qom_set_int(l, "p0", "mmu-spurious-fault", 1);
    idx = post(l, 0, VA0, 0, 64, F);
    doorbell(l, 0);
    expect_fault(l, idx, VA0, 0, P2PLAB_FAULT_ACC_READ, P2PLAB_FAULT_R_INJECTED);
    g_assert_cmpuint(qom_get_int(l, "p0", "mmu-spurious-fault"), ==, 0);
    /* drop-replay: the first replay is lost, the driver's retry works */
    qom_set_bool(l, "p0", "mmu-drop-replay", true);
    resp(l, 0, 0, idx, false, false);
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_STALLED);
    g_assert(!qom_get_bool(l, "p0", "mmu-drop-replay"));
    resp(l, 0, 0, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    /* prefetch fills the TLB; its fault is typed prefetch */
    pt_map(m->pt, m->root[1], VA0, BUF_A, 2 * MiB, 4096, P2PLAB_PTE_R);
    g_assert_cmphex(run1(l, 0, 0, VA0, 64 * KiB,
                         va_flags(1, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_PREFETCH))),
                    ==, P2PLAB_DESC_DONE);
    misses = qom_get_int(l, "p0", "stat-mmu-tlb-misses");
    g_assert_cmphex(run1(l, 0, VA0, 0, 64 * KiB, va_flags(1, P2PLAB_DESC_F_SRC_VA |
                                                         P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-tlb-misses"), ==, misses);
    idx = post(l, 0, 0, VA0 + GiB, 8192,
               va_flags(1, P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_PREFETCH)));
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + GiB, 1, P2PLAB_FAULT_ACC_PREFETCH,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(3));
    resp(l, 0, 1, idx, true, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_FAULT);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-faults-prefetch"), ==, 1);
    mlab_stop(m);
}

static void test_mmu_reset(void)
{
    MmuLab *m = mlab_start();
    Lab *l = m->l;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;
    uint32_t a, b, c;

    /* CTRL.ENABLE 1 -> 0 aborts parked descriptors (they were started) */
    a = post(l, 0, VA0, 0, 64, va_flags(0, F));
    b = post(l, 0, VA0, 0, 64, va_flags(0, F));
    doorbell(l, 0);
    wait_stalled(l, 0, b);
    wr(l, 0, P2PLAB_REG_CTRL, 0);
    g_assert_cmphex(desc_status(l, 0, a), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    g_assert_cmphex(desc_status(l, 0, b), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 2);        /* counted, like in flight */
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_ERROR), ==, 0x101);
    /* CTRL.RESET: ABORTED written, MMU registers back to reset values, TLB empty */
    mlab_rearm(m, 16);
    pt_map(m->pt, m->root[1], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    run1(l, 0, VA0, 0, 64, va_flags(1, F));
    c = post(l, 0, VA0, 0, 64, va_flags(2, F));
    doorbell(l, 0);
    wait_stalled(l, 0, c);
    invalidate(l, 0, 0, 0, 0, 0);
    wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
    g_assert_cmphex(desc_status(l, 0, c), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    for (uint32_t r = P2PLAB_REG_MMU_STALLED; r <= P2PLAB_REG_INV_DONE; r += 4) {
        g_assert_cmphex(rd(l, 0, r), ==, 0);
    }
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CTX_ROOT_LO(1)), ==, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_TLB_SIZE), ==, 64);
    mlab_rearm(m, 16);
    {
        uint64_t misses = qom_get_int(l, "p0", "stat-mmu-tlb-misses");
        g_assert_cmphex(run1(l, 0, VA0, 0, 64, va_flags(1, F)), ==, P2PLAB_DESC_DONE);
        g_assert_cmpuint(qom_get_int(l, "p0", "stat-mmu-tlb-misses"), ==, misses + 1);
    }
    /* system reset: no write-back */
    c = post(l, 0, VA0, 0, 64, va_flags(2, F));
    doorbell(l, 0);
    wait_stalled(l, 0, c);
    qobject_unref(qtest_qmp(l->qts, "{'execute':'system_reset'}"));
    qtest_qmp_eventwait(l->qts, "RESET");
    g_assert_cmphex(desc_status(l, 0, c), ==, P2PLAB_DESC_STALLED);
    lab_enumerate(l);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_FAULT_CTRL), ==, 0);
    mlab_stop(m);
}

/* migrate with a recorded fault, a held fault and a waiting descriptor; finish on the target */
static void test_mmu_migration(void)
{
    MmuLab *m = mlab_start();
    Lab *a = m->l, *b;
    g_autofree char *file = g_strdup_printf("%s/p2plab-mmu-mig-%d", g_get_tmp_dir(), getpid());
    g_autofree char *inc = g_strdup_printf("-incoming file:%s", file);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree uint8_t *data = NULL;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;
    uint32_t i0, i1, i2, i3;

    fill_random(a, BUF_A, 64 * KiB, 31, &data);
    pt_map(m->pt, m->root[0], VA0, BUF_A, 32 * KiB, 4096, P2PLAB_PTE_R);
    i0 = post(a, 0, VA0, 0, 64 * KiB, va_flags(0, F));      /* faults half-way */
    i1 = post(a, 0, VA0, MiB, 4096, va_flags(0, F));        /* waits behind it */
    doorbell(a, 0);
    wait_stalled(a, 0, i1);
    /* ctx 2: faulted, replayed, and in flight (throttled) at migration time */
    i3 = post(a, 0, VA0, 4 * MiB, 256 * KiB, va_flags(2, F));
    doorbell(a, 0);
    wait_stalled(a, 0, i3);
    qom_set_bool(a, "p0", "mmu-hold-faults", true);
    i2 = post(a, 0, VA0, 2 * MiB, 4096, va_flags(1, F));    /* held fault, ctx 1 */
    doorbell(a, 0);
    wait_stalled(a, 0, i2);
    g_assert_cmpuint(rd(a, 0, P2PLAB_REG_FAULT_TAIL), ==, 2);
    pt_map(m->pt, m->root[2], VA0, BUF_A, 256 * KiB, 4096, P2PLAB_PTE_R);
    qom_set_int(a, "p0", "bandwidth-mbps", 1);
    resp(a, 0, 2, i3, false, false);
    settle(a, 0);
    g_assert_cmphex(desc_status(a, 0, i3), ==, P2PLAB_DESC_STALLED);   /* running, throttled */
    g_assert_cmpuint(qom_get_int(a, "p0", "stat-mmu-replays"), ==, 1);

    lab_migrate_wait(a, uri);
    lab_stop(a);
    m->l = b = lab_start_full("", "", 16 * MiB, 512, inc, false);
    m->pt->l = b;
    lab_wait_running(b);
    unlink(file);
    b->ring_size[0] = 64;
    b->tail[0] = i2 + 1;
    /* i3 finishes at once on the destination (bandwidth-mbps stays behind) */
    g_assert_cmphex(wait_desc(b, 0, i3), ==, P2PLAB_DESC_DONE);
    {
        g_autofree uint8_t *src = g_malloc(256 * KiB);
        qtest_bufread(b->qts, BUF_A, src, 256 * KiB);
        assert_mem_eq(b, b->bar2[0] + 4 * MiB, src, 256 * KiB);
    }
    g_assert_cmpuint(rd(b, 0, P2PLAB_REG_MMU_PARKED), ==, 3);
    g_assert_cmphex(rd(b, 0, P2PLAB_REG_MMU_STALLED), ==, 3);
    g_assert_cmpuint(qom_get_int(b, "p0", "stat-mmu-faults-read"), ==, 3);  /* counters */
    g_assert(!qom_get_bool(b, "p0", "mmu-hold-faults"));    /* knobs stay behind */
    /* the held fault is recorded on the destination (hold is off there) */
    settle(b, 0);
    g_assert_cmpuint(fault_at(b, 0, 0).idx, ==, i0);
    g_assert_cmpuint(rd(b, 0, P2PLAB_REG_FAULT_TAIL), ==, 3);
    g_assert_cmpuint(fault_at(b, 0, 1).idx, ==, i3);
    g_assert_cmpuint(fault_at(b, 0, 2).idx, ==, i2);
    pt_map(m->pt, m->root[0], VA0 + 32 * KiB, BUF_A + 32 * KiB, 32 * KiB, 4096, P2PLAB_PTE_R);
    pt_map(m->pt, m->root[1], VA0, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    resp(b, 0, 0, i0, false, false);
    resp(b, 0, 1, i2, false, false);
    g_assert_cmphex(wait_desc(b, 0, i0), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(b, 0, i1), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(b, 0, i2), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(b, b->bar2[0], data, 64 * KiB);
    assert_mem_eq(b, b->bar2[0] + MiB, data, 4096);
    assert_mem_eq(b, b->bar2[0] + 2 * MiB, data, 4096);
    mlab_stop(m);
}

/* with VT-d on: tables, targets, fault records and atomics all go through the IOMMU */
static void test_mmu_iommu(void)
{
    MmuLab *m;
    Lab *l;
    g_autofree uint8_t *data = NULL;
    const uint32_t F = va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL);
    uint32_t idx;
    uint64_t peer;

    pre_args = "-device intel-iommu,intremap=off";
    m = mlab_start_args("", 64, 2);
    pre_args = "";
    l = m->l;
    vtd_enable(l);
    fill_random(l, BUF_A, 64 * KiB, 41, &data);
    pt_map(m->pt, m->root[0], VA0, BUF_A, 64 * KiB, 4096, RWA);
    /* IOVA-mapped tables and target */
    g_assert_cmphex(run1(l, 0, VA0, 0, 64 * KiB, F), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0], data, 64 * KiB);
    /* a leaf on an IOVA the IOMMU does not map: a DMA error, not an MMU fault */
    pt_map(m->pt, m->root[0], VA0 + MiB, BUF_B, 4096, 4096, RWA);
    g_assert_cmphex(run1(l, 0, VA0 + MiB, 0, 64, F), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_SRC_DMA);
    g_assert_cmphex(atomic_run_st(l, ARGS, VA0 + MiB + 8, 8, P2PLAB_OP_FETCH_ADD, 0, 1, 0), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_ATOMIC_TARGET);
    qtest_writeq(l->qts, BUF_A + 0x8000, 100);
    g_assert_cmphex(atomic_run(l, ARGS, VA0 + 0x8000, 8, P2PLAB_OP_FETCH_ADD, 0, 5, 0), ==, 100);
    g_assert_cmphex(qtest_readq(l->qts, BUF_A + 0x8000), ==, 105);
    /* a root on an unmapped IOVA */
    ctx_set(l, 0, 1, BUF_B);
    g_assert_cmphex(run1(l, 0, VA0, 0, 64, va_flags(1, P2PLAB_DESC_F_SRC_VA |
                                                   P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_MMU_PT_READ);
    /* a fault: the record and the MSI-X message go through the IOMMU too; replay */
    idx = post(l, 0, VA0 + 2 * MiB, MiB, 4096, F);
    doorbell(l, 0);
    expect_fault(l, idx, VA0 + 2 * MiB, 0, P2PLAB_FAULT_ACC_READ,
                 P2PLAB_FAULT_R_NOT_PRESENT | P2PLAB_FAULT_R_LEVEL(2));
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_FAULT), ==, VEC_FAULT_DATA);
    pt_map(m->pt, m->root[0], VA0 + 2 * MiB, BUF_A, 4096, 4096, P2PLAB_PTE_R);
    resp(l, 0, 0, idx, false, false);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0] + MiB, data, 4096);
    /* a leaf on the peer's BAR2: switch-routed, no IOMMU mapping needed (as §8) */
    pt_map(m->pt, m->root[0], VA0 + 4 * MiB, l->bar2[1], 64 * KiB, 4096, P2PLAB_PTE_W);
    peer = qom_get_int(l, "p0", "stat-bytes-peer-switch");
    g_assert_cmphex(run1(l, 0, 0, VA0 + 4 * MiB, 64 * KiB,
                         va_flags(0, P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_VA)), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[1], data, 64 * KiB);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, peer + 64 * KiB);
    mlab_stop(m);
}

/* hot-unplug with stalled (parked) descriptors and a delayed invalidation pending */
static void test_mmu_unplug(void)
{
    /* PCIe native hotplug on the switch ports (as /p2plab/unplug/ *) */
    MmuLab *m = mlab_start_full("", "-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off",
                                64, 4);
    Lab *l = m->l;
    const uint32_t F = P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL;
    uint32_t idx = 0;

    for (int c = 0; c < 3; c++) {
        idx = post(l, 0, VA0, c * 4096, 4096, va_flags(c, F));
    }
    doorbell(l, 0);
    wait_stalled(l, 0, idx);
    qom_set_int(l, "p0", "mmu-inv-delay-us", 100000);
    invalidate(l, 0, 0, 0, 0, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_MMU_PARKED), ==, 3);
    hot_unplug(l, "p0", 2, 0);
    qtest_clock_step(l->qts, 200 * 1000 * 1000);    /* the invalidation timer is gone */
    /* p1 is unaffected */
    ring_setup(l, 1, 16);
    g_assert_cmphex(run1(l, 1, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    pt_free(m->pt);
    lab_stop(l);
    g_free(m);
}

/* seeded random MMU traffic: VA descriptors, table corruption, responses, knobs; must survive */
static void test_mmu_stress(void)
{
    MmuLab *m = mlab_start_args("", 8, 4);
    Lab *l = m->l;
    GRand *r = g_rand_new_with_seed(0x3a3a2026);
    gint64 end = g_get_monotonic_time() + 15 * 1000 * 1000;
    int ops;

    for (int c = 0; c < 4; c++) {
        pt_map(m->pt, m->root[c], VA0, BUF_A, 64 * KiB, 4096, c & 1 ? RWA : RW | LOC);
        pt_map(m->pt, m->root[c], VA0 + 2 * MiB, BUF_B, 4 * MiB, 2 * MiB, RWA);
    }
    for (ops = 0; ops < 3000 && g_get_monotonic_time() < end; ops++) {
        int what = g_rand_int_range(r, 0, 100);
        int ctx = g_rand_int_range(r, 0, 5);

        if (what < 45) {
            static const uint32_t kinds[] = {
                P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL,
                P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_VA,
                P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_VA,
                P2PLAB_DESC_F_SRC_VA,
                P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_FETCH_ADD),
                P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_CMPXCHG),
                P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_OP(P2PLAB_OP_PREFETCH),
            };
            uint32_t k = kinds[g_rand_int_range(r, 0, G_N_ELEMENTS(kinds))];
            uint64_t va = VA0 + g_rand_int_range(r, 0, 8 * MiB) +
                          (g_rand_int_range(r, 0, 10) == 0 ? (uint64_t)g_rand_int(r) << 16 : 0);
            uint32_t len = g_rand_int_range(r, 0, 4) == 0 ? 8 : g_rand_int_range(r, 1, 300000);
            uint64_t src = (k & P2PLAB_DESC_F_OP_MASK) ? ARGS + 32 * g_rand_int_range(r, 0, 4)
                           : (k & P2PLAB_DESC_F_SRC_LOCAL) ? g_rand_int_range(r, 0, 8 * MiB) : va;
            uint64_t dst = (k & P2PLAB_DESC_F_DST_VA) ? va + g_rand_int_range(r, 0, 3) * 8 :
                           (k & P2PLAB_DESC_F_DST_LOCAL) ? g_rand_int_range(r, 0, 8 * MiB) : BUF_B;
            if (g_rand_int_range(r, 0, 15) == 0) {
                k ^= 1u << g_rand_int_range(r, 0, 16);
            }
            post(l, 0, src, dst, len, va_flags(ctx, k));
            if (g_rand_boolean(r)) {
                doorbell(l, 0);
            }
        } else if (what < 60) {
            resp(l, 0, ctx, g_rand_int_range(r, 0, 64), g_rand_int_range(r, 0, 3) == 0,
                 g_rand_boolean(r));
        } else if (what < 65) {
            uint32_t h = rd(l, 0, P2PLAB_REG_FAULT_TAIL);
            wr(l, 0, P2PLAB_REG_FAULT_HEAD, g_rand_int_range(r, 0, 4) ? h : g_rand_int(r));
        } else if (what < 72) {
            invalidate(l, 0, ctx, VA0 + g_rand_int_range(r, 0, 8 * MiB),
                       g_rand_int_range(r, 0, 3) * 4096 * g_rand_int_range(r, 1, 600),
                       g_rand_boolean(r) ? P2PLAB_INV_CMD_ALL : 0);
        } else if (what < 80) {
            /* corrupt or repair a table entry */
            uint64_t va = VA0 + g_rand_int_range(r, 0, 64 * KiB);
            uint64_t slot = pt_slot(m->pt, m->root[ctx & 3], va, 1);
            uint64_t v = g_rand_boolean(r) ? (uint64_t)g_rand_int(r) << 32 | g_rand_int(r)
                                           : (BUF_A | P2PLAB_PTE_V | RWA);
            pt_set(m->pt, slot, v);
        } else if (what < 85) {
            static const char *knobs[] = { "mmu-spurious-fault", "mmu-inv-delay-us" };
            qom_set_int(l, "p0", knobs[g_rand_int_range(r, 0, 2)], g_rand_int_range(r, 0, 5));
        } else if (what < 89) {
            static const char *knobs[] = { "mmu-hold-faults", "mmu-ignore-inv",
                                           "mmu-drop-replay" };
            qom_set_bool(l, "p0", knobs[g_rand_int_range(r, 0, 3)], g_rand_boolean(r));
        } else if (what < 92) {
            static const uint32_t regs[] = { P2PLAB_REG_FAULT_CTRL, P2PLAB_REG_FAULT_SIZE,
                P2PLAB_REG_FAULT_STATUS, P2PLAB_REG_CTX_ROOT_LO(1), P2PLAB_REG_CTX_ROOT_HI(2),
                P2PLAB_REG_INV_CMD, P2PLAB_REG_CTRL };
            uint32_t reg = regs[g_rand_int_range(r, 0, G_N_ELEMENTS(regs))];
            wr(l, 0, reg, g_rand_int_range(r, 0, 4) ? g_rand_int_range(r, 0, 8) : g_rand_int(r));
        } else if (what < 94) {
            ring_setup(l, 0, 64);
            fault_ring_setup(l, 0, 8);
            for (int c = 0; c < 4; c++) {
                ctx_set(l, 0, c, m->root[c]);
            }
        } else {
            qtest_clock_step(l->qts, g_rand_int_range(r, 1, 5000000));
        }
    }
    g_test_message("mmu stress: %d operations", ops);
    g_rand_free(r);
    /* bring it back and check it still works */
    qom_set_bool(l, "p0", "mmu-hold-faults", false);
    qom_set_int(l, "p0", "mmu-spurious-fault", 0);
    qom_set_int(l, "p0", "mmu-inv-delay-us", 0);
    ring_setup(l, 0, 16);
    fault_ring_setup(l, 0, 8);
    ctx_set(l, 0, 0, m->root[0]);
    pt_map(m->pt, m->root[0], VA0, BUF_A, 4096, 4096, RW);
    invalidate(l, 0, 0, 0, 0, P2PLAB_INV_CMD_ALL);
    g_assert_cmphex(run1(l, 0, VA0, 0, 4096, va_flags(0, P2PLAB_DESC_F_SRC_VA |
                                                      P2PLAB_DESC_F_DST_LOCAL)), ==,
                    P2PLAB_DESC_DONE);
    mlab_stop(m);
}

/* P2PLAB_BENCH=1: 256 MiB VA copy with 4 KiB and 2 MiB leaves vs a physical copy, same run */
static void test_mmu_bench(void)
{
    const uint64_t len = 256 * MiB, src = 0x10000000;
    Lab *l = lab_start("", "", 256 * MiB, 1024);
    Pt *pt = pt_new(l, 0x30000000, 4 * MiB);
    uint64_t r4 = pt_alloc(pt), r2 = pt_alloc(pt);
    struct { const char *name; uint64_t s; uint32_t f; } runs[] = {
        { "phys ram->device", src, P2PLAB_DESC_F_DST_LOCAL },
        { "va-4k ram->device", VA0, va_flags(0, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL) },
        { "va-2m ram->device", VA0, va_flags(1, P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_LOCAL) },
    };

    pt_begin(pt);
    pt_map(pt, r4, VA0, src, len, 4 * KiB, P2PLAB_PTE_R);
    pt_map(pt, r2, VA0, src, len, 2 * MiB, P2PLAB_PTE_R);
    pt_flush(pt);
    qtest_memset(l->qts, src, 0xa5, len);
    ring_setup(l, 0, 16);               /* CTRL.RESET: the roots come after it */
    ctx_set(l, 0, 0, r4);
    ctx_set(l, 0, 1, r2);
    for (int pass = 0; pass < 3; pass++) {
        for (size_t i = 0; i < G_N_ELEMENTS(runs); i++) {
            uint64_t walks = qom_get_int(l, "p0", "stat-mmu-walks");
            gint64 t0 = g_get_monotonic_time(), us;
            uint32_t idx = post(l, 0, runs[i].s, 0, len, runs[i].f);

            doorbell(l, 0);
            while (!(desc_status(l, 0, idx) & P2PLAB_DESC_DONE)) {
                g_usleep(200);
            }
            us = g_get_monotonic_time() - t0;
            g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE);
            printf("# bench %-18s %" PRIu64 " MiB in %.3f s = %.0f MB/s (pass %d, %" PRIu64
                   " walks, tlb-entries 64)\n", runs[i].name, len / MiB, us / 1e6,
                   len / (double)us, pass, qom_get_int(l, "p0", "stat-mmu-walks") - walks);
        }
    }
    g_assert_cmphex(qtest_readl(l->qts, l->bar2[0] + len - 4), ==, 0xa5a5a5a5);
    pt_free(pt);
    lab_stop(l);
}

void p2plab_mmu_add_tests(void)
{
    qtest_add_func("/p2plab/mmu/identity", test_mmu_identity);
    qtest_add_func("/p2plab/mmu/walk-4k", test_mmu_walk_4k);
    qtest_add_func("/p2plab/mmu/walk-2m", test_mmu_walk_2m);
    qtest_add_func("/p2plab/mmu/permissions", test_mmu_permissions);
    qtest_add_func("/p2plab/mmu/fault-record", test_mmu_fault_record);
    qtest_add_func("/p2plab/mmu/replay", test_mmu_replay);
    qtest_add_func("/p2plab/mmu/ring-wrap", test_mmu_ring_wrap);
    qtest_add_func("/p2plab/mmu/cancel", test_mmu_cancel);
    qtest_add_func("/p2plab/mmu/invalidate", test_mmu_invalidate);
    qtest_add_func("/p2plab/mmu/overflow", test_mmu_overflow);
    qtest_add_func("/p2plab/mmu/bad-tables", test_mmu_bad_tables);
    qtest_add_func("/p2plab/mmu/atomics", test_mmu_atomics);
    qtest_add_func("/p2plab/mmu/knobs", test_mmu_knobs);
    qtest_add_func("/p2plab/mmu/reset", test_mmu_reset);
    qtest_add_func("/p2plab/mmu/migration", test_mmu_migration);
    qtest_add_func("/p2plab/mmu/iommu", test_mmu_iommu);
    qtest_add_func("/p2plab/mmu/unplug", test_mmu_unplug);
    qtest_add_func("/p2plab/mmu/stress", test_mmu_stress);
    if (getenv("P2PLAB_BENCH")) {
        qtest_add_func("/p2plab/mmu/bench", test_mmu_bench);
    }
}
