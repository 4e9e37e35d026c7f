// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_svm_gpusvm.c - the "gpusvm" SVM backend: device faults resolved by the DRM GPU SVM
 * helpers (drivers/gpu/drm/drm_gpusvm.c, CONFIG_DRM_GPUSVM), the way xe does it
 * (drivers/gpu/drm/xe/xe_svm.c):
 *   - a minimal DRM device per p2plab function (drm_dev_alloc + drm_dev_register): it owns the
 *     DMA mappings (drm_gpusvm_pages.drm, its ->dev is the PCI function);
 *   - one struct drm_gpusvm per context (drm_gpusvm_init on the bound mm, chunk sizes 2M/64K/4K,
 *     512 MiB notifiers, as xe);
 *   - device fault: drm_gpusvm_range_find_or_insert() -> drm_gpusvm_get_pages() (hmm_range_fault,
 *     DMA mapping) -> under the notifier lock drm_gpusvm_pages_valid() -> device PTEs (a 2 MiB
 *     leaf for an order-9 chunk);
 *   - invalidate op (called by drm_gpusvm with the notifier lock held for write): clear the
 *     PTEs of the ranges, device TLB invalidation waited for, drm_gpusvm_unmap_pages();
 *     on MMU_NOTIFY_UNMAP drm_gpusvm_range_set_unmapped() and the range is removed by the next
 *     fault (xe's garbage collector) or at unbind.
 * Device-private pages of other owners are brought back by hmm_range_fault (owner = the SVM
 * device). Placement (PREFER_DEVICE) uses device memory of drm_pagemap (p2plab_svm_devmem.c,
 * module parameter svm_devmem): drm_pagemap_populate_mm() before drm_gpusvm_get_pages(), whose
 * device_map gives BAR2 offsets (LOCAL leaves); get_pages runs with allow_mixed (a range may hold
 * device and system pages). Atomics: the range is mapped
 * writable and the leaf gets the atomic bit (the device's atomics are host atomics on the page);
 * no make_device_exclusive() in this backend, as xe maps system-memory atomics.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/hmm.h>
#include <linux/mmu_notifier.h>
#include <drm/drm_drv.h>
#include <drm/drm_device.h>
#include <drm/drm_file.h>
#include <drm/drm_ioctl.h>
#include <drm/drm_gpusvm.h>
#include <drm/drm_pagemap.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_svm.h"

static const unsigned long gs_chunk_sizes[] = { SZ_2M, SZ_64K, SZ_4K };

/*
 * docs/svm.md, finding 3: drm_gpusvm_get_pages() maps our own device-private pages without
 * looking at HMM_PFN_WRITE, and hmm_range_fault() reports an own read-only (COW-shared after
 * fork) device-private page without faulting it for write. A device write would then land in
 * the page the child shares. With this check (default), a write fault on a range holding such
 * a page evicts the range to RAM (drm_gpusvm_range_evict()) and faults it again, which breaks
 * COW. 0 shows the bug (scenarios/svm/svm-gpusvm-fork-cow.yaml).
 */
static bool svm_gpusvm_cow_check = true;
module_param(svm_gpusvm_cow_check, bool, 0644);
MODULE_PARM_DESC(svm_gpusvm_cow_check,
		 "gpusvm: evict a range holding a read-only own device page before a device write (default 1; 0 shows docs/svm.md finding 3)");

static const struct file_operations gs_drm_fops = {
	.owner = THIS_MODULE,
	.open = drm_open,
	.release = drm_release,
	.unlocked_ioctl = drm_ioctl,
	.compat_ioctl = drm_compat_ioctl,
	.poll = drm_poll,
	.read = drm_read,
	.llseek = noop_llseek,
};

static const struct drm_driver gs_drm_driver = {
	.name = "p2plab",
	.desc = "p2plab device MMU (SVM through drm_gpusvm)",
	.major = 1,
	.minor = 1,
	.fops = &gs_drm_fops,
};

/* per device (svm->be_priv) */
struct gs_dev {
	struct drm_device *drm;
	struct p2plab_svm_dm *dm;	/* NULL: no device memory (svm_devmem=0) */
};

struct gs_range {
	struct drm_gpusvm_range base;
	struct drm_gpusvm_pages pages;
	struct list_head gc_link;	/* unmapped, to be removed */
	bool bound;			/* device PTEs written (notifier lock) */
};

struct gs_ctx {
	struct drm_gpusvm gpusvm;
	struct p2plab_svm_ctx *ctx;
	struct mutex range_lock;	/* find_or_insert / remove (the driver lock) */
	spinlock_t gc_lock;
	struct list_head gc_list;
};

static inline struct gs_range *to_gs_range(struct drm_gpusvm_range *r)
{
	return container_of(r, struct gs_range, base);
}

static inline struct gs_ctx *to_gs_ctx(struct drm_gpusvm *g)
{
	return container_of(g, struct gs_ctx, gpusvm);
}

static struct drm_gpusvm_range *gs_range_alloc(struct drm_gpusvm *gpusvm)
{
	struct gs_ctx *gc = to_gs_ctx(gpusvm);
	struct gs_range *r = kzalloc(sizeof(*r), GFP_KERNEL);

	if (!r)
		return NULL;
	INIT_LIST_HEAD(&r->gc_link);
	drm_gpusvm_init_pages(&r->pages, ((struct gs_dev *)gc->ctx->svm->be_priv)->drm);
	atomic64_inc(&gc->ctx->ranges);
	return &r->base;
}

static void gs_range_free(struct drm_gpusvm_range *range)
{
	struct gs_ctx *gc = to_gs_ctx(range->gpusvm);
	struct gs_range *gr = to_gs_range(range);

	/*
	 * gs_garbage_collect() takes a range off the list, then removes it without gc_lock: an
	 * MMU_NOTIFY_UNMAP in between (gs_invalidate()) queues it again, and it was freed while on
	 * the list (KASAN use-after-free in gs_garbage_collect() on the debug kernel). A freed range
	 * leaves the list here, under the lock the notifier queues it with.
	 */
	spin_lock(&gc->gc_lock);
	list_del_init(&gr->gc_link);
	spin_unlock(&gc->gc_lock);
	drm_gpusvm_free_pages(range->gpusvm, &gr->pages, drm_gpusvm_range_size(range) >> PAGE_SHIFT);
	kfree(gr);
}

/* drm_gpusvm calls this with gpusvm->notifier_lock held for write */
static void gs_invalidate(struct drm_gpusvm *gpusvm, struct drm_gpusvm_notifier *notifier,
			  const struct mmu_notifier_range *mmu_range)
{
	struct gs_ctx *gc = to_gs_ctx(gpusvm);
	struct p2plab_svm_ctx *ctx = gc->ctx;
	struct drm_gpusvm_ctx dctx = { .in_notifier = true, };
	unsigned long start = max(drm_gpusvm_notifier_start(notifier), mmu_range->start);
	unsigned long end = min(drm_gpusvm_notifier_end(notifier), mmu_range->end);
	unsigned long adj_start = start, adj_end = end;
	struct drm_gpusvm_range *r, *first;
	bool zapped = false;

	first = drm_gpusvm_range_find(notifier, start, end);
	if (!first)
		return;
	/* 1. the device forgets the whole ranges: PTEs, then its TLB (waited for) */
	mutex_lock(&ctx->lock);
	r = first;
	drm_gpusvm_for_each_range(r, notifier, start, end) {
		struct gs_range *gr = to_gs_range(r);

		if (!gr->bound)
			continue;
		adj_start = min(adj_start, drm_gpusvm_range_start(r));
		adj_end = max(adj_end, drm_gpusvm_range_end(r));
		zapped |= p2plab_svm_pte_clear(ctx, drm_gpusvm_range_start(r),
					       drm_gpusvm_range_end(r));
		gr->bound = false;
	}
	if (zapped) {
		p2plab_svm_tlb_inv(ctx, adj_start, adj_end, true);
		atomic64_inc(&ctx->notifier_calls);
	}
	mutex_unlock(&ctx->lock);
	/* 2. only then the DMA mappings go */
	r = first;
	drm_gpusvm_for_each_range(r, notifier, start, end) {
		struct gs_range *gr = to_gs_range(r);

		drm_gpusvm_unmap_pages(gpusvm, &gr->pages,
				       drm_gpusvm_range_size(r) >> PAGE_SHIFT, &dctx);
		if (mmu_range->event == MMU_NOTIFY_UNMAP) {
			drm_gpusvm_range_set_unmapped(r, &gr->pages, 1, mmu_range);
			spin_lock(&gc->gc_lock);
			if (list_empty(&gr->gc_link))
				list_add_tail(&gr->gc_link, &gc->gc_list);
			spin_unlock(&gc->gc_lock);
		}
	}
}

static const struct drm_gpusvm_ops gs_ops = {
	.range_alloc = gs_range_alloc,
	.range_free = gs_range_free,
	.invalidate = gs_invalidate,
};

/* remove the ranges the CPU unmapped (xe's garbage collector). Not under any lock. */
static void gs_garbage_collect(struct gs_ctx *gc)
{
	struct drm_gpusvm_ctx dctx = {};
	struct gs_range *gr;

	for (;;) {
		spin_lock(&gc->gc_lock);
		gr = list_first_entry_or_null(&gc->gc_list, struct gs_range, gc_link);
		if (gr)
			list_del_init(&gr->gc_link);
		spin_unlock(&gc->gc_lock);
		if (!gr)
			return;
		drm_gpusvm_unmap_pages(&gc->gpusvm, &gr->pages,
				       drm_gpusvm_range_size(&gr->base) >> PAGE_SHIFT, &dctx);
		mutex_lock(&gc->range_lock);
		drm_gpusvm_range_remove(&gc->gpusvm, &gr->base);
		mutex_unlock(&gc->range_lock);
	}
}

/*
 * device PTEs of range @r from its addresses: a DMA address (DRM_INTERCONNECT_SYSTEM), or the BAR2
 * offset our drm_pagemap's device_map gave a page of device memory (DRM_INTERCONNECT_DRIVER: a
 * LOCAL leaf). notifier lock (read) and ctx->lock held.
 */
static int gs_bind(struct p2plab_svm_ctx *ctx, struct gs_range *gr, u64 perm)
{
	unsigned long va = drm_gpusvm_range_start(&gr->base);
	unsigned long end = drm_gpusvm_range_end(&gr->base);
	unsigned long j;
	int ret;

	for (j = 0; va < end; j++) {
		struct drm_pagemap_addr *a = &gr->pages.dma_addr[j];
		unsigned long n = 1UL << a->order, k;
		u64 p = perm;

		if (a->proto == DRM_INTERCONNECT_DRIVER)
			p |= P2PLAB_PTE_LOCAL;
		else if (a->proto != DRM_INTERCONNECT_SYSTEM)
			return -EOPNOTSUPP;
		if (a->order >= PMD_SHIFT - PAGE_SHIFT && IS_ALIGNED(va, SZ_2M) &&
		    IS_ALIGNED(a->addr, SZ_2M) && n == SZ_2M >> PAGE_SHIFT) {
			ret = p2plab_svm_pte_set_2m(ctx, va, a->addr, p);
			if (ret)
				return ret;
			if (p & P2PLAB_PTE_LOCAL)
				atomic64_add(n, &ctx->pl_local);
			va += SZ_2M;
			continue;
		}
		for (k = 0; k < n && va < end; k++, va += PAGE_SIZE) {
			ret = p2plab_svm_pte_set_4k(ctx, va, a->addr + k * PAGE_SIZE, p);
			if (ret)
				return ret;
			if (p & P2PLAB_PTE_LOCAL)
				atomic64_inc(&ctx->pl_local);
		}
	}
	gr->bound = true;
	return 0;
}

/*
 * Does @range hold a device page of ours that the CPU maps read-only? A snapshot (no fault) of
 * the CPU page table with hmm_range_fault(), the way drm_gpusvm_get_pages() saw it. false when
 * the snapshot cannot be taken (then the write goes on as drm_gpusvm decided).
 */
static bool gs_devmem_read_only(struct p2plab_svm_ctx *ctx, struct drm_gpusvm_range *range)
{
	struct gs_dev *gd = ctx->svm->be_priv;
	unsigned long start = drm_gpusvm_range_start(range), end = drm_gpusvm_range_end(range);
	unsigned long npages = (end - start) >> PAGE_SHIFT, i;
	struct hmm_range hr = {
		.notifier = &range->notifier->notifier,
		.start = start,
		.end = end,
		.dev_private_owner = ctx->svm,
	};
	bool ro = false;
	int ret;

	hr.hmm_pfns = kvcalloc(npages, sizeof(*hr.hmm_pfns), GFP_KERNEL);
	if (!hr.hmm_pfns)
		return false;
	hr.notifier_seq = mmu_interval_read_begin(hr.notifier);
	mmap_read_lock(ctx->mm);
	ret = hmm_range_fault(&hr);
	mmap_read_unlock(ctx->mm);
	for (i = 0; !ret && i < npages && !ro; i++) {
		unsigned long p = hr.hmm_pfns[i];

		ro = (p & HMM_PFN_VALID) && !(p & HMM_PFN_WRITE) &&
		     p2plab_svm_dm_page(gd->dm, hmm_pfn_to_page(p));
	}
	kvfree(hr.hmm_pfns);
	return ro;
}

static int gs_fault(struct p2plab_svm_ctx *ctx, u64 va, u32 access)
{
	struct gs_ctx *gc = ctx->be_priv;
	struct drm_gpusvm *gpusvm = &gc->gpusvm;
	struct drm_gpusvm_ctx dctx = {
		.device_private_page_owner = ctx->svm,	/* our drm_pagemap's pages are reported */
		.check_pages_threshold = SZ_64K,
		/* placement migrates part of a range: it may hold both kinds of page */
		.allow_mixed = 1,
	};
	struct mm_struct *mm = ctx->mm;
	struct drm_gpusvm_range *range;
	struct vm_area_struct *vma;
	struct gs_range *gr;
	bool writable;
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	int ret, tries;
	u64 perm;

	gs_garbage_collect(gc);
	if (!mmget_not_zero(mm))
		return -EFAULT;

	/*
	 * retried while the CPU keeps changing the range (-EBUSY/-EAGAIN, pages invalidated before
	 * they were bound): at least 8 tries, then until HMM_RANGE_DEFAULT_TIMEOUT, as
	 * hmm_range_fault() bounds its own loop. A fixed 8 cancelled a legitimate access on the debug
	 * kernel (concurrent_cpu_faults: CPU threads faulting the same pages, EFAULT).
	 */
	for (tries = 0; tries < 8 || time_before(jiffies, timeout); tries++) {
		/*
		 * as xe: a read-only mapping is mirrored read-only, anything else read-write. Looked up
		 * on every try: an mprotect() between this lookup and hmm_range_fault() makes a
		 * read-write request fail with -EPERM, and a read fault must then be mirrored read-only
		 * rather than cancelled
		 */
		mmap_read_lock(mm);
		vma = vma_lookup(mm, va);
		writable = vma && (vma->vm_flags & VM_WRITE);
		mmap_read_unlock(mm);
		if (!vma) {
			ret = -EFAULT;
			goto out_mmput;
		}
		dctx.read_only = !writable && access == P2PLAB_FAULT_ACC_READ;
		perm = P2PLAB_PTE_R | (dctx.read_only ? 0 : P2PLAB_PTE_W | P2PLAB_PTE_A);

		mutex_lock(&gc->range_lock);
		range = drm_gpusvm_range_find_or_insert(gpusvm, va, gpusvm->mm_start,
							gpusvm->mm_start + gpusvm->mm_range,
							&dctx);
		mutex_unlock(&gc->range_lock);
		if (IS_ERR(range)) {
			ret = PTR_ERR(range);	/* -ENOENT no VMA, -EPERM read-only ... */
			if (ret == -EPERM && access == P2PLAB_FAULT_ACC_READ && !dctx.read_only)
				continue;	/* mprotect()ed since the lookup: again, read-only */
			goto out_mmput;
		}
		gr = to_gs_range(range);
		ret = drm_gpusvm_get_pages(gpusvm, &gr->pages, mm, &range->notifier->notifier,
					   drm_gpusvm_range_start(range),
					   drm_gpusvm_range_end(range), &dctx);
		if (ret == -EFAULT && range->flags.unmapped) {
			/* a range the CPU unmapped meanwhile: remove it, insert anew */
			gs_garbage_collect(gc);
			continue;
		}
		if (ret == -EBUSY || ret == -EAGAIN ||
		    (ret == -EPERM && access == P2PLAB_FAULT_ACC_READ && !dctx.read_only)) {
			/* -EPERM: hmm_range_fault() met a write-protected VMA, see the lookup above */
			atomic64_inc(&ctx->retries);
			continue;
		}
		if (ret)
			goto out_mmput;
		if (!dctx.read_only && gr->pages.flags.has_devmem_pages &&
		    READ_ONCE(svm_gpusvm_cow_check) && gs_devmem_read_only(ctx, range)) {
			/* finding 3: not writable by the device until COW is broken in RAM */
			drm_gpusvm_range_evict(gpusvm, range);
			atomic64_inc(&ctx->retries);
			continue;
		}
		ret = p2plab_svm_pt_reserve(ctx, 3);
		if (ret)
			goto out_mmput;
		drm_gpusvm_notifier_lock(gpusvm);
		if (!drm_gpusvm_pages_valid(gpusvm, &gr->pages)) {
			drm_gpusvm_notifier_unlock(gpusvm);
			atomic64_inc(&ctx->retries);
			continue;
		}
		mutex_lock(&ctx->lock);
		ret = gs_bind(ctx, gr, perm);
		mutex_unlock(&ctx->lock);
		drm_gpusvm_notifier_unlock(gpusvm);
		if (!ret) {
			atomic64_add(drm_gpusvm_range_size(range) >> PAGE_SHIFT, &ctx->fault_pages);
			atomic64_inc(&ctx->dma_maps);
		}
		goto out_mmput;
	}
	ret = -EBUSY;
out_mmput:
	mmput(mm);
	return ret ? -EFAULT : 0;
}

static bool gs_can_place(struct p2plab_svm_ctx *ctx)
{
	struct gs_dev *gd = ctx->svm->be_priv;

	return gd && gd->dm;
}

static long gs_place(struct p2plab_svm_ctx *ctx, unsigned long start, unsigned long end)
{
	struct gs_dev *gd = ctx->svm->be_priv;

	return p2plab_svm_dm_populate(gd->dm, ctx->mm, start, end);
}

static void gs_dbg_show(struct p2plab_svm *svm, struct seq_file *m)
{
	struct gs_dev *gd = svm->be_priv;

	if (gd)
		p2plab_svm_dm_show(m, gd->dm);
}

static int gs_ctx_init(struct p2plab_svm_ctx *ctx)
{
	struct gs_ctx *gc;
	int ret;

	if (!ctx->svm->be_priv)
		return -EOPNOTSUPP;	/* no DRM device */
	gc = kzalloc(sizeof(*gc), GFP_KERNEL);
	if (!gc)
		return -ENOMEM;
	gc->ctx = ctx;
	mutex_init(&gc->range_lock);
	spin_lock_init(&gc->gc_lock);
	INIT_LIST_HEAD(&gc->gc_list);
	ret = drm_gpusvm_init(&gc->gpusvm, "p2plab SVM", ctx->mm, 0, TASK_SIZE, SZ_512M,
			      &gs_ops, gs_chunk_sizes, ARRAY_SIZE(gs_chunk_sizes));
	if (ret) {
		kfree(gc);
		return ret;
	}
	drm_gpusvm_driver_set_lock(&gc->gpusvm, &gc->range_lock);
	ctx->be_priv = gc;
	return 0;
}

static void gs_ctx_fini(struct p2plab_svm_ctx *ctx)
{
	struct gs_ctx *gc = ctx->be_priv;
	struct drm_gpusvm_ctx dctx = {};
	struct drm_gpusvm_notifier *n, *nn;
	struct drm_gpusvm_range *r, *rn;

	if (!gc)
		return;
	/* the device context is already disabled: DMA-unmap every range, then the helpers' fini */
	mutex_lock(&gc->range_lock);
	drm_gpusvm_for_each_notifier_safe(n, nn, &gc->gpusvm, 0, LONG_MAX)
		drm_gpusvm_for_each_range_safe(r, rn, n, 0, LONG_MAX)
			drm_gpusvm_unmap_pages(&gc->gpusvm, &to_gs_range(r)->pages,
					       drm_gpusvm_range_size(r) >> PAGE_SHIFT, &dctx);
	spin_lock(&gc->gc_lock);
	while (!list_empty(&gc->gc_list))
		list_del_init(gc->gc_list.next);
	spin_unlock(&gc->gc_lock);
	drm_gpusvm_fini(&gc->gpusvm);
	mutex_unlock(&gc->range_lock);
	kfree(gc);
	ctx->be_priv = NULL;
}

static int gs_dev_init(struct p2plab_svm *svm)
{
	struct gs_dev *gd;
	int ret;

	gd = kzalloc(sizeof(*gd), GFP_KERNEL);
	if (!gd)
		return -ENOMEM;
	gd->drm = drm_dev_alloc(&gs_drm_driver, &svm->pd->pdev->dev);
	if (IS_ERR(gd->drm)) {
		ret = PTR_ERR(gd->drm);
		goto err_free_gd;
	}
	ret = drm_dev_register(gd->drm, 0);
	if (ret)
		goto err_put_drm;
	/* device memory for placement, if BAR2 has a carve-out for it */
	gd->dm = p2plab_svm_dm_create(svm, gd->drm);
	if (IS_ERR(gd->dm)) {
		dev_warn(&svm->pd->pdev->dev,
			 "svm: gpusvm device memory unavailable (%ld): no PREFER_DEVICE placement\n",
			 PTR_ERR(gd->dm));
		gd->dm = NULL;
	}
	svm->be_priv = gd;
	return 0;

err_put_drm:
	drm_dev_put(gd->drm);
err_free_gd:
	kfree(gd);
	return ret;
}

static void gs_dev_fini(struct p2plab_svm *svm)
{
	struct gs_dev *gd = svm->be_priv;

	if (!gd)
		return;
	/* every device page back to RAM first: the pagemap holds the DRM device */
	p2plab_svm_dm_destroy(gd->dm);
	drm_dev_unregister(gd->drm);
	drm_dev_put(gd->drm);
	kfree(gd);
	svm->be_priv = NULL;
}

const struct p2plab_svm_backend p2plab_svm_gpusvm_backend = {
	.name = "gpusvm",
	.id = P2PLAB_SVM_BACKEND_GPUSVM,
	.dev_init = gs_dev_init,
	.dev_fini = gs_dev_fini,
	.ctx_init = gs_ctx_init,
	.ctx_fini = gs_ctx_fini,
	.fault = gs_fault,
	.can_place = gs_can_place,
	.place = gs_place,
	.dbg_show = gs_dbg_show,
};
