// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_svm_odp.c - the "odp" SVM backend: device faults resolved the way RDMA on-demand paging
 * does it (drivers/infiniband/core/umem_odp.c, drivers/infiniband/hw/mlx5/odp.c), with the kernel's
 * own helpers only:
 *   - one mmu_interval_notifier per 2 MiB range of the process the device touched;
 *   - hmm_range_fault() straight into the range's hmm_dma_map pfn_list, in the
 *     mmu_interval_read_begin() / mmu_interval_read_retry() loop, ctx->lock as the driver lock,
 *     dev_private_owner = the SVM device (device-private pages of anyone are brought back);
 *   - hmm_dma_map_pfn() for the DMA address of each page (IOVA, direct, or P2P as the kernel
 *     decides), hmm_dma_unmap_pfn() after the device TLB invalidation, hmm_dma_map_free();
 *   - 2 MiB device leaves where hmm_pfn_to_map_order() says the CPU maps a PMD and the DMA
 *     addresses the kernel gave are contiguous and 2 MiB aligned;
 *   - atomics: make_device_exclusive() (as nouveau_atomic_range_fault()), revoked through the
 *     notifier when the CPU touches the page.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/mmu_notifier.h>
#include <linux/rmap.h>
#include <linux/sched/mm.h>
#include <linux/pci-p2pdma.h>
#include <linux/xarray.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_svm.h"

static bool svm_exclusive_restore = true;
module_param(svm_exclusive_restore, bool, 0644);
MODULE_PARM_DESC(svm_exclusive_restore, "odp atomics: after a read_retry, fault the page back to an ordinary PTE (hmm_range_fault) before calling make_device_exclusive() again (default 1; 0 = the plain nouveau pattern, which livelocks on THP: docs/svm.md)");

#define ODP_RANGE_SHIFT		PMD_SHIFT
#define ODP_RANGE_SIZE		(1UL << ODP_RANGE_SHIFT)
#define ODP_RANGE_PAGES		(ODP_RANGE_SIZE >> PAGE_SHIFT)

struct odp_range {
	struct mmu_interval_notifier notifier;
	struct hmm_dma_map map;			/* pfn_list = the mirror of the range */
	struct p2plab_svm_ctx *ctx;
	unsigned long start;
};

struct odp_ctx {
	struct xarray ranges;			/* key: va >> ODP_RANGE_SHIFT */
};

static inline struct device *odp_dev(struct p2plab_svm_ctx *ctx)
{
	return &ctx->pd->pdev->dev;
}

/* drop entry @idx of @r: DMA unmap it (after the device TLB invalidation), as umem_odp does */
static void odp_entry_clear(struct p2plab_svm_ctx *ctx, struct odp_range *r, size_t idx)
{
	unsigned long e = r->map.pfn_list[idx];

	if (hmm_dma_unmap_pfn(odp_dev(ctx), &r->map, idx)) {
		atomic64_inc(&ctx->dma_unmaps);
		if (e & HMM_PFN_WRITE) {
			struct page *page = hmm_pfn_to_page(e);

			if (!is_zone_device_page(page))
				set_page_dirty(compound_head(page));
		}
	}
	r->map.pfn_list[idx] = 0;
}

static bool odp_invalidate(struct mmu_interval_notifier *mni,
			   const struct mmu_notifier_range *range, unsigned long cur_seq)
{
	struct odp_range *r = container_of(mni, struct odp_range, notifier);
	struct p2plab_svm_ctx *ctx = r->ctx;
	unsigned long s, e, a;
	bool blockable = mmu_notifier_range_blockable(range);

	/* our own make_device_exclusive(): the page stays the same (nouveau does the same) */
	if (range->event == MMU_NOTIFY_EXCLUSIVE && range->owner == ctx->svm)
		return true;

	if (blockable)
		mutex_lock(&ctx->lock);
	else if (!mutex_trylock(&ctx->lock))
		return false;

	mmu_interval_set_seq(mni, cur_seq);
	s = max(range->start, r->start);
	e = min(range->end, r->start + ODP_RANGE_SIZE);
	if (s < e) {
		/* 1. the device forgets the mapping: PTEs, then its TLB (waited for) */
		if (p2plab_svm_pte_clear(ctx, s, e)) {
			/* a 2 MiB leaf is cleared whole: invalidate what it covered */
			p2plab_svm_tlb_inv(ctx, ALIGN_DOWN(s, ODP_RANGE_SIZE),
					   ALIGN(e, ODP_RANGE_SIZE), blockable);
			atomic64_inc(&ctx->notifier_calls);
		}
		/* 2. only then the DMA mappings go */
		for (a = s; a < e; a += PAGE_SIZE)
			odp_entry_clear(ctx, r, (a - r->start) >> PAGE_SHIFT);
	}
	mutex_unlock(&ctx->lock);
	return true;
}

static const struct mmu_interval_notifier_ops odp_notifier_ops = {
	.invalidate = odp_invalidate,
};

/* the range holding @va, created with its notifier if new. Not under ctx->lock. mm is held. */
static struct odp_range *odp_range_get(struct p2plab_svm_ctx *ctx, unsigned long va)
{
	struct odp_ctx *oc = ctx->be_priv;
	unsigned long key = va >> ODP_RANGE_SHIFT;
	struct odp_range *r;
	int ret;

	r = xa_load(&oc->ranges, key);
	if (r)
		return r;
	r = kzalloc(sizeof(*r), GFP_KERNEL);
	if (!r)
		return ERR_PTR(-ENOMEM);
	r->ctx = ctx;
	r->start = key << ODP_RANGE_SHIFT;
	ret = hmm_dma_map_alloc(odp_dev(ctx), &r->map, ODP_RANGE_PAGES, PAGE_SIZE);
	if (ret) {
		dev_warn_once(odp_dev(ctx), "svm odp: hmm_dma_map_alloc: %d\n", ret);
		goto err_free_range;
	}
	ret = mmu_interval_notifier_insert(&r->notifier, ctx->mm, r->start, ODP_RANGE_SIZE,
					   &odp_notifier_ops);
	if (ret)
		goto err_free_map;
	ret = xa_insert(&oc->ranges, key, r, GFP_KERNEL);
	if (ret)
		goto err_remove_notifier;
	atomic64_inc(&ctx->ranges);
	return r;

err_remove_notifier:
	mmu_interval_notifier_remove(&r->notifier);
err_free_map:
	hmm_dma_map_free(odp_dev(ctx), &r->map);
err_free_range:
	kfree(r);
	return ERR_PTR(ret);
}

/*
 * The device address of entry @idx: what hmm_dma_map_pfn() gives. DMA_MAPPING_ERROR when the kernel
 * refuses (a P2P page it will not map for this device).
 */
static dma_addr_t odp_map(struct p2plab_svm_ctx *ctx, struct odp_range *r, size_t idx,
			  struct pci_p2pdma_map_state *p2p)
{
	bool was = r->map.pfn_list[idx] & HMM_PFN_DMA_MAPPED;
	dma_addr_t dma = hmm_dma_map_pfn(odp_dev(ctx), &r->map, idx, p2p);

	if (dma != DMA_MAPPING_ERROR && !was)
		atomic64_inc(&ctx->dma_maps);
	return dma;
}

/*
 * write the device PTEs of [start, end) of @r from its pfn_list. ctx->lock held. -EAGAIN: a write
 * fault found a read-only page of this device's private memory (to be brought back first).
 */
static int odp_write_ptes(struct p2plab_svm_ctx *ctx, struct odp_range *r, unsigned long start,
			  unsigned long end, bool write)
{
	struct pci_p2pdma_map_state p2p = {};
	unsigned long *pfns = r->map.pfn_list;
	size_t first = (start - r->start) >> PAGE_SHIFT, n = (end - start) >> PAGE_SHIFT, i;
	int ret;

	/* a whole 2 MiB range the CPU maps with a PMD: try one 2 MiB device leaf */
	if (n == ODP_RANGE_PAGES && (pfns[0] & HMM_PFN_VALID) &&
	    hmm_pfn_to_map_order(pfns[0]) >= ODP_RANGE_SHIFT - PAGE_SHIFT) {
		dma_addr_t base = odp_map(ctx, r, 0, &p2p);
		bool ok = base != DMA_MAPPING_ERROR && IS_ALIGNED(base, ODP_RANGE_SIZE);
		bool w = pfns[0] & HMM_PFN_WRITE;

		for (i = 1; ok && i < n; i++) {
			ok = (pfns[i] & HMM_PFN_VALID) &&
			     hmm_pfn_to_map_order(pfns[i]) >= ODP_RANGE_SHIFT - PAGE_SHIFT &&
			     !!(pfns[i] & HMM_PFN_WRITE) == w &&
			     odp_map(ctx, r, i, &p2p) == base + i * PAGE_SIZE;
		}
		if (ok)
			return p2plab_svm_pte_set_2m(ctx, r->start, base, P2PLAB_PTE_R |
						     (w ? P2PLAB_PTE_W : 0));
	}
	for (i = first; i < first + n; i++) {
		unsigned long e = pfns[i];
		dma_addr_t dma;
		u64 off;

		if (!(e & HMM_PFN_VALID))
			return -EFAULT;
		if (p2plab_svm_local_page(ctx, hmm_pfn_to_page(e), &off)) {
			/* this device's private memory (placement): a LOCAL leaf, no DMA mapping */
			if (write && !(e & HMM_PFN_WRITE))
				return -EAGAIN;
			ret = p2plab_svm_pte_set_4k(ctx, r->start + (i << PAGE_SHIFT), off,
						    P2PLAB_PTE_LOCAL | P2PLAB_PTE_R |
						    ((e & HMM_PFN_WRITE) ? P2PLAB_PTE_W : 0));
			if (ret)
				return ret;
			atomic64_inc(&ctx->pl_local);
			continue;
		}
		dma = odp_map(ctx, r, i, &p2p);
		if (dma == DMA_MAPPING_ERROR)
			return -EREMOTEIO;
		ret = p2plab_svm_pte_set_4k(ctx, r->start + (i << PAGE_SHIFT), dma, P2PLAB_PTE_R |
					    ((e & HMM_PFN_WRITE) ? P2PLAB_PTE_W : 0));
		if (ret)
			return ret;
	}
	return 0;
}

/* hmm_range_fault() of [start, end) (inside one range) + PTEs. mm held (mmget). */
static int odp_fault_window(struct p2plab_svm_ctx *ctx, struct odp_range *r,
			    unsigned long start, unsigned long end, bool write)
{
	struct mm_struct *mm = ctx->mm;
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct hmm_range range = {
		.notifier = &r->notifier,
		.start = start,
		.end = end,
		.hmm_pfns = &r->map.pfn_list[(start - r->start) >> PAGE_SHIFT],
		.default_flags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
		.pfn_flags_mask = 0,
		/* this device's private pages (placement) are mapped where they are */
		.dev_private_owner = p2plab_svm_private_owner(ctx),
	};
	int ret;

	ret = p2plab_svm_pt_reserve(ctx, 3);	/* level 3, 2, 1 tables at most */
	if (ret)
		return ret;
again:
	for (;;) {
		if (time_after(jiffies, timeout))
			return -EBUSY;
		range.notifier_seq = mmu_interval_read_begin(range.notifier);
		mmap_read_lock(mm);
		ret = hmm_range_fault(&range);
		mmap_read_unlock(mm);
		if (ret == -EBUSY) {
			atomic64_inc(&ctx->retries);
			continue;
		}
		if (ret)
			return ret;
		mutex_lock(&ctx->lock);
		if (mmu_interval_read_retry(range.notifier, range.notifier_seq)) {
			mutex_unlock(&ctx->lock);
			atomic64_inc(&ctx->retries);
			continue;
		}
		break;
	}
	ret = odp_write_ptes(ctx, r, start, end, write);
	if (ret == -EAGAIN && range.dev_private_owner != ctx->svm) {
		/*
		 * A read-only page of our own private memory (after fork) for a write: own pages
		 * are reported as they are (hmm_range_fault() does not fault them writable), so
		 * fault again as a stranger: migrate_to_ram, then the write fault (COW).
		 */
		mutex_unlock(&ctx->lock);
		atomic64_inc(&ctx->retries);
		range.dev_private_owner = ctx->svm;
		goto again;
	}
	mutex_unlock(&ctx->lock);
	if (!ret)
		atomic64_add((end - start) >> PAGE_SHIFT, &ctx->fault_pages);
	return ret;
}

/*
 * Bring the page at @pa back to an ordinary (writable) CPU mapping: hmm_range_fault() faults a
 * device-exclusive entry back (do_swap_page -> remove_device_exclusive_entry). The result is not
 * used; the invalidation it causes happens here, outside the caller's read_begin/retry window.
 */
static void odp_restore_page(struct p2plab_svm_ctx *ctx, struct odp_range *r, unsigned long pa)
{
	unsigned long pfn = 0;
	struct hmm_range range = {
		.notifier = &r->notifier,
		.start = pa,
		.end = pa + PAGE_SIZE,
		.hmm_pfns = &pfn,
		.default_flags = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
		.dev_private_owner = ctx->svm,
	};

	range.notifier_seq = mmu_interval_read_begin(range.notifier);
	mmap_read_lock(ctx->mm);
	hmm_range_fault(&range);	/* -EBUSY after the fault is expected */
	mmap_read_unlock(ctx->mm);
}

/*
 * An atomic fault, as nouveau_atomic_range_fault(): make_device_exclusive() inside the
 * read_begin/retry window, the PTE written under ctx->lock, then the folio unlocked.
 *
 * Finding (docs/svm.md): that loop does not converge once it has to retry after a successful
 * make_device_exclusive(). The retry calls it again on the entry it made exclusive; its GUP faults
 * that entry back (remove_device_exclusive_entry(): MMU_NOTIFY_CLEAR, owner NULL, which the
 * caller cannot filter) and so invalidates the caller's own notifier, every time. The first call
 * on a PMD-mapped THP always retries: FOLL_SPLIT_PMD splits the PMD under an invalidation of the
 * range. With svm_exclusive_restore the retry first faults the page back to an ordinary PTE
 * (odp_restore_page(), outside the window); the next make_device_exclusive() then finds a
 * writable PTE and only sends its own (filtered) MMU_NOTIFY_EXCLUSIVE.
 */
static int odp_fault_atomic(struct p2plab_svm_ctx *ctx, unsigned long va)
{
	unsigned long pa = va & PAGE_MASK, timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	struct pci_p2pdma_map_state p2p = {};
	struct mm_struct *mm = ctx->mm;
	struct odp_range *r;
	struct folio *folio;
	struct page *page;
	unsigned long seq, *e;
	size_t idx;
	dma_addr_t dma;
	int ret;

	r = odp_range_get(ctx, pa);
	if (IS_ERR(r))
		return PTR_ERR(r);
	ret = p2plab_svm_pt_reserve(ctx, 3);
	if (ret)
		return ret;
	for (;;) {
		if (time_after(jiffies, timeout))
			return -EBUSY;
		seq = mmu_interval_read_begin(&r->notifier);
		mmap_read_lock(mm);
		page = make_device_exclusive(mm, pa, ctx->svm, &folio);
		mmap_read_unlock(mm);
		if (IS_ERR(page))
			return -EFAULT;		/* no VMA, not writable, not anonymous ... */
		mutex_lock(&ctx->lock);
		if (!mmu_interval_read_retry(&r->notifier, seq))
			break;
		mutex_unlock(&ctx->lock);
		folio_unlock(folio);
		folio_put(folio);
		atomic64_inc(&ctx->retries);
		if (READ_ONCE(svm_exclusive_restore))
			odp_restore_page(ctx, r, pa);
	}
	idx = (pa - r->start) >> PAGE_SHIFT;
	e = &r->map.pfn_list[idx];
	if (!(*e & HMM_PFN_VALID) || hmm_pfn_to_page(*e) != page)
		odp_entry_clear(ctx, r, idx);	/* (not expected: the notifier cleared it) */
	/* keep the sticky DMA flags: the same page stays mapped */
	*e = (*e & (HMM_PFN_DMA_MAPPED | HMM_PFN_P2PDMA | HMM_PFN_P2PDMA_BUS)) |
	     page_to_pfn(page) | HMM_PFN_VALID | HMM_PFN_WRITE;
	dma = odp_map(ctx, r, idx, &p2p);
	if (dma == DMA_MAPPING_ERROR) {
		ret = -EFAULT;
	} else {
		/* a 2 MiB leaf over it goes (whole) first, then the atomic 4 KiB leaf */
		if (p2plab_svm_pte_clear(ctx, pa, pa + PAGE_SIZE))
			p2plab_svm_tlb_inv(ctx, ALIGN_DOWN(pa, ODP_RANGE_SIZE),
					   ALIGN_DOWN(pa, ODP_RANGE_SIZE) + ODP_RANGE_SIZE, true);
		ret = p2plab_svm_pte_set_4k(ctx, pa, dma,
					    P2PLAB_PTE_R | P2PLAB_PTE_W | P2PLAB_PTE_A);
		if (!ret) {
			atomic64_inc(&ctx->exclusive);
			atomic64_inc(&ctx->fault_pages);
		}
	}
	mutex_unlock(&ctx->lock);
	folio_unlock(folio);
	folio_put(folio);
	return ret;
}

static int odp_fault(struct p2plab_svm_ctx *ctx, u64 va, u32 access)
{
	struct mm_struct *mm = ctx->mm;
	struct vm_area_struct *vma;
	unsigned long start, end, rs;
	struct odp_range *r;
	int ret;

	if (!mmget_not_zero(mm))
		return -EFAULT;		/* the process is exiting */
	if (access == P2PLAB_FAULT_ACC_ATOMIC) {
		ret = odp_fault_atomic(ctx, va);
		goto out_mmput;
	}
	/*
	 * Fault ahead: the rest of the faulting 2 MiB range inside the VMA (as a GPU driver faults
	 * a chunk); if that fails, the faulting page alone decides.
	 */
	rs = ALIGN_DOWN(va, ODP_RANGE_SIZE);
	mmap_read_lock(mm);
	vma = vma_lookup(mm, va);
	if (!vma) {
		mmap_read_unlock(mm);
		ret = -EFAULT;
		goto out_mmput;
	}
	start = max(vma->vm_start, rs);
	end = min(vma->vm_end, rs + ODP_RANGE_SIZE);
	mmap_read_unlock(mm);

	r = odp_range_get(ctx, va);
	if (IS_ERR(r)) {
		ret = PTR_ERR(r);
		goto out_mmput;
	}
	ret = odp_fault_window(ctx, r, start, end, access == P2PLAB_FAULT_ACC_WRITE);
	if (ret && end - start > PAGE_SIZE)
		ret = odp_fault_window(ctx, r, va & PAGE_MASK, (va & PAGE_MASK) + PAGE_SIZE,
				       access == P2PLAB_FAULT_ACC_WRITE);
out_mmput:
	mmput(mm);
	return ret;
}

static int odp_ctx_init(struct p2plab_svm_ctx *ctx)
{
	struct odp_ctx *oc = kzalloc(sizeof(*oc), GFP_KERNEL);

	if (!oc)
		return -ENOMEM;
	xa_init(&oc->ranges);
	ctx->be_priv = oc;
	return 0;
}

static void odp_ctx_fini(struct p2plab_svm_ctx *ctx)
{
	struct odp_ctx *oc = ctx->be_priv;
	struct odp_range *r;
	unsigned long key;
	size_t i;

	if (!oc)
		return;
	xa_for_each(&oc->ranges, key, r) {
		/* waits for a running invalidate callback; none can start afterwards */
		mmu_interval_notifier_remove(&r->notifier);
		mutex_lock(&ctx->lock);
		for (i = 0; i < ODP_RANGE_PAGES; i++)
			odp_entry_clear(ctx, r, i);
		mutex_unlock(&ctx->lock);
		xa_erase(&oc->ranges, key);
		hmm_dma_map_free(odp_dev(ctx), &r->map);
		kfree(r);
	}
	xa_destroy(&oc->ranges);
	kfree(oc);
	ctx->be_priv = NULL;
}

const struct p2plab_svm_backend p2plab_svm_odp_backend = {
	.name = "odp",
	.id = P2PLAB_SVM_BACKEND_ODP,
	.ctx_init = odp_ctx_init,
	.ctx_fini = odp_ctx_fini,
	.fault = odp_fault,
};
