/*
 * qtest for the p2plab PCIe DMA-engine device (hw/misc/p2plab.c).
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Every test boots q35 with a PCIe switch and two p2plab endpoints:
 *   pcie.0 -- 00:02.0 pcie-root-port rp0 -- 01:00.0 x3130-upstream up0
 *                 +-- 02:00.0 xio3130-downstream dp0 -- 03:00.0 p2plab p0
 *                 +-- 02:01.0 xio3130-downstream dp1 -- 04:00.0 p2plab p1
 * No firmware runs under qtest, so the test enumerates by hand through ECAM (q35 PCIEXBAR) and
 * acts as the guest driver: descriptor ring and buffers in guest RAM, MSI-X messages aimed at
 * guest RAM so that their delivery can be checked.
 *
 * Environment: P2PLAB_QEMU_ARGS (default "-L /usr/share/qemu -L /usr/share/seabios") is added
 * to every QEMU command line; P2PLAB_BENCH=1 adds /p2plab/bench (256 MiB copies next to a host
 * memcpy, P2PLAB_BENCH_ROUNDS interleaved rounds, median MB/s and ratios).
 */

#include "qemu/osdep.h"
#include "libqtest.h"
#include "qemu/units.h"
#include "qobject/qdict.h"
#include "qobject/qlist.h"
#include "standard-headers/linux/pci_regs.h"
#include "p2plab_hw.h"
#include "p2plab-qtest.h"

/* ---- tests -------------------------------------------------------------------------------------- */

static void test_identity(void)
{
    Lab *l = lab_default();
    uint32_t id = cfg_rl(l, 3, 0, PCI_VENDOR_ID);
    int exp = find_cap(l, 3, 0, PCI_CAP_ID_EXP);

    g_assert_cmphex(id, ==, P2PLAB_VENDOR_ID | (P2PLAB_DEVICE_ID << 16));
    g_assert_cmphex(cfg_rl(l, 3, 0, PCI_CLASS_REVISION), ==,
                    (P2PLAB_CLASS << 16) | P2PLAB_REVISION);
    g_assert_cmpint(exp, !=, 0);
    g_assert_cmphex((qtest_readb(l->qts, ecam(3, 0, 0, exp + PCI_EXP_FLAGS)) >> 4) & 0xf, ==,
                    PCI_EXP_TYPE_ENDPOINT);
    g_assert_cmpint(qtest_readb(l->qts, ecam(3, 0, 0, PCI_INTERRUPT_PIN)), ==, 1);
    /* MSI-X: 2 vectors, table in BAR0 at 0x2000, PBA at 0x3000 */
    {
        int cap = find_cap(l, 3, 0, PCI_CAP_ID_MSIX);
        g_assert_cmpint((cfg_rw(l, 3, 0, cap + PCI_MSIX_FLAGS) & PCI_MSIX_FLAGS_QSIZE) + 1, ==,
                        P2PLAB_NUM_VECTORS);
        g_assert_cmphex(cfg_rl(l, 3, 0, cap + PCI_MSIX_TABLE), ==, P2PLAB_MSIX_TABLE_OFF | 0);
        g_assert_cmphex(cfg_rl(l, 3, 0, cap + PCI_MSIX_PBA), ==, P2PLAB_MSIX_PBA_OFF | 0);
    }
    /* BAR2 is 64-bit prefetchable */
    g_assert_cmphex(cfg_rl(l, 3, 0, PCI_BASE_ADDRESS_2) & 0xf, ==,
                    PCI_BASE_ADDRESS_MEM_TYPE_64 | PCI_BASE_ADDRESS_MEM_PREFETCH);

    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_VERSION), ==, P2PLAB_IF_VERSION);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CAPS), ==,
                    P2PLAB_CAP_P2P_ROUTING | P2PLAB_CAP_FAULT_INJ | P2PLAB_CAP_MMU);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_MEM_SIZE_LO), ==, 16 * MiB);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_MEM_SIZE_HI), ==, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_MAX), ==, 4096);
    g_assert_cmpuint(qom_get_int(l, "p0", "mem-size"), ==, 16 * MiB);
    for (uint32_t r = P2PLAB_REG_CTRL; r < P2PLAB_NUM_REGS * 4; r += 4) {
        if (r != P2PLAB_REG_RING_MAX) {
            g_assert_cmphex(rd(l, 0, r), ==, 0);
        }
    }
    /* SCRATCH is RW; RO registers ignore writes; bad accesses are harmless */
    wr(l, 0, P2PLAB_REG_SCRATCH, 0xdeadbeef);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_SCRATCH), ==, 0xdeadbeef);
    wr(l, 0, P2PLAB_REG_ID, 0);
    wr(l, 0, P2PLAB_REG_RING_HEAD, 5);
    wr(l, 0, P2PLAB_REG_COMPLETED, 5);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 0);
    g_assert_cmphex(qtest_readw(l->qts, l->bar0[0] + P2PLAB_REG_ID), ==, 0xffff);
    g_assert_cmphex(qtest_readl(l->qts, l->bar0[0] + P2PLAB_REG_ID + 1), ==, 0xffffffff);
    g_assert_cmphex(qtest_readq(l->qts, l->bar0[0]), ==, ~0ULL);
    qtest_writeb(l->qts, l->bar0[0] + P2PLAB_REG_SCRATCH, 0x11);
    qtest_writeq(l->qts, l->bar0[0] + P2PLAB_REG_ERR_INDEX, 0x11ULL << 32); /* 8-byte */
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_SCRATCH), ==, 0xdeadbeef);
    g_assert_cmphex(rd(l, 0, 0x1000), ==, 0);
    wr(l, 0, 0x1000, 1);
    wr(l, 0, P2PLAB_REG_CTRL, 0xfffffff0);     /* reserved bits only */
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CTRL), ==, 0);
    /* device memory is plain memory through BAR2 */
    qtest_writel(l->qts, l->bar2[0] + 0x100, 0x12345678);
    g_assert_cmphex(qtest_readl(l->qts, l->bar2[0] + 0x100), ==, 0x12345678);
    assert_alive(l);
    lab_stop(l);
}

/* bad configurations are refused with a clear error */
static void expect_start_failure(const char *args, const char *msg)
{
    const char *bin = getenv("QTEST_QEMU_BINARY");
    g_autofree char *cmd = g_strdup_printf("%s %s -machine q35 -nodefaults -display none -S "
                                           "-accel qtest -qtest null %s", bin, fw_args(), args);
    g_autofree char *out = NULL, *err = NULL;
    int status;

    g_assert(g_spawn_command_line_sync(cmd, &out, &err, &status, NULL));
    g_assert(!(WIFEXITED(status) && WEXITSTATUS(status) == 0));
    if (!strstr(err, msg)) {
        g_test_message("stderr: %s", err);
    }
    g_assert(strstr(err, msg));
}

static void test_bad_config(void)
{
    expect_start_failure("-device p2plab,mem-size=3M", "must be a power of two");
    expect_start_failure("-device p2plab,mem-size=512K", "must be a power of two");
    expect_start_failure("-device p2plab,mem-size=128G", "must be a power of two");
    expect_start_failure("-object memory-backend-ram,id=m,size=3M -device p2plab,memdev=m",
                         "memdev size");
    expect_start_failure("-object memory-backend-ram,id=m,size=4M "
                         "-device p2plab,memdev=m,mem-size=8M", "differs from the size");
    expect_start_failure("-object memory-backend-ram,id=m,size=4M "
                         "-device p2plab,memdev=m -device p2plab,memdev=m", "already in use");
}

static void test_memdev(void)
{
    {
        QTestState *qts = qtest_initf("%s -machine q35 -m 256 -nodefaults "
                                      "-object memory-backend-ram,id=m0,size=8M "
                                      "-device p2plab,id=p9,memdev=m0,addr=04.0", fw_args());
        uint32_t bar;
        qtest_outl(qts, 0xcf8, 0x80000000 | 0x60);
        qtest_outl(qts, 0xcfc, (uint32_t)ECAM | 1);
        qtest_writel(qts, ECAM + (4 << 15) + PCI_BASE_ADDRESS_0, BAR0_P0);
        qtest_writew(qts, ECAM + (4 << 15) + PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
        bar = qtest_readl(qts, BAR0_P0 + P2PLAB_REG_CAPS);
        g_assert_cmphex(bar & P2PLAB_CAP_MEMDEV, ==, P2PLAB_CAP_MEMDEV);
        g_assert_cmphex(qtest_readl(qts, BAR0_P0 + P2PLAB_REG_MEM_SIZE_LO), ==, 8 * MiB);
        qtest_quit(qts);
    }
}

static void test_roundtrip(void)
{
    Lab *l = lab_default();
    const size_t len = 4 * MiB + 4096 + 3;      /* several chunks and an odd tail */
    g_autofree uint8_t *data = NULL;
    uint32_t a, b;

    fill_random(l, BUF_A, len, 1, &data);
    qtest_memset(l->qts, BUF_B, 0, len);
    ring_setup(l, 0, 16);
    a = post(l, 0, BUF_A, 0x10000, len, P2PLAB_DESC_F_DST_LOCAL);
    b = post(l, 0, 0x10000, BUF_B, len, P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_IRQ);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, a), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(l, 0, b), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, len);
    assert_mem_eq(l, l->bar2[0] + 0x10000, data, 65536);     /* visible through BAR2 */
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 2);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 2);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, P2PLAB_INT_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0x100);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_ERROR), ==, 0);
    wr(l, 0, P2PLAB_REG_INT_STATUS, P2PLAB_INT_DONE);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-descriptors"), ==, 2);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, 2 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer"), ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-local"), ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 1);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-errors"), ==, 0);

    /* local -> local, overlapping both ways: memmove semantics across chunks */
    {
        const size_t n = 3 * MiB;
        g_autofree uint8_t *exp = g_malloc(n + MiB);

        memcpy(exp, data, n + MiB);
        g_assert_cmphex(run1(l, 0, 0x10000, 0x10000 + MiB, n,
                             P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_LOCAL), ==,
                        P2PLAB_DESC_DONE);
        memmove(exp + MiB, exp, n);
        assert_mem_eq(l, l->bar2[0] + 0x10000, exp, n + MiB);
        g_assert_cmphex(run1(l, 0, 0x10000 + MiB, 0x10000 + 4096, n,
                             P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_LOCAL), ==,
                        P2PLAB_DESC_DONE);
        memmove(exp + 4096, exp + MiB, n);
        assert_mem_eq(l, l->bar2[0] + 0x10000, exp, n + MiB);
        g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-local"), ==, 2 * n);
    }
    /* RAM -> RAM through the device (bus to bus) */
    g_assert_cmphex(run1(l, 0, BUF_A, BUF_B + 1, 100000, 0), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B + 1, data, 100000);
    assert_alive(l);
    lab_stop(l);
}

static void p2p_transfer(Lab *l, size_t len, uint8_t **data)
{
    fill_random(l, BUF_A, len, 2, data);
    ring_setup(l, 0, 16);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, len, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    /* p0 device memory -> p1 BAR2 (a peer under the same switch) */
    g_assert_cmphex(run1(l, 0, 0, l->bar2[1] + 0x100000, len, P2PLAB_DESC_F_SRC_LOCAL), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[1] + 0x100000, *data, len);
    /* and back: p1 BAR2 -> p0 device memory */
    g_assert_cmphex(run1(l, 0, l->bar2[1] + 0x100000, 2 * MiB, len, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[0] + 2 * MiB, *data, len);
}

static void test_p2p_switch(void)
{
    Lab *l = lab_default();
    const size_t len = 1 * MiB + 512;
    g_autofree uint8_t *data = NULL;

    p2p_transfer(l, len, &data);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer"), ==, 2 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len);
    /* the peer itself did nothing */
    g_assert_cmpuint(qom_get_int(l, "p1", "stat-descriptors"), ==, 0);
    /* peer registers (MMIO, BAR0 of p1) are reachable the same way */
    wr(l, 1, P2PLAB_REG_SCRATCH, 0x5a5a1234);
    g_assert_cmphex(run1(l, 0, l->bar0[1] + P2PLAB_REG_SCRATCH, BUF_B, 4, 0), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readl(l->qts, BUF_B), ==, 0x5a5a1234);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len + 4);
    /* memory decoding off on the peer's port: the window is not routed, goes upstream */
    cfg_ww(l, 2, 1, PCI_COMMAND, 0);
    g_assert_cmphex(run1(l, 0, 0, l->bar2[1], 4096, P2PLAB_DESC_F_SRC_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_DST_DMA);
    assert_alive(l);
    lab_stop(l);
}

/* P2P with an NVMe controller memory buffer (an MMIO region, not RAM) behind a third switch port */
static void test_p2p_nvme_cmb(void)
{
    const uint64_t cmb = 0x3000000000ULL;
    Lab *l = lab_start_full("", "", 16 * MiB, 512,
        "-device xio3130-downstream,id=dp2,bus=up0,addr=02.0,chassis=4,slot=0 "
        "-device nvme,id=nv0,bus=dp2,serial=p2plab0,cmb_size_mb=4", true);
    const size_t len = MiB + 3;
    g_autofree uint8_t *data = NULL;

    bridge_setup(l, 2, 2, 5, 5, 0xc0200000, 0xc02fffff, cmb, cmb + 4 * MiB - 1);
    cfg_wl(l, 5, 0, PCI_BASE_ADDRESS_0, 0xc0200000);
    cfg_wl(l, 5, 0, PCI_BASE_ADDRESS_0 + 4, 0);
    cfg_wl(l, 5, 0, PCI_BASE_ADDRESS_2, (uint32_t)cmb);
    cfg_wl(l, 5, 0, PCI_BASE_ADDRESS_3, cmb >> 32);
    cfg_ww(l, 5, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);

    fill_random(l, BUF_A, len, 6, &data);
    ring_setup(l, 0, 16);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, len, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    /* device memory -> CMB -> guest RAM, both switch-routed */
    g_assert_cmphex(run1(l, 0, 0, cmb + 4096, len, P2PLAB_DESC_F_SRC_LOCAL), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, cmb + 4096, data, 4096);
    qtest_memset(l->qts, BUF_B, 0, len);
    g_assert_cmphex(run1(l, 0, cmb + 4096, BUF_B, len, 0), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer"), ==, 2 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, 2 * len);
    /* past the end of the CMB: nothing decodes it */
    g_assert_cmphex(run1(l, 0, 0, cmb + 4 * MiB - 100, 200, P2PLAB_DESC_F_SRC_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_DST_DMA);
    assert_alive(l);
    lab_stop(l);
}

/*
 * Intel VT-d with DMA remapping on for p0 (bus 3, devfn 0): guest RAM 0..512 MiB identity-mapped
 * with 2 MiB pages, except BUF_B..BUF_B+4 MiB. Switch-routed P2P does not go through the IOMMU, so a
 * peer BAR works without any mapping; with ACS RR set the same bus address goes upstream and faults.
 */
static bool xio3130_has_acs(void);

static void test_iommu(void)
{
    bool acs = xio3130_has_acs();
    Lab *l;
    g_autofree uint8_t *data = NULL;
    const size_t len = 3 * MiB;
    int cap = 0;

    pre_args = "-device intel-iommu,intremap=off";
    l = lab_start(acs ? ",acs=on" : "", "", 16 * MiB, 512);
    pre_args = "";
    vtd_enable(l);
    fill_random(l, BUF_A, len, 7, &data);
    ring_setup(l, 0, 16);
    /* mapped RAM through the IOMMU (ring fetch, data, MSI-X message: all translated) */
    g_assert_cmphex(run1(l, 0, BUF_A, 0, len, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0x100);
    assert_mem_eq(l, l->bar2[0], data, len);
    /* unmapped IOVA: IOMMU fault = DMA error */
    g_assert_cmphex(run1(l, 0, 0, BUF_B, 4096, P2PLAB_DESC_F_SRC_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_DST_DMA);
    g_assert_cmphex(run1(l, 0, BUF_B + MiB, 0, 4096, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_SRC_DMA);
    /* a peer BAR under the same switch: routed by the switch, no IOMMU mapping needed */
    g_assert_cmphex(run1(l, 0, 0, l->bar2[1], len, P2PLAB_DESC_F_SRC_LOCAL), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[1], data, len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, len);
    if (acs) {
        /* ACS P2P Request Redirect: upstream through the IOMMU, where the BAR is not mapped */
        cap = find_ext_cap(l, 2, 0, PCI_EXT_CAP_ID_ACS);
        cfg_ww(l, 2, 0, cap + PCI_ACS_CTRL, PCI_ACS_RR);
        g_assert_cmphex(run1(l, 0, 0, l->bar2[1], 4096, P2PLAB_DESC_F_SRC_LOCAL), ==,
                        P2PLAB_DESC_DONE | P2PLAB_ERR_DST_DMA);
        cfg_ww(l, 2, 0, cap + PCI_ACS_CTRL, 0);
        g_assert_cmphex(run1(l, 0, 0, l->bar2[1], 4096, P2PLAB_DESC_F_SRC_LOCAL), ==,
                        P2PLAB_DESC_DONE);
    }
    assert_alive(l);
    lab_stop(l);
}

/* the xio3130 ACS overlay patch may have been skipped on a user's QEMU tree */
static bool xio3130_has_acs(void)
{
    g_autofree char *cmd = g_strdup_printf("%s -device xio3130-downstream,help",
                                           getenv("QTEST_QEMU_BINARY"));
    g_autofree char *out = NULL, *err = NULL;

    return g_spawn_command_line_sync(cmd, &out, &err, NULL, NULL) && out && strstr(out, "acs=");
}

static void test_p2p_acs(void)
{
    Lab *l;

    if (!xio3130_has_acs()) {
        g_test_skip("xio3130-downstream has no 'acs' property (overlay patch not applied)");
        return;
    }
    l = lab_start(",acs=on", "", 16 * MiB, 512);
    const size_t len = 1 * MiB;
    g_autofree uint8_t *data = NULL;
    int acs = find_ext_cap(l, 2, 0, PCI_EXT_CAP_ID_ACS);

    g_assert_cmpint(acs, !=, 0);
    g_assert_cmphex(cfg_rw(l, 2, 0, acs + PCI_ACS_CAP) & PCI_ACS_RR, ==, PCI_ACS_RR);
    g_assert_cmphex(cfg_rw(l, 2, 0, acs + PCI_ACS_CTRL), ==, 0);
    /* no ACS cap on dp1 (default off) */
    g_assert_cmpint(find_ext_cap(l, 2, 1, PCI_EXT_CAP_ID_ACS), ==, 0);

    /* ACS present but RR clear: still routed inside the switch */
    p2p_transfer(l, len, &data);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len);

    /* RR set on p0's downstream port: requests are redirected upstream (root complex) */
    cfg_ww(l, 2, 0, acs + PCI_ACS_CTRL, PCI_ACS_RR);
    g_assert_cmphex(cfg_rw(l, 2, 0, acs + PCI_ACS_CTRL), ==, PCI_ACS_RR);
    g_assert_cmphex(run1(l, 0, 0, l->bar2[1] + 0x300000, len, P2PLAB_DESC_F_SRC_LOCAL), ==,
                    P2PLAB_DESC_DONE);
    assert_mem_eq(l, l->bar2[1] + 0x300000, data, len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer"), ==, 3 * len);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, len);
    assert_alive(l);
    lab_stop(l);
}

/* a long transfer runs in bounded slices: QMP stays responsive and progress is visible meanwhile */
static void test_slicing(void)
{
    Lab *l = lab_default();
    const uint32_t len = 128 * MiB;
    uint64_t last = 0, now;
    int steps = 0, samples = 0;
    gint64 worst = 0, end = g_get_monotonic_time() + POLL_US * 3;
    uint32_t idx;

    qtest_memset(l->qts, BUF_A, 0x3c, len);
    ring_setup(l, 0, 16);
    idx = post(l, 0, BUF_A, BUF_A + len, len, P2PLAB_DESC_F_IRQ);
    doorbell(l, 0);
    while (!(desc_status(l, 0, idx) & P2PLAB_DESC_DONE)) {
        gint64 t0 = g_get_monotonic_time();
        now = qom_get_int(l, "p0", "stat-bytes-host");
        worst = MAX(worst, g_get_monotonic_time() - t0);
        samples++;
        if (now != last && now < 2ULL * len) {
            steps++;
        }
        last = now;
        g_assert_cmpint(g_get_monotonic_time(), <, end);
    }
    g_test_message("slicing: %d samples, %d intermediate progress values, worst QMP %" PRId64
                   " us", samples, steps, worst);
    g_assert_cmpint(steps, >=, 3);
    g_assert_cmpint(worst, <, 500 * 1000);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(qtest_readl(l->qts, BUF_A + 2 * len - 4), ==, 0x3c3c3c3c);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, 2ULL * len);
    lab_stop(l);
}

static void test_batch(void)
{
    Lab *l = lab_default();
    g_autofree uint8_t *data = NULL;
    uint32_t first, n = 0;
    const int count = 13;

    fill_random(l, BUF_A, 2 * MiB, 3, &data);
    qtest_memset(l->qts, BUF_B, 0, 2 * MiB);
    ring_setup(l, 0, 8);
    /* 3 rounds on a ring of 8: HEAD/TAIL wrap; only the last of each round asks for an IRQ */
    for (int round = 0; round < 3; round++) {
        first = l->tail[0];
        for (int i = 0; i < 5; i++, n++) {
            uint32_t off = n * 65536;
            post(l, 0, BUF_A + off, off, 65536 - n, P2PLAB_DESC_F_DST_LOCAL);
        }
        post(l, 0, 0, BUF_B, n * 65536, P2PLAB_DESC_F_SRC_LOCAL |
             (round == 2 ? P2PLAB_DESC_F_IRQ : 0));
        doorbell(l, 0);
        for (int i = 0; i < 6; i++) {
            g_assert_cmphex(wait_desc(l, 0, (first + i) % 8), ==, P2PLAB_DESC_DONE);
        }
    }
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 18);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 18 % 8);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_TAIL), ==, 18 % 8);
    for (uint32_t i = 0; i < n; i++) {
        assert_mem_eq(l, BUF_B + i * 65536, data + i * 65536, 65536 - i);
    }
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 1);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0x100);
    (void)count;
    /* a full ring: 7 entries (size - 1) in one doorbell */
    first = l->tail[0];
    for (int i = 0; i < 7; i++) {
        post(l, 0, BUF_A, i * 4096, 4096, P2PLAB_DESC_F_DST_LOCAL);
    }
    doorbell(l, 0);
    for (int i = 0; i < 7; i++) {
        g_assert_cmphex(wait_desc(l, 0, (first + i) % 8), ==, P2PLAB_DESC_DONE);
    }
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_COMPLETED), ==, 25);
    assert_alive(l);
    lab_stop(l);
}

static void test_desc_errors(void)
{
    Lab *l = lab_default();
    const uint32_t L = P2PLAB_DESC_F_SRC_LOCAL, D = P2PLAB_DESC_F_DST_LOCAL;
    const uint64_t ms = 16 * MiB;
    struct { uint64_t src, dst; uint32_t len, flags, err; } c[] = {
        { BUF_A, 0, 0, D, P2PLAB_ERR_BAD_LEN },
        { BUF_A, 0, P2PLAB_DESC_MAX_LEN + 1, D, P2PLAB_ERR_BAD_LEN },
        { BUF_A, 0, 0xffffffff, D, P2PLAB_ERR_BAD_LEN },
        { BUF_A, 0, 16, 0x8 | D, P2PLAB_ERR_BAD_FLAGS },
        { BUF_A, 0, 16, 0x80000000, P2PLAB_ERR_BAD_FLAGS },
        { ms - 8, BUF_B, 16, L, P2PLAB_ERR_SRC_RANGE },
        { ms, BUF_B, 1, L, P2PLAB_ERR_SRC_RANGE },
        { ~0ULL - 4, BUF_B, 16, L, P2PLAB_ERR_SRC_RANGE },
        { BUF_A, ms - 1, 2, D, P2PLAB_ERR_DST_RANGE },
        { BUF_A, ~0ULL, 16, D, P2PLAB_ERR_DST_RANGE },
        { 0, 0, P2PLAB_DESC_MAX_LEN, L | D, P2PLAB_ERR_SRC_RANGE },
        { UNMAPPED, 0, 4096, D, P2PLAB_ERR_SRC_DMA },
        { ~0ULL - 0x10, 0, 0x100, D, P2PLAB_ERR_SRC_DMA },
        { 0, UNMAPPED, 4096, L, P2PLAB_ERR_DST_DMA },
        { 0, ~0ULL - 0x10, 0x100, L, P2PLAB_ERR_DST_DMA },
        { UNMAPPED, BUF_B, 64, 0, P2PLAB_ERR_SRC_DMA },
        { BUF_A, UNMAPPED, 64, 0, P2PLAB_ERR_DST_DMA },
        /* own registers as a DMA target: blocked re-entrancy is a DMA error, not a hang */
        { 0, BAR0_P0 + P2PLAB_REG_CTRL, 4, L, P2PLAB_ERR_DST_DMA },
        { BAR0_P0, 0, 4, D, P2PLAB_ERR_SRC_DMA },
    };
    uint64_t errs = 0;

    ring_setup(l, 0, 64);
    for (size_t i = 0; i < G_N_ELEMENTS(c); i++) {
        uint32_t idx = post(l, 0, c[i].src, c[i].dst, c[i].len, c[i].flags);
        uint32_t st;

        doorbell(l, 0);
        st = wait_desc(l, 0, idx);
        if (st != (P2PLAB_DESC_DONE | c[i].err)) {
            g_test_message("case %zu: status 0x%x, expected 0x%x", i, st,
                           P2PLAB_DESC_DONE | c[i].err);
        }
        g_assert_cmphex(st, ==, P2PLAB_DESC_DONE | c[i].err);
        g_assert_cmpuint(rd(l, 0, P2PLAB_REG_ERR_INDEX), ==, idx);
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS) & P2PLAB_INT_ERROR, ==, P2PLAB_INT_ERROR);
        g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_ERROR), ==, 0x101);
        wr(l, 0, P2PLAB_REG_INT_STATUS, P2PLAB_INT_ERROR);
        errs++;
        /* each descriptor is independent: the next one works */
        g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, D), ==, P2PLAB_DESC_DONE);
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED);
    }
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-errors"), ==, errs);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ERR_CODE), ==, 0);
    /* a failed read leaves the destination untouched */
    qtest_memset(l->qts, l->bar2[0] + MiB, 0x77, 8192);
    g_assert_cmphex(run1(l, 0, UNMAPPED, MiB, 8192, D), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_SRC_DMA);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0] + MiB), ==, 0x7777777777777777ULL);
    g_assert_cmphex(qtest_readq(l->qts, l->bar2[0] + MiB + 8184), ==, 0x7777777777777777ULL);
    /* bus mastering off: DMA fails, no access happens */
    cfg_ww(l, 3, 0, PCI_COMMAND, PCI_COMMAND_MEMORY);
    {
        uint32_t idx = post(l, 0, 0, BUF_B, 64, L);
        doorbell(l, 0);
        settle(l, 0);
        /* no descriptor fetch either: the ring is not reachable */
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS) & P2PLAB_STATUS_HALTED, ==,
                        P2PLAB_STATUS_HALTED);
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_ERR_CODE), ==, P2PLAB_ERR_DESC_READ);
        (void)idx;
    }
    assert_alive(l);
    lab_stop(l);
}

static void expect_halt(Lab *l, uint32_t code)
{
    settle(l, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS) & P2PLAB_STATUS_HALTED, ==, P2PLAB_STATUS_HALTED);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ERR_CODE), ==, code);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS) & P2PLAB_INT_ERROR, ==, P2PLAB_INT_ERROR);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_ERROR), ==, 0x101);
    /* stays halted: ENABLE and TAIL are ignored until CTRL.RESET */
    wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);
    wr(l, 0, P2PLAB_REG_RING_TAIL, 1);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS) & P2PLAB_STATUS_HALTED, ==, P2PLAB_STATUS_HALTED);
    wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ERR_CODE), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CTRL), ==, 0);
    assert_alive(l);
}

static void ring_raw(Lab *l, uint64_t base, uint32_t size, bool enable)
{
    wr(l, 0, P2PLAB_REG_RING_BASE_LO, (uint32_t)base);
    wr(l, 0, P2PLAB_REG_RING_BASE_HI, base >> 32);
    wr(l, 0, P2PLAB_REG_RING_SIZE, size);
    if (enable) {
        wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);
    }
}

static void test_ring_errors(void)
{
    Lab *l = lab_default();
    uint32_t k;

    ring_raw(l, RING_BASE + P2PLAB_RING_ALIGN / 2, 16, true);
    expect_halt(l, P2PLAB_ERR_RING_BASE);
    ring_raw(l, RING_BASE, 3, true);
    expect_halt(l, P2PLAB_ERR_RING_SIZE);
    ring_raw(l, RING_BASE, 1, true);
    expect_halt(l, P2PLAB_ERR_RING_SIZE);
    ring_raw(l, RING_BASE, 8192, true);
    expect_halt(l, P2PLAB_ERR_RING_SIZE);
    ring_raw(l, RING_BASE, 0, true);
    expect_halt(l, P2PLAB_ERR_RING_SIZE);
    /* TAIL >= SIZE, while enabled and at enable time */
    ring_raw(l, RING_BASE, 16, true);
    wr(l, 0, P2PLAB_REG_RING_TAIL, 16);
    expect_halt(l, P2PLAB_ERR_RING_TAIL);
    ring_raw(l, RING_BASE, 16, false);
    wr(l, 0, P2PLAB_REG_RING_TAIL, 17);
    expect_halt(l, P2PLAB_ERR_RING_TAIL);
    /* descriptor fetch from unmapped bus space */
    ring_raw(l, UNMAPPED, 16, true);
    wr(l, 0, P2PLAB_REG_RING_TAIL, 1);
    expect_halt(l, P2PLAB_ERR_DESC_READ);
    /* status write-back into read-only memory (the BIOS ROM); fail-nth makes the first entry run
     * a failed descriptor, so nothing is copied before the write-back. ROM entries whose status
     * dword has DONE or STALLED are passed over unwritten (§3): the ring runs up to the first
     * one without */
    for (k = 0; k < 1023; k++) {
        if (!(qtest_readl(l->qts, 0xfffe0000 + k * sizeof(struct p2plab_desc) + DESC(status)) &
              (P2PLAB_DESC_DONE | P2PLAB_DESC_STALLED))) {
            break;
        }
    }
    g_assert_cmpuint(k, <, 1023);
    qom_set_int(l, "p0", "fail-nth", 1);
    ring_raw(l, 0xfffe0000, 1024, true);
    wr(l, 0, P2PLAB_REG_RING_TAIL, k + 1);
    expect_halt(l, P2PLAB_ERR_STATUS_WRITE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-ring-skipped"), ==, k);
    /* ring registers are ignored while enabled */
    ring_setup(l, 0, 16);
    wr(l, 0, P2PLAB_REG_RING_SIZE, 32);
    wr(l, 0, P2PLAB_REG_RING_BASE_LO, 0x40);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_SIZE), ==, 16);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_RING_BASE_LO), ==, (uint32_t)RING_BASE);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    assert_alive(l);
    lab_stop(l);
}

static void test_fail_nth(void)
{
    Lab *l = lab_default();
    uint32_t i0, i1, i2;

    ring_setup(l, 0, 16);
    g_assert_cmpuint(qom_get_int(l, "p0", "fail-code"), ==, P2PLAB_ERR_INJECTED);
    qom_set_int(l, "p0", "fail-nth", 2);
    g_assert_cmpuint(qom_get_int(l, "p0", "fail-nth"), ==, 2);
    i0 = post(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);
    i1 = post(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);
    i2 = post(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, i0), ==, P2PLAB_DESC_DONE);
    g_assert_cmphex(wait_desc(l, 0, i1), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_INJECTED);
    g_assert_cmphex(wait_desc(l, 0, i2), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "fail-nth"), ==, 0);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_ERR_INDEX), ==, i1);
    /* custom code */
    qom_set_int(l, "p0", "fail-code", 0x42);
    qom_set_int(l, "p0", "fail-nth", 1);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE | 0x42);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-errors"), ==, 2);
    assert_alive(l);
    lab_stop(l);
}

static void test_latency(void)
{
    Lab *l = lab_default();
    uint32_t idx;

    ring_setup(l, 0, 16);
    qom_set_int(l, "p0", "latency-us", 5000);
    g_assert_cmpuint(qom_get_int(l, "p0", "latency-us"), ==, 5000);
    idx = post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ);
    doorbell(l, 0);
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_ENABLED | P2PLAB_STATUS_BUSY);
    qtest_clock_step(l->qts, 4000 * 1000);
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    qtest_clock_step(l->qts, 1001 * 1000);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    qom_set_int(l, "p0", "latency-us", 0);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    assert_alive(l);
    lab_stop(l);
}

static void test_bandwidth(void)
{
    Lab *l = lab_default();
    uint32_t idx;

    ring_setup(l, 0, 16);
    qom_set_int(l, "p0", "bandwidth-mbps", 10);     /* 10 MB/s: 1 MB takes 100 ms */
    idx = post(l, 0, BUF_A, 0, 1000000, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    for (int i = 0; i < 9; i++) {           /* 90 ms: not yet */
        qtest_clock_step(l->qts, 10 * 1000 * 1000);
        settle(l, 0);
    }
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    for (int i = 0; i < 20 && !(desc_status(l, 0, idx) & P2PLAB_DESC_DONE); i++) {
        qtest_clock_step(l->qts, 2 * 1000 * 1000);
        settle(l, 0);
    }
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    qom_set_int(l, "p0", "bandwidth-mbps", 0);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 1000000, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    assert_alive(l);
    lab_stop(l);
}

static void test_corrupt(void)
{
    Lab *l = lab_default();
    g_autofree uint8_t *data = NULL;

    fill_random(l, BUF_A, 8192, 4, &data);
    ring_setup(l, 0, 16);
    qom_set_bool(l, "p0", "corrupt-next", true);
    g_assert(qom_get_bool(l, "p0", "corrupt-next"));
    /* a failing descriptor does not consume it */
    g_assert_cmphex(run1(l, 0, UNMAPPED, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_SRC_DMA);
    g_assert(qom_get_bool(l, "p0", "corrupt-next"));
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 8192, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    g_assert(!qom_get_bool(l, "p0", "corrupt-next"));
    data[0] ^= 1;
    assert_mem_eq(l, l->bar2[0], data, 8192);
    data[0] ^= 1;
    /* to a bus destination too (and the flip is not counted as traffic) */
    qom_set_bool(l, "p0", "corrupt-next", true);
    g_assert_cmphex(run1(l, 0, BUF_A, BUF_B, 8192, 0), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-host"), ==, 8192 + 2 * 8192);
    data[0] ^= 1;
    assert_mem_eq(l, BUF_B, data, 8192);
    data[0] ^= 1;
    /* one-shot */
    g_assert_cmphex(run1(l, 0, BUF_A, BUF_B, 8192, 0), ==, P2PLAB_DESC_DONE);
    assert_mem_eq(l, BUF_B, data, 8192);
    assert_alive(l);
    lab_stop(l);
}

static void test_drop_irqs(void)
{
    Lab *l = lab_default();

    ring_setup(l, 0, 16);
    qom_set_int(l, "p0", "drop-irqs", 1);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0);    /* dropped */
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, P2PLAB_INT_DONE); /* status still set */
    g_assert_cmpuint(qom_get_int(l, "p0", "drop-irqs"), ==, 0);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0x100);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 1);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs-dropped"), ==, 1);
    /* INT_MASK masks a cause: no message, not counted as dropped */
    wr(l, 0, P2PLAB_REG_INT_MASK, P2PLAB_INT_DONE);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 1);
    assert_alive(l);
    lab_stop(l);
}

static void test_intx(void)
{
    Lab *l = lab_default();

    msix_setup(l, 0, false);
    ring_setup(l, 0, 16);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL | P2PLAB_DESC_F_IRQ), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(msi_seen(l, 0, P2PLAB_VEC_DONE), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, P2PLAB_INT_DONE);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 1);
    wr(l, 0, P2PLAB_REG_INT_STATUS, P2PLAB_INT_DONE);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_INT_STATUS), ==, 0);
    /* PCI status "interrupt status" bit follows the INTx line */
    g_assert_cmphex(cfg_rw(l, 3, 0, PCI_STATUS) & PCI_STATUS_INTERRUPT, ==, 0);
    g_assert_cmphex(run1(l, 0, UNMAPPED, 0, 64, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE | P2PLAB_ERR_SRC_DMA);
    g_assert_cmphex(cfg_rw(l, 3, 0, PCI_STATUS) & PCI_STATUS_INTERRUPT, ==, PCI_STATUS_INTERRUPT);
    wr(l, 0, P2PLAB_REG_INT_STATUS, P2PLAB_INT_ERROR);
    g_assert_cmphex(cfg_rw(l, 3, 0, PCI_STATUS) & PCI_STATUS_INTERRUPT, ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-irqs"), ==, 2);
    assert_alive(l);
    lab_stop(l);
}

static void test_link_down(void)
{
    Lab *l = lab_default();
    uint32_t idx;

    ring_setup(l, 0, 16);
    wr(l, 0, P2PLAB_REG_SCRATCH, 7);
    qom_set_bool(l, "p0", "link-down", true);
    g_assert(qom_get_bool(l, "p0", "link-down"));
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, 0xffffffff);
    g_assert_cmphex(qtest_readl(l->qts, l->bar2[0]), ==, 0xffffffff);
    g_assert_cmphex(cfg_rl(l, 3, 0, PCI_VENDOR_ID), ==, 0xffffffff);
    wr(l, 0, P2PLAB_REG_SCRATCH, 9);
    idx = post(l, 0, BUF_A, 0, 64, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);                 /* lost */
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    qom_set_bool(l, "p0", "link-down", false);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_SCRATCH), ==, 7);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_TAIL), ==, 0);
    doorbell(l, 0);
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);

    /* link lost in the middle of a (throttled) transfer: DMA stops, resumes afterwards */
    qom_set_int(l, "p0", "bandwidth-mbps", 10);
    idx = post(l, 0, BUF_A, 0, 1000000, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    qtest_clock_step(l->qts, 20 * 1000 * 1000);
    settle(l, 0);
    qom_set_bool(l, "p0", "link-down", true);
    qtest_clock_step(l->qts, 500 * 1000 * 1000);
    settle(l, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    qom_set_bool(l, "p0", "link-down", false);
    for (int i = 0; i < 200 && !(desc_status(l, 0, idx) & P2PLAB_DESC_DONE); i++) {
        qtest_clock_step(l->qts, 5 * 1000 * 1000);
        settle(l, 0);
    }
    g_assert_cmphex(wait_desc(l, 0, idx), ==, P2PLAB_DESC_DONE);
    assert_alive(l);
    lab_stop(l);
}

/*
 * Hot-unplug (PCIe native hotplug, the way Linux pciehp does it): device_del pushes the attention
 * button of the port, the "guest" turns the slot's power and power indicator off, QEMU unrealizes
 * and unparents the device. DEVICE_DELETED comes from device_finalize, i.e. only once nothing holds
 * a reference on the device any more (memory regions in a FlatView, DMA mappings, ...).
 */
typedef enum {
    UNPLUG_IDLE,            /* never did DMA */
    UNPLUG_HOST,            /* host RAM <-> device memory */
    UNPLUG_LOCAL,           /* device memory -> device memory */
    UNPLUG_PEER_SWITCH,     /* p0 -> p1 BAR2 through the switch (p0 unplugged) */
    UNPLUG_PEER_TARGET,     /* p0 -> p1 BAR2 through the switch (p1, the target, unplugged) */
    UNPLUG_PEER_UPSTREAM,   /* p2 on a root port -> p0 BAR2 through the root complex (p2 unplugged) */
    UNPLUG_IN_FLIGHT,       /* a throttled transfer is in flight */
    UNPLUG_LINK_DOWN,       /* link-down set (with work pending) */
    UNPLUG_REPLUG,          /* unplug, add again with the same id, DMA, unplug again */
    UNPLUG_MEMDEV,          /* hot-add with a memdev, unplug, hot-add with the same memdev */
} UnplugCase;

#define BAR0_P2         0xc0400000ULL
#define BAR2_P2         0x4000000000ULL
#define RING_P2         (RING_BASE + 0x200000)  /* p2's ring (p0, p1: ring_base()) */



/* power the (emptied) slot back on and plug p0 in again: device_add, enumerate, DMA */
static void replug_p0(Lab *l, const char *memdev)
{
    int exp = find_cap(l, 2, 0, PCI_CAP_ID_EXP);
    uint16_t ctl = cfg_rw(l, 2, 0, exp + PCI_EXP_SLTCTL);
    g_autofree uint8_t *data = NULL;

    ctl = (ctl & ~(PCI_EXP_SLTCTL_PIC | PCI_EXP_SLTCTL_PCC)) | PCI_EXP_SLTCTL_PWR_IND_ON |
          PCI_EXP_SLTCTL_PWR_ON;
    cfg_ww(l, 2, 0, exp + PCI_EXP_SLTCTL, ctl);
    if (memdev) {
        qtest_qmp_device_add(l->qts, "p2plab", "p0", "{'bus': 'dp0', 'memdev': %s}", memdev);
    } else {
        qtest_qmp_device_add(l->qts, "p2plab", "p0", "{'bus': 'dp0', 'mem-size': %" PRIu64 "}",
                             l->mem_size);
    }
    cfg_wl(l, 3, 0, PCI_BASE_ADDRESS_0, l->bar0[0]);
    cfg_wl(l, 3, 0, PCI_BASE_ADDRESS_2, (uint32_t)l->bar2[0]);
    cfg_wl(l, 3, 0, PCI_BASE_ADDRESS_3, l->bar2[0] >> 32);
    cfg_ww(l, 3, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    msix_setup(l, 0, true);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    ring_setup(l, 0, 16);
    fill_random(l, BUF_A, 64 * KiB, 11, &data);
    g_assert_cmphex(run1(l, 0, BUF_A, 0, 64 * KiB, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE);
    g_assert_cmphex(run1(l, 0, l->bar2[1], 0, 64 * KiB, P2PLAB_DESC_F_DST_LOCAL), ==,
                    P2PLAB_DESC_DONE);
}

static void test_unplug(const void *opaque)
{
    UnplugCase c = (UnplugCase)(uintptr_t)opaque;
    Lab *l = lab_start_full("", "", 16 * MiB, 512,
                            "-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off "
                            "-device pcie-root-port,id=rp1,bus=pcie.0,addr=03.0,chassis=9 "
                            "-device p2plab,id=p2,bus=rp1,mem-size=16M", true);
    g_autofree uint8_t *data = NULL;
    const size_t len = 256 * KiB;
    uint32_t idx;

    /* p2 on its own root port (bus 6): BAR0 0xc0400000, BAR2 0x40_0000_0000 */
    bridge_setup(l, 0, 3, 6, 6, BAR0_P2, BAR0_P2 + 0xfffff, BAR2_P2, BAR2_P2 + 16 * MiB - 1);
    cfg_wl(l, 6, 0, PCI_BASE_ADDRESS_0, BAR0_P2);
    cfg_wl(l, 6, 0, PCI_BASE_ADDRESS_2, (uint32_t)BAR2_P2);
    cfg_wl(l, 6, 0, PCI_BASE_ADDRESS_3, BAR2_P2 >> 32);
    cfg_ww(l, 6, 0, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    g_assert_cmphex(qtest_readl(l->qts, BAR0_P2 + P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    fill_random(l, BUF_A, len, 7, &data);

    switch (c) {
    case UNPLUG_IDLE:
        hot_unplug(l, "p0", 2, 0);
        break;
    case UNPLUG_HOST:
        ring_setup(l, 0, 16);
        g_assert_cmphex(run1(l, 0, BUF_A, 0, len, P2PLAB_DESC_F_DST_LOCAL), ==,
                        P2PLAB_DESC_DONE);
        g_assert_cmphex(run1(l, 0, 0, BUF_B, len, P2PLAB_DESC_F_SRC_LOCAL), ==,
                        P2PLAB_DESC_DONE);
        assert_mem_eq(l, BUF_B, data, len);
        hot_unplug(l, "p0", 2, 0);
        break;
    case UNPLUG_LOCAL:
        ring_setup(l, 0, 16);
        g_assert_cmphex(run1(l, 0, 0, MiB, len,
                             P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_LOCAL), ==,
                        P2PLAB_DESC_DONE);
        hot_unplug(l, "p0", 2, 0);
        break;
    case UNPLUG_PEER_SWITCH:
    case UNPLUG_PEER_TARGET:
        ring_setup(l, 0, 16);
        g_assert_cmphex(run1(l, 0, BUF_A, l->bar2[1], len, 0), ==, P2PLAB_DESC_DONE);
        g_assert_cmphex(run1(l, 0, l->bar2[1], BUF_B, len, 0), ==, P2PLAB_DESC_DONE);
        assert_mem_eq(l, BUF_B, data, len);
        g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, 2 * len);
        if (c == UNPLUG_PEER_SWITCH) {
            hot_unplug(l, "p0", 2, 0);
        } else {
            hot_unplug(l, "p1", 2, 1);
            /* the initiator survives; the target's window is gone: DMA there fails cleanly */
            g_assert_cmphex(run1(l, 0, BUF_A, l->bar2[1], 4096, 0), ==,
                            P2PLAB_DESC_DONE | P2PLAB_ERR_DST_DMA);
            hot_unplug(l, "p0", 2, 0);
        }
        break;
    case UNPLUG_PEER_UPSTREAM:
        /* p2's ring in guest RAM at RING_P2 */
        qtest_writel(l->qts, BAR0_P2 + P2PLAB_REG_RING_BASE_LO, RING_P2);
        qtest_writel(l->qts, BAR0_P2 + P2PLAB_REG_RING_SIZE, 16);
        qtest_writel(l->qts, BAR0_P2 + P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);
        desc_write(l->qts, RING_P2, BUF_A, l->bar2[0], len, 0, 0);
        qtest_writel(l->qts, BAR0_P2 + P2PLAB_REG_RING_TAIL, 1);
        for (int i = 0; i < 1000 &&
             !(qtest_readl(l->qts, RING_P2 + DESC(status)) & P2PLAB_DESC_DONE); i++) {
            g_usleep(1000);
        }
        g_assert_cmphex(qtest_readl(l->qts, RING_P2 + DESC(status)), ==, P2PLAB_DESC_DONE);
        assert_mem_eq(l, l->bar2[0], data, len);
        g_assert_cmpuint(qom_get_int(l, "p2", "stat-bytes-peer"), ==, len);
        g_assert_cmpuint(qom_get_int(l, "p2", "stat-bytes-peer-switch"), ==, 0);
        hot_unplug(l, "p2", 0, 3);
        hot_unplug(l, "p0", 2, 0);
        break;
    case UNPLUG_IN_FLIGHT:
        ring_setup(l, 0, 16);
        qom_set_int(l, "p0", "bandwidth-mbps", 10);
        idx = post(l, 0, BUF_A, l->bar2[1], 1000000, 0);      /* peer, 100 ms */
        post(l, 0, BUF_A, 0, 1000000, P2PLAB_DESC_F_DST_LOCAL);
        doorbell(l, 0);
        qtest_clock_step(l->qts, 20 * 1000 * 1000);
        settle(l, 0);
        g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
        g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS) & P2PLAB_STATUS_BUSY, ==,
                        P2PLAB_STATUS_BUSY);
        hot_unplug(l, "p0", 2, 0);
        qtest_clock_step(l->qts, 500 * 1000 * 1000);
        break;
    case UNPLUG_LINK_DOWN:
        ring_setup(l, 0, 16);
        g_assert_cmphex(run1(l, 0, BUF_A, l->bar2[1], len, 0), ==, P2PLAB_DESC_DONE);
        idx = post(l, 0, BUF_A, 0, len, P2PLAB_DESC_F_DST_LOCAL);
        qom_set_bool(l, "p0", "link-down", true);
        doorbell(l, 0);                 /* lost */
        hot_unplug(l, "p0", 2, 0);
        g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
        break;
    case UNPLUG_REPLUG:
        ring_setup(l, 0, 16);
        g_assert_cmphex(run1(l, 0, BUF_A, l->bar2[1], len, 0), ==, P2PLAB_DESC_DONE);
        hot_unplug(l, "p0", 2, 0);
        replug_p0(l, NULL);
        hot_unplug(l, "p0", 2, 0);
        break;
    case UNPLUG_MEMDEV:
        /* a memory backend goes back to its owner: it can back the next device */
        qtest_qmp_assert_success(l->qts, "{'execute':'object-add','arguments':{"
                                 "'qom-type':'memory-backend-ram','id':'m0','size':%" PRIu64 "}}",
                                 l->mem_size);
        hot_unplug(l, "p0", 2, 0);
        for (int i = 0; i < 2; i++) {
            replug_p0(l, "m0");
            g_assert_cmphex(rd(l, 0, P2PLAB_REG_CAPS) & P2PLAB_CAP_MEMDEV, ==,
                            P2PLAB_CAP_MEMDEV);
            g_assert_cmphex(run1(l, 0, BUF_A, l->bar2[1], len, 0), ==, P2PLAB_DESC_DONE);
            hot_unplug(l, "p0", 2, 0);
        }
        qtest_qmp_assert_success(l->qts, "{'execute':'object-del','arguments':{'id':'m0'}}");
        break;
    }
    /* the rest of the lab keeps working */
    if (c != UNPLUG_PEER_TARGET) {
        g_assert_cmphex(qtest_readl(l->qts, l->bar0[1] + P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    }
    if (c != UNPLUG_PEER_UPSTREAM) {
        g_assert_cmphex(qtest_readl(l->qts, BAR0_P2 + P2PLAB_REG_ID), ==, P2PLAB_ID_MAGIC);
    }
    lab_stop(l);
}

static void test_reset(void)
{
    Lab *l = lab_default();
    uint32_t idx;
    uint64_t descs;

    ring_setup(l, 0, 16);
    /* CTRL.RESET aborts the in-flight descriptor and zeroes the registers */
    qom_set_int(l, "p0", "latency-us", 100000);
    idx = post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL);
    post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    settle(l, 0);
    wr(l, 0, P2PLAB_REG_SCRATCH, 1);
    wr(l, 0, P2PLAB_REG_INT_MASK, P2PLAB_INT_DONE | P2PLAB_INT_ERROR);
    wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    g_assert_cmphex(desc_status(l, 0, idx + 1), ==, 0);
    for (uint32_t r = P2PLAB_REG_CTRL; r < P2PLAB_NUM_REGS * 4; r += 4) {
        if (r != P2PLAB_REG_RING_MAX) {
            g_assert_cmphex(rd(l, 0, r), ==, 0);
        }
    }
    descs = qom_get_int(l, "p0", "stat-descriptors");
    qtest_clock_step(l->qts, 1000 * 1000 * 1000);       /* the latency timer must not fire */
    settle(l, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-descriptors"), ==, descs);
    g_assert_cmphex(desc_status(l, 0, idx + 1), ==, 0);

    /* CTRL.ENABLE cleared while in flight: that descriptor is aborted, HEAD moves on */
    ring_setup(l, 0, 16);
    idx = post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL);
    post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    settle(l, 0);
    wr(l, 0, P2PLAB_REG_CTRL, 0);
    g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE | P2PLAB_ERR_ABORTED);
    g_assert_cmpuint(rd(l, 0, P2PLAB_REG_RING_HEAD), ==, 1);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_STATUS), ==, P2PLAB_STATUS_BUSY);
    qom_set_int(l, "p0", "latency-us", 0);
    wr(l, 0, P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);     /* resumes with the next one */
    g_assert_cmphex(wait_desc(l, 0, idx + 1), ==, P2PLAB_DESC_DONE);

    /* system reset quiesces too (no write-back) */
    qom_set_int(l, "p0", "latency-us", 100000);
    idx = post(l, 0, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL);
    doorbell(l, 0);
    settle(l, 0);
    descs = qom_get_int(l, "p0", "stat-descriptors");
    qobject_unref(qtest_qmp(l->qts, "{'execute':'system_reset'}"));
    qtest_qmp_eventwait(l->qts, "RESET");
    qtest_clock_step(l->qts, 1000 * 1000 * 1000);
    g_assert_cmphex(desc_status(l, 0, idx), ==, 0);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-descriptors"), ==, descs);
    /* config space was reset as well: enumerate again */
    lab_enumerate(l);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_RING_SIZE), ==, 0);
    g_assert_cmphex(rd(l, 0, P2PLAB_REG_CTRL), ==, 0);
    lab_stop(l);
}


/* migrate (to a file) in the middle of a throttled transfer; the destination finishes it */
static void test_migration(void)
{
    Lab *a = lab_default(), *b;
    g_autofree char *file = g_strdup_printf("%s/p2plab-mig-%d", g_get_tmp_dir(), getpid());
    g_autofree char *inc = g_strdup_printf("-incoming file:%s", file);
    g_autofree char *uri = g_strdup_printf("file:%s", file);
    g_autofree uint8_t *data = NULL;
    uint32_t idx, head;
    uint64_t bytes;

    fill_random(a, BUF_A, 2 * MiB, 5, &data);
    ring_setup(a, 0, 16);
    g_assert_cmphex(run1(a, 0, BUF_A, 0, MiB, P2PLAB_DESC_F_DST_LOCAL), ==, P2PLAB_DESC_DONE);
    wr(a, 0, P2PLAB_REG_SCRATCH, 0xfeedf00d);
    wr(a, 0, P2PLAB_REG_INT_MASK, P2PLAB_INT_ERROR);
    qom_set_int(a, "p0", "bandwidth-mbps", 10);
    idx = post(a, 0, BUF_A, BUF_B, 2 * MiB, P2PLAB_DESC_F_IRQ);
    doorbell(a, 0);
    qtest_clock_step(a->qts, 50 * 1000 * 1000);      /* about a quarter of it */
    settle(a, 0);
    g_assert_cmphex(desc_status(a, 0, idx), ==, 0);
    head = rd(a, 0, P2PLAB_REG_RING_HEAD);
    bytes = qom_get_int(a, "p0", "stat-bytes-host");
    g_assert_cmpuint(bytes, >, MiB);
    g_assert_cmpuint(bytes, <, 5 * MiB);

    lab_migrate_wait(a, uri);
    lab_stop(a);

    b = lab_start_full("", "", 16 * MiB, 512, inc, false);
    lab_wait_running(b);
    unlink(file);
    b->ring_size[0] = 16;
    b->tail[0] = idx + 1;
    g_assert_cmphex(rd(b, 0, P2PLAB_REG_SCRATCH), ==, 0xfeedf00d);
    g_assert_cmphex(rd(b, 0, P2PLAB_REG_INT_MASK), ==, P2PLAB_INT_ERROR);
    g_assert_cmpuint(rd(b, 0, P2PLAB_REG_RING_SIZE), ==, 16);
    g_assert_cmpuint(qom_get_int(b, "p0", "bandwidth-mbps"), ==, 0);   /* knobs stay behind */
    /* the transfer finishes on the destination, with the right data */
    g_assert_cmphex(wait_desc(b, 0, idx), ==, P2PLAB_DESC_DONE);
    g_assert_cmpuint(rd(b, 0, P2PLAB_REG_RING_HEAD), ==, head + 1);
    g_assert_cmpuint(rd(b, 0, P2PLAB_REG_COMPLETED), ==, 2);
    g_assert_cmpuint(qom_get_int(b, "p0", "stat-descriptors"), ==, 2);     /* counters migrate */
    assert_mem_eq(b, BUF_B, data, 2 * MiB);
    assert_mem_eq(b, b->bar2[0], data, MiB);
    g_assert_cmpuint(qom_get_int(b, "p0", "stat-bytes-host"), ==, MiB + 4 * MiB);
    g_assert_cmphex(msi_seen(b, 0, P2PLAB_VEC_DONE), ==, 0x100);
    assert_alive(b);
    lab_stop(b);
}

/* random MMIO / descriptor / knob stress with a fixed seed; QEMU must survive */
static void test_stress(void)
{
    Lab *l = lab_default();
    GRand *r = g_rand_new_with_seed(0x5eed2026);
    gint64 end = g_get_monotonic_time() + 20 * 1000 * 1000;
    static const uint64_t bases[] = { BUF_A, BUF_B, 0, BAR2_P0, BAR2_P1, BAR0_P0, BAR0_P1,
                                      UNMAPPED, RING_BASE, 0xfffe0000, ~0ULL - 100 };
    int ops = 0;

    ring_setup(l, 0, 32);
    ring_setup(l, 1, 32);
    for (ops = 0; ops < 3000 && g_get_monotonic_time() < end; ops++) {
        int dev = g_rand_int_range(r, 0, 2);
        int what = g_rand_int_range(r, 0, 100);

        if (what < 45) {
            uint32_t flags = g_rand_int_range(r, 0, 8) | (g_rand_int_range(r, 0, 20) == 0 ? 8 : 0);
            uint64_t src = bases[g_rand_int_range(r, 0, G_N_ELEMENTS(bases))] +
                           g_rand_int_range(r, 0, 1 << 20);
            uint64_t dst = bases[g_rand_int_range(r, 0, G_N_ELEMENTS(bases))] +
                           g_rand_int_range(r, 0, 1 << 20);
            uint32_t len = g_rand_int_range(r, 0, 20) == 0 ? g_rand_int(r)
                                                            : g_rand_int_range(r, 0, 300000);
            if (flags & P2PLAB_DESC_F_SRC_LOCAL) {
                src = g_rand_int_range(r, 0, 17 << 20);
            }
            if (flags & P2PLAB_DESC_F_DST_LOCAL) {
                dst = g_rand_int_range(r, 0, 17 << 20);
            }
            if (l->ring_size[dev] >= 2) {
                post(l, dev, src, dst, len, flags);
                if (g_rand_boolean(r)) {
                    doorbell(l, dev);
                }
            }
        } else if (what < 70) {
            static const uint32_t regs[] = { P2PLAB_REG_CTRL, P2PLAB_REG_RING_TAIL,
                P2PLAB_REG_INT_STATUS, P2PLAB_REG_INT_MASK, P2PLAB_REG_RING_SIZE,
                P2PLAB_REG_RING_BASE_LO, P2PLAB_REG_SCRATCH, P2PLAB_REG_ID };
            uint32_t reg = g_rand_int_range(r, 0, 10) == 0 ? g_rand_int_range(r, 0, 0x4000)
                           : regs[g_rand_int_range(r, 0, G_N_ELEMENTS(regs))];
            uint32_t val = g_rand_int_range(r, 0, 4) == 0 ? g_rand_int(r)
                           : g_rand_int_range(r, 0, 40);
            if (reg == P2PLAB_REG_RING_BASE_LO) {
                val = (uint32_t)ring_base(dev) + (g_rand_boolean(r) ? 0 : 8);
            }
            if (reg >= P2PLAB_MSIX_TABLE_OFF) {
                qtest_readl(l->qts, l->bar0[dev] + (reg & ~3));     /* leave MSI-X alone */
            } else {
                wr(l, dev, reg & ~3, val);
            }
            if (reg == P2PLAB_REG_RING_SIZE || reg == P2PLAB_REG_RING_BASE_LO) {
                l->tail[dev] = 0;
            }
        } else if (what < 80) {
            rd(l, dev, g_rand_int_range(r, 0, P2PLAB_NUM_REGS) * 4);
        } else if (what < 86) {
            ring_program(l, dev, 1 << g_rand_int_range(r, 1, 7));
        } else if (what < 92) {
            static const char *knobs[] = { "fail-nth", "latency-us", "bandwidth-mbps",
                                           "drop-irqs", "fail-code" };
            qom_set_int(l, dev ? "p1" : "p0", knobs[g_rand_int_range(r, 0, 5)],
                        g_rand_int_range(r, 0, 4) * (g_rand_boolean(r) ? 1 : 100));
        } else if (what < 94) {
            qom_set_bool(l, dev ? "p1" : "p0", g_rand_boolean(r) ? "link-down" : "corrupt-next",
                         g_rand_boolean(r));
        } else {
            qtest_clock_step(l->qts, g_rand_int_range(r, 1, 5000000));
        }
    }
    g_test_message("stress: %d operations", ops);
    g_rand_free(r);
    /* bring both devices back and check they still work */
    for (int dev = 0; dev < 2; dev++) {
        const char *name = dev ? "p1" : "p0";
        qom_set_bool(l, name, "link-down", false);
        qom_set_int(l, name, "latency-us", 0);
        qom_set_int(l, name, "bandwidth-mbps", 0);
        qom_set_int(l, name, "fail-nth", 0);
        ring_setup(l, dev, 16);
        g_assert_cmphex(run1(l, dev, BUF_A, 0, 4096, P2PLAB_DESC_F_DST_LOCAL), ==,
                        P2PLAB_DESC_DONE);
    }
    assert_alive(l);
    lab_stop(l);
}

/*
 * P2PLAB_BENCH=1: n copies of len bytes, posted in batches of up to ring size - 1 descriptors; each
 * batch is written first and timed from its doorbell until its last descriptor is done (polled). A real
 * driver writes descriptors at CPU speed: qtest's slow memory writes stay out of the figure, its
 * completion polling (one read every 50 us) does not, which bounds what small sizes can show.
 * Returns MB/s.
 */
static double bench_dma(Lab *l, uint64_t s, uint64_t d, uint64_t len, uint32_t f, uint32_t n)
{
    gint64 us = 0;

    for (uint32_t done = 0; done < n;) {
        uint32_t batch = MIN(n - done, l->ring_size[0] - 1), idx = 0;
        gint64 t0;

        for (uint32_t i = 0; i < batch; i++) {
            idx = post(l, 0, s, d, len, f);
        }
        t0 = g_get_monotonic_time();
        doorbell(l, 0);
        while (!(desc_status(l, 0, idx) & P2PLAB_DESC_DONE)) {
            g_usleep(50);
        }
        us += g_get_monotonic_time() - t0;
        g_assert_cmphex(desc_status(l, 0, idx), ==, P2PLAB_DESC_DONE);
        done += batch;
    }
    return (double)len * n / (double)MAX(us, 1);
}

static double bench_memcpy(uint8_t *a, uint8_t *b, uint64_t len, uint32_t n)
{
    gint64 t0 = g_get_monotonic_time();

    for (uint32_t i = 0; i < n; i++) {
        memcpy(b, a, len);
        asm volatile("" : : "r"(b) : "memory");     /* keep every copy */
    }
    return (double)len * n / (double)MAX(g_get_monotonic_time() - t0, 1);
}

static int cmp_double(gconstpointer a, gconstpointer b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof(*v), (int (*)(const void *, const void *))cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "4K", "64K", "1M", "256M" -> bytes (0 if malformed) */
static uint64_t bench_size(const char *s)
{
    char *end;
    uint64_t v = g_ascii_strtoull(s, &end, 10);

    switch (*end) {
    case 'K': case 'k': return v * KiB;
    case 'M': case 'm': return v * MiB;
    case '\0': return v;
    default: return 0;
    }
}

static void bench_size_name(char *buf, size_t sz, uint64_t len)
{
    if (len >= MiB && len % MiB == 0) {
        snprintf(buf, sz, "%" PRIu64 " MiB", len / MiB);
    } else if (len >= KiB && len % KiB == 0) {
        snprintf(buf, sz, "%" PRIu64 " KiB", len / KiB);
    } else {
        snprintf(buf, sz, "%" PRIu64 " B", len);
    }
}

/*
 * P2PLAB_BENCH=1: RAM -> device memory, device memory -> peer BAR2 (switch), device memory -> RAM and
 * RAM -> RAM, at each transfer size of P2PLAB_BENCH_SIZES (default 4K,64K,1M,16M,256M; at most 256M),
 * each next to a host memcpy of the same size (warm buffers, this process). A measurement copies at least
 * 16 MiB (n copies of a small size, see bench_dma). Per size, after one first-touch pass,
 * P2PLAB_BENCH_ROUNDS (default 7) interleaved rounds: in every round each direction runs next to a memcpy
 * (the order alternates between rounds); the ratio is taken per round, and the medians are reported (the
 * host is shared and noisy: a ratio of neighbours is what holds).
 */
static void test_bench(void)
{
    const uint64_t max_len = 256 * MiB;
    Lab *l = lab_start("", "", 256 * MiB, 1024);
    const uint64_t src = 0x10000000;
    struct { const char *name; uint64_t s, d; uint32_t f; } runs[] = {
        { "ram->device", src, 0, P2PLAB_DESC_F_DST_LOCAL },
        { "device->peer", 0, BAR2_P1, P2PLAB_DESC_F_SRC_LOCAL },
        { "device->ram", 0, src, P2PLAB_DESC_F_SRC_LOCAL },
        { "ram->ram", src, src + max_len, 0 },
    };
    enum { NRUNS = G_N_ELEMENTS(runs), MAX_ROUNDS = 101 };
    const char *env = getenv("P2PLAB_BENCH_ROUNDS");
    const char *sizes_env = getenv("P2PLAB_BENCH_SIZES");
    g_auto(GStrv) sizes = g_strsplit(sizes_env && *sizes_env ? sizes_env : "4K,64K,1M,16M,256M", ",", 0);
    int rounds = CLAMP(env ? atoi(env) : 7, 1, MAX_ROUNDS);
    g_autofree uint8_t *a = g_malloc(max_len), *b = g_malloc(max_len);
    double dev[NRUNS][MAX_ROUNDS], host[NRUNS][MAX_ROUNDS], ratio[NRUNS][MAX_ROUNDS];
    uint64_t peer_bytes = 0;

    memset(a, 0xa5, max_len);
    memset(b, 0, max_len);
    qtest_memset(l->qts, src, 0xa5, max_len);
    ring_setup(l, 0, 64);
    for (int si = 0; sizes[si]; si++) {
        uint64_t len = bench_size(sizes[si]);
        uint32_t n;
        char name[32];

        if (!len || len > max_len) {
            g_test_message("bench: size '%s' skipped (4K..256M)", sizes[si]);
            continue;
        }
        n = MAX(1, 16 * MiB / len);
        bench_size_name(name, sizeof(name), len);
        /* first touch: also pays the host page faults of untouched memory */
        for (size_t i = 0; i < NRUNS; i++) {
            double mbs = bench_dma(l, runs[i].s, runs[i].d, len, runs[i].f, n);

            printf("# bench %-13s %s at %.0f MB/s (first touch)\n", runs[i].name, name, mbs);
        }
        for (int r = 0; r < rounds; r++) {
            for (size_t i = 0; i < NRUNS; i++) {
                if (r % 2) {
                    dev[i][r] = bench_dma(l, runs[i].s, runs[i].d, len, runs[i].f, n);
                    host[i][r] = bench_memcpy(a, b, len, n);
                } else {
                    host[i][r] = bench_memcpy(a, b, len, n);
                    dev[i][r] = bench_dma(l, runs[i].s, runs[i].d, len, runs[i].f, n);
                }
                ratio[i][r] = dev[i][r] / host[i][r];
            }
            printf("# round %2d %s:", r + 1, name);
            for (size_t i = 0; i < NRUNS; i++) {
                printf(" %s %.0f/%.0f = %.2fx%s", runs[i].name, dev[i][r], host[i][r], ratio[i][r],
                       i + 1 < NRUNS ? "," : "\n");
            }
        }
        for (size_t i = 0; i < NRUNS; i++) {
            double lo = ratio[i][0], hi = ratio[i][0];

            for (int r = 1; r < rounds; r++) {
                lo = MIN(lo, ratio[i][r]);
                hi = MAX(hi, ratio[i][r]);
            }
            printf("# bench %-13s %s: %.0f MB/s vs host memcpy %.0f MB/s = %.2fx "
                   "(median of %d rounds, range %.2f-%.2f)\n", runs[i].name, name,
                   median(dev[i], rounds), median(host[i], rounds), median(ratio[i], rounds),
                   rounds, lo, hi);
        }
        fflush(stdout);
        peer_bytes += (uint64_t)(rounds + 1) * n * len;
        g_assert_cmphex(qtest_readl(l->qts, BAR2_P1 + len - 4), ==, 0xa5a5a5a5);
        g_assert_cmphex(qtest_readl(l->qts, src + max_len + len - 4), ==, 0xa5a5a5a5);
    }
    g_assert_cmphex(qtest_readl(l->qts, src + max_len - 4), ==, 0xa5a5a5a5);
    g_assert_cmpuint(qom_get_int(l, "p0", "stat-bytes-peer-switch"), ==, peer_bytes);
    lab_stop(l);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/p2plab/identity", test_identity);
    qtest_add_func("/p2plab/bad-config", test_bad_config);
    qtest_add_func("/p2plab/memdev", test_memdev);
    qtest_add_func("/p2plab/roundtrip", test_roundtrip);
    qtest_add_func("/p2plab/p2p-switch", test_p2p_switch);
    qtest_add_func("/p2plab/p2p-acs-redirect", test_p2p_acs);
    qtest_add_func("/p2plab/p2p-nvme-cmb", test_p2p_nvme_cmb);
    qtest_add_func("/p2plab/iommu", test_iommu);
    qtest_add_func("/p2plab/batch", test_batch);
    qtest_add_func("/p2plab/slicing", test_slicing);
    qtest_add_func("/p2plab/desc-errors", test_desc_errors);
    qtest_add_func("/p2plab/ring-errors", test_ring_errors);
    qtest_add_func("/p2plab/fault/fail-nth", test_fail_nth);
    qtest_add_func("/p2plab/fault/latency", test_latency);
    qtest_add_func("/p2plab/fault/bandwidth", test_bandwidth);
    qtest_add_func("/p2plab/fault/corrupt-next", test_corrupt);
    qtest_add_func("/p2plab/fault/drop-irqs", test_drop_irqs);
    qtest_add_func("/p2plab/fault/link-down", test_link_down);
    qtest_add_func("/p2plab/intx", test_intx);
    qtest_add_func("/p2plab/reset", test_reset);
    {
        static const char *const names[] = {
            [UNPLUG_IDLE] = "idle", [UNPLUG_HOST] = "host", [UNPLUG_LOCAL] = "local",
            [UNPLUG_PEER_SWITCH] = "peer-switch", [UNPLUG_PEER_TARGET] = "peer-target",
            [UNPLUG_PEER_UPSTREAM] = "peer-upstream", [UNPLUG_IN_FLIGHT] = "in-flight",
            [UNPLUG_LINK_DOWN] = "link-down", [UNPLUG_REPLUG] = "replug", [UNPLUG_MEMDEV] = "memdev",
        };
        for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
            g_autofree char *path = g_strdup_printf("/p2plab/unplug/%s", names[i]);
            qtest_add_data_func(path, (void *)(uintptr_t)i, test_unplug);
        }
    }
    qtest_add_func("/p2plab/migration", test_migration);
    qtest_add_func("/p2plab/stress", test_stress);
    if (getenv("P2PLAB_BENCH")) {
        qtest_add_func("/p2plab/bench", test_bench);
    }
    p2plab_mmu_add_tests();     /* /p2plab/mmu/... (p2plab-mmu-test.c) */
    return g_test_run();
}
