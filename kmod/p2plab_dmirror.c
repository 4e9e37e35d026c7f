// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_dmirror.c - a device mirror of a process address space on a REAL (emulated) p2plab PCIe
 * device, with the uAPI of lib/test_hmm.c (/dev/hmm_dmirrorN, lib/test_hmm_uapi.h of Linux 7.3)
 * so that tools/testing/selftests/mm/hmm-tests runs unmodified against it.
 *
 * Enabled with p2plab.dmirror=1 (must not be combined with test_hmm.ko: same device nodes).
 *   hmm_dmirror0 / 1 : device-private memory of p2plab0 / p2plab1
 *   hmm_dmirror2 / 3 : device-coherent memory (over BAR2) of p2plab0 / p2plab1
 *
 * Differences from test_hmm (which copies with the CPU):
 *  - the mirror "page table" (an xarray) holds the pages hmm_range_fault() resolved AND their DMA
 *    mapping for the device; the device's DMA engine does every read/write of the process memory
 *    (device-local pages are addressed by their BAR2 offset, P2PLAB_DESC_F_*_LOCAL);
 *  - invalidations erase entries and unmap them under the mirror mutex, which DMA batches on the
 *    mirror also hold: an invalidation waits for (stops) the device's access;
 *  - migrations are p2plab_hmm.c copies on the DMA engine; a DMA error fails the ioctl with -EIO
 *    leaving the data where it was.
 * Based on lib/test_hmm.c (GPL-2.0), Copyright the Linux kernel authors.
 */
#define pr_fmt(fmt) "p2plab-dmirror: " fmt
#define P2PLAB_HMM_INTERNAL

#include <linux/module.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/cdev.h>
#include <linux/device.h>
#include <linux/memremap.h>
#include <linux/mutex.h>
#include <linux/rwsem.h>
#include <linux/sched.h>
#include <linux/sched/mm.h>
#include <linux/slab.h>
#include <linux/highmem.h>
#include <linux/hmm.h>
#include <linux/hmm-dma.h>
#include <linux/pci-p2pdma.h>
#include <linux/vmalloc.h>
#include <linux/swap.h>
#include <linux/rmap.h>
#include <linux/mmu_notifier.h>
#include <linux/migrate.h>
#include <linux/huge_mm.h>
#include <linux/uaccess.h>
#include <linux/delay.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/ktime.h>

#include "p2plab.h"
#include "p2plab_hmm.h"
#include "p2plab_ioctl.h"

/*
 * The dmirror uAPI is the kernel's own lib/test_hmm_uapi.h, staged next to this file by
 * scripts/build-kmod.sh from the kernel source being built against: it cannot drift from upstream.
 */
#include "test_hmm_uapi.h"

static_assert(HMM_DMIRROR_MEMORY_DEVICE_PRIVATE != HMM_DMIRROR_MEMORY_DEVICE_COHERENT);
static_assert(sizeof(struct hmm_dmirror_cmd) == 5 * sizeof(__u64));
static_assert(P2PLAB_DMIRROR_FAULT_SPARSE != HMM_DMIRROR_READ_UNLOCKED);
static_assert(_IOC_SIZE(P2PLAB_DMIRROR_FAULT_SPARSE) == sizeof(struct hmm_dmirror_cmd));

static bool dmirror;
static bool dmirror_active;	/* nodes created */
module_param(dmirror, bool, 0444);
MODULE_PARM_DESC(dmirror, "create /dev/hmm_dmirror0..3 (test_hmm uAPI) on p2plab0/1 (default 0)");

#define DMIRROR_NDEVICES	4
#define DMIRROR_RW_BATCH	8192U	/* pages per DMA batch of a mirror read/write */


struct dmirror_device {
	struct cdev		cdevice;
	struct device		device;
	int			id;		/* minor */
	int			type;		/* HMM_DMIRROR_MEMORY_DEVICE_* */
	struct rw_semaphore	sem;		/* protects hmm/dm against unbind */
	struct p2plab_hmm	*hmm;
	struct p2plab_devmem	*dm;
	struct mutex		mlock;		/* protects mirrors */
	struct list_head	mirrors;
	bool			added;
};

struct dmirror {
	struct dmirror_device		*mdevice;
	struct xarray			ranges;	/* va >> PMD_SHIFT -> struct dmirror_range */
	struct p2plab_hmm		*map_hmm; /* device the ranges belong to (= mdevice->hmm) */
	struct mmu_interval_notifier	notifier;
	struct mutex			mutex;	/* the entries: readers (DMA batches), stores,
						 * invalidations */
	unsigned long			erase_seq; /* bumped (under mutex) by every erase of entries */
	struct mutex			op_lock; /* one ioctl at a time per mirror: hmm_range_fault()
						  * writes straight into the entries (pfn_list), which
						  * nothing may read or store meanwhile */
	struct list_head		node;
	__u64				flags;
};

struct dmirror_interval {
	struct mmu_interval_notifier	notifier;
	struct dmirror			*dmirror;
};

/*
 * A kernel buffer the device DMAs into / out of: physically contiguous chunks of up to 2 MiB,
 * each one DMA mapping, so that runs of contiguous pages become single descriptors.
 */
struct dmirror_bchunk {
	struct page	*page;
	unsigned int	order;
	dma_addr_t	dma;
};

struct dmirror_bounce {
	unsigned long		size;
	unsigned long		addr;
	unsigned long		cpages;
	unsigned long		npages;
	dma_addr_t		*dma;		/* per page of the buffer */
	struct dmirror_bchunk	*chunks;
	unsigned int		nchunks;
	struct device		*dev;
	/*
	 * Or the caller's own buffer, pinned and DMA-mapped (dmirror_bounce_init_user()): the device
	 * writes the user's pages directly, no kernel buffer and no copy_to_user() (a CPU copy, slow
	 * under emulation). @off is the user pointer's offset in its first page: page idx of the
	 * mirrored range lands at byte off + idx * PAGE_SIZE of the pinned pages.
	 */
	struct page		**upages;
	unsigned long		nupages;
	unsigned long		off;
	struct sg_table		sgt;
	enum dma_data_direction	udir;
};

static const struct mmu_interval_notifier_ops dmirror_min_ops;
static dev_t dmirror_dev;
static struct dmirror_device *dmirror_devices[DMIRROR_NDEVICES];
static struct p2plab_hmm *dmirror_bound[2];
static DEFINE_MUTEX(dmirror_lock);	/* devices[] and bound[] */

/* ------------------------------------------------------------------------------------------ */

static void dmirror_bounce_fini(struct dmirror_bounce *bounce)
{
	unsigned int i;

	if (bounce->upages) {
		dma_unmap_sgtable(bounce->dev, &bounce->sgt, bounce->udir, 0);
		sg_free_table(&bounce->sgt);
		unpin_user_pages_dirty_lock(bounce->upages, bounce->nupages,
					    bounce->udir == DMA_FROM_DEVICE);
		kvfree(bounce->upages);
		kvfree(bounce->dma);
		bounce->upages = NULL;
		bounce->dma = NULL;
		return;
	}

	for (i = 0; i < bounce->nchunks; i++) {
		dma_unmap_page(bounce->dev, bounce->chunks[i].dma, PAGE_SIZE << bounce->chunks[i].order,
			       DMA_BIDIRECTIONAL);
		__free_pages(bounce->chunks[i].page, bounce->chunks[i].order);
	}
	kvfree(bounce->chunks);
	kvfree(bounce->dma);
	bounce->chunks = NULL;
	bounce->dma = NULL;
	bounce->nchunks = 0;
}

static int dmirror_bounce_init(struct dmirror_bounce *bounce, struct p2plab_hmm *hmm,
			       unsigned long addr, unsigned long size)
{
	unsigned long done = 0, j;
	unsigned int order = HPAGE_PMD_ORDER;

	memset(bounce, 0, sizeof(*bounce));
	bounce->addr = addr;
	bounce->size = size;
	bounce->npages = DIV_ROUND_UP(size, PAGE_SIZE);
	bounce->dev = hmm->dma_dev;
	bounce->dma = kvcalloc(bounce->npages, sizeof(dma_addr_t), GFP_KERNEL);
	bounce->chunks = kvcalloc(bounce->npages, sizeof(*bounce->chunks), GFP_KERNEL);
	if (!bounce->dma || !bounce->chunks)
		goto err;
	while (done < bounce->npages) {
		struct dmirror_bchunk *c = &bounce->chunks[bounce->nchunks];
		unsigned long n;

		while (order && (1UL << order) > bounce->npages - done)
			order--;
		c->page = alloc_pages(GFP_KERNEL | (order ? __GFP_NORETRY | __GFP_NOWARN : 0), order);
		if (!c->page) {
			if (!order)
				goto err;
			order--;
			continue;
		}
		c->order = order;
		n = 1UL << order;
		c->dma = dma_map_page(bounce->dev, c->page, 0, PAGE_SIZE << order, DMA_BIDIRECTIONAL);
		if (dma_mapping_error(bounce->dev, c->dma)) {
			__free_pages(c->page, order);
			goto err;
		}
		bounce->nchunks++;
		for (j = 0; j < n; j++)
			bounce->dma[done + j] = c->dma + (j << PAGE_SHIFT);
		done += n;
	}
	return 0;
err:
	dmirror_bounce_fini(bounce);
	return -ENOMEM;
}

/*
 * The device DMAs straight into (@dev_writes) or out of the caller's buffer @uptr: its pages are
 * pinned and mapped as one sg table. -EFAULT (nothing pinned) when a page cannot be pinned: the
 * caller then uses a kernel buffer and copy_to_user(), which reports the fault as before.
 */
static int dmirror_bounce_init_user(struct dmirror_bounce *bounce, struct p2plab_hmm *hmm,
				    unsigned long addr, unsigned long size, unsigned long uptr,
				    bool dev_writes)
{
	unsigned long ustart = uptr & PAGE_MASK, k = 0, j;
	struct scatterlist *sg;
	long pinned;
	int ret, i;

	memset(bounce, 0, sizeof(*bounce));
	bounce->addr = addr;
	bounce->size = size;
	bounce->npages = DIV_ROUND_UP(size, PAGE_SIZE);
	bounce->dev = hmm->dma_dev;
	bounce->off = uptr - ustart;
	bounce->udir = dev_writes ? DMA_FROM_DEVICE : DMA_TO_DEVICE;
	if (uptr + size < uptr)
		return -EFAULT;
	bounce->nupages = DIV_ROUND_UP(bounce->off + size, PAGE_SIZE);
	bounce->upages = kvmalloc_array(bounce->nupages, sizeof(*bounce->upages), GFP_KERNEL);
	bounce->dma = kvcalloc(bounce->nupages, sizeof(*bounce->dma), GFP_KERNEL);
	if (!bounce->upages || !bounce->dma) {
		ret = -ENOMEM;
		goto free_arrays;
	}
	pinned = pin_user_pages_fast(ustart, bounce->nupages, dev_writes ? FOLL_WRITE : 0,
				     bounce->upages);
	if (pinned != bounce->nupages) {
		if (pinned > 0)
			unpin_user_pages(bounce->upages, pinned);
		ret = -EFAULT;
		goto free_arrays;
	}
	ret = sg_alloc_table_from_pages(&bounce->sgt, bounce->upages, bounce->nupages, 0,
					bounce->nupages << PAGE_SHIFT, GFP_KERNEL);
	if (ret)
		goto unpin;
	ret = dma_map_sgtable(bounce->dev, &bounce->sgt, bounce->udir, 0);
	if (ret)
		goto free_table;
	/* whole pages at offset 0: every DMA segment is a run of whole pages */
	for_each_sgtable_dma_sg(&bounce->sgt, sg, i)
		for (j = 0; j < sg_dma_len(sg) >> PAGE_SHIFT && k < bounce->nupages; j++)
			bounce->dma[k++] = sg_dma_address(sg) + (j << PAGE_SHIFT);
	if (WARN_ON_ONCE(k != bounce->nupages)) {
		dma_unmap_sgtable(bounce->dev, &bounce->sgt, bounce->udir, 0);
		ret = -EIO;
		goto free_table;
	}
	return 0;

free_table:
	sg_free_table(&bounce->sgt);
unpin:
	unpin_user_pages(bounce->upages, bounce->nupages);
free_arrays:
	kvfree(bounce->upages);
	kvfree(bounce->dma);
	bounce->upages = NULL;
	bounce->dma = NULL;
	return ret;
}

/* one page of the mirrored range <-> the buffer: one descriptor, two when @off splits it */
static void dmirror_bounce_add(struct p2plab_batch *b, struct dmirror_bounce *bounce,
			       unsigned long idx, u64 dev, u32 dev_flags, bool write)
{
	unsigned long pos = bounce->off + (idx << PAGE_SHIFT);
	unsigned long k = pos >> PAGE_SHIFT, in = pos & ~PAGE_MASK;
	u32 len = PAGE_SIZE - in;

	if (write)
		p2plab_batch_add(b, bounce->dma[k] + in, dev, len, dev_flags);
	else
		p2plab_batch_add(b, dev, bounce->dma[k] + in, len, dev_flags);
	if (!in)
		return;
	if (write)
		p2plab_batch_add(b, bounce->dma[k + 1], dev + len, in, dev_flags);
	else
		p2plab_batch_add(b, dev + len, bounce->dma[k + 1], in, dev_flags);
}

static void dmirror_bounce_sync(struct dmirror_bounce *bounce, bool for_cpu)
{
	unsigned int i;

	if (bounce->upages)
		return;		/* dma_unmap_sgtable() in dmirror_bounce_fini() syncs */

	for (i = 0; i < bounce->nchunks; i++) {
		size_t len = PAGE_SIZE << bounce->chunks[i].order;

		if (for_cpu)
			dma_sync_single_for_cpu(bounce->dev, bounce->chunks[i].dma, len,
						DMA_BIDIRECTIONAL);
		else
			dma_sync_single_for_device(bounce->dev, bounce->chunks[i].dma, len,
						   DMA_BIDIRECTIONAL);
	}
}

/* copy between the bounce chunks and user memory; 0 or -EFAULT */
static int dmirror_bounce_user(struct dmirror_bounce *bounce, void __user *u, bool to_user)
{
	unsigned long left = bounce->size;
	unsigned int i;

	if (bounce->upages)
		return 0;	/* the device used the user's pages themselves */
	for (i = 0; i < bounce->nchunks && left; i++) {
		size_t len = min_t(unsigned long, left, PAGE_SIZE << bounce->chunks[i].order);
		void *k = page_address(bounce->chunks[i].page);

		if (to_user ? copy_to_user(u, k, len) : copy_from_user(k, u, len))
			return -EFAULT;
		u += len;
		left -= len;
	}
	return 0;
}

static bool dmirror_is_private_zone(struct dmirror_device *mdevice)
{
	return mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE;
}

static enum migrate_vma_direction dmirror_select_device(struct dmirror *dmirror)
{
	return dmirror_is_private_zone(dmirror->mdevice) ? MIGRATE_VMA_SELECT_DEVICE_PRIVATE :
							   MIGRATE_VMA_SELECT_DEVICE_COHERENT;
}

/* Is @page memory of the device this mirror runs on (addressable as a BAR2 offset)? */
static bool dmirror_page_local(struct p2plab_hmm *hmm, struct page *page)
{
	struct p2plab_devmem *dm = p2plab_page_devmem(page);

	return dm && dm->hmm == hmm;
}

/*
 * ---- the mirror's page table: the kernel's HMM DMA map (mm/hmm.c hmm_dma_map_*) ----
 *
 * As RDMA on-demand paging (drivers/infiniband/core/umem_odp.c) does per memory region, the mirror
 * keeps one struct hmm_dma_map per 2 MiB of address space the device has touched
 * (hmm_dma_map_alloc(): one IOVA allocation per range when the device is behind an IOMMU).
 * map.pfn_list IS the mirror's page table: hmm_range_fault() writes into it directly, keeping the
 * sticky HMM_PFN_DMA_MAPPED / HMM_PFN_P2PDMA / HMM_PFN_P2PDMA_BUS flags across faults;
 * hmm_dma_map_pfn() maps an entry when the device first touches it (and hands back the existing
 * mapping after that), and decides the P2P map type of a peer's p2pmem page through
 * pci_p2pdma_state(); hmm_dma_unmap_pfn() unmaps an entry in the invalidation callback;
 * hmm_dma_map_free() releases a range when the mirror goes. The driver keeps no DMA addresses of
 * its own. Device-local pages (this device's private or coherent memory) are entries too, never
 * DMA-mapped: the engine addresses them by BAR2 offset.
 *
 * Ranges are created outside dmirror->mutex (allocations there could recurse into reclaim and so
 * into our own invalidation callback), looked up under it, and freed only by
 * dmirror_clear_all(), when no ioctl can run on the mirror (release, unbind).
 */
#define DMIRROR_RANGE_SHIFT	PMD_SHIFT
#define DMIRROR_RANGE_PAGES	(1UL << (DMIRROR_RANGE_SHIFT - PAGE_SHIFT))

struct dmirror_range {
	struct hmm_dma_map	map;
	struct device		*dev;		/* the device the mappings belong to */
	DECLARE_BITMAP(atomic, DMIRROR_RANGE_PAGES);	/* held with make_device_exclusive() */
};

static struct dmirror_range *dmirror_range_find(struct dmirror *dmirror, unsigned long pfn,
						size_t *idx)
{
	*idx = pfn & (DMIRROR_RANGE_PAGES - 1);
	return xa_load(&dmirror->ranges, pfn >> (DMIRROR_RANGE_SHIFT - PAGE_SHIFT));
}

static void dmirror_range_free(struct p2plab_hmm *hmm, struct dmirror_range *r)
{
	hmm_dma_map_free(r->dev, &r->map);
	kfree(r);
}

/* Make sure every range of [start, end) exists, for device @hmm. Not under dmirror->mutex. */
static int dmirror_ranges_prepare(struct dmirror *dmirror, struct p2plab_hmm *hmm,
				  unsigned long start, unsigned long end)
{
	unsigned long key, last = (end - 1) >> DMIRROR_RANGE_SHIFT;
	int ret;

	for (key = start >> DMIRROR_RANGE_SHIFT; key <= last; key++) {
		struct dmirror_range *r;

		if (xa_load(&dmirror->ranges, key))
			continue;
		r = kzalloc(sizeof(*r), GFP_KERNEL);
		if (!r)
			return -ENOMEM;
		r->dev = hmm->dma_dev;
		ret = hmm_dma_map_alloc(r->dev, &r->map, DMIRROR_RANGE_PAGES, PAGE_SIZE);
		if (ret) {
			/* -EOPNOTSUPP: a device that needs DMA syncs or bounce buffers */
			dev_warn_once(r->dev, "hmm_dma_map_alloc: %d\n", ret);
			kfree(r);
			return ret;
		}
		atomic64_inc(&hmm->st_ranges);
		if (dma_use_iova(&r->map.state))
			atomic64_inc(&hmm->st_ranges_iova);
		ret = xa_insert(&dmirror->ranges, key, r, GFP_KERNEL);
		if (ret) {
			dmirror_range_free(hmm, r);
			if (ret != -EBUSY)	/* -EBUSY: another thread of the process was first */
				return ret;
		}
	}
	return 0;
}

/* Drop entry @idx: unmap it if the device had it DMA-mapped (as ib_umem_odp_unmap_dma_pages). */
static void dmirror_entry_clear(struct p2plab_hmm *hmm, struct dmirror_range *r, size_t idx)
{
	unsigned long e = r->map.pfn_list[idx];

	if (hmm_dma_unmap_pfn(r->dev, &r->map, idx)) {
		struct page *page = hmm_pfn_to_page(e);

		atomic64_inc(&hmm->st_dma_unmaps);
		/* the device may have written it (HMM_DMIRROR_WRITE) */
		if ((e & HMM_PFN_WRITE) && !is_zone_device_page(page))
			set_page_dirty(compound_head(page));
	}
	r->map.pfn_list[idx] = 0;
	clear_bit(idx, r->atomic);
}

static void dmirror_do_update(struct dmirror *dmirror, unsigned long start, unsigned long end)
{
	struct p2plab_hmm *hmm = dmirror->map_hmm;
	struct dmirror_range *r;
	unsigned long key;

	if (!hmm || end <= start)
		return;
	/*
	 * Entries may be erased outside an invalidation callback (p2plab_dmirror_erase_range(),
	 * own migrations to RAM) with no notifier sequence change: a hmm_range_fault() racing
	 * it must not commit (dmirror_hmm_fault_locked() checks this too).
	 */
	dmirror->erase_seq++;
	xa_for_each_range(&dmirror->ranges, key, r, start >> DMIRROR_RANGE_SHIFT,
			  (end - 1) >> DMIRROR_RANGE_SHIFT) {
		unsigned long rs = key << DMIRROR_RANGE_SHIFT;
		unsigned long a = max(start, rs);
		unsigned long b = min(end - 1, rs + (DMIRROR_RANGE_PAGES << PAGE_SHIFT) - 1);

		for (; a <= b && a >= rs; a += PAGE_SIZE)
			dmirror_entry_clear(hmm, r, (a - rs) >> PAGE_SHIFT);
	}
}

/* Unmap and free every range (the mirror goes, or its device does). dmirror->mutex held. */
static void dmirror_clear_all(struct dmirror *dmirror)
{
	struct p2plab_hmm *hmm = dmirror->map_hmm;
	struct dmirror_range *r;
	unsigned long key;
	size_t i;

	if (!hmm)		/* ranges exist only once the mirror is bound to a device */
		return;
	xa_for_each(&dmirror->ranges, key, r) {
		for (i = 0; i < DMIRROR_RANGE_PAGES; i++)
			dmirror_entry_clear(hmm, r, i);
		xa_erase(&dmirror->ranges, key);
		dmirror_range_free(hmm, r);
	}
}

/* Record @page at @pfn as mapped by the device (migration to it, exclusive access). */
static int dmirror_store(struct dmirror *dmirror, unsigned long pfn, struct page *page,
			 bool write, bool atomic)
{
	struct dmirror_range *r;
	size_t idx;

	r = dmirror_range_find(dmirror, pfn, &idx);
	if (WARN_ON_ONCE(!r))		/* dmirror_ranges_prepare() was not called */
		return -ENOMEM;
	dmirror_entry_clear(dmirror->map_hmm, r, idx);
	r->map.pfn_list[idx] = page_to_pfn(page) | HMM_PFN_VALID | (write ? HMM_PFN_WRITE : 0);
	if (atomic)
		set_bit(idx, r->atomic);
	return 0;
}

/*
 * Device address of entry @idx of @r: the BAR2 offset of a device-local page, else what
 * hmm_dma_map_pfn() gives (a DMA address, an IOVA, or a PCI bus address for a peer's p2pmem
 * under a common switch). -EREMOTEIO when the kernel refuses the P2P mapping
 * (PCI_P2PDMA_MAP_NOT_SUPPORTED), -EFAULT when mapping fails otherwise.
 */
static int dmirror_dev_addr(struct dmirror *dmirror, struct dmirror_range *r, size_t idx,
			    struct pci_p2pdma_map_state *p2p, u64 *addr, u32 *local)
{
	struct p2plab_hmm *hmm = dmirror->map_hmm;
	unsigned long *e = &r->map.pfn_list[idx];
	struct page *page = hmm_pfn_to_page(*e);
	bool was_mapped = *e & HMM_PFN_DMA_MAPPED;
	dma_addr_t dma;

	if (dmirror_page_local(hmm, page)) {
		*addr = p2plab_page_dev_off(page);
		*local = 1;
		return 0;
	}
	dma = hmm_dma_map_pfn(r->dev, &r->map, idx, p2p);
	if (dma == DMA_MAPPING_ERROR) {
		if (is_pci_p2pdma_page(page)) {
			atomic64_inc(&hmm->st_p2p_refused);
			return -EREMOTEIO;
		}
		return -EFAULT;
	}
	if (was_mapped) {
		atomic64_inc(&hmm->st_dma_reuses);
	} else {
		atomic64_inc(&hmm->st_dma_maps);
		if (*e & HMM_PFN_P2PDMA_BUS)
			atomic64_inc(&hmm->st_p2p_bus);
		else if (*e & HMM_PFN_P2PDMA)
			atomic64_inc(&hmm->st_p2p_mmio);
	}
	*addr = dma;
	*local = 0;
	return 0;
}

static int dmirror_fops_open(struct inode *inode, struct file *filp)
{
	struct dmirror_device *mdevice = container_of(inode->i_cdev, struct dmirror_device,
						       cdevice);
	struct dmirror *dmirror;
	bool bound;
	int ret;

	/* no p2plab device (or no memory of this kind) behind this node: like a missing node */
	down_read(&mdevice->sem);
	bound = mdevice->dm != NULL;
	up_read(&mdevice->sem);
	if (!bound)
		return -ENODEV;
	dmirror = kzalloc(sizeof(*dmirror), GFP_KERNEL);
	if (!dmirror)
		return -ENOMEM;
	dmirror->mdevice = mdevice;
	mutex_init(&dmirror->mutex);
	mutex_init(&dmirror->op_lock);
	xa_init(&dmirror->ranges);

	ret = mmu_interval_notifier_insert(&dmirror->notifier, current->mm, 0,
					   ULONG_MAX & PAGE_MASK, &dmirror_min_ops);
	if (ret) {
		kfree(dmirror);
		return ret;
	}
	mutex_lock(&mdevice->mlock);
	list_add(&dmirror->node, &mdevice->mirrors);
	mutex_unlock(&mdevice->mlock);
	filp->private_data = dmirror;
	return 0;
}

static int dmirror_fops_release(struct inode *inode, struct file *filp)
{
	struct dmirror *dmirror = filp->private_data;
	struct dmirror_device *mdevice = dmirror->mdevice;

	mmu_interval_notifier_remove(&dmirror->notifier);
	down_read(&mdevice->sem);
	mutex_lock(&mdevice->mlock);
	list_del(&dmirror->node);
	mutex_unlock(&mdevice->mlock);
	mutex_lock(&dmirror->mutex);
	dmirror_clear_all(dmirror);
	mutex_unlock(&dmirror->mutex);
	up_read(&mdevice->sem);
	/*
	 * Unlike test_hmm, closing does not evict the device's memory: the device pages do not
	 * point at this mirror, they stay valid until the process frees or touches them.
	 */
	xa_destroy(&dmirror->ranges);
	kfree(dmirror);
	return 0;
}

static bool dmirror_interval_invalidate(struct mmu_interval_notifier *mni,
					const struct mmu_notifier_range *range,
					unsigned long cur_seq)
{
	struct dmirror *dmirror = container_of(mni, struct dmirror, notifier);

	bool own_migration = range->event == MMU_NOTIFY_MIGRATE && range->owner &&
			     range->owner == READ_ONCE(dmirror->mdevice->dm);

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&dmirror->mutex);
	else if (!mutex_trylock(&dmirror->mutex))
		return false;

	/*
	 * Migrations done by this device (its own pgmap owner) keep the entries: moving pages to
	 * the device re-maps them itself, and the migrations back to RAM (CPU fault,
	 * MIGRATE_TO_SYS) erase the device's entries explicitly, p2plab_dmirror_erase_range();
	 * entries of pages NOT being migrated stay valid (test_hmm semantics). The sequence still
	 * moves, so that no hmm_range_fault() that raced the migration is taken as current.
	 */
	mmu_interval_set_seq(mni, cur_seq);
	if (!own_migration)
		dmirror_do_update(dmirror, range->start, range->end);

	mutex_unlock(&dmirror->mutex);
	return true;
}

static const struct mmu_interval_notifier_ops dmirror_min_ops = {
	.invalidate = dmirror_interval_invalidate,
};

/* ---- device page faults: hmm_range_fault() + DMA mapping ---- */

/*
 * Check what hmm_range_fault() wrote into the range's pfn_list (the mirror's entries) against its
 * contract: on success every requested page is HMM_PFN_VALID, and HMM_PFN_WRITE where
 * HMM_PFN_REQ_WRITE was asked. 7.3 breaks the second for a read-only device-private entry of the
 * caller's own (after fork: COW), which it reports without faulting (docs/hmm.md "Findings"):
 * counted (debugfs write_not_granted) and refused with -EFAULT rather than retried forever (the
 * livelock test_hmm's write loop would get).
 */
static int dmirror_check_fault(struct p2plab_devmem *dm, struct hmm_range *range)
{
	unsigned long i, n = (range->end - range->start) >> PAGE_SHIFT;

	for (i = 0; i < n; i++) {
		unsigned long e = range->hmm_pfns[i];

		/* we asked hmm_range_fault() to populate pages: no error entries on success */
		if (WARN_ON(e & HMM_PFN_ERROR) || WARN_ON(!(e & HMM_PFN_VALID)))
			return -EFAULT;
		if (!(e & HMM_PFN_WRITE) && (range->default_flags & HMM_PFN_WRITE)) {
			atomic64_inc(&dm->st_write_not_granted);
			pr_warn_ratelimited("hmm_range_fault(HMM_PFN_REQ_WRITE) returned a read-only page at %#lx\n",
					    range->start + (i << PAGE_SHIFT));
			return -EFAULT;
		}
	}
	return 0;
}

/*
 * The hmm_range_fault() loop of every mirror operation (Documentation/mm/hmm.rst): begin a
 * notifier read section, fault under the mmap lock (or hmm_range_fault_unlocked_timeout() for
 * @unlocked), start again on -EBUSY or when an invalidation ran meanwhile, for at most
 * HMM_RANGE_DEFAULT_TIMEOUT without progress. @prepare (may be NULL) sets range->hmm_pfns' inputs
 * before each attempt. Returns 0 with dmirror->mutex HELD: the caller consumes range->hmm_pfns, then
 * unlocks. Otherwise an error, without the mutex. *@retries (may be NULL) counts restarts.
 */
static long dmirror_range_done(const struct hmm_range *range)
{
	long i, n = (range->end - range->start) >> PAGE_SHIFT;

	for (i = 0; i < n && (range->hmm_pfns[i] & HMM_PFN_VALID); i++)
		;
	return i;
}

static int dmirror_hmm_fault_locked(struct dmirror *dmirror, struct hmm_range *range,
				    bool unlocked, void (*prepare)(struct hmm_range *, void *),
				    void *arg, u64 *retries)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
	long done = -1, n;
	int ret;

	while (!time_after(jiffies, timeout)) {
		unsigned long erase_seq = READ_ONCE(dmirror->erase_seq);

		if (prepare)
			prepare(range, arg);
		if (unlocked) {
			ret = hmm_range_fault_unlocked_timeout(range, 0);
		} else {
			range->notifier_seq = mmu_interval_read_begin(range->notifier);
			mmap_read_lock(mm);
			ret = hmm_range_fault(range);
			mmap_read_unlock(mm);
		}
		if (ret && (ret != -EBUSY || unlocked))
			return ret;
		/*
		 * -EBUSY from hmm_range_fault(): a fault it took invalidated the range, e.g. a foreign
		 * device-private folio migrated back to RAM, one folio per restart. The entries before
		 * the walk's stop are outputs (VALID): after the first -EBUSY, and whenever more of them
		 * are valid than ever before, the loop progresses and the budget starts again. On the
		 * debug kernel one such attempt alone took 1.1 s (KASAN + lockdep under TCG), more than
		 * HMM_RANGE_DEFAULT_TIMEOUT, and the loop gave up without a second attempt
		 * (two.owner_mirror_other_device_migrates_back, docs/debug-kernel.md). A retry that gets no
		 * further still ends with -EBUSY after HMM_RANGE_DEFAULT_TIMEOUT.
		 */
		if (ret == -EBUSY) {
			n = dmirror_range_done(range);
			if (n > done) {
				done = n;
				timeout = jiffies + msecs_to_jiffies(HMM_RANGE_DEFAULT_TIMEOUT);
			}
		}
		if (!ret) {
			mutex_lock(&dmirror->mutex);
			if (!mmu_interval_read_retry(range->notifier, range->notifier_seq) &&
			    dmirror->erase_seq == erase_seq)
				return 0;
			mutex_unlock(&dmirror->mutex);
		}
		if (retries)
			(*retries)++;
	}
	return -EBUSY;
}

static int dmirror_range_fault(struct dmirror *dmirror, struct hmm_range *range,
			       struct p2plab_devmem *dm, bool unlocked)
{
	int ret = dmirror_hmm_fault_locked(dmirror, range, unlocked, NULL, NULL, NULL);

	if (ret)
		return ret;
	ret = dmirror_check_fault(dm, range);
	mutex_unlock(&dmirror->mutex);
	return ret;
}

/*
 * Where a device fault of [start, ...) begins: at the 2 MiB boundary below @start (inside the
 * VMA), as GPU SVM drivers fault whole chunks. Besides fewer faults this keeps every walk of a
 * device-private THP aligned: 7.3's hmm_vma_handle_absent_pmd() returns the folio's head pfns
 * for a walk that starts inside the folio (a kernel bug, docs/hmm.md "Findings";
 * p2plab.dmirror_fault_align=0 turns this off to reproduce it: finding.linux73.thp_fault_mid_folio).
 */
static bool dmirror_fault_align = true;
module_param(dmirror_fault_align, bool, 0644);
MODULE_PARM_DESC(dmirror_fault_align,
		 "mirror faults start on 2 MiB boundaries (default 1; 0 reproduces the 7.3 device-private THP pfn-offset bug)");

static unsigned long dmirror_fault_start(struct mm_struct *mm, unsigned long start)
{
	struct vm_area_struct *vma;
	unsigned long a = start;

	if (!READ_ONCE(dmirror_fault_align) || IS_ALIGNED(start, PMD_SIZE))
		return start;
	mmap_read_lock(mm);
	vma = vma_lookup(mm, start);
	if (vma)
		a = max(ALIGN_DOWN(start, PMD_SIZE), vma->vm_start);
	mmap_read_unlock(mm);
	return a;
}

static int dmirror_fault(struct dmirror *dmirror, struct p2plab_devmem *dm, unsigned long start,
			 unsigned long end, bool write, bool unlocked)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.pfn_flags_mask = 0,
		.default_flags = HMM_PFN_REQ_FAULT | (write ? HMM_PFN_REQ_WRITE : 0),
		/* device-private pages of any other owner are migrated back (migrate_to_ram) */
		.dev_private_owner = dm,
	};
	unsigned long addr;
	int ret = 0;

	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EFAULT;
	for (addr = dmirror_fault_start(mm, start); addr < end; addr = range.end) {
		struct dmirror_range *r;
		size_t idx;

		range.end = min(ALIGN(addr + 1, DMIRROR_RANGE_PAGES << PAGE_SHIFT), end);
		ret = dmirror_ranges_prepare(dmirror, dm->hmm, addr, range.end);
		if (ret)
			break;

		/*
		 * One range at a time, straight into its pfn_list: hmm_range_fault() keeps the
		 * sticky DMA flags of entries that are already mapped (HMM_PFN_INOUT_FLAGS).
		 */
		r = dmirror_range_find(dmirror, addr >> PAGE_SHIFT, &idx);
		if (WARN_ON_ONCE(!r)) {
			ret = -ENOMEM;
			break;
		}
		range.start = addr;
		range.hmm_pfns = &r->map.pfn_list[idx];
		ret = dmirror_range_fault(dmirror, &range, dm, unlocked);
		if (ret)
			break;
	}
	mmput(mm);
	return ret;
}

/* ---- the device reads / writes the process memory through the mirror (DMA engine) ---- */

static int dmirror_do_rw(struct dmirror *dmirror, unsigned long start, unsigned long end,
			 struct dmirror_bounce *bounce, bool write)
{
	struct p2plab_hmm *hmm = dmirror->map_hmm;
	struct pci_p2pdma_map_state p2p = {};
	unsigned long pfn, idx;
	struct p2plab_batch b;
	unsigned int pending = 0;
	int ret, stop = 0;

	if (!hmm)
		return -ENOENT;
	/* a page may take two descriptors (a user buffer not page aligned) */
	ret = p2plab_batch_init(&b, hmm, 2 * DMIRROR_RW_BATCH);
	if (ret)
		return ret;
	idx = (start - bounce->addr) >> PAGE_SHIFT;
	for (pfn = start >> PAGE_SHIFT; pfn < (end >> PAGE_SHIFT); pfn++, idx++) {
		struct dmirror_range *r;
		unsigned long e;
		size_t ridx;
		u64 addr;
		u32 local;

		/* -ENOENT: not mirrored (or not writable) yet: the caller faults and retries */
		r = dmirror_range_find(dmirror, pfn, &ridx);
		e = r ? r->map.pfn_list[ridx] : 0;
		if (!(e & HMM_PFN_VALID) || (write && !(e & HMM_PFN_WRITE))) {
			stop = -ENOENT;
			break;
		}
		stop = dmirror_dev_addr(dmirror, r, ridx, &p2p, &addr, &local);
		if (stop)
			break;
		dmirror_bounce_add(&b, bounce, idx, addr,
				   local ? (write ? P2PLAB_DESC_F_DST_LOCAL : P2PLAB_DESC_F_SRC_LOCAL) : 0,
				   write);
		if (++pending == DMIRROR_RW_BATCH) {
			ret = p2plab_batch_run(&b);
			if (ret)
				goto out;
			bounce->cpages += pending;
			pending = 0;
		}
	}
	if (stop && stop != -ENOENT) {
		/* the kernel refused a mapping: the device touches nothing more */
		ret = stop;
		goto out;
	}
	ret = p2plab_batch_run(&b);
	if (!ret) {
		bounce->cpages += pending;
		ret = stop;
	}
out:
	p2plab_batch_fini(&b);
	return ret;
}

static int dmirror_rw(struct dmirror *dmirror, struct p2plab_devmem *dm,
		      struct hmm_dmirror_cmd *cmd, bool write, bool unlocked)
{
	struct dmirror_bounce bounce;
	unsigned long start, end;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	int ret;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;
	ret = dmirror_bounce_init(&bounce, dm->hmm, start, size);
	if (ret)
		return ret;
	if (write) {
		if (dmirror_bounce_user(&bounce, u64_to_user_ptr(cmd->ptr), false)) {
			ret = -EFAULT;
			goto fini;
		}
		dmirror_bounce_sync(&bounce, false);
	}
	while (1) {
		mutex_lock(&dmirror->mutex);
		ret = dmirror_do_rw(dmirror, start, end, &bounce, write);
		mutex_unlock(&dmirror->mutex);
		if (ret != -ENOENT)
			break;
		start = cmd->addr + (bounce.cpages << PAGE_SHIFT);
		ret = dmirror_fault(dmirror, dm, start, end, write, unlocked);
		if (ret)
			break;
		cmd->faults++;
	}
	if (ret == 0 && !write) {
		dmirror_bounce_sync(&bounce, true);
		if (dmirror_bounce_user(&bounce, u64_to_user_ptr(cmd->ptr), true))
			ret = -EFAULT;
	}
fini:
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	return ret;
}

/*
 * Copy [start, end) of the mirror back to the user buffer at cmd->ptr: the device reads it through
 * its mirror (DMA engine) into a bounce buffer. Used to return data for verification after
 * migration and exclusive access, as test_hmm does.
 *
 * @relink: an invalidation may have dropped entries between the operation and this read (any
 * invalidation may be spurious: khugepaged invalidates a 2 MiB range before it finds it cannot
 * collapse what is there). @relink re-creates what the operation had set up for the rest of the
 * range, and the read goes on, a bounded number of times: after a migration
 * dmirror_relink_local() (pages in this device's memory are mirrored again; a page that did not
 * migrate still ends the read with -ENOENT, as test_hmm's semantics want), after exclusive access
 * dmirror_take_exclusive() (the device takes the pages again, as a real device re-faults an
 * atomic access it lost).
 */
#define DMIRROR_READ_BACK_TRIES	8

/*
 * Re-create the mirror entries of [start, end) for pages that are in this device's memory: a
 * snapshot (hmm_range_fault() without fault requests, dev_private_owner = dm) that stores only
 * device-local pages. 0, or an error of hmm_range_fault() / -EBUSY on timeout.
 */
static int dmirror_relink_local(struct dmirror *dmirror, struct p2plab_devmem *dm,
				unsigned long start, unsigned long end)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct hmm_range range = {
		.notifier = &dmirror->notifier,
		.dev_private_owner = dm,
	};
	unsigned long *pfns, addr, i;
	int ret = 0;

	/* whole 2 MiB steps from a boundary (see dmirror_fault_start()) */
	pfns = kmalloc_array(DMIRROR_RANGE_PAGES, sizeof(*pfns), GFP_KERNEL);
	if (!pfns)
		return -ENOMEM;
	range.hmm_pfns = pfns;
	if (!mmget_not_zero(mm)) {
		kfree(pfns);
		return -EFAULT;
	}
	for (addr = dmirror_fault_start(mm, start); !ret && addr < end; addr = range.end) {
		range.start = addr;
		range.end = min(end, ALIGN(addr + 1, DMIRROR_RANGE_PAGES << PAGE_SHIFT));
		ret = dmirror_ranges_prepare(dmirror, dm->hmm, range.start, range.end);
		if (!ret)
			ret = dmirror_hmm_fault_locked(dmirror, &range, false, NULL, NULL, NULL);
		if (ret)
			break;
		for (i = 0; !ret && i < (range.end - range.start) >> PAGE_SHIFT; i++) {
			struct page *page;

			if (!(pfns[i] & HMM_PFN_VALID))
				continue;
			page = hmm_pfn_to_page(pfns[i]);
			if (dmirror_page_local(dm->hmm, page))
				ret = dmirror_store(dmirror, (range.start >> PAGE_SHIFT) + i, page,
						    pfns[i] & HMM_PFN_WRITE, false);
		}
		mutex_unlock(&dmirror->mutex);
	}
	mmput(mm);
	kfree(pfns);
	return ret;
}

typedef int (*dmirror_relink_fn)(struct dmirror *dmirror, struct p2plab_devmem *dm,
				 unsigned long start, unsigned long end);

/*
 * Migration profile (debugfs p2plab-dmirror/migrate_profile; write anything to reset): where the
 * MIGRATE_TO_DEV / MIGRATE_TO_SYS ioctls spend their time, phase by phase, summed over all mirrors.
 * "copy" is p2plab's own part (page allocation, DMA mapping, descriptors, the device's copy; of it,
 * copy_dma is the wait for the DMA engine and copy_alloc the page allocator (which zeroes every page
 * with init_on_alloc=1, Debian's default), migration copies of any mirror or CPU fault); setup, pages and
 * finalize are the kernel's migrate_vma_*(); readback_* is the return of the migrated data that the
 * dmirror uAPI asks for (test_hmm does the same with the CPU): allocating and DMA-mapping the bounce
 * buffer, the device's copy into it, and copy_to_user(). docs/hmm.md "Benchmark".
 */
enum {
	PROF_PREPARE, PROF_SETUP, PROF_COPY, PROF_PAGES, PROF_FINALIZE,
	PROF_RB_BOUNCE, PROF_RB_DEVICE, PROF_RB_USER, PROF_NR
};
static const char * const dmirror_prof_names[PROF_NR] = {
	"prepare", "setup", "copy", "pages", "finalize",
	"readback_bounce", "readback_device", "readback_user",
};
static atomic64_t dmirror_prof_ns[2][PROF_NR], dmirror_prof_chunks[2], dmirror_prof_pages[2];
static struct dentry *dmirror_prof_dir;

static u64 dmirror_prof(bool to_dev, int phase, u64 t0)
{
	u64 now = ktime_get_ns();

	atomic64_add(now - t0, &dmirror_prof_ns[to_dev][phase]);
	return now;
}

static int dmirror_prof_show(struct seq_file *s, void *unused)
{
	int dir, ph;

	for (dir = 1; dir >= 0; dir--) {
		u64 total = 0, pages = atomic64_read(&dmirror_prof_pages[dir]);

		for (ph = 0; ph < PROF_NR; ph++)
			total += atomic64_read(&dmirror_prof_ns[dir][ph]);
		seq_printf(s, "%s: chunks %lld pages %llu total_ms %llu copy_dma_ms %lld copy_alloc_ms %lld",
			   dir ? "to_dev" : "to_sys", atomic64_read(&dmirror_prof_chunks[dir]), pages,
			   total / NSEC_PER_MSEC, atomic64_read(&p2plab_prof_dma_ns[dir]) / NSEC_PER_MSEC,
			   atomic64_read(&p2plab_prof_alloc_ns[dir]) / NSEC_PER_MSEC);
		for (ph = 0; ph < PROF_NR; ph++) {
			u64 ns = atomic64_read(&dmirror_prof_ns[dir][ph]);

			seq_printf(s, " %s_ms %llu (%llu%%, %llu ns/page)", dmirror_prof_names[ph],
				   ns / NSEC_PER_MSEC, total ? ns * 100 / total : 0, pages ? ns / pages : 0);
		}
		seq_putc(s, '\n');
	}
	return 0;
}

static int dmirror_prof_open(struct inode *inode, struct file *file)
{
	return single_open(file, dmirror_prof_show, NULL);
}

static ssize_t dmirror_prof_reset(struct file *file, const char __user *buf, size_t len, loff_t *ppos)
{
	int dir, ph;

	for (dir = 0; dir < 2; dir++) {
		for (ph = 0; ph < PROF_NR; ph++)
			atomic64_set(&dmirror_prof_ns[dir][ph], 0);
		atomic64_set(&dmirror_prof_chunks[dir], 0);
		atomic64_set(&p2plab_prof_dma_ns[dir], 0);
		atomic64_set(&p2plab_prof_alloc_ns[dir], 0);
		atomic64_set(&dmirror_prof_pages[dir], 0);
	}
	return len;
}

static const struct file_operations dmirror_prof_fops = {
	.owner		= THIS_MODULE,
	.open		= dmirror_prof_open,
	.read		= seq_read,
	.llseek		= seq_lseek,
	.release	= single_release,
	.write		= dmirror_prof_reset,
};

static int dmirror_read_back(struct dmirror *dmirror, struct p2plab_devmem *dm,
			     struct hmm_dmirror_cmd *cmd, unsigned long start, unsigned long end,
			     dmirror_relink_fn relink)
{
	struct dmirror_bounce bounce;
	unsigned long from = start;
	int ret, tries = 0;
	u64 t = ktime_get_ns();

	/* straight into the caller's buffer; a kernel buffer + copy_to_user() if it cannot be pinned */
	ret = dmirror_bounce_init_user(&bounce, dm->hmm, start, end - start, cmd->ptr, true);
	if (ret)
		ret = dmirror_bounce_init(&bounce, dm->hmm, start, end - start);
	if (ret)
		return ret;
	t = dmirror_prof(true, PROF_RB_BOUNCE, t);
	while (1) {
		mutex_lock(&dmirror->mutex);
		ret = dmirror_do_rw(dmirror, from, end, &bounce, false);
		mutex_unlock(&dmirror->mutex);
		if (ret != -ENOENT || ++tries > DMIRROR_READ_BACK_TRIES)
			break;
		from = start + (bounce.cpages << PAGE_SHIFT);
		atomic64_inc(&dm->st_relinks);
		ret = relink(dmirror, dm, from, end);
		if (ret)
			break;
	}
	t = dmirror_prof(true, PROF_RB_DEVICE, t);
	if (ret == 0) {
		dmirror_bounce_sync(&bounce, true);
		if (dmirror_bounce_user(&bounce, u64_to_user_ptr(cmd->ptr), true))
			ret = -EFAULT;
	}
	t = dmirror_prof(true, PROF_RB_USER, t);
	cmd->cpages = bounce.cpages;
	dmirror_bounce_fini(&bounce);
	dmirror_prof(true, PROF_RB_BOUNCE, t);
	return ret;
}

/* ---- migration ---- */

static int dmirror_migrate_finalize_and_map(struct migrate_vma *args, struct dmirror *dmirror)
{
	const unsigned long *src = args->src;
	const unsigned long *dst = args->dst;
	const unsigned long start_pfn = args->start >> PAGE_SHIFT;
	const unsigned long end_pfn = args->end >> PAGE_SHIFT;
	unsigned long pfn;
	int ret = 0;

	/* Map the migrated pages into the device's page tables. */
	mutex_lock(&dmirror->mutex);
	for (pfn = start_pfn; pfn < end_pfn; pfn++, src++, dst++) {
		struct page *dpage;
		int nr, i;

		if (!(*src & MIGRATE_PFN_MIGRATE))
			continue;
		dpage = migrate_pfn_to_page(*dst);
		if (!dpage)
			continue;
		nr = (*dst & MIGRATE_PFN_COMPOUND) ? folio_nr_pages(page_folio(dpage)) : 1;
		WARN_ON_ONCE(end_pfn < pfn + nr);
		for (i = 0; i < nr && pfn + i < end_pfn; i++) {
			ret = dmirror_store(dmirror, pfn + i, pfn_to_page(page_to_pfn(dpage) + i),
					    *dst & MIGRATE_PFN_WRITE, false);
			if (ret)
				goto out;
		}
	}
out:
	mutex_unlock(&dmirror->mutex);
	return ret;
}

static unsigned long dmirror_successful_migrated_pages(struct migrate_vma *migrate)
{
	unsigned long cpages = 0, i;

	for (i = 0; i < migrate->npages; i++)
		if (migrate->src[i] & MIGRATE_PFN_VALID && migrate->src[i] & MIGRATE_PFN_MIGRATE)
			cpages++;
	return cpages;
}

static int dmirror_migrate_once(struct dmirror *dmirror, struct p2plab_devmem *dm,
				struct hmm_dmirror_cmd *cmd, bool to_dev)
{
	unsigned long start, end, addr, next;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct migrate_vma args = { 0 };
	struct vm_area_struct *vma;
	unsigned long *src_pfns, *dst_pfns;
	int ret = 0;
	u64 t;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;
	/* Since the mm is for the mirrored process, get a reference first. */
	if (!mmget_not_zero(mm))
		return -EINVAL;
	src_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*src_pfns), GFP_KERNEL | __GFP_NOFAIL);
	dst_pfns = kvcalloc(PTRS_PER_PTE, sizeof(*dst_pfns), GFP_KERNEL | __GFP_NOFAIL);

	cmd->cpages = 0;
	mmap_read_lock(mm);
	for (addr = start; addr < end; addr = next) {
		bool fail = dmirror->flags & HMM_DMIRROR_FLAG_FAIL_ALLOC;

		vma = vma_lookup(mm, addr);
		if (!vma || !(vma->vm_flags & VM_READ)) {
			ret = -EINVAL;
			break;
		}
		/*
		 * Chunks end on PMD boundaries (test_hmm uses addr + 512 pages): a THP is then
		 * collected whole (MIGRATE_VMA_SELECT_COMPOUND needs PMD-aligned start and end)
		 * instead of being split while still mapped, which fails under contention.
		 */
		next = min(end, (addr & PMD_MASK) + PMD_SIZE);
		if (next > vma->vm_end)
			next = vma->vm_end;

		t = ktime_get_ns();
		if (to_dev) {
			ret = dmirror_ranges_prepare(dmirror, dm->hmm, addr, next);
			if (ret)
				break;
		}
		t = dmirror_prof(to_dev, PROF_PREPARE, t);
		memset(dst_pfns, 0, PTRS_PER_PTE * sizeof(*dst_pfns));
		args.vma = vma;
		args.src = src_pfns;
		args.dst = dst_pfns;
		args.start = addr;
		args.end = next;
		args.pgmap_owner = dm;
		/*
		 * Whole PMD folios are collected (device THP for device-private memory). Device-
		 * coherent memory has 4 KiB pages only (hmm_coherent_thp=0): the unmapped system THP
		 * is then split by migrate_vma_pages(), which is reliable, unlike letting
		 * migrate_vma_setup() split a mapped THP (fails while it has extra references).
		 */
		args.flags = (to_dev ? MIGRATE_VMA_SELECT_SYSTEM : dmirror_select_device(dmirror)) |
			     MIGRATE_VMA_SELECT_COMPOUND;
		ret = migrate_vma_setup(&args);
		if (ret)
			break;
		t = dmirror_prof(to_dev, PROF_SETUP, t);
		atomic64_inc(&dmirror_prof_chunks[to_dev]);
		atomic64_add(args.cpages, &dmirror_prof_pages[to_dev]);
		dmirror->flags &= ~HMM_DMIRROR_FLAG_FAIL_ALLOC;
		if (to_dev) {
			ret = p2plab_migrate_copy_to_dev(dm, &args, fail);
		} else {
			p2plab_dmirror_erase_migrating(dm->hmm, &args);
			ret = p2plab_migrate_copy_to_ram(&args, fail);
		}
		t = dmirror_prof(to_dev, PROF_COPY, t);
		if (ret) {
			/* nothing of this range moved: the data is intact where it was */
			migrate_vma_finalize(&args);
			break;
		}
		{
			unsigned long i, before = 0, after = 0;

			for (i = 0; i < args.npages; i++)
				before += !!(args.dst[i] & MIGRATE_PFN_VALID);
			migrate_vma_pages(&args);
			for (i = 0; i < args.npages; i++)
				after += !!((args.dst[i] & MIGRATE_PFN_VALID) &&
					    (args.src[i] & MIGRATE_PFN_MIGRATE));
			/* e.g. a THP that could not be split for 4 KiB device pages */
			if (before > after)
				atomic64_add(before - after, &dm->st_skipped);
		}
		t = dmirror_prof(to_dev, PROF_PAGES, t);
		if (to_dev)
			ret = dmirror_migrate_finalize_and_map(&args, dmirror);
		else
			cmd->cpages += dmirror_successful_migrated_pages(&args);
		migrate_vma_finalize(&args);
		dmirror_prof(to_dev, PROF_FINALIZE, t);
		if (ret)
			break;
	}
	mmap_read_unlock(mm);
	mmput(mm);
	kvfree(src_pfns);
	kvfree(dst_pfns);
	if (ret || !to_dev)
		return ret;

	/* Return the migrated data for verification: the device reads it through its mirror. */
	return dmirror_read_back(dmirror, dm, cmd, start, end, dmirror_relink_local);
}

static int dmirror_migrate(struct dmirror *dmirror, struct p2plab_devmem *dm,
			   struct hmm_dmirror_cmd *cmd, bool to_dev)
{
	int ret = dmirror_migrate_once(dmirror, dm, cmd, to_dev), tries = 0;

	/*
	 * migrate_vma_setup()/migrate_vma_pages() may transiently decline pages (a THP that
	 * could not be split right now, an extra reference held for a moment): pages that were
	 * neither migrated nor mirrored make the read-back report -ENOENT.  Retry the range;
	 * memory that cannot migrate at all (shared anonymous, ...) still ends in -ENOENT like
	 * test_hmm.  Retries are counted in debugfs (retries).
	 */
	while (to_dev && ret == -ENOENT && tries++ < 3) {
		/* e.g. khugepaged holds the folio lock while collapsing 4 KiB pages that came
		 * back from device-coherent memory: give it a moment */
		atomic64_inc(&dm->st_retries);
		msleep(tries * 10);
		ret = dmirror_migrate_once(dmirror, dm, cmd, to_dev);
	}
	return ret;
}

/* ---- exclusive access (device atomics) ---- */

static int dmirror_check_atomic(struct dmirror *dmirror, unsigned long start, unsigned long end)
{
	unsigned long pfn;

	int ret = 0;

	mutex_lock(&dmirror->mutex);
	for (pfn = start >> PAGE_SHIFT; !ret && pfn < (end >> PAGE_SHIFT); pfn++) {
		struct dmirror_range *r;
		size_t idx;

		r = dmirror_range_find(dmirror, pfn, &idx);
		if (r && test_bit(idx, r->atomic))
			ret = -EPERM;
	}
	mutex_unlock(&dmirror->mutex);
	return ret;
}

/* Take [start, end) for exclusive device access (make_device_exclusive()), recording entries. */
static int dmirror_take_exclusive(struct dmirror *dmirror, struct p2plab_devmem *dm,
				  unsigned long start, unsigned long end)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long addr;
	int ret = 0;

	if (!mmget_not_zero(mm))
		return -EINVAL;

	mmap_read_lock(mm);
	for (addr = start; !ret && addr < end; addr += PAGE_SIZE) {
		struct folio *folio;
		struct page *page;

		ret = dmirror_ranges_prepare(dmirror, dm->hmm, addr, addr + PAGE_SIZE);
		if (ret)
			break;
		/* CPU mappings replaced by device-exclusive entries: a CPU access revokes it */
		page = make_device_exclusive(mm, addr, NULL, &folio);
		if (IS_ERR(page)) {
			ret = PTR_ERR(page);
			break;
		}
		mutex_lock(&dmirror->mutex);
		ret = dmirror_store(dmirror, addr >> PAGE_SHIFT, page, true, true);
		mutex_unlock(&dmirror->mutex);
		folio_unlock(folio);
		folio_put(folio);
	}
	mmap_read_unlock(mm);
	mmput(mm);
	return ret;
}

static int dmirror_exclusive(struct dmirror *dmirror, struct p2plab_devmem *dm,
			     struct hmm_dmirror_cmd *cmd)
{
	unsigned long start = cmd->addr, end = start + (cmd->npages << PAGE_SHIFT);
	int ret;

	if (end < start)
		return -EINVAL;
	ret = dmirror_take_exclusive(dmirror, dm, start, end);
	if (ret)
		return ret;
	/* Return the data for verification: the device reads it while it holds exclusivity. */
	return dmirror_read_back(dmirror, dm, cmd, start, end, dmirror_take_exclusive);
}

/* ---- snapshot ---- */

static void dmirror_mkentry(struct dmirror *dmirror, struct p2plab_devmem *dm,
			    unsigned char *perm, unsigned long entry)
{
	struct page *page;

	if (entry & HMM_PFN_ERROR) {
		*perm = HMM_DMIRROR_PROT_ERROR;
		return;
	}
	if (!(entry & HMM_PFN_VALID)) {
		*perm = HMM_DMIRROR_PROT_NONE;
		return;
	}
	page = hmm_pfn_to_page(entry);
	if (is_device_private_page(page)) {
		/* Is the page migrated to this device or some other? */
		if (p2plab_page_devmem(page) == dm)
			*perm = HMM_DMIRROR_PROT_DEV_PRIVATE_LOCAL;
		else
			*perm = HMM_DMIRROR_PROT_DEV_PRIVATE_REMOTE;
	} else if (is_device_coherent_page(page)) {
		if (p2plab_page_devmem(page) == dm)
			*perm = HMM_DMIRROR_PROT_DEV_COHERENT_LOCAL;
		else
			*perm = HMM_DMIRROR_PROT_DEV_COHERENT_REMOTE;
	} else if (is_zero_pfn(page_to_pfn(page))) {
		*perm = HMM_DMIRROR_PROT_ZERO;
	} else {
		*perm = HMM_DMIRROR_PROT_NONE;
	}
	if (entry & HMM_PFN_WRITE)
		*perm |= HMM_DMIRROR_PROT_WRITE;
	else
		*perm |= HMM_DMIRROR_PROT_READ;
	if (hmm_pfn_to_map_order(entry) + PAGE_SHIFT == PMD_SHIFT)
		*perm |= HMM_DMIRROR_PROT_PMD;
	else if (hmm_pfn_to_map_order(entry) + PAGE_SHIFT == PUD_SHIFT)
		*perm |= HMM_DMIRROR_PROT_PUD;
}

static bool dmirror_snapshot_invalidate(struct mmu_interval_notifier *mni,
					const struct mmu_notifier_range *range,
					unsigned long cur_seq)
{
	struct dmirror_interval *dmi = container_of(mni, struct dmirror_interval, notifier);
	struct dmirror *dmirror = dmi->dmirror;

	if (mmu_notifier_range_blockable(range))
		mutex_lock(&dmirror->mutex);
	else if (!mutex_trylock(&dmirror->mutex))
		return false;
	/* any invalidation in the interval invalidates the whole snapshot */
	mmu_interval_set_seq(mni, cur_seq);
	mutex_unlock(&dmirror->mutex);
	return true;
}

static const struct mmu_interval_notifier_ops dmirror_mrn_ops = {
	.invalidate = dmirror_snapshot_invalidate,
};

static int dmirror_range_snapshot(struct dmirror *dmirror, struct p2plab_devmem *dm,
				  struct hmm_range *range, unsigned char *perm)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	struct dmirror_interval notifier;
	unsigned long i, n;
	int ret = 0;

	notifier.dmirror = dmirror;
	range->notifier = &notifier.notifier;
	ret = mmu_interval_notifier_insert(range->notifier, mm, range->start,
					   range->end - range->start, &dmirror_mrn_ops);
	if (ret)
		return ret;
	ret = dmirror_hmm_fault_locked(dmirror, range, false, NULL, NULL, NULL);
	if (ret)
		goto out;
	n = (range->end - range->start) >> PAGE_SHIFT;
	for (i = 0; i < n; i++)
		dmirror_mkentry(dmirror, dm, perm + i, range->hmm_pfns[i]);
	mutex_unlock(&dmirror->mutex);
out:
	mmu_interval_notifier_remove(range->notifier);
	return ret;
}

static int dmirror_snapshot(struct dmirror *dmirror, struct p2plab_devmem *dm,
			    struct hmm_dmirror_cmd *cmd)
{
	struct mm_struct *mm = dmirror->notifier.mm;
	unsigned long start, end, addr, next;
	unsigned long size = cmd->npages << PAGE_SHIFT;
	unsigned long pfns[32];
	unsigned char perm[32];
	char __user *uptr;
	struct hmm_range range = {
		.hmm_pfns = pfns,
		.dev_private_owner = dm,
	};
	int ret = 0;

	start = cmd->addr;
	end = start + size;
	if (end < start)
		return -EINVAL;
	if (!mmget_not_zero(mm))
		return -EINVAL;
	uptr = u64_to_user_ptr(cmd->ptr);
	for (addr = start; addr < end; addr = next) {
		unsigned long n;

		next = min(addr + (ARRAY_SIZE(pfns) << PAGE_SHIFT), end);
		range.start = addr;
		range.end = next;
		ret = dmirror_range_snapshot(dmirror, dm, &range, perm);
		if (ret)
			break;
		n = (range.end - range.start) >> PAGE_SHIFT;
		if (copy_to_user(uptr, perm, n)) {
			ret = -EFAULT;
			break;
		}
		cmd->cpages += n;
		uptr += n;
	}
	mmput(mm);
	return ret;
}

static void dmirror_sparse_prepare(struct hmm_range *range, void *arg)
{
	const unsigned char *req = arg;
	unsigned long i, n = (range->end - range->start) >> PAGE_SHIFT;

	for (i = 0; i < n; i++)
		range->hmm_pfns[i] = req[i] == P2PLAB_DMIRROR_REQ_WRITE ?
			HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE :
			req[i] == P2PLAB_DMIRROR_REQ_READ ? HMM_PFN_REQ_FAULT : 0;
}

/*
 * P2PLAB_DMIRROR_FAULT_SPARSE (p2plab_ioctl.h): fault exactly the pages userspace asks for, with
 * per-page request flags (pfn_flags_mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE, default_flags
 * 0); the result is a snapshot of the range (HMM_DMIRROR_PROT_* per page). Mirrors nothing.
 */
static int dmirror_fault_sparse(struct dmirror *dmirror, struct p2plab_devmem *dm,
				struct hmm_dmirror_cmd *cmd)
{
	unsigned long npages = cmd->npages, i, start = cmd->addr;
	struct mm_struct *mm = dmirror->notifier.mm;
	struct hmm_range range = {
		.start = start,
		.end = start + (npages << PAGE_SHIFT),
		.pfn_flags_mask = HMM_PFN_REQ_FAULT | HMM_PFN_REQ_WRITE,
		.default_flags = 0,
		.dev_private_owner = dm,
	};
	struct dmirror_interval notifier = { .dmirror = dmirror };
	unsigned char *req;
	int ret;

	if (!npages || npages > P2PLAB_DMIRROR_SPARSE_MAX)
		return -EINVAL;
	req = kmalloc(npages, GFP_KERNEL);
	range.hmm_pfns = kmalloc_array(npages, sizeof(*range.hmm_pfns), GFP_KERNEL);
	if (!req || !range.hmm_pfns) {
		ret = -ENOMEM;
		goto out_free;
	}
	if (copy_from_user(req, u64_to_user_ptr(cmd->ptr), npages)) {
		ret = -EFAULT;
		goto out_free;
	}
	for (i = 0; i < npages; i++) {
		if (req[i] > P2PLAB_DMIRROR_REQ_WRITE) {
			ret = -EINVAL;
			goto out_free;
		}
	}
	if (!mmget_not_zero(mm)) {
		ret = -EINVAL;
		goto out_free;
	}
	range.notifier = &notifier.notifier;
	ret = mmu_interval_notifier_insert(range.notifier, mm, range.start,
					   range.end - range.start, &dmirror_mrn_ops);
	if (ret)
		goto out_mmput;
	/* the per-page requests are inputs of every attempt; cmd->faults reports the retries */
	ret = dmirror_hmm_fault_locked(dmirror, &range, false, dmirror_sparse_prepare, req,
				       &cmd->faults);
	if (ret)
		goto out_remove;
	for (i = 0; i < npages; i++) {
		dmirror_mkentry(dmirror, dm, &req[i], range.hmm_pfns[i]);
		cmd->cpages += !!(range.hmm_pfns[i] & HMM_PFN_VALID);
	}
	mutex_unlock(&dmirror->mutex);
	if (copy_to_user(u64_to_user_ptr(cmd->ptr), req, npages))
		ret = -EFAULT;
out_remove:
	mmu_interval_notifier_remove(range.notifier);
out_mmput:
	mmput(mm);
out_free:
	kfree(range.hmm_pfns);
	kfree(req);
	return ret;
}

/* ---- file operations ---- */

static long dmirror_fops_unlocked_ioctl(struct file *filp, unsigned int command,
					unsigned long arg)
{
	void __user *uarg = (void __user *)arg;
	struct dmirror *dmirror = filp->private_data;
	struct dmirror_device *mdevice;
	struct hmm_dmirror_cmd cmd;
	struct p2plab_devmem *dm;
	int ret;

	if (!dmirror)
		return -EINVAL;
	mdevice = dmirror->mdevice;
	if (copy_from_user(&cmd, uarg, sizeof(cmd)))
		return -EFAULT;
	if (cmd.addr & ~PAGE_MASK)
		return -EINVAL;
	if (cmd.addr >= (cmd.addr + (cmd.npages << PAGE_SHIFT)))
		return -EINVAL;
	cmd.cpages = 0;
	cmd.faults = 0;

	down_read(&mdevice->sem);
	dm = mdevice->dm;
	if (!dm) {
		up_read(&mdevice->sem);
		return -ENODEV;	/* the p2plab device is gone (or never came) */
	}
	if (mutex_lock_killable(&dmirror->op_lock)) {
		up_read(&mdevice->sem);
		return -EINTR;
	}
	if (dmirror->map_hmm != dm->hmm) {
		/* first use, or first use since the device came back: its ranges are new */
		mutex_lock(&dmirror->mutex);
		dmirror_clear_all(dmirror);
		dmirror->map_hmm = dm->hmm;
		mutex_unlock(&dmirror->mutex);
	}
	switch (command) {
	case HMM_DMIRROR_READ:
		ret = dmirror_rw(dmirror, dm, &cmd, false, false);
		break;
	case HMM_DMIRROR_WRITE:
		ret = dmirror_rw(dmirror, dm, &cmd, true, false);
		break;
	case HMM_DMIRROR_READ_UNLOCKED:
		ret = dmirror_rw(dmirror, dm, &cmd, false, true);
		break;
	case HMM_DMIRROR_MIGRATE_TO_DEV:
		ret = dmirror_migrate(dmirror, dm, &cmd, true);
		break;
	case HMM_DMIRROR_MIGRATE_TO_SYS:
		ret = dmirror_migrate(dmirror, dm, &cmd, false);
		break;
	case HMM_DMIRROR_EXCLUSIVE:
		ret = dmirror_exclusive(dmirror, dm, &cmd);
		break;
	case HMM_DMIRROR_CHECK_EXCLUSIVE:
		ret = dmirror_check_atomic(dmirror, cmd.addr,
					   cmd.addr + (cmd.npages << PAGE_SHIFT));
		break;
	case HMM_DMIRROR_SNAPSHOT:
		ret = dmirror_snapshot(dmirror, dm, &cmd);
		break;
	case P2PLAB_DMIRROR_FAULT_SPARSE:
		ret = dmirror_fault_sparse(dmirror, dm, &cmd);
		break;
	case HMM_DMIRROR_RELEASE:
		/* evict all device memory of this device to system memory */
		p2plab_devmem_evict(dm);
		ret = 0;
		break;
	case HMM_DMIRROR_FLAGS:
		dmirror->flags = cmd.npages;
		ret = 0;
		break;
	default:
		ret = -EINVAL;
	}
	mutex_unlock(&dmirror->op_lock);
	up_read(&mdevice->sem);
	if (ret)
		return ret;
	if (copy_to_user(uarg, &cmd, sizeof(cmd)))
		return -EFAULT;
	return 0;
}

static int dmirror_fops_mmap(struct file *file, struct vm_area_struct *vma)
{
	unsigned long addr;

	/* a VM_MIXEDMAP range of kernel pages (hmm-tests "mixedmap") */
	for (addr = vma->vm_start; addr < vma->vm_end; addr += PAGE_SIZE) {
		struct page *page;
		int ret;

		page = alloc_page(GFP_KERNEL | __GFP_ZERO);
		if (!page)
			return -ENOMEM;
		ret = vm_insert_page(vma, addr, page);
		if (ret) {
			__free_page(page);
			return ret;
		}
		put_page(page);
	}
	return 0;
}

static const struct file_operations dmirror_fops = {
	.open		= dmirror_fops_open,
	.release	= dmirror_fops_release,
	.mmap		= dmirror_fops_mmap,
	.unlocked_ioctl = dmirror_fops_unlocked_ioctl,
	.llseek		= default_llseek,
	.owner		= THIS_MODULE,
};

/* ---- binding to p2plab devices ---- */

static void dmirror_attach(struct dmirror_device *mdevice, struct p2plab_hmm *hmm)
{
	struct p2plab_devmem *dm;

	if (!mdevice || !hmm)
		return;
	dm = mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? &hmm->priv : &hmm->coh;
	if (!dm->mapped)
		return;
	down_write(&mdevice->sem);
	mdevice->hmm = hmm;
	mdevice->dm = dm;
	up_write(&mdevice->sem);
	pr_info("hmm_dmirror%d -> p2plab%d %s memory\n", mdevice->id, hmm->id,
		mdevice->type == HMM_DMIRROR_MEMORY_DEVICE_PRIVATE ? "device-private" : "device-coherent");
}

static void dmirror_detach(struct dmirror_device *mdevice, struct p2plab_hmm *hmm)
{
	struct dmirror *m;

	if (!mdevice)
		return;
	down_write(&mdevice->sem);
	if (mdevice->hmm == hmm) {
		/* no ioctl runs now; drop every mirror's DMA mappings of this device */
		mutex_lock(&mdevice->mlock);
		list_for_each_entry(m, &mdevice->mirrors, node) {
			mutex_lock(&m->mutex);
			dmirror_clear_all(m);
			m->map_hmm = NULL;
			mutex_unlock(&m->mutex);
		}
		mutex_unlock(&mdevice->mlock);
		mdevice->hmm = NULL;
		mdevice->dm = NULL;
	}
	up_write(&mdevice->sem);
}

/*
 * Device pages of @hmm mapped at [start, end) of @mm are leaving the device (migration to RAM):
 * erase the device's mirror entries for them in every mirror of this device on that mm.
 */
void p2plab_dmirror_erase_range(struct p2plab_hmm *hmm, struct mm_struct *mm,
				unsigned long start, unsigned long end)
{
	int k;

	if (hmm->id < 0 || hmm->id > 1)
		return;
	for (k = hmm->id; k < DMIRROR_NDEVICES; k += 2) {
		struct dmirror_device *mdevice = READ_ONCE(dmirror_devices[k]);
		struct dmirror *m;

		if (!mdevice)
			continue;
		mutex_lock(&mdevice->mlock);
		list_for_each_entry(m, &mdevice->mirrors, node) {
			if (m->notifier.mm != mm)
				continue;
			mutex_lock(&m->mutex);
			if (m->map_hmm == hmm)
				dmirror_do_update(m, start, end);
			mutex_unlock(&m->mutex);
		}
		mutex_unlock(&mdevice->mlock);
	}
}

/* Erase the mirror entries of exactly the pages a migrate_vma range is moving (test_hmm does
 * the same per page): pages that stay on the device keep their entries. */
void p2plab_dmirror_erase_migrating(struct p2plab_hmm *hmm, struct migrate_vma *args)
{
	unsigned long i = 0, run = 0;

	while (i < args->npages) {
		unsigned long nr = 1;

		if (args->src[i] & MIGRATE_PFN_MIGRATE) {
			if (args->src[i] & MIGRATE_PFN_COMPOUND)
				nr = min_t(unsigned long, HPAGE_PMD_NR, args->npages - i);
			if (!run)
				run = i + 1;	/* 1-based start of the current run */
		} else if (run) {
			p2plab_dmirror_erase_range(hmm, args->vma->vm_mm,
						   args->start + ((run - 1) << PAGE_SHIFT),
						   args->start + (i << PAGE_SHIFT));
			run = 0;
		}
		i += nr;
	}
	if (run)
		p2plab_dmirror_erase_range(hmm, args->vma->vm_mm,
					   args->start + ((run - 1) << PAGE_SHIFT),
					   args->start + (min(i, args->npages) << PAGE_SHIFT));
}

void p2plab_dmirror_bind(struct p2plab_hmm *hmm)
{
	if (hmm->id < 0 || hmm->id > 1)
		return;
	mutex_lock(&dmirror_lock);
	dmirror_bound[hmm->id] = hmm;
	dmirror_attach(dmirror_devices[hmm->id], hmm);
	dmirror_attach(dmirror_devices[hmm->id + 2], hmm);
	mutex_unlock(&dmirror_lock);
}

void p2plab_dmirror_unbind(struct p2plab_hmm *hmm)
{
	if (hmm->id < 0 || hmm->id > 1)
		return;
	mutex_lock(&dmirror_lock);
	if (dmirror_bound[hmm->id] == hmm)
		dmirror_bound[hmm->id] = NULL;
	dmirror_detach(dmirror_devices[hmm->id], hmm);
	dmirror_detach(dmirror_devices[hmm->id + 2], hmm);
	mutex_unlock(&dmirror_lock);
}

static void dmirror_device_release(struct device *dev)
{
	kfree(container_of(dev, struct dmirror_device, device));
}

static int dmirror_device_create(int id)
{
	struct dmirror_device *mdevice;
	int ret;

	mdevice = kzalloc(sizeof(*mdevice), GFP_KERNEL);
	if (!mdevice)
		return -ENOMEM;
	mdevice->id = id;
	mdevice->type = id < 2 ? HMM_DMIRROR_MEMORY_DEVICE_PRIVATE : HMM_DMIRROR_MEMORY_DEVICE_COHERENT;
	init_rwsem(&mdevice->sem);
	mutex_init(&mdevice->mlock);
	INIT_LIST_HEAD(&mdevice->mirrors);
	cdev_init(&mdevice->cdevice, &dmirror_fops);
	mdevice->cdevice.owner = THIS_MODULE;
	device_initialize(&mdevice->device);
	mdevice->device.release = dmirror_device_release;
	mdevice->device.devt = MKDEV(MAJOR(dmirror_dev), id);
	ret = dev_set_name(&mdevice->device, "hmm_dmirror%u", id);
	if (!ret)
		ret = cdev_device_add(&mdevice->cdevice, &mdevice->device);
	if (ret) {
		put_device(&mdevice->device);
		return ret;
	}
	dmirror_devices[id] = mdevice;
	return 0;
}

int p2plab_dmirror_init(void)
{
	int ret, id;

	if (!dmirror)
		return 0;
	ret = alloc_chrdev_region(&dmirror_dev, 0, DMIRROR_NDEVICES, "HMM_DMIRROR");
	if (ret)
		return ret;
	mutex_lock(&dmirror_lock);
	for (id = 0; id < DMIRROR_NDEVICES; id++) {
		ret = dmirror_device_create(id);
		if (ret)
			break;
	}
	if (ret) {
		while (--id >= 0) {
			cdev_device_del(&dmirror_devices[id]->cdevice, &dmirror_devices[id]->device);
			put_device(&dmirror_devices[id]->device);
			dmirror_devices[id] = NULL;
		}
		mutex_unlock(&dmirror_lock);
		unregister_chrdev_region(dmirror_dev, DMIRROR_NDEVICES);
		pr_err("cannot create /dev/hmm_dmirrorN (is test_hmm loaded?): %d\n", ret);
		return ret;
	}
	/* devices probed before us */
	for (id = 0; id < 2; id++) {
		dmirror_attach(dmirror_devices[id], dmirror_bound[id]);
		dmirror_attach(dmirror_devices[id + 2], dmirror_bound[id]);
	}
	dmirror_active = true;
	mutex_unlock(&dmirror_lock);
	dmirror_prof_dir = debugfs_create_dir("p2plab-dmirror", NULL);
	debugfs_create_file("migrate_profile", 0644, dmirror_prof_dir, NULL, &dmirror_prof_fops);
	pr_info("dmirror uAPI enabled: /dev/hmm_dmirror0..3\n");
	return 0;
}

void p2plab_dmirror_exit(void)
{
	int id;

	if (!dmirror_active)
		return;
	mutex_lock(&dmirror_lock);
	for (id = 0; id < DMIRROR_NDEVICES; id++) {
		struct dmirror_device *mdevice = dmirror_devices[id];

		if (!mdevice)
			continue;
		if (mdevice->hmm)
			dmirror_detach(mdevice, mdevice->hmm);
		cdev_device_del(&mdevice->cdevice, &mdevice->device);
		put_device(&mdevice->device);
		dmirror_devices[id] = NULL;
	}
	dmirror_active = false;
	mutex_unlock(&dmirror_lock);
	debugfs_remove_recursive(dmirror_prof_dir);
	dmirror_prof_dir = NULL;
	unregister_chrdev_region(dmirror_dev, DMIRROR_NDEVICES);
}
