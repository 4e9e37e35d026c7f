// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_dmabuf.c - the device's DMA engine as a dynamic dma-buf importer (docs/vfio-dmabuf.md).
 *
 * Made for slices of another device's BAR exported by vfio-pci (VFIO_DEVICE_FEATURE_DMA_BUF,
 * drivers/vfio/pci/vfio_pci_dmabuf.c), but any dma-buf works. Everything on the way is the
 * kernel's: dma_buf_dynamic_attach() with allow_peer2peer (vfio refuses other importers), the
 * exporter's map_dma_buf through dma_buf_map_attachment() (vfio: dma_buf_phys_vec_to_sgt(), which
 * asks pci_p2pdma_map_type() and returns PCI bus addresses, an IOVA linked with DMA_ATTR_MMIO, or
 * an error), and the engine is programmed with the DMA addresses of that sg_table, nothing else.
 *
 * Revocation: vfio calls dma_buf_invalidate_mappings() (our invalidate_mappings, with the dma-buf's
 * reservation lock held) on reset, memory disable, close and unplug, then waits for every mapping
 * to be unmapped. We wait for the engine batch in flight (bounded: its timeout), unmap at once, and
 * bump a generation number: a copy in progress sees it at its next batch and stops (ECANCELED);
 * the next copy maps again and gets the exporter's answer (ENODEV while revoked).
 *
 * Locking: imp->copy_lock (one copy per import) -> dmabuf->resv. imp->sgt, imp->gen, imp->dead are
 * protected by the resv lock; imp->inflight is set under it and cleared without it.
 * p2plab_dmabuf_lock protects the import list (-> resv). invalidate_mappings takes no lock of ours.
 */
#include <linux/module.h>
#include <linux/anon_inodes.h>
#include <linux/dma-buf.h>
#include <linux/dma-resv.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/ktime.h>
#include <linux/sched/signal.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"

MODULE_IMPORT_NS("DMA_BUF");

/* an invalidation waits this much longer than a batch may take */
#define P2PLAB_DMABUF_WAIT_SLACK_MS	2000

struct p2plab_dmabuf_imp {
	struct p2plab_dev *pd;		/* the importer (+ref) */
	struct dma_buf *dmabuf;		/* +ref */
	struct dma_buf_attachment *attach;	/* NULL once detached (device removed) */
	struct list_head node;		/* p2plab_dmabuf_imports */
	struct mutex copy_lock;		/* one copy at a time */

	/* under dmabuf->resv */
	struct sg_table *sgt;		/* cached mapping, NULL if none */
	u64 gen;			/* bumped by every invalidation */
	bool dead;			/* importer removed: no more mappings */
	unsigned int batch_timeout_ms;	/* timeout of the batch in flight */

	atomic_t inflight;		/* a batch is posted on the engine */
	wait_queue_head_t wq;		/* inflight went to 0 */

	/* counters, under resv (bytes/cancelled under copy_lock) */
	u64 invalidations, maps, unmaps, map_errors, bytes, cancelled;
};

static LIST_HEAD(p2plab_dmabuf_imports);
static DEFINE_MUTEX(p2plab_dmabuf_lock);

static const struct file_operations p2plab_dmabuf_fops;

/* resv held: drop the cached mapping */
static void p2plab_dmabuf_unmap(struct p2plab_dmabuf_imp *imp)
{
	dma_resv_assert_held(imp->dmabuf->resv);
	if (!imp->sgt)
		return;
	dma_buf_unmap_attachment(imp->attach, imp->sgt, DMA_BIDIRECTIONAL);
	imp->sgt = NULL;
	imp->unmaps++;
}

/*
 * resv held: stop using the mapping. The batch in flight (if any) finishes or times out (the
 * engine is reset then), bounded by its timeout; after that the engine no longer touches the
 * buffer and the mapping goes.
 */
static void p2plab_dmabuf_stop(struct p2plab_dmabuf_imp *imp, const char *why)
{
	unsigned int ms = READ_ONCE(imp->batch_timeout_ms) + P2PLAB_DMABUF_WAIT_SLACK_MS;

	dma_resv_assert_held(imp->dmabuf->resv);
	imp->gen++;
	if (!wait_event_timeout(imp->wq, !atomic_read(&imp->inflight), msecs_to_jiffies(ms)))
		dev_err(&imp->pd->pdev->dev,
			"%s: a dma-buf batch still in flight after %u ms; unmapping anyway\n",
			why, ms);
	p2plab_dmabuf_unmap(imp);
}

/* dma_buf_attach_ops.invalidate_mappings: called by the exporter with the resv lock held */
static void p2plab_dmabuf_invalidate(struct dma_buf_attachment *attach)
{
	struct p2plab_dmabuf_imp *imp = attach->importer_priv;

	imp->invalidations++;
	p2plab_dmabuf_stop(imp, "invalidate");
}

static const struct dma_buf_attach_ops p2plab_dmabuf_attach_ops = {
	.allow_peer2peer = true,
	.invalidate_mappings = p2plab_dmabuf_invalidate,
};

/* ---- import ---------------------------------------------------------------------------------- */

static int p2plab_dmabuf_release(struct inode *inode, struct file *f)
{
	struct p2plab_dmabuf_imp *imp = f->private_data;

	mutex_lock(&p2plab_dmabuf_lock);
	list_del(&imp->node);
	mutex_unlock(&p2plab_dmabuf_lock);

	if (imp->attach) {
		dma_resv_lock(imp->dmabuf->resv, NULL);
		p2plab_dmabuf_unmap(imp);
		dma_resv_unlock(imp->dmabuf->resv);
		dma_buf_detach(imp->dmabuf, imp->attach);
	}
	dma_buf_put(imp->dmabuf);
	put_device(&imp->pd->pdev->dev);
	p2plab_put(imp->pd);
	mutex_destroy(&imp->copy_lock);
	kfree(imp);
	return 0;
}

static const struct file_operations p2plab_dmabuf_fops = {
	.owner = THIS_MODULE,
	.release = p2plab_dmabuf_release,
};

static int p2plab_dmabuf_import(struct p2plab_dev *pd, struct p2plab_dmabuf_import *a)
{
	struct p2plab_dmabuf_imp *imp;
	struct file *f;
	int fd, ret;

	if (a->flags || a->reserved)
		return -EINVAL;
	imp = kzalloc(sizeof(*imp), GFP_KERNEL);
	if (!imp)
		return -ENOMEM;
	mutex_init(&imp->copy_lock);
	init_waitqueue_head(&imp->wq);
	atomic_set(&imp->inflight, 0);
	imp->batch_timeout_ms = READ_ONCE(p2plab_timeout_ms);

	imp->dmabuf = dma_buf_get(a->dmabuf_fd);
	if (IS_ERR(imp->dmabuf)) {
		ret = PTR_ERR(imp->dmabuf);
		goto err_free_imp;
	}
	imp->attach = dma_buf_dynamic_attach(imp->dmabuf, &pd->pdev->dev,
					     &p2plab_dmabuf_attach_ops, imp);
	if (IS_ERR(imp->attach)) {
		ret = PTR_ERR(imp->attach);
		goto err_put_dmabuf;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		ret = fd;
		goto err_detach;
	}
	f = anon_inode_getfile("p2plab-dmabuf", &p2plab_dmabuf_fops, imp, O_RDWR);
	if (IS_ERR(f)) {
		ret = PTR_ERR(f);
		goto err_put_fd;
	}
	kref_get(&pd->ref);
	get_device(&pd->pdev->dev);
	imp->pd = pd;
	mutex_lock(&p2plab_dmabuf_lock);
	list_add_tail(&imp->node, &p2plab_dmabuf_imports);
	mutex_unlock(&p2plab_dmabuf_lock);

	a->import_fd = fd;
	a->size = imp->dmabuf->size;
	fd_install(fd, f);
	return 0;

err_put_fd:
	put_unused_fd(fd);
err_detach:
	dma_buf_detach(imp->dmabuf, imp->attach);
err_put_dmabuf:
	dma_buf_put(imp->dmabuf);
err_free_imp:
	mutex_destroy(&imp->copy_lock);
	kfree(imp);
	return ret;
}

/* the import behind @fd, if it is one made on @pd; the caller fput()s *fp */
static struct p2plab_dmabuf_imp *p2plab_dmabuf_lookup(struct p2plab_dev *pd, int fd,
						       struct file **fp)
{
	struct file *f = fget(fd);
	struct p2plab_dmabuf_imp *imp;

	if (!f)
		return ERR_PTR(-EBADF);
	if (f->f_op != &p2plab_dmabuf_fops) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	imp = f->private_data;
	if (imp->pd != pd) {
		fput(f);
		return ERR_PTR(-EINVAL);
	}
	*fp = f;
	return imp;
}

/* ---- copy ------------------------------------------------------------------------------------ */

/*
 * Descriptors for [off, off + len) of the dma-buf, from the DMA segments of the kernel's mapping
 * (no CPU list: the exporter's sg_table has only DMA addresses, nents of them).
 */
static int p2plab_dmabuf_xfers(struct sg_table *sgt, u64 off, u64 len, u64 local, bool to_buf,
			       struct p2plab_xfer *x, unsigned int max, unsigned int *nx,
			       u64 *first_dma)
{
	struct scatterlist *sg;
	unsigned int i, n = 0;
	u64 pos = 0;

	for_each_sgtable_dma_sg(sgt, sg, i) {
		u64 slen = sg_dma_len(sg), skip, take;

		if (!len)
			break;
		if (off >= pos + slen) {
			pos += slen;
			continue;
		}
		skip = off - pos;
		while (skip < slen && len) {
			take = min_t(u64, min_t(u64, slen - skip, len), P2PLAB_DESC_MAX_LEN);
			if (n == max)
				return -E2BIG;
			if (!n)
				*first_dma = sg_dma_address(sg) + skip;
			if (to_buf) {
				x[n].src = local;
				x[n].dst = sg_dma_address(sg) + skip;
				x[n].flags = P2PLAB_DESC_F_SRC_LOCAL;
			} else {
				x[n].src = sg_dma_address(sg) + skip;
				x[n].dst = local;
				x[n].flags = P2PLAB_DESC_F_DST_LOCAL;
			}
			x[n].len = take;
			n++;
			skip += take;
			off += take;
			local += take;
			len -= take;
		}
		pos += slen;
	}
	if (len)
		return -ERANGE;		/* the mapping is shorter than the dma-buf */
	*nx = n;
	return 0;
}

/* resv held: map if there is no mapping (the exporter decides: it may refuse) */
static int p2plab_dmabuf_map(struct p2plab_dmabuf_imp *imp, struct p2plab_dmabuf_copy *a)
{
	struct sg_table *sgt;
	long r;

	if (imp->sgt)
		return 0;
	/* dynamic importers wait for the exporter's kernel fences first (vfio sets none) */
	r = dma_resv_wait_timeout(imp->dmabuf->resv, DMA_RESV_USAGE_KERNEL, true,
				  msecs_to_jiffies(imp->batch_timeout_ms));
	if (r <= 0)
		return r ? r : -ETIMEDOUT;
	sgt = dma_buf_map_attachment(imp->attach, DMA_BIDIRECTIONAL);
	if (IS_ERR(sgt)) {
		imp->map_errors++;
		a->map_err = PTR_ERR(sgt);
		a->res.map_type = PCI_P2PDMA_MAP_NOT_SUPPORTED;
		return PTR_ERR(sgt);
	}
	imp->sgt = sgt;
	imp->maps++;
	return 0;
}

static int p2plab_dmabuf_copy(struct p2plab_dev *pd, struct p2plab_dmabuf_copy *a)
{
	struct p2plab_run_info info = { .failed_idx = ~0U };
	struct p2plab_dmabuf_imp *imp;
	struct p2plab_xfer *x = NULL;
	unsigned int nx, max, tmo;
	struct file *f;
	u64 gen = 0, lim, chunk;
	bool started = false;
	ktime_t t0;
	int ret;

	memset(&a->res, 0, sizeof(a->res));
	a->res.map_type = PCI_P2PDMA_MAP_NONE;
	a->res.distance = -1;
	a->res.failed_idx = ~0U;
	a->done = 0;
	a->dma_addr = 0;
	a->nsegs = 0;
	a->map_err = 0;
	if (a->dir > P2PLAB_DMABUF_FROM || a->timeout_ms > P2PLAB_TIMEOUT_MAX_MS || !a->len)
		return -EINVAL;
	if (a->len > P2PLAB_DMA_MAX_LEN)
		return -E2BIG;
	if (a->chunk && a->chunk < P2PLAB_DMABUF_CHUNK_MIN)
		return -EINVAL;
	chunk = a->chunk ? a->chunk : P2PLAB_DMABUF_CHUNK_DEFAULT;
	lim = pd->hmm ? pd->p2p_size : pd->mem_size;	/* as p2plab_user_window() */
	if (a->local_off > lim || a->len > lim - a->local_off)
		return -ERANGE;
	tmo = a->timeout_ms ? a->timeout_ms : READ_ONCE(p2plab_timeout_ms);

	imp = p2plab_dmabuf_lookup(pd, a->import_fd, &f);
	if (IS_ERR(imp))
		return PTR_ERR(imp);
	if (a->buf_off > imp->dmabuf->size || a->len > imp->dmabuf->size - a->buf_off) {
		ret = -ERANGE;
		goto out_fput;
	}
	max = 0;
	mutex_lock(&imp->copy_lock);
	t0 = ktime_get();
	while (a->done < a->len) {
		u64 c = min_t(u64, chunk, a->len - a->done), dma = 0;

		if (a->done && fatal_signal_pending(current)) {
			ret = -EINTR;
			break;
		}
		ret = dma_resv_lock_interruptible(imp->dmabuf->resv, NULL);
		if (ret)
			break;
		if (imp->dead) {
			ret = -ENODEV;
			goto unlock_resv;
		}
		if (started && imp->gen != gen) {
			/* invalidated since the last batch: stop here */
			imp->cancelled++;
			ret = -ECANCELED;
			goto unlock_resv;
		}
		ret = p2plab_dmabuf_map(imp, a);
		if (ret)
			goto unlock_resv;
		if (!started) {
			gen = imp->gen;
			started = true;
		}
		a->nsegs = imp->sgt->nents;
		/* a chunk needs at most one descriptor per segment, plus 1 GiB splits */
		if (max < imp->sgt->nents + (chunk >> 30) + 1) {
			kvfree(x);
			max = imp->sgt->nents + (chunk >> 30) + 1;
			x = kvcalloc(max, sizeof(*x), GFP_KERNEL);
			if (!x) {
				max = 0;
				ret = -ENOMEM;
				goto unlock_resv;
			}
		}
		ret = p2plab_dmabuf_xfers(imp->sgt, a->buf_off + a->done, c, a->local_off + a->done,
					  a->dir == P2PLAB_DMABUF_TO, x, max, &nx, &dma);
		if (ret)
			goto unlock_resv;
		if (!a->done)
			a->dma_addr = dma;
		WRITE_ONCE(imp->batch_timeout_ms, tmo);
		atomic_set(&imp->inflight, 1);
		dma_resv_unlock(imp->dmabuf->resv);

		a->res.descs += nx;
		ret = p2plab_dma_run_user(pd, x, nx, tmo, NULL, &info);

		atomic_set(&imp->inflight, 0);
		wake_up_all(&imp->wq);
		if (ret)
			break;
		a->done += c;
		imp->bytes += c;
		continue;
unlock_resv:
		dma_resv_unlock(imp->dmabuf->resv);
		break;
	}
	p2plab_fill_result(&a->res, ret, &info, ktime_to_ns(ktime_sub(ktime_get(), t0)));
	mutex_unlock(&imp->copy_lock);
	kvfree(x);
out_fput:
	fput(f);
	return ret;
}

static int p2plab_dmabuf_status(struct p2plab_dev *pd, struct p2plab_dmabuf_status *s)
{
	struct p2plab_dmabuf_imp *imp;
	struct file *f;
	int fd = s->import_fd, ret;

	imp = p2plab_dmabuf_lookup(pd, fd, &f);
	if (IS_ERR(imp))
		return PTR_ERR(imp);
	memset(s, 0, sizeof(*s));
	s->import_fd = fd;
	ret = dma_resv_lock_interruptible(imp->dmabuf->resv, NULL);
	if (ret)
		goto out_fput;
	s->flags = (imp->sgt ? P2PLAB_DMABUF_F_MAPPED : 0) | (imp->dead ? P2PLAB_DMABUF_F_DEAD : 0) |
		   (atomic_read(&imp->inflight) ? P2PLAB_DMABUF_F_INFLIGHT : 0);
	s->size = imp->dmabuf->size;
	s->invalidations = imp->invalidations;
	s->maps = imp->maps;
	s->unmaps = imp->unmaps;
	s->map_errors = imp->map_errors;
	s->bytes = imp->bytes;
	s->cancelled = imp->cancelled;
	if (imp->sgt && imp->sgt->nents) {
		s->dma_addr = sg_dma_address(imp->sgt->sgl);
		s->nsegs = imp->sgt->nents;
	}
	dma_resv_unlock(imp->dmabuf->resv);
out_fput:
	fput(f);
	return ret;
}

long p2plab_dmabuf_ioctl(struct p2plab_dev *pd, unsigned int cmd, void __user *up)
{
	int ret;

	switch (cmd) {
	case P2PLAB_IOC_DMABUF_IMPORT: {
		struct p2plab_dmabuf_import a;

		if (copy_from_user(&a, up, sizeof(a)))
			return -EFAULT;
		ret = p2plab_dmabuf_import(pd, &a);
		if (!ret && copy_to_user(up, &a, sizeof(a)))
			return -EFAULT;	/* the fd is installed: the caller owns it anyway */
		return ret;
	}
	case P2PLAB_IOC_DMABUF_COPY: {
		struct p2plab_dmabuf_copy a;

		if (copy_from_user(&a, up, sizeof(a)))
			return -EFAULT;
		ret = p2plab_dmabuf_copy(pd, &a);
		if (ret != -EBADF && copy_to_user(up, &a, sizeof(a)))
			return -EFAULT;
		return ret;
	}
	case P2PLAB_IOC_DMABUF_STATUS: {
		struct p2plab_dmabuf_status s;

		if (copy_from_user(&s, up, sizeof(s)))
			return -EFAULT;
		ret = p2plab_dmabuf_status(pd, &s);
		if (!ret && copy_to_user(up, &s, sizeof(s)))
			return -EFAULT;
		return ret;
	}
	}
	return -ENOTTY;
}

/*
 * The importer device is going away (remove(), pd->removing set, so a batch in flight aborts
 * at once): unmap and detach every import made on it while the device is still bound. The
 * import fds stay valid; their copies get ENODEV.
 */
void p2plab_dmabuf_remove(struct p2plab_dev *pd)
{
	struct p2plab_dmabuf_imp *imp;

	mutex_lock(&p2plab_dmabuf_lock);
	list_for_each_entry(imp, &p2plab_dmabuf_imports, node) {
		struct dma_buf_attachment *attach;

		if (imp->pd != pd || !imp->attach)
			continue;
		dma_resv_lock(imp->dmabuf->resv, NULL);
		imp->dead = true;
		p2plab_dmabuf_stop(imp, "remove");
		attach = imp->attach;
		imp->attach = NULL;
		dma_resv_unlock(imp->dmabuf->resv);
		dma_buf_detach(imp->dmabuf, attach);
	}
	mutex_unlock(&p2plab_dmabuf_lock);
}
