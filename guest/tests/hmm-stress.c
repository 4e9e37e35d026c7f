// SPDX-License-Identifier: GPL-2.0
/*
 * hmm-stress - seeded stress of HMM migration, mirroring and exclusive access on p2plab devices
 * (dmirror uAPI of p2plab.ko, p2plab.dmirror=1) racing munmap/mremap, mprotect, fork, MADV_DONTNEED,
 * MADV_COLLAPSE and MADV_PAGEOUT on the same memory.  docs/hmm.md "Stress".
 *
 *   hmm-stress [--seed N] [--seconds S] [--iters N] [--slots K] [--threads T]
 *              [--hang-ms M] [--allow-unplug] [--quiet] [--without OP[,OP...]]
 *
 * Memory: K slots of 2 MiB (2 MiB aligned; even slots MADV_HUGEPAGE, odd MADV_NOHUGEPAGE). Every
 * page of a slot holds a pattern derived from (slot, page, generation): whoever reads it (the CPU,
 * a device through its mirror, the data a migration or exclusive access returns, a forked child)
 * checks every word. Operations that keep the contents (migrations both ways, mirror reads,
 * snapshots, exclusive access, CPU reads, fork + child verification and COW writes,
 * MADV_COLLAPSE, MADV_PAGEOUT) run concurrently on a slot under its read lock, so the kernel paths
 * race each other on the same pages; operations that change or move the contents (CPU writes,
 * device writes, MADV_DONTNEED, mremap away and back, an mprotect(PROT_READ) window) take the
 * slot's write lock and set its new expected generation.
 *
 * Fails (exit 1) on any data mismatch, any errno outside the expected set of its operation, and
 * (exit 2) when a thread makes no progress for --hang-ms (a hang, reported with the operation).
 * Kernel splats are the controller's (end-of-case kernel log). Reproducible: the same seed gives
 * every thread the same sequence of operations (timing, and so the interleaving, varies).
 * Prints one "STRESS ..." summary line: iterations, operations per second, failures, and the
 * count of each expected error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmirror-lib.h"	/* dm_open(), dm_cmd(); the kernel's lib/test_hmm_uapi.h */

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE	25
#endif
#ifndef MADV_PAGEOUT
#define MADV_PAGEOUT	21
#endif

#define PAGE		4096UL
#define SLOT_SIZE	(2UL << 20)
#define SLOT_PAGES	(SLOT_SIZE / PAGE)
#define MAX_SLOTS	64
#define MAX_THREADS	16
#define NDEV		4		/* /dev/hmm_dmirror0..3 */

enum op {
	OP_TO_DEV, OP_TO_SYS, OP_MIRROR_READ, OP_SNAPSHOT, OP_EXCLUSIVE, OP_CPU_READ, OP_FORK,
	OP_COLLAPSE, OP_PAGEOUT,			/* shared: contents kept */
	OP_CPU_WRITE, OP_DEV_WRITE, OP_DONTNEED, OP_MREMAP, OP_MPROTECT,	/* exclusive */
	OP_NR
};
static const char *const op_name[OP_NR] = {
	"migrate-to-dev", "migrate-to-sys", "mirror-read", "snapshot", "exclusive", "cpu-read",
	"fork", "collapse", "pageout", "cpu-write", "dev-write", "dontneed", "mremap", "mprotect",
};
/* relative weights (--without NAME,... sets some to 0) */
static int op_weight[OP_NR] = { 6, 6, 5, 3, 3, 5, 1, 1, 1, 2, 2, 1, 1, 1 };

struct slot {
	pthread_rwlock_t lock;
	char *addr;
	uint32_t gen;		/* expected contents; 0 = zero-filled */
};

static struct slot slots[MAX_SLOTS];
static char *spare;		/* mremap target area, one slot per slot */
static int nslots = 8, nthreads = 4, quiet;
static unsigned long seed = 1, max_iters, seconds = 30, hang_ms = 60000;
static int allow_unplug;
static int dev_fd[NDEV] = { -1, -1, -1, -1 };
static atomic_int dev_dead[NDEV];
static atomic_int failed;
static atomic_ulong ops_done, iters_done;
static atomic_ulong expected_err[OP_NR][4];	/* EBUSY, ENOENT, ENODEV, other-accepted */
static atomic_ulong op_count[OP_NR];
static atomic_ulong known_finding;	/* snapshot ERROR on a foreign device-private THP */
/* the default operation set of make test leaves these out: docs/hmm.md "Stress" (open Oops) */
static double t_start;

struct worker {
	pthread_t tid;
	int idx;
	uint64_t rng;
	atomic_ulong last_progress_ms;
	atomic_int cur_op, cur_slot;
	char *buf;		/* SLOT_SIZE scratch (mirror data) */
};
static struct worker workers[MAX_THREADS];

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long now_ms(void)
{
	return (unsigned long)(now_s() * 1000);
}

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* expected 32-bit word @w of page @p of slot @sl at generation @gen */
static inline uint32_t pattern(int sl, unsigned long p, uint32_t gen, unsigned long w)
{
	uint32_t x;

	if (!gen)
		return 0;
	x = (uint32_t)(sl * 0x9e3779b1u) ^ (uint32_t)(p * 0x85ebca6bu) ^ (gen * 0xc2b2ae35u);
	return x ^ (uint32_t)(w * 0x27d4eb2fu) ^ (uint32_t)w;
}

static void fill_slot(char *dst, int sl, uint32_t gen)
{
	uint32_t *d = (uint32_t *)dst;
	unsigned long p, w;

	for (p = 0; p < SLOT_PAGES; p++)
		for (w = 0; w < PAGE / 4; w++)
			d[p * (PAGE / 4) + w] = pattern(sl, p, gen, w);
}

/* -1 if @src matches the slot's generation, else the first bad page */
static long check_slot(const char *src, int sl, uint32_t gen, unsigned long npages)
{
	const uint32_t *s = (const uint32_t *)src;
	unsigned long p, w;

	for (p = 0; p < npages; p++)
		for (w = 0; w < PAGE / 4; w++)
			if (s[p * (PAGE / 4) + w] != pattern(sl, p, gen, w))
				return p;
	return -1;
}

/* what page @p of @src holds: the generation it matches (-1 none), and how many pages are bad */
static void describe_bad(const char *src, int sl, uint32_t gen, long p, char *out, size_t n)
{
	const uint32_t *w = (const uint32_t *)(src + p * PAGE);
	long bad = 0, q;
	int g, match = -1;

	for (q = p; q < (long)SLOT_PAGES; q++)
		for (unsigned long x = 0; x < PAGE / 4; x++)
			if (((const uint32_t *)(src + q * PAGE))[x] != pattern(sl, q, gen, x)) {
				bad++;
				break;
			}
	for (g = 0; g < (int)gen + 4 && match < 0; g++) {
		unsigned long x;

		for (x = 0; x < PAGE / 4 && w[x] == pattern(sl, p, g, x); x++)
			;
		if (x == PAGE / 4)
			match = g;
	}
	if (match < 0) {
		/* another page's contents? (a wrong address) */
		for (q = 0; q < (long)SLOT_PAGES && match < 0; q++)
			if (w[0] == pattern(sl, q, gen, 0) && w[1] == pattern(sl, q, gen, 1))
				match = 1000000 + q;
	}
	snprintf(out, n, "first word %#x (expected %#x), holds %s%d, %ld bad pages from it",
		 w[0], pattern(sl, p, gen, 0),
		 match < 0 ? "unknown " : match >= 1000000 ? "page " : "generation ",
		 match >= 1000000 ? match - 1000000 : match, bad);
}

static void fail(struct worker *wk, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct worker *wk, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&failed, 1);
	flockfile(stdout);
	printf("FAIL seed=%lu thread=%d op=%s slot=%d: ", seed, wk ? wk->idx : -1,
	       wk ? op_name[atomic_load(&wk->cur_op)] : "-", wk ? atomic_load(&wk->cur_slot) : -1);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	funlockfile(stdout);
}

/* a live device mirror, chosen by the worker's RNG; -1 if none is left */
static int pick_dev(struct worker *wk)
{
	int i, d = rnd(&wk->rng) % NDEV;

	for (i = 0; i < NDEV; i++, d = (d + 1) % NDEV)
		if (dev_fd[d] >= 0 && !atomic_load(&dev_dead[d]))
			return d;
	return -1;
}

/*
 * Classify a dmirror ioctl result: 0 = fine, 1 = an expected error (counted), -1 = a failure.
 * @extra is one more errno this operation may legitimately return.
 */
static int classify(struct worker *wk, enum op op, int dev, int ret, int extra)
{
	if (!ret)
		return 0;
	if (ret == -EBUSY) {
		atomic_fetch_add(&expected_err[op][0], 1);
		return 1;
	}
	if (ret == -ENOENT && (op == OP_TO_DEV || op == OP_TO_SYS || op == OP_EXCLUSIVE)) {
		atomic_fetch_add(&expected_err[op][1], 1);
		return 1;
	}
	if (ret == -ENODEV && allow_unplug) {
		atomic_store(&dev_dead[dev], 1);
		atomic_fetch_add(&expected_err[op][2], 1);
		return 1;
	}
	if (extra && ret == -extra) {
		atomic_fetch_add(&expected_err[op][3], 1);
		return 1;
	}
	fail(wk, "hmm_dmirror%d: %s", dev, strerror(-ret));
	return -1;
}

static void op_shared(struct worker *wk, enum op op, int sl)
{
	struct slot *s = &slots[sl];
	unsigned long npages = SLOT_PAGES;
	struct hmm_dmirror_cmd c;
	int dev, ret, r;
	long bad;
	pid_t pid;

	switch (op) {
	case OP_TO_DEV:
	case OP_MIRROR_READ:
	case OP_EXCLUSIVE:
		dev = pick_dev(wk);
		if (dev < 0)
			return;
		ret = dm_cmd(dev_fd[dev], op == OP_TO_DEV ? HMM_DMIRROR_MIGRATE_TO_DEV :
			     op == OP_MIRROR_READ ? HMM_DMIRROR_READ : HMM_DMIRROR_EXCLUSIVE,
			     s->addr, wk->buf, npages, &c);
		r = classify(wk, op, dev, ret, 0);
		/* the data the device read (a migration returns it, as test_hmm does) */
		if (r == 0 && (bad = check_slot(wk->buf, sl, s->gen, npages)) >= 0) {
			char why[160];

			describe_bad(wk->buf, sl, s->gen, bad, why, sizeof(why));
			fail(wk, "hmm_dmirror%d returned wrong data at page %ld (gen %u): %s", dev,
			     bad, s->gen, why);
		}
		break;
	case OP_TO_SYS:
		dev = pick_dev(wk);
		if (dev < 0)
			return;
		ret = dm_cmd(dev_fd[dev], HMM_DMIRROR_MIGRATE_TO_SYS, s->addr, wk->buf, npages, &c);
		classify(wk, op, dev, ret, 0);
		break;
	case OP_SNAPSHOT:
		dev = pick_dev(wk);
		if (dev < 0)
			return;
		ret = dm_cmd(dev_fd[dev], HMM_DMIRROR_SNAPSHOT, s->addr, wk->buf, npages, &c);
		if (classify(wk, op, dev, ret, 0) == 0) {
			for (unsigned long i = 0; i < npages; i++) {
				if ((unsigned char)wk->buf[i] != HMM_DMIRROR_PROT_ERROR)
					continue;
				/*
				 * Known kernel finding (docs/hmm.md "Findings"): a snapshot of a
				 * device-private THP of ANOTHER device reports HMM_PFN_ERROR
				 * (hmm_vma_handle_absent_pmd()), where a 4 KiB page reports 0.
				 * Counted, not a failure (MADV_COLLAPSE makes THPs in any slot).
				 */
				atomic_fetch_add(&known_finding, 1);
				break;
			}
		}
		break;
	case OP_CPU_READ:
		if ((bad = check_slot(s->addr, sl, s->gen, npages)) >= 0) {
			char why[160];

			describe_bad(s->addr, sl, s->gen, bad, why, sizeof(why));
			fail(wk, "CPU read wrong data at page %ld (gen %u): %s", bad, s->gen, why);
		}
		break;
	case OP_FORK:
		pid = fork();
		if (pid < 0) {
			atomic_fetch_add(&expected_err[op][3], 1);	/* EAGAIN/ENOMEM */
			return;
		}
		if (!pid) {
			/* the child sees the parent's data, then its writes stay its own (COW) */
			if (check_slot(s->addr, sl, s->gen, npages) >= 0)
				_exit(3);
			fill_slot(s->addr, sl, s->gen + 0x10000);
			if (check_slot(s->addr, sl, s->gen + 0x10000, npages) >= 0)
				_exit(4);
			_exit(0);
		}
		for (unsigned long t = 0; ; t++) {
			int st;

			r = waitpid(pid, &st, WNOHANG);
			if (r == pid) {
				if (!WIFEXITED(st) || WEXITSTATUS(st))
					fail(wk, "fork child: %s %d (3 = saw wrong data, 4 = COW copy wrong)",
					     WIFEXITED(st) ? "exit" : "signal",
					     WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
				break;
			}
			if (t * 10 > hang_ms) {
				fail(wk, "fork child %d did not finish in %lu ms", pid, hang_ms);
				kill(pid, SIGKILL);
				waitpid(pid, &st, 0);
				break;
			}
			usleep(10000);
		}
		/* the parent's memory is untouched by the child's writes */
		if ((bad = check_slot(s->addr, sl, s->gen, npages)) >= 0)
			fail(wk, "parent data changed by the child at page %ld", bad);
		break;
	case OP_COLLAPSE:
		madvise(s->addr, SLOT_SIZE, MADV_COLLAPSE);	/* may fail: EAGAIN, EINVAL ... */
		break;
	case OP_PAGEOUT:
		madvise(s->addr, SLOT_SIZE, MADV_PAGEOUT);
		break;
	default:
		break;
	}
}

static void op_exclusive(struct worker *wk, enum op op, int sl)
{
	struct slot *s = &slots[sl];
	struct hmm_dmirror_cmd c;
	int dev, ret;
	long bad;
	char *p;

	switch (op) {
	case OP_CPU_WRITE:
		s->gen++;
		fill_slot(s->addr, sl, s->gen);
		break;
	case OP_DEV_WRITE:
		dev = pick_dev(wk);
		if (dev < 0)
			return;
		fill_slot(wk->buf, sl, s->gen + 1);
		ret = dm_cmd(dev_fd[dev], HMM_DMIRROR_WRITE, s->addr, wk->buf, SLOT_PAGES, &c);
		/*
		 * EFAULT: known kernel finding, REQ_WRITE answered with a read-only device-private
		 * page of the device's own after a fork (docs/hmm.md "Findings"); counted as
		 * "other" for dev-write.
		 */
		if (classify(wk, op, dev, ret, EFAULT) == 0) {
			s->gen++;
			if ((bad = check_slot(s->addr, sl, s->gen, SLOT_PAGES)) >= 0)
				fail(wk, "device write not seen by the CPU at page %ld", bad);
		} else {
			/* partly written: the CPU writes a known generation again */
			s->gen += 2;
			fill_slot(s->addr, sl, s->gen);
		}
		break;
	case OP_DONTNEED:
		if (madvise(s->addr, SLOT_SIZE, MADV_DONTNEED))
			fail(wk, "MADV_DONTNEED: %s", strerror(errno));
		s->gen = 0;
		break;
	case OP_MREMAP:
		/* away to the spare area and back: the contents move with the mapping */
		p = mremap(s->addr, SLOT_SIZE, SLOT_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED,
			   spare + (size_t)sl * SLOT_SIZE);
		if (p == MAP_FAILED) {
			fail(wk, "mremap away: %s", strerror(errno));
			break;
		}
		/* keep the hole reserved meanwhile, so no other mapping lands there */
		mmap(s->addr, SLOT_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if ((bad = check_slot(p, sl, s->gen, SLOT_PAGES)) >= 0)
			fail(wk, "data wrong after mremap at page %ld", bad);
		if (mremap(p, SLOT_SIZE, SLOT_SIZE, MREMAP_MAYMOVE | MREMAP_FIXED, s->addr) ==
		    MAP_FAILED) {
			fail(wk, "mremap back: %s", strerror(errno));
			break;
		}
		mmap(p, SLOT_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		break;
	case OP_MPROTECT:
		/* read-only window: reads and migrations still work, the data stays */
		if (mprotect(s->addr, SLOT_SIZE, PROT_READ)) {
			fail(wk, "mprotect(PROT_READ): %s", strerror(errno));
			break;
		}
		dev = pick_dev(wk);
		if (dev >= 0) {
			ret = dm_cmd(dev_fd[dev], HMM_DMIRROR_READ, s->addr, wk->buf, SLOT_PAGES, &c);
			if (classify(wk, op, dev, ret, 0) == 0 &&
			    (bad = check_slot(wk->buf, sl, s->gen, SLOT_PAGES)) >= 0)
				fail(wk, "mirror read under PROT_READ wrong at page %ld", bad);
			/* a device write must be refused: the mapping is read-only */
			ret = dm_cmd(dev_fd[dev], HMM_DMIRROR_WRITE, s->addr, wk->buf, 1, &c);
			if (ret != -EPERM && ret != -EFAULT && classify(wk, op, dev, ret, 0) != 1)
				fail(wk, "device write to a PROT_READ mapping: %d", ret);
		}
		if ((bad = check_slot(s->addr, sl, s->gen, SLOT_PAGES)) >= 0)
			fail(wk, "CPU read under PROT_READ wrong at page %ld", bad);
		if (mprotect(s->addr, SLOT_SIZE, PROT_READ | PROT_WRITE))
			fail(wk, "mprotect(RW): %s", strerror(errno));
		break;
	default:
		break;
	}
}

static int op_total;	/* sum of op_weight[], set before the workers start */

static enum op pick_op(struct worker *wk)
{
	int r = rnd(&wk->rng) % op_total, i;

	for (i = 0; i < OP_NR; i++) {
		if (r < op_weight[i])
			return i;
		r -= op_weight[i];
	}
	return OP_CPU_READ;
}

static void *worker_main(void *arg)
{
	struct worker *wk = arg;
	unsigned long it;

	for (it = 0; !max_iters || it < max_iters; it++) {
		enum op op = pick_op(wk);
		int sl = rnd(&wk->rng) % nslots;

		if (now_s() - t_start > seconds || atomic_load(&failed))
			break;
		atomic_store(&wk->cur_op, op);
		atomic_store(&wk->cur_slot, sl);
		if (op >= OP_CPU_WRITE) {
			pthread_rwlock_wrlock(&slots[sl].lock);
			op_exclusive(wk, op, sl);
		} else {
			pthread_rwlock_rdlock(&slots[sl].lock);
			op_shared(wk, op, sl);
		}
		pthread_rwlock_unlock(&slots[sl].lock);
		atomic_fetch_add(&op_count[op], 1);
		atomic_fetch_add(&ops_done, 1);
		atomic_store(&wk->last_progress_ms, now_ms());
	}
	atomic_fetch_add(&iters_done, it);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: hmm-stress [--seed N] [--seconds S] [--iters N] [--slots K] "
		"[--threads T] [--hang-ms M] [--allow-unplug] [--quiet] [--without OP,...]\n");
	exit(64);
}

int main(int argc, char **argv)
{
	int i, ndev = 0, done;
	char *area;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--allow-unplug"))
			allow_unplug = 1;
		else if (!strcmp(a, "--quiet"))
			quiet = 1;
		else if (!v)
			usage();
		else if (!strcmp(a, "--seed"))
			seed = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--seconds"))
			seconds = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--iters"))
			max_iters = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--slots"))
			nslots = atoi(v), i++;
		else if (!strcmp(a, "--threads"))
			nthreads = atoi(v), i++;
		else if (!strcmp(a, "--hang-ms"))
			hang_ms = strtoul(v, NULL, 0), i++;
		else if (!strcmp(a, "--without")) {
			char *list = strdup(v), *tok, *save = NULL;
			int k;

			for (tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
				if (!strcmp(tok, "none"))
					continue;
				for (k = 0; k < OP_NR && strcmp(tok, op_name[k]); k++)
					;
				if (k == OP_NR)
					usage();
				op_weight[k] = 0;
			}
			free(list);
			i++;
		}
		else
			usage();
	}
	if (nslots < 1 || nslots > MAX_SLOTS || nthreads < 1 || nthreads > MAX_THREADS || !seed)
		usage();
	for (i = 0; i < NDEV; i++) {
		char path[32];

		snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", i);
		dev_fd[i] = open(path, O_RDWR);
		ndev += dev_fd[i] >= 0;
	}
	if (!ndev) {
		printf("SKIP no /dev/hmm_dmirrorN (p2plab.dmirror=1)\n");
		return 4;
	}
	/* slots and their spare areas, 2 MiB aligned */
	area = mmap(NULL, (2 * nslots + 1) * SLOT_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED) {
		perror("mmap");
		return 1;
	}
	area = (char *)(((uintptr_t)area + SLOT_SIZE - 1) & ~(SLOT_SIZE - 1));
	/* the spare area stays reserved (PROT_NONE): mremap(MREMAP_FIXED) replaces it */
	spare = area + nslots * SLOT_SIZE;
	if (mmap(spare, nslots * SLOT_SIZE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
		 -1, 0) == MAP_FAILED) {
		perror("mmap spare");
		return 1;
	}
	for (i = 0; i < nslots; i++) {
		slots[i].addr = area + (size_t)i * SLOT_SIZE;
		pthread_rwlock_init(&slots[i].lock, NULL);
		madvise(slots[i].addr, SLOT_SIZE, i % 2 ? MADV_NOHUGEPAGE : MADV_HUGEPAGE);
		slots[i].gen = 1;
		fill_slot(slots[i].addr, i, 1);
	}
	for (i = 0; i < OP_NR; i++)
		op_total += op_weight[i];
	t_start = now_s();
	for (i = 0; i < nthreads; i++) {
		workers[i].idx = i;
		workers[i].rng = seed * 0x9e3779b97f4a7c15ULL + i * 0xbf58476d1ce4e5b9ULL + 1;
		workers[i].buf = malloc(SLOT_SIZE);
		atomic_store(&workers[i].last_progress_ms, now_ms());
		if (!workers[i].buf || pthread_create(&workers[i].tid, NULL, worker_main, &workers[i])) {
			perror("worker");
			return 1;
		}
	}
	/* the hang watchdog */
	do {
		usleep(200000);
		done = 1;
		for (i = 0; i < nthreads; i++) {
			if (!workers[i].tid)
				continue;	/* joined */
			if (pthread_tryjoin_np(workers[i].tid, NULL) == 0) {
				workers[i].tid = 0;
				continue;
			}
			done = 0;
			/* signed: the worker may have stamped its progress after now_ms() was read */
			if ((long)(now_ms() - atomic_load(&workers[i].last_progress_ms)) > (long)hang_ms) {
				printf("HUNG seed=%lu thread=%d op=%s slot=%d: no progress for %lu ms\n",
				       seed, i, op_name[atomic_load(&workers[i].cur_op)],
				       atomic_load(&workers[i].cur_slot), hang_ms);
				fflush(stdout);
				_exit(2);
			}
		}
	} while (!done);

	{
		double el = now_s() - t_start;
		unsigned long ops = atomic_load(&ops_done);

		printf("STRESS seed=%lu seconds=%.1f threads=%d slots=%d iterations=%lu ops=%lu "
		       "ops_per_s=%.1f failures=%d known_thp_snapshot_error=%lu\n", seed, el,
		       nthreads, nslots, atomic_load(&iters_done), ops, ops / el,
		       atomic_load(&failed), atomic_load(&known_finding));
		if (!quiet)
			for (i = 0; i < OP_NR; i++)
				printf("  %-15s %8lu  ebusy %lu enoent %lu enodev %lu other %lu\n",
				       op_name[i], atomic_load(&op_count[i]),
				       atomic_load(&expected_err[i][0]), atomic_load(&expected_err[i][1]),
				       atomic_load(&expected_err[i][2]), atomic_load(&expected_err[i][3]));
	}
	return atomic_load(&failed) ? 1 : 0;
}
