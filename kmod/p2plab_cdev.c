// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_cdev.c - /dev/p2plabN: ioctls (p2plab_ioctl.h) and CPU read/write of BAR2.
 *
 * User buffers are pinned (pin_user_pages_fast, FOLL_PCI_P2PDMA so an mmap of any device's
 * p2pmem/allocate works too) and mapped run by run with the DMA core's dma_map_sgtable()
 * (p2plab_p2p.c): for p2pmem pages the kernel decides bus address, host bridge, or refusal
 * (EOPNOTSUPP), and the result reports its choice. No bounce buffers.
 */
#include <linux/module.h>
#include <linux/fs.h>
#include <linux/uaccess.h>
#include <linux/slab.h>
#include <linux/mm.h>
#include <linux/memremap.h>
#include <linux/highmem.h>
#include <linux/ktime.h>
#include <linux/capability.h>
#include <linux/delay.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_svm.h"

#define P2PLAB_RW_CHUNK		(64 * 1024)

/* the uAPI's map types are the running kernel's enum pci_p2pdma_map_type values */
static_assert(P2PLAB_MAP_NONE == PCI_P2PDMA_MAP_NONE);
static_assert(P2PLAB_MAP_NOT_SUPPORTED == PCI_P2PDMA_MAP_NOT_SUPPORTED);
static_assert(P2PLAB_MAP_BUS_ADDR == PCI_P2PDMA_MAP_BUS_ADDR);
static_assert(P2PLAB_MAP_THRU_HOST_BRIDGE == PCI_P2PDMA_MAP_THRU_HOST_BRIDGE);

static struct p2plab_dev *file_pd(struct file *f)
{
	return f->private_data;
}

static int p2plab_open(struct inode *inode, struct file *f)
{
	struct miscdevice *misc = f->private_data;	/* set by misc_open() */
	struct p2plab_dev *pd = container_of(misc, struct p2plab_dev, misc);

	/* misc_open() holds misc_mtx: remove() cannot free pd under us (misc_deregister) */
	if (READ_ONCE(pd->removing))
		return -ENODEV;
	kref_get(&pd->ref);
	f->private_data = pd;
	return 0;
}

static int p2plab_release_file(struct inode *inode, struct file *f)
{
	p2plab_svm_file_release(file_pd(f), f);	/* the fd's SVM context, if bound */
	p2plab_put(file_pd(f));
	return 0;
}

/* take pd->active for reading; -ENODEV once remove() started */
static int p2plab_enter(struct p2plab_dev *pd)
{
	if (READ_ONCE(pd->removing))
		return -ENODEV;		/* do not even queue behind remove()'s down_write */
	down_read(&pd->active);
	if (READ_ONCE(pd->removing)) {
		up_read(&pd->active);
		return -ENODEV;
	}
	return 0;
}

static void p2plab_leave(struct p2plab_dev *pd)
{
	up_read(&pd->active);
}

/*
 * A peer's pd->active, taken while this device's is held (P2P_QUERY, PEER_COPY): never wait for it.
 * Two ioctls entering each other's devices in opposite order would deadlock behind two remove()s'
 * down_write (rwsem readers queue behind a waiting writer); lockdep reports it as "possible recursive
 * locking" of &pd->active (found by the debug kernel, docs/debug-kernel.md). remove() is the only
 * writer, so a failed trylock means the peer is going away: -ENODEV, as p2plab_enter() says then.
 */
static int p2plab_enter_peer(struct p2plab_dev *peer)
{
	if (READ_ONCE(peer->removing) || !down_read_trylock(&peer->active))
		return -ENODEV;
	if (READ_ONCE(peer->removing)) {
		up_read(&peer->active);
		return -ENODEV;
	}
	return 0;
}

/* the part of BAR2 userspace may use through this device */
static u64 p2plab_user_window(struct p2plab_dev *pd)
{
	/* with HMM active the private window holds migrated pages: keep out */
	return pd->hmm ? pd->p2p_size : pd->mem_size;
}

static int p2plab_check_range(u64 off, u64 len, u64 limit)
{
	if (!len)
		return -EINVAL;
	if (off > limit || len > limit - off)
		return -ERANGE;
	return 0;
}

static unsigned int p2plab_timeout(u32 t)
{
	return t ? t : READ_ONCE(p2plab_timeout_ms);
}

void p2plab_fill_result(struct p2plab_result *res, int ret,
			       const struct p2plab_run_info *info, u64 ns)
{
	res->err_code = info->err_code;
	res->failed_idx = info->failed_idx;
	res->ns = ns;
	if (info->irq_lost)
		res->flags |= P2PLAB_RES_IRQ_LOST;
	if (info->ring_error)
		res->flags |= P2PLAB_RES_RING_ERROR;
	if (ret == -ETIMEDOUT)
		res->flags |= P2PLAB_RES_TIMEOUT;
	if (ret == -ENODEV)
		res->flags |= P2PLAB_RES_LINK_DOWN;
}

/* split [addr, addr+len) into descriptors of at most P2PLAB_DESC_MAX_LEN */
static unsigned int p2plab_add_xfers(struct p2plab_xfer *x, unsigned int n, unsigned int max,
				     u64 src, u64 dst, u64 len, u32 flags)
{
	while (len && n < max) {
		u32 l = min_t(u64, len, P2PLAB_DESC_MAX_LEN);

		x[n].src = src;
		x[n].dst = dst;
		x[n].len = l;
		x[n].flags = flags;
		n++;
		src += l;
		dst += l;
		len -= l;
	}
	return n;
}

/* ---- P2PLAB_IOC_DMA: user memory <-> device memory -------------------------------------------- */

/*
 * The pinned pages split into runs of one kind (system RAM, or p2pmem of one provider), each run
 * mapped by the DMA core (p2plab_map_pages(): dma_map_sgtable(), which decides the P2P map type).
 */
static int p2plab_ioc_dma(struct p2plab_dev *pd, struct p2plab_dma *a)
{
	struct device *dev = &pd->pdev->dev;
	enum dma_data_direction ddir;
	struct p2plab_run_info info = { .failed_idx = ~0U };
	struct p2plab_sgmap *maps = NULL;
	struct p2plab_xfer *x = NULL;
	struct page **pages = NULL;
	unsigned long first, npages, i, start;
	unsigned int nmaps = 0, nx = 0, max = 0, k;
	u64 pos, left;
	int pinned = 0, ret;
	ktime_t t0;

	memset(&a->res, 0, sizeof(a->res));
	a->res.map_type = PCI_P2PDMA_MAP_NONE;
	a->res.distance = -1;
	a->res.failed_idx = ~0U;
	if (a->flags || a->reserved || a->dir > P2PLAB_DIR_FROM_DEV ||
	    a->timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	if (!a->len)
		return -EINVAL;
	if (a->len > P2PLAB_DMA_MAX_LEN)
		return -E2BIG;
	ret = p2plab_check_range(a->dev_off, a->len, p2plab_user_window(pd));
	if (ret)
		return ret;
	if (a->uaddr + a->len < a->uaddr || !access_ok(u64_to_user_ptr(a->uaddr), a->len))
		return -EFAULT;

	ddir = a->dir == P2PLAB_DIR_TO_DEV ? DMA_TO_DEVICE : DMA_FROM_DEVICE;
	first = a->uaddr >> PAGE_SHIFT;
	npages = ((a->uaddr + a->len - 1) >> PAGE_SHIFT) - first + 1;
	pages = kvmalloc_array(npages, sizeof(*pages), GFP_KERNEL);
	maps = kvcalloc(npages, sizeof(*maps), GFP_KERNEL);
	if (!pages || !maps) {
		ret = -ENOMEM;
		goto out_free;
	}
	while (pinned < npages) {
		int r = pin_user_pages_fast((first + pinned) << PAGE_SHIFT,
					    min_t(unsigned long, npages - pinned, 512),
					    (ddir == DMA_FROM_DEVICE ? FOLL_WRITE : 0) |
					    FOLL_PCI_P2PDMA, pages + pinned);
		if (r <= 0) {
			ret = r ?: -EFAULT;
			goto out_unpin;
		}
		pinned += r;
	}

	/* map: one run of one kind at a time */
	pos = a->uaddr;
	left = a->len;
	for (start = 0; start < npages; start = i) {
		bool p2p = is_pci_p2pdma_page(pages[start]);
		unsigned int off = offset_in_page(pos);
		u64 len;

		for (i = start + 1; i < npages; i++)
			if (is_pci_p2pdma_page(pages[i]) != p2p ||
			    (p2p && page_pgmap(pages[i]) != page_pgmap(pages[start])))
				break;
		len = min_t(u64, left, ((u64)(i - start) << PAGE_SHIFT) - off);
		ret = p2plab_map_pages(pd, pages + start, i - start, off, len, ddir, &maps[nmaps]);
		/* report the most remote mapping the kernel chose (or refused) */
		if (p2plab_map_type_worst(a->res.map_type, maps[nmaps].type) != a->res.map_type) {
			a->res.map_type = maps[nmaps].type;
			a->res.distance = maps[nmaps].distance;
		}
		if (ret)
			goto out_unmap;
		max += maps[nmaps].sgt.nents;
		nmaps++;
		pos += len;
		left -= len;
	}

	x = kvmalloc_array(max, sizeof(*x), GFP_KERNEL);
	if (!x) {
		ret = -ENOMEM;
		goto out_unmap;
	}
	pos = a->dev_off;
	for (k = 0; k < nmaps; k++) {
		struct scatterlist *sg;
		unsigned int j;

		for_each_sgtable_dma_sg(&maps[k].sgt, sg, j) {
			if (a->dir == P2PLAB_DIR_TO_DEV)
				nx = p2plab_add_xfers(x, nx, max, sg_dma_address(sg), pos,
						      sg_dma_len(sg), P2PLAB_DESC_F_DST_LOCAL);
			else
				nx = p2plab_add_xfers(x, nx, max, pos, sg_dma_address(sg),
						      sg_dma_len(sg), P2PLAB_DESC_F_SRC_LOCAL);
			pos += sg_dma_len(sg);
		}
	}
	a->res.descs = nx;
	t0 = ktime_get();
	ret = p2plab_dma_run_user(pd, x, nx, p2plab_timeout(a->timeout_ms), NULL, &info);
	p2plab_fill_result(&a->res, ret, &info, ktime_to_ns(ktime_sub(ktime_get(), t0)));

	if (info.stuck) {
		/* the device may still write into these pages one day: leak them on purpose */
		dev_err(dev, "leaking %lu pinned pages of an unfinished DMA (link down)\n", npages);
		kvfree(x);
		kvfree(maps);
		kvfree(pages);
		return ret;
	}
out_unmap:
	for (k = 0; k < nmaps; k++)
		p2plab_unmap_pages(pd, &maps[k]);
out_unpin:
	if (pinned > 0)
		unpin_user_pages_dirty_lock(pages, pinned, ddir == DMA_FROM_DEVICE && !ret);
out_free:
	kvfree(x);
	kvfree(maps);
	kvfree(pages);
	return ret;
}

/* ---- P2PLAB_IOC_PEER_COPY --------------------------------------------------------------------- */

static int p2plab_ioc_peer_copy(struct p2plab_dev *pd, struct p2plab_peer_copy *a)
{
	struct p2plab_run_info info = { .failed_idx = ~0U };
	struct p2plab_dev *peer;
	struct p2plab_sgmap m;
	struct scatterlist *sg;
	struct p2plab_xfer *x;
	unsigned int nx = 0, max, j;
	u64 pos = a->local_off;
	ktime_t t0;
	int ret;

	memset(&a->res, 0, sizeof(a->res));
	a->res.map_type = PCI_P2PDMA_MAP_NONE;
	a->res.distance = -1;
	a->res.failed_idx = ~0U;
	if (a->reserved || a->dir > P2PLAB_PEER_FROM || a->timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	if (!a->len)
		return -EINVAL;
	if (a->len > P2PLAB_DMA_MAX_LEN)
		return -E2BIG;
	if (a->peer_id == pd->id)
		return -EINVAL;		/* own memory: P2PLAB_IOC_LOCAL_COPY */
	ret = p2plab_check_range(a->local_off, a->len, p2plab_user_window(pd));
	if (ret)
		return ret;
	if (a->peer_id > INT_MAX)
		return -ENODEV;
	peer = p2plab_get_by_id(a->peer_id);
	if (!peer)
		return -ENODEV;
	ret = p2plab_enter_peer(peer);
	if (ret)
		goto out_put;
	ret = p2plab_check_range(a->peer_off, a->len, peer->p2p_size);
	if (ret)
		goto out_leave;
	/* the peer's p2pmem pages, mapped by the DMA core: it decides the P2P map type */
	ret = p2plab_map_peer(pd, peer, a->peer_off, a->len,
			      a->dir == P2PLAB_PEER_TO ? DMA_FROM_DEVICE : DMA_TO_DEVICE, &m);
	a->res.map_type = m.type;
	a->res.distance = m.distance;
	if (ret)
		goto out_unmap;

	max = m.sgt.nents;
	x = kvcalloc(max, sizeof(*x), GFP_KERNEL);
	if (!x) {
		ret = -ENOMEM;
		goto out_unmap;
	}
	for_each_sgtable_dma_sg(&m.sgt, sg, j) {
		if (a->dir == P2PLAB_PEER_TO)
			nx = p2plab_add_xfers(x, nx, max, pos, sg_dma_address(sg), sg_dma_len(sg),
					      P2PLAB_DESC_F_SRC_LOCAL);
		else
			nx = p2plab_add_xfers(x, nx, max, sg_dma_address(sg), pos, sg_dma_len(sg),
					      P2PLAB_DESC_F_DST_LOCAL);
		pos += sg_dma_len(sg);
	}
	a->res.descs = nx;
	t0 = ktime_get();
	ret = p2plab_dma_run_user(pd, x, nx, p2plab_timeout(a->timeout_ms), peer, &info);
	p2plab_fill_result(&a->res, ret, &info, ktime_to_ns(ktime_sub(ktime_get(), t0)));
	kvfree(x);
out_unmap:
	p2plab_unmap_pages(pd, &m);
out_leave:
	p2plab_leave(peer);
out_put:
	p2plab_put(peer);
	return ret;
}

static int p2plab_ioc_p2p_query(struct p2plab_dev *pd, struct p2plab_p2p_query *q)
{
	struct p2plab_dev *peer;
	int ret;

	if (q->reserved)
		return -EINVAL;
	if (q->peer_id == pd->id || q->peer_id > INT_MAX)
		return q->peer_id == pd->id ? -EINVAL : -ENODEV;
	peer = p2plab_get_by_id(q->peer_id);
	if (!peer)
		return -ENODEV;
	ret = p2plab_enter_peer(peer);
	if (!ret) {
		if (!peer->provider) {
			ret = -EOPNOTSUPP;
		} else {
			q->map_type = p2plab_p2p_query(pd, peer, &q->distance);
			q->bus_offset = peer->provider->bus_offset;
		}
		p2plab_leave(peer);
	}
	p2plab_put(peer);
	return ret;
}

static int p2plab_ioc_local_copy(struct p2plab_dev *pd, struct p2plab_local_copy *a)
{
	struct p2plab_run_info info = { .failed_idx = ~0U };
	struct p2plab_xfer x[2];
	u64 lim = p2plab_user_window(pd);
	unsigned int nx;
	ktime_t t0;
	int ret;

	memset(&a->res, 0, sizeof(a->res));
	a->res.map_type = PCI_P2PDMA_MAP_NONE;
	a->res.distance = -1;
	a->res.failed_idx = ~0U;
	if (a->flags & ~P2PLAB_LOCAL_F_NOCHECK || a->timeout_ms > P2PLAB_TIMEOUT_MAX_MS)
		return -EINVAL;
	if (!a->len)
		return -EINVAL;
	if (a->flags & P2PLAB_LOCAL_F_NOCHECK) {
		/* raw: one descriptor, the device validates the offsets */
		if (!capable(CAP_SYS_ADMIN))
			return -EPERM;
		if (a->len > P2PLAB_DESC_MAX_LEN)
			return -E2BIG;
		/*
		 * With HMM active, only requests the device itself must reject are let
		 * through (it validates both ranges before copying anything): an in-range
		 * raw copy could scribble over migrated pages.
		 */
		if (pd->hmm && !p2plab_check_range(a->src_off, a->len, pd->mem_size) &&
		    !p2plab_check_range(a->dst_off, a->len, pd->mem_size))
			return -EBUSY;
	} else {
		if (a->len > P2PLAB_DMA_MAX_LEN)
			return -E2BIG;
		ret = p2plab_check_range(a->src_off, a->len, lim);
		if (!ret)
			ret = p2plab_check_range(a->dst_off, a->len, lim);
		if (ret)
			return ret;
	}
	nx = p2plab_add_xfers(x, 0, ARRAY_SIZE(x), a->src_off, a->dst_off, a->len,
			      P2PLAB_DESC_F_SRC_LOCAL | P2PLAB_DESC_F_DST_LOCAL);
	a->res.descs = nx;
	t0 = ktime_get();
	ret = p2plab_dma_run_user(pd, x, nx, p2plab_timeout(a->timeout_ms), NULL, &info);
	p2plab_fill_result(&a->res, ret, &info, ktime_to_ns(ktime_sub(ktime_get(), t0)));
	return ret;
}

static void p2plab_ioc_info(struct p2plab_dev *pd, struct p2plab_info *in)
{
	struct pci_dev *pdev = pd->pdev;

	memset(in, 0, sizeof(*in));
	in->id = pd->id;
	in->vendor = pdev->vendor;
	in->device = pdev->device;
	in->revision = pdev->revision;
	in->class_code = pdev->class;
	in->caps = pd->caps;
	in->if_version = pd->if_version;
	in->irq_mode = pd->irq_mode;
	in->ring_size = pd->ring_size;
	in->flags = (pd->p2pmem_published ? P2PLAB_INFO_F_P2PMEM : 0) |
		    (pd->hmm ? P2PLAB_INFO_F_HMM : 0) | (pd->dead ? P2PLAB_INFO_F_DEAD : 0);
	in->timeout_ms = READ_ONCE(p2plab_timeout_ms);
	in->regs_size = pci_resource_len(pdev, P2PLAB_BAR_REGS);
	in->mem_size = pd->mem_size;
	in->mem_phys = pd->mem_phys;
	in->mem_bus = pci_bus_address(pdev, P2PLAB_BAR_MEM);
	in->p2p_size = pd->p2p_size;
	in->priv_off = pd->priv_off;
	in->priv_size = pd->priv_size;
	strscpy(in->pci_name, pci_name(pdev), sizeof(in->pci_name));
}

static void p2plab_ioc_stats(struct p2plab_dev *pd, struct p2plab_stats *st)
{
	unsigned long f;

	memset(st, 0, sizeof(*st));
	spin_lock_irqsave(&pd->cnt_lock, f);
	st->batches = pd->cnt.batches;
	st->descs = pd->cnt.descs;
	st->bytes = pd->cnt.bytes;
	st->desc_errors = pd->cnt.desc_errors;
	st->ring_errors = pd->cnt.ring_errors;
	st->timeouts = pd->cnt.timeouts;
	st->resets = pd->cnt.resets;
	st->link_down = pd->cnt.link_down;
	st->irq_done = pd->cnt.irq_done;
	st->irq_error = pd->cnt.irq_error;
	st->irq_lost = pd->cnt.irq_lost;
	st->p2p_bus = pd->cnt.p2p_bus;
	st->p2p_host_bridge = pd->cnt.p2p_host_bridge;
	st->p2p_refused = pd->cnt.p2p_refused;
	spin_unlock_irqrestore(&pd->cnt_lock, f);
	st->hw_status = ioread32(pd->regs + P2PLAB_REG_STATUS);
	st->hw_completed = st->hw_status == 0xffffffffu ? 0 :
			   ioread32(pd->regs + P2PLAB_REG_COMPLETED);
}

/* copy the struct in, run, copy it back (also on errors that carry a verdict) */
#define P2PLAB_IOC_INOUT(type, fn) do {						\
	type a_;								\
	if (copy_from_user(&a_, up, sizeof(a_))) {				\
		ret = -EFAULT;							\
		break;								\
	}									\
	ret = fn(pd, &a_);							\
	if ((!ret || ret == -EIO || ret == -ETIMEDOUT || ret == -EOPNOTSUPP ||	\
	     ret == -ENODEV) && copy_to_user(up, &a_, sizeof(a_)))		\
		ret = -EFAULT;							\
} while (0)

static long p2plab_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct p2plab_dev *pd = file_pd(f);
	void __user *up = (void __user *)arg;
	long ret;

	if (_IOC_TYPE(cmd) != P2PLAB_IOC_MAGIC)
		return -ENOTTY;
	ret = p2plab_enter(pd);
	if (ret)
		return ret;
	switch (cmd) {
	case P2PLAB_IOC_INFO: {
		struct p2plab_info in;

		p2plab_ioc_info(pd, &in);
		ret = copy_to_user(up, &in, sizeof(in)) ? -EFAULT : 0;
		break;
	}
	case P2PLAB_IOC_STATS: {
		struct p2plab_stats st;

		p2plab_ioc_stats(pd, &st);
		ret = copy_to_user(up, &st, sizeof(st)) ? -EFAULT : 0;
		break;
	}
	case P2PLAB_IOC_DMA:
		P2PLAB_IOC_INOUT(struct p2plab_dma, p2plab_ioc_dma);
		break;
	case P2PLAB_IOC_PEER_COPY:
		P2PLAB_IOC_INOUT(struct p2plab_peer_copy, p2plab_ioc_peer_copy);
		break;
	case P2PLAB_IOC_LOCAL_COPY:
		P2PLAB_IOC_INOUT(struct p2plab_local_copy, p2plab_ioc_local_copy);
		break;
	case P2PLAB_IOC_P2P_QUERY: {
		struct p2plab_p2p_query q;

		if (copy_from_user(&q, up, sizeof(q))) {
			ret = -EFAULT;
			break;
		}
		ret = p2plab_ioc_p2p_query(pd, &q);
		if (!ret && copy_to_user(up, &q, sizeof(q)))
			ret = -EFAULT;
		break;
	}
	case P2PLAB_IOC_DMABUF_IMPORT:
	case P2PLAB_IOC_DMABUF_COPY:
	case P2PLAB_IOC_DMABUF_STATUS:
		ret = p2plab_dmabuf_ioctl(pd, cmd, up);	/* p2plab_dmabuf.c */
		break;
	case P2PLAB_IOC_SVM_BIND:
	case P2PLAB_IOC_SVM_UNBIND:
	case P2PLAB_IOC_SVM_COPY:
	case P2PLAB_IOC_SVM_ATOMIC:
	case P2PLAB_IOC_SVM_STATS:
	case P2PLAB_IOC_SVM_SUBMIT:
	case P2PLAB_IOC_SVM_WAIT:
	case P2PLAB_IOC_SVM_PLACE:
		ret = p2plab_svm_ioctl(pd, f, cmd, up);	/* p2plab_svm.c */
		break;
	case P2PLAB_IOC_RESET:
		if (!capable(CAP_SYS_ADMIN)) {
			ret = -EPERM;
			break;
		}
		mutex_lock(&pd->dma_lock);
		ret = p2plab_engine_reset(pd);
		mutex_unlock(&pd->dma_lock);
		break;
	default:
		ret = -ENOTTY;
	}
	p2plab_leave(pd);
	return ret;
}

/* ---- read/write: CPU access to BAR2 ----------------------------------------------------------- */

static ssize_t p2plab_rw(struct file *f, char __user *ubuf, size_t len, loff_t *ppos, bool write)
{
	struct p2plab_dev *pd = file_pd(f);
	u64 lim, pos = *ppos;
	size_t done = 0;
	void *bounce;
	int ret;

	ret = p2plab_enter(pd);
	if (ret)
		return ret;
	lim = p2plab_user_window(pd);
	if (*ppos < 0) {
		ret = -EINVAL;
		goto out;
	}
	if (pos >= lim || !len) {
		/* end of the window: EOF for read, ENOSPC for a non-empty write */
		p2plab_leave(pd);
		return write && len ? -ENOSPC : 0;
	}
	len = min_t(u64, len, lim - pos);
	bounce = kmalloc(min_t(size_t, len, P2PLAB_RW_CHUNK), GFP_KERNEL);
	if (!bounce && len) {
		ret = -ENOMEM;
		goto out;
	}
	while (done < len) {
		size_t c = min_t(size_t, len - done, P2PLAB_RW_CHUNK);

		if (write) {
			if (copy_from_user(bounce, ubuf + done, c))
				break;
			memcpy_toio(pd->mem + pos + done, bounce, c);
		} else {
			memcpy_fromio(bounce, pd->mem + pos + done, c);
			if (copy_to_user(ubuf + done, bounce, c))
				break;
		}
		done += c;
		if (fatal_signal_pending(current) || READ_ONCE(pd->removing))
			break;
		cond_resched();
	}
	kfree(bounce);
	*ppos = pos + done;
	ret = 0;
out:
	p2plab_leave(pd);
	if (ret)
		return ret;
	return done ? done : (len ? -EFAULT : 0);
}

static ssize_t p2plab_read(struct file *f, char __user *buf, size_t len, loff_t *ppos)
{
	return p2plab_rw(f, buf, len, ppos, false);
}

static ssize_t p2plab_write(struct file *f, const char __user *buf, size_t len, loff_t *ppos)
{
	return p2plab_rw(f, (char __user *)buf, len, ppos, true);
}

static loff_t p2plab_llseek(struct file *f, loff_t off, int whence)
{
	struct p2plab_dev *pd = file_pd(f);

	return fixed_size_llseek(f, off, whence, pd->mem_size);
}

static const struct file_operations p2plab_fops = {
	.owner = THIS_MODULE,
	.open = p2plab_open,
	.release = p2plab_release_file,
	.unlocked_ioctl = p2plab_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.read = p2plab_read,
	.write = p2plab_write,
	.llseek = p2plab_llseek,
};

int p2plab_cdev_register(struct p2plab_dev *pd)
{
	pd->misc.minor = MISC_DYNAMIC_MINOR;
	pd->misc.name = pd->name;
	pd->misc.fops = &p2plab_fops;
	pd->misc.parent = &pd->pdev->dev;
	pd->misc.mode = 0600;
	return misc_register(&pd->misc);
}

void p2plab_cdev_unregister(struct p2plab_dev *pd)
{
	p2plab_dmabuf_remove(pd);	/* unmap + detach its dma-buf imports while still bound */
	misc_deregister(&pd->misc);
}
