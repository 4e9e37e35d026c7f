/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p2plab.h - internal API of p2plab.ko, shared by the core (probe, DMA engine, P2PDMA provider,
 * character device) and the HMM side (p2plab_hmm.c, p2plab_dmirror.c).
 *
 * Locking: p2plab_devs_lock (core) protects the device list; pd->dma_lock serialises posting on the
 * DMA ring and every batch from its doorbell to its completion, except single-descriptor SVM (VA)
 * submissions, which post under dma_lock and wait without it (their slot stays owned in
 * pd->ring_owned, pd->ring_lock, until the waiter has read its status or an engine reset);
 * pd->active (rwsem) is held for read by every character-device operation and peer use of the
 * device, and for write by remove() when it marks the device as going away.
 */
#ifndef P2PLAB_H
#define P2PLAB_H

#include <linux/types.h>
#include <linux/pci.h>
#include <linux/kref.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/wait.h>
#include <linux/miscdevice.h>
#include <linux/pci-p2pdma.h>
#include <linux/scatterlist.h>
#include <linux/dma-mapping.h>
#include "p2plab_hw.h"

#define P2PLAB_DRV_NAME		"p2plab"

struct p2plab_svm;

struct p2plab_counters {
	u64 batches;		/* p2plab_dma_run() calls */
	u64 descs;		/* descriptors submitted */
	u64 bytes;		/* bytes of successfully completed descriptors */
	u64 desc_errors;	/* descriptors that completed with a P2PLAB_ERR_* status */
	u64 ring_errors;	/* engine halts (ring-level errors) */
	u64 timeouts;		/* batches that did not complete in time */
	u64 resets;		/* engine resets (CTRL.RESET) */
	u64 link_down;		/* all-ones MMIO reads seen */
	u64 irq_done;		/* VEC_DONE interrupts */
	u64 irq_error;		/* VEC_ERROR interrupts */
	u64 irq_lost;		/* batches found complete only after the wait timed out */
	u64 ring_skips;		/* ring slots passed over: still owned by a parked descriptor */
	u64 p2p_bus;		/* P2P transfers mapped with PCI bus addresses */
	u64 p2p_host_bridge;	/* P2P transfers the DMA core mapped through the host bridge */
	u64 p2p_refused;	/* P2P transfers refused: PCI_P2PDMA_MAP_NOT_SUPPORTED */
};

struct p2plab_dev {			/* one per PCI function */
	struct pci_dev *pdev;
	int id;				/* p2plab0, p2plab1 ... */
	void __iomem *regs;		/* BAR0 */
	phys_addr_t mem_phys;		/* BAR2 CPU physical start */
	resource_size_t mem_size;	/* BAR2 size */
	resource_size_t p2p_size;	/* first p2p_size bytes of BAR2 published as p2pmem */
	resource_size_t priv_off, priv_size;	/* rest of BAR2, for HMM device memory */
	resource_size_t svm_dm_off, svm_dm_size;	/* its end: gpusvm's drm_pagemap memory */
	void *hmm;			/* owned by p2plab_hmm.c */
	struct p2plab_svm *svm;		/* owned by p2plab_svm.c; NULL: no device MMU */

	/* --- core private --- */
	struct kref ref;
	struct list_head node;		/* p2plab_devs */
	struct rw_semaphore active;	/* see header comment */
	bool removing;			/* remove() started: new users get -ENODEV, user
					 * DMA in flight aborts (set before the cdev goes) */
	void __iomem *mem;		/* BAR2, uncached CPU mapping (pread/pwrite) */
	struct p2pdma_provider *provider;	/* BAR2 P2PDMA provider, NULL if p2p_size == 0 */
	bool p2pmem_published;
	u32 caps, if_version, ring_max;

	struct mutex dma_lock;		/* serialises posting and locked batches */
	struct p2plab_desc *ring;	/* coherent */
	dma_addr_t ring_dma;
	u32 ring_size;			/* entries, power of two */
	u32 tail;			/* driver copy of RING_TAIL (dma_lock) */
	/* slots posted by unlocked (SVM) submissions whose waiters have not read them yet */
	spinlock_t ring_lock;		/* ring_gen, ring_owned, ring_nowned */
	u32 ring_gen;			/* bumped by every engine reset (dma_lock held too) */
	unsigned long *ring_owned;	/* bitmap, ring_size bits */
	unsigned int ring_nowned;	/* bits set in ring_owned */
	u32 cookie;
	bool dead;			/* link down / surprise removed: MMIO reads all-ones */
	wait_queue_head_t wq;		/* woken by interrupts */
	atomic_t irq_seq;		/* interrupts taken */
	int irq_mode;			/* P2PLAB_IRQ_* (p2plab_ioctl.h) */
	int nvec;

	struct p2plab_counters cnt;	/* updated under dma_lock (p2p_* under active) */
	spinlock_t cnt_lock;

	struct miscdevice misc;
	char name[16];			/* "p2plabN" */
	struct dentry *dbg;
};

struct p2plab_xfer {
	u64 src;			/* bus address, or device-memory offset if SRC_LOCAL */
	u64 dst;			/* bus address, or device-memory offset if DST_LOCAL */
	u32 len;			/* 1..P2PLAB_DESC_MAX_LEN */
	u32 flags;			/* P2PLAB_DESC_F_SRC_LOCAL / _DST_LOCAL */
};

/*
 * Submit n descriptors as one batch on the device's ring (splitting over the ring size as
 * needed), sleep until all complete or timeout_ms expires (0: module default). Returns 0, -EIO if
 * any descriptor failed (first failing index in *failed_idx if non-NULL, its P2PLAB_ERR_* in
 * *err_code if non-NULL), -ETIMEDOUT (the engine is reset), -ENODEV (link down / removed: MMIO
 * reads all-ones; if that happens with work posted the call waits up to the timeout for the
 * link to return and then aborts the work with an engine reset; p2plab_dma_run_info() reports
 * the rare case where it did not return as info->stuck), -EINVAL (n == 0, len 0 or
 * > P2PLAB_DESC_MAX_LEN, unknown flags).
 * Safe to call concurrently (serialises on pd->dma_lock). A batch may also wait (up to its
 * timeout) for ring slots still owned by SVM descriptors parked on device-MMU faults, and its
 * timeout's engine reset aborts those (their submitters get -EIO). May sleep.
 */
int p2plab_dma_run(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
		   unsigned int timeout_ms, unsigned int *failed_idx, u32 *err_code);

/* Result details for callers that want them (the character device). */
struct p2plab_run_info {
	unsigned int failed_idx;	/* first failing descriptor, ~0U if none */
	u32 err_code;			/* its P2PLAB_ERR_* (or ring-level code) */
	bool irq_lost;			/* completed, but only noticed after the timeout */
	bool ring_error;		/* the engine halted (ring-level error) and was reset */
	bool stuck;			/* -ENODEV: the link went down with work posted and did
					 * not come back in time; if it ever does the device
					 * resumes that work: the buffers must not be freed */
};
int p2plab_dma_run_info(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
			unsigned int timeout_ms, struct p2plab_run_info *info);
/*
 * The same for userspace requests (the character device): also gives up with -ENODEV, without
 * waiting for the timeout, as soon as pd or @peer (the other device of a peer copy, may be NULL)
 * is being removed; work already posted is aborted with an engine reset first (info->stuck if
 * the device does not answer). remove() wakes every waiter when it starts.
 * One descriptor with a VA side (an SVM submission, p2plab_svm.c) is posted under dma_lock and
 * waited for without it: while the device keeps it parked on a fault, other users run. It gets
 * -EIO with P2PLAB_ERR_ABORTED if an engine reset (someone else's timeout, halt, P2PLAB_IOC_RESET)
 * takes its slot.
 */
int p2plab_dma_run_user(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
			unsigned int timeout_ms, struct p2plab_dev *peer,
			struct p2plab_run_info *info);

struct p2plab_dev *p2plab_get_by_id(int id);	/* +ref; NULL if no such device */
void p2plab_put(struct p2plab_dev *pd);

/* Reset and re-program the engine (dma_lock held). Clears pd->dead if the device answers. */
int p2plab_engine_reset(struct p2plab_dev *pd);

/*
 * p2plab_p2p.c: DMA mapping of page lists, P2P pages included, by the DMA core's P2P-aware
 * dma_map_sgtable(): the kernel decides the P2P map type, the result reports it.
 */
struct p2plab_sgmap {
	struct sg_table sgt;		/* DMA segments: for_each_sgtable_dma_sg() */
	enum pci_p2pdma_map_type type;	/* NONE (no P2P page), BUS_ADDR, THRU_HOST_BRIDGE,
					 * or NOT_SUPPORTED (mapping refused) */
	int distance;			/* pci_p2pdma_distance() of a P2P mapping, else -1 */
	enum dma_data_direction dir;
	bool mapped;
};
/* Map @len bytes at @offset of @pages for @client. 0, -EOPNOTSUPP (P2P refused), -ENOMEM... */
int p2plab_map_pages(struct p2plab_dev *client, struct page **pages, unsigned int npages,
		     unsigned int offset, size_t len, enum dma_data_direction dir,
		     struct p2plab_sgmap *m);
/* The same for [off, off + len) of @peer's p2pmem window. -EOPNOTSUPP if not p2pmem. */
int p2plab_map_peer(struct p2plab_dev *client, struct p2plab_dev *peer, u64 off, size_t len,
		    enum dma_data_direction dir, struct p2plab_sgmap *m);
void p2plab_unmap_pages(struct p2plab_dev *client, struct p2plab_sgmap *m);
/* The kernel's verdict for @client reaching @peer's p2pmem (a one-page trial mapping). */
enum pci_p2pdma_map_type p2plab_p2p_query(struct p2plab_dev *client, struct p2plab_dev *peer,
					  int *distance);
enum pci_p2pdma_map_type p2plab_map_type_worst(enum pci_p2pdma_map_type a,
					       enum pci_p2pdma_map_type b);
const char *p2plab_map_type_name(enum pci_p2pdma_map_type t);

/* p2plab_cdev.c */
int p2plab_cdev_register(struct p2plab_dev *pd);
void p2plab_cdev_unregister(struct p2plab_dev *pd);
struct p2plab_result;
/* fill the uAPI result block from a p2plab_dma_run_user() outcome */
void p2plab_fill_result(struct p2plab_result *res, int ret, const struct p2plab_run_info *info,
			u64 ns);

/* p2plab_dmabuf.c: the engine as a dynamic dma-buf importer (P2PLAB_IOC_DMABUF_*) */
long p2plab_dmabuf_ioctl(struct p2plab_dev *pd, unsigned int cmd, void __user *up);
void p2plab_dmabuf_remove(struct p2plab_dev *pd);	/* from remove(): unmap + detach */

extern unsigned int p2plab_timeout_ms;

#define p2plab_cnt_add(pd, field, v) do {			\
	unsigned long __f;					\
	spin_lock_irqsave(&(pd)->cnt_lock, __f);		\
	(pd)->cnt.field += (v);					\
	spin_unlock_irqrestore(&(pd)->cnt_lock, __f);		\
} while (0)

#endif /* P2PLAB_H */
