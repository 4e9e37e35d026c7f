/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p2plab_svm.h - SVM internals shared by the core (p2plab_svm.c: contexts, device page tables,
 * TLB invalidation, fault ring, replay/cancel, uAPI) and its backends (p2plab_svm_odp.c: the
 * kernel's hmm_range_fault() + hmm_dma_map_*, as RDMA ODP). docs/svm.md.
 *
 * Locking:
 *   svm->lock (spinlock)   ctx slots (svm->ctx[]), the fault worker's lookup
 *   ctx->lock (mutex)      the device page tables of the context AND the backend's mirror state
 *                          (pfn lists): the "driver lock" of the mmu_interval_read_retry() pattern;
 *                          taken by the invalidate callback (trylock when not blockable)
 *   svm->inv_lock (spin)   the invalidation register group INV_CTX..INV_CMD + INV_ISSUED read
 *   pd->dma_lock           the ring (core); never taken by fault handling or invalidation; an SVM
 *                          submission holds it only to post its descriptor, not while it is
 *                          parked on a fault (p2plab_dma_run_unlocked(), docs/svm.md "One ring")
 */
#ifndef P2PLAB_SVM_H
#define P2PLAB_SVM_H

#include <linux/mm_types.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/xarray.h>
#include "p2plab.h"
#include "p2plab_ioctl.h"

struct seq_file;
struct drm_device;
struct p2plab_svm_dm;

struct p2plab_svm_ctx;
struct p2plab_svm;

struct p2plab_svm_pt {			/* one 4 KiB device page table */
	__le64 *e;			/* coherent, 512 entries */
	dma_addr_t dma;
	struct p2plab_svm_pt *child[512];	/* software shadow of table pointers */
};

struct p2plab_svm_backend {
	const char *name;
	u32 id;				/* P2PLAB_SVM_BACKEND_* */
	/* optional: per device (probe / remove), may set svm->be_priv */
	int (*dev_init)(struct p2plab_svm *svm);
	void (*dev_fini)(struct p2plab_svm *svm);
	int (*ctx_init)(struct p2plab_svm_ctx *ctx);
	/* after the context is disabled in the device and its TLB invalidated */
	void (*ctx_fini)(struct p2plab_svm_ctx *ctx);
	/*
	 * Resolve a device fault at @va for @access (P2PLAB_FAULT_ACC_*) in process context: make
	 * the pages present with the kernel's helpers and write the device PTEs (core helpers,
	 * ctx->lock). 0: replay; < 0: cancel (-EFAULT / -EPERM: the process cannot access @va).
	 */
	int (*fault)(struct p2plab_svm_ctx *ctx, u64 va, u32 access);
	/*
	 * optional, placement in device memory of the backend's own (gpusvm: drm_pagemap):
	 * can_place: PREFER_DEVICE is possible; place: migrate [start, end) (one anonymous VMA)
	 * into it, no lock held: pages migrated / -errno; dbg_show: debugfs lines of the device
	 */
	bool (*can_place)(struct p2plab_svm_ctx *ctx);
	long (*place)(struct p2plab_svm_ctx *ctx, unsigned long start, unsigned long end);
	void (*dbg_show)(struct p2plab_svm *svm, struct seq_file *m);
};

/* one asynchronous submission (P2PLAB_IOC_SVM_SUBMIT), on ctx->jobs until reaped */
struct p2plab_svm_job {
	struct list_head node;
	u64 seq;
	struct p2plab_svm_copy c;	/* in + out fields */
	int status;			/* valid once done */
	bool running, done;
};

/* a placement range (P2PLAB_IOC_SVM_PLACE) */
struct p2plab_svm_policy {
	u64 start, end;
	u32 policy;			/* P2PLAB_SVM_PLACE_* */
	u32 residency_ms;		/* ping-pong guard */
};

struct p2plab_svm_ctx {
	struct p2plab_dev *pd;
	struct p2plab_svm *svm;
	struct file *file;		/* the open file owning the context */
	struct mm_struct *mm;		/* mmgrab()ed at bind */
	u32 id;				/* device context 0..15 */
	const struct p2plab_svm_backend *be;
	void *be_priv;

	struct mutex lock;		/* page tables + backend mirror, see header */
	struct p2plab_svm_pt *root;
	unsigned long ntables;
	struct p2plab_svm_pt *pool[8];	/* spare tables for PTE writes under ctx->lock */
	unsigned int npool;

	struct mutex submit_lock;	/* one submission at a time per context */
	atomic_t users;			/* ioctls using the context (svm_ctx_get) */
	void *args;			/* atomic argument block (coherent, 32 bytes used) */
	dma_addr_t args_dma;

	/* asynchronous submissions: ctx->jobs in seq order, run by sub_work one at a time */
	spinlock_t job_lock;		/* jobs, njobs, next_seq, closing */
	struct list_head jobs;
	unsigned int njobs;		/* submitted and not yet reaped */
	u64 next_seq;
	bool closing;			/* unbind started: nothing new, queued jobs cancelled */
	wait_queue_head_t job_wq;	/* SVM_WAIT sleepers */
	struct work_struct sub_work;

	/* placement: policies (newest last), last migration to the device per 2 MiB window */
	struct mutex place_lock;
	struct p2plab_svm_policy pol[P2PLAB_SVM_MAX_POLICIES];
	unsigned int npol;
	struct xarray place_last;	/* va >> 21 -> xa_mk_value(ms of the last migration) */
	atomic64_t pl_pages, pl_migrations, pl_guarded, pl_local;

	/* last cancelled fault (valid for the submitter whose descriptor was cancelled) */
	u64 cancel_va;
	u32 cancel_access;

	/* counters (uAPI struct p2plab_svm_stats); atomics: updated from several paths */
	atomic64_t faults, replays, cancels, fault_pages, pte_4k, pte_2m, invalidations,
		   inv_timeouts, notifier_calls, dma_maps, dma_unmaps, exclusive, retries, ranges;
	spinlock_t lat_lock;
	struct p2plab_svm_fault_sample lat[64];	/* ring of the last faults */
	u32 lat_next, lat_n;
	u64 last_replay_ns;		/* fault worker only */
};

struct p2plab_svm {
	struct p2plab_dev *pd;
	const struct p2plab_svm_backend *be;
	void *be_priv;			/* the backend's per-device state */
	u32 mmu_caps, tlb_entries;
	bool dead;			/* remove() ran: no hardware */

	spinlock_t lock;
	struct p2plab_svm_ctx *ctx[P2PLAB_MMU_CONTEXTS];
	struct mutex bind_lock;		/* bind / unbind / remove, context lookup */
	wait_queue_head_t users_wq;	/* unbind waits for ctx->users == 0 */

	struct p2plab_fault *ring;	/* fault ring, coherent */
	dma_addr_t ring_dma;
	u32 ring_size;

	spinlock_t inv_lock;
	u64 irq_ns;			/* ktime of the last fault interrupt */
	struct workqueue_struct *wq;
	struct workqueue_struct *sub_wq;	/* asynchronous submissions (ctx->sub_work) */
	struct work_struct fault_work;
	struct delayed_work replay_dwork;	/* lost-replay watchdog */
	atomic_t replay_retries;
};

/* ---- gpusvm backend's device memory (p2plab_svm_devmem.c, drm_pagemap) ---- */
/* NULL without a carve-out (module parameter svm_devmem), ERR_PTR on failure */
struct p2plab_svm_dm *p2plab_svm_dm_create(struct p2plab_svm *svm, struct drm_device *drm);
void p2plab_svm_dm_destroy(struct p2plab_svm_dm *dm);
/* drm_pagemap_populate_mm() of [start, end) (one anonymous VMA), no mmap lock held: pages/-errno */
long p2plab_svm_dm_populate(struct p2plab_svm_dm *dm, struct mm_struct *mm, unsigned long start,
			    unsigned long end);
bool p2plab_svm_dm_page(struct p2plab_svm_dm *dm, struct page *page);
void p2plab_svm_dm_show(struct seq_file *m, struct p2plab_svm_dm *dm);

/* ---- core helpers for backends (ctx->lock held for the PTE calls) ---- */
/* 4 KiB leaf at @va -> @addr (bus address, or BAR2 offset with P2PLAB_PTE_LOCAL in @perm) */
int p2plab_svm_pte_set_4k(struct p2plab_svm_ctx *ctx, u64 va, u64 addr, u64 perm);
/* 2 MiB leaf at @va (2 MiB aligned) -> @addr (2 MiB aligned) */
int p2plab_svm_pte_set_2m(struct p2plab_svm_ctx *ctx, u64 va, u64 addr, u64 perm);
/* clear every leaf in [start, end) (a 2 MiB leaf overlapping it goes whole); true if any was set */
bool p2plab_svm_pte_clear(struct p2plab_svm_ctx *ctx, u64 start, u64 end);
/* device TLB invalidation of [start, end) of the context, waited for (bounded). 0 / -ETIMEDOUT */
int p2plab_svm_tlb_inv(struct p2plab_svm_ctx *ctx, u64 start, u64 end, bool may_sleep);
/* spare tables for PTE writes under ctx->lock; call without it (GFP_KERNEL). 0 / -ENOMEM */
int p2plab_svm_pt_reserve(struct p2plab_svm_ctx *ctx, unsigned int n);

/*
 * Placement (p2plab_svm.c): the pgmap owner of this device's private memory (hmm_range_fault()'s
 * dev_private_owner: such pages are reported, not migrated back), or the svm itself if there is
 * none; whether @page is this device's private memory, and its BAR2 offset (a LOCAL leaf).
 */
void *p2plab_svm_private_owner(struct p2plab_svm_ctx *ctx);
bool p2plab_svm_local_page(struct p2plab_svm_ctx *ctx, struct page *page, u64 *dev_off);

extern const struct p2plab_svm_backend p2plab_svm_odp_backend;
#ifdef P2PLAB_HAVE_GPUSVM
extern const struct p2plab_svm_backend p2plab_svm_gpusvm_backend;
#endif

/* ---- called by the core (p2plab_core.c, p2plab_cdev.c) ---- */
int p2plab_svm_probe(struct p2plab_dev *pd);
void p2plab_svm_remove(struct p2plab_dev *pd);	/* contexts torn down, hardware released */
void p2plab_svm_free(struct p2plab_dev *pd);	/* last reference of pd */
struct dentry;
void p2plab_svm_debugfs(struct p2plab_dev *pd, struct dentry *dir);	/* <dir>/svm */
void p2plab_svm_hw_restore(struct p2plab_dev *pd);	/* after an engine reset (dma_lock) */
void p2plab_svm_irq(struct p2plab_dev *pd);	/* hard IRQ: INT_FAULT seen */
long p2plab_svm_ioctl(struct p2plab_dev *pd, struct file *f, unsigned int cmd, void __user *up);
void p2plab_svm_file_release(struct p2plab_dev *pd, struct file *f);

#endif /* P2PLAB_SVM_H */
