// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_p2p.c - DMA-mapping pages for a p2plab engine, peer-to-peer pages included: the KERNEL
 * decides how a P2P transfer is mapped, this file only asks and reports.
 *
 * Pages (pinned user pages, or the p2pmem pages of a peer's BAR2) go into a scatterlist that the
 * DMA core maps with dma_map_sgtable(). For every P2PDMA page the DMA core calls
 * pci_p2pdma_state() (drivers/pci/p2pdma.c: the map type of the provider/client pair, from the
 * PCI topology, the ACS redirect bits and the host-bridge allow-list) and then:
 *   PCI_P2PDMA_MAP_BUS_ADDR          programs the PCI bus address (pci_p2pdma_bus_addr_map() with
 *                                    the page's p2pdma_provider) and marks the segment
 *                                    (sg_dma_is_bus_address()): no IOMMU mapping;
 *   PCI_P2PDMA_MAP_THRU_HOST_BRIDGE  maps the segment like memory (through the IOMMU if any);
 *   PCI_P2PDMA_MAP_NOT_SUPPORTED     fails the whole mapping with -EREMOTEIO.
 * 7.3 exports neither pci_p2pdma_map_type() nor __pci_p2pdma_update_state(), so this is how a
 * module reads the kernel's verdict: map, then look at what the DMA core did. The guest tests
 * keep an independent topology model and check the verdict against it. The HMM mirror gets its
 * verdicts from hmm_dma_map_pfn() (p2plab_dmirror.c) in the same way.
 */
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/dma-mapping.h>
#include <linux/memremap.h>
#include <linux/scatterlist.h>

#include "p2plab.h"

const char *p2plab_map_type_name(enum pci_p2pdma_map_type t)
{
	switch (t) {
	case PCI_P2PDMA_MAP_NONE:		return "none";
	case PCI_P2PDMA_MAP_NOT_SUPPORTED:	return "not-supported";
	case PCI_P2PDMA_MAP_BUS_ADDR:		return "bus-addr";
	case PCI_P2PDMA_MAP_THRU_HOST_BRIDGE:	return "host-bridge";
	default:				return "unknown";
	}
}

/* The more remote of two map types, for "the most remote mapping used" in a result. */
enum pci_p2pdma_map_type p2plab_map_type_worst(enum pci_p2pdma_map_type a,
					       enum pci_p2pdma_map_type b)
{
	static const int rank[] = {
		[PCI_P2PDMA_MAP_UNKNOWN]		= 0,
		[PCI_P2PDMA_MAP_NONE]			= 1,
		[PCI_P2PDMA_MAP_BUS_ADDR]		= 2,
		[PCI_P2PDMA_MAP_THRU_HOST_BRIDGE]	= 3,
		[PCI_P2PDMA_MAP_NOT_SUPPORTED]		= 4,
	};

	return rank[b] > rank[a] ? b : a;
}

/* the PCI function whose memory BAR holds @phys (+ref), NULL if none */
static struct pci_dev *p2plab_bar_owner(phys_addr_t phys)
{
	struct pci_dev *pdev = NULL;
	int i;

	for_each_pci_dev(pdev) {
		for (i = 0; i < PCI_STD_NUM_BARS; i++) {
			struct resource *r = pci_resource_n(pdev, i);

			if ((r->flags & IORESOURCE_MEM) && r->start && phys >= r->start &&
			    phys <= r->end)
				return pdev;	/* for_each_pci_dev holds a ref on pdev */
		}
	}
	return NULL;
}

/*
 * pci_p2pdma_distance() of the provider of the first P2P page and @client: reported to
 * userspace next to the map type, never used to decide anything. -1 if not supported.
 */
static int p2plab_p2p_distance(struct p2plab_dev *client, struct page **pages,
			       unsigned int npages)
{
	struct pci_dev *provider = NULL;
	unsigned int i;
	int dist;

	for (i = 0; i < npages && !provider; i++)
		if (is_pci_p2pdma_page(pages[i]))
			provider = p2plab_bar_owner(page_to_phys(pages[i]));
	if (!provider)
		return -1;
	dist = pci_p2pdma_distance(provider, &client->pdev->dev, false);
	pci_dev_put(provider);
	return dist < 0 ? -1 : dist;
}

int p2plab_map_pages(struct p2plab_dev *client, struct page **pages, unsigned int npages,
		     unsigned int offset, size_t len, enum dma_data_direction dir,
		     struct p2plab_sgmap *m)
{
	struct device *dev = &client->pdev->dev;
	struct scatterlist *sg;
	bool p2p = false;
	unsigned int i;
	int ret;

	memset(m, 0, sizeof(*m));
	m->type = PCI_P2PDMA_MAP_NONE;
	m->distance = -1;
	m->dir = dir;
	if (!npages || !len)
		return -EINVAL;
	for (i = 0; i < npages; i++)
		p2p |= is_pci_p2pdma_page(pages[i]);
	if (p2p)
		m->distance = p2plab_p2p_distance(client, pages, npages);
	/* segments no longer than a descriptor: one DMA segment = one or more descriptors */
	ret = sg_alloc_table_from_pages_segment(&m->sgt, pages, npages, offset, len,
						P2PLAB_DESC_MAX_LEN, GFP_KERNEL);
	if (ret)
		return ret;
	ret = dma_map_sgtable(dev, &m->sgt, dir, 0);
	if (ret) {
		sg_free_table(&m->sgt);
		if (ret == -EREMOTEIO) {
			/* pci_p2pdma_state() said PCI_P2PDMA_MAP_NOT_SUPPORTED */
			m->type = PCI_P2PDMA_MAP_NOT_SUPPORTED;
			p2plab_cnt_add(client, p2p_refused, 1);
			return -EOPNOTSUPP;
		}
		return ret;
	}
	m->mapped = true;
	if (!p2p)
		return 0;
	/* what the DMA core chose: bus-address segments, or a host-bridge mapping */
	m->type = PCI_P2PDMA_MAP_THRU_HOST_BRIDGE;
	for_each_sgtable_dma_sg(&m->sgt, sg, i) {
		if (sg_dma_is_bus_address(sg)) {
			m->type = PCI_P2PDMA_MAP_BUS_ADDR;
			break;
		}
	}
	if (m->type == PCI_P2PDMA_MAP_BUS_ADDR)
		p2plab_cnt_add(client, p2p_bus, 1);
	else
		p2plab_cnt_add(client, p2p_host_bridge, 1);
	return 0;
}

void p2plab_unmap_pages(struct p2plab_dev *client, struct p2plab_sgmap *m)
{
	if (!m->mapped)
		return;
	dma_unmap_sgtable(&client->pdev->dev, &m->sgt, m->dir, 0);
	sg_free_table(&m->sgt);
	m->mapped = false;
}

/*
 * The p2pmem pages behind [off, off + len) of @peer's BAR2 (inside its p2pmem window): the
 * ZONE_DEVICE pages pci_p2pdma_add_resource() created. Returns a kvmalloc'ed array, NULL if
 * the range is not p2pmem.
 */
static struct page **p2plab_peer_pages(struct p2plab_dev *peer, u64 off, size_t len,
				       unsigned int *npages)
{
	phys_addr_t phys = peer->mem_phys + off;
	unsigned long first = PHYS_PFN(phys), last = PHYS_PFN(phys + len - 1), i;
	struct page **pages;

	if (!len || off + len < off || off + len > peer->p2p_size || !peer->p2pmem_published)
		return NULL;
	*npages = last - first + 1;
	pages = kvmalloc_array(*npages, sizeof(*pages), GFP_KERNEL);
	if (!pages)
		return NULL;
	for (i = 0; i < *npages; i++) {
		struct page *page = pfn_valid(first + i) ? pfn_to_page(first + i) : NULL;

		if (!page || !is_pci_p2pdma_page(page)) {
			kvfree(pages);
			return NULL;
		}
		pages[i] = page;
	}
	return pages;
}

int p2plab_map_peer(struct p2plab_dev *client, struct p2plab_dev *peer, u64 off, size_t len,
		    enum dma_data_direction dir, struct p2plab_sgmap *m)
{
	unsigned int npages;
	struct page **pages;
	int ret;

	memset(m, 0, sizeof(*m));
	m->type = PCI_P2PDMA_MAP_NOT_SUPPORTED;
	m->distance = -1;
	pages = p2plab_peer_pages(peer, off, len, &npages);
	if (!pages)
		return -EOPNOTSUPP;
	ret = p2plab_map_pages(client, pages, npages, offset_in_page(peer->mem_phys + off), len,
			       dir, m);
	kvfree(pages);
	return ret;
}

/*
 * The kernel's verdict for @client reaching @peer's p2pmem, without a transfer: map one page
 * through the DMA core and look (the mapping is dropped at once).
 */
enum pci_p2pdma_map_type p2plab_p2p_query(struct p2plab_dev *client, struct p2plab_dev *peer,
					  int *distance)
{
	struct p2plab_sgmap m;

	p2plab_map_peer(client, peer, 0, PAGE_SIZE, DMA_TO_DEVICE, &m);
	p2plab_unmap_pages(client, &m);
	*distance = m.distance;
	return m.type;
}
