// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_p2p.c - mapping a peer's BAR for DMA by a p2plab engine, with the 7.x P2PDMA APIs.
 *
 * The kernel decides how a P2P transfer must be mapped (enum pci_p2pdma_map_type):
 *   PCI_P2PDMA_MAP_BUS_ADDR          provider and client share a PCIe switch and no port on the
 *                                    path redirects (ACS): program the PCI bus address,
 *                                    pci_p2pdma_bus_addr_map(provider, phys); no IOMMU mapping.
 *   PCI_P2PDMA_MAP_THRU_HOST_BRIDGE  the TLPs cross the root complex, which is known to route
 *                                    P2P (AMD Zen or newer, or an allow-listed host bridge): map
 *                                    the MMIO like any DMA with dma_map_phys(..., DMA_ATTR_MMIO)
 *                                    so an IOMMU builds an IOMMU_MMIO mapping (the mm/hmm.c bug
 *                                    class "properly take MMIO path").
 *   PCI_P2PDMA_MAP_NOT_SUPPORTED     refuse: -EOPNOTSUPP, verdict reported to userspace.
 *
 * In 7.3 pci_p2pdma_map_type() and pci_p2pdma_state()'s helper are not exported to modules;
 * pci_p2pdma_distance() is. So: pci_p2pdma_distance() (the kernel's own policy: CPU vendor,
 * host bridge allow-list, ACS) says whether the pair is supported at all; a supported pair maps
 * with bus addresses exactly when calc_map_type_and_dist() in drivers/pci/p2pdma.c would say
 * BUS_ADDR: a common upstream bridge and no ACS P2P redirect on either path, which we recompute
 * here with the same walk.
 */
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/dma-mapping.h>

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

/* same test as pci_bridge_has_acs_redir() in drivers/pci/p2pdma.c */
static bool p2plab_acs_redir(struct pci_dev *pdev)
{
	u16 ctrl;

	if (!pdev->acs_cap)
		return false;
	pci_read_config_word(pdev, pdev->acs_cap + PCI_ACS_CTRL, &ctrl);
	return ctrl & (PCI_ACS_RR | PCI_ACS_CR | PCI_ACS_EC);
}

/* true if a and b have a common upstream bridge and no ACS redirect on either path */
static bool p2plab_switch_path(struct pci_dev *a, struct pci_dev *b)
{
	struct pci_dev *up, *bb;
	int acs = 0;

	for (up = a; up; up = pci_upstream_bridge(up)) {
		if (p2plab_acs_redir(up))
			acs++;
		for (bb = b; bb; bb = pci_upstream_bridge(bb))
			if (bb == up)
				goto common;
	}
	return false;	/* only the host bridge in common */
common:
	for (bb = b; bb && bb != up; bb = pci_upstream_bridge(bb))
		if (p2plab_acs_redir(bb))
			acs++;
	return acs == 0;
}

enum pci_p2pdma_map_type p2plab_p2p_map_type(struct pci_dev *provider, struct pci_dev *client,
					     int *distance)
{
	int dist = pci_p2pdma_distance(provider, &client->dev, false);

	if (distance)
		*distance = dist;
	if (dist < 0)
		return PCI_P2PDMA_MAP_NOT_SUPPORTED;
	if (p2plab_switch_path(provider, client))
		return PCI_P2PDMA_MAP_BUS_ADDR;
	return PCI_P2PDMA_MAP_THRU_HOST_BRIDGE;
}

/* the PCI function and memory BAR that contain [phys, phys+len) (+ref on the device) */
static struct pci_dev *p2plab_find_bar(phys_addr_t phys, size_t len, int *bar)
{
	struct pci_dev *pdev = NULL;
	int i;

	for_each_pci_dev(pdev) {
		for (i = 0; i < PCI_STD_NUM_BARS; i++) {
			struct resource *r = pci_resource_n(pdev, i);

			if (!(r->flags & IORESOURCE_MEM) || !r->start)
				continue;
			if (phys >= r->start && phys + len - 1 <= r->end && phys + len > phys) {
				*bar = i;
				return pdev;	/* for_each_pci_dev holds a ref on pdev */
			}
		}
	}
	return NULL;
}

int p2plab_p2p_map(struct p2plab_dev *client, phys_addr_t phys, size_t len,
		   enum dma_data_direction dir, struct p2plab_p2p_map *m)
{
	struct device *dev = &client->pdev->dev;

	memset(m, 0, sizeof(*m));
	m->type = PCI_P2PDMA_MAP_NOT_SUPPORTED;
	m->distance = -1;
	m->phys = phys;
	m->len = len;
	m->dir = dir;
	if (!len)
		return -EINVAL;
	m->provider = p2plab_find_bar(phys, len, &m->bar);
	if (!m->provider)
		return -EINVAL;
	/* providers are devices whose driver set up P2PDMA (pcim_p2pdma_init) */
	if (!rcu_access_pointer(m->provider->p2pdma)) {
		pci_dev_put(m->provider);
		m->provider = NULL;
		return -EOPNOTSUPP;
	}
	m->prov = pcim_p2pdma_provider(m->provider, m->bar);
	if (!m->prov) {
		pci_dev_put(m->provider);
		m->provider = NULL;
		return -EOPNOTSUPP;
	}
	m->type = p2plab_p2p_map_type(m->provider, client->pdev, &m->distance);
	switch (m->type) {
	case PCI_P2PDMA_MAP_BUS_ADDR:
		m->dma = pci_p2pdma_bus_addr_map(m->prov, phys);
		p2plab_cnt_add(client, p2p_bus, 1);
		return 0;
	case PCI_P2PDMA_MAP_THRU_HOST_BRIDGE:
		m->dma = dma_map_phys(dev, phys, len, dir, DMA_ATTR_MMIO);
		if (dma_mapping_error(dev, m->dma)) {
			dev_err_ratelimited(dev, "dma_map_phys(MMIO %pa+%#zx) failed\n", &phys, len);
			return -ENOMEM;
		}
		m->mapped = true;
		p2plab_cnt_add(client, p2p_host_bridge, 1);
		return 0;
	default:
		p2plab_cnt_add(client, p2p_refused, 1);
		dev_info_ratelimited(dev, "P2P to %s BAR%d refused: no switch path and the host bridge does not allow P2P\n",
				     pci_name(m->provider), m->bar);
		return -EOPNOTSUPP;
	}
}

void p2plab_p2p_unmap(struct p2plab_dev *client, struct p2plab_p2p_map *m)
{
	if (m->mapped)
		dma_unmap_phys(&client->pdev->dev, m->dma, m->len, m->dir, DMA_ATTR_MMIO);
	m->mapped = false;
	if (m->provider)
		pci_dev_put(m->provider);
	m->provider = NULL;
}
