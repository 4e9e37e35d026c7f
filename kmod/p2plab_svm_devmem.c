// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_svm_devmem.c - device memory of the "gpusvm" SVM backend, through the kernel's
 * drm_pagemap (drivers/gpu/drm/drm_pagemap.c), the way xe gives drm_gpusvm its VRAM
 * (drivers/gpu/drm/xe/xe_svm.c):
 *   - BAR2 [svm_dm_off, svm_dm_off + svm_dm_size) (module parameter svm_devmem, carved from the end
 *     of the HMM window by p2plab_core.c) is one MEMORY_DEVICE_PRIVATE dev_pagemap whose ops are
 *     drm_pagemap's (drm_pagemap_pagemap_ops_get(): migrate_to_ram = drm_pagemap_migrate_to_ram())
 *     and whose owner is the SVM device (the gpusvm backend's device_private_page_owner), wrapped
 *     in a struct drm_pagemap (drm_pagemap_init());
 *   - a PREFER_DEVICE fault calls drm_pagemap_populate_mm() -> our populate_mm op: one allocation
 *     (a contiguous run of pages, 2 MiB aligned for a whole 2 MiB) -> drm_pagemap_devmem_init() ->
 *     drm_pagemap_migrate_to_devmem(), which runs migrate_vma_*() and calls our copy_to_devmem();
 *   - drm_gpusvm_get_pages() then reports the pages (same owner) and maps each through our
 *     device_map op: its BAR2 offset, DRM_INTERCONNECT_DRIVER (a LOCAL leaf for the device MMU);
 *   - a CPU touch: drm_pagemap_migrate_to_ram() -> copy_to_ram(); the last page of an allocation
 *     going frees it (devmem_release);
 *   - remove: every allocation still holding pages goes back with drm_pagemap_evict_to_ram().
 * Both copies are descriptor batches on the device's DMA engine (p2plab_dma_run()) between the
 * device page's BAR2 offset and the DMA address drm_pagemap mapped the system page at.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/sched/mm.h>
#include <linux/memremap.h>
#include <linux/ioport.h>
#include <linux/bitmap.h>
#include <linux/workqueue.h>
#include <linux/delay.h>
#include <linux/seq_file.h>
#include <drm/drm_device.h>
#include <drm/drm_pagemap.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_svm.h"

/* the carve-out: one dev_pagemap + drm_pagemap, a page bitmap */
struct p2plab_svm_dm {
	struct p2plab_svm *svm;
	struct drm_pagemap dpagemap;
	struct dev_pagemap pagemap;
	struct resource *res;
	u64 dev_off;			/* BAR2 offset of the first page */
	unsigned long pfn_first, npages;
	spinlock_t lock;		/* bitmap, used, allocs, dying */
	unsigned long *bitmap;		/* pages given to allocations */
	unsigned long used;
	struct list_head allocs;	/* allocations holding pages */
	bool dying;			/* remove: no new allocation */
	struct workqueue_struct *wq;	/* allocations' final free */
	struct completion released;	/* the drm_pagemap's last reference went */
	atomic64_t st_to_dev, st_to_ram, st_evicted, st_allocs, st_full, st_errors;
};

/* one drm_pagemap_devmem allocation: pages [first, first + npages) of the carve-out */
struct p2plab_svm_dm_alloc {
	struct drm_pagemap_devmem devmem;
	struct p2plab_svm_dm *dm;
	struct list_head link;		/* dm->allocs while it holds pages */
	struct kref ref;		/* the pages' (dropped by devmem_release) + an evictor's */
	struct work_struct free_work;	/* mmdrop + kfree out of devmem_release's context */
	struct mm_struct *mm;		/* grabbed: devmem.mm stays valid for eviction */
	unsigned long first, npages;
};

static inline struct p2plab_svm_dm *to_dm(struct drm_pagemap *dp)
{
	return container_of(dp, struct p2plab_svm_dm, dpagemap);
}

static inline struct p2plab_svm_dm_alloc *to_alloc(struct drm_pagemap_devmem *d)
{
	return container_of(d, struct p2plab_svm_dm_alloc, devmem);
}

/* BAR2 offset of one of our device pages */
static u64 dm_page_off(struct p2plab_svm_dm *dm, struct page *page)
{
	return dm->dev_off + ((page_to_pfn(page) - dm->pfn_first) << PAGE_SHIFT);
}

bool p2plab_svm_dm_page(struct p2plab_svm_dm *dm, struct page *page)
{
	return dm && is_device_private_page(page) && page_pgmap(page) == &dm->pagemap;
}

/* ---- copies: the DMA engine ------------------------------------------------------------------- */

/*
 * One batch: device page i <-> DMA address i, for every entry drm_pagemap populated (both set);
 * an entry of order > 0 covers the next 2^order - 1 entries. Contiguous pieces merge.
 */
static int dm_copy(struct p2plab_svm_dm *dm, struct page **pages, struct drm_pagemap_addr *addr,
		   unsigned long npages, bool to_dev)
{
	struct p2plab_xfer *x;
	unsigned long i, n = 0;
	u64 bytes = 0;
	int ret;

	x = kvcalloc(npages, sizeof(*x), GFP_KERNEL);
	if (!x)
		return -ENOMEM;
	for (i = 0; i < npages; i += 1UL << addr[i].order) {
		u64 off, len = PAGE_SIZE << addr[i].order;
		struct p2plab_xfer *p = n ? &x[n - 1] : NULL;

		if (!pages[i] || !addr[i].addr)
			continue;	/* not migrating (drm_pagemap left it unpopulated) */
		off = dm_page_off(dm, pages[i]);
		if (to_dev && p && p->src + p->len == addr[i].addr && p->dst + p->len == off &&
		    p->len + len <= P2PLAB_DESC_MAX_LEN) {
			p->len += len;
		} else if (!to_dev && p && p->src + p->len == off &&
			   p->dst + p->len == addr[i].addr && p->len + len <= P2PLAB_DESC_MAX_LEN) {
			p->len += len;
		} else {
			p = &x[n++];
			p->src = to_dev ? addr[i].addr : off;
			p->dst = to_dev ? off : addr[i].addr;
			p->len = len;
			p->flags = to_dev ? P2PLAB_DESC_F_DST_LOCAL : P2PLAB_DESC_F_SRC_LOCAL;
		}
		bytes += len;
	}
	ret = n ? p2plab_dma_run(dm->svm->pd, x, n, 0, NULL, NULL) : 0;
	kvfree(x);
	if (ret) {
		atomic64_inc(&dm->st_errors);
		dev_warn_ratelimited(&dm->svm->pd->pdev->dev,
				     "svm devmem: copy %s failed: %d\n", to_dev ? "to device" : "to RAM",
				     ret);
		return ret;
	}
	atomic64_add(bytes >> PAGE_SHIFT, to_dev ? &dm->st_to_dev : &dm->st_to_ram);
	return 0;
}

/* the carve-out of the first device page given (drm_pagemap passes pages, not the pagemap) */
static struct p2plab_svm_dm *dm_of(struct page **pages, unsigned long npages)
{
	unsigned long i;

	for (i = 0; i < npages; i++)
		if (pages[i])
			return container_of(page_pgmap(pages[i]), struct p2plab_svm_dm, pagemap);
	return NULL;
}

static int dm_copy_to_devmem(struct page **pages, struct drm_pagemap_addr *addr,
			     unsigned long npages, struct dma_fence *pre_migrate_fence)
{
	struct p2plab_svm_dm *dm = dm_of(pages, npages);

	return dm ? dm_copy(dm, pages, addr, npages, true) : 0;
}

static int dm_copy_to_ram(struct page **pages, struct drm_pagemap_addr *addr,
			  unsigned long npages, struct dma_fence *pre_migrate_fence)
{
	struct p2plab_svm_dm *dm = dm_of(pages, npages);

	return dm ? dm_copy(dm, pages, addr, npages, false) : 0;
}

/* ---- allocations ------------------------------------------------------------------------------ */

static void dm_alloc_free_work(struct work_struct *w)
{
	struct p2plab_svm_dm_alloc *a = container_of(w, struct p2plab_svm_dm_alloc, free_work);

	mmdrop(a->mm);
	kfree(a);
}

static void dm_alloc_last_ref(struct kref *ref)
{
	struct p2plab_svm_dm_alloc *a = container_of(ref, struct p2plab_svm_dm_alloc, ref);

	/* devmem_release may run where mmdrop() may not (a page's last put) */
	queue_work(a->dm->wq, &a->free_work);
}

/* drm_pagemap: the allocation's last device page was freed (or its migration failed) */
static void dm_devmem_release(struct drm_pagemap_devmem *devmem)
{
	struct p2plab_svm_dm_alloc *a = to_alloc(devmem);
	struct p2plab_svm_dm *dm = a->dm;
	unsigned long flags;

	spin_lock_irqsave(&dm->lock, flags);
	list_del_init(&a->link);
	bitmap_clear(dm->bitmap, a->first, a->npages);
	dm->used -= a->npages;
	spin_unlock_irqrestore(&dm->lock, flags);
	kref_put(&a->ref, dm_alloc_last_ref);
}

static int dm_populate_devmem_pfn(struct drm_pagemap_devmem *devmem, unsigned long npages,
				  unsigned long *pfn)
{
	struct p2plab_svm_dm_alloc *a = to_alloc(devmem);
	unsigned long i;

	if (npages > a->npages)
		return -EINVAL;
	for (i = 0; i < npages; i++)
		pfn[i] = a->dm->pfn_first + a->first + i;
	return 0;
}

static const struct drm_pagemap_devmem_ops dm_devmem_ops = {
	.devmem_release = dm_devmem_release,
	.populate_devmem_pfn = dm_populate_devmem_pfn,
	.copy_to_devmem = dm_copy_to_devmem,
	.copy_to_ram = dm_copy_to_ram,
};

/* a run of @npages pages; a whole 2 MiB is 2 MiB aligned (a THP source migrates as one folio) */
static struct p2plab_svm_dm_alloc *dm_alloc(struct p2plab_svm_dm *dm, struct mm_struct *mm,
					    unsigned long npages)
{
	unsigned long align = npages >= HPAGE_PMD_NR ? HPAGE_PMD_NR - 1 : 0, first, flags;
	struct p2plab_svm_dm_alloc *a;

	a = kzalloc(sizeof(*a), GFP_KERNEL);
	if (!a)
		return NULL;
	spin_lock_irqsave(&dm->lock, flags);
	first = dm->dying ? dm->npages :
		bitmap_find_next_zero_area(dm->bitmap, dm->npages, 0, npages, align);
	if (first >= dm->npages) {
		spin_unlock_irqrestore(&dm->lock, flags);
		kfree(a);
		atomic64_inc(&dm->st_full);
		return NULL;
	}
	bitmap_set(dm->bitmap, first, npages);
	dm->used += npages;
	a->dm = dm;
	a->first = first;
	a->npages = npages;
	kref_init(&a->ref);
	INIT_WORK(&a->free_work, dm_alloc_free_work);
	list_add_tail(&a->link, &dm->allocs);
	spin_unlock_irqrestore(&dm->lock, flags);
	mmgrab(mm);
	a->mm = mm;
	return a;
}

/* ---- drm_pagemap ops -------------------------------------------------------------------------- */

/* drm_pagemap_populate_mm() (mmap lock held for read): migrate [start, end) into device memory */
static int dm_populate_mm(struct drm_pagemap *dpagemap, unsigned long start, unsigned long end,
			  struct mm_struct *mm, unsigned long timeslice_ms)
{
	struct p2plab_svm_dm *dm = to_dm(dpagemap);
	struct drm_pagemap_migrate_details md = { .timeslice_ms = timeslice_ms };
	struct p2plab_svm_dm_alloc *a;

	a = dm_alloc(dm, mm, (end - start) >> PAGE_SHIFT);
	if (!a)
		return -ENOMEM;
	drm_pagemap_devmem_init(&a->devmem, &dm->svm->pd->pdev->dev, mm, &dm_devmem_ops, dpagemap,
				end - start, NULL);
	atomic64_inc(&dm->st_allocs);
	/* the allocation's reference passes to the migration (released on failure, or with the pages) */
	return drm_pagemap_migrate_to_devmem(&a->devmem, mm, start, end, &md);
}

/* drm_gpusvm_get_pages(): a device page of ours -> its BAR2 offset (a LOCAL leaf, no DMA mapping) */
static struct drm_pagemap_addr dm_device_map(struct drm_pagemap *dpagemap, struct device *dev,
					     struct page *page, unsigned int order,
					     enum dma_data_direction dir)
{
	return drm_pagemap_addr_encode(dm_page_off(to_dm(dpagemap), page), DRM_INTERCONNECT_DRIVER,
				       order, dir);
}

static void dm_device_unmap(struct drm_pagemap *dpagemap, struct device *dev,
			    const struct drm_pagemap_addr *addr)
{
}

/* the drm_pagemap's last reference went (it is embedded: nothing to free here) */
static void dm_destroy(struct drm_pagemap *dpagemap, bool is_atomic_or_reclaim)
{
	complete_all(&to_dm(dpagemap)->released);
}

static const struct drm_pagemap_ops dm_ops = {
	.device_map = dm_device_map,
	.device_unmap = dm_device_unmap,
	.populate_mm = dm_populate_mm,
	.destroy = dm_destroy,
};

/* ---- setup / teardown ------------------------------------------------------------------------- */

struct p2plab_svm_dm *p2plab_svm_dm_create(struct p2plab_svm *svm, struct drm_device *drm)
{
	struct p2plab_dev *pd = svm->pd;
	u64 size = pd->svm_dm_size;
	struct p2plab_svm_dm *dm;
	void *ptr;
	int ret;

	if (!size)
		return NULL;
	dm = kzalloc(sizeof(*dm), GFP_KERNEL);
	if (!dm)
		return ERR_PTR(-ENOMEM);
	dm->svm = svm;
	dm->dev_off = pd->svm_dm_off;
	dm->npages = size >> PAGE_SHIFT;
	spin_lock_init(&dm->lock);
	INIT_LIST_HEAD(&dm->allocs);
	init_completion(&dm->released);
	ret = -ENOMEM;
	dm->bitmap = bitmap_zalloc(dm->npages, GFP_KERNEL);
	if (!dm->bitmap)
		goto err_free_dm;
	dm->wq = alloc_workqueue("p2plab-svm-dm", WQ_UNBOUND, 0);
	if (!dm->wq)
		goto err_free_bitmap;
	dm->res = request_free_mem_region(&iomem_resource, size, "p2plab-svm-devmem");
	if (IS_ERR_OR_NULL(dm->res)) {
		ret = dm->res ? PTR_ERR(dm->res) : -ENOMEM;
		goto err_destroy_wq;
	}
	dm->pagemap.type = MEMORY_DEVICE_PRIVATE;
	dm->pagemap.range.start = dm->res->start;
	dm->pagemap.range.end = dm->res->end;
	dm->pagemap.nr_range = 1;
	dm->pagemap.owner = svm;	/* the gpusvm backend's device_private_page_owner */
	dm->pagemap.ops = drm_pagemap_pagemap_ops_get();
	/* takes a reference on the DRM device and this module until the drm_pagemap's release */
	ret = drm_pagemap_init(&dm->dpagemap, &dm->pagemap, drm, &dm_ops);
	if (ret)
		goto err_release_region;
	ptr = memremap_pages(&dm->pagemap, dev_to_node(&pd->pdev->dev));
	if (IS_ERR_OR_NULL(ptr)) {
		ret = ptr ? PTR_ERR(ptr) : -EFAULT;
		goto err_put_dpagemap;
	}
	dm->pfn_first = dm->pagemap.range.start >> PAGE_SHIFT;
	dev_info(&pd->pdev->dev,
		 "svm: gpusvm device memory (drm_pagemap): BAR2 [0x%llx, 0x%llx) = %llu MiB as PFNs [0x%lx, 0x%lx)\n",
		 dm->dev_off, dm->dev_off + size, size >> 20, dm->pfn_first,
		 dm->pfn_first + dm->npages);
	return dm;

err_put_dpagemap:
	drm_pagemap_put(&dm->dpagemap);
	wait_for_completion_timeout(&dm->released, 5 * HZ);
err_release_region:
	release_mem_region(dm->res->start, resource_size(dm->res));
err_destroy_wq:
	destroy_workqueue(dm->wq);
err_free_bitmap:
	bitmap_free(dm->bitmap);
err_free_dm:
	kfree(dm);
	return ERR_PTR(ret);
}

/* every allocation still holding pages back to RAM (one pass); returns the pages still in use */
static unsigned long dm_evict_pass(struct p2plab_svm_dm *dm)
{
	struct p2plab_svm_dm_alloc *a, *prev = NULL;
	unsigned long flags, used;

	for (;;) {
		spin_lock_irqsave(&dm->lock, flags);
		a = list_first_entry_or_null(&dm->allocs, struct p2plab_svm_dm_alloc, link);
		/* one that did not go on the previous try is moved to the tail: try the others */
		if (a && a == prev) {
			list_move_tail(&a->link, &dm->allocs);
			a = NULL;
		}
		if (a)
			kref_get(&a->ref);
		spin_unlock_irqrestore(&dm->lock, flags);
		if (!a)
			break;
		if (drm_pagemap_evict_to_ram(&a->devmem))
			atomic64_inc(&dm->st_errors);
		else
			atomic64_add(a->npages, &dm->st_evicted);
		prev = a;
		kref_put(&a->ref, dm_alloc_last_ref);
		cond_resched();
	}
	spin_lock_irqsave(&dm->lock, flags);
	used = dm->used;
	spin_unlock_irqrestore(&dm->lock, flags);
	return used;
}

/*
 * Remove: no new allocation, every page back to RAM, then the pagemap goes. Pages that cannot
 * be evicted keep the pagemap (and this module: its ops) alive rather than hanging remove.
 */
void p2plab_svm_dm_destroy(struct p2plab_svm_dm *dm)
{
	unsigned long flags, left = 0;
	int tries;

	if (!dm)
		return;
	spin_lock_irqsave(&dm->lock, flags);
	dm->dying = true;
	spin_unlock_irqrestore(&dm->lock, flags);
	for (tries = 0; tries < 100; tries++) {
		left = dm_evict_pass(dm);
		if (!left)
			break;
		msleep(tries < 10 ? 1 : 20);
	}
	flush_workqueue(dm->wq);
	if (left) {
		dev_err(&dm->svm->pd->pdev->dev,
			"svm devmem: %lu pages still in use after eviction: leaking the pagemap instead of hanging\n",
			left);
		__module_get(THIS_MODULE);
		return;
	}
	memunmap_pages(&dm->pagemap);
	drm_pagemap_put(&dm->dpagemap);
	if (!wait_for_completion_timeout(&dm->released, 10 * HZ))
		dev_warn(&dm->svm->pd->pdev->dev, "svm devmem: drm_pagemap still referenced\n");
	release_mem_region(dm->res->start, resource_size(dm->res));
	destroy_workqueue(dm->wq);
	dev_info(&dm->svm->pd->pdev->dev,
		 "svm devmem: to-dev %lld to-ram %lld evicted %lld allocations %lld full %lld errors %lld\n",
		 atomic64_read(&dm->st_to_dev), atomic64_read(&dm->st_to_ram),
		 atomic64_read(&dm->st_evicted), atomic64_read(&dm->st_allocs),
		 atomic64_read(&dm->st_full), atomic64_read(&dm->st_errors));
	bitmap_free(dm->bitmap);
	kfree(dm);
}

long p2plab_svm_dm_populate(struct p2plab_svm_dm *dm, struct mm_struct *mm, unsigned long start,
			    unsigned long end)
{
	s64 before = atomic64_read(&dm->st_to_dev);
	int ret;

	/*
	 * the kernel's entry point (it takes the mmap lock); timeslice 0: the ping-pong guard is the
	 * core's, on the device side (docs/svm.md). Only the fault worker migrates to the device, so
	 * the counter's growth is this call's.
	 */
	ret = drm_pagemap_populate_mm(&dm->dpagemap, start, end, mm, 0);
	if (ret)
		return ret;
	return atomic64_read(&dm->st_to_dev) - before;
}

void p2plab_svm_dm_show(struct seq_file *m, struct p2plab_svm_dm *dm)
{
	unsigned long flags, used;

	if (!dm)
		return;
	spin_lock_irqsave(&dm->lock, flags);
	used = dm->used;
	spin_unlock_irqrestore(&dm->lock, flags);
	seq_printf(m, "devmem: bar2_off 0x%llx pages %lu used %lu pfn 0x%lx to_dev %lld to_ram %lld evicted %lld allocations %lld full %lld errors %lld\n",
		   dm->dev_off, dm->npages, used, dm->pfn_first, atomic64_read(&dm->st_to_dev),
		   atomic64_read(&dm->st_to_ram), atomic64_read(&dm->st_evicted),
		   atomic64_read(&dm->st_allocs), atomic64_read(&dm->st_full),
		   atomic64_read(&dm->st_errors));
}
