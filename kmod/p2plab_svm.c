// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_svm.c - shared virtual memory on the p2plab device MMU (docs/device.md §15): the device
 * works on a process's memory by virtual address; its page faults are resolved by the kernel's
 * HMM through a backend (p2plab_svm_odp.c) and replayed. docs/svm.md.
 *
 *   device fault -> fault record in the fault ring + MSI-X P2PLAB_VEC_FAULT (descriptor parked)
 *   -> p2plab_irq() (hard IRQ) queues svm->fault_work
 *   -> p2plab_svm_fault_work(): reads the records, per record the context's backend ->fault()
 *      (hmm_range_fault() with the read_begin/retry loop, DMA mapping, device PTEs)
 *   -> FAULT_RESP replay (or cancel: the submitter gets -EFAULT with the address)
 *
 *   CPU page-table change -> mmu_interval_notifier of the range (backend) -> clear device PTEs
 *   -> p2plab_svm_tlb_inv(): INV_* registers, INV_DONE polled (bounded) -> DMA unmap
 *
 * One context per open file (SVA style), bound to the mm of the process that binds it.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/sched/mm.h>
#include <linux/delay.h>
#include <linux/ktime.h>
#include <linux/io.h>

#include <linux/migrate.h>
#include <linux/highmem.h>
#include <linux/memremap.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_svm.h"
#ifdef P2PLAB_HAVE_HMM
#define P2PLAB_HMM_INTERNAL
#include "p2plab_hmm.h"
#endif

static char *svm_backend = "odp";
module_param(svm_backend, charp, 0444);
MODULE_PARM_DESC(svm_backend, "SVM fault backend: odp (hmm_range_fault + hmm_dma_map_*, default), gpusvm (drm_gpusvm), none");

static unsigned int svm_replay_retry_ms = 100;
module_param(svm_replay_retry_ms, uint, 0644);
MODULE_PARM_DESC(svm_replay_retry_ms, "replay again a context still parked this long after its faults were answered (ms, default 100; 0 = never)");

static unsigned int svm_inv_timeout_us = 200000;
module_param(svm_inv_timeout_us, uint, 0644);
MODULE_PARM_DESC(svm_inv_timeout_us, "bound of the wait for a device TLB invalidation (us, default 200000)");

static unsigned int svm_min_residency_ms = 200;
module_param(svm_min_residency_ms, uint, 0644);
MODULE_PARM_DESC(svm_min_residency_ms, "placement: a range does not migrate to the device again within this time of its last migration there (ping-pong guard, ms, default 200)");

#define SVM_FAULT_RING		256	/* records */
#define SVM_FAULT_LOOPS		64	/* ring drains per work run before requeueing */

static inline u32 rd(struct p2plab_dev *pd, u32 reg)
{
	return ioread32(pd->regs + reg);
}

static inline void wr(struct p2plab_dev *pd, u32 reg, u32 v)
{
	iowrite32(v, pd->regs + reg);
}

static const struct p2plab_svm_backend *p2plab_svm_pick_backend(struct p2plab_dev *pd)
{
	if (!strcmp(svm_backend, "odp"))
		return &p2plab_svm_odp_backend;
#ifdef P2PLAB_HAVE_GPUSVM
	if (!strcmp(svm_backend, "gpusvm"))
		return &p2plab_svm_gpusvm_backend;
#endif
	if (strcmp(svm_backend, "none"))
		dev_warn(&pd->pdev->dev, "svm_backend=%s is not available: SVM off\n", svm_backend);
	return NULL;
}

/* ---- device page tables ---------------------------------------------------------------------- */

/*
 * Tables are allocated outside ctx->lock (GFP_KERNEL may reclaim, and reclaim may call our own
 * invalidate callback, which takes ctx->lock): p2plab_svm_pt_reserve() fills ctx->pool, the PTE
 * writers take from it under the lock.
 */
static struct p2plab_svm_pt *svm_pt_new(struct p2plab_dev *pd)
{
	struct p2plab_svm_pt *pt = kzalloc(sizeof(*pt), GFP_KERNEL);

	if (!pt)
		return NULL;
	pt->e = dma_alloc_coherent(&pd->pdev->dev, PAGE_SIZE, &pt->dma, GFP_KERNEL);
	if (!pt->e) {
		kfree(pt);
		return NULL;
	}
	return pt;
}

static void svm_pt_free(struct p2plab_dev *pd, struct p2plab_svm_pt *pt, int level)
{
	int i;

	if (!pt)
		return;
	if (level > 1)
		for (i = 0; i < 512; i++)
			svm_pt_free(pd, pt->child[i], level - 1);
	dma_free_coherent(&pd->pdev->dev, PAGE_SIZE, pt->e, pt->dma);
	kfree(pt);
}

int p2plab_svm_pt_reserve(struct p2plab_svm_ctx *ctx, unsigned int n)
{
	struct p2plab_svm_pt *pt;

	n = min_t(unsigned int, n, ARRAY_SIZE(ctx->pool));
	for (;;) {
		mutex_lock(&ctx->lock);
		if (ctx->npool >= n) {
			mutex_unlock(&ctx->lock);
			return 0;
		}
		mutex_unlock(&ctx->lock);
		pt = svm_pt_new(ctx->pd);
		if (!pt)
			return -ENOMEM;
		mutex_lock(&ctx->lock);
		if (ctx->npool < ARRAY_SIZE(ctx->pool)) {
			ctx->pool[ctx->npool++] = pt;
			pt = NULL;
		}
		mutex_unlock(&ctx->lock);
		if (pt)
			svm_pt_free(ctx->pd, pt, 1);
	}
}
EXPORT_SYMBOL_GPL(p2plab_svm_pt_reserve);

static struct p2plab_svm_pt *svm_pt_take(struct p2plab_svm_ctx *ctx)
{
	lockdep_assert_held(&ctx->lock);
	if (!ctx->npool)
		return NULL;
	ctx->ntables++;
	return ctx->pool[--ctx->npool];
}

static inline unsigned int svm_idx(u64 va, int level)
{
	return (va >> (PAGE_SHIFT + 9 * (level - 1))) & 511;
}

static inline void svm_pte_write(__le64 *e, u64 v)
{
	WRITE_ONCE(*e, cpu_to_le64(v));
}

/* the table at @level (1 or 2) that holds the entry of @va, allocating tables on the way */
static struct p2plab_svm_pt *svm_walk_alloc(struct p2plab_svm_ctx *ctx, u64 va, int level,
					    bool *replaced_2m)
{
	struct p2plab_svm_pt *pt = ctx->root;
	int l;

	for (l = 4; l > level; l--) {
		unsigned int i = svm_idx(va, l);
		u64 old = le64_to_cpu(READ_ONCE(pt->e[i]));
		struct p2plab_svm_pt *c = pt->child[i];

		if (!c) {
			c = svm_pt_take(ctx);
			if (!c)
				return NULL;
			pt->child[i] = c;
		}
		if (!(old & P2PLAB_PTE_V) || (old & P2PLAB_PTE_PS)) {
			if (old & P2PLAB_PTE_PS) {
				/* a 2 MiB leaf becomes a table again: start from an empty one */
				memset(c->e, 0, PAGE_SIZE);
				*replaced_2m = true;
			}
			dma_wmb();
			svm_pte_write(&pt->e[i], (c->dma & P2PLAB_PTE_ADDR_MASK) | P2PLAB_PTE_V);
		}
		pt = c;
	}
	return pt;
}

int p2plab_svm_pte_set_4k(struct p2plab_svm_ctx *ctx, u64 va, u64 addr, u64 perm)
{
	bool replaced = false;
	struct p2plab_svm_pt *pt;

	lockdep_assert_held(&ctx->lock);
	pt = svm_walk_alloc(ctx, va, 1, &replaced);
	if (!pt)
		return -ENOMEM;
	svm_pte_write(&pt->e[svm_idx(va, 1)],
		      (addr & P2PLAB_PTE_ADDR_MASK) | perm | P2PLAB_PTE_V);
	if (replaced)	/* the old 2 MiB leaf may be cached */
		p2plab_svm_tlb_inv(ctx, ALIGN_DOWN(va, SZ_2M), ALIGN_DOWN(va, SZ_2M) + SZ_2M, true);
	atomic64_inc(&ctx->pte_4k);
	return 0;
}
EXPORT_SYMBOL_GPL(p2plab_svm_pte_set_4k);

int p2plab_svm_pte_set_2m(struct p2plab_svm_ctx *ctx, u64 va, u64 addr, u64 perm)
{
	bool replaced = false;
	struct p2plab_svm_pt *pt, *l1;
	unsigned int i;

	lockdep_assert_held(&ctx->lock);
	if ((va | addr) & (SZ_2M - 1))
		return -EINVAL;
	pt = svm_walk_alloc(ctx, va, 2, &replaced);
	if (!pt)
		return -ENOMEM;
	i = svm_idx(va, 2);
	svm_pte_write(&pt->e[i], (addr & P2PLAB_PTE_ADDR_MASK) | perm | P2PLAB_PTE_PS |
		      P2PLAB_PTE_V);
	/* a level-1 table that was there keeps its memory, empty, for a later split */
	l1 = pt->child[i];
	if (l1)
		memset(l1->e, 0, PAGE_SIZE);
	atomic64_inc(&ctx->pte_2m);
	return 0;
}
EXPORT_SYMBOL_GPL(p2plab_svm_pte_set_2m);

static bool svm_clear(struct p2plab_svm_pt *pt, int level, u64 base, u64 start, u64 end)
{
	u64 span = 1ull << (PAGE_SHIFT + 9 * (level - 1));
	bool any = false;
	unsigned int i;

	for (i = svm_idx(max(start, base), level); i < 512; i++) {
		u64 va = base + i * span;
		u64 e;

		if (va >= end)
			break;
		e = le64_to_cpu(READ_ONCE(pt->e[i]));
		if (!(e & P2PLAB_PTE_V))
			continue;
		if (level == 1 || (e & P2PLAB_PTE_PS)) {
			svm_pte_write(&pt->e[i], 0);	/* a 2 MiB leaf goes whole */
			any = true;
		} else if (pt->child[i]) {
			any |= svm_clear(pt->child[i], level - 1, va, start, end);
		}
	}
	return any;
}

bool p2plab_svm_pte_clear(struct p2plab_svm_ctx *ctx, u64 start, u64 end)
{
	lockdep_assert_held(&ctx->lock);
	if (end <= start)
		return false;
	return svm_clear(ctx->root, 4, 0, start, end);
}
EXPORT_SYMBOL_GPL(p2plab_svm_pte_clear);

/* the leaf mapping @va, 0 if none */
static u64 svm_pte_lookup(struct p2plab_svm_ctx *ctx, u64 va)
{
	struct p2plab_svm_pt *pt = ctx->root;
	int l;

	for (l = 4; l >= 1; l--) {
		u64 e = le64_to_cpu(READ_ONCE(pt->e[svm_idx(va, l)]));

		if (!(e & P2PLAB_PTE_V))
			return 0;
		if (l == 1 || (e & P2PLAB_PTE_PS))
			return e;
		pt = pt->child[svm_idx(va, l)];
		if (!pt)
			return 0;
	}
	return 0;
}

/* ---- TLB invalidation ------------------------------------------------------------------------ */

int p2plab_svm_tlb_inv(struct p2plab_svm_ctx *ctx, u64 start, u64 end, bool may_sleep)
{
	struct p2plab_svm *svm = ctx->svm;
	struct p2plab_dev *pd = ctx->pd;
	u64 len = end - start, waited = 0;
	u32 seq, done;

	if (READ_ONCE(svm->dead) || READ_ONCE(pd->dead))
		return -ENODEV;
	if (!len)
		len = 1;	/* 0 would mean the whole VA space */
	/* the cleared entries must be in memory before the device can walk again */
	wmb();
	spin_lock(&svm->inv_lock);
	wr(pd, P2PLAB_REG_INV_CTX, ctx->id);
	wr(pd, P2PLAB_REG_INV_VA_LO, lower_32_bits(start));
	wr(pd, P2PLAB_REG_INV_VA_HI, upper_32_bits(start));
	wr(pd, P2PLAB_REG_INV_SIZE_LO, lower_32_bits(len));
	wr(pd, P2PLAB_REG_INV_SIZE_HI, upper_32_bits(len));
	wr(pd, P2PLAB_REG_INV_CMD, P2PLAB_INV_CMD_SUBMIT);
	seq = rd(pd, P2PLAB_REG_INV_ISSUED);
	spin_unlock(&svm->inv_lock);
	atomic64_inc(&ctx->invalidations);

	for (;;) {
		done = rd(pd, P2PLAB_REG_INV_DONE);
		if (done == 0xffffffffu && rd(pd, P2PLAB_REG_ID) == 0xffffffffu)
			return -ENODEV;
		if ((s32)(done - seq) >= 0)
			return 0;
		if (waited >= READ_ONCE(svm_inv_timeout_us))
			break;
		if (may_sleep) {
			usleep_range(20, 50);
			waited += 35;
		} else {
			udelay(5);
			waited += 5;
		}
	}
	atomic64_inc(&ctx->inv_timeouts);
	dev_err_ratelimited(&pd->pdev->dev,
			    "svm ctx %u: TLB invalidation %u not done after %u us (INV_DONE %u)\n",
			    ctx->id, seq, svm_inv_timeout_us, done);
	return -ETIMEDOUT;
}
EXPORT_SYMBOL_GPL(p2plab_svm_tlb_inv);

static void svm_lat_add(struct p2plab_svm_ctx *ctx, const struct p2plab_fault *f, u64 t_read,
			u64 t_irq)
{
	u64 now = ktime_get_ns();
	struct p2plab_svm_fault_sample *s;

	spin_lock(&ctx->lat_lock);
	s = &ctx->lat[ctx->lat_next];
	s->va = f->va;
	s->dev_ts = f->timestamp;
	s->handle_ns = min_t(u64, now - t_read, U32_MAX);
	s->irq_ns = t_irq && t_irq <= now ? min_t(u64, now - t_irq, 4000000000ull) : 0;
	s->resume_ns = ctx->last_replay_ns && t_irq > ctx->last_replay_ns ?
		       min_t(u64, t_irq - ctx->last_replay_ns, 4000000000ull) : 0;
	s->reserved = 0;
	ctx->lat_next = (ctx->lat_next + 1) % ARRAY_SIZE(ctx->lat);
	if (ctx->lat_n < ARRAY_SIZE(ctx->lat))
		ctx->lat_n++;
	spin_unlock(&ctx->lat_lock);
}

/* ---- hardware: fault ring and context roots ---------------------------------------------------- */

static void svm_ctx_hw_root(struct p2plab_svm *svm, struct p2plab_svm_ctx *ctx, bool enable)
{
	struct p2plab_dev *pd = svm->pd;

	if (!enable) {
		wr(pd, P2PLAB_REG_CTX_ROOT_LO(ctx->id), 0);	/* drops the context's TLB */
		wr(pd, P2PLAB_REG_CTX_ROOT_HI(ctx->id), 0);
		return;
	}
	wr(pd, P2PLAB_REG_CTX_ROOT_HI(ctx->id), upper_32_bits(ctx->root->dma));
	wr(pd, P2PLAB_REG_CTX_ROOT_LO(ctx->id),
	   lower_32_bits(ctx->root->dma) | P2PLAB_CTX_ROOT_ENABLE);
}

static int svm_hw_program(struct p2plab_svm *svm)
{
	struct p2plab_dev *pd = svm->pd;
	int i;

	wr(pd, P2PLAB_REG_FAULT_CTRL, 0);
	wr(pd, P2PLAB_REG_FAULT_BASE_LO, lower_32_bits(svm->ring_dma));
	wr(pd, P2PLAB_REG_FAULT_BASE_HI, upper_32_bits(svm->ring_dma));
	wr(pd, P2PLAB_REG_FAULT_SIZE, svm->ring_size);	/* HEAD = TAIL = 0 */
	wr(pd, P2PLAB_REG_FAULT_STATUS, P2PLAB_FAULT_STATUS_OVERFLOW |
	   P2PLAB_FAULT_STATUS_WRITE_ERR);
	wr(pd, P2PLAB_REG_FAULT_CTRL, P2PLAB_FAULT_CTRL_ENABLE);
	if (!(rd(pd, P2PLAB_REG_FAULT_CTRL) & P2PLAB_FAULT_CTRL_ENABLE)) {
		dev_err(&pd->pdev->dev, "svm: fault ring refused by the device\n");
		return -EIO;
	}
	spin_lock(&svm->lock);
	for (i = 0; i < P2PLAB_MMU_CONTEXTS; i++)
		if (svm->ctx[i])
			svm_ctx_hw_root(svm, svm->ctx[i], true);
	spin_unlock(&svm->lock);
	return 0;
}

void p2plab_svm_hw_restore(struct p2plab_dev *pd)
{
	struct p2plab_svm *svm = pd->svm;

	/* CTRL.RESET cleared the MMU registers: program the fault ring and roots again */
	if (svm && !READ_ONCE(svm->dead))
		svm_hw_program(svm);
}

void p2plab_svm_irq(struct p2plab_dev *pd)
{
	struct p2plab_svm *svm = pd->svm;

	if (svm && !READ_ONCE(svm->dead)) {
		WRITE_ONCE(svm->irq_ns, ktime_get_ns());
		queue_work(svm->wq, &svm->fault_work);
	}
}

/* ---- placement (P2PLAB_IOC_SVM_PLACE) --------------------------------------------------------- */

#ifdef P2PLAB_HAVE_HMM
static struct p2plab_devmem *svm_devmem(struct p2plab_svm_ctx *ctx)
{
	struct p2plab_hmm *hmm = ctx->pd->hmm;

	return hmm && hmm->priv.mapped ? &hmm->priv : NULL;
}

void *p2plab_svm_private_owner(struct p2plab_svm_ctx *ctx)
{
	struct p2plab_devmem *dm = svm_devmem(ctx);

	return dm ? dm->pgmap.owner : ctx->svm;
}

bool p2plab_svm_local_page(struct p2plab_svm_ctx *ctx, struct page *page, u64 *dev_off)
{
	struct p2plab_devmem *dm = svm_devmem(ctx);

	if (!dm || !is_device_private_page(page) || p2plab_page_devmem(page) != dm)
		return false;
	*dev_off = p2plab_page_dev_off(page);
	return true;
}

/*
 * Migrate the writable system pages of [start, end) (inside @vma) into this device's private
 * memory with migrate_vma_*(); the data is copied by the CPU through the BAR, not by the ring
 * (docs/svm.md "One ring": a parked submission no longer holds the ring, the engine is not
 * used here yet). mmap lock held.
 * Returns the pages migrated.
 */
static unsigned long svm_place_migrate(struct p2plab_svm_ctx *ctx, struct p2plab_devmem *dm,
				       struct vm_area_struct *vma, unsigned long start,
				       unsigned long end)
{
	unsigned long npages = (end - start) >> PAGE_SHIFT, i, done = 0;
	struct migrate_vma args = {
		.vma = vma,
		.start = start,
		.end = end,
		.pgmap_owner = dm->pgmap.owner,
		.flags = MIGRATE_VMA_SELECT_SYSTEM,
	};
	void __iomem *bar = ctx->pd->mem;

	args.src = kcalloc(npages, sizeof(*args.src), GFP_KERNEL);
	args.dst = kcalloc(npages, sizeof(*args.dst), GFP_KERNEL);
	if (!args.src || !args.dst)
		goto out_free;
	if (migrate_vma_setup(&args))
		goto out_free;
	if (!args.cpages) {
		migrate_vma_finalize(&args);
		goto out_free;
	}
	for (i = 0; i < npages; i++) {
		struct page *spage = migrate_pfn_to_page(args.src[i]);
		struct page *dpage;
		u64 off;

		if (!(args.src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		if (spage && is_zone_device_page(spage))
			continue;	/* not system memory */
		/*
		 * read-only pages stay in RAM: a read-only device-private page would not be
		 * made writable by hmm_range_fault(REQ_WRITE) (docs/hmm.md, 7.3 finding)
		 */
		if (!(args.src[i] & MIGRATE_PFN_WRITE) && (spage || !(vma->vm_flags & VM_WRITE)))
			continue;
		dpage = p2plab_devmem_alloc(dm, 0);
		if (!dpage)
			break;		/* device memory full: the rest stays in RAM */
		dpage->zone_device_data = &p2plab_page_cpu_copy;
		off = p2plab_page_dev_off(dpage);
		if (spage) {
			void *va = kmap_local_page(spage);

			memcpy_toio(bar + off, va, PAGE_SIZE);
			kunmap_local(va);
		} else {
			memset_io(bar + off, 0, PAGE_SIZE);
		}
		args.dst[i] = migrate_pfn(page_to_pfn(dpage)) | MIGRATE_PFN_WRITE;
	}
	migrate_vma_pages(&args);
	for (i = 0; i < npages; i++)
		if (args.dst[i] && (args.src[i] & MIGRATE_PFN_MIGRATE))
			done++;
	migrate_vma_finalize(&args);
	atomic64_add(done, &dm->st_to_dev);	/* the HMM side's debugfs counters */
out_free:
	kfree(args.src);
	kfree(args.dst);
	return done;
}

/* the policy deciding @va: the newest range holding it; false if none */
static bool svm_policy_of(struct p2plab_svm_ctx *ctx, u64 va, struct p2plab_svm_policy *out)
{
	int i;

	mutex_lock(&ctx->place_lock);
	for (i = ctx->npol - 1; i >= 0; i--) {
		if (va >= ctx->pol[i].start && va < ctx->pol[i].end) {
			*out = ctx->pol[i];
			mutex_unlock(&ctx->place_lock);
			return true;
		}
	}
	mutex_unlock(&ctx->place_lock);
	return false;
}

/* PREFER_DEVICE is possible: the backend's own device memory (gpusvm), or p2plab_hmm.c's (odp) */
static bool svm_can_place(struct p2plab_svm_ctx *ctx)
{
	if (ctx->be->can_place)
		return ctx->be->can_place(ctx);
	return ctx->be->id == P2PLAB_SVM_BACKEND_ODP && svm_devmem(ctx);
}

/*
 * A device fault at @va (fault worker, before the backend resolves it): in a PREFER_DEVICE range,
 * migrate the fault's 2 MiB window (inside the VMA and the range) into device memory, unless the
 * window went there less than the range's residency ago (ping-pong guard: the device then maps
 * the pages where they are). odp: migrate_vma_*() into p2plab_hmm.c's private memory here;
 * gpusvm: the backend's place op (drm_pagemap_populate_mm(), without the mmap lock).
 */
static void svm_place_fault(struct p2plab_svm_ctx *ctx, u64 va)
{
	unsigned long key = va >> PMD_SHIFT, start, end;
	struct mm_struct *mm = ctx->mm;
	struct p2plab_svm_policy pol;
	struct vm_area_struct *vma;
	u64 now = ktime_get_ns() / NSEC_PER_MSEC;
	long done = 0;
	void *last;

	if (!READ_ONCE(ctx->npol) || !svm_policy_of(ctx, va, &pol) ||
	    pol.policy != P2PLAB_SVM_PLACE_PREFER_DEVICE || !svm_can_place(ctx))
		return;
	last = xa_load(&ctx->place_last, key);
	if (last && now - xa_to_value(last) < pol.residency_ms) {
		atomic64_inc(&ctx->pl_guarded);
		return;
	}
	if (!mmget_not_zero(mm))
		return;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, va);
	if (!vma || !vma_is_anonymous(vma) || is_vm_hugetlb_page(vma)) {
		mmap_read_unlock(mm);
		goto out_mmput;
	}
	start = max3(vma->vm_start, (unsigned long)ALIGN_DOWN(va, PMD_SIZE),
		     (unsigned long)pol.start);
	end = min3(vma->vm_end, (unsigned long)ALIGN_DOWN(va, PMD_SIZE) + PMD_SIZE,
		   (unsigned long)pol.end);
	if (ctx->be->place) {
		mmap_read_unlock(mm);
		done = ctx->be->place(ctx, start, end);
	} else {
		done = svm_place_migrate(ctx, svm_devmem(ctx), vma, start, end);
		mmap_read_unlock(mm);
	}
	if (done > 0) {
		xa_store(&ctx->place_last, key, xa_mk_value(now), GFP_KERNEL);
		atomic64_add(done, &ctx->pl_pages);
		atomic64_inc(&ctx->pl_migrations);
	}
out_mmput:
	mmput(mm);
}
#else
void *p2plab_svm_private_owner(struct p2plab_svm_ctx *ctx)
{
	return ctx->svm;
}

bool p2plab_svm_local_page(struct p2plab_svm_ctx *ctx, struct page *page, u64 *dev_off)
{
	return false;
}

static void *svm_devmem(struct p2plab_svm_ctx *ctx)
{
	return NULL;
}

static bool svm_can_place(struct p2plab_svm_ctx *ctx)
{
	return false;
}

static void svm_place_fault(struct p2plab_svm_ctx *ctx, u64 va)
{
}
#endif

static int svm_place(struct p2plab_svm_ctx *ctx, struct p2plab_svm_place *pl)
{
	struct p2plab_svm_policy np;
	unsigned int i, j;
	int ret = 0;

	if (pl->flags || pl->reserved || !pl->len || !PAGE_ALIGNED(pl->start) ||
	    !PAGE_ALIGNED(pl->len) || pl->start + pl->len < pl->start ||
	    pl->start + pl->len > (1ull << P2PLAB_MMU_VA_BITS) ||
	    pl->policy > P2PLAB_SVM_PLACE_PREFER_DEVICE)
		return -EINVAL;
	if (pl->policy == P2PLAB_SVM_PLACE_PREFER_DEVICE && !svm_can_place(ctx))
		return -EOPNOTSUPP;
	np.start = pl->start;
	np.end = pl->start + pl->len;
	np.policy = pl->policy;
	np.residency_ms = pl->min_residency_ms ?: READ_ONCE(svm_min_residency_ms);
	/* the device's current mappings of the range go: its next access decides by the policy */
	mutex_lock(&ctx->lock);
	if (p2plab_svm_pte_clear(ctx, np.start, np.end))
		p2plab_svm_tlb_inv(ctx, ALIGN_DOWN(np.start, SZ_2M), ALIGN(np.end, SZ_2M), true);
	mutex_unlock(&ctx->lock);
	mutex_lock(&ctx->place_lock);
	/* older ranges the new one covers entirely are dropped */
	for (i = 0, j = 0; i < ctx->npol; i++)
		if (ctx->pol[i].start < np.start || ctx->pol[i].end > np.end)
			ctx->pol[j++] = ctx->pol[i];
	ctx->npol = j;
	if (ctx->npol >= P2PLAB_SVM_MAX_POLICIES)
		ret = -ENOSPC;
	else
		ctx->pol[ctx->npol++] = np;
	mutex_unlock(&ctx->place_lock);
	pl->to_dev_pages = atomic64_read(&ctx->pl_pages);
	pl->to_dev_migrations = atomic64_read(&ctx->pl_migrations);
	pl->guarded = atomic64_read(&ctx->pl_guarded);
	pl->local_leaves = atomic64_read(&ctx->pl_local);
	return ret;
}

/* ---- fault handling (process context) ---------------------------------------------------------- */

static void svm_resp(struct p2plab_svm *svm, u32 ctx, u32 index, u32 flags)
{
	wmb();	/* PTEs before the replay */
	wr(svm->pd, P2PLAB_REG_FAULT_RESP, (index & P2PLAB_FAULT_RESP_INDEX_MASK) |
	   (ctx << P2PLAB_FAULT_RESP_CTX_SHIFT) | flags);
}

static void svm_replay_arm(struct p2plab_svm *svm)
{
	unsigned int ms = READ_ONCE(svm_replay_retry_ms);

	if (ms && !READ_ONCE(svm->dead))
		mod_delayed_work(svm->wq, &svm->replay_dwork, msecs_to_jiffies(ms));
}

/*
 * A replay the device lost (docs/device.md §15.8: the driver must time out and replay again):
 * while a bound context still has parked descriptors and no fault record waits in the ring,
 * replay the whole context. A descriptor that still faults parks again with a new record.
 */
static void p2plab_svm_replay_work(struct work_struct *w)
{
	struct p2plab_svm *svm = container_of(to_delayed_work(w), struct p2plab_svm, replay_dwork);
	struct p2plab_dev *pd = svm->pd;
	u32 stalled, bound = 0;
	int c;

	if (READ_ONCE(svm->dead))
		return;
	stalled = rd(pd, P2PLAB_REG_MMU_STALLED);
	if (stalled == 0xffffffffu || !stalled)
		return;
	if (rd(pd, P2PLAB_REG_FAULT_HEAD) != rd(pd, P2PLAB_REG_FAULT_TAIL))
		goto rearm;	/* records to handle first */
	spin_lock(&svm->lock);
	for (c = 0; c < P2PLAB_MMU_CONTEXTS; c++)
		if (svm->ctx[c])
			bound |= BIT(c);
	spin_unlock(&svm->lock);
	for (c = 0; c < P2PLAB_MMU_CONTEXTS; c++) {
		if (!(stalled & bound & BIT(c)))
			continue;
		atomic_inc(&svm->replay_retries);
		svm_resp(svm, c, 0, P2PLAB_FAULT_RESP_ALL_CTX);
	}
rearm:
	if (stalled & bound)
		svm_replay_arm(svm);
}

static void svm_handle_fault(struct p2plab_svm *svm, const struct p2plab_fault *f)
{
	u32 cid = f->ctx, access = f->access;
	struct p2plab_svm_ctx *ctx = NULL;
	u64 t0 = ktime_get_ns(), t_irq = READ_ONCE(svm->irq_ns), leaf;
	u64 need;
	int ret;

	if (cid < P2PLAB_MMU_CONTEXTS) {
		spin_lock(&svm->lock);
		ctx = svm->ctx[cid];
		spin_unlock(&svm->lock);
	}
	if (!ctx) {
		/* a context that is going away: nobody waits for this descriptor */
		svm_resp(svm, cid & 0xf, f->desc_index, P2PLAB_FAULT_RESP_CANCEL);
		return;
	}
	atomic64_inc(&ctx->faults);
	need = access == P2PLAB_FAULT_ACC_WRITE ? P2PLAB_PTE_W :
	       access == P2PLAB_FAULT_ACC_ATOMIC ? P2PLAB_PTE_A : P2PLAB_PTE_R;
	/* a later fault of a range an earlier record already brought in: just replay */
	mutex_lock(&ctx->lock);
	leaf = svm_pte_lookup(ctx, f->va);
	mutex_unlock(&ctx->lock);
	if ((f->reason & 0xff) != P2PLAB_FAULT_R_INJECTED && (leaf & need)) {
		ret = 0;
	} else {
		if (access != P2PLAB_FAULT_ACC_ATOMIC)
			svm_place_fault(ctx, f->va);
		ret = ctx->be->fault(ctx, f->va, access == P2PLAB_FAULT_ACC_PREFETCH ?
				     P2PLAB_FAULT_ACC_READ : access);
	}
	if (ret) {
		WRITE_ONCE(ctx->cancel_va, f->va);
		WRITE_ONCE(ctx->cancel_access, access);
		atomic64_inc(&ctx->cancels);
		dev_dbg(&svm->pd->pdev->dev, "svm ctx %u: fault va %#llx access %u: %d, cancel\n",
			cid, f->va, access, ret);
		svm_resp(svm, cid, f->desc_index, P2PLAB_FAULT_RESP_CANCEL);
		svm_lat_add(ctx, f, t0, t_irq);
		return;
	}
	atomic64_inc(&ctx->replays);
	svm_resp(svm, cid, f->desc_index, 0);
	svm_lat_add(ctx, f, t0, t_irq);
	ctx->last_replay_ns = ktime_get_ns();
	svm_replay_arm(svm);
}

static void p2plab_svm_fault_work(struct work_struct *w)
{
	struct p2plab_svm *svm = container_of(w, struct p2plab_svm, fault_work);
	struct p2plab_dev *pd = svm->pd;
	u32 mask = svm->ring_size - 1;
	int loops;

	for (loops = 0; loops < SVM_FAULT_LOOPS; loops++) {
		u32 head, tail, st;

		if (READ_ONCE(svm->dead))
			return;
		head = rd(pd, P2PLAB_REG_FAULT_HEAD);
		tail = rd(pd, P2PLAB_REG_FAULT_TAIL);
		if (head == 0xffffffffu || tail == 0xffffffffu)
			return;		/* link down */
		if (head > mask || tail > mask)
			return;
		while (head != tail) {
			struct p2plab_fault f;

			dma_rmb();	/* the record is written before TAIL moves */
			memcpy(&f, &svm->ring[head], sizeof(f));
			f.va = le64_to_cpu((__force __le64)f.va);
			f.timestamp = le64_to_cpu((__force __le64)f.timestamp);
			f.desc_index = le32_to_cpu((__force __le32)f.desc_index);
			f.ctx = le32_to_cpu((__force __le32)f.ctx);
			f.access = le32_to_cpu((__force __le32)f.access);
			f.reason = le32_to_cpu((__force __le32)f.reason);
			head = (head + 1) & mask;
			wr(pd, P2PLAB_REG_FAULT_HEAD, head);	/* the slot is free again */
			svm_handle_fault(svm, &f);
		}
		st = rd(pd, P2PLAB_REG_FAULT_STATUS);
		if (st != 0xffffffffu && (st & (P2PLAB_FAULT_STATUS_OVERFLOW |
						P2PLAB_FAULT_STATUS_WRITE_ERR))) {
			u32 stalled;
			int c;

			/* unrecorded faults: replay every stalled context, they fault again */
			wr(pd, P2PLAB_REG_FAULT_STATUS, st);
			stalled = rd(pd, P2PLAB_REG_MMU_STALLED);
			for (c = 0; c < P2PLAB_MMU_CONTEXTS; c++)
				if (stalled & BIT(c))
					svm_resp(svm, c, 0, P2PLAB_FAULT_RESP_ALL_CTX);
			continue;
		}
		if (rd(pd, P2PLAB_REG_FAULT_TAIL) == head)
			return;
	}
	queue_work(svm->wq, &svm->fault_work);	/* let others run, then go on */
}

/* ---- contexts ---------------------------------------------------------------------------------- */

/* asynchronous submissions (below) */
static void svm_sub_work(struct work_struct *w);
static void svm_jobs_close(struct p2plab_svm_ctx *ctx);
static void svm_jobs_free(struct p2plab_svm_ctx *ctx);

static struct p2plab_svm_ctx *svm_ctx_of_file(struct p2plab_svm *svm, struct file *f)
{
	int i;

	lockdep_assert_held(&svm->bind_lock);
	for (i = 0; i < P2PLAB_MMU_CONTEXTS; i++)
		if (svm->ctx[i] && svm->ctx[i]->file == f)
			return svm->ctx[i];
	return NULL;
}

static void svm_ctx_free(struct p2plab_svm_ctx *ctx)
{
	struct p2plab_dev *pd = ctx->pd;

	while (ctx->npool)
		svm_pt_free(pd, ctx->pool[--ctx->npool], 1);
	svm_pt_free(pd, ctx->root, 4);
	if (ctx->args)
		dma_free_coherent(&pd->pdev->dev, PAGE_SIZE, ctx->args, ctx->args_dma);
	xa_destroy(&ctx->place_last);
	if (ctx->mm)
		mmdrop(ctx->mm);
	kfree(ctx);
}

static int svm_bind(struct p2plab_svm *svm, struct file *f, struct p2plab_svm_bind *b)
{
	struct p2plab_dev *pd = svm->pd;
	struct p2plab_svm_ctx *ctx;
	int id, ret;

	if (b->flags || b->reserved)
		return -EINVAL;
	if (!svm->be)
		return -EOPNOTSUPP;
	if (!current->mm)
		return -EINVAL;
	if (svm_ctx_of_file(svm, f))
		return -EBUSY;
	for (id = 0; id < P2PLAB_MMU_CONTEXTS; id++)
		if (!svm->ctx[id])
			break;
	if (id == P2PLAB_MMU_CONTEXTS)
		return -ENOSPC;

	ctx = kzalloc(sizeof(*ctx), GFP_KERNEL);
	if (!ctx)
		return -ENOMEM;
	ctx->pd = pd;
	ctx->svm = svm;
	ctx->file = f;
	ctx->id = id;
	ctx->be = svm->be;
	mutex_init(&ctx->lock);
	mutex_init(&ctx->submit_lock);
	spin_lock_init(&ctx->lat_lock);
	spin_lock_init(&ctx->job_lock);
	INIT_LIST_HEAD(&ctx->jobs);
	init_waitqueue_head(&ctx->job_wq);
	INIT_WORK(&ctx->sub_work, svm_sub_work);
	mutex_init(&ctx->place_lock);
	xa_init(&ctx->place_last);
	ctx->root = svm_pt_new(pd);
	if (!ctx->root) {
		ret = -ENOMEM;
		goto err_free_ctx;
	}
	ctx->ntables = 1;
	ctx->args = dma_alloc_coherent(&pd->pdev->dev, PAGE_SIZE, &ctx->args_dma, GFP_KERNEL);
	if (!ctx->args) {
		ret = -ENOMEM;
		goto err_free_ctx;
	}
	mmgrab(current->mm);
	ctx->mm = current->mm;
	ret = ctx->be->ctx_init(ctx);
	if (ret)
		goto err_free_ctx;

	spin_lock(&svm->lock);
	svm->ctx[id] = ctx;
	spin_unlock(&svm->lock);
	svm_ctx_hw_root(svm, ctx, true);

	b->ctx = id;
	b->backend = ctx->be->id;
	b->mmu_caps = svm->mmu_caps;
	b->tlb_entries = svm->tlb_entries;
	return 0;

err_free_ctx:
	svm_ctx_free(ctx);	/* mmdrop, tables, args */
	return ret;
}

/* bind_lock held. Waits for the context's running ioctls (bounded by their timeouts). */
static void svm_unbind(struct p2plab_svm *svm, struct p2plab_svm_ctx *ctx)
{
	spin_lock(&svm->lock);
	svm->ctx[ctx->id] = NULL;	/* no new lookups; its faults are cancelled from now on */
	spin_unlock(&svm->lock);
	svm_jobs_close(ctx);		/* queued submissions cancelled, waiters woken */
	wait_event(svm->users_wq, !atomic_read(&ctx->users));
	flush_work(&ctx->sub_work);	/* the running submission completes (bounded) */
	svm_jobs_free(ctx);
	flush_work(&svm->fault_work);	/* it may have looked the context up */
	if (!READ_ONCE(svm->dead) && !READ_ONCE(svm->pd->dead))
		svm_ctx_hw_root(svm, ctx, false);	/* the device forgets it, TLB included */
	ctx->be->ctx_fini(ctx);		/* notifiers removed, DMA unmapped */
	svm_ctx_free(ctx);
}

/* ---- submissions ------------------------------------------------------------------------------- */

static u64 svm_user_window(struct p2plab_dev *pd)
{
	/* as the character device: with HMM active the private window holds migrated pages */
	return pd->hmm ? pd->p2p_size : pd->mem_size;
}

static int svm_run(struct p2plab_svm_ctx *ctx, struct p2plab_xfer *x, u32 timeout_ms,
		   u32 *err_code, u64 *fault_va, u32 *fault_access, u64 *ns)
{
	struct p2plab_run_info info;
	u64 t0 = ktime_get_ns();
	int ret;

	if (timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	WRITE_ONCE(ctx->cancel_va, 0);
	ret = p2plab_dma_run_user(ctx->pd, x, 1, timeout_ms, NULL, &info);
	*ns = ktime_get_ns() - t0;
	*err_code = info.err_code;
	if (ret == -EIO && info.err_code == P2PLAB_ERR_MMU_FAULT) {
		*fault_va = READ_ONCE(ctx->cancel_va);
		*fault_access = READ_ONCE(ctx->cancel_access);
		ret = -EFAULT;
	}
	return ret;
}

/* check a copy request and build its descriptor; out-fields cleared. 0, -EINVAL, -ERANGE */
static int svm_copy_prep(struct p2plab_svm_ctx *ctx, struct p2plab_svm_copy *c,
			 struct p2plab_xfer *x)
{
	struct p2plab_dev *pd = ctx->pd;
	u32 fl = c->flags, df = P2PLAB_DESC_F_CTX(ctx->id) | P2PLAB_DESC_F_OP(P2PLAB_OP_COPY);

	c->fault_va = 0;
	c->fault_access = 0;
	c->err_code = 0;
	c->ns = 0;
	c->faults = 0;
	if (c->reserved || (fl & ~(P2PLAB_SVM_SRC_VA | P2PLAB_SVM_SRC_LOCAL | P2PLAB_SVM_DST_VA |
				   P2PLAB_SVM_DST_LOCAL)))
		return -EINVAL;
	if (!!(fl & P2PLAB_SVM_SRC_VA) == !!(fl & P2PLAB_SVM_SRC_LOCAL) ||
	    !!(fl & P2PLAB_SVM_DST_VA) == !!(fl & P2PLAB_SVM_DST_LOCAL) ||
	    !(fl & (P2PLAB_SVM_SRC_VA | P2PLAB_SVM_DST_VA)))
		return -EINVAL;
	if (!c->len || c->len > P2PLAB_DMA_MAX_LEN || c->timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	if (fl & P2PLAB_SVM_SRC_VA) {
		if (c->src + c->len < c->src || c->src + c->len > (1ull << P2PLAB_MMU_VA_BITS))
			return -EINVAL;
		df |= P2PLAB_DESC_F_SRC_VA;
	} else {
		if (c->src + c->len < c->src || c->src + c->len > svm_user_window(pd))
			return -ERANGE;
		df |= P2PLAB_DESC_F_SRC_LOCAL;
	}
	if (fl & P2PLAB_SVM_DST_VA) {
		if (c->dst + c->len < c->dst || c->dst + c->len > (1ull << P2PLAB_MMU_VA_BITS))
			return -EINVAL;
		df |= P2PLAB_DESC_F_DST_VA;
	} else {
		if (c->dst + c->len < c->dst || c->dst + c->len > svm_user_window(pd))
			return -ERANGE;
		df |= P2PLAB_DESC_F_DST_LOCAL;
	}
	x->src = c->src;
	x->dst = c->dst;
	x->len = c->len;
	x->flags = df;
	return 0;
}

/* submit_lock held */
static int svm_copy(struct p2plab_svm_ctx *ctx, struct p2plab_svm_copy *c)
{
	u64 faults0 = atomic64_read(&ctx->faults);
	struct p2plab_xfer x;
	int ret;

	ret = svm_copy_prep(ctx, c, &x);
	if (ret)
		return ret;
	ret = svm_run(ctx, &x, c->timeout_ms, &c->err_code, &c->fault_va, &c->fault_access,
		      &c->ns);
	c->faults = atomic64_read(&ctx->faults) - faults0;
	return ret;
}

/* ---- asynchronous submissions ----------------------------------------------------------------- */

/* the next queued job, marked running; NULL if none or closing */
static struct p2plab_svm_job *svm_job_next(struct p2plab_svm_ctx *ctx)
{
	struct p2plab_svm_job *job, *found = NULL;

	spin_lock(&ctx->job_lock);
	if (!ctx->closing) {
		list_for_each_entry(job, &ctx->jobs, node) {
			if (!job->done && !job->running) {
				job->running = true;
				found = job;
				break;
			}
		}
	}
	spin_unlock(&ctx->job_lock);
	return found;
}

/* runs a context's submissions in order; one work item per context */
static void svm_sub_work(struct work_struct *w)
{
	struct p2plab_svm_ctx *ctx = container_of(w, struct p2plab_svm_ctx, sub_work);
	struct p2plab_svm_job *job;
	int ret;

	while ((job = svm_job_next(ctx))) {
		mutex_lock(&ctx->submit_lock);
		ret = svm_copy(ctx, &job->c);
		mutex_unlock(&ctx->submit_lock);
		spin_lock(&ctx->job_lock);
		job->status = ret;
		job->running = false;
		job->done = true;
		spin_unlock(&ctx->job_lock);
		wake_up_all(&ctx->job_wq);
		cond_resched();
	}
}

static int svm_submit(struct p2plab_svm_ctx *ctx, struct p2plab_svm_submit *sb)
{
	struct p2plab_svm_job *job;
	struct p2plab_xfer x;
	int ret;

	sb->seq = 0;
	if (sb->flags || sb->reserved)
		return -EINVAL;
	ret = svm_copy_prep(ctx, &sb->copy, &x);
	if (ret)
		return ret;
	job = kzalloc(sizeof(*job), GFP_KERNEL);
	if (!job)
		return -ENOMEM;
	job->c = sb->copy;
	spin_lock(&ctx->job_lock);
	if (ctx->closing) {
		spin_unlock(&ctx->job_lock);
		kfree(job);
		return -ENOENT;
	}
	if (ctx->njobs >= P2PLAB_SVM_MAX_INFLIGHT) {
		spin_unlock(&ctx->job_lock);
		kfree(job);
		return -EAGAIN;
	}
	job->seq = ++ctx->next_seq;
	list_add_tail(&job->node, &ctx->jobs);
	ctx->njobs++;
	spin_unlock(&ctx->job_lock);
	sb->seq = job->seq;
	queue_work(ctx->svm->sub_wq, &ctx->sub_work);
	return 0;
}

static struct p2plab_svm_job *svm_job_find(struct p2plab_svm_ctx *ctx, u64 seq)
{
	struct p2plab_svm_job *job;

	lockdep_assert_held(&ctx->job_lock);
	list_for_each_entry(job, &ctx->jobs, node)
		if (job->seq == seq)
			return job;
	return NULL;
}

/* done, reaped by another waiter meanwhile, or the context is closing */
static bool svm_job_settled(struct p2plab_svm_ctx *ctx, u64 seq)
{
	struct p2plab_svm_job *job;
	bool settled;

	spin_lock(&ctx->job_lock);
	job = svm_job_find(ctx, seq);
	settled = !job || job->done || ctx->closing;
	spin_unlock(&ctx->job_lock);
	return settled;
}

/*
 * Wait for a submission and reap it. The job stays on the list while we sleep (we hold a users
 * reference: unbind frees jobs only after users is 0); two waiters for one seq: the first to
 * reap it gets the result, the other ENOENT.
 */
static int svm_wait(struct p2plab_svm_ctx *ctx, struct p2plab_svm_wait *wt)
{
	struct p2plab_svm_job *job;
	long left;
	int ret;

	wt->status = 0;
	wt->inflight = 0;
	memset(&wt->copy, 0, sizeof(wt->copy));
	if (wt->flags || wt->timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	spin_lock(&ctx->job_lock);
	job = svm_job_find(ctx, wt->seq);
	spin_unlock(&ctx->job_lock);
	if (!job)
		ret = -ENOENT;
	else if (!wt->timeout_ms)
		ret = svm_job_settled(ctx, wt->seq) ? 0 : -ETIME;
	else {
		left = wait_event_interruptible_timeout(ctx->job_wq, svm_job_settled(ctx, wt->seq),
							msecs_to_jiffies(wt->timeout_ms));
		ret = left < 0 ? -EINTR : left == 0 ? -ETIME : 0;
	}
	spin_lock(&ctx->job_lock);
	if (!ret) {
		/* settled: done (reap it), or the context is closing */
		job = svm_job_find(ctx, wt->seq);
		if (!job) {
			ret = -ENOENT;	/* another waiter reaped it */
		} else if (job->done) {
			list_del(&job->node);
			ctx->njobs--;
		} else {
			job = NULL;
			ret = -ECANCELED;
		}
	} else {
		job = NULL;
	}
	wt->inflight = ctx->njobs;
	spin_unlock(&ctx->job_lock);
	if (job) {
		wt->copy = job->c;
		wt->status = job->status;
		ret = job->status;
		kfree(job);
	} else if (ret == -ECANCELED) {
		wt->status = ret;
	}
	return ret;
}

/* unbind: no new submissions, wake the waiters (queued jobs are cancelled) */
static void svm_jobs_close(struct p2plab_svm_ctx *ctx)
{
	spin_lock(&ctx->job_lock);
	ctx->closing = true;
	spin_unlock(&ctx->job_lock);
	wake_up_all(&ctx->job_wq);
}

/* unbind, after users is 0: the running job has left (sub_work flushed) */
static void svm_jobs_free(struct p2plab_svm_ctx *ctx)
{
	struct p2plab_svm_job *job, *tmp;

	list_for_each_entry_safe(job, tmp, &ctx->jobs, node) {
		list_del(&job->node);
		kfree(job);
	}
	ctx->njobs = 0;
}

static int svm_atomic(struct p2plab_svm_ctx *ctx, struct p2plab_svm_atomic *a)
{
	struct p2plab_atomic_args *args = ctx->args;
	struct p2plab_xfer x;
	u64 ns;
	int ret;

	a->err_code = 0;
	a->fault_va = 0;
	a->fault_access = 0;
	if (a->reserved || (a->op != P2PLAB_SVM_OP_FETCH_ADD && a->op != P2PLAB_SVM_OP_CMPXCHG) ||
	    (a->size != 4 && a->size != 8) || (a->va & (a->size - 1)) ||
	    a->va + a->size > (1ull << P2PLAB_MMU_VA_BITS))
		return -EINVAL;
	if (!(ctx->svm->mmu_caps & P2PLAB_MMU_CAP_ATOMIC))
		return -EOPNOTSUPP;
	WRITE_ONCE(args->operand, a->operand);
	WRITE_ONCE(args->compare, a->compare);
	WRITE_ONCE(args->result, 0);
	x.src = ctx->args_dma;
	x.dst = a->va;
	x.len = a->size;
	x.flags = P2PLAB_DESC_F_DST_VA | P2PLAB_DESC_F_CTX(ctx->id) | P2PLAB_DESC_F_OP(a->op);
	ret = svm_run(ctx, &x, a->timeout_ms, &a->err_code, &a->fault_va, &a->fault_access, &ns);
	dma_rmb();
	a->result = READ_ONCE(args->result);
	return ret;
}

static void svm_stats(struct p2plab_svm_ctx *ctx, struct p2plab_svm_stats *s)
{
	struct p2plab_dev *pd = ctx->pd;
	u32 i;

	memset(s, 0, sizeof(*s));
	s->ctx = ctx->id;
	s->backend = ctx->be->id;
	s->faults = atomic64_read(&ctx->faults);
	s->replays = atomic64_read(&ctx->replays);
	s->cancels = atomic64_read(&ctx->cancels);
	s->fault_pages = atomic64_read(&ctx->fault_pages);
	s->pte_4k = atomic64_read(&ctx->pte_4k);
	s->pte_2m = atomic64_read(&ctx->pte_2m);
	s->invalidations = atomic64_read(&ctx->invalidations);
	s->inv_timeouts = atomic64_read(&ctx->inv_timeouts);
	s->notifier_calls = atomic64_read(&ctx->notifier_calls);
	s->dma_maps = atomic64_read(&ctx->dma_maps);
	s->dma_unmaps = atomic64_read(&ctx->dma_unmaps);
	s->exclusive = atomic64_read(&ctx->exclusive);
	s->retries = atomic64_read(&ctx->retries);
	s->ranges = atomic64_read(&ctx->ranges);
	if (!READ_ONCE(pd->dead)) {
		s->hw_parked = rd(pd, P2PLAB_REG_MMU_PARKED);
		s->hw_stalled = rd(pd, P2PLAB_REG_MMU_STALLED);
	}
	spin_lock(&ctx->lat_lock);
	s->nlat = ctx->lat_n;
	s->replay_retries = atomic_read(&ctx->svm->replay_retries);
	for (i = 0; i < ctx->lat_n; i++)
		s->lat[i] = ctx->lat[(ctx->lat_next + ARRAY_SIZE(ctx->lat) - ctx->lat_n + i) %
				     ARRAY_SIZE(ctx->lat)];
	spin_unlock(&ctx->lat_lock);
}

/* the file's context, for the process that bound it; +users. bind_lock held. */
static int svm_ctx_get(struct p2plab_svm *svm, struct file *f, struct p2plab_svm_ctx **out)
{
	struct p2plab_svm_ctx *ctx = svm_ctx_of_file(svm, f);

	if (!ctx)
		return -ENOENT;
	if (ctx->mm != current->mm)
		return -EPERM;	/* a child after fork, or another process holding the fd */
	atomic_inc(&ctx->users);
	*out = ctx;
	return 0;
}

static void svm_ctx_put(struct p2plab_svm *svm, struct p2plab_svm_ctx *ctx)
{
	if (atomic_dec_and_test(&ctx->users))
		wake_up_all(&svm->users_wq);
}

long p2plab_svm_ioctl(struct p2plab_dev *pd, struct file *f, unsigned int cmd, void __user *up)
{
	struct p2plab_svm *svm = pd->svm;
	struct p2plab_svm_ctx *ctx;
	union {
		struct p2plab_svm_bind b;
		struct p2plab_svm_copy c;
		struct p2plab_svm_atomic a;
		struct p2plab_svm_submit sb;
		struct p2plab_svm_wait wt;
		struct p2plab_svm_place pl;
	} u;
	bool in = cmd == P2PLAB_IOC_SVM_COPY || cmd == P2PLAB_IOC_SVM_ATOMIC ||
		  cmd == P2PLAB_IOC_SVM_SUBMIT || cmd == P2PLAB_IOC_SVM_WAIT ||
		  cmd == P2PLAB_IOC_SVM_PLACE;
	long ret;

	if (!svm)
		return -EOPNOTSUPP;
	if (in || cmd == P2PLAB_IOC_SVM_BIND)
		if (copy_from_user(&u, up, _IOC_SIZE(cmd)))
			return -EFAULT;

	mutex_lock(&svm->bind_lock);
	if (svm->dead) {
		mutex_unlock(&svm->bind_lock);
		return -ENODEV;
	}
	if (cmd == P2PLAB_IOC_SVM_BIND) {
		ret = svm_bind(svm, f, &u.b);
		if (!ret && copy_to_user(up, &u.b, sizeof(u.b))) {
			svm_unbind(svm, svm_ctx_of_file(svm, f));
			ret = -EFAULT;
		}
		mutex_unlock(&svm->bind_lock);
		return ret;
	}
	if (cmd == P2PLAB_IOC_SVM_UNBIND) {
		ctx = svm_ctx_of_file(svm, f);
		if (!ctx)
			ret = -ENOENT;
		else if (ctx->mm != current->mm)
			ret = -EPERM;
		else {
			svm_unbind(svm, ctx);
			ret = 0;
		}
		mutex_unlock(&svm->bind_lock);
		return ret;
	}
	/* submissions and stats run without bind_lock: other contexts bind, unbind, submit */
	ret = svm_ctx_get(svm, f, &ctx);
	mutex_unlock(&svm->bind_lock);
	if (ret) {
		if (in && copy_to_user(up, &u, _IOC_SIZE(cmd)))
			ret = -EFAULT;
		return ret;
	}
	switch (cmd) {
	case P2PLAB_IOC_SVM_COPY:
		mutex_lock(&ctx->submit_lock);
		ret = svm_copy(ctx, &u.c);
		mutex_unlock(&ctx->submit_lock);
		if (copy_to_user(up, &u.c, sizeof(u.c)) && !ret)
			ret = -EFAULT;
		break;
	case P2PLAB_IOC_SVM_ATOMIC:
		mutex_lock(&ctx->submit_lock);
		ret = svm_atomic(ctx, &u.a);
		mutex_unlock(&ctx->submit_lock);
		if (copy_to_user(up, &u.a, sizeof(u.a)) && !ret)
			ret = -EFAULT;
		break;
	case P2PLAB_IOC_SVM_SUBMIT:
		ret = svm_submit(ctx, &u.sb);
		if (copy_to_user(up, &u.sb, sizeof(u.sb)) && !ret)
			ret = -EFAULT;	/* queued: WAIT on the next seq still reaps it */
		break;
	case P2PLAB_IOC_SVM_WAIT:
		ret = svm_wait(ctx, &u.wt);
		if (copy_to_user(up, &u.wt, sizeof(u.wt)) && !ret)
			ret = -EFAULT;
		break;
	case P2PLAB_IOC_SVM_PLACE:
		ret = svm_place(ctx, &u.pl);
		if (copy_to_user(up, &u.pl, sizeof(u.pl)) && !ret)
			ret = -EFAULT;
		break;
	case P2PLAB_IOC_SVM_STATS: {
		struct p2plab_svm_stats *s = kmalloc(sizeof(*s), GFP_KERNEL);

		if (!s) {
			ret = -ENOMEM;
			break;
		}
		svm_stats(ctx, s);
		ret = copy_to_user(up, s, sizeof(*s)) ? -EFAULT : 0;
		kfree(s);
		break;
	}
	default:
		ret = -ENOTTY;
	}
	svm_ctx_put(svm, ctx);
	return ret;
}

void p2plab_svm_file_release(struct p2plab_dev *pd, struct file *f)
{
	struct p2plab_svm *svm = pd->svm;
	struct p2plab_svm_ctx *ctx;

	if (!svm)
		return;
	mutex_lock(&svm->bind_lock);
	ctx = svm_ctx_of_file(svm, f);
	if (ctx)
		svm_unbind(svm, ctx);
	mutex_unlock(&svm->bind_lock);
}

/* ---- probe / remove ---------------------------------------------------------------------------- */

int p2plab_svm_probe(struct p2plab_dev *pd)
{
	struct p2plab_svm *svm;
	int ret;

	if (!(pd->caps & P2PLAB_CAP_MMU) || pd->if_version < 0x00010001u)
		return 0;	/* interface 1.0: no MMU, no SVM */
	svm = kzalloc(sizeof(*svm), GFP_KERNEL);
	if (!svm)
		return -ENOMEM;
	svm->pd = pd;
	spin_lock_init(&svm->lock);
	spin_lock_init(&svm->inv_lock);
	mutex_init(&svm->bind_lock);
	init_waitqueue_head(&svm->users_wq);
	INIT_WORK(&svm->fault_work, p2plab_svm_fault_work);
	INIT_DELAYED_WORK(&svm->replay_dwork, p2plab_svm_replay_work);
	svm->mmu_caps = rd(pd, P2PLAB_REG_MMU_CAPS);
	svm->tlb_entries = rd(pd, P2PLAB_REG_MMU_TLB_SIZE);
	svm->be = p2plab_svm_pick_backend(pd);
	svm->ring_size = SVM_FAULT_RING;
	svm->ring = dma_alloc_coherent(&pd->pdev->dev, svm->ring_size * sizeof(*svm->ring),
				       &svm->ring_dma, GFP_KERNEL);
	if (!svm->ring) {
		ret = -ENOMEM;
		goto err_free_svm;
	}
	svm->wq = alloc_ordered_workqueue("%s-svm", 0, pd->name[0] ? pd->name :
					  pci_name(pd->pdev));
	if (!svm->wq) {
		ret = -ENOMEM;
		goto err_free_ring;
	}
	/* submissions park on faults the ordered fault wq resolves: not on that wq */
	svm->sub_wq = alloc_workqueue("%s-svm-sub", WQ_UNBOUND, 0, pd->name[0] ? pd->name :
				      pci_name(pd->pdev));
	if (!svm->sub_wq) {
		ret = -ENOMEM;
		goto err_destroy_wq;
	}
	ret = svm_hw_program(svm);
	if (ret)
		goto err_destroy_sub_wq;
	if (svm->be && svm->be->dev_init) {
		ret = svm->be->dev_init(svm);
		if (ret) {
			dev_warn(&pd->pdev->dev, "svm: backend %s unavailable (%d)\n",
				 svm->be->name, ret);
			svm->be = NULL;
		}
	}
	pd->svm = svm;
	dev_info(&pd->pdev->dev, "svm: backend %s, MMU caps %#x, TLB %u, fault ring %u\n",
		 svm->be ? svm->be->name : "none", svm->mmu_caps, svm->tlb_entries,
		 svm->ring_size);
	return 0;

err_destroy_sub_wq:
	destroy_workqueue(svm->sub_wq);
err_destroy_wq:
	destroy_workqueue(svm->wq);
err_free_ring:
	dma_free_coherent(&pd->pdev->dev, svm->ring_size * sizeof(*svm->ring), svm->ring,
			  svm->ring_dma);
err_free_svm:
	kfree(svm);
	return ret;
}

/* remove(): no ioctl runs any more (pd->active); open files keep pd but lose their contexts */
void p2plab_svm_remove(struct p2plab_dev *pd)
{
	struct p2plab_svm *svm = pd->svm;
	int i;

	if (!svm)
		return;
	mutex_lock(&svm->bind_lock);
	for (i = 0; i < P2PLAB_MMU_CONTEXTS; i++)
		if (svm->ctx[i])
			svm_unbind(svm, svm->ctx[i]);
	WRITE_ONCE(svm->dead, true);
	mutex_unlock(&svm->bind_lock);
	if (svm->be && svm->be->dev_fini)
		svm->be->dev_fini(svm);
	if (!pd->dead)
		wr(pd, P2PLAB_REG_FAULT_CTRL, 0);
	for (i = 0; i < pd->nvec; i++)	/* no p2plab_svm_irq() still queueing */
		synchronize_irq(pci_irq_vector(pd->pdev, i));
	cancel_work_sync(&svm->fault_work);
	cancel_delayed_work_sync(&svm->replay_dwork);
	destroy_workqueue(svm->wq);
	svm->wq = NULL;
	destroy_workqueue(svm->sub_wq);	/* every context's sub_work was flushed at unbind */
	svm->sub_wq = NULL;
	dma_free_coherent(&pd->pdev->dev, svm->ring_size * sizeof(*svm->ring), svm->ring,
			  svm->ring_dma);
	svm->ring = NULL;
}

/* debugfs <p2plab>/<name>/svm: per bound context, faults, submissions and placement counters */
static int p2plab_svm_dbg_show(struct seq_file *m, void *unused)
{
	struct p2plab_svm *svm = m->private;
	int i;

	mutex_lock(&svm->bind_lock);
	seq_printf(m, "backend %s dead %d min_residency_ms %u replay_retries %d\n",
		   svm->be ? svm->be->name : "none", svm->dead, READ_ONCE(svm_min_residency_ms),
		   atomic_read(&svm->replay_retries));
	for (i = 0; i < P2PLAB_MMU_CONTEXTS; i++) {
		struct p2plab_svm_ctx *ctx = svm->ctx[i];
		unsigned int njobs, npol;
		u64 seq;

		if (!ctx)
			continue;
		spin_lock(&ctx->job_lock);
		njobs = ctx->njobs;
		seq = ctx->next_seq;
		spin_unlock(&ctx->job_lock);
		npol = READ_ONCE(ctx->npol);
		seq_printf(m, "ctx %u: faults %lld replays %lld cancels %lld submitted %llu inflight %u policies %u to_dev_pages %lld to_dev_migrations %lld guarded %lld local_leaves %lld\n",
			   ctx->id, atomic64_read(&ctx->faults), atomic64_read(&ctx->replays),
			   atomic64_read(&ctx->cancels), seq, njobs, npol,
			   atomic64_read(&ctx->pl_pages), atomic64_read(&ctx->pl_migrations),
			   atomic64_read(&ctx->pl_guarded), atomic64_read(&ctx->pl_local));
	}
	if (svm->be && svm->be->dbg_show)
		svm->be->dbg_show(svm, m);
	mutex_unlock(&svm->bind_lock);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(p2plab_svm_dbg);

void p2plab_svm_debugfs(struct p2plab_dev *pd, struct dentry *dir)
{
	if (pd->svm && !IS_ERR_OR_NULL(dir))
		debugfs_create_file("svm", 0444, dir, pd->svm, &p2plab_svm_dbg_fops);
}

void p2plab_svm_free(struct p2plab_dev *pd)
{
	kfree(pd->svm);
	pd->svm = NULL;
}
