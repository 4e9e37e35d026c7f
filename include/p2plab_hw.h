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
#include <linux/stddef.h>
#include <linux/types.h>
typedef u32 p2plab_u32;
typedef u64 p2plab_u64;
#else
#include <stddef.h>
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
#define P2PLAB_VEC_FAULT        2       /* (1.1) device-MMU fault record written / fault ring overflow */
#define P2PLAB_NUM_VECTORS      3

/* Register offsets in BAR0 (all 32-bit, 4-byte aligned accesses only) */
#define P2PLAB_REG_ID           0x000   /* RO: P2PLAB_ID_MAGIC */
#define P2PLAB_REG_VERSION      0x004   /* RO: interface version, P2PLAB_IF_VERSION */
#define P2PLAB_REG_CAPS         0x008   /* RO: P2PLAB_CAP_* */
#define P2PLAB_REG_MEM_SIZE_LO  0x00c   /* RO: BAR2 size, low 32 bits */
#define P2PLAB_REG_MEM_SIZE_HI  0x010   /* RO: BAR2 size, high 32 bits */
#define P2PLAB_REG_CTRL         0x014   /* RW: P2PLAB_CTRL_* */
#define P2PLAB_REG_STATUS       0x018   /* RO: P2PLAB_STATUS_* */
#define P2PLAB_REG_RING_MAX     0x01c   /* RO: largest accepted RING_SIZE */
#define P2PLAB_REG_RING_BASE_LO 0x020   /* RW: descriptor ring bus address (P2PLAB_RING_ALIGN) */
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
#define P2PLAB_IF_VERSION       0x00010001u     /* major.minor, 16 bits each: 1.1 (device MMU) */

#define P2PLAB_CAP_P2P_ROUTING  (1u << 0)       /* switch-local peer routing emulated */
#define P2PLAB_CAP_MEMDEV       (1u << 1)       /* BAR2 backed by a host memory backend */
#define P2PLAB_CAP_FAULT_INJ    (1u << 2)       /* fault injection knobs exist */
#define P2PLAB_CAP_MMU          (1u << 3)       /* (1.1) device MMU, VA descriptors, fault ring */

#define P2PLAB_CTRL_ENABLE      (1u << 0)       /* engine runs while set */
#define P2PLAB_CTRL_RESET       (1u << 1)       /* write 1: reset engine and registers (self-clearing) */

#define P2PLAB_STATUS_ENABLED   (1u << 0)
#define P2PLAB_STATUS_BUSY      (1u << 1)       /* descriptors pending (HEAD != TAIL) */
#define P2PLAB_STATUS_HALTED    (1u << 2)       /* ring-level error: see ERR_CODE; needs CTRL.RESET */

#define P2PLAB_INT_DONE         (1u << 0)
#define P2PLAB_INT_ERROR        (1u << 1)
#define P2PLAB_INT_FAULT        (1u << 2)       /* (1.1) fault ring: record written or overflow */
/* every INT_STATUS / INT_MASK bit (the others read 0) */
#define P2PLAB_INT_ALL          (P2PLAB_INT_DONE | P2PLAB_INT_ERROR | P2PLAB_INT_FAULT)

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
#define P2PLAB_RING_ALIGN       64              /* RING_BASE alignment, else ERR_RING_BASE */
#define P2PLAB_DESC_MAX_LEN     (1u << 30)      /* 1 GiB */

#define P2PLAB_DESC_F_SRC_LOCAL (1u << 0)       /* src is an offset into own device memory */
#define P2PLAB_DESC_F_DST_LOCAL (1u << 1)       /* dst is an offset into own device memory */
#define P2PLAB_DESC_F_IRQ       (1u << 2)       /* raise VEC_DONE when this descriptor completes */
/* (1.1) device MMU: bit 3 stays reserved */
#define P2PLAB_DESC_F_SRC_VA    (1u << 4)       /* src is a VA in context CTX (read permission) */
#define P2PLAB_DESC_F_DST_VA    (1u << 5)       /* dst is a VA in context CTX (write permission) */
#define P2PLAB_DESC_F_CTX_SHIFT 8               /* bits 11:8: MMU context of the VA side(s) */
#define P2PLAB_DESC_F_CTX_MASK  (0xfu << 8)
#define P2PLAB_DESC_F_OP_SHIFT  12              /* bits 14:12: operation, P2PLAB_OP_* */
#define P2PLAB_DESC_F_OP_MASK   (0x7u << 12)
#define P2PLAB_DESC_F_CTX(c)    (((p2plab_u32)(c) & 0xfu) << 8)
#define P2PLAB_DESC_F_OP(o)     (((p2plab_u32)(o) & 0x7u) << 12)
#define P2PLAB_DESC_F_VALID_MASK 0x7f37u        /* any other bit set -> P2PLAB_ERR_BAD_FLAGS */

/* (1.1) descriptor operations (flags bits 14:12) */
#define P2PLAB_OP_COPY          0       /* copy len bytes src -> dst (the 1.0 behaviour) */
#define P2PLAB_OP_FETCH_ADD     1       /* atomic *dst += args.operand; len = 4 or 8; DST_VA */
#define P2PLAB_OP_CMPXCHG       2       /* atomic if (*dst == args.compare) *dst = args.operand */
#define P2PLAB_OP_PREFETCH      3       /* translate [dst, dst+len) for read, fill the TLB; DST_VA */

/* (1.1) atomic argument block: at bus address desc.src, 32 bytes, 8-byte aligned */
struct p2plab_atomic_args {
	p2plab_u64 operand;     /* FETCH_ADD: addend; CMPXCHG: new value (low 32 bits if len 4) */
	p2plab_u64 compare;     /* CMPXCHG: expected value; ignored by FETCH_ADD */
	p2plab_u64 result;      /* written by the device: the old value at dst (zero-extended) */
	p2plab_u64 reserved;    /* neither read nor written */
};
#define P2PLAB_ATOMIC_ARGS_SIZE 32
#define P2PLAB_ATOMIC_ARGS_ALIGN 8      /* desc.src alignment (else P2PLAB_ERR_ATOMIC_ALIGN) */

#define P2PLAB_DESC_DONE        0x80000000u     /* status bit 31: device finished this entry */
#define P2PLAB_DESC_STALLED     0x40000000u     /* (1.1) status bit 30, without DONE: parked on an MMU fault */
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
/* (1.1) device MMU (descriptor errors) */
#define P2PLAB_ERR_MMU_CTX      0x20    /* context not enabled, or its root has reserved bits set */
#define P2PLAB_ERR_MMU_VA       0x21    /* VA range not inside [0, 2^48) */
#define P2PLAB_ERR_MMU_PT_READ  0x22    /* page-table read failed (unmapped, IOMMU fault) */
#define P2PLAB_ERR_MMU_PT_RSVD  0x23    /* page-table entry with reserved bits set */
#define P2PLAB_ERR_MMU_TARGET   0x24    /* leaf's device-local target beyond mem-size */
#define P2PLAB_ERR_MMU_FAULT    0x25    /* fault cancelled by the driver (or fault ring off) */
#define P2PLAB_ERR_ATOMIC_ALIGN 0x26    /* atomic: dst not aligned to len, or args not 8-aligned */
#define P2PLAB_ERR_ATOMIC_TARGET 0x27   /* atomic: target is not RAM (MMIO, unassigned) */
/* ring-level (ERR_CODE only; the engine halts) */
#define P2PLAB_ERR_RING_BASE    0x10    /* RING_BASE not 64-byte aligned */
#define P2PLAB_ERR_RING_SIZE    0x11    /* RING_SIZE not a power of two in 2..RING_MAX */
#define P2PLAB_ERR_RING_TAIL    0x12    /* TAIL written >= RING_SIZE */
#define P2PLAB_ERR_DESC_READ    0x13    /* descriptor fetch failed */
#define P2PLAB_ERR_STATUS_WRITE 0x14    /* status write-back failed */

/*
 * (1.1) Device MMU registers (BAR0 0x0800-0x09ff; all 32-bit). docs/device.md section 15.
 */
#define P2PLAB_REG_MMU_CAPS     0x0800  /* RO: contexts 7:0, VA bits 15:8, P2PLAB_MMU_CAP_* */
#define P2PLAB_REG_MMU_TLB_SIZE 0x0804  /* RO: TLB entries (property tlb-entries; 0 = no TLB) */
#define P2PLAB_REG_MMU_STALLED  0x0808  /* RO: bit n = context n has parked descriptors */
#define P2PLAB_REG_MMU_PARKED   0x080c  /* RO: parked descriptors (0..P2PLAB_MMU_PARK_MAX) */
#define P2PLAB_REG_FAULT_BASE_LO 0x0810 /* RW*: fault ring bus address (P2PLAB_FAULT_RING_ALIGN) */
#define P2PLAB_REG_FAULT_BASE_HI 0x0814
#define P2PLAB_REG_FAULT_SIZE   0x0818  /* RW*: records, power of two, 2..P2PLAB_FAULT_RING_MAX */
#define P2PLAB_REG_FAULT_HEAD   0x081c  /* RW: driver: next record it will consume */
#define P2PLAB_REG_FAULT_TAIL   0x0820  /* RO: device: one past the last record written */
#define P2PLAB_REG_FAULT_CTRL   0x0824  /* RW: P2PLAB_FAULT_CTRL_* */
#define P2PLAB_REG_FAULT_STATUS 0x0828  /* RW1C: P2PLAB_FAULT_STATUS_* */
#define P2PLAB_REG_FAULT_RESP   0x082c  /* WO: replay / cancel, P2PLAB_FAULT_RESP_* (reads 0) */
#define P2PLAB_REG_INV_CTX      0x0830  /* RW: invalidation context (bits 3:0) */
#define P2PLAB_REG_INV_VA_LO    0x0834  /* RW: invalidation start VA */
#define P2PLAB_REG_INV_VA_HI    0x0838
#define P2PLAB_REG_INV_SIZE_LO  0x083c  /* RW: invalidation length in bytes; 0 = whole VA space */
#define P2PLAB_REG_INV_SIZE_HI  0x0840
#define P2PLAB_REG_INV_CMD      0x0844  /* WO: P2PLAB_INV_CMD_* submits (reads 0) */
#define P2PLAB_REG_INV_ISSUED   0x0848  /* RO: sequence number of the last submitted invalidation */
#define P2PLAB_REG_INV_DONE     0x084c  /* RO: sequence number of the last completed invalidation */
#define P2PLAB_REG_CTX_ROOT_LO(n) (0x0900 + 8 * (n))  /* RW: P2PLAB_CTX_ROOT_ENABLE | root 31:12 */
#define P2PLAB_REG_CTX_ROOT_HI(n) (0x0904 + 8 * (n))  /* RW: root bits 51:32 (31:20 reserved) */
#define P2PLAB_MMU_REGS_BASE    0x0800
#define P2PLAB_MMU_NUM_REGS     (0x200 / 4)

#define P2PLAB_MMU_CONTEXTS     16
#define P2PLAB_MMU_VA_BITS      48
#define P2PLAB_MMU_PARK_MAX     32      /* descriptors that can be parked at once */
#define P2PLAB_MMU_INV_QUEUE    16      /* invalidations outstanding at once */
#define P2PLAB_MMU_TLB_MAX      4096    /* largest tlb-entries */
#define P2PLAB_MMU_CAP_VA_BITS(b) ((p2plab_u32)(b) << 8)  /* MMU_CAPS bits 15:8: VA bits */
#define P2PLAB_MMU_CAP_2M       (1u << 16)      /* 2 MiB leaves */
#define P2PLAB_MMU_CAP_LOCAL    (1u << 17)      /* leaves may target device memory */
#define P2PLAB_MMU_CAP_ATOMIC   (1u << 18)      /* FETCH_ADD / CMPXCHG */

#define P2PLAB_CTX_ROOT_ENABLE  (1u << 0)       /* CTX_ROOT_LO bit 0; bits 11:1 reserved */

#define P2PLAB_FAULT_RING_MAX   4096
#define P2PLAB_FAULT_RING_ALIGN 32      /* FAULT_BASE alignment, else FAULT_CTRL.ENABLE refused */
#define P2PLAB_FAULT_CTRL_ENABLE (1u << 0)      /* faults are recorded (else they cancel at once) */
#define P2PLAB_FAULT_STATUS_OVERFLOW (1u << 0)  /* a fault found the ring full (not recorded) */
#define P2PLAB_FAULT_STATUS_WRITE_ERR (1u << 1) /* a record write failed (not recorded) */

#define P2PLAB_FAULT_RESP_INDEX_MASK 0xfffu     /* bits 11:0: ring index of the faulted descriptor */
#define P2PLAB_FAULT_RESP_CTX_SHIFT 16          /* bits 19:16: context */
#define P2PLAB_FAULT_RESP_CTX_MASK (0xfu << 16)
#define P2PLAB_FAULT_RESP_CANCEL (1u << 24)     /* 0 = replay, 1 = cancel */
#define P2PLAB_FAULT_RESP_ALL_CTX (1u << 25)    /* every parked descriptor of the context */

#define P2PLAB_INV_CMD_SUBMIT   (1u << 0)       /* must be set */
#define P2PLAB_INV_CMD_ALL      (1u << 1)       /* every context (INV_CTX ignored) */

/* Page-table entry (64-bit, 512 per 4 KiB table; 4 levels: VA 47:39, 38:30, 29:21, 20:12) */
#define P2PLAB_PTE_V            (1ull << 0)     /* valid */
#define P2PLAB_PTE_R            (1ull << 1)     /* leaf: read */
#define P2PLAB_PTE_W            (1ull << 2)     /* leaf: write */
#define P2PLAB_PTE_A            (1ull << 3)     /* leaf: atomics */
#define P2PLAB_PTE_LOCAL        (1ull << 4)     /* leaf: target is a device-memory offset */
#define P2PLAB_PTE_PS           (1ull << 7)     /* level-2 entry: 2 MiB leaf */
#define P2PLAB_PTE_ADDR_MASK    0x000ffffffffff000ull   /* bits 51:12 */
#define P2PLAB_PTE_RSVD_MASK    0xfff0000000000f60ull   /* bits 63:52, 11:8, 6:5: must be 0 */

/* Fault record: 32 bytes, in a ring of FAULT_SIZE records at FAULT_BASE */
struct p2plab_fault {
	p2plab_u64 va;          /* faulting virtual address (byte) */
	p2plab_u64 timestamp;   /* ns, the device's clock (QEMU virtual clock) */
	p2plab_u32 desc_index;  /* ring index of the stalled descriptor */
	p2plab_u32 ctx;         /* context */
	p2plab_u32 access;      /* P2PLAB_FAULT_ACC_* */
	p2plab_u32 reason;      /* P2PLAB_FAULT_R_* in 7:0, walk level (4..1, 0 = TLB) in 15:8 */
};
#define P2PLAB_FAULT_REC_SIZE   32
#define P2PLAB_FAULT_ACC_READ   1
#define P2PLAB_FAULT_ACC_WRITE  2
#define P2PLAB_FAULT_ACC_ATOMIC 3
#define P2PLAB_FAULT_ACC_PREFETCH 4
#define P2PLAB_FAULT_R_NOT_PRESENT 1    /* an entry on the walk had V = 0 */
#define P2PLAB_FAULT_R_PERM     2       /* leaf lacks R / W / A for the access */
#define P2PLAB_FAULT_R_INJECTED 3       /* mmu-spurious-fault (valid mapping) */
#define P2PLAB_FAULT_R_MASK     0xffu   /* reason bits 7:0: P2PLAB_FAULT_R_* */
#define P2PLAB_FAULT_R_LEVEL(l) ((p2plab_u32)(l) << 8)  /* bits 15:8: walk level 4..1 (0: TLB) */

/* The in-memory layouts above, byte for byte as docs/device.md draws them. */
#define P2PLAB_LAYOUT(type, field, off) \
	_Static_assert(offsetof(struct type, field) == (off), #type "." #field " at byte " #off)
P2PLAB_LAYOUT(p2plab_desc, src, 0);
P2PLAB_LAYOUT(p2plab_desc, dst, 8);
P2PLAB_LAYOUT(p2plab_desc, len, 16);
P2PLAB_LAYOUT(p2plab_desc, flags, 20);
P2PLAB_LAYOUT(p2plab_desc, status, 24);
P2PLAB_LAYOUT(p2plab_desc, cookie, 28);
_Static_assert(sizeof(struct p2plab_desc) == P2PLAB_DESC_SIZE, "p2plab_desc size");
_Static_assert(P2PLAB_RING_ALIGN % P2PLAB_DESC_SIZE == 0, "ring alignment vs descriptor size");
P2PLAB_LAYOUT(p2plab_atomic_args, operand, 0);
P2PLAB_LAYOUT(p2plab_atomic_args, compare, 8);
P2PLAB_LAYOUT(p2plab_atomic_args, result, 16);
P2PLAB_LAYOUT(p2plab_atomic_args, reserved, 24);
_Static_assert(sizeof(struct p2plab_atomic_args) == P2PLAB_ATOMIC_ARGS_SIZE, "atomic_args size");
P2PLAB_LAYOUT(p2plab_fault, va, 0);
P2PLAB_LAYOUT(p2plab_fault, timestamp, 8);
P2PLAB_LAYOUT(p2plab_fault, desc_index, 16);
P2PLAB_LAYOUT(p2plab_fault, ctx, 20);
P2PLAB_LAYOUT(p2plab_fault, access, 24);
P2PLAB_LAYOUT(p2plab_fault, reason, 28);
_Static_assert(sizeof(struct p2plab_fault) == P2PLAB_FAULT_REC_SIZE, "p2plab_fault size");
_Static_assert(P2PLAB_FAULT_RING_ALIGN % P2PLAB_FAULT_REC_SIZE == 0, "fault ring alignment");
#undef P2PLAB_LAYOUT

#endif /* P2PLAB_HW_H */
