// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab_core.c - PCI driver for the p2plab device: probe/remove, the descriptor-ring DMA
 * engine (p2plab_dma_run), interrupts, P2PDMA provider (p2pmem), device list, debugfs.
 * Device interface: include/p2plab_hw.h, docs/device.md. Driver docs: docs/kmod.md.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-p2pdma.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/bitmap.h>
#include <linux/delay.h>
#include <linux/idr.h>
#include <linux/slab.h>
#include <linux/debugfs.h>
#include <linux/seq_file.h>
#include <linux/ktime.h>
#include <linux/io.h>

#include "p2plab.h"
#include "p2plab_ioctl.h"
#include "p2plab_hmm.h"
#include "p2plab_svm.h"

unsigned int p2plab_timeout_ms = 5000;
module_param_named(timeout_ms, p2plab_timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "default DMA batch timeout in ms (default 5000)");

static char *p2p_size = "";
module_param(p2p_size, charp, 0444);
MODULE_PARM_DESC(p2p_size, "bytes of BAR2 published as p2pmem, e.g. 32M (default: half; 0: none); rounded down to 2 MiB");

static char *svm_devmem = "";
module_param(svm_devmem, charp, 0444);
MODULE_PARM_DESC(svm_devmem, "bytes at the end of BAR2's HMM window given to the gpusvm SVM backend's device memory (drm_pagemap placement), e.g. 64M (default 0: none; at most half the window); rounded down to 2 MiB");

static unsigned int ring_entries = 256;
module_param(ring_entries, uint, 0444);
MODULE_PARM_DESC(ring_entries, "descriptor ring entries (power of two, clamped to RING_MAX; default 256)");

static bool use_msix = true;
module_param(use_msix, bool, 0444);
MODULE_PARM_DESC(use_msix, "use MSI-X (default 1); 0 forces legacy INTx");

static LIST_HEAD(p2plab_devs);
static DEFINE_MUTEX(p2plab_devs_lock);
static DEFINE_IDA(p2plab_ida);
static struct dentry *p2plab_dbg_root;

#define P2PLAB_P2P_ALIGN	SZ_2M	/* memremap_pages() subsection granularity */
/* the ring engine's interrupt causes; P2PLAB_INT_FAULT belongs to the device MMU (p2plab_svm.c) */
#define P2PLAB_INT_ENGINE	(P2PLAB_INT_DONE | P2PLAB_INT_ERROR)

static inline u32 rd(struct p2plab_dev *pd, u32 reg)
{
	return ioread32(pd->regs + reg);
}

static inline void wr(struct p2plab_dev *pd, u32 reg, u32 v)
{
	iowrite32(v, pd->regs + reg);
}

/* ---- device list and references ------------------------------------------------------------ */

static void p2plab_release(struct kref *ref)
{
	struct p2plab_dev *pd = container_of(ref, struct p2plab_dev, ref);

	p2plab_svm_free(pd);
	kfree(pd);
}

struct p2plab_dev *p2plab_get_by_id(int id)
{
	struct p2plab_dev *pd, *found = NULL;

	mutex_lock(&p2plab_devs_lock);
	list_for_each_entry(pd, &p2plab_devs, node) {
		if (pd->id == id) {
			kref_get(&pd->ref);
			found = pd;
			break;
		}
	}
	mutex_unlock(&p2plab_devs_lock);
	return found;
}
EXPORT_SYMBOL_GPL(p2plab_get_by_id);

void p2plab_put(struct p2plab_dev *pd)
{
	if (pd)
		kref_put(&pd->ref, p2plab_release);
}
EXPORT_SYMBOL_GPL(p2plab_put);

/* ---- engine ----------------------------------------------------------------------------------- */

/* True (and pd->dead set) if the device stopped answering: every MMIO read returns all-ones. */
static bool p2plab_check_dead(struct p2plab_dev *pd, u32 v)
{
	if (v != 0xffffffffu)
		return false;
	/* STATUS could legitimately never be all-ones; ID is a constant: confirm with it */
	if (rd(pd, P2PLAB_REG_ID) != 0xffffffffu)
		return false;
	if (!pd->dead) {
		pd->dead = true;
		p2plab_cnt_add(pd, link_down, 1);
		dev_err(&pd->pdev->dev, "device not responding (MMIO reads all-ones): link down?\n");
	}
	return true;
}

static int p2plab_engine_start(struct p2plab_dev *pd)
{
	u32 st;

	wr(pd, P2PLAB_REG_RING_BASE_LO, lower_32_bits(pd->ring_dma));
	wr(pd, P2PLAB_REG_RING_BASE_HI, upper_32_bits(pd->ring_dma));
	wr(pd, P2PLAB_REG_RING_SIZE, pd->ring_size);
	wr(pd, P2PLAB_REG_INT_STATUS, P2PLAB_INT_ENGINE);
	wr(pd, P2PLAB_REG_INT_MASK, 0);
	wr(pd, P2PLAB_REG_CTRL, P2PLAB_CTRL_ENABLE);
	st = rd(pd, P2PLAB_REG_STATUS);
	if (p2plab_check_dead(pd, st))
		return -ENODEV;
	if (st & P2PLAB_STATUS_HALTED) {
		dev_err(&pd->pdev->dev, "engine halted at start, ERR_CODE %#x\n",
			rd(pd, P2PLAB_REG_ERR_CODE));
		return -EIO;
	}
	if (!(st & P2PLAB_STATUS_ENABLED)) {
		dev_err(&pd->pdev->dev, "engine did not enable (STATUS %#x)\n", st);
		return -EIO;
	}
	pd->tail = rd(pd, P2PLAB_REG_RING_HEAD);
	if (pd->tail >= pd->ring_size)
		return -EIO;
	wr(pd, P2PLAB_REG_RING_TAIL, pd->tail);
	p2plab_svm_hw_restore(pd);	/* the MMU registers after the ring (§15.10) */
	return 0;
}

static void p2plab_engine_stop(struct p2plab_dev *pd)
{
	if (pd->dead)
		return;
	wr(pd, P2PLAB_REG_INT_MASK, P2PLAB_INT_ENGINE);
	wr(pd, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
}

/*
 * The ring is about to be reset (CTRL.RESET aborts parked descriptors, the ring is zeroed and
 * restarts at slot 0): every slot an unlocked submission owns is taken back. Their waiters see
 * the generation change and settle without touching the slot again (p2plab_unlocked_collect()).
 * An aborted waiter gets -EIO (P2PLAB_ERR_ABORTED), -ENODEV if the device is going away.
 */
static void p2plab_ring_new_gen(struct p2plab_dev *pd)
{
	lockdep_assert_held(&pd->dma_lock);
	spin_lock(&pd->ring_lock);
	pd->ring_gen++;
	if (pd->ring_owned)
		bitmap_zero(pd->ring_owned, pd->ring_size);
	pd->ring_nowned = 0;
	spin_unlock(&pd->ring_lock);
	wake_up_all(&pd->wq);	/* CTRL.RESET interrupts nobody */
}

/* CTRL.RESET, wait for it to self-clear, re-program. Caller holds dma_lock (probe too). */
int p2plab_engine_reset(struct p2plab_dev *pd)
{
	u32 v;
	int i;

	v = rd(pd, P2PLAB_REG_ID);
	if (v == 0xffffffffu) {
		p2plab_check_dead(pd, v);
		return -ENODEV;
	}
	if (v != P2PLAB_ID_MAGIC)
		return -ENODEV;
	pd->dead = false;
	p2plab_cnt_add(pd, resets, 1);
	p2plab_ring_new_gen(pd);
	wr(pd, P2PLAB_REG_CTRL, P2PLAB_CTRL_RESET);
	for (i = 0; i < 1000; i++) {
		v = rd(pd, P2PLAB_REG_CTRL);
		if (p2plab_check_dead(pd, v))
			return -ENODEV;
		if (!(v & P2PLAB_CTRL_RESET))
			break;
		usleep_range(50, 100);
	}
	if (v & P2PLAB_CTRL_RESET) {
		dev_err(&pd->pdev->dev, "CTRL.RESET did not self-clear\n");
		return -EIO;
	}
	memset(pd->ring, 0, pd->ring_size * sizeof(*pd->ring));
	return p2plab_engine_start(pd);
}
EXPORT_SYMBOL_GPL(p2plab_engine_reset);

static irqreturn_t p2plab_irq(int irq, void *data)
{
	struct p2plab_dev *pd = data;
	u32 st = rd(pd, P2PLAB_REG_INT_STATUS);

	if (st == 0xffffffffu) {	/* link down: let the waiter find out */
		wake_up(&pd->wq);
		return pd->irq_mode == P2PLAB_IRQ_INTX ? IRQ_NONE : IRQ_HANDLED;
	}
	if (!st)
		return pd->irq_mode == P2PLAB_IRQ_INTX ? IRQ_NONE : IRQ_HANDLED;
	wr(pd, P2PLAB_REG_INT_STATUS, st);
	if (st & P2PLAB_INT_DONE)
		p2plab_cnt_add(pd, irq_done, 1);
	if (st & P2PLAB_INT_ERROR)
		p2plab_cnt_add(pd, irq_error, 1);
	if (st & P2PLAB_INT_FAULT)
		p2plab_svm_irq(pd);	/* device-MMU fault records: p2plab_svm.c */
	atomic_inc(&pd->irq_seq);
	wake_up(&pd->wq);
	return IRQ_HANDLED;
}

enum { CHUNK_RUNNING, CHUNK_DONE, CHUNK_HALTED, CHUNK_DEAD };

static int p2plab_chunk_state(struct p2plab_dev *pd, u32 last_slot)
{
	u32 st;

	if (le32_to_cpu(READ_ONCE(pd->ring[last_slot].status)) & P2PLAB_DESC_DONE)
		return CHUNK_DONE;
	st = rd(pd, P2PLAB_REG_STATUS);
	if (p2plab_check_dead(pd, st))
		return CHUNK_DEAD;
	if (st & P2PLAB_STATUS_HALTED)
		return CHUNK_HALTED;
	/* the descriptor write-back may have landed after our first look */
	if (le32_to_cpu(READ_ONCE(pd->ring[last_slot].status)) & P2PLAB_DESC_DONE)
		return CHUNK_DONE;
	return CHUNK_RUNNING;
}

/* a userspace request on pd (and peer) must give up: one of them is being removed */
static bool p2plab_user_abort(struct p2plab_dev *pd, struct p2plab_dev *peer, bool user)
{
	return user && (READ_ONCE(pd->removing) || (peer && READ_ONCE(peer->removing)));
}

static bool p2plab_chunk_settled(struct p2plab_dev *pd, u32 last_slot, int *state,
				 struct p2plab_dev *peer, bool user, bool *aborted)
{
	*state = p2plab_chunk_state(pd, last_slot);
	if (*state == CHUNK_RUNNING && p2plab_user_abort(pd, peer, user))
		*aborted = true;
	return *state != CHUNK_RUNNING || *aborted;
}

static int p2plab_validate_xfers(const struct p2plab_xfer *x, unsigned int n)
{
	unsigned int i;

	if (!x || !n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (!x[i].len || x[i].len > P2PLAB_DESC_MAX_LEN)
			return -EINVAL;
		/* 1.1 VA / context / operation bits: SVM submissions (p2plab_svm.c) */
		if (x[i].flags & ~(P2PLAB_DESC_F_VALID_MASK & ~P2PLAB_DESC_F_IRQ))
			return -EINVAL;
	}
	return 0;
}

/*
 * One chunk of a batch: at most ring_size - 1 descriptors posted together, waited for together.
 * p2plab_dma_run_common() runs the batch as a sequence of chunks, each through the steps below:
 * fill the ring, ring the doorbell, wait until the chunk settles, then handle what it settled to
 * (abort, link lost, timeout, halt) or collect the per-descriptor results.
 */
struct p2plab_chunk {
	const struct p2plab_xfer *x;	/* the batch */
	unsigned int first;		/* index in the batch of the chunk's first descriptor */
	unsigned int k;			/* descriptors in the chunk */
	u32 head;			/* ring slot of the first */
	u32 last;			/* ring slot of the last (the one with P2PLAB_DESC_F_IRQ) */
	int irq_seq;			/* pd->irq_seq before the doorbell */
	int state;			/* CHUNK_*, once settled */
	bool aborted;			/* settled because pd or the peer is being removed */
};

static void p2plab_run_info_init(struct p2plab_run_info *info)
{
	info->failed_idx = ~0U;
	info->err_code = 0;
	info->irq_lost = false;
	info->ring_error = false;
	info->stuck = false;
}

/* Before posting anything (dma_lock held): the device must be there and have a ring. */
static int p2plab_dma_begin(struct p2plab_dev *pd, struct p2plab_dev *peer, bool user)
{
	/* a cheap liveness check first: never post work to a device that is not there */
	if (p2plab_user_abort(pd, peer, user) || pd->dead ||
	    p2plab_check_dead(pd, rd(pd, P2PLAB_REG_ID)))
		return -ENODEV;
	if (!pd->ring)
		return -ENODEV;
	p2plab_cnt_add(pd, batches, 1);
	return 0;
}

/* Write the chunk's descriptors at the ring tail; the last one asks for the DONE interrupt. */
static void p2plab_chunk_fill(struct p2plab_dev *pd, const struct p2plab_chunk *c)
{
	u32 mask = pd->ring_size - 1;
	unsigned int j;

	for (j = 0; j < c->k; j++) {
		struct p2plab_desc *d = &pd->ring[(c->head + j) & mask];
		const struct p2plab_xfer *t = &c->x[c->first + j];

		d->src = cpu_to_le64(t->src);
		d->dst = cpu_to_le64(t->dst);
		d->len = cpu_to_le32(t->len);
		d->flags = cpu_to_le32(t->flags | (j == c->k - 1 ? P2PLAB_DESC_F_IRQ : 0));
		d->cookie = cpu_to_le32(pd->cookie++);
		WRITE_ONCE(d->status, 0);
	}
}

static void p2plab_chunk_doorbell(struct p2plab_dev *pd, const struct p2plab_chunk *c)
{
	/* descriptors must be visible to the device before the doorbell */
	dma_wmb();
	pd->tail = (c->head + c->k) & (pd->ring_size - 1);
	wr(pd, P2PLAB_REG_RING_TAIL, pd->tail);
	p2plab_cnt_add(pd, descs, c->k);
}

/* Sleep until the chunk settles (c->state, c->aborted) or the deadline; the jiffies left. */
static long p2plab_chunk_wait(struct p2plab_dev *pd, struct p2plab_chunk *c,
			      unsigned long deadline, struct p2plab_dev *peer, bool user)
{
	unsigned long now = jiffies;
	long left = time_after(deadline, now) ? deadline - now : 1;

	return wait_event_timeout(pd->wq, p2plab_chunk_settled(pd, c->last, &c->state, peer,
							       user, &c->aborted), left);
}

/*
 * pd or the peer is going away: stop the engine now (it must not touch the caller's buffers
 * after we return) instead of waiting for the work.
 */
static int p2plab_chunk_abort(struct p2plab_dev *pd, const struct p2plab_chunk *c,
			      struct p2plab_run_info *info)
{
	dev_info(&pd->pdev->dev, "device removal: aborting a DMA batch\n");
	if (p2plab_engine_reset(pd) &&
	    !(le32_to_cpu(READ_ONCE(pd->ring[c->last].status)) & P2PLAB_DESC_DONE)) {
		info->stuck = true;
		dev_err(&pd->pdev->dev,
			"engine reset failed during abort: buffers of %u descriptors must not be reused\n",
			c->k);
	}
	return -ENODEV;
}

/* Done, but found so only at the deadline and no interrupt came: count a lost IRQ. */
static void p2plab_chunk_check_irq(struct p2plab_dev *pd, const struct p2plab_chunk *c,
				   long left, unsigned long deadline, struct p2plab_run_info *info)
{
	if (c->state == CHUNK_DONE && left <= 1 && atomic_read(&pd->irq_seq) == c->irq_seq &&
	    time_after_eq(jiffies, deadline)) {
		info->irq_lost = true;
		p2plab_cnt_add(pd, irq_lost, 1);
		dev_warn_ratelimited(&pd->pdev->dev,
				     "batch completed without interrupt (lost IRQ?)\n");
	}
}

/*
 * Link lost with work posted. If the link comes back, the device resumes that work, so the
 * caller's buffers must stay valid until we know: wait (up to the deadline) for the device, then
 * abort everything with a reset.
 */
static int p2plab_chunk_link_lost(struct p2plab_dev *pd, const struct p2plab_chunk *c,
				  unsigned long deadline, struct p2plab_run_info *info)
{
	while (time_before(jiffies, deadline) && rd(pd, P2PLAB_REG_ID) == 0xffffffffu)
		msleep(20);
	if (rd(pd, P2PLAB_REG_ID) == P2PLAB_ID_MAGIC) {
		dev_warn(&pd->pdev->dev, "link back during a batch: aborting it\n");
		p2plab_engine_reset(pd);
	} else {
		info->stuck = true;
		dev_err(&pd->pdev->dev,
			"link down with %u descriptors posted: their buffers must not be reused\n",
			c->k);
	}
	return -ENODEV;
}

static int p2plab_chunk_timeout(struct p2plab_dev *pd, unsigned int timeout_ms)
{
	int ret;

	p2plab_cnt_add(pd, timeouts, 1);
	dev_err(&pd->pdev->dev,
		"DMA batch timed out after %u ms (HEAD %u TAIL %u STATUS %#x); resetting engine\n",
		timeout_ms, rd(pd, P2PLAB_REG_RING_HEAD), pd->tail, rd(pd, P2PLAB_REG_STATUS));
	ret = p2plab_engine_reset(pd);
	return ret == -ENODEV ? -ENODEV : -ETIMEDOUT;
}

/* Per-descriptor results of a chunk that completed or halted: first failure, bytes copied. */
static void p2plab_chunk_collect(struct p2plab_dev *pd, const struct p2plab_chunk *c,
				 struct p2plab_run_info *info)
{
	u32 mask = pd->ring_size - 1;
	unsigned int j;
	u64 bytes = 0;

	/* results: data written by the device is valid once its status says DONE */
	dma_rmb();
	for (j = 0; j < c->k; j++) {
		u32 st = le32_to_cpu(READ_ONCE(pd->ring[(c->head + j) & mask].status));
		u32 err = st & P2PLAB_DESC_ERR_MASK;

		if (!(st & P2PLAB_DESC_DONE)) {
			/* only after a halt: this entry never ran */
			if (info->failed_idx == ~0U && c->state == CHUNK_HALTED) {
				info->failed_idx = c->first + j;
				info->err_code = rd(pd, P2PLAB_REG_ERR_CODE);
			}
			continue;
		}
		if (err) {
			p2plab_cnt_add(pd, desc_errors, 1);
			if (info->failed_idx == ~0U) {
				info->failed_idx = c->first + j;
				info->err_code = err;
			}
		} else {
			bytes += c->x[c->first + j].len;
		}
	}
	p2plab_cnt_add(pd, bytes, bytes);
}

/* A ring-level error halted the engine: record it, reset the engine. */
static int p2plab_chunk_halted(struct p2plab_dev *pd, const struct p2plab_chunk *c,
			       struct p2plab_run_info *info)
{
	u32 code = rd(pd, P2PLAB_REG_ERR_CODE);
	int ret;

	p2plab_cnt_add(pd, ring_errors, 1);
	info->ring_error = true;
	if (info->failed_idx == ~0U) {
		info->failed_idx = c->first;
		info->err_code = code;
	}
	dev_err(&pd->pdev->dev, "engine halted: ERR_CODE %#x ERR_INDEX %u; resetting\n",
		code, rd(pd, P2PLAB_REG_ERR_INDEX));
	ret = p2plab_engine_reset(pd);
	return ret == -ENODEV ? -ENODEV : -EIO;
}

/* Post descriptors x[first, first + k) and see them through; 0 if all of them succeeded. */
static int p2plab_dma_chunk(struct p2plab_dev *pd, const struct p2plab_xfer *x,
			    unsigned int first, unsigned int k, unsigned long deadline,
			    unsigned int timeout_ms, struct p2plab_dev *peer, bool user,
			    struct p2plab_run_info *info)
{
	struct p2plab_chunk c = {
		.x = x,
		.first = first,
		.k = k,
		.head = pd->tail,
		.last = (pd->tail + k - 1) & (pd->ring_size - 1),
		.irq_seq = atomic_read(&pd->irq_seq),
		.state = CHUNK_RUNNING,
	};
	long left;

	if (p2plab_user_abort(pd, peer, user))
		return -ENODEV;
	p2plab_chunk_fill(pd, &c);
	p2plab_chunk_doorbell(pd, &c);
	left = p2plab_chunk_wait(pd, &c, deadline, peer, user);

	if (c.aborted && c.state == CHUNK_RUNNING)
		return p2plab_chunk_abort(pd, &c, info);
	p2plab_chunk_check_irq(pd, &c, left, deadline, info);
	if (c.state == CHUNK_DEAD)
		return p2plab_chunk_link_lost(pd, &c, deadline, info);
	if (c.state == CHUNK_RUNNING)
		return p2plab_chunk_timeout(pd, timeout_ms);

	p2plab_chunk_collect(pd, &c, info);
	if (c.state == CHUNK_HALTED)
		return p2plab_chunk_halted(pd, &c, info);
	if (info->failed_idx != ~0U) {
		dev_dbg(&pd->pdev->dev, "descriptor %u failed: error %#x\n",
			info->failed_idx, info->err_code);
		return -EIO;
	}
	return 0;
}

/* ---- slots owned by unlocked submissions ---- */

/*
 * How many descriptors can be posted at pd->tail now (dma_lock held): slots [tail, tail + k) must
 * not be owned by an unlocked submission, and neither may the new tail, tail + k, if that slot is
 * one the device has not fetched yet (status 0): it is at or after HEAD, and a tail that reached
 * it would make the ring look empty (docs/device.md §5). Owned slots the device has fetched are
 * passed over (below). At most ring_size - 1; 0 if the slot at the tail is owned and unfetched.
 */
static u32 p2plab_ring_room(struct p2plab_dev *pd)
{
	u32 mask = pd->ring_size - 1, d;

	spin_lock(&pd->ring_lock);
	if (!pd->ring_nowned) {
		spin_unlock(&pd->ring_lock);
		return pd->ring_size - 1;
	}
	/*
	 * Owned slots at the tail that the device has fetched (status STALLED: parked; or DONE: its
	 * submitter has not read it yet) are passed over, not rewritten: the device skips an entry
	 * whose status has either bit at fetch (docs/device.md §3). Without this, a copy the fault
	 * path itself needs (placement, a CPU fault migrating pages back) would wait behind its own
	 * parked descriptor once the ring wrapped onto it.
	 */
	for (d = 0; d < pd->ring_size - 1 && test_bit(pd->tail, pd->ring_owned) &&
	     (le32_to_cpu(READ_ONCE(pd->ring[pd->tail].status)) &
	      (P2PLAB_DESC_DONE | P2PLAB_DESC_STALLED)); d++) {
		pd->tail = (pd->tail + 1) & mask;
		p2plab_cnt_add(pd, ring_skips, 1);
	}
	for (d = 0; d < pd->ring_size; d++)
		if (test_bit((pd->tail + d) & mask, pd->ring_owned))
			break;
	/* the new tail may land on an owned slot the device has fetched: it will pass over it */
	if (d < pd->ring_size &&
	    (le32_to_cpu(READ_ONCE(pd->ring[(pd->tail + d) & mask].status)) &
	     (P2PLAB_DESC_DONE | P2PLAB_DESC_STALLED))) {
		spin_unlock(&pd->ring_lock);
		return min(d, pd->ring_size - 1);
	}
	spin_unlock(&pd->ring_lock);
	return d ? d - 1 : 0;
}

static bool p2plab_ring_room_settled(struct p2plab_dev *pd, struct p2plab_dev *peer, bool user,
				     u32 *room)
{
	*room = p2plab_ring_room(pd);
	return *room || p2plab_user_abort(pd, peer, user) || READ_ONCE(pd->dead);
}

/*
 * Before posting (dma_lock held): wait until there is room at the tail, i.e. until the unlocked
 * submissions owning the slots ahead of it have read them (a descriptor parked on a device-MMU
 * fault owns its slot until the fault is answered; the ring is much larger than the 32 the device
 * can park, so this waits only when the ring wrapped onto one). Bounded by the caller's deadline:
 * -ETIMEDOUT without a reset (nothing of ours is posted, the device is not at fault).
 */
static int p2plab_ring_wait_room(struct p2plab_dev *pd, unsigned long deadline,
				 struct p2plab_dev *peer, bool user, u32 *room)
{
	unsigned long now = jiffies;
	long left = time_after(deadline, now) ? deadline - now : 1;

	*room = p2plab_ring_room(pd);
	if (*room)
		return 0;
	wait_event_timeout(pd->wq, p2plab_ring_room_settled(pd, peer, user, room), left);
	if (*room)
		return 0;
	if (p2plab_user_abort(pd, peer, user) || READ_ONCE(pd->dead))
		return -ENODEV;
	p2plab_cnt_add(pd, timeouts, 1);
	dev_err(&pd->pdev->dev,
		"ring slot %u still owned by a parked SVM descriptor at the deadline: batch not posted\n",
		pd->tail);
	return -ETIMEDOUT;
}

/*
 * A single-descriptor SVM (VA) submission: posted under dma_lock, waited for without it. The
 * device may park the descriptor on a device-MMU fault for as long as the fault takes
 * (docs/device.md §15.6) while HEAD moves past it and the engine runs everybody else's work:
 * holding the ring meanwhile would stall every other user of the engine, and deadlock the fault
 * path if it needed the engine. The slot stays owned (pd->ring_owned) until the waiter has read
 * its status; an engine reset (pd->ring_gen) takes every owned slot back.
 */
struct p2plab_unlocked {
	struct p2plab_chunk c;		/* k = 1: head == last == the slot */
	u32 gen;			/* pd->ring_gen when posted */
	bool reset;			/* the ring was reset under it: the slot is not ours */
};

static bool p2plab_unlocked_settled(struct p2plab_dev *pd, struct p2plab_unlocked *u,
				    struct p2plab_dev *peer, bool user)
{
	/* a hint only (the slot may be zeroed or reused): p2plab_unlocked_collect() decides */
	if (READ_ONCE(pd->ring_gen) != u->gen) {
		u->reset = true;
		return true;
	}
	return p2plab_chunk_settled(pd, u->c.last, &u->c.state, peer, user, &u->c.aborted);
}

/*
 * If the slot is still ours and its status has DONE, collect the result and give the slot back
 * (true); false if it is still posted, or if an engine reset took it (u->reset). ring_lock keeps
 * a reset (p2plab_ring_new_gen(), before the ring is zeroed) and a reuse of the slot (posters
 * check ring_owned) out while the status is read.
 */
static bool p2plab_unlocked_collect(struct p2plab_dev *pd, struct p2plab_unlocked *u,
				    struct p2plab_run_info *info)
{
	bool done = false;

	spin_lock(&pd->ring_lock);
	if (pd->ring_gen != u->gen) {
		u->reset = true;
	} else if (le32_to_cpu(READ_ONCE(pd->ring[u->c.last].status)) & P2PLAB_DESC_DONE) {
		u->c.state = CHUNK_DONE;
		p2plab_chunk_collect(pd, &u->c, info);
		__clear_bit(u->c.last, pd->ring_owned);
		pd->ring_nowned--;
		done = true;
	}
	spin_unlock(&pd->ring_lock);
	if (done)
		wake_up_all(&pd->wq);	/* posters waiting for room */
	return done;
}

/* an engine reset took the slot: the descriptor was aborted (or never ran) */
static int p2plab_unlocked_reset(struct p2plab_dev *pd, struct p2plab_dev *peer, bool user,
				 struct p2plab_run_info *info)
{
	if (p2plab_user_abort(pd, peer, user) || READ_ONCE(pd->dead))
		return -ENODEV;
	info->failed_idx = 0;
	info->err_code = P2PLAB_ERR_ABORTED;
	return -EIO;
}

/* the result of a collected descriptor */
static int p2plab_unlocked_result(struct p2plab_dev *pd, struct p2plab_run_info *info)
{
	if (info->failed_idx == ~0U)
		return 0;
	dev_dbg(&pd->pdev->dev, "SVM descriptor failed: error %#x\n", info->err_code);
	return -EIO;
}

/*
 * The wait ended without the descriptor's DONE: link down, halt, removal or the deadline. Take
 * the ring, look again, then handle it as a locked batch would (reset: this aborts every other
 * parked descriptor too, their waiters get -EIO).
 */
static int p2plab_unlocked_stuck(struct p2plab_dev *pd, struct p2plab_unlocked *u, long left,
				 unsigned long deadline, unsigned int timeout_ms,
				 struct p2plab_dev *peer, bool user, struct p2plab_run_info *info)
{
	int ret;

	mutex_lock(&pd->dma_lock);
	if (p2plab_unlocked_collect(pd, u, info)) {
		p2plab_chunk_check_irq(pd, &u->c, left, deadline, info);
		ret = p2plab_unlocked_result(pd, info);
		goto out_unlock;
	}
	if (u->reset) {
		ret = p2plab_unlocked_reset(pd, peer, user, info);
		goto out_unlock;
	}
	/* still ours: nobody resets the ring while we hold dma_lock */
	p2plab_chunk_settled(pd, u->c.last, &u->c.state, peer, user, &u->c.aborted);
	if (u->c.state == CHUNK_DONE && p2plab_unlocked_collect(pd, u, info))
		ret = p2plab_unlocked_result(pd, info);	/* DONE since our look above */
	else if (u->c.aborted && u->c.state == CHUNK_RUNNING)
		ret = p2plab_chunk_abort(pd, &u->c, info);
	else if (u->c.state == CHUNK_DEAD)
		ret = p2plab_chunk_link_lost(pd, &u->c, deadline, info);
	else if (u->c.state == CHUNK_HALTED)
		ret = p2plab_chunk_halted(pd, &u->c, info);
	else
		ret = p2plab_chunk_timeout(pd, timeout_ms);
out_unlock:
	mutex_unlock(&pd->dma_lock);
	return ret;
}

static int p2plab_dma_run_unlocked(struct p2plab_dev *pd, const struct p2plab_xfer *x,
				   unsigned int timeout_ms, struct p2plab_dev *peer, bool user,
				   struct p2plab_run_info *info)
{
	struct p2plab_unlocked u = {
		.c = {
			.x = x,
			.k = 1,
			.state = CHUNK_RUNNING,
		},
	};
	unsigned long deadline, now;
	long left;
	u32 room;
	int ret;

	mutex_lock(&pd->dma_lock);
	ret = p2plab_dma_begin(pd, peer, user);
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	if (!ret)
		ret = p2plab_ring_wait_room(pd, deadline, peer, user, &room);
	if (ret)
		goto out_unlock;
	u.c.head = pd->tail;
	u.c.last = pd->tail;
	u.c.irq_seq = atomic_read(&pd->irq_seq);
	p2plab_chunk_fill(pd, &u.c);
	spin_lock(&pd->ring_lock);
	__set_bit(u.c.last, pd->ring_owned);
	pd->ring_nowned++;
	u.gen = pd->ring_gen;
	spin_unlock(&pd->ring_lock);
	p2plab_chunk_doorbell(pd, &u.c);
	mutex_unlock(&pd->dma_lock);

	now = jiffies;
	left = time_after(deadline, now) ? deadline - now : 1;
	left = wait_event_timeout(pd->wq, p2plab_unlocked_settled(pd, &u, peer, user), left);
	if (p2plab_unlocked_collect(pd, &u, info)) {
		p2plab_chunk_check_irq(pd, &u.c, left, deadline, info);
		return p2plab_unlocked_result(pd, info);
	}
	if (u.reset)
		return p2plab_unlocked_reset(pd, peer, user, info);
	return p2plab_unlocked_stuck(pd, &u, left, deadline, timeout_ms, peer, user, info);

out_unlock:
	mutex_unlock(&pd->dma_lock);
	return ret;
}

static int p2plab_dma_run_common(struct p2plab_dev *pd, const struct p2plab_xfer *x,
				 unsigned int n, unsigned int timeout_ms, struct p2plab_dev *peer,
				 bool user, struct p2plab_run_info *info)
{
	unsigned long deadline;
	unsigned int done = 0;
	int ret;

	p2plab_run_info_init(info);
	ret = p2plab_validate_xfers(x, n);
	if (ret)
		return ret;
	if (!timeout_ms)
		timeout_ms = READ_ONCE(p2plab_timeout_ms) ?: 5000;
	/* an SVM descriptor may park on a device-MMU fault: it does not keep the ring meanwhile */
	if (n == 1 && (x->flags & (P2PLAB_DESC_F_SRC_VA | P2PLAB_DESC_F_DST_VA)))
		return p2plab_dma_run_unlocked(pd, x, timeout_ms, peer, user, info);

	mutex_lock(&pd->dma_lock);
	ret = p2plab_dma_begin(pd, peer, user);
	deadline = jiffies + msecs_to_jiffies(timeout_ms);
	while (!ret && done < n) {
		u32 room;
		unsigned int k;

		/* split where the ring would wrap onto a slot an unlocked submission owns */
		ret = p2plab_ring_wait_room(pd, deadline, peer, user, &room);
		if (ret)
			break;
		k = min_t(unsigned int, n - done, room);
		ret = p2plab_dma_chunk(pd, x, done, k, deadline, timeout_ms, peer, user, info);
		done += k;
	}
	mutex_unlock(&pd->dma_lock);
	return ret;
}

int p2plab_dma_run_info(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
			unsigned int timeout_ms, struct p2plab_run_info *info)
{
	return p2plab_dma_run_common(pd, x, n, timeout_ms, NULL, false, info);
}
EXPORT_SYMBOL_GPL(p2plab_dma_run_info);

int p2plab_dma_run_user(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
			unsigned int timeout_ms, struct p2plab_dev *peer,
			struct p2plab_run_info *info)
{
	return p2plab_dma_run_common(pd, x, n, timeout_ms, peer, true, info);
}

int p2plab_dma_run(struct p2plab_dev *pd, const struct p2plab_xfer *x, unsigned int n,
		   unsigned int timeout_ms, unsigned int *failed_idx, u32 *err_code)
{
	struct p2plab_run_info info;
	int ret = p2plab_dma_run_info(pd, x, n, timeout_ms, &info);

	if (failed_idx)
		*failed_idx = info.failed_idx;
	if (err_code)
		*err_code = info.err_code;
	return ret;
}
EXPORT_SYMBOL_GPL(p2plab_dma_run);

/* ---- interrupts ------------------------------------------------------------------------------- */

static int p2plab_setup_irqs(struct p2plab_dev *pd)
{
	struct pci_dev *pdev = pd->pdev;
	int nvec = -ENODEV, i, ret;

	if (use_msix) {
		/* the engine's two vectors at least (an interface 1.0 device has only those),
		 * the device-MMU fault vector of 1.1 when there */
		nvec = pci_alloc_irq_vectors(pdev, P2PLAB_VEC_ERROR + 1, P2PLAB_NUM_VECTORS,
					     PCI_IRQ_MSIX);
		if (nvec > 0)
			pd->irq_mode = P2PLAB_IRQ_MSIX;
		else
			dev_info(&pdev->dev, "MSI-X unavailable (%d); falling back to INTx\n", nvec);
	}
	if (nvec <= 0) {
		nvec = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_INTX);
		if (nvec <= 0)
			return nvec ?: -ENODEV;
		pd->irq_mode = P2PLAB_IRQ_INTX;
	}
	pd->nvec = nvec;
	for (i = 0; i < nvec; i++) {
		ret = request_irq(pci_irq_vector(pdev, i), p2plab_irq,
				  pd->irq_mode == P2PLAB_IRQ_INTX ? IRQF_SHARED : 0,
				  P2PLAB_DRV_NAME, pd);
		if (ret)
			goto err_free_irqs;
	}
	return 0;

err_free_irqs:
	while (--i >= 0)
		free_irq(pci_irq_vector(pdev, i), pd);
	pci_free_irq_vectors(pdev);
	pd->nvec = 0;
	return ret;
}

static void p2plab_teardown_irqs(struct p2plab_dev *pd)
{
	int i;

	for (i = 0; i < pd->nvec; i++)
		free_irq(pci_irq_vector(pd->pdev, i), pd);
	pci_free_irq_vectors(pd->pdev);
	pd->nvec = 0;
}

/* ---- debugfs ---------------------------------------------------------------------------------- */

static int p2plab_dbg_show(struct seq_file *s, void *unused)
{
	struct p2plab_dev *pd = s->private;
	struct p2plab_counters c;
	unsigned long f;

	spin_lock_irqsave(&pd->cnt_lock, f);
	c = pd->cnt;
	spin_unlock_irqrestore(&pd->cnt_lock, f);
	seq_printf(s, "pci %s\nirq_mode %d\nring_size %u\nmem_size %llu\np2p_size %llu\n"
		   "priv_off %llu\npriv_size %llu\ndead %d\n",
		   pci_name(pd->pdev), pd->irq_mode, pd->ring_size, (u64)pd->mem_size,
		   (u64)pd->p2p_size, (u64)pd->priv_off, (u64)pd->priv_size, pd->dead);
	spin_lock(&pd->ring_lock);
	seq_printf(s, "ring_gen %u\nring_owned %u\nring_skips %llu\n", pd->ring_gen,
		   pd->ring_nowned, c.ring_skips);
	spin_unlock(&pd->ring_lock);
	seq_printf(s, "batches %llu\ndescs %llu\nbytes %llu\ndesc_errors %llu\nring_errors %llu\n"
		   "timeouts %llu\nresets %llu\nlink_down %llu\nirq_done %llu\nirq_error %llu\n"
		   "irq_lost %llu\np2p_bus %llu\np2p_host_bridge %llu\np2p_refused %llu\n",
		   c.batches, c.descs, c.bytes, c.desc_errors, c.ring_errors, c.timeouts, c.resets,
		   c.link_down, c.irq_done, c.irq_error, c.irq_lost, c.p2p_bus, c.p2p_host_bridge,
		   c.p2p_refused);
	if (!pd->dead)
		seq_printf(s, "reg_status %#x\nreg_head %u\nreg_tail %u\nreg_err_code %#x\n"
			   "reg_err_index %u\nreg_completed %u\n",
			   rd(pd, P2PLAB_REG_STATUS), rd(pd, P2PLAB_REG_RING_HEAD),
			   rd(pd, P2PLAB_REG_RING_TAIL), rd(pd, P2PLAB_REG_ERR_CODE),
			   rd(pd, P2PLAB_REG_ERR_INDEX), rd(pd, P2PLAB_REG_COMPLETED));
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(p2plab_dbg);

/* ---- probe / remove --------------------------------------------------------------------------- */

static resource_size_t p2plab_pick_p2p_size(struct p2plab_dev *pd)
{
	resource_size_t sz;

	if (!p2p_size || !*p2p_size)
		sz = pd->mem_size / 2;
	else
		sz = memparse(p2p_size, NULL);
	sz = min_t(resource_size_t, sz, pd->mem_size);
	return round_down(sz, P2PLAB_P2P_ALIGN);
}

/* the gpusvm backend's device memory: the end of the HMM window (p2plab_svm_devmem.c) */
static void p2plab_carve_svm_devmem(struct p2plab_dev *pd)
{
	resource_size_t sz = svm_devmem && *svm_devmem ? memparse(svm_devmem, NULL) : 0;

	sz = round_down(min_t(resource_size_t, sz, pd->priv_size / 2), SZ_2M);
	pd->priv_size -= sz;
	pd->svm_dm_off = pd->priv_off + pd->priv_size;
	pd->svm_dm_size = sz;
}

static int p2plab_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct p2plab_dev *pd;
	u32 v, ver;
	u64 regsz;
	int ret;

	pd = kzalloc(sizeof(*pd), GFP_KERNEL);
	if (!pd)
		return -ENOMEM;
	kref_init(&pd->ref);
	INIT_LIST_HEAD(&pd->node);
	init_rwsem(&pd->active);
	mutex_init(&pd->dma_lock);
	spin_lock_init(&pd->ring_lock);
	spin_lock_init(&pd->cnt_lock);
	init_waitqueue_head(&pd->wq);
	atomic_set(&pd->irq_seq, 0);
	pd->pdev = pdev;
	pd->id = -1;
	pci_set_drvdata(pdev, pd);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_put;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret) {
		dev_err(dev, "no 64-bit DMA mask\n");
		goto err_disable;
	}
	/*
	 * One descriptor moves up to P2PLAB_DESC_MAX_LEN and the driver splits longer runs: segments of
	 * any length up to that are fine. Without this the DMA core assumes 64 KiB, and the scatterlists
	 * of pinned user pages (merged runs, e.g. 260 KiB) break that limit: DMA_API_DEBUG's "mapping sg
	 * segment longer than device claims to support" (found by the debug kernel, docs/debug-kernel.md).
	 */
	dma_set_max_seg_size(dev, P2PLAB_DESC_MAX_LEN);
	if (!(pci_resource_flags(pdev, P2PLAB_BAR_REGS) & IORESOURCE_MEM) ||
	    !(pci_resource_flags(pdev, P2PLAB_BAR_MEM) & IORESOURCE_MEM) ||
	    pci_resource_len(pdev, P2PLAB_BAR_REGS) < P2PLAB_REGS_SIZE ||
	    !pci_resource_start(pdev, P2PLAB_BAR_MEM)) {
		dev_err(dev, "BAR0/BAR2 missing or unassigned\n");
		ret = -ENODEV;
		goto err_disable;
	}
	ret = pci_request_regions(pdev, P2PLAB_DRV_NAME);
	if (ret)
		goto err_disable;
	pd->regs = pci_iomap(pdev, P2PLAB_BAR_REGS, P2PLAB_REGS_SIZE);
	if (!pd->regs) {
		ret = -ENOMEM;
		goto err_release_regions;
	}
	v = rd(pd, P2PLAB_REG_ID);
	ver = rd(pd, P2PLAB_REG_VERSION);
	if (v != P2PLAB_ID_MAGIC || (ver >> 16) != (P2PLAB_IF_VERSION >> 16)) {
		dev_err(dev, "not a p2plab device or unsupported interface (ID %#x VERSION %#x)\n",
			v, ver);
		ret = -ENODEV;
		goto err_unmap_regs;
	}
	pd->if_version = ver;
	pd->caps = rd(pd, P2PLAB_REG_CAPS);
	pd->ring_max = rd(pd, P2PLAB_REG_RING_MAX);
	pd->mem_phys = pci_resource_start(pdev, P2PLAB_BAR_MEM);
	pd->mem_size = pci_resource_len(pdev, P2PLAB_BAR_MEM);
	regsz = rd(pd, P2PLAB_REG_MEM_SIZE_LO) | (u64)rd(pd, P2PLAB_REG_MEM_SIZE_HI) << 32;
	if (regsz != pd->mem_size)
		dev_warn(dev, "MEM_SIZE register %#llx != BAR2 size %#llx; using the BAR size\n",
			 regsz, (u64)pd->mem_size);
	pd->mem = pci_iomap(pdev, P2PLAB_BAR_MEM, 0);
	if (!pd->mem) {
		ret = -ENOMEM;
		goto err_unmap_regs;
	}
	pd->p2p_size = p2plab_pick_p2p_size(pd);
	pd->priv_off = pd->p2p_size;
	pd->priv_size = pd->mem_size - pd->p2p_size;

	/* descriptor ring */
	if (pd->ring_max < 2) {
		dev_err(dev, "RING_MAX %u < 2\n", pd->ring_max);
		ret = -ENODEV;
		goto err_unmap_mem;
	}
	pd->ring_size = rounddown_pow_of_two(clamp_t(u32, ring_entries ?: 256, 2, pd->ring_max));
	/* coherent allocations are page aligned: RING_BASE meets P2PLAB_RING_ALIGN */
	BUILD_BUG_ON(PAGE_SIZE % P2PLAB_RING_ALIGN);
	pd->ring = dma_alloc_coherent(dev, pd->ring_size * sizeof(*pd->ring), &pd->ring_dma,
				      GFP_KERNEL);
	if (!pd->ring) {
		ret = -ENOMEM;
		goto err_unmap_mem;
	}
	pd->ring_owned = bitmap_zalloc(pd->ring_size, GFP_KERNEL);
	if (!pd->ring_owned) {
		ret = -ENOMEM;
		goto err_free_ring;
	}
	ret = p2plab_setup_irqs(pd);
	if (ret) {
		dev_err(dev, "no interrupts: %d\n", ret);
		goto err_free_owned;
	}
	mutex_lock(&pd->dma_lock);
	ret = p2plab_engine_reset(pd);
	mutex_unlock(&pd->dma_lock);
	if (ret) {
		dev_err(dev, "engine start failed: %d\n", ret);
		goto err_teardown_irqs;
	}
	pd->cnt.resets = 0;	/* the initial reset does not count */

	ret = ida_alloc(&p2plab_ida, GFP_KERNEL);
	if (ret < 0)
		goto err_stop_engine;
	pd->id = ret;
	snprintf(pd->name, sizeof(pd->name), "p2plab%d", pd->id);

	/* P2PDMA provider: the whole BAR2 is a provider (bus_offset), [0, p2p_size) gets pages */
	ret = pcim_p2pdma_init(pdev);
	if (ret) {
		dev_warn(dev, "P2PDMA unavailable (%d): no p2pmem, peers cannot target this BAR\n",
			 ret);
		pd->p2p_size = 0;
		pd->priv_off = 0;
		pd->priv_size = pd->mem_size;
	} else {
		pd->provider = pcim_p2pdma_provider(pdev, P2PLAB_BAR_MEM);
	}
	if (pd->p2p_size) {
		/* devm: undone by the driver core after remove() / a failed probe */
		ret = pci_p2pdma_add_resource(pdev, P2PLAB_BAR_MEM, pd->p2p_size, 0);
		if (ret) {
			dev_err(dev, "pci_p2pdma_add_resource(%#llx) failed: %d\n",
				(u64)pd->p2p_size, ret);
			goto err_free_id;
		}
	}

	p2plab_carve_svm_devmem(pd);
	ret = p2plab_hmm_probe(pd);
	if (ret) {
		dev_err(dev, "HMM setup failed: %d\n", ret);
		goto err_free_id;
	}
	ret = p2plab_svm_probe(pd);	/* 1.1 device MMU; no-op on a 1.0 device */
	if (ret)
		dev_warn(dev, "SVM setup failed (%d): no SVM on this device\n", ret);
	if (pd->p2p_size) {
		pci_p2pmem_publish(pdev, true);
		pd->p2pmem_published = true;
	}

	pd->dbg = debugfs_create_dir(pd->name, p2plab_dbg_root);
	debugfs_create_file("state", 0444, pd->dbg, pd, &p2plab_dbg_fops);
	p2plab_svm_debugfs(pd, pd->dbg);	/* "svm": contexts, submissions, placement */

	mutex_lock(&p2plab_devs_lock);
	list_add_tail(&pd->node, &p2plab_devs);
	mutex_unlock(&p2plab_devs_lock);

	ret = p2plab_cdev_register(pd);
	if (ret) {
		dev_err(dev, "cannot register /dev/%s: %d\n", pd->name, ret);
		goto err_unlist;
	}

	dev_info(dev, "%s: BAR2 %pa size %#llx, p2pmem %#llx, private %#llx@%#llx, ring %u, %s, caps %#x\n",
		 pd->name, &pd->mem_phys, (u64)pd->mem_size, (u64)pd->p2p_size,
		 (u64)pd->priv_size, (u64)pd->priv_off, pd->ring_size,
		 pd->irq_mode == P2PLAB_IRQ_MSIX ? "MSI-X" : "INTx", pd->caps);
	return 0;

err_unlist:
	mutex_lock(&p2plab_devs_lock);
	list_del_init(&pd->node);
	mutex_unlock(&p2plab_devs_lock);
	debugfs_remove_recursive(pd->dbg);
	if (pd->p2pmem_published)
		pci_p2pmem_publish(pdev, false);
	p2plab_svm_remove(pd);
	p2plab_hmm_remove(pd);
err_free_id:
	ida_free(&p2plab_ida, pd->id);
err_stop_engine:
	p2plab_engine_stop(pd);
err_teardown_irqs:
	p2plab_teardown_irqs(pd);
err_free_owned:
	bitmap_free(pd->ring_owned);
	pd->ring_owned = NULL;
err_free_ring:
	dma_free_coherent(dev, pd->ring_size * sizeof(*pd->ring), pd->ring, pd->ring_dma);
	pd->ring = NULL;
err_unmap_mem:
	pci_iounmap(pdev, pd->mem);
err_unmap_regs:
	pci_iounmap(pdev, pd->regs);
err_release_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_put:
	pci_set_drvdata(pdev, NULL);
	p2plab_put(pd);
	return ret;
}

/* wake every DMA waiter of every device: their user requests re-check p2plab_user_abort() */
static void p2plab_wake_all(void)
{
	struct p2plab_dev *d;

	mutex_lock(&p2plab_devs_lock);
	list_for_each_entry(d, &p2plab_devs, node)
		wake_up_all(&d->wq);
	mutex_unlock(&p2plab_devs_lock);
}

/*
 * Removal never waits for userspace: open file descriptors keep the struct (kref) but not the
 * hardware. Order: mark removing (new ioctls, reads and writes, and opens get -ENODEV; user DMA
 * in flight on this device, or on a peer copying to/from it, aborts with an engine reset), drop
 * the character device and the list entry, wait for the (now short) in-flight calls to leave,
 * then HMM teardown with the engine still running, then the hardware.
 */
static void p2plab_remove(struct pci_dev *pdev)
{
	struct p2plab_dev *pd = pci_get_drvdata(pdev);

	WRITE_ONCE(pd->removing, true);
	wake_up_all(&pd->wq);
	p2plab_wake_all();		/* peers copying to or from this device */

	p2plab_cdev_unregister(pd);	/* no new opens; open fds keep pd (kref) */
	mutex_lock(&p2plab_devs_lock);
	list_del_init(&pd->node);	/* no new peer lookups */
	mutex_unlock(&p2plab_devs_lock);

	/* in-flight cdev calls and peer uses leave quickly now (they abort) */
	down_write(&pd->active);
	up_write(&pd->active);

	/* SVM contexts go first: their DMA mappings, notifiers and the fault ring */
	p2plab_svm_remove(pd);
	/* HMM: evicts device-private pages to RAM while the DMA engine still works */
	p2plab_hmm_remove(pd);

	if (pd->p2pmem_published)
		pci_p2pmem_publish(pdev, false);
	debugfs_remove_recursive(pd->dbg);

	mutex_lock(&pd->dma_lock);
	p2plab_engine_stop(pd);
	mutex_unlock(&pd->dma_lock);
	/*
	 * Not under dma_lock: pci_irq_vector()/free_irq() take the MSI domain's mutex, which allocates
	 * (fs_reclaim -> mmu notifiers -> dmirror->mutex, which is held around DMA runs that take
	 * dma_lock): lockdep's "possible circular locking dependency" on hot-unplug (debug kernel,
	 * docs/debug-kernel.md). Every user of the engine is gone by now (ioctls, HMM, SVM).
	 */
	p2plab_teardown_irqs(pd);
	mutex_lock(&pd->dma_lock);
	dma_free_coherent(&pdev->dev, pd->ring_size * sizeof(*pd->ring), pd->ring, pd->ring_dma);
	pd->ring = NULL;
	bitmap_free(pd->ring_owned);	/* no unlocked submission is left: SVM went first */
	pd->ring_owned = NULL;
	mutex_unlock(&pd->dma_lock);

	ida_free(&p2plab_ida, pd->id);
	pci_iounmap(pdev, pd->mem);
	pci_iounmap(pdev, pd->regs);
	pd->regs = NULL;
	pd->mem = NULL;
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	pci_set_drvdata(pdev, NULL);
	dev_info(&pdev->dev, "%s removed\n", pd->name);
	p2plab_put(pd);
}

static const struct pci_device_id p2plab_ids[] = {
	{ PCI_DEVICE(P2PLAB_VENDOR_ID, P2PLAB_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, p2plab_ids);

static struct pci_driver p2plab_driver = {
	.name = P2PLAB_DRV_NAME,
	.id_table = p2plab_ids,
	.probe = p2plab_probe,
	.remove = p2plab_remove,
};

static int __init p2plab_init(void)
{
	int ret;

	p2plab_dbg_root = debugfs_create_dir(P2PLAB_DRV_NAME, NULL);
	ret = p2plab_hmm_init();
	if (ret)
		goto err_debugfs;
	ret = pci_register_driver(&p2plab_driver);
	if (ret)
		goto err_hmm_exit;
	return 0;

err_hmm_exit:
	p2plab_hmm_exit();
err_debugfs:
	debugfs_remove_recursive(p2plab_dbg_root);
	return ret;
}

static void __exit p2plab_exit(void)
{
	pci_unregister_driver(&p2plab_driver);
	p2plab_hmm_exit();
	debugfs_remove_recursive(p2plab_dbg_root);
	ida_destroy(&p2plab_ida);
}

module_init(p2plab_init);
module_exit(p2plab_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("p2plab: emulated PCIe DMA engine for HMM and PCI P2PDMA experiments");
MODULE_AUTHOR("p2plab");
