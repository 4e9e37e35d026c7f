/*
 * p2plab qtest lab: the machine (q35 + PCIe switch + two p2plab), enumeration, registers, QOM,
 * descriptor ring driver and unplug/migration helpers shared by p2plab-test.c and
 * p2plab-mmu-test.c (libqos style: one helper file, no copies).
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/pci_regs.h"
#include "p2plab-qtest.h"

const char *pre_args = "";    /* QEMU arguments placed before the topology */

const char *fw_args(void)
{
    const char *a = getenv("P2PLAB_QEMU_ARGS");
    return a ? a : "-L /usr/share/qemu -L /usr/share/seabios";
}

/* ---- config space through ECAM ------------------------------------------------------------- */

uint64_t ecam(int bus, int dev, int fn, int off)
{
    return ECAM + ((uint64_t)bus << 20) + (dev << 15) + (fn << 12) + off;
}
uint32_t cfg_rl(Lab *l, int b, int d, int o) { return qtest_readl(l->qts, ecam(b, d, 0, o)); }
uint16_t cfg_rw(Lab *l, int b, int d, int o) { return qtest_readw(l->qts, ecam(b, d, 0, o)); }
void cfg_wl(Lab *l, int b, int d, int o, uint32_t v) { qtest_writel(l->qts, ecam(b, d, 0, o), v); }
void cfg_ww(Lab *l, int b, int d, int o, uint16_t v) { qtest_writew(l->qts, ecam(b, d, 0, o), v); }
void cfg_wb(Lab *l, int b, int d, int o, uint8_t v) { qtest_writeb(l->qts, ecam(b, d, 0, o), v); }

int find_cap(Lab *l, int b, int d, int id)
{
    int pos = qtest_readb(l->qts, ecam(b, d, 0, PCI_CAPABILITY_LIST)) & ~3;

    while (pos) {
        if (qtest_readb(l->qts, ecam(b, d, 0, pos)) == id) {
            return pos;
        }
        pos = qtest_readb(l->qts, ecam(b, d, 0, pos + 1)) & ~3;
    }
    return 0;
}

int find_ext_cap(Lab *l, int b, int d, int id)
{
    int pos = 0x100;

    while (pos) {
        uint32_t h = cfg_rl(l, b, d, pos);
        if ((h & 0xffff) == id) {
            return pos;
        }
        pos = h >> 20;
    }
    return 0;
}

void bridge_setup(Lab *l, int b, int d, int sec, int sub, uint64_t mem, uint64_t mem_lim,
                         uint64_t pref, uint64_t pref_lim)
{
    cfg_wb(l, b, d, PCI_PRIMARY_BUS, b);
    cfg_wb(l, b, d, PCI_SECONDARY_BUS, sec);
    cfg_wb(l, b, d, PCI_SUBORDINATE_BUS, sub);
    cfg_wb(l, b, d, PCI_IO_BASE, 0xf0);
    cfg_wb(l, b, d, PCI_IO_LIMIT, 0x00);
    cfg_ww(l, b, d, PCI_MEMORY_BASE, (mem >> 16) & 0xfff0);
    cfg_ww(l, b, d, PCI_MEMORY_LIMIT, (mem_lim >> 16) & 0xfff0);
    cfg_ww(l, b, d, PCI_PREF_MEMORY_BASE, (pref >> 16) & 0xfff0);
    cfg_ww(l, b, d, PCI_PREF_MEMORY_LIMIT, (pref_lim >> 16) & 0xfff0);
    cfg_wl(l, b, d, PCI_PREF_BASE_UPPER32, pref >> 32);
    cfg_wl(l, b, d, PCI_PREF_LIMIT_UPPER32, pref_lim >> 32);
    cfg_ww(l, b, d, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
}

void msix_setup(Lab *l, int dev, bool enable)
{
    int b = 3 + dev;
    int cap = find_cap(l, b, 0, PCI_CAP_ID_MSIX);

    g_assert_cmpint(cap, !=, 0);
    for (int v = 0; v < P2PLAB_NUM_VECTORS; v++) {
        uint64_t e = l->bar0[dev] + P2PLAB_MSIX_TABLE_OFF + v * 16;
        qtest_writel(l->qts, e + 0, MSI_BASE + dev * 16 + v * 4);
        qtest_writel(l->qts, e + 4, 0);
        qtest_writel(l->qts, e + 8, 0x100 + v);
        qtest_writel(l->qts, e + 12, 0);    /* unmasked */
    }
    cfg_ww(l, b, 0, cap + PCI_MSIX_FLAGS, enable ? PCI_MSIX_FLAGS_ENABLE : 0);
}

uint32_t msi_seen(Lab *l, int dev, int vec)
{
    uint64_t a = MSI_BASE + dev * 16 + vec * 4;
    uint32_t v = qtest_readl(l->qts, a);
    qtest_writel(l->qts, a, 0);
    return v;
}


Lab *lab_start_full(const char *dp0_extra, const char *p_extra, uint64_t mem_size,
                          int ram_mb, const char *extra, bool enumerate)
{
    Lab *l = g_new0(Lab, 1);
    g_autofree char *ms = g_strdup_printf("%" PRIu64, mem_size);

    l->mem_size = mem_size;
    l->bar0[0] = BAR0_P0; l->bar0[1] = BAR0_P1;
    l->bar2[0] = BAR2_P0; l->bar2[1] = BAR2_P1;
    l->qts = qtest_initf("%s -machine q35 -m %d -nodefaults %s "
        "-device pcie-root-port,id=rp0,bus=pcie.0,addr=02.0,chassis=1 "
        "-device x3130-upstream,id=up0,bus=rp0 "
        "-device xio3130-downstream,id=dp0,bus=up0,addr=00.0,chassis=2,slot=0%s "
        "-device xio3130-downstream,id=dp1,bus=up0,addr=01.0,chassis=3,slot=0 "
        "-device p2plab,id=p0,bus=dp0,mem-size=%s%s "
        "-device p2plab,id=p1,bus=dp1,mem-size=%s%s %s",
        fw_args(), ram_mb, pre_args, dp0_extra, ms, p_extra, ms, p_extra, extra);
    if (enumerate) {
        lab_enumerate(l);
    }
    return l;
}

Lab *lab_start(const char *dp0_extra, const char *p_extra, uint64_t mem_size, int ram_mb)
{
    return lab_start_full(dp0_extra, p_extra, mem_size, ram_mb, "", true);
}

/* program ECAM, bus numbers, bridge windows, BARs and MSI-X (as firmware + driver would) */
void lab_enumerate(Lab *l)
{
    uint64_t mem_size = l->mem_size;

    /* q35 MCH: ECAM at 0xb0000000, 256 buses, enabled (legacy 0xcf8 cycle to 00:00.0 0x60) */
    qtest_outl(l->qts, 0xcf8, 0x80000000 | 0x60);
    qtest_outl(l->qts, 0xcfc, (uint32_t)ECAM | 1);
    qtest_outl(l->qts, 0xcf8, 0x80000000 | 0x64);
    qtest_outl(l->qts, 0xcfc, 0);

    /* root port and upstream port forward everything below: buses 2..5, 0xc0000000-0xc02fffff,
     * 0x10_0000_0000-0x3f_ffff_ffff (bus 5 / 0xc0200000 / 0x30_0000_0000 is for an optional
     * third downstream port, see test_p2p_nvme_cmb) */
    bridge_setup(l, 0, 2, 1, 5, BAR0_P0, BAR0_P1 + 0x1fffff, BAR2_P0, 0x3fffffffffULL);
    bridge_setup(l, 1, 0, 2, 5, BAR0_P0, BAR0_P1 + 0x1fffff, BAR2_P0, 0x3fffffffffULL);
    bridge_setup(l, 2, 0, 3, 3, BAR0_P0, BAR0_P0 + 0xfffff, BAR2_P0, BAR2_P0 + mem_size - 1);
    bridge_setup(l, 2, 1, 4, 4, BAR0_P1, BAR0_P1 + 0xfffff, BAR2_P1, BAR2_P1 + mem_size - 1);
    for (int i = 0; i < 2; i++) {
        cfg_wl(l, 3 + i, 0, PCI_BASE_ADDRESS_0, l->bar0[i]);
        cfg_wl(l, 3 + i, 0, PCI_BASE_ADDRESS_2, (uint32_t)l->bar2[i]);
        cfg_wl(l, 3 + i, 0, PCI_BASE_ADDRESS_3, l->bar2[i] >> 32);
        cfg_ww(l, 3 + i, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
        msix_setup(l, i, true);
    }
    qtest_memset(l->qts, MSI_BASE, 0, 64);
}

Lab *lab_default(void)
{
    return lab_start("", "", 16 * MiB, 512);
}

void lab_stop(Lab *l)
{
    qtest_quit(l->qts);
    g_free(l);
}

/* ---- registers, QOM ----------------------------------------------------------------------------- */

uint32_t rd(Lab *l, int dev, uint32_t reg) { return qtest_readl(l->qts, l->bar0[dev] + reg); }
void wr(Lab *l, int dev, uint32_t reg, uint32_t v) { qtest_writel(l->qts, l->bar0[dev] + reg, v); }

int64_t qom_get_int(Lab *l, const char *dev, const char *prop)
{
    QDict *r = qtest_qmp(l->qts, "{'execute':'qom-get','arguments':{'path':%s,'property':%s}}",
                         dev, prop);
    int64_t v;

    g_assert(qdict_haskey(r, "return"));
    v = qdict_get_int(r, "return");
    qobject_unref(r);
    return v;
}

bool qom_get_bool(Lab *l, const char *dev, const char *prop)
{
    QDict *r = qtest_qmp(l->qts, "{'execute':'qom-get','arguments':{'path':%s,'property':%s}}",
                         dev, prop);
    bool v;

    g_assert(qdict_haskey(r, "return"));
    v = qdict_get_bool(r, "return");
    qobject_unref(r);
    return v;
}

void qom_set_int(Lab *l, const char *dev, const char *prop, int64_t v)
{
    QDict *r = qtest_qmp(l->qts, "{'execute':'qom-set','arguments':{'path':%s,'property':%s,"
                         "'value':%" PRId64 "}}", dev, prop, v);
    g_assert(qdict_haskey(r, "return"));
    qobject_unref(r);
}

void qom_set_bool(Lab *l, const char *dev, const char *prop, bool v)
{
    QDict *r = qtest_qmp(l->qts, "{'execute':'qom-set','arguments':{'path':%s,'property':%s,"
                         "'value':%i}}", dev, prop, v);
    g_assert(qdict_haskey(r, "return"));
    qobject_unref(r);
}

void assert_alive(Lab *l)
{
    QDict *r = qtest_qmp(l->qts, "{'execute':'query-status'}");
    g_assert(qdict_haskey(r, "return"));
    qobject_unref(r);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
}

/* ---- ring driver -------------------------------------------------------------------------------- */

uint64_t ring_base(int dev) { return RING_BASE + dev * 0x100000; }

void ring_program(Lab *l, int dev, uint32_t size)
{
    wr(l, dev, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
    wr(l, dev, P2PLAB_REG_RING_BASE_LO, (uint32_t)ring_base(dev));
    wr(l, dev, P2PLAB_REG_RING_BASE_HI, ring_base(dev) >> 32);
    wr(l, dev, P2PLAB_REG_RING_SIZE, size);
    wr(l, dev, P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);
    l->ring_size[dev] = size;
    l->tail[dev] = 0;
}

void ring_setup(Lab *l, int dev, uint32_t size)
{
    ring_program(l, dev, size);
    g_assert_cmphex(rd(l, dev, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
}

void desc_write(QTestState *qts, uint64_t a, uint64_t src, uint64_t dst, uint32_t len,
                uint32_t flags, uint32_t cookie)
{
    qtest_writeq(qts, a + DESC(src), src);
    qtest_writeq(qts, a + DESC(dst), dst);
    qtest_writel(qts, a + DESC(len), len);
    qtest_writel(qts, a + DESC(flags), flags);
    qtest_writel(qts, a + DESC(status), 0);
    qtest_writel(qts, a + DESC(cookie), cookie);
}

static uint64_t desc_addr(int dev, uint32_t idx)
{
    return ring_base(dev) + idx * P2PLAB_DESC_SIZE;
}

/* write a descriptor at the current tail (no doorbell); returns its index */
uint32_t post(Lab *l, int dev, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags)
{
    uint32_t idx = l->tail[dev];

    desc_write(l->qts, desc_addr(dev, idx), src, dst, len, flags, 0xc0de0000 | idx);
    l->tail[dev] = (idx + 1) % l->ring_size[dev];
    return idx;
}

void doorbell(Lab *l, int dev)
{
    wr(l, dev, P2PLAB_REG_RING_TAIL, l->tail[dev]);
}

uint32_t desc_status(Lab *l, int dev, uint32_t idx)
{
    return qtest_readl(l->qts, desc_addr(dev, idx) + DESC(status));
}

uint32_t wait_desc(Lab *l, int dev, uint32_t idx)
{
    gint64 end = g_get_monotonic_time() + POLL_US;
    uint32_t st;

    while (!((st = desc_status(l, dev, idx)) & P2PLAB_DESC_DONE)) {
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(100);
    }
    g_assert_cmphex(qtest_readl(l->qts, desc_addr(dev, idx) + DESC(cookie)), ==,
                    0xc0de0000 | idx);     /* cookie untouched */
    return st;
}

/* give the device a chance to run (no clock advance) */
void settle(Lab *l, int dev)
{
    for (int i = 0; i < 50; i++) {
        rd(l, dev, P2PLAB_REG_STATUS);
    }
}

uint32_t run1(Lab *l, int dev, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags)
{
    uint32_t idx = post(l, dev, src, dst, len, flags);
    doorbell(l, dev);
    return wait_desc(l, dev, idx);
}

void fill_random(Lab *l, uint64_t addr, size_t len, uint32_t seed, uint8_t **out)
{
    GRand *r = g_rand_new_with_seed(seed);
    uint8_t *buf = g_malloc(len);

    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = g_rand_int(r);
        memcpy(buf + i, &v, MIN(4, len - i));
    }
    g_rand_free(r);
    qtest_bufwrite(l->qts, addr, buf, len);
    *out = buf;
}

void assert_mem_eq(Lab *l, uint64_t addr, const uint8_t *expect, size_t len)
{
    g_autofree uint8_t *got = g_malloc(len);

    qtest_bufread(l->qts, addr, got, len);
    g_assert(memcmp(got, expect, len) == 0);
}


bool peripheral_has(QTestState *qts, const char *id)
{
    QDict *r = qtest_qmp(qts, "{'execute':'qom-list','arguments':{'path':'/machine/peripheral'}}");
    QList *list = qdict_get_qlist(r, "return");
    const QListEntry *e;
    bool found = false;

    g_assert(list);
    QLIST_FOREACH_ENTRY(list, e) {
        QDict *prop = qobject_to(QDict, qlist_entry_obj(e));
        if (!strcmp(qdict_get_str(prop, "name"), id)) {
            found = true;
        }
    }
    qobject_unref(r);
    return found;
}

/* device_del + pciehp-style power-off of the port's slot; asserts DEVICE_DELETED for @id */
void hot_unplug(Lab *l, const char *id, int port_bus, int port_dev)
{
    int exp = find_cap(l, port_bus, port_dev, PCI_CAP_ID_EXP);
    gint64 end = g_get_monotonic_time() + POLL_US;
    QDict *ev = NULL;
    uint16_t ctl;

    g_assert_cmpint(exp, !=, 0);
    g_assert(cfg_rl(l, port_bus, port_dev, exp + PCI_EXP_SLTCAP) & PCI_EXP_SLTCAP_HPC);
    g_assert(cfg_rw(l, port_bus, port_dev, exp + PCI_EXP_SLTSTA) & PCI_EXP_SLTSTA_PDS);
    qtest_qmp_device_del_send(l->qts, id);
    ctl = cfg_rw(l, port_bus, port_dev, exp + PCI_EXP_SLTCTL);
    ctl = (ctl & ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC)) | PCI_EXP_SLTCTL_PWR_IND_OFF |
          PCI_EXP_SLTCTL_PWR_OFF;
    cfg_ww(l, port_bus, port_dev, exp + PCI_EXP_SLTCTL, ctl);
    g_assert(!(cfg_rw(l, port_bus, port_dev, exp + PCI_EXP_SLTSTA) & PCI_EXP_SLTSTA_PDS));
    g_assert(!peripheral_has(l->qts, id));
    /* finalization may wait for RCU callbacks: poll (QMP traffic lets events in) */
    while (!ev && g_get_monotonic_time() < end) {
        QDict *r = qtest_qmp(l->qts, "{'execute':'query-status'}");
        qobject_unref(r);
        ev = qtest_qmp_event_ref(l->qts, "DEVICE_DELETED");
        if (ev && strcmp(qdict_get_try_str(qdict_get_qdict(ev, "data"), "device") ?: "", id)) {
            qobject_unref(ev);      /* another device's (e.g. a port's) */
            ev = NULL;
        }
        if (!ev) {
            g_usleep(1000);
        }
    }
    if (!ev) {
        g_test_message("no DEVICE_DELETED for %s: the device was not finalized", id);
    }
    g_assert(ev);
    qobject_unref(ev);
    /* the slot is empty: the port reads all-ones below it */
    g_assert_cmphex(cfg_rl(l, qtest_readb(l->qts, ecam(port_bus, port_dev, 0, PCI_SECONDARY_BUS)),
                           0, PCI_VENDOR_ID), ==, 0xffffffff);
}

char *qmp_status_of(QTestState *qts, const char *cmd)
{
    QDict *r = qtest_qmp(qts, "{'execute':%s}", cmd);
    QDict *ret = qdict_get_qdict(r, "return");
    char *st = g_strdup(ret && qdict_haskey(ret, "status") ? qdict_get_str(ret, "status") : "");
    qobject_unref(r);
    return st;
}

void lab_migrate_wait(Lab *l, const char *uri)
{
    gint64 end = g_get_monotonic_time() + POLL_US;

    qobject_unref(qtest_qmp(l->qts, "{'execute':'migrate','arguments':{'uri':%s}}", uri));
    for (;;) {
        g_autofree char *st = qmp_status_of(l->qts, "query-migrate");

        if (!strcmp(st, "completed")) {
            return;
        }
        g_assert(strcmp(st, "failed"));
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(1000);
    }
}

void lab_wait_running(Lab *l)
{
    gint64 end = g_get_monotonic_time() + POLL_US;

    for (;;) {
        g_autofree char *st = qmp_status_of(l->qts, "query-status");

        if (!strcmp(st, "running")) {
            return;
        }
        g_assert_cmpint(g_get_monotonic_time(), <, end);
        g_usleep(1000);
    }
}

/*
 * Turn on the q35 intel-iommu (-device intel-iommu,intremap=off) for bus 3 (p0): identity 2 MiB
 * mappings of the first 512 MiB except BUF_B .. BUF_B + 4 MiB (unmapped IOVAs).
 */
void vtd_enable(Lab *l)
{
    uint64_t root = VTD_TABLES, ctx = root + 0x1000, pml4 = root + 0x2000,
             pdpt = root + 0x3000, pd = root + 0x4000;

    qtest_memset(l->qts, root, 0, 0x5000);
    qtest_writeq(l->qts, root + 3 * 16, ctx | 1);                 /* bus 3 */
    qtest_writeq(l->qts, ctx + 0 * 16, pml4 | 1);                 /* devfn 0: P, TT=0 */
    qtest_writeq(l->qts, ctx + 0 * 16 + 8, 2 | (1 << 8));         /* AW=48-bit, DID 1 */
    qtest_writeq(l->qts, pml4, pdpt | 3);
    qtest_writeq(l->qts, pdpt, pd | 3);
    for (uint64_t i = 0; i < 256; i++) {
        uint64_t a = i << 21;
        if (a >= BUF_B && a < BUF_B + 4 * MiB) {
            continue;
        }
        qtest_writeq(l->qts, pd + i * 8, a | (1 << 7) | 3);       /* 2 MiB page, R, W */
    }
    qtest_writeq(l->qts, VTD_BASE + 0x20, root);                  /* RTADDR */
    qtest_writel(l->qts, VTD_BASE + 0x18, 1u << 30);              /* GCMD.SRTP */
    g_assert(qtest_readl(l->qts, VTD_BASE + 0x1c) & (1u << 30));  /* GSTS.RTPS */
    qtest_writel(l->qts, VTD_BASE + 0x18, 1u << 31);              /* GCMD.TE */
    g_assert(qtest_readl(l->qts, VTD_BASE + 0x1c) & (1u << 31));  /* GSTS.TES */
}
