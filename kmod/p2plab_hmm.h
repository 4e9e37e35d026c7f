/* SPDX-License-Identifier: GPL-2.0 */
/*
 * p2plab_hmm.h - hooks from the core into the HMM side (p2plab_hmm.c, p2plab_dmirror.c).
 *
 * Kbuild compiles p2plab_hmm.c / p2plab_dmirror.c only when they exist and then defines
 * P2PLAB_HAVE_HMM; without them these are no-op stubs so the core builds and runs alone.
 *   p2plab_hmm_init()/exit():   module init/exit (dmirror character devices)
 *   p2plab_hmm_probe(pd):       after the DMA engine is up, before p2pmem is published
 *   p2plab_hmm_remove(pd):      early in remove(): after char-device users are stopped, while the
 *                               DMA engine still works
 */
#ifndef P2PLAB_HMM_H
#define P2PLAB_HMM_H

struct p2plab_dev;

#ifdef P2PLAB_HAVE_HMM
int p2plab_hmm_init(void);
void p2plab_hmm_exit(void);
int p2plab_hmm_probe(struct p2plab_dev *pd);
void p2plab_hmm_remove(struct p2plab_dev *pd);
#else
static inline int p2plab_hmm_init(void) { return 0; }
static inline void p2plab_hmm_exit(void) { }
static inline int p2plab_hmm_probe(struct p2plab_dev *pd) { return 0; }
static inline void p2plab_hmm_remove(struct p2plab_dev *pd) { }
#endif


/*
 * ---- HMM internals: shared by p2plab_hmm.c and p2plab_dmirror.c only ----
 * Device memory (BAR2 [priv_off, priv_off + priv_size)) is split into a MEMORY_DEVICE_PRIVATE
 * and a MEMORY_DEVICE_COHERENT pagemap; see p2plab_hmm.c and docs/hmm.md.
 */
#ifdef P2PLAB_HMM_INTERNAL
#include <linux/types.h>
#include <linux/memremap.h>
#include <linux/migrate.h>
#include <linux/dma-mapping.h>
#include <linux/spinlock.h>

/* memory kinds: HMM_DMIRROR_MEMORY_DEVICE_PRIVATE / _COHERENT of the kernel's test_hmm_uapi.h */
#include "test_hmm_uapi.h"

struct p2plab_hmm;
struct p2plab_xfer;

/* One ZONE_DEVICE region of a device: its pgmap owner is the struct itself. */
struct p2plab_devmem {
	struct dev_pagemap	pgmap;		/* pgmap.owner == this */
	struct p2plab_hmm	*hmm;
	int			type;		/* HMM_DMIRROR_MEMORY_DEVICE_* */
	bool			mapped;		/* memremap_pages() done */
	u64			dev_off;	/* BAR2 offset of the first page */
	unsigned long		pfn_first;
	unsigned long		npages;
	struct resource		*res;		/* private: request_free_mem_region() */
	spinlock_t		lock;		/* protects the allocator */
	unsigned long		*bitmap;	/* 1 = allocated */
	unsigned long		nfree;
	unsigned long		hint;
	bool			dying;		/* no new allocations */
	atomic64_t		st_to_dev, st_to_ram, st_faults, st_evicted, st_errors, st_thp,
				st_skipped, st_retries,
				st_foreign_src,	/* device pages a SELECT_SYSTEM migration handed us */
				st_relinks,	/* mirror entries dropped before a read-back, relinked */
				st_write_not_granted;	/* REQ_WRITE answered read-only (7.3 bug) */
};

struct p2plab_hmm {
	struct p2plab_dev	*pd;
	struct device		*dma_dev;
	int			id;
	struct p2plab_devmem	priv;
	struct p2plab_devmem	coh;
	dma_addr_t		zero_dma;	/* ZERO_PAGE mapped for reads by the device */
	bool			dead;		/* last batch saw -ENODEV (debugfs) */
	/* the mirror's use of the kernel's HMM DMA map (p2plab_dmirror.c, debugfs "mirror:") */
	atomic64_t		st_ranges;	/* hmm_dma_map_alloc() calls (2 MiB ranges) */
	atomic64_t		st_ranges_iova;	/* ... of them with an IOVA (dma_use_iova()) */
	atomic64_t		st_dma_maps;	/* hmm_dma_map_pfn() on an unmapped entry */
	atomic64_t		st_dma_reuses;	/* ... on an entry still HMM_PFN_DMA_MAPPED */
	atomic64_t		st_dma_unmaps;	/* hmm_dma_unmap_pfn() that unmapped */
	atomic64_t		st_p2p_bus;	/* new mappings with HMM_PFN_P2PDMA_BUS */
	atomic64_t		st_p2p_mmio;	/* new mappings with HMM_PFN_P2PDMA (host bridge) */
	atomic64_t		st_p2p_refused;	/* p2pmem pages hmm_dma_map_pfn() refused */
	struct dentry		*dbg;
};

/* A batch of descriptors plus the DMA mappings to drop after it ran. */
struct p2plab_batch {
	struct p2plab_hmm	*hmm;
	struct p2plab_xfer	*x;
	unsigned int		n, max;
	struct p2plab_batch_map {
		dma_addr_t addr; size_t len; enum dma_data_direction dir; unsigned long attrs;
	} *maps;
	unsigned int		nmaps, maxmaps;
};

extern unsigned int p2plab_hmm_dma_timeout_ms;

int p2plab_batch_init(struct p2plab_batch *b, struct p2plab_hmm *hmm, unsigned int max);
void p2plab_batch_fini(struct p2plab_batch *b);	/* unmaps what is still mapped */
void p2plab_batch_add(struct p2plab_batch *b, u64 src, u64 dst, u32 len, u32 flags);
/* map phys for the device, recorded for unmap after the run; DMA_MAPPING_ERROR on failure */
dma_addr_t p2plab_batch_map(struct p2plab_batch *b, phys_addr_t phys, size_t len,
			    enum dma_data_direction dir, unsigned long attrs);
int p2plab_batch_run(struct p2plab_batch *b);		/* runs, empties, unmaps */

struct p2plab_devmem *p2plab_page_devmem(struct page *page);	/* NULL if not a p2plab page */
u64 p2plab_page_dev_off(struct page *page);			/* BAR2 offset of a p2plab page */
struct page *p2plab_devmem_alloc(struct p2plab_devmem *dm, unsigned int order);
/* page->zone_device_data == &p2plab_page_cpu_copy: copied back to RAM by the CPU (SVM placement) */
extern char p2plab_page_cpu_copy;
int p2plab_migrate_copy_to_dev(struct p2plab_devmem *dm, struct migrate_vma *args,
			       bool fail_alloc);
int p2plab_migrate_copy_to_ram(struct migrate_vma *args, bool fail_alloc);
/* ns spent in the DMA engine by migration copies: [0] to RAM, [1] to the device */
extern atomic64_t p2plab_prof_dma_ns[2];
extern atomic64_t p2plab_prof_alloc_ns[2];
unsigned long p2plab_devmem_evict(struct p2plab_devmem *dm);	/* all pages to RAM */

/* dmirror (p2plab_dmirror.c) */
int p2plab_dmirror_init(void);
void p2plab_dmirror_exit(void);
void p2plab_dmirror_bind(struct p2plab_hmm *hmm);
void p2plab_dmirror_unbind(struct p2plab_hmm *hmm);
void p2plab_dmirror_erase_range(struct p2plab_hmm *hmm, struct mm_struct *mm,
				unsigned long start, unsigned long end);
void p2plab_dmirror_erase_migrating(struct p2plab_hmm *hmm, struct migrate_vma *args);
#endif /* P2PLAB_HMM_INTERNAL */

#endif /* P2PLAB_HMM_H */
