/*
 * p2plab qtest lab helpers (p2plab-qtest.c), shared by p2plab-test.c and p2plab-mmu-test.c.
 *
 * Copyright (c) 2026 The p2plab authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The machine: pcie.0 -- rp0 -- up0 -- dp0 -- p2plab p0 (bus 3), dp1 -- p2plab p1 (bus 4).
 * The test acts as firmware and driver: ring and buffers in guest RAM, MSI-X messages aimed at
 * guest RAM (MSI_BASE + dev * 16 + vec * 4, data 0x100 + vec).
 */
#ifndef P2PLAB_QTEST_H
#define P2PLAB_QTEST_H

#include "libqtest.h"
#include "p2plab_hw.h"

#define ECAM            0xb0000000ULL
#define BAR0_P0         0xc0000000ULL
#define BAR0_P1         0xc0100000ULL
#define BAR2_P0         0x1000000000ULL
#define BAR2_P1         0x2000000000ULL
#define MSI_BASE        0x00f00000ULL   /* MSI-X messages land here: dev * 16 + vec * 4 */
#define RING_BASE       0x01000000ULL   /* p0 ring; p1 ring at +0x100000 */
#define BUF_A           0x02000000ULL
#define BUF_B           0x06000000ULL
#define UNMAPPED        0x700000000000ULL
#define VTD_BASE        0xfed90000ULL
#define VTD_TABLES      0x00800000ULL  /* root, context, PML4, PDPT, PD: one 4 KiB page each */
#define POLL_US         (10 * 1000 * 1000)
#define DESC(f)         offsetof(struct p2plab_desc, f)  /* descriptor field offsets */

typedef struct {
    QTestState *qts;
    uint64_t bar0[2], bar2[2];
    uint64_t mem_size;
    uint32_t ring_size[2];
    uint32_t tail[2];
} Lab;


extern const char *pre_args;   /* QEMU arguments placed before the topology */

const char *fw_args(void);
uint64_t ecam(int bus, int dev, int fn, int off);
uint32_t cfg_rl(Lab *l, int b, int d, int o);
uint16_t cfg_rw(Lab *l, int b, int d, int o);
void cfg_wl(Lab *l, int b, int d, int o, uint32_t v);
void cfg_ww(Lab *l, int b, int d, int o, uint16_t v);
void cfg_wb(Lab *l, int b, int d, int o, uint8_t v);
int find_cap(Lab *l, int b, int d, int id);
int find_ext_cap(Lab *l, int b, int d, int id);
void bridge_setup(Lab *l, int b, int d, int sec, int sub, uint64_t mem, uint64_t mem_lim, uint64_t 
pref, uint64_t pref_lim);
void msix_setup(Lab *l, int dev, bool enable);
uint32_t msi_seen(Lab *l, int dev, int vec);
Lab *lab_start_full(const char *dp0_extra, const char *p_extra, uint64_t mem_size, int ram_mb, 
const char *extra, bool enumerate);
Lab *lab_start(const char *dp0_extra, const char *p_extra, uint64_t mem_size, int ram_mb);
void lab_enumerate(Lab *l);
Lab *lab_default(void);
void lab_stop(Lab *l);
uint32_t rd(Lab *l, int dev, uint32_t reg);
void wr(Lab *l, int dev, uint32_t reg, uint32_t v);
int64_t qom_get_int(Lab *l, const char *dev, const char *prop);
bool qom_get_bool(Lab *l, const char *dev, const char *prop);
void qom_set_int(Lab *l, const char *dev, const char *prop, int64_t v);
void qom_set_bool(Lab *l, const char *dev, const char *prop, bool v);
void assert_alive(Lab *l);
uint64_t ring_base(int dev);
void ring_program(Lab *l, int dev, uint32_t size);
void ring_setup(Lab *l, int dev, uint32_t size);
/* write the descriptor at guest address @a; status 0 */
void desc_write(QTestState *qts, uint64_t a, uint64_t src, uint64_t dst, uint32_t len,
                uint32_t flags, uint32_t cookie);
uint32_t post(Lab *l, int dev, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags);
void doorbell(Lab *l, int dev);
uint32_t desc_status(Lab *l, int dev, uint32_t idx);
uint32_t wait_desc(Lab *l, int dev, uint32_t idx);
void settle(Lab *l, int dev);
uint32_t run1(Lab *l, int dev, uint64_t src, uint64_t dst, uint32_t len, uint32_t flags);
void fill_random(Lab *l, uint64_t addr, size_t len, uint32_t seed, uint8_t **out);
void assert_mem_eq(Lab *l, uint64_t addr, const uint8_t *expect, size_t len);
bool peripheral_has(QTestState *qts, const char *id);
void hot_unplug(Lab *l, const char *id, int port_bus, int port_dev);
char *qmp_status_of(QTestState *qts, const char *cmd);
/* migrate @l's VM to @uri and wait (POLL_US) until it completed; fails the test otherwise */
void lab_migrate_wait(Lab *l, const char *uri);
/* wait (POLL_US) until @l's VM runs (the destination of an incoming migration) */
void lab_wait_running(Lab *l);
void vtd_enable(Lab *l);

/* p2plab-mmu-test.c */
void p2plab_mmu_add_tests(void);

#endif /* P2PLAB_QTEST_H */
