/* SPDX-License-Identifier: GPL-2.0-or-later OR MIT */
/*
 * p2plab_hw.h - the p2plab PCIe device's hardware interface.
 *
 * The single source of register offsets, bit fields, descriptor layout and status codes shared by
 * the QEMU device model (qemu-device/) and the guest driver (kmod/). docs/device.md explains every
 * value; keep the two in step. Plain C, no dependencies: include after <stdint.h> (QEMU, tests) or
 * <linux/types.h> (kernel).  All multi-byte fields are little-endian.
 */
#ifndef P2PLAB_HW_H
#define P2PLAB_HW_H

#ifdef __KERNEL__
#include <linux/types.h>
typedef u32 p2plab_u32;
typedef u64 p2plab_u64;
#else
#include <stdint.h>
typedef uint32_t p2plab_u32;
typedef uint64_t p2plab_u64;
#endif

/* PCI identity */
#define P2PLAB_VENDOR_ID        0x1234  /* QEMU experimental vendor, as hw/misc/edu.c */
#define P2PLAB_DEVICE_ID        0x11f0  /* p2plab (project-local; edu is 0x11e8) */
#define P2PLAB_REVISION         0x01
#define P2PLAB_CLASS            0x0580  /* memory controller: other */

/* BARs */
#define P2PLAB_BAR_REGS         0       /* 16 KiB: registers 0x0000, MSI-X table 0x2000, PBA 0x3000 */
#define P2PLAB_BAR_MEM          2       /* 64-bit prefetchable device memory, size = mem-size */
#define P2PLAB_REGS_SIZE        0x4000
#define P2PLAB_MSIX_TABLE_OFF   0x2000
#define P2PLAB_MSIX_PBA_OFF     0x3000

/* MSI-X vectors */
#define P2PLAB_VEC_DONE         0       /* a descriptor with P2PLAB_DESC_F_IRQ completed */
#define P2PLAB_VEC_ERROR        1       /* a descriptor failed or the engine halted */
#define P2PLAB_NUM_VECTORS      2

/* Register offsets in BAR0 (all 32-bit, 4-byte aligned accesses only) */
#define P2PLAB_REG_ID           0x000   /* RO: P2PLAB_ID_MAGIC */
#define P2PLAB_REG_VERSION      0x004   /* RO: interface version, P2PLAB_IF_VERSION */
#define P2PLAB_REG_CAPS         0x008   /* RO: P2PLAB_CAP_* */
#define P2PLAB_REG_MEM_SIZE_LO  0x00c   /* RO: BAR2 size, low 32 bits */
#define P2PLAB_REG_MEM_SIZE_HI  0x010   /* RO: BAR2 size, high 32 bits */
#define P2PLAB_REG_CTRL         0x014   /* RW: P2PLAB_CTRL_* */
#define P2PLAB_REG_STATUS       0x018   /* RO: P2PLAB_STATUS_* */
#define P2PLAB_REG_RING_MAX     0x01c   /* RO: largest accepted RING_SIZE */
#define P2PLAB_REG_RING_BASE_LO 0x020   /* RW: descriptor ring bus address (64-byte aligned) */
#define P2PLAB_REG_RING_BASE_HI 0x024
#define P2PLAB_REG_RING_SIZE    0x028   /* RW: entries, power of two, 2..RING_MAX */
#define P2PLAB_REG_RING_HEAD    0x02c   /* RO: next entry the device will process */
#define P2PLAB_REG_RING_TAIL    0x030   /* RW: doorbell: one past the last entry posted */
#define P2PLAB_REG_INT_STATUS   0x034   /* RW1C: P2PLAB_INT_* */
#define P2PLAB_REG_INT_MASK     0x038   /* RW: 1 = masked */
#define P2PLAB_REG_ERR_CODE     0x03c   /* RO: last engine (ring-level) error, P2PLAB_ERR_* */
#define P2PLAB_REG_ERR_INDEX    0x040   /* RO: ring index of the last failed descriptor */
#define P2PLAB_REG_SCRATCH      0x044   /* RW: free for the driver, reset to 0 */
#define P2PLAB_REG_COMPLETED    0x048   /* RO: descriptors completed since reset (wraps) */
#define P2PLAB_NUM_REGS         (0x04c / 4)

#define P2PLAB_ID_MAGIC         0x50324c42u     /* "BL2P" little-endian reads as "P2LB" */
#define P2PLAB_IF_VERSION       0x00010000u     /* major.minor, 16 bits each */

#define P2PLAB_CAP_P2P_ROUTING  (1u << 0)       /* switch-local peer routing emulated */
#define P2PLAB_CAP_MEMDEV       (1u << 1)       /* BAR2 backed by a host memory backend */
#define P2PLAB_CAP_FAULT_INJ    (1u << 2)       /* fault injection knobs exist */

#define P2PLAB_CTRL_ENABLE      (1u << 0)       /* engine runs while set */
#define P2PLAB_CTRL_RESET       (1u << 1)       /* write 1: reset engine and registers (self-clearing) */

#define P2PLAB_STATUS_ENABLED   (1u << 0)
#define P2PLAB_STATUS_BUSY      (1u << 1)       /* descriptors pending (HEAD != TAIL) */
#define P2PLAB_STATUS_HALTED    (1u << 2)       /* ring-level error: see ERR_CODE; needs CTRL.RESET */

#define P2PLAB_INT_DONE         (1u << 0)
#define P2PLAB_INT_ERROR        (1u << 1)

/* Descriptor: 32 bytes, in a ring of RING_SIZE entries at RING_BASE */
struct p2plab_desc {
	p2plab_u64 src;         /* bus address, or device-memory offset if SRC_LOCAL */
	p2plab_u64 dst;         /* bus address, or device-memory offset if DST_LOCAL */
	p2plab_u32 len;         /* bytes, 1..P2PLAB_DESC_MAX_LEN */
	p2plab_u32 flags;       /* P2PLAB_DESC_F_* */
	p2plab_u32 status;      /* written by the device: P2PLAB_DESC_DONE | P2PLAB_ERR_* */
	p2plab_u32 cookie;      /* driver-owned, never touched by the device */
};
#define P2PLAB_DESC_SIZE        32
#define P2PLAB_DESC_MAX_LEN     (1u << 30)      /* 1 GiB */

#define P2PLAB_DESC_F_SRC_LOCAL (1u << 0)       /* src is an offset into own device memory */
#define P2PLAB_DESC_F_DST_LOCAL (1u << 1)       /* dst is an offset into own device memory */
#define P2PLAB_DESC_F_IRQ       (1u << 2)       /* raise VEC_DONE when this descriptor completes */
#define P2PLAB_DESC_F_VALID_MASK 0x7u           /* any other bit set -> P2PLAB_ERR_BAD_FLAGS */

#define P2PLAB_DESC_DONE        0x80000000u     /* status bit 31: device finished this entry */
#define P2PLAB_DESC_ERR_MASK    0x000000ffu     /* status bits 7:0: P2PLAB_ERR_* (0 = OK) */

/* Status / error codes (descriptor status bits 7:0, and ERR_CODE) */
#define P2PLAB_ERR_OK           0x00
#define P2PLAB_ERR_BAD_LEN      0x01    /* len == 0 or > P2PLAB_DESC_MAX_LEN */
#define P2PLAB_ERR_BAD_FLAGS    0x02    /* reserved flag bits set */
#define P2PLAB_ERR_SRC_RANGE    0x03    /* local src offset + len wraps or exceeds mem-size */
#define P2PLAB_ERR_DST_RANGE    0x04    /* local dst offset + len wraps or exceeds mem-size */
#define P2PLAB_ERR_SRC_DMA      0x05    /* bus read failed (unmapped, IOMMU fault, wraps 2^64) */
#define P2PLAB_ERR_DST_DMA      0x06    /* bus write failed */
#define P2PLAB_ERR_INJECTED     0x07    /* fault injection (fail-nth) */
#define P2PLAB_ERR_ABORTED      0x08    /* engine reset or disabled while this entry ran */
/* ring-level (ERR_CODE only; the engine halts) */
#define P2PLAB_ERR_RING_BASE    0x10    /* RING_BASE not 64-byte aligned */
#define P2PLAB_ERR_RING_SIZE    0x11    /* RING_SIZE not a power of two in 2..RING_MAX */
#define P2PLAB_ERR_RING_TAIL    0x12    /* TAIL written >= RING_SIZE */
#define P2PLAB_ERR_DESC_READ    0x13    /* descriptor fetch failed */
#define P2PLAB_ERR_STATUS_WRITE 0x14    /* status write-back failed */

#endif /* P2PLAB_HW_H */
