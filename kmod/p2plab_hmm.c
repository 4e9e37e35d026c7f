// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_hmm.c - p2plab device memory as ZONE_DEVICE pages, migrated by the device's DMA engine.
 *
 * The part of BAR2 after the p2pmem window, [priv_off, priv_off + priv_size), is device memory
 * for HMM.  It is split into
 *   - a MEMORY_DEVICE_PRIVATE pagemap: struct pages from request_free_mem_region() that STAND FOR
 *     BAR2 pages (device offset = dev_off + (pfn - pfn_first) * PAGE_SIZE); the CPU cannot touch
 *     them, every copy in or out is a descriptor batch on the device's DMA engine;
 *   - a MEMORY_DEVICE_COHERENT pagemap over the CPU-visible BAR itself (module parameter
 *     hmm_coherent, default on): the struct pages are the BAR's own physical pages.
 * pgmap->owner is the struct p2plab_devmem, so two p2plab devices (and the two kinds of memory of
 * one device) are different owners for hmm_range_fault() / migrate_vma.
 *
 * Modelled on lib/test_hmm.c and drivers/gpu/drm/nouveau/nouveau_dmem.c of Linux 7.3; the copies
 * are DMA engine descriptors (p2plab_dma_run()), never CPU memcpy.
 */
#define pr_fmt(fmt) "p2plab-hmm: " fmt
#define P2PLAB_HMM_INTERNAL

#include <linux/module.h>
#include <linux/mm.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/huge_mm.h>
#include <linux/highmem.h>
#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/delay.h>
#include <linux/ioport.h>
#include <linux/pci.h>
#include <linux/sizes.h>
#include <linux/bitmap.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>

#include "p2plab.h"
#include "p2plab_hmm.h"

static bool hmm_coherent = true;
module_param(hmm_coherent, bool, 0444);
MODULE_PARM_DESC(hmm_coherent,
		 "split the HMM part of BAR2 into device-private and device-coherent halves (default 1)");

unsigned int p2plab_hmm_dma_timeout_ms = 10000;
module_param_named(hmm_dma_timeout_ms, p2plab_hmm_dma_timeout_ms, uint, 0644);
MODULE_PARM_DESC(hmm_dma_timeout_ms, "timeout of one migration/mirror DMA batch (ms)");

/*
 * A THP source with no free 2 MiB device folio: migrate it as 512 4 KiB device pages (the kernel
 * then splits the source in migrate_vma_pages(): migrate_vma_split_unmapped_folio()), or leave it
 * where it is. Investigating the open Oops in migrate finalize (docs/hmm.md "Stress").
 */
static bool hmm_thp_split_fallback = true;
module_param(hmm_thp_split_fallback, bool, 0644);
MODULE_PARM_DESC(hmm_thp_split_fallback,
		 "migrate a THP as 4 KiB device pages when no 2 MiB device folio is free (default 1)");

static bool hmm_coherent_thp;
module_param(hmm_coherent_thp, bool, 0644);
MODULE_PARM_DESC(hmm_coherent_thp,
		 "2 MiB device folios for device-coherent memory too (default 0: see docs/hmm.md)");

static bool hmm_thp = true;
module_param(hmm_thp, bool, 0644);
MODULE_PARM_DESC(hmm_thp, "allocate 2 MiB device folios for THP migration (default 1)");

/* ------------------------------------------------------------------------------------------ */
/* descriptor batches                                                                          */

int p2plab_batch_init(struct p2plab_batch *b, struct p2plab_hmm *hmm, unsigned int max)
{
	memset(b, 0, sizeof(*b));
	b->hmm = hmm;
	b->max = max ? max : 1;
	b->maxmaps = b->max;
	b->x = kvmalloc_array(b->max, sizeof(*b->x), GFP_KERNEL);
	b->maps = kvmalloc_array(b->maxmaps, sizeof(*b->maps), GFP_KERNEL);
	if (!b->x || !b->maps) {
		kvfree(b->x);
		kvfree(b->maps);
		b->x = NULL;
		b->maps = NULL;
		return -ENOMEM;
	}
	return 0;
}

static void p2plab_batch_unmap(struct p2plab_batch *b)
{
	unsigned int i;

	for (i = 0; i < b->nmaps; i++)
		dma_unmap_phys(b->hmm->dma_dev, b->maps[i].addr, b->maps[i].len,
			       b->maps[i].dir, b->maps[i].attrs);
	b->nmaps = 0;
}

void p2plab_batch_fini(struct p2plab_batch *b)
{
	if (b->maps)
		p2plab_batch_unmap(b);
	kvfree(b->x);
	kvfree(b->maps);
	b->x = NULL;
	b->maps = NULL;
}

void p2plab_batch_add(struct p2plab_batch *b, u64 src, u64 dst, u32 len, u32 flags)
{
	struct p2plab_xfer *p;

	/* merge with the previous descriptor when both sides continue it */
	if (b->n) {
		p = &b->x[b->n - 1];
		if (p->flags == flags && p->src + p->len == src && p->dst + p->len == dst &&
		    (u64)p->len + len <= SZ_64M) {
			p->len += len;
			return;
		}
	}
	if (WARN_ON_ONCE(b->n >= b->max))
		return;
	p = &b->x[b->n++];
	p->src = src;
	p->dst = dst;
	p->len = len;
	p->flags = flags;
}

dma_addr_t p2plab_batch_map(struct p2plab_batch *b, phys_addr_t phys, size_t len,
			    enum dma_data_direction dir, unsigned long attrs)
{
	dma_addr_t a;

	if (WARN_ON_ONCE(b->nmaps >= b->maxmaps))
		return DMA_MAPPING_ERROR;
	a = dma_map_phys(b->hmm->dma_dev, phys, len, dir, attrs);
	if (dma_mapping_error(b->hmm->dma_dev, a))
		return DMA_MAPPING_ERROR;
	b->maps[b->nmaps].addr = a;
	b->maps[b->nmaps].len = len;
	b->maps[b->nmaps].dir = dir;
	b->maps[b->nmaps].attrs = attrs;
	b->nmaps++;
	return a;
}

int p2plab_batch_run(struct p2plab_batch *b)
{
	struct p2plab_hmm *hmm = b->hmm;
	unsigned int idx = 0;
	u32 code = 0;
	int ret = 0;

	if (b->n) {
		/* no cached "dead" shortcut: the core answers -ENODEV at once while the link is
		 * down, and the device may come back (link-down=off, engine reset) */
		ret = p2plab_dma_run(hmm->pd, b->x, b->n, p2plab_hmm_dma_timeout_ms, &idx, &code);
		if (ret == -ENODEV) {
			/* the link may be back (link-down=off): re-arm the engine once and retry */
			int r;

			mutex_lock(&hmm->pd->dma_lock);
			r = p2plab_engine_reset(hmm->pd);
			mutex_unlock(&hmm->pd->dma_lock);
			if (!r) {
				pr_info("p2plab%d: device answers again, DMA engine re-armed\n", hmm->id);
				ret = p2plab_dma_run(hmm->pd, b->x, b->n, p2plab_hmm_dma_timeout_ms,
						     &idx, &code);
			}
		}
		WRITE_ONCE(hmm->dead, ret == -ENODEV);
		if (ret)
			pr_warn_ratelimited("p2plab%d: DMA batch of %u descriptors failed: %d (index %u, code 0x%x)\n",
					    hmm->id, b->n, ret, idx, code);
	}
	b->n = 0;
	p2plab_batch_unmap(b);
	return ret;
}

/* ------------------------------------------------------------------------------------------ */
/* pages and the allocator                                                                     */

static const struct dev_pagemap_ops p2plab_devmem_ops;

struct p2plab_devmem *p2plab_page_devmem(struct page *page)
{
	struct dev_pagemap *pgmap;

	if (!page || !is_zone_device_page(page))
		return NULL;
	pgmap = page_pgmap(page);
	if (!pgmap || pgmap->ops != &p2plab_devmem_ops)
		return NULL;
	return container_of(pgmap, struct p2plab_devmem, pgmap);
}

u64 p2plab_page_dev_off(struct page *page)
{
	struct p2plab_devmem *dm = p2plab_page_devmem(page);

	return dm->dev_off + ((u64)(page_to_pfn(page) - dm->pfn_first) << PAGE_SHIFT);
}

struct page *p2plab_devmem_alloc(struct p2plab_devmem *dm, unsigned int order)
{
	unsigned long nr = 1UL << order, idx;
	struct page *page;

	if (!dm->mapped)
		return NULL;
	if (order && (!hmm_thp || !IS_ALIGNED(dm->pfn_first, nr)))
		return NULL;
	spin_lock(&dm->lock);
	if (dm->dying || dm->nfree < nr) {
		spin_unlock(&dm->lock);
		return NULL;
	}
	if (!order) {
		idx = find_next_zero_bit(dm->bitmap, dm->npages, dm->hint);
		if (idx >= dm->npages)
			idx = find_first_zero_bit(dm->bitmap, dm->npages);
	} else {
		idx = bitmap_find_next_zero_area(dm->bitmap, dm->npages, 0, nr, nr - 1);
	}
	if (idx >= dm->npages || idx + nr > dm->npages) {
		spin_unlock(&dm->lock);
		return NULL;
	}
	bitmap_set(dm->bitmap, idx, nr);
	dm->nfree -= nr;
	if (!order)
		dm->hint = idx + 1;
	spin_unlock(&dm->lock);

	page = pfn_to_page(dm->pfn_first + idx);
	/* returns the page locked with one reference; clears any stale compound state */
	zone_device_page_init(page, &dm->pgmap, order);
	if (order)
		folio_set_large_rmappable(page_folio(page));
	page->zone_device_data = NULL;
	return page;
}

static void p2plab_devmem_folio_free(struct folio *folio)
{
	struct p2plab_devmem *dm = container_of(folio->pgmap, struct p2plab_devmem, pgmap);
	unsigned long idx = folio_pfn(folio) - dm->pfn_first;
	unsigned long nr = folio_nr_pages(folio);

	spin_lock(&dm->lock);
	bitmap_clear(dm->bitmap, idx, nr);
	dm->nfree += nr;
	spin_unlock(&dm->lock);
}

/* ------------------------------------------------------------------------------------------ */
/* copies                                                                                      */

/* time in the DMA engine of migration copies, [0] to RAM, [1] to the device (dmirror's profile) */
atomic64_t p2plab_prof_dma_ns[2];
/* time allocating system pages for migrations back to RAM ([0]; [1] unused: device pages come
 * from p2plab's own free list) */
atomic64_t p2plab_prof_alloc_ns[2];

/*
 * zone_device_data of a device-private page that SVM placement (p2plab_svm.c) migrated with CPU
 * copies: its migration back to RAM copies with the CPU too, without the DMA ring (docs/svm.md
 * "One ring").
 */
char p2plab_page_cpu_copy;

static void p2plab_drop_dst(unsigned long *dst, unsigned long npages)
{
	unsigned long i;

	for (i = 0; i < npages; i++) {
		struct page *p = migrate_pfn_to_page(dst[i]);

		if (p) {
			struct folio *f = page_folio(p);

			folio_unlock(f);
			folio_put(f);
		}
		dst[i] = 0;
	}
}

/*
 * A migration's copies, in steps: each source entry (a 4 KiB page or a THP) gets its
 * destination allocated and its copy queued as descriptors on one batch; the batch then runs
 * once on the DMA engine (p2plab_batch_run()), and the moved pages are counted.
 */

/* sum of the pages behind the valid entries of @dst (a compound entry is HPAGE_PMD_NR) */
static unsigned long p2plab_dst_pages(const unsigned long *dst, unsigned long npages)
{
	unsigned long i, n = 0;

	for (i = 0; i < npages; i++)
		if (dst[i])
			n += dst[i] & MIGRATE_PFN_COMPOUND ? HPAGE_PMD_NR : 1;
	return n;
}

/* run the queued copies; @dir indexes the profile (0 to RAM, 1 to the device) */
static int p2plab_copy_run(struct p2plab_batch *b, int dir)
{
	u64 t0 = ktime_get_ns();
	int ret = p2plab_batch_run(b);

	atomic64_add(ktime_get_ns() - t0, &p2plab_prof_dma_ns[dir]);
	return ret;
}

/*
 * MIGRATE_VMA_SELECT_SYSTEM should never hand us device memory, but 7.3's
 * migrate_vma_collect_huge_pmd() collects a PMD-mapped device-coherent folio of any owner as if
 * it were system memory (docs/hmm.md "Findings"): refuse the whole folio (it stays where it is)
 * and count it.  True when @spage is such a page.
 */
static bool p2plab_to_dev_refuse_device_src(struct p2plab_devmem *dm, unsigned long src,
					    struct page *spage)
{
	unsigned long skip;

	if (!spage || !is_zone_device_page(spage))
		return false;
	skip = (src & MIGRATE_PFN_COMPOUND) ? folio_nr_pages(page_folio(spage)) : 1;
	atomic64_add(skip, &dm->st_foreign_src);
	dev_warn_ratelimited(dm->hmm->dma_dev,
			     "migration source pfn 0x%lx is device memory (%s): refused\n",
			     page_to_pfn(spage), is_device_coherent_page(spage) ?
			     "device-coherent" : "device-private");
	return true;
}

/*
 * The destination of a THP source: a 2 MiB device folio (device-private memory, or coherent
 * memory with hmm_coherent_thp), else NULL (4 KiB device pages: the kernel splits the source).
 * Device-coherent memory is migrated in 4 KiB pages by default: coherent large folios are
 * mapped like normal THPs and the 7.3 kernel does not handle their deferred split.
 */
static struct page *p2plab_to_dev_alloc_folio(struct p2plab_devmem *dm, unsigned long nr,
					      bool *fail_alloc)
{
	if (*fail_alloc) {
		/* HMM_DMIRROR_FLAG_FAIL_ALLOC: the next THP allocation fails */
		*fail_alloc = false;
		return NULL;
	}
	return p2plab_devmem_alloc(dm, nr == HPAGE_PMD_NR &&
				   (dm->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE || hmm_coherent_thp) ?
				   HPAGE_PMD_ORDER : 0);
}

/* queue a source (or zero-fill, @spage NULL) of @nr pages into device memory at @off */
static int p2plab_to_dev_queue(struct p2plab_batch *b, struct p2plab_devmem *dm,
			       struct page *spage, unsigned long first, unsigned long nr, u64 off)
{
	unsigned long j;
	dma_addr_t a;

	if (!spage) {
		for (j = 0; j < nr; j++)
			p2plab_batch_add(b, dm->hmm->zero_dma, off + (j << PAGE_SHIFT), PAGE_SIZE,
					 P2PLAB_DESC_F_DST_LOCAL);
		return 0;
	}
	a = p2plab_batch_map(b, page_to_phys(spage) + (first << PAGE_SHIFT), nr << PAGE_SHIFT,
			     DMA_TO_DEVICE, 0);
	if (a == DMA_MAPPING_ERROR)
		return -EIO;
	p2plab_batch_add(b, a, off, nr << PAGE_SHIFT, P2PLAB_DESC_F_DST_LOCAL);
	return 0;
}

/* @nr pages of a source into 4 KiB device pages (@dpage: the first, if already allocated) */
static int p2plab_to_dev_queue_pages(struct p2plab_batch *b, struct p2plab_devmem *dm,
				     struct page *spage, struct page *dpage, unsigned long write,
				     unsigned long *dst, unsigned long nr)
{
	unsigned long j;
	int ret;

	for (j = 0; j < nr; j++) {
		if (!dpage)
			dpage = p2plab_devmem_alloc(dm, 0);
		if (!dpage)
			return 0;	/* out of device memory: the rest is not migrated */
		dst[j] = migrate_pfn(page_to_pfn(dpage)) | write;
		ret = p2plab_to_dev_queue(b, dm, spage, j, 1, p2plab_page_dev_off(dpage));
		if (ret)
			return ret;
		dpage = NULL;
	}
	return 0;
}

/*
 * System (or zero) pages -> device memory of @dm for a migrate_vma range.  Fills args->dst.
 * A THP source is migrated as one 2 MiB device folio (one descriptor) when a folio is free,
 * split into 4 KiB device pages otherwise (as test_hmm does).  On a DMA error every destination
 * is dropped (nothing migrates: the data stays in system memory) and the error is returned.
 */
int p2plab_migrate_copy_to_dev(struct p2plab_devmem *dm, struct migrate_vma *args, bool fail_alloc)
{
	unsigned long npages = args->npages, i;
	const unsigned long *src = args->src;
	unsigned long *dst = args->dst;
	struct p2plab_batch b;
	int ret;

	memset(dst, 0, npages * sizeof(*dst));
	ret = p2plab_batch_init(&b, dm->hmm, npages + 1);
	if (ret)
		return ret;

	for (i = 0; i < npages; ) {
		unsigned long write = src[i] & MIGRATE_PFN_WRITE;
		bool large = src[i] & MIGRATE_PFN_COMPOUND;
		struct page *spage, *dpage = NULL;
		unsigned long nr = 1;

		if (!(src[i] & MIGRATE_PFN_MIGRATE)) {
			i++;
			continue;
		}
		/* NULL for pte_none / the zero page: the device page is zero-filled */
		spage = migrate_pfn_to_page(src[i]);
		if (p2plab_to_dev_refuse_device_src(dm, src[i], spage)) {
			i++;	/* dst[i] stays 0: not migrated */
			continue;
		}
		if (large)
			nr = min_t(unsigned long, spage ? folio_nr_pages(page_folio(spage)) : HPAGE_PMD_NR,
				   npages - i);
		if (large && spage && !READ_ONCE(hmm_thp_split_fallback) &&
		    dm->type == HMM_DMIRROR_MEMORY_DEVICE_COHERENT && !hmm_coherent_thp) {
			atomic64_add(nr, &dm->st_skipped);	/* would need a split: stays */
			i += nr;
			continue;
		}
		if (large)
			dpage = p2plab_to_dev_alloc_folio(dm, nr, &fail_alloc);
		else
			dpage = p2plab_devmem_alloc(dm, 0);
		if (!dpage && !large) {
			i++;
			continue;
		}
		if (!dpage && spage && !READ_ONCE(hmm_thp_split_fallback)) {
			atomic64_add(nr, &dm->st_skipped);	/* stays in system memory */
			i += nr;
			continue;
		}

		if (dpage && folio_test_large(page_folio(dpage))) {
			/* one 2 MiB device folio: one descriptor */
			dst[i] = migrate_pfn(page_to_pfn(dpage)) | write | MIGRATE_PFN_COMPOUND;
			ret = p2plab_to_dev_queue(&b, dm, spage, 0, nr, p2plab_page_dev_off(dpage));
			atomic64_inc(&dm->st_thp);
		} else {
			/* 4 KiB pages: a small source, or a THP split because no device folio was free */
			ret = p2plab_to_dev_queue_pages(&b, dm, spage, dpage, write, dst + i, nr);
		}
		if (ret)
			goto fail;
		i += nr;
	}

	ret = p2plab_copy_run(&b, 1);
	if (ret)
		goto fail;
	atomic64_add(p2plab_dst_pages(dst, npages), &dm->st_to_dev);
	p2plab_batch_fini(&b);
	return 0;

fail:
	atomic64_inc(&dm->st_errors);
	p2plab_batch_fini(&b);
	p2plab_drop_dst(dst, npages);
	return ret;
}

static struct folio *p2plab_folio_or_null(struct page *page)
{
	return page ? page_folio(page) : NULL;
}

/* a system page (or folio) for a migration back to RAM, timed for the profile */
static struct folio *p2plab_to_ram_alloc(gfp_t gfp, unsigned int order, struct vm_area_struct *vma,
					 unsigned long addr, bool evict)
{
	u64 t0 = ktime_get_ns();
	struct folio *folio;

	if (order)
		folio = vma ? vma_alloc_folio(gfp, order, vma, addr) : folio_alloc(gfp, order);
	else
		folio = p2plab_folio_or_null(vma ? alloc_page_vma(gfp, vma, addr) :
					     alloc_page(gfp | (evict ? __GFP_NOFAIL : 0)));
	atomic64_add(ktime_get_ns() - t0, &p2plab_prof_alloc_ns[0]);
	return folio;
}

/* queue the copy of device memory at @off into the locked system @folio (@nr pages) */
static int p2plab_to_ram_queue(struct p2plab_batch *b, struct folio *folio, u64 off, unsigned long nr)
{
	dma_addr_t a = p2plab_batch_map(b, folio_pfn(folio) << PAGE_SHIFT, nr << PAGE_SHIFT,
					DMA_FROM_DEVICE, 0);

	if (a == DMA_MAPPING_ERROR)
		return -EIO;
	p2plab_batch_add(b, off, a, nr << PAGE_SHIFT, P2PLAB_DESC_F_SRC_LOCAL);
	return 0;
}

/* @nr 4 KiB system pages for the device pages at @off (also a device THP's fallback) */
static int p2plab_to_ram_queue_pages(struct p2plab_batch *b, struct p2plab_devmem *dm,
				     struct page *spage, unsigned int order, u64 off,
				     unsigned long *dst, unsigned long nr, unsigned long write,
				     gfp_t gfp, struct vm_area_struct *vma, unsigned long addr,
				     bool evict)
{
	unsigned long j;
	int ret;

	for (j = 0; j < nr; j++) {
		struct folio *folio = p2plab_to_ram_alloc(gfp, 0, vma, addr + (j << PAGE_SHIFT), evict);

		if (!folio)
			return -ENOMEM;
		folio_lock(folio);
		dst[j] = migrate_pfn(folio_pfn(folio)) | write;
		if (!order && spage->zone_device_data == &p2plab_page_cpu_copy) {
			/* placed by SVM (p2plab_svm.c): the CPU copies it back */
			void *va = kmap_local_folio(folio, 0);

			memcpy_fromio(va, dm->hmm->pd->mem + off, PAGE_SIZE);
			kunmap_local(va);
			continue;
		}
		ret = p2plab_to_ram_queue(b, folio, off + (j << PAGE_SHIFT), 1);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * Device pages -> system memory.  @vma may be NULL (eviction: migrate_device_range).  With
 * @evict, allocation cannot fail and a DMA error still completes the migration with the pages
 * zero-filled (the device is gone: the data is lost, loudly) so that removal never hangs.
 */
static int p2plab_copy_to_ram(unsigned long *src, unsigned long *dst, unsigned long npages,
			      struct vm_area_struct *vma, unsigned long start, bool fail_alloc,
			      bool evict)
{
	struct p2plab_devmem *dm = NULL;
	struct p2plab_batch b;
	unsigned long i;
	gfp_t gfp = GFP_HIGHUSER_MOVABLE | (evict ? __GFP_ZERO : 0);
	int ret = 0;

	memset(dst, 0, npages * sizeof(*dst));
	for (i = 0; i < npages && !dm; i++)
		if (src[i] & MIGRATE_PFN_MIGRATE)
			dm = p2plab_page_devmem(migrate_pfn_to_page(src[i]));
	if (!dm)
		return 0;
	ret = p2plab_batch_init(&b, dm->hmm, npages + 1);
	if (ret)
		return ret;

	for (i = 0; i < npages; ) {
		struct page *spage = migrate_pfn_to_page(src[i]);
		unsigned long addr = start + (i << PAGE_SHIFT);
		unsigned long write = src[i] & MIGRATE_PFN_WRITE;
		unsigned int order = 0;
		struct folio *folio = NULL;
		unsigned long nr;
		u64 off;

		if (!spage || !(src[i] & MIGRATE_PFN_MIGRATE) || p2plab_page_devmem(spage) != dm) {
			i++;
			continue;
		}
		if (src[i] & MIGRATE_PFN_COMPOUND)
			order = folio_order(page_folio(spage));
		nr = 1UL << order;
		if (i + nr > npages) {
			order = 0;
			nr = 1;
		}
		off = p2plab_page_dev_off(spage);

		if (fail_alloc && order)
			fail_alloc = false;	/* HMM_DMIRROR_FLAG_FAIL_ALLOC: 4 KiB pages instead */
		else if (order)
			folio = p2plab_to_ram_alloc(gfp, order, vma, addr, evict);

		if (order && folio) {
			/* a system THP: one descriptor */
			folio_lock(folio);
			dst[i] = migrate_pfn(folio_pfn(folio)) | write | MIGRATE_PFN_COMPOUND;
			ret = p2plab_to_ram_queue(&b, folio, off, nr);
		} else {
			/* 4 KiB pages (also the fallback for a device THP when no system THP is free) */
			ret = p2plab_to_ram_queue_pages(&b, dm, spage, order, off, dst + i, nr, write,
							gfp, vma, addr, evict);
		}
		if (ret)
			goto fail;
		i += nr;
	}

	ret = p2plab_copy_run(&b, 0);
	p2plab_batch_fini(&b);
	if (ret && !evict)
		goto fail_nobatch;
	if (ret) {
		atomic64_inc(&dm->st_errors);
		pr_err("p2plab%d: eviction DMA failed (%d): %lu pages could not be copied\n",
		       dm->hmm->id, ret, p2plab_dst_pages(dst, npages));
	}
	atomic64_add(p2plab_dst_pages(dst, npages), evict ? &dm->st_evicted : &dm->st_to_ram);
	return ret;

fail:
	p2plab_batch_fini(&b);
fail_nobatch:
	atomic64_inc(&dm->st_errors);
	p2plab_drop_dst(dst, npages);
	return ret;
}

int p2plab_migrate_copy_to_ram(struct migrate_vma *args, bool fail_alloc)
{
	return p2plab_copy_to_ram(args->src, args->dst, args->npages, args->vma, args->start,
				  fail_alloc, false);
}

/* CPU fault on a device-private page: migrate it (the folio, if PMD-mapped) back by DMA. */
static vm_fault_t p2plab_devmem_migrate_to_ram(struct vm_fault *vmf)
{
	struct folio *folio = page_folio(vmf->page);
	struct p2plab_devmem *dm = container_of(folio->pgmap, struct p2plab_devmem, pgmap);
	unsigned int order = folio_order(folio);
	struct migrate_vma args = { 0 };
	unsigned long nr;
	vm_fault_t ret = 0;
	int err;

	/* a PTE-mapped (partially split) folio is migrated page by page */
	if (vmf->pte)
		order = 0;
	args.start = ALIGN_DOWN(vmf->address, PAGE_SIZE << order);
	args.end = args.start + (PAGE_SIZE << order);
	if (args.start < vmf->vma->vm_start || args.end > vmf->vma->vm_end) {
		order = 0;
		args.start = ALIGN_DOWN(vmf->address, PAGE_SIZE);
		args.end = args.start + PAGE_SIZE;
	}
	args.vma = vmf->vma;
	nr = (args.end - args.start) >> PAGE_SHIFT;
	args.src = kcalloc(nr, sizeof(unsigned long), GFP_KERNEL);
	args.dst = kcalloc(nr, sizeof(unsigned long), GFP_KERNEL);
	args.pgmap_owner = dm;
	args.flags = MIGRATE_VMA_SELECT_DEVICE_PRIVATE | (order ? MIGRATE_VMA_SELECT_COMPOUND : 0);
	args.fault_page = vmf->page;
	if (!args.src || !args.dst) {
		ret = VM_FAULT_OOM;
		goto out;
	}
	if (migrate_vma_setup(&args)) {
		ret = VM_FAULT_SIGBUS;
		goto out;
	}
	atomic64_inc(&dm->st_faults);
	/* the device must stop using these pages: drop its mirror entries first */
	p2plab_dmirror_erase_migrating(dm->hmm, &args);
	err = p2plab_migrate_copy_to_ram(&args, false);
	if (err) {
		/* nothing migrated: the page stays on the device (dead link: SIGBUS) */
		migrate_vma_finalize(&args);
		ret = err == -ENOMEM ? VM_FAULT_OOM : VM_FAULT_SIGBUS;
		goto out;
	}
	migrate_vma_pages(&args);
	migrate_vma_finalize(&args);
out:
	kfree(args.src);
	kfree(args.dst);
	return ret;
}

static const struct dev_pagemap_ops p2plab_devmem_ops = {
	.folio_free	= p2plab_devmem_folio_free,
	.migrate_to_ram	= p2plab_devmem_migrate_to_ram,
	/* .folio_split: the default (copy pgmap and mapping to the new folio) is all we need */
};

/* ------------------------------------------------------------------------------------------ */
/* eviction, setup, teardown                                                                   */

static unsigned long p2plab_devmem_used(struct p2plab_devmem *dm)
{
	unsigned long used;

	spin_lock(&dm->lock);
	used = dm->npages - dm->nfree;
	spin_unlock(&dm->lock);
	return used;
}

/*
 * The device died before its memory could be copied out: the replacement system pages hold no
 * data.  Report them to memory-failure handling, as for uncorrectable memory errors, so that a
 * process touching them gets SIGBUS (BUS_MCEERR_AR) instead of silently reading zeroes.
 */
static void p2plab_poison_lost(struct p2plab_devmem *dm, const unsigned long *src,
			       const unsigned long *dst, unsigned long npages)
{
	unsigned long i, j, nr, poisoned = 0;

	for (i = 0; i < npages; i++) {
		struct page *p = migrate_pfn_to_page(dst[i]);

		if (!p || !(src[i] & MIGRATE_PFN_MIGRATE))
			continue;
		nr = dst[i] & MIGRATE_PFN_COMPOUND ? HPAGE_PMD_NR : 1;
		for (j = 0; j < nr; j++)
			memory_failure_queue(page_to_pfn(p) + j, 0);
		poisoned += nr;
	}
	if (poisoned)
		pr_err("p2plab%d: %lu pages lost with the device queued as memory failures (SIGBUS on access)\n",
		       dm->hmm->id, poisoned);
}

/* Migrate every page of @dm back to system memory (one pass).  Returns pages still in use. */
static unsigned long p2plab_devmem_evict_pass(struct p2plab_devmem *dm, unsigned long *src,
					      unsigned long *dst)
{
	unsigned long base, n;
	int err;

	for (base = 0; base < dm->npages; base += n) {
		n = min_t(unsigned long, HPAGE_PMD_NR, dm->npages - base);
		if (find_next_bit(dm->bitmap, base + n, base) >= base + n)
			continue;
		memset(src, 0, n * sizeof(*src));
		memset(dst, 0, n * sizeof(*dst));
		migrate_device_range(src, dm->pfn_first + base, n);
		err = p2plab_copy_to_ram(src, dst, n, NULL, 0, false, true);
		migrate_device_pages(src, dst, n);
		migrate_device_finalize(src, dst, n);
		if (err)
			p2plab_poison_lost(dm, src, dst, n);
		cond_resched();
	}
	return p2plab_devmem_used(dm);
}

unsigned long p2plab_devmem_evict(struct p2plab_devmem *dm)
{
	unsigned long *src, *dst, left, before;
	int tries;

	if (!dm->mapped)
		return 0;
	before = p2plab_devmem_used(dm);
	if (!before)
		return 0;
	src = kvcalloc(HPAGE_PMD_NR, sizeof(*src), GFP_KERNEL | __GFP_NOFAIL);
	dst = kvcalloc(HPAGE_PMD_NR, sizeof(*dst), GFP_KERNEL | __GFP_NOFAIL);
	/* pages being migrated or locked by someone else at the moment are retried */
	for (tries = 0; tries < 200; tries++) {
		left = p2plab_devmem_evict_pass(dm, src, dst);
		if (!left)
			break;
		msleep(tries < 10 ? 1 : 20);
	}
	kvfree(src);
	kvfree(dst);
	left = p2plab_devmem_used(dm);
	pr_info("p2plab%d: evicted %lu %s pages to system memory (%lu left)\n", dm->hmm->id,
		before - left, dm->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? "device-private" : "device-coherent",
		left);
	return before - left;
}

static int p2plab_devmem_setup(struct p2plab_hmm *hmm, struct p2plab_devmem *dm, int type,
			       u64 off, u64 size)
{
	struct p2plab_dev *pd = hmm->pd;
	void *ptr;
	int ret;

	dm->hmm = hmm;
	dm->type = type;
	dm->dev_off = off;
	dm->npages = size >> PAGE_SHIFT;
	spin_lock_init(&dm->lock);
	dm->bitmap = bitmap_zalloc(dm->npages, GFP_KERNEL);
	if (!dm->bitmap)
		return -ENOMEM;
	dm->nfree = dm->npages;

	if (type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE) {
		dm->res = request_free_mem_region(&iomem_resource, size, "p2plab-hmm-private");
		if (IS_ERR_OR_NULL(dm->res)) {
			ret = dm->res ? PTR_ERR(dm->res) : -ENOMEM;
			dm->res = NULL;
			goto err;
		}
		dm->pgmap.range.start = dm->res->start;
		dm->pgmap.range.end = dm->res->end;
		dm->pgmap.type = MEMORY_DEVICE_PRIVATE;
	} else {
		dm->pgmap.range.start = pd->mem_phys + off;
		dm->pgmap.range.end = pd->mem_phys + off + size - 1;
		dm->pgmap.type = MEMORY_DEVICE_COHERENT;
	}
	dm->pgmap.nr_range = 1;
	dm->pgmap.ops = &p2plab_devmem_ops;
	dm->pgmap.owner = dm;
	ptr = memremap_pages(&dm->pgmap, dev_to_node(hmm->dma_dev));
	if (IS_ERR_OR_NULL(ptr)) {
		ret = ptr ? PTR_ERR(ptr) : -EFAULT;
		goto err;
	}
	dm->pfn_first = dm->pgmap.range.start >> PAGE_SHIFT;
	dm->mapped = true;
	pr_info("p2plab%d: %s memory: BAR2 [0x%llx, 0x%llx) = %llu MiB as PFNs [0x%lx, 0x%lx)\n",
		hmm->id, type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? "device-private" : "device-coherent",
		off, off + size, size >> 20, dm->pfn_first, dm->pfn_first + dm->npages);
	return 0;
err:
	if (dm->res)
		release_mem_region(dm->res->start, resource_size(dm->res));
	dm->res = NULL;
	bitmap_free(dm->bitmap);
	dm->bitmap = NULL;
	pr_warn("p2plab%d: %s memory setup failed: %d\n", hmm->id,
		type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? "device-private" : "device-coherent", ret);
	return ret;
}

/* Returns false when pages could not be evicted: the pagemap is then leaked, not waited for. */
static bool p2plab_devmem_teardown(struct p2plab_devmem *dm)
{
	if (!dm->mapped)
		return true;
	spin_lock(&dm->lock);
	dm->dying = true;
	spin_unlock(&dm->lock);
	p2plab_devmem_evict(dm);
	if (p2plab_devmem_used(dm)) {
		pr_err("p2plab%d: %lu device pages still in use after eviction: leaking the pagemap instead of hanging\n",
		       dm->hmm->id, p2plab_devmem_used(dm));
		__module_get(THIS_MODULE);	/* the pagemap ops live in this module */
		return false;
	}
	memunmap_pages(&dm->pgmap);
	dm->mapped = false;
	if (dm->res)
		release_mem_region(dm->res->start, resource_size(dm->res));
	dm->res = NULL;
	bitmap_free(dm->bitmap);
	dm->bitmap = NULL;
	return true;
}

/* debugfs: /sys/kernel/debug/p2plab-hmm/p2plabN */
static struct dentry *p2plab_hmm_dbg;

static void p2plab_devmem_show(struct seq_file *s, const char *name, struct p2plab_devmem *dm)
{
	if (!dm->mapped) {
		seq_printf(s, "%s: none\n", name);
		return;
	}
	seq_printf(s, "%s: bar2_off 0x%llx pages %lu used %lu pfn 0x%lx to_dev %lld to_ram %lld cpu_faults %lld evicted %lld thp %lld errors %lld not_migrated %lld retries %lld foreign_src %lld relinks %lld write_not_granted %lld\n",
		   name, dm->dev_off, dm->npages, p2plab_devmem_used(dm), dm->pfn_first,
		   atomic64_read(&dm->st_to_dev), atomic64_read(&dm->st_to_ram),
		   atomic64_read(&dm->st_faults), atomic64_read(&dm->st_evicted),
		   atomic64_read(&dm->st_thp), atomic64_read(&dm->st_errors),
		   atomic64_read(&dm->st_skipped), atomic64_read(&dm->st_retries),
		   atomic64_read(&dm->st_foreign_src), atomic64_read(&dm->st_relinks),
		   atomic64_read(&dm->st_write_not_granted));
}

static int p2plab_hmm_dbg_show(struct seq_file *s, void *unused)
{
	struct p2plab_hmm *hmm = s->private;

	p2plab_devmem_show(s, "private", &hmm->priv);
	p2plab_devmem_show(s, "coherent", &hmm->coh);
	seq_printf(s, "mirror: ranges %lld ranges_iova %lld dma_maps %lld dma_reuses %lld dma_unmaps %lld p2p_bus %lld p2p_mmio %lld p2p_refused %lld\n",
		   atomic64_read(&hmm->st_ranges), atomic64_read(&hmm->st_ranges_iova),
		   atomic64_read(&hmm->st_dma_maps), atomic64_read(&hmm->st_dma_reuses),
		   atomic64_read(&hmm->st_dma_unmaps), atomic64_read(&hmm->st_p2p_bus),
		   atomic64_read(&hmm->st_p2p_mmio), atomic64_read(&hmm->st_p2p_refused));
	seq_printf(s, "dead %d\n", READ_ONCE(hmm->dead));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(p2plab_hmm_dbg);

int p2plab_hmm_probe(struct p2plab_dev *pd)
{
	struct p2plab_hmm *hmm;
	u64 start, end, half;
	int ret;

	pd->hmm = NULL;
	start = ALIGN((u64)pd->priv_off, SZ_2M);
	end = ALIGN_DOWN((u64)pd->priv_off + pd->priv_size, SZ_2M);
	if (!pd->priv_size || end <= start) {
		dev_info(&pd->pdev->dev, "no BAR2 memory left for HMM\n");
		return 0;
	}
	hmm = kzalloc(sizeof(*hmm), GFP_KERNEL);
	if (!hmm)
		return -ENOMEM;
	hmm->pd = pd;
	hmm->id = pd->id;
	hmm->dma_dev = &pd->pdev->dev;
	hmm->zero_dma = dma_map_page(hmm->dma_dev, ZERO_PAGE(0), 0, PAGE_SIZE, DMA_TO_DEVICE);
	if (dma_mapping_error(hmm->dma_dev, hmm->zero_dma)) {
		kfree(hmm);
		return -ENOMEM;
	}

	half = 0;
	if (hmm_coherent && end - start >= 2 * SZ_2M)
		half = ALIGN_DOWN((end - start) / 2, SZ_2M);
	ret = p2plab_devmem_setup(hmm, &hmm->priv, HMM_DMIRROR_MEMORY_DEVICE_PRIVATE, start, end - start - half);
	if (ret) {
		dma_unmap_page(hmm->dma_dev, hmm->zero_dma, PAGE_SIZE, DMA_TO_DEVICE);
		kfree(hmm);
		/* HMM is optional: the device keeps working for DMA and P2P */
		return 0;
	}
	if (half)
		p2plab_devmem_setup(hmm, &hmm->coh, HMM_DMIRROR_MEMORY_DEVICE_COHERENT, end - half, half);
	pd->hmm = hmm;
	if (!IS_ERR_OR_NULL(p2plab_hmm_dbg)) {
		char name[16];

		snprintf(name, sizeof(name), "p2plab%d", hmm->id);
		hmm->dbg = debugfs_create_file(name, 0444, p2plab_hmm_dbg, hmm,
					       &p2plab_hmm_dbg_fops);
	}
	p2plab_dmirror_bind(hmm);
	return 0;
}

void p2plab_hmm_remove(struct p2plab_dev *pd)
{
	struct p2plab_hmm *hmm = pd->hmm;
	bool ok;

	if (!hmm)
		return;
	debugfs_remove(hmm->dbg);
	hmm->dbg = NULL;
	p2plab_dmirror_unbind(hmm);
	ok = p2plab_devmem_teardown(&hmm->priv);
	ok &= p2plab_devmem_teardown(&hmm->coh);
	pr_info("p2plab%d: HMM stats: to-dev %lld to-ram %lld faults %lld evicted %lld thp %lld errors %lld\n",
		hmm->id,
		atomic64_read(&hmm->priv.st_to_dev) + atomic64_read(&hmm->coh.st_to_dev),
		atomic64_read(&hmm->priv.st_to_ram) + atomic64_read(&hmm->coh.st_to_ram),
		atomic64_read(&hmm->priv.st_faults),
		atomic64_read(&hmm->priv.st_evicted) + atomic64_read(&hmm->coh.st_evicted),
		atomic64_read(&hmm->priv.st_thp) + atomic64_read(&hmm->coh.st_thp),
		atomic64_read(&hmm->priv.st_errors) + atomic64_read(&hmm->coh.st_errors));
	dma_unmap_page(hmm->dma_dev, hmm->zero_dma, PAGE_SIZE, DMA_TO_DEVICE);
	pd->hmm = NULL;
	if (ok)
		kfree(hmm);
}

int p2plab_hmm_init(void)
{
	int ret;

	p2plab_hmm_dbg = debugfs_create_dir("p2plab-hmm", NULL);
	ret = p2plab_dmirror_init();
	if (ret)	/* not fatal: the device works without the dmirror nodes */
		pr_err("dmirror uAPI disabled (%d); the rest of p2plab works\n", ret);
	return 0;
}

void p2plab_hmm_exit(void)
{
	p2plab_dmirror_exit();
	debugfs_remove_recursive(p2plab_hmm_dbg);
}
