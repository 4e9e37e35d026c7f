/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note OR MIT */
/*
 * p2plab_ioctl.h - user API of /dev/p2plabN (p2plab.ko). Usable from userspace (include after
 * <linux/types.h>, or on its own: it includes it) and from the kernel. docs/kmod.md documents
 * every call and errno.
 *
 * Device memory offsets ("dev_off", "local_off", "peer_off") are byte offsets into BAR2 of the
 * device; every length is in bytes; no alignment is required anywhere (the engine moves bytes).
 * All reserved fields must be zero on input (else EINVAL). Output fields are written back also
 * when the call fails with EIO, ETIMEDOUT or EOPNOTSUPP, so userspace can see why.
 */
#ifndef P2PLAB_IOCTL_H
#define P2PLAB_IOCTL_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define P2PLAB_IOC_MAGIC	0xB2

/* map types, = enum pci_p2pdma_map_type of the running kernel */
#define P2PLAB_MAP_NONE			1	/* not a P2P transfer (system RAM) */
#define P2PLAB_MAP_NOT_SUPPORTED	2	/* P2P refused: would cross a host bridge not allowed */
#define P2PLAB_MAP_BUS_ADDR		3	/* through a PCIe switch, PCI bus addresses */
#define P2PLAB_MAP_THRU_HOST_BRIDGE	4	/* through the root complex, dma_map_phys(DMA_ATTR_MMIO) */

#define P2PLAB_IRQ_NONE		0
#define P2PLAB_IRQ_INTX		1
#define P2PLAB_IRQ_MSI		2
#define P2PLAB_IRQ_MSIX		3

#define P2PLAB_INFO_F_P2PMEM	(1u << 0)	/* p2pmem published */
#define P2PLAB_INFO_F_HMM	(1u << 1)	/* HMM device memory active on the private window */
#define P2PLAB_INFO_F_DEAD	(1u << 2)	/* link down seen; P2PLAB_IOC_RESET to recover */

struct p2plab_info {
	__u32 id;			/* N of /dev/p2plabN */
	__u16 vendor, device;
	__u32 revision, class_code;
	__u32 caps;			/* P2PLAB_REG_CAPS */
	__u32 if_version;		/* P2PLAB_REG_VERSION */
	__u32 irq_mode;			/* P2PLAB_IRQ_* */
	__u32 ring_size;		/* descriptors in the ring */
	__u32 flags;			/* P2PLAB_INFO_F_* */
	__u32 timeout_ms;		/* default DMA timeout */
	__u64 regs_size;		/* BAR0 */
	__u64 mem_size;			/* BAR2 */
	__u64 mem_phys;			/* BAR2 CPU physical address */
	__u64 mem_bus;			/* BAR2 PCI bus address */
	__u64 p2p_size;			/* [0, p2p_size) of BAR2 is p2pmem */
	__u64 priv_off, priv_size;	/* HMM window */
	char pci_name[32];		/* "0000:03:00.0" */
};

/* user memory <-> device memory through the engine */
#define P2PLAB_DIR_TO_DEV	0	/* user buffer -> BAR2[dev_off] */
#define P2PLAB_DIR_FROM_DEV	1	/* BAR2[dev_off] -> user buffer */

#define P2PLAB_RES_IRQ_LOST	(1u << 0)	/* completed, but no interrupt came (seen at timeout) */
#define P2PLAB_RES_RING_ERROR	(1u << 1)	/* engine halted with a ring-level error; was reset */
#define P2PLAB_RES_TIMEOUT	(1u << 2)	/* did not complete in time; engine was reset */
#define P2PLAB_RES_LINK_DOWN	(1u << 3)	/* device stopped answering (all-ones reads) */

/* Common result block */
struct p2plab_result {
	__u32 map_type;		/* P2PLAB_MAP_*: the most remote mapping used (NONE = plain RAM) */
	__s32 distance;		/* pci_p2pdma_distance() of that P2P mapping, -1 if none/refused */
	__u32 err_code;		/* P2PLAB_ERR_* of the first failed descriptor (or ring-level code) */
	__u32 failed_idx;	/* index of that descriptor in the batch, 0xffffffff if none */
	__u32 descs;		/* descriptors submitted */
	__u32 flags;		/* P2PLAB_RES_* */
	__u64 ns;		/* time spent in the engine (submit to completion) */
};

struct p2plab_dma {
	__u64 uaddr;		/* user buffer: anonymous/file memory or an mmap of a p2pmem/allocate */
	__u64 dev_off;		/* offset in BAR2 */
	__u64 len;		/* 1 .. P2PLAB_DMA_MAX_LEN */
	__u32 dir;		/* P2PLAB_DIR_* */
	__u32 timeout_ms;	/* 0: module default; max P2PLAB_TIMEOUT_MAX_MS */
	__u32 flags;		/* reserved, 0 */
	__u32 reserved;
	struct p2plab_result res;	/* out */
};
#define P2PLAB_DMA_MAX_LEN	(256ull << 20)
#define P2PLAB_TIMEOUT_MAX_MS	600000u

/* this device's BAR2 <-> another p2plab device's BAR2, this device's engine does the DMA */
#define P2PLAB_PEER_TO		0	/* BAR2[local_off] -> peer BAR2[peer_off] */
#define P2PLAB_PEER_FROM	1	/* peer BAR2[peer_off] -> BAR2[local_off] */
struct p2plab_peer_copy {
	__u32 peer_id;		/* N of the peer /dev/p2plabN, != own id */
	__u32 dir;		/* P2PLAB_PEER_* */
	__u64 local_off;
	__u64 peer_off;		/* must lie in the peer's p2pmem window [0, p2p_size) */
	__u64 len;		/* 1 .. P2PLAB_DMA_MAX_LEN */
	__u32 timeout_ms;
	__u32 reserved;
	struct p2plab_result res;	/* out, also on EOPNOTSUPP (map_type NOT_SUPPORTED) */
};

/* what the kernel decides for this device (client) reaching a peer's BAR2 (provider) */
struct p2plab_p2p_query {
	__u32 peer_id;
	__u32 map_type;		/* out: P2PLAB_MAP_* */
	__s32 distance;		/* out: pci_p2pdma_distance(), -1 = not supported */
	__u32 reserved;
	__u64 bus_offset;	/* out: provider bus_offset (bus address - CPU physical address) */
};

/* copy inside own BAR2 with the engine */
#define P2PLAB_LOCAL_F_NOCHECK	(1u << 0)	/* CAP_SYS_ADMIN: skip the driver's range checks so
						 * the device's own checks (SRC/DST_RANGE) are tested */
struct p2plab_local_copy {
	__u64 src_off, dst_off, len;
	__u32 flags;		/* P2PLAB_LOCAL_F_* */
	__u32 timeout_ms;
	struct p2plab_result res;	/* out */
};

struct p2plab_stats {		/* cumulative since probe */
	__u64 batches, descs, bytes, desc_errors, ring_errors, timeouts, resets, link_down;
	__u64 irq_done, irq_error, irq_lost, p2p_bus, p2p_host_bridge, p2p_refused;
	__u32 hw_completed;	/* P2PLAB_REG_COMPLETED */
	__u32 hw_status;	/* P2PLAB_REG_STATUS (0xffffffff: link down) */
};

#define P2PLAB_IOC_INFO		_IOR(P2PLAB_IOC_MAGIC, 0x00, struct p2plab_info)
#define P2PLAB_IOC_DMA		_IOWR(P2PLAB_IOC_MAGIC, 0x01, struct p2plab_dma)
#define P2PLAB_IOC_PEER_COPY	_IOWR(P2PLAB_IOC_MAGIC, 0x02, struct p2plab_peer_copy)
#define P2PLAB_IOC_P2P_QUERY	_IOWR(P2PLAB_IOC_MAGIC, 0x03, struct p2plab_p2p_query)
#define P2PLAB_IOC_LOCAL_COPY	_IOWR(P2PLAB_IOC_MAGIC, 0x04, struct p2plab_local_copy)
#define P2PLAB_IOC_STATS	_IOR(P2PLAB_IOC_MAGIC, 0x05, struct p2plab_stats)
#define P2PLAB_IOC_RESET	_IO(P2PLAB_IOC_MAGIC, 0x06)	/* reset + re-program the engine */

/*
 * An extension of the dmirror uAPI (lib/test_hmm_uapi.h), on /dev/hmm_dmirrorN (p2plab.dmirror=1),
 * same argument (struct hmm_dmirror_cmd, 5 x __u64): fault exactly the pages asked for, with
 * per-page request flags (hmm_range_fault() with pfn_flags_mask = REQ_FAULT | REQ_WRITE and
 * default_flags = 0).
 *   in:  addr (page aligned), npages (1..P2PLAB_DMIRROR_SPARSE_MAX), ptr -> npages bytes of
 *        P2PLAB_DMIRROR_REQ_*
 *   out: ptr <- npages bytes of HMM_DMIRROR_PROT_* (a snapshot after the faults), cpages = valid
 *        pages, faults = hmm_range_fault() attempts that had to be retried (-EBUSY)
 * Errors: EINVAL (npages, a request byte > 2), EFAULT (a requested page cannot be faulted: no VMA,
 * no permission), EBUSY (kept being invalidated for HMM_RANGE_DEFAULT_TIMEOUT).
 */
#define P2PLAB_DMIRROR_REQ_NONE		0	/* report the page, do not fault it */
#define P2PLAB_DMIRROR_REQ_READ		1	/* HMM_PFN_REQ_FAULT */
#define P2PLAB_DMIRROR_REQ_WRITE	2	/* HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE */
#define P2PLAB_DMIRROR_SPARSE_MAX	512
#define P2PLAB_DMIRROR_FAULT_SPARSE	_IOC(_IOC_READ | _IOC_WRITE, 'H', 0x40, 5 * sizeof(__u64))

/*
 * read()/write()/pread()/pwrite() on /dev/p2plabN access BAR2 with the CPU (uncached MMIO),
 * independently of the engine: the file offset is the BAR2 offset. lseek() works (SEEK_END =
 * BAR2 size). Reads/writes past the end return 0 / ENOSPC.
 */

/*
 * dma-buf import (kmod/p2plab_dmabuf.c, docs/vfio-dmabuf.md): this device's engine as a dynamic
 * dma-buf importer (dma_buf_dynamic_attach, allow_peer2peer, invalidate_mappings), e.g. of a
 * slice of another device's BAR exported by vfio-pci (VFIO_DEVICE_FEATURE_DMA_BUF). The kernel
 * maps the attachment (dma_buf_map_attachment); the engine is programmed with what it returns.
 *
 * P2PLAB_IOC_DMABUF_IMPORT: attach; returns an import fd (close it to unmap and detach).
 *   Errors: EBADF/EINVAL not a dma-buf; EINVAL flags/reserved; whatever the exporter's attach
 *   returns (vfio: ENODEV revoked, EOPNOTSUPP); ENODEV device removed.
 */
struct p2plab_dmabuf_import {
	__s32 dmabuf_fd;	/* in */
	__u32 flags;		/* in: 0 */
	__s32 import_fd;	/* out: O_CLOEXEC */
	__u32 reserved;
	__u64 size;		/* out: dma-buf size */
};

/*
 * P2PLAB_IOC_DMABUF_COPY: this device's BAR2 <-> [buf_off, buf_off + len) of an import made on
 * this device, in batches of `chunk` bytes; the mapping is made (or made again after an
 * invalidation) under the dma-buf's reservation lock before a batch is posted. An invalidation
 * (the exporter revoking or moving the buffer) waits for the batch in flight, unmaps, and the copy
 * stops there: ECANCELED with `done` = bytes copied. The next copy maps again: the exporter's
 * answer (vfio: ENODEV while revoked) comes back as is, with res.map_type NOT_SUPPORTED and
 * map_err set.
 * Errors: EINVAL (len 0, dir, chunk below P2PLAB_DMABUF_CHUNK_MIN, timeout); E2BIG len >
 * P2PLAB_DMA_MAX_LEN; EINTR (fatal signal between batches);
 * ERANGE (local or buffer range); EBADF/EINVAL import_fd not an import of this device;
 * ECANCELED; the map error; EIO/ETIMEDOUT/ENODEV as P2PLAB_IOC_DMA. The struct is copied back on
 * every error but EFAULT/EBADF.
 */
#define P2PLAB_DMABUF_TO	0	/* BAR2[local_off] -> dma-buf[buf_off] */
#define P2PLAB_DMABUF_FROM	1	/* dma-buf[buf_off] -> BAR2[local_off] */
#define P2PLAB_DMABUF_CHUNK_DEFAULT	(4u << 20)
#define P2PLAB_DMABUF_CHUNK_MIN		4096u
struct p2plab_dmabuf_copy {
	__s32 import_fd;
	__u32 dir;		/* P2PLAB_DMABUF_* */
	__u64 local_off;
	__u64 buf_off;
	__u64 len;		/* 1 .. P2PLAB_DMA_MAX_LEN */
	__u32 chunk;		/* bytes per engine batch (>= P2PLAB_DMABUF_CHUNK_MIN), 0: default */
	__u32 timeout_ms;	/* per batch, 0: module default */
	__u64 done;		/* out: bytes copied */
	__u64 dma_addr;		/* out: DMA address the kernel gave for buf_off */
	__u32 nsegs;		/* out: DMA segments of the mapping (sg_table nents) */
	__s32 map_err;		/* out: dma_buf_map_attachment() error, 0 if mapped */
	struct p2plab_result res;	/* out: ns, descs, err_code ...; map_type NOT_SUPPORTED if
					 * the mapping failed, else NONE (see docs) */
};

/* P2PLAB_IOC_DMABUF_STATUS: counters of an import (argument: import_fd in, rest out) */
#define P2PLAB_DMABUF_F_MAPPED	(1u << 0)	/* a mapping is cached */
#define P2PLAB_DMABUF_F_DEAD	(1u << 1)	/* this device was removed: detached */
#define P2PLAB_DMABUF_F_INFLIGHT	(1u << 2)	/* a batch is on the engine now */
struct p2plab_dmabuf_status {
	__s32 import_fd;
	__u32 flags;		/* P2PLAB_DMABUF_F_* */
	__u64 size;
	__u64 invalidations;	/* invalidate_mappings() calls */
	__u64 maps, unmaps;	/* dma_buf_map_attachment() successes, unmaps */
	__u64 map_errors;	/* dma_buf_map_attachment() failures */
	__u64 bytes;		/* bytes copied through this import */
	__u64 cancelled;	/* copies stopped by an invalidation */
	__u64 dma_addr;		/* first DMA address of the current mapping, 0 if none */
	__u32 nsegs;		/* segments of the current mapping */
	__u32 reserved;
};

#define P2PLAB_IOC_DMABUF_IMPORT	_IOWR(P2PLAB_IOC_MAGIC, 0x10, struct p2plab_dmabuf_import)
#define P2PLAB_IOC_DMABUF_COPY		_IOWR(P2PLAB_IOC_MAGIC, 0x11, struct p2plab_dmabuf_copy)
#define P2PLAB_IOC_DMABUF_STATUS	_IOWR(P2PLAB_IOC_MAGIC, 0x12, struct p2plab_dmabuf_status)

/*
 * SVM: the device works on the calling process's memory by virtual address, through its MMU
 * (docs/device.md §15), page faults resolved by the kernel's HMM (kmod/p2plab_svm*.c, docs/svm.md).
 * One device context per open file of /dev/p2plabN, bound to the mm of the process that binds it
 * (as SVA drivers do): a child after fork() is not bound (its calls on the inherited fd get EPERM).
 * The backend (module parameter svm_backend: "odp" = hmm_range_fault + hmm_dma_map_*, as RDMA
 * ODP; "gpusvm" = drm_gpusvm) is reported by BIND and STATS.
 *
 * P2PLAB_IOC_SVM_BIND: allocate a context for this fd and bind current->mm to it.
 *   Errors: EOPNOTSUPP (device without MMU, backend not available), EBUSY (fd already bound),
 *   ENOSPC (all P2PLAB_MMU_CONTEXTS in use), EINVAL (flags/reserved), ENOMEM.
 * P2PLAB_IOC_SVM_UNBIND: release the context (also done by close()). ENOENT if not bound.
 * P2PLAB_IOC_SVM_COPY: one copy, VA -> VA, VA -> device memory (BAR2 offset), device memory -> VA;
 *   the device faults on first touch, the driver resolves the fault and replays. Waits for the
 *   result (timeout_ms, 0 = module default, at most P2PLAB_TIMEOUT_MAX_MS).
 *   Errors: EFAULT (the device touched a VA the process cannot access that way: no VMA, write to a
 *   read-only mapping, PROT_NONE, unmapped meanwhile; fault_va = the faulting address,
 *   fault_access = P2PLAB_FAULT_ACC_*), ETIMEDOUT, EIO (other device error, err_code), EINVAL,
 *   ERANGE (device-memory range outside the user window), EPERM (not the bound process), ENOENT
 *   (not bound). The struct is copied back on every error but the first EFAULT of copy_from_user.
 * P2PLAB_IOC_SVM_ATOMIC: one device atomic (FETCH_ADD / CMPXCHG, 4 or 8 bytes, va aligned to size)
 *   on process memory; the driver takes the page with make_device_exclusive(). Errors as COPY.
 * P2PLAB_IOC_SVM_STATS: counters of this context, and the last P2PLAB_SVM_LAT_SAMPLES faults it took
 *   (oldest first): device timestamp, record-read -> replay and interrupt -> replay times.
 */
#define P2PLAB_SVM_BACKEND_ODP		1
#define P2PLAB_SVM_BACKEND_GPUSVM	2

struct p2plab_svm_bind {
	__u32 flags;		/* in: 0 */
	__u32 ctx;		/* out: device MMU context 0..15 */
	__u32 backend;		/* out: P2PLAB_SVM_BACKEND_* */
	__u32 mmu_caps;		/* out: P2PLAB_REG_MMU_CAPS */
	__u32 tlb_entries;	/* out: P2PLAB_REG_MMU_TLB_SIZE */
	__u32 reserved;
};

#define P2PLAB_SVM_SRC_VA	(1u << 0)	/* src is a VA of the bound process */
#define P2PLAB_SVM_SRC_LOCAL	(1u << 1)	/* src is a BAR2 offset */
#define P2PLAB_SVM_DST_VA	(1u << 2)
#define P2PLAB_SVM_DST_LOCAL	(1u << 3)

struct p2plab_svm_copy {
	__u64 src, dst;		/* VA or BAR2 offset, per flags (one side at least is a VA) */
	__u64 len;		/* 1 .. P2PLAB_DMA_MAX_LEN */
	__u32 flags;		/* P2PLAB_SVM_* : exactly one of VA/LOCAL per side */
	__u32 timeout_ms;
	__u64 fault_va;		/* out (EFAULT): the address the device could not access */
	__u32 fault_access;	/* out (EFAULT): P2PLAB_FAULT_ACC_* */
	__u32 err_code;		/* out: P2PLAB_ERR_* of the failed descriptor, 0 */
	__u64 ns;		/* out: submit to completion */
	__u32 faults;		/* out: faults this context took during the call */
	__u32 reserved;
};

#define P2PLAB_SVM_OP_FETCH_ADD	1	/* = P2PLAB_OP_FETCH_ADD */
#define P2PLAB_SVM_OP_CMPXCHG	2	/* = P2PLAB_OP_CMPXCHG */
struct p2plab_svm_atomic {
	__u64 va;		/* aligned to size */
	__u64 operand;		/* FETCH_ADD addend, CMPXCHG new value */
	__u64 compare;		/* CMPXCHG expected value */
	__u64 result;		/* out: the old value */
	__u32 op;		/* P2PLAB_SVM_OP_* */
	__u32 size;		/* 4 or 8 */
	__u32 timeout_ms;
	__u32 err_code;		/* out */
	__u64 fault_va;		/* out (EFAULT) */
	__u32 fault_access;	/* out (EFAULT) */
	__u32 reserved;
};

#define P2PLAB_SVM_LAT_SAMPLES	64
struct p2plab_svm_fault_sample {
	__u64 va;
	__u64 dev_ts;		/* the record's timestamp (device clock, ns) */
	__u32 handle_ns;	/* record read by the driver -> replay/cancel written */
	__u32 irq_ns;		/* the fault interrupt -> replay/cancel written (capped at 4 s) */
	__u32 resume_ns;	/* the context's previous replay -> this fault's interrupt: the
				 * device's side (resume, run, next fault, record, MSI-X), 0 if none */
	__u32 reserved;
};
struct p2plab_svm_stats {
	__u32 ctx, backend;
	__u64 faults;		/* fault records handled for this context */
	__u64 replays, cancels;	/* FAULT_RESP replays / cancels written */
	__u64 fault_pages;	/* pages hmm_range_fault() resolved for faults */
	__u64 pte_4k, pte_2m;	/* leaves written */
	__u64 invalidations;	/* device TLB invalidations waited for */
	__u64 inv_timeouts;	/* ... that did not complete in time */
	__u64 notifier_calls;	/* mmu_interval_notifier invalidate callbacks that cleared PTEs */
	__u64 dma_maps, dma_unmaps;	/* hmm_dma_map_pfn() new mappings / hmm_dma_unmap_pfn() */
	__u64 exclusive;	/* pages taken with make_device_exclusive() */
	__u64 retries;		/* hmm_range_fault -EBUSY / mmu_interval_read_retry() retries */
	__u64 ranges;		/* interval notifiers (2 MiB ranges) of the context */
	__u32 hw_parked;	/* P2PLAB_REG_MMU_PARKED (whole device) */
	__u32 hw_stalled;	/* P2PLAB_REG_MMU_STALLED (whole device) */
	__u32 nlat;		/* valid entries of lat */
	__u32 replay_retries;	/* (whole device) replays sent again for descriptors still parked
				 * after their faults were answered (a lost replay) */
	struct p2plab_svm_fault_sample lat[P2PLAB_SVM_LAT_SAMPLES];	/* oldest first */
};

/*
 * Asynchronous submission (docs/svm.md "Submit and wait"):
 * P2PLAB_IOC_SVM_SUBMIT: queue one copy (the in-fields of copy: src, dst, len, flags, timeout_ms =
 *   the bound of its run on the device, as SVM_COPY) and return at once with seq, the submission's
 *   fence: 1, 2, 3 ... per context. The submissions of a context run in order, one at a time; at
 *   most P2PLAB_SVM_MAX_INFLIGHT of them are submitted and not yet reaped by SVM_WAIT.
 *   Errors: EINVAL / ERANGE (the copy's arguments, checked here), EAGAIN (too many not reaped),
 *   ENOENT, EPERM, ENODEV as COPY.
 * P2PLAB_IOC_SVM_WAIT: wait at most timeout_ms (0: only look) for submission seq and reap it.
 *   The call returns the copy's own result: 0, or its errno (EFAULT with copy.fault_va /
 *   fault_access, ETIMEDOUT, EIO + err_code, ENODEV ...), status = the same as -errno, copy = the
 *   submission with its out-fields. ETIME: not complete in time (still in flight: wait again);
 *   ENOENT: no such submission (not submitted, or already reaped); ECANCELED: the context was
 *   unbound while it was queued (unbind / close do not wait for queued submissions; the one
 *   running completes, its faults cancelled); EINTR on a signal (nothing reaped).
 *   The struct is copied back on every error but EFAULT of copy_from_user.
 */
#define P2PLAB_SVM_MAX_INFLIGHT		64
struct p2plab_svm_submit {
	struct p2plab_svm_copy copy;	/* in: src, dst, len, flags, timeout_ms; out-fields 0 */
	__u64 seq;		/* out: the submission's fence */
	__u32 flags;		/* in: 0 */
	__u32 reserved;
};

struct p2plab_svm_wait {
	__u64 seq;		/* in */
	__u32 timeout_ms;	/* in: 0 = do not sleep; at most P2PLAB_TIMEOUT_MAX_MS */
	__u32 flags;		/* in: 0 */
	__s32 status;		/* out: 0 or -errno of the copy (when it completed) */
	__u32 inflight;		/* out: the context's submissions not yet reaped, after this call */
	struct p2plab_svm_copy copy;	/* out: the submitted copy with its results */
};

/*
 * Placement (docs/svm.md "Placement"): P2PLAB_IOC_SVM_PLACE sets the policy of [start, start + len)
 * (page aligned) for this context: SYSTEM (default: pages stay where they are, device-private pages
 * come back to RAM before the device maps them) or PREFER_DEVICE (a device fault migrates the
 * fault's range into this device's private memory, the device maps it as LOCAL leaves; a CPU touch
 * migrates it back; a range does not migrate again to the device within min_residency_ms of its
 * last migration to the device: ping-pong guard). At most P2PLAB_SVM_MAX_POLICIES ranges per
 * context; a new range replaces the overlapped parts of older ones.
 * Errors: EINVAL (alignment, len 0, policy, flags/reserved), ENOSPC (too many ranges),
 * EOPNOTSUPP (no device-private memory: p2plab HMM off), ENOENT / EPERM as COPY.
 */
#define P2PLAB_SVM_PLACE_SYSTEM		0
#define P2PLAB_SVM_PLACE_PREFER_DEVICE	1
#define P2PLAB_SVM_MAX_POLICIES		16
struct p2plab_svm_place {
	__u64 start, len;	/* in: page aligned */
	__u32 policy;		/* in: P2PLAB_SVM_PLACE_* */
	__u32 min_residency_ms;	/* in: ping-pong guard, 0 = module default (svm_min_residency_ms) */
	__u32 flags;		/* in: 0 */
	__u32 reserved;
	/* out, this context's placement counters so far */
	__u64 to_dev_pages;	/* pages migrated into device memory by device faults */
	__u64 to_dev_migrations;	/* migrations to the device (ranges) */
	__u64 guarded;		/* device faults that did not migrate: within the residency */
	__u64 local_leaves;	/* device PTEs written as LOCAL (device-private pages) */
};

#define P2PLAB_IOC_SVM_BIND	_IOWR(P2PLAB_IOC_MAGIC, 0x20, struct p2plab_svm_bind)
#define P2PLAB_IOC_SVM_UNBIND	_IO(P2PLAB_IOC_MAGIC, 0x21)
#define P2PLAB_IOC_SVM_COPY	_IOWR(P2PLAB_IOC_MAGIC, 0x22, struct p2plab_svm_copy)
#define P2PLAB_IOC_SVM_ATOMIC	_IOWR(P2PLAB_IOC_MAGIC, 0x23, struct p2plab_svm_atomic)
#define P2PLAB_IOC_SVM_STATS	_IOR(P2PLAB_IOC_MAGIC, 0x24, struct p2plab_svm_stats)
#define P2PLAB_IOC_SVM_SUBMIT	_IOWR(P2PLAB_IOC_MAGIC, 0x25, struct p2plab_svm_submit)
#define P2PLAB_IOC_SVM_WAIT	_IOWR(P2PLAB_IOC_MAGIC, 0x26, struct p2plab_svm_wait)
#define P2PLAB_IOC_SVM_PLACE	_IOWR(P2PLAB_IOC_MAGIC, 0x27, struct p2plab_svm_place)

#endif /* P2PLAB_IOCTL_H */
