// SPDX-License-Identifier: GPL-2.0
/*
 * svm-tests - the device uses this process's memory by virtual address through its MMU; faults are
 * resolved by the kernel's HMM (kmod/p2plab_svm*.c, docs/svm.md). kselftest harness, one fixture
 * variant per backend (module parameter p2plab.svm_backend): a variant whose backend is not the
 * loaded one SKIPs.
 *
 *   svm-tests [harness options]         the suite (-t NAME, -v VARIANT, -l ...)
 *   svm-tests hold-munmap STATEFILE     helper for scenarios/svm/svm-qmp.yaml: a device read of a
 *                                       fresh buffer (its fault held by mmu-hold-faults), munmap()
 *                                       while held, "MUNMAPPED" written to STATEFILE; then waits
 *                                       for the copy: exit 0 iff it failed with EFAULT at the buffer
 *   svm-tests hold-others STATE GO      helper for svm-qmp.yaml: while one context's copy is parked
 *                                       on a held fault, another process's SVM copy and a physical
 *                                       copy must complete promptly; the first one completes with
 *                                       correct data once the hold is released (see hold_others())
 *   svm-tests hold-abort                helper for svm-qmp.yaml: copies parked on held faults end
 *                                       by their own timeout and by an engine reset (hold_abort())
 *
 * Environment: SVM_DEV=N (default 0): /dev/p2plabN. SVM_BENCH_MB (default 32): bench size.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/wait.h>
#include "p2plab-lib.h"
#include "kselftest_harness.h"

#define MB (1024ul * 1024)
#define TIMEOUT_MS 30000

static int svm_dev(void)
{
	const char *e = getenv("SVM_DEV");

	return e ? atoi(e) : 0;
}

static int svm_open_bind(struct p2plab_svm_bind *b)
{
	int fd = pl_open(svm_dev());

	if (fd < 0)
		return -errno;
	memset(b, 0, sizeof(*b));
	if (ioctl(fd, P2PLAB_IOC_SVM_BIND, b)) {
		int e = errno;

		close(fd);
		return -e;
	}
	return fd;
}

/* 0 or -errno; c filled (fault_va ...) */
static int svm_copy(int fd, uint64_t src, uint64_t dst, uint64_t len, uint32_t flags,
		    struct p2plab_svm_copy *c)
{
	struct p2plab_svm_copy l;

	if (!c)
		c = &l;
	memset(c, 0, sizeof(*c));
	c->src = src;
	c->dst = dst;
	c->len = len;
	c->flags = flags;
	c->timeout_ms = TIMEOUT_MS;
	return ioctl(fd, P2PLAB_IOC_SVM_COPY, c) ? -errno : 0;
}

#define VA2VA	(P2PLAB_SVM_SRC_VA | P2PLAB_SVM_DST_VA)
#define VA2DEV	(P2PLAB_SVM_SRC_VA | P2PLAB_SVM_DST_LOCAL)
#define DEV2VA	(P2PLAB_SVM_SRC_LOCAL | P2PLAB_SVM_DST_VA)

static int svm_atomic(int fd, void *va, uint32_t op, uint32_t size, uint64_t operand,
		      uint64_t compare, uint64_t *result)
{
	struct p2plab_svm_atomic a = {
		.va = (uintptr_t)va, .op = op, .size = size, .operand = operand,
		.compare = compare, .timeout_ms = TIMEOUT_MS,
	};
	int ret = ioctl(fd, P2PLAB_IOC_SVM_ATOMIC, &a) ? -errno : 0;

	if (result)
		*result = a.result;
	return ret;
}

static int svm_stats(int fd, struct p2plab_svm_stats *s)
{
	memset(s, 0, sizeof(*s));
	return ioctl(fd, P2PLAB_IOC_SVM_STATS, s) ? -errno : 0;
}

static void fill(void *p, size_t len, uint32_t seed)
{
	uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		w[i] = seed * 2654435761u + (uint32_t)i;
}

/* index of the first word that differs from the pattern, -1 if none */
static long check(const void *p, size_t len, uint32_t seed)
{
	const uint32_t *w = p;
	size_t i;

	for (i = 0; i < len / 4; i++)
		if (w[i] != seed * 2654435761u + (uint32_t)i)
			return i;
	return -1;
}

static long check_zero(const void *p, size_t len)
{
	const uint8_t *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return i;
	return -1;
}

static void *map_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

/* len bytes at a 2 MiB-aligned address */
static void *map_aligned(size_t len, size_t align)
{
	uint8_t *p = mmap(NULL, len + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	uintptr_t a;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + align - 1) & ~(align - 1);
	if (a > (uintptr_t)p)
		munmap(p, a - (uintptr_t)p);
	munmap((void *)(a + len), (uintptr_t)p + align - a);
	return (void *)a;
}

static bool thp_available(void)
{
	char buf[128] = "";
	int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY);

	if (fd < 0)
		return false;
	if (read(fd, buf, sizeof(buf) - 1) < 0)
		buf[0] = 0;
	close(fd);
	return strstr(buf, "[always]") || strstr(buf, "[madvise]");
}

FIXTURE(svm) {
	int fd;
	struct p2plab_svm_bind b;
	struct p2plab_info info;
	uint64_t win;		/* device memory usable as copy target: [0, win) */
};

FIXTURE_VARIANT(svm) {
	uint32_t backend;
	const char *name;
};

FIXTURE_VARIANT_ADD(svm, odp) {
	.backend = P2PLAB_SVM_BACKEND_ODP,
	.name = "odp",
};

FIXTURE_VARIANT_ADD(svm, gpusvm) {
	.backend = P2PLAB_SVM_BACKEND_GPUSVM,
	.name = "gpusvm",
};

FIXTURE_SETUP(svm)
{
	int fd;

	self->fd = -1;
	fd = pl_open(svm_dev());
	if (fd < 0)
		SKIP(return, "no /dev/p2plab%d", svm_dev());
	ASSERT_EQ(0, pl_info(fd, &self->info));
	close(fd);
	if (!(self->info.caps & P2PLAB_CAP_MMU))
		SKIP(return, "device without MMU (interface %#x)", self->info.if_version);
	fd = svm_open_bind(&self->b);
	if (fd == -EOPNOTSUPP)
		SKIP(return, "SVM backend not available (p2plab.svm_backend)");
	ASSERT_GE(fd, 0) TH_LOG("bind: %s", strerror(-fd));
	self->fd = fd;
	if (self->b.backend != variant->backend)
		SKIP(return, "backend %s not loaded (p2plab.svm_backend=%s selects it)",
		     variant->name, variant->name);
	self->win = (self->info.flags & P2PLAB_INFO_F_HMM) ? self->info.p2p_size
							   : self->info.mem_size;
	if (self->win > 512 * MB)
		self->win = 512 * MB;
}

FIXTURE_TEARDOWN(svm)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* first touch by the device: read of CPU-written malloc memory, write into untouched malloc */
TEST_F(svm, first_touch_malloc)
{
	size_t len = 1 * MB + 12345;
	uint8_t *src = malloc(len), *dst = malloc(len);
	struct p2plab_svm_stats s;
	struct p2plab_svm_copy c;

	ASSERT_NE(NULL, src);
	ASSERT_NE(NULL, dst);
	fill(src, len, 1);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)src, (uintptr_t)dst, len, VA2VA, &c));
	ASSERT_EQ(-1, check(dst, len & ~3ul, 1));
	ASSERT_EQ(0, svm_stats(self->fd, &s));
	ASSERT_GT(s.faults, 0);
	ASSERT_EQ(s.cancels, 0);
	ASSERT_EQ(s.faults, s.replays);
	TH_LOG("faults %llu pages %llu 4k %llu 2m %llu", (unsigned long long)s.faults,
	       (unsigned long long)s.fault_pages, (unsigned long long)s.pte_4k,
	       (unsigned long long)s.pte_2m);
	/* mapped now: the same copy takes no fault */
	memset(dst, 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)src, (uintptr_t)dst, len, VA2VA, &c));
	ASSERT_EQ(-1, check(dst, len & ~3ul, 1));
	free(src);
	free(dst);
}

/* anonymous mmap never touched by the CPU: device reads zeros, device writes are seen by the CPU */
TEST_F(svm, first_touch_anon)
{
	size_t len = 256 * 1024;
	uint8_t *a = map_anon(len), *b = map_anon(len), *pat = malloc(len);
	struct p2plab_svm_stats st;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(pat, len, 2);
	ASSERT_EQ(len, pwrite(self->fd, pat, len, 0));
	/* device read of untouched memory: zeros (the kernel's zero page or a fresh page) */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, NULL));
	ASSERT_EQ(len, pread(self->fd, pat, len, 0));
	ASSERT_EQ(-1, check_zero(pat, len));
	/* device write into untouched memory (after a device read mapped it read-only) */
	fill(pat, len, 3);
	ASSERT_EQ(len, pwrite(self->fd, pat, len, 0));
	ASSERT_EQ(0, svm_copy(self->fd, 0, (uintptr_t)a, len, DEV2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 3));
	ASSERT_EQ(0, svm_copy(self->fd, 0, (uintptr_t)b, len, DEV2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 3));
	ASSERT_EQ(0, svm_stats(self->fd, &st));
	printf("# faults %llu replays %llu replay_retries %u\n", (unsigned long long)st.faults,
	       (unsigned long long)st.replays, st.replay_retries);
	munmap(a, len);
	munmap(b, len);
	free(pat);
}

TEST_F(svm, first_touch_file)
{
	char path[] = "/tmp/svm-file-XXXXXX";
	size_t len = 128 * 1024;
	uint8_t *buf = malloc(len), *m, *back = malloc(len);
	int f = mkstemp(path);

	ASSERT_GE(f, 0);
	unlink(path);
	fill(buf, len, 4);
	ASSERT_EQ(len, pwrite(f, buf, len, 0));
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
	ASSERT_NE(MAP_FAILED, m);
	/* device read of the file pages (page cache) */
	memset(buf, 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)m, (uintptr_t)buf, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(buf, len, 4));
	/* device write into the shared mapping: seen through read() of the file */
	fill(buf, len, 5);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)buf, (uintptr_t)m, len, VA2VA, NULL));
	ASSERT_EQ(len, pread(f, back, len, 0));
	ASSERT_EQ(-1, check(back, len, 5));
	munmap(m, len);
	close(f);
	free(buf);
	free(back);
}

TEST_F(svm, first_touch_thp)
{
	size_t len = 4 * MB;
	uint8_t *a = map_aligned(len, 2 * MB), *b = malloc(len);
	struct p2plab_svm_stats s0, s1;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	if (!thp_available())
		SKIP(return, "transparent hugepages disabled");
	ASSERT_EQ(0, madvise(a, len, MADV_HUGEPAGE));
	fill(a, len, 6);		/* the CPU faults THPs in */
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 6));
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	TH_LOG("2 MiB leaves %llu, 4 KiB leaves %llu",
	       (unsigned long long)(s1.pte_2m - s0.pte_2m),
	       (unsigned long long)(s1.pte_4k - s0.pte_4k));
	ASSERT_GE(s1.pte_2m - s0.pte_2m, 1);
	/* device writes into the THP: the CPU sees them */
	fill(b, len, 7);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 7));
	munmap(a, len);
	free(b);
}

/* hugetlbfs memory (2 MiB pages): hmm_pfn_to_map_order() says PMD -> 2 MiB device leaves */
TEST_F(svm, first_touch_hugetlb)
{
	size_t len = 4 * MB;
	struct p2plab_svm_stats s0, s1;
	uint8_t *a, *b = malloc(len);
	FILE *f = fopen("/proc/sys/vm/nr_hugepages", "w");

	if (f) {
		fprintf(f, "8\n");
		fclose(f);
	}
	a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		 -1, 0);
	if (a == MAP_FAILED)
		SKIP(return, "no hugetlb pages (%s)", strerror(errno));
	ASSERT_NE(NULL, b);
	fill(b, len, 40);
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	/* first touch by the device: a write */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 40));
	memset(b, 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 40));
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	ASSERT_GE(s1.pte_2m - s0.pte_2m, 2);
	munmap(a, len);
	free(b);
}

/* a THP the device maps with one 2 MiB leaf loses one 4 KiB page (the CPU splits the PMD): the
 * device loses the whole leaf, faults the rest back in 4 KiB leaves, the hole cancels */
TEST_F(svm, thp_partial_munmap)
{
	size_t len = 2 * MB;
	uint8_t *a = map_aligned(len, 2 * MB), *b = malloc(len);
	struct p2plab_svm_stats s0, s1;
	struct p2plab_svm_copy c;

	ASSERT_NE(NULL, a);
	if (!thp_available())
		SKIP(return, "transparent hugepages disabled");
	ASSERT_EQ(0, madvise(a, len, MADV_HUGEPAGE));
	fill(a, len, 41);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 41));
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	ASSERT_EQ(0, munmap(a + MB, 4096));
	ASSERT_EQ(-EFAULT, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, &c));
	ASSERT_EQ((uintptr_t)a + MB, c.fault_va);
	memset(b, 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, MB, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, MB, 41));
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	ASSERT_GE(s1.invalidations - s0.invalidations, 1);
	munmap(a, MB);
	munmap(a + MB + 4096, MB - 4096);
	free(b);
}

struct churn {
	uint8_t *a;
	size_t len;
	volatile int stop;
	long rounds;
};

static void *cpu_churn(void *p)
{
	struct churn *c = p;

	while (!c->stop) {
		memset(c->a, 0x11, c->len);		/* CPU faults the pages in */
		madvise(c->a, c->len, MADV_DONTNEED);	/* and drops them: invalidations */
		c->rounds++;
	}
	return NULL;
}

/* CPU threads fault and drop the same pages while the device faults them: every device copy
 * completes (hmm_range_fault -EBUSY / read_retry loops), no livelock, no timeout */
TEST_F_TIMEOUT(svm, concurrent_cpu_faults, 300)
{
	struct churn c = { .len = 256 * 1024 };
	struct p2plab_svm_stats s;
	pthread_t t[2];
	int i;

	c.a = map_anon(c.len);
	ASSERT_NE(NULL, c.a);
	ASSERT_EQ(0, pthread_create(&t[0], NULL, cpu_churn, &c));
	ASSERT_EQ(0, pthread_create(&t[1], NULL, cpu_churn, &c));
	for (i = 0; i < 200; i++)
		ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)c.a, 0, c.len, VA2DEV, NULL));
	c.stop = 1;
	pthread_join(t[0], NULL);
	pthread_join(t[1], NULL);
	ASSERT_EQ(0, svm_stats(self->fd, &s));
	TH_LOG("cpu rounds %ld, faults %llu, retries %llu, notifier %llu", c.rounds,
	       (unsigned long long)s.faults, (unsigned long long)s.retries,
	       (unsigned long long)s.notifier_calls);
	ASSERT_EQ(0, s.cancels);
	munmap(c.a, c.len);
}

/*
 * P2P by VA: a VMA mapping a peer's p2pmem (mmap of its p2pmem/allocate). odp: the pages come from
 * hmm_range_fault() and hmm_dma_map_pfn() decides, as P2PLAB_IOC_P2P_QUERY (the kernel's verdict
 * for this pair) says: bus address / host bridge -> the copy works both ways; not supported -> the
 * fault is cancelled (EFAULT), nothing written. gpusvm: drm_gpusvm_get_pages() takes no
 * zone-device page that is not a drm_pagemap's (-EOPNOTSUPP): always EFAULT.
 */
TEST_F(svm, p2p_by_va)
{
	size_t len = 2 * MB;
	uint8_t *pat = malloc(len), *back = malloc(len);
	int ids[PL_MAX_DEVS], n = pl_list(ids), i, tried = 0;

	ASSERT_NE(NULL, pat);
	ASSERT_NE(NULL, back);
	if (len > self->win)
		SKIP(return, "device window too small");
	for (i = 0; i < n; i++) {
		struct p2plab_p2p_query q = { .peer_id = ids[i] };
		struct p2plab_info pi;
		struct p2plab_svm_copy c;
		int pfd, ffd, ret;
		uint8_t *m;

		if (ids[i] == (int)self->info.id)
			continue;
		ffd = pl_open(ids[i]);
		if (ffd < 0)
			continue;
		ASSERT_EQ(0, pl_info(ffd, &pi));
		close(ffd);
		if (!(pi.flags & P2PLAB_INFO_F_P2PMEM))
			continue;
		ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_P2P_QUERY, &q));
		m = pl_p2pmem_map(pi.pci_name, len, &pfd);
		if (!m)
			continue;
		tried++;
		fill(m, len, 60 + i);			/* CPU writes the peer's BAR */
		fill(pat, len, 70 + i);
		ASSERT_EQ(len, pwrite(self->fd, pat, len, 0));
		ret = svm_copy(self->fd, (uintptr_t)m, 0, len, VA2DEV, &c);
		printf("# p2p by VA: p2plab%u -> peer p2plab%d (%s) p2pmem: kernel verdict %s, "
		       "device read %s\n", self->info.id, ids[i], pi.pci_name,
		       pl_map_name(q.map_type), ret ? strerror(-ret) : "ok");
		if (variant->backend == P2PLAB_SVM_BACKEND_GPUSVM ||
		    q.map_type == P2PLAB_MAP_NOT_SUPPORTED) {
			EXPECT_EQ(-EFAULT, ret);
			EXPECT_EQ((uintptr_t)m, c.fault_va);
			ASSERT_EQ(len, pread(self->fd, back, len, 0));
			EXPECT_EQ(-1, check(back, len, 70 + i));	/* nothing written */
		} else {
			EXPECT_EQ(0, ret);
			ASSERT_EQ(len, pread(self->fd, back, len, 0));
			EXPECT_EQ(-1, check(back, len, 60 + i));
			/* and the device writes into the peer's BAR by VA */
			ASSERT_EQ(len, pwrite(self->fd, pat, len, 0));
			EXPECT_EQ(0, svm_copy(self->fd, 0, (uintptr_t)m, len, DEV2VA, NULL));
			EXPECT_EQ(-1, check(m, len, 70 + i));
		}
		munmap(m, len);
		close(pfd);
	}
	if (!tried)
		SKIP(return, "no peer with p2pmem");
	free(pat);
	free(back);
}

/* the dmirror uAPI (lib/test_hmm_uapi.h of Linux 7.3), /dev/hmm_dmirrorN of p2plab.dmirror=1:
 * 0/1 = device-private memory of p2plab0/1, 2/3 = device-coherent memory of p2plab0/1 */
struct svm_dmirror_cmd {
	__u64 addr, ptr, npages, cpages, faults;
};
#define SVM_DMIRROR_MIGRATE_TO_DEV	_IOWR('H', 0x02, struct svm_dmirror_cmd)

/* move [buf, buf + len) into memory of another p2plab through its dmirror node; 0 or -errno */
static int migrate_to_other(int node, void *buf, size_t len)
{
	void *back = malloc(len);	/* the ioctl copies the migrated data back here */
	struct svm_dmirror_cmd cmd = {
		.addr = (uintptr_t)buf, .ptr = (uintptr_t)back, .npages = len / 4096,
	};
	char path[64];
	int fd, ret;

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", node);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		free(back);
		return -errno;
	}
	ret = ioctl(fd, SVM_DMIRROR_MIGRATE_TO_DEV, &cmd) ? -errno : 0;
	if (!ret && cmd.cpages != cmd.npages)
		ret = -EAGAIN;
	close(fd);	/* the pages stay in device memory */
	free(back);
	return ret;
}

/*
 * Device memory of another p2plab in the process (HMM, p2plab_dmirror): the device reads it by VA.
 * Device-private pages of another owner: hmm_range_fault() (dev_private_owner = this device)
 * migrates them back to RAM through their owner, then the read is an ordinary one. Device-coherent
 * pages: CPU-addressable, returned as they are; odp maps them with hmm_dma_map_pfn() (the device
 * reads the other device's BAR). gpusvm with coherent pages: see svm-gpusvm-coherent.yaml (kernel
 * finding; only with SVM_GPUSVM_COHERENT=1).
 */
TEST_F_TIMEOUT(svm, foreign_device_pages, 120)
{
	size_t len = 256 * 1024;
	int other = self->info.id == 0 ? 1 : 0, kind, ret;

	if (self->info.id > 1)
		SKIP(return, "dmirror nodes exist for p2plab0/1 only");
	for (kind = 0; kind < 2; kind++) {
		int node = kind ? 2 + other : other;
		uint8_t *a = map_anon(len), *b = malloc(len);
		struct p2plab_svm_copy c;

		ASSERT_NE(NULL, a);
		ASSERT_NE(NULL, b);
		if (kind && variant->backend == P2PLAB_SVM_BACKEND_GPUSVM &&
		    !getenv("SVM_GPUSVM_COHERENT")) {
			printf("# coherent pages with gpusvm: not run (svm-gpusvm-coherent.yaml)\n");
			continue;
		}
		fill(a, len, 80 + kind);
		ret = migrate_to_other(node, a, len);
		if (ret == -ENOENT || ret == -ENODEV) {
			printf("# /dev/hmm_dmirror%d: %s, not tested\n", node, strerror(-ret));
			continue;
		}
		ASSERT_EQ(0, ret) TH_LOG("migrate to hmm_dmirror%d: %s", node, strerror(-ret));
		memset(b, 0, len);
		ret = svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, &c);
		printf("# %s pages of p2plab%d read by p2plab%u by VA: %s\n",
		       kind ? "device-coherent" : "device-private", other, self->info.id,
		       ret ? strerror(-ret) : "ok");
		ASSERT_EQ(0, ret);
		ASSERT_EQ(-1, check(b, len, 80 + kind));
		ASSERT_EQ(-1, check(a, len, 80 + kind));	/* the CPU's view */
		munmap(a, len);
		free(b);
	}
}

/* a VA with no VMA: the descriptor is cancelled, EFAULT with the address */
TEST_F(svm, fault_unmapped_efault)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len);
	struct p2plab_svm_copy c;
	struct p2plab_svm_stats s;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, munmap(a, len));
	ASSERT_EQ(-EFAULT, svm_copy(self->fd, (uintptr_t)a + 100, 0, 4096, VA2DEV, &c));
	ASSERT_EQ((uintptr_t)a + 100, c.fault_va);
	ASSERT_EQ(P2PLAB_FAULT_ACC_READ, c.fault_access);
	ASSERT_EQ(P2PLAB_ERR_MMU_FAULT, c.err_code);
	ASSERT_EQ(0, svm_stats(self->fd, &s));
	ASSERT_GE(s.cancels, 1);
	/* the context keeps working */
	a = map_anon(len);
	ASSERT_NE(NULL, a);
	ASSERT_EQ(0, svm_copy(self->fd, 0, (uintptr_t)a, len, DEV2VA, NULL));
	munmap(a, len);
}

/* munmap while the device has the range mapped: the notifier must take it away */
TEST_F(svm, invalidate_munmap)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len);
	struct p2plab_svm_copy c;

	ASSERT_NE(NULL, a);
	fill(a, len, 8);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, NULL));
	ASSERT_EQ(0, munmap(a, len));
	ASSERT_EQ(-EFAULT, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	ASSERT_EQ((uintptr_t)a, c.fault_va);
}

TEST_F(svm, invalidate_mprotect)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len), *b = malloc(len);
	struct p2plab_svm_copy c;

	ASSERT_NE(NULL, a);
	fill(b, len, 9);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 9));
	/* read-only: device writes cancelled, reads fine */
	ASSERT_EQ(0, mprotect(a, len, PROT_READ));
	ASSERT_EQ(-EFAULT, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a + 8192, 4096, VA2VA, &c));
	ASSERT_EQ((uintptr_t)a + 8192, c.fault_va);
	ASSERT_EQ(P2PLAB_FAULT_ACC_WRITE, c.fault_access);
	ASSERT_EQ(-1, check(a, len, 9));
	memset(b, 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 9));
	/* PROT_NONE: reads cancelled too */
	ASSERT_EQ(0, mprotect(a, len, PROT_NONE));
	ASSERT_EQ(-EFAULT, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, &c));
	ASSERT_EQ((uintptr_t)a, c.fault_va);
	ASSERT_EQ(P2PLAB_FAULT_ACC_READ, c.fault_access);
	/* writable again: works */
	ASSERT_EQ(0, mprotect(a, len, PROT_READ | PROT_WRITE));
	fill(b, len, 10);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 10));
	munmap(a, len);
	free(b);
}

/*
 * MADV_DONTNEED of a range the device has mapped (and cached in its TLB): the device must see the
 * new (zero) pages. With the device's mmu-ignore-inv knob (a TLB invalidation that drops nothing)
 * this test must FAIL: that is how the suite catches a stale TLB (scenarios/svm/svm-qmp.yaml).
 */
TEST_F(svm, stale_tlb_dontneed)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len), *b = malloc(len);
	long bad;

	ASSERT_NE(NULL, a);
	fill(a, len, 11);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 11));
	ASSERT_EQ(0, madvise(a, len, MADV_DONTNEED));
	ASSERT_EQ(-1, check_zero(a, len));	/* the CPU's view */
	memset(b, 0xa5, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	bad = check_zero(b, len);
	EXPECT_EQ(-1, bad) TH_LOG("device read stale data after MADV_DONTNEED at +%ld: %#x",
				  bad, bad >= 0 ? b[bad] : 0);
	munmap(a, len);
	free(b);
}

/* the device's writes are visible to the CPU at once, the CPU's to the device, many rounds */
TEST_F(svm, coherence_rounds)
{
	size_t len = 16 * 1024;
	uint32_t *a = map_anon(len), *b = malloc(len);
	int i;

	ASSERT_NE(NULL, a);
	for (i = 0; i < 50; i++) {
		fill(b, len, 100 + i);
		ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
		ASSERT_EQ(-1, check(a, len, 100 + i));	/* device write -> CPU */
		a[i] = 0xdead0000 + i;			/* CPU write -> device */
		ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
		ASSERT_EQ(0xdead0000 + i, b[i]);
	}
	munmap(a, len);
	free(b);
}

/* fork: the child is not bound (EPERM on the inherited fd); device writes after fork land in the
 * parent only (copy-on-write broken for the device), the child keeps the old data */
TEST_F(svm, fork_cow)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len), *b = malloc(len);
	int go[2], done[2], status;
	pid_t pid;
	char ch;

	ASSERT_NE(NULL, a);
	fill(a, len, 12);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(0, pipe(go));
	ASSERT_EQ(0, pipe(done));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		struct p2plab_svm_copy c;
		int r = 0;

		if (svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, &c) != -EPERM)
			r |= 1;
		if (read(go[0], &ch, 1) != 1)
			r |= 2;
		if (check(a, len, 12) != -1)	/* the parent's device write is not ours */
			r |= 4;
		_exit(r);
	}
	fill(b, len, 13);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(a, len, 13));
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	munmap(a, len);
	free(b);
}

TEST_F(svm, atomics_basic)
{
	uint64_t *p = map_anon(4096), r;

	ASSERT_NE(NULL, p);
	p[0] = 40;
	ASSERT_EQ(0, svm_atomic(self->fd, &p[0], P2PLAB_SVM_OP_FETCH_ADD, 8, 2, 0, &r));
	ASSERT_EQ(40, r);
	ASSERT_EQ(42, p[0]);
	ASSERT_EQ(0, svm_atomic(self->fd, &p[0], P2PLAB_SVM_OP_CMPXCHG, 8, 7, 42, &r));
	ASSERT_EQ(42, r);
	ASSERT_EQ(7, p[0]);
	ASSERT_EQ(0, svm_atomic(self->fd, &p[0], P2PLAB_SVM_OP_CMPXCHG, 8, 9, 42, &r));
	ASSERT_EQ(7, r);
	ASSERT_EQ(7, p[0]);
	((uint32_t *)p)[3] = 0xffffffff;
	ASSERT_EQ(0, svm_atomic(self->fd, (uint32_t *)p + 3, P2PLAB_SVM_OP_FETCH_ADD, 4, 1, 0, &r));
	ASSERT_EQ(0xffffffff, r);
	ASSERT_EQ(0, ((uint32_t *)p)[3]);
	ASSERT_EQ(7, p[0]);		/* neighbours untouched */
	ASSERT_EQ(-EINVAL, svm_atomic(self->fd, (uint8_t *)p + 1, P2PLAB_SVM_OP_FETCH_ADD, 4, 1,
				      0, &r));
	/* read-only memory: cancelled (odp: make_device_exclusive() refuses; gpusvm: the
	 * range cannot be mirrored writable) */
	ASSERT_EQ(0, mprotect(p, 4096, PROT_READ));
	ASSERT_EQ(-EFAULT, svm_atomic(self->fd, &p[1], P2PLAB_SVM_OP_FETCH_ADD, 8, 1, 0, &r));
	munmap(p, 4096);
}

/* device and CPU take turns on one counter: every CPU touch revokes the device's exclusive access
 * (the notifier clears the device PTE), so every device atomic faults and takes it again */
TEST_F(svm, atomics_revoke)
{
	uint64_t *p = map_anon(4096);
	struct p2plab_svm_stats s0, s1;
	int i, n = 20;

	ASSERT_NE(NULL, p);
	p[0] = 0;
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	for (i = 0; i < n; i++) {
		ASSERT_EQ(0, svm_atomic(self->fd, &p[0], P2PLAB_SVM_OP_FETCH_ADD, 8, 1, 0, NULL));
		__atomic_fetch_add(&p[0], 1, __ATOMIC_SEQ_CST);
	}
	ASSERT_EQ(2 * n, p[0]);
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	if (variant->backend == P2PLAB_SVM_BACKEND_ODP) {	/* odp: make_device_exclusive() */
		ASSERT_EQ(n, s1.exclusive - s0.exclusive);
		ASSERT_GE(s1.notifier_calls - s0.notifier_calls, n - 1);
	}
	munmap(p, 4096);
}

struct cpu_adder {
	volatile uint64_t *ctr;
	volatile int stop;
	long n;
};

static void *cpu_add(void *arg)
{
	struct cpu_adder *c = arg;

	while (!c->stop) {
		__atomic_fetch_add(c->ctr, 1, __ATOMIC_SEQ_CST);
		c->n++;
	}
	return NULL;
}

/* device and CPU increment one counter concurrently: no update lost (make_device_exclusive,
 * revoked by every CPU touch through the notifier) */
TEST_F_TIMEOUT(svm, atomics_concurrent_cpu, 300)
{
	uint64_t *p = map_anon(4096);
	struct cpu_adder ca = { 0 };
	struct p2plab_svm_stats s;
	long dev_n = 400, i;
	pthread_t t;

	ASSERT_NE(NULL, p);
	p[0] = 0;
	ca.ctr = &p[0];
	ASSERT_EQ(0, pthread_create(&t, NULL, cpu_add, &ca));
	while (!ca.n)
		usleep(1000);
	for (i = 0; i < dev_n; i++)
		ASSERT_EQ(0, svm_atomic(self->fd, &p[0], P2PLAB_SVM_OP_FETCH_ADD, 8, 1, 0, NULL));
	ca.stop = 1;
	pthread_join(t, NULL);
	ASSERT_EQ(ca.n + dev_n, p[0]);
	ASSERT_EQ(0, svm_stats(self->fd, &s));
	printf("# atomics: cpu %ld + device %ld increments, exact; device exclusive takes %llu, "
	       "faults %llu, notifier clears %llu\n", ca.n, dev_n, (unsigned long long)s.exclusive,
	       (unsigned long long)s.faults, (unsigned long long)s.notifier_calls);
	if (variant->backend == P2PLAB_SVM_BACKEND_ODP)
		ASSERT_GE(s.exclusive, 1);
	munmap(p, 4096);
}

struct thr_arg {
	int fd, id, fails;
};

static void *thr_copies(void *p)
{
	struct thr_arg *t = p;
	size_t len = 128 * 1024;
	int k;

	for (k = 0; k < 10; k++) {
		uint8_t *a = map_anon(len), *c = map_anon(len);

		fill(a, len, 5000 + 100 * t->id + k);
		if (svm_copy(t->fd, (uintptr_t)a, (uintptr_t)c, len, VA2VA, NULL) ||
		    check(c, len, 5000 + 100 * t->id + k) != -1)
			t->fails++;
		munmap(a, len);
		munmap(c, len);
	}
	return NULL;
}

/* several threads of one process submit on the same context at once (and map/unmap meanwhile) */
TEST_F_TIMEOUT(svm, multi_thread, 300)
{
	struct thr_arg t[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		t[i].fd = self->fd;
		t[i].id = i;
		t[i].fails = 0;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, thr_copies, &t[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, t[i].fails);
	}
}

/* atomics on a THP: make_device_exclusive() on a PMD-mapped folio (odp), a 2 MiB range (gpusvm) */
TEST_F(svm, atomics_thp)
{
	size_t len = 2 * MB;
	uint64_t *p = map_aligned(len, 2 * MB), r;
	size_t i;

	ASSERT_NE(NULL, p);
	if (!thp_available())
		SKIP(return, "transparent hugepages disabled");
	ASSERT_EQ(0, madvise(p, len, MADV_HUGEPAGE));
	for (i = 0; i < len / 8; i++)
		p[i] = i;
	for (i = 0; i < len / 8; i += 4096 / 8 * 37) {
		int ret = svm_atomic(self->fd, &p[i], P2PLAB_SVM_OP_FETCH_ADD, 8, 1000, 0, &r);
		struct p2plab_svm_stats s;

		if (ret) {
			svm_stats(self->fd, &s);
			printf("# atomic at +%zu: %s; retries %llu, exclusive %llu\n", i * 8,
			       strerror(-ret), (unsigned long long)s.retries,
			       (unsigned long long)s.exclusive);
		}
		ASSERT_EQ(0, ret);
		ASSERT_EQ(i, r);
	}
	for (i = 0; i < len / 8; i++)
		ASSERT_EQ(i % (4096 / 8 * 37) ? i : i + 1000, p[i]);
	munmap(p, len);
}

/* several processes, each with its own context on the same device, at once */
TEST_F_TIMEOUT(svm, multi_process, 300)
{
	int n = 4, i, status, fails = 0;
	pid_t pids[4];

	for (i = 0; i < n; i++) {
		pids[i] = fork();
		ASSERT_GE(pids[i], 0);
		if (pids[i] == 0) {
			struct p2plab_svm_bind b;
			size_t len = 512 * 1024;
			uint8_t *a, *c;
			int fd = svm_open_bind(&b), k;

			if (fd < 0)
				_exit(10);
			a = map_anon(len);
			c = malloc(len);
			for (k = 0; k < 5; k++) {
				fill(a, len, 1000 * i + k);
				memset(c, 0, len);
				if (svm_copy(fd, (uintptr_t)a, (uintptr_t)c, len, VA2VA, NULL))
					_exit(11);
				if (check(c, len, 1000 * i + k) != -1)
					_exit(12);
			}
			_exit(0);
		}
	}
	for (i = 0; i < n; i++) {
		ASSERT_EQ(pids[i], waitpid(pids[i], &status, 0));
		if (!WIFEXITED(status) || WEXITSTATUS(status)) {
			TH_LOG("child %d: status %#x", i, status);
			fails++;
		}
	}
	ASSERT_EQ(0, fails);
}

/* an engine reset (CTRL.RESET clears the MMU registers) is followed by the fault ring and the
 * context roots programmed again: faults keep working */
TEST_F(svm, engine_reset_restores)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len), *b = map_anon(len);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(a, len, 50);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len / 2, VA2VA, NULL));
	if (ioctl(self->fd, P2PLAB_IOC_RESET))
		SKIP(return, "P2PLAB_IOC_RESET: %s", strerror(errno));
	/* the mapped half, and the half that still faults */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 50));
	munmap(a, len);
	munmap(b, len);
}

TEST_F(svm, bad_requests)
{
	struct p2plab_svm_bind b = {};
	uint8_t buf[64];
	int fd2;

	ASSERT_EQ(-1, ioctl(self->fd, P2PLAB_IOC_SVM_BIND, &b));
	ASSERT_EQ(EBUSY, errno);
	ASSERT_EQ(-EINVAL, svm_copy(self->fd, (uintptr_t)buf, 0, 64,
				    P2PLAB_SVM_SRC_VA | P2PLAB_SVM_SRC_LOCAL | P2PLAB_SVM_DST_LOCAL,
				    NULL));
	ASSERT_EQ(-EINVAL, svm_copy(self->fd, 0, 0, 64,
				    P2PLAB_SVM_SRC_LOCAL | P2PLAB_SVM_DST_LOCAL, NULL));
	ASSERT_EQ(-EINVAL, svm_copy(self->fd, (uintptr_t)buf, 0, 0, VA2DEV, NULL));
	ASSERT_EQ(-ERANGE, svm_copy(self->fd, (uintptr_t)buf, self->info.mem_size, 64, VA2DEV,
				    NULL));
	ASSERT_EQ(-EINVAL, svm_copy(self->fd, 1ull << 48, 0, 64, VA2DEV, NULL));
	fd2 = pl_open(svm_dev());
	ASSERT_GE(fd2, 0);
	ASSERT_EQ(-1, ioctl(fd2, P2PLAB_IOC_SVM_UNBIND));
	ASSERT_EQ(ENOENT, errno);
	ASSERT_EQ(-ENOENT, svm_copy(fd2, (uintptr_t)buf, 0, 64, VA2DEV, NULL));
	close(fd2);
	/* unbind, then bind again on the same fd */
	ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_SVM_UNBIND));
	ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_SVM_BIND, &b));
	memset(buf, 0x5a, sizeof(buf));
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)buf, 0, sizeof(buf), VA2DEV, NULL));
}

/* ---- asynchronous submit + wait (P2PLAB_IOC_SVM_SUBMIT / _WAIT) ---- */

/* seq (> 0) or -errno */
static int64_t svm_submit(int fd, uint64_t src, uint64_t dst, uint64_t len, uint32_t flags)
{
	struct p2plab_svm_submit sb = {
		.copy = { .src = src, .dst = dst, .len = len, .flags = flags,
			  .timeout_ms = TIMEOUT_MS },
	};

	if (ioctl(fd, P2PLAB_IOC_SVM_SUBMIT, &sb))
		return -errno;
	return sb.seq;
}

/* 0 or -errno; w filled */
static int svm_wait(int fd, uint64_t seq, uint32_t timeout_ms, struct p2plab_svm_wait *w)
{
	struct p2plab_svm_wait l;

	if (!w)
		w = &l;
	memset(w, 0, sizeof(*w));
	w->seq = seq;
	w->timeout_ms = timeout_ms;
	return ioctl(fd, P2PLAB_IOC_SVM_WAIT, w) ? -errno : 0;
}

#define NASYNC 8

/* several copies in flight on one context, first touch each; fences in order; reaped once */
TEST_F_TIMEOUT(svm, async_submit_wait, 300)
{
	size_t len = 2 * MB + 4096 * 3;
	uint8_t *src[NASYNC], *dst[NASYNC];
	int64_t seq[NASYNC];
	struct p2plab_svm_wait w;
	double t0, t_sub, t_all;
	int i;

	for (i = 0; i < NASYNC; i++) {
		src[i] = malloc(len);
		dst[i] = malloc(len);
		ASSERT_NE(NULL, src[i]);
		ASSERT_NE(NULL, dst[i]);
		fill(src[i], len, 100 + i);
	}
	t0 = pl_now();
	for (i = 0; i < NASYNC; i++) {
		seq[i] = svm_submit(self->fd, (uintptr_t)src[i], (uintptr_t)dst[i], len, VA2VA);
		ASSERT_GT(seq[i], 0) TH_LOG("submit %d: %s", i, strerror((int)-seq[i]));
		if (i)
			ASSERT_EQ(seq[i - 1] + 1, seq[i]);
	}
	t_sub = pl_now() - t0;
	/* the last one first: the context runs them in order, so the others are done too */
	ASSERT_EQ(0, svm_wait(self->fd, seq[NASYNC - 1], TIMEOUT_MS, &w));
	t_all = pl_now() - t0;
	ASSERT_EQ(0, w.status);
	ASSERT_GT(w.copy.ns, 0);
	ASSERT_EQ(len, w.copy.len);
	ASSERT_EQ((uintptr_t)src[NASYNC - 1], w.copy.src);
	ASSERT_EQ(NASYNC - 1, w.inflight);
	for (i = 0; i < NASYNC - 1; i++) {
		ASSERT_EQ(0, svm_wait(self->fd, seq[i], 0, &w)) TH_LOG("seq %lld", (long long)seq[i]);
		ASSERT_GT(w.copy.faults, 0);
	}
	ASSERT_EQ(0, w.inflight);
	for (i = 0; i < NASYNC; i++)
		ASSERT_EQ(-1, check(dst[i], len, 100 + i)) TH_LOG("buffer %d", i);
	TH_LOG("%d copies of %zu KiB: %d submits in %.3f ms, all done after %.1f ms",
	       NASYNC, len >> 10, NASYNC, t_sub * 1e3, t_all * 1e3);
	/* reaped: gone; never submitted: unknown */
	ASSERT_EQ(-ENOENT, svm_wait(self->fd, seq[0], 0, NULL));
	ASSERT_EQ(-ENOENT, svm_wait(self->fd, seq[NASYNC - 1] + 100, 10, NULL));
	ASSERT_EQ(-ENOENT, svm_wait(self->fd, 0, 0, NULL));
	/* synchronous copies still work next to it */
	memset(dst[0], 0, len);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)src[0], (uintptr_t)dst[0], len, VA2VA, NULL));
	ASSERT_EQ(-1, check(dst[0], len, 100));
	for (i = 0; i < NASYNC; i++) {
		free(src[i]);
		free(dst[i]);
	}
}

/* a wait shorter than the work: ETIME, the submission stays; a longer wait reaps it */
TEST_F_TIMEOUT(svm, async_wait_timeout, 300)
{
	size_t len = 16 * MB;
	uint8_t *a = map_anon(len), *b = map_anon(len);
	int64_t s1, s2;
	struct p2plab_svm_wait w;
	int r;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(a, len, 120);
	s1 = svm_submit(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA);
	ASSERT_GT(s1, 0);
	s2 = svm_submit(self->fd, (uintptr_t)b, (uintptr_t)a + 4096, len - 4096, VA2VA);
	ASSERT_GT(s2, 0);
	/* 2 x 16 MiB with 4 KiB first-touch faults: far more than 1 ms on any machine */
	r = svm_wait(self->fd, s2, 1, &w);
	ASSERT_EQ(-ETIME, r);
	ASSERT_EQ(2, w.inflight);
	ASSERT_EQ(-ETIME, svm_wait(self->fd, s2, 0, NULL));
	ASSERT_EQ(0, svm_wait(self->fd, s1, TIMEOUT_MS, &w));
	ASSERT_EQ(0, svm_wait(self->fd, s2, TIMEOUT_MS, &w));
	ASSERT_EQ(0, w.inflight);
	ASSERT_EQ(-1, check(b, len, 120));
	/* a + 4096 now holds b[0 .. len - 4096) = the pattern from word 0 */
	ASSERT_EQ(-1, check(a + 4096, len - 4096, 120));
	munmap(a, len);
	munmap(b, len);
}

/* the op's own error comes back from WAIT, with the address; the next submission is fine */
TEST_F(svm, async_efault)
{
	size_t len = 64 * 1024;
	uint8_t *a = map_anon(len), *good = malloc(len), *back = malloc(len);
	int64_t s_bad, s_good, s_ro;
	struct p2plab_svm_wait w;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, good);
	ASSERT_EQ(0, munmap(a + len / 2, len / 2));	/* the second half has no VMA */
	memset(a, 0x11, len / 2);
	fill(good, len, 121);
	s_bad = svm_submit(self->fd, (uintptr_t)a, 0, len, VA2DEV);
	ASSERT_GT(s_bad, 0);
	s_good = svm_submit(self->fd, (uintptr_t)good, (uintptr_t)back, len, VA2VA);
	ASSERT_GT(s_good, 0);
	ASSERT_EQ(0, mprotect(a, len / 2, PROT_READ));
	s_ro = svm_submit(self->fd, (uintptr_t)good, (uintptr_t)a, len / 2, VA2VA);
	ASSERT_GT(s_ro, 0);

	ASSERT_EQ(-EFAULT, svm_wait(self->fd, s_bad, TIMEOUT_MS, &w));
	ASSERT_EQ(-EFAULT, w.status);
	ASSERT_EQ((uintptr_t)a + len / 2, w.copy.fault_va);
	ASSERT_EQ(P2PLAB_FAULT_ACC_READ, w.copy.fault_access);
	ASSERT_EQ(P2PLAB_ERR_MMU_FAULT, w.copy.err_code);
	ASSERT_EQ(0, svm_wait(self->fd, s_good, TIMEOUT_MS, &w));
	ASSERT_EQ(-1, check(back, len, 121));
	ASSERT_EQ(-EFAULT, svm_wait(self->fd, s_ro, TIMEOUT_MS, &w));
	ASSERT_EQ((uintptr_t)a, w.copy.fault_va);
	ASSERT_EQ(P2PLAB_FAULT_ACC_WRITE, w.copy.fault_access);
	munmap(a, len / 2);
	free(good);
	free(back);
}

/* at most P2PLAB_SVM_MAX_INFLIGHT not reaped; bad arguments rejected at submit */
TEST_F_TIMEOUT(svm, async_limits, 300)
{
	uint8_t *buf = malloc(4096);
	int64_t seq[P2PLAB_SVM_MAX_INFLIGHT], s;
	struct p2plab_svm_submit sb;
	struct p2plab_svm_wait w;
	int i;

	ASSERT_NE(NULL, buf);
	memset(buf, 7, 4096);
	for (i = 0; i < P2PLAB_SVM_MAX_INFLIGHT; i++) {
		seq[i] = svm_submit(self->fd, (uintptr_t)buf, 4096 * (i % 8), 4096, VA2DEV);
		ASSERT_GT(seq[i], 0) TH_LOG("submit %d: %s", i, strerror((int)-seq[i]));
	}
	ASSERT_EQ(-EAGAIN, svm_submit(self->fd, (uintptr_t)buf, 0, 4096, VA2DEV));
	ASSERT_EQ(0, svm_wait(self->fd, seq[0], TIMEOUT_MS, NULL));
	s = svm_submit(self->fd, (uintptr_t)buf, 0, 4096, VA2DEV);	/* room again */
	ASSERT_EQ(seq[P2PLAB_SVM_MAX_INFLIGHT - 1] + 1, s);
	for (i = 1; i < P2PLAB_SVM_MAX_INFLIGHT; i++)
		ASSERT_EQ(0, svm_wait(self->fd, seq[i], TIMEOUT_MS, NULL));
	ASSERT_EQ(0, svm_wait(self->fd, s, TIMEOUT_MS, &w));
	ASSERT_EQ(0, w.inflight);

	/* bad input: clear errors at submit, nothing queued */
	ASSERT_EQ(-EINVAL, svm_submit(self->fd, 0, 0, 64, P2PLAB_SVM_SRC_LOCAL | P2PLAB_SVM_DST_LOCAL));
	ASSERT_EQ(-EINVAL, svm_submit(self->fd, (uintptr_t)buf, 0, 0, VA2DEV));
	ASSERT_EQ(-ERANGE, svm_submit(self->fd, (uintptr_t)buf, self->info.mem_size, 64, VA2DEV));
	memset(&sb, 0, sizeof(sb));
	sb.copy.src = (uintptr_t)buf;
	sb.copy.len = 64;
	sb.copy.flags = VA2DEV;
	sb.flags = 1;
	ASSERT_EQ(-1, ioctl(self->fd, P2PLAB_IOC_SVM_SUBMIT, &sb));
	ASSERT_EQ(EINVAL, errno);
	sb.flags = 0;
	sb.copy.timeout_ms = P2PLAB_TIMEOUT_MAX_MS + 1;
	ASSERT_EQ(-1, ioctl(self->fd, P2PLAB_IOC_SVM_SUBMIT, &sb));
	ASSERT_EQ(EINVAL, errno);
	memset(&w, 0, sizeof(w));
	w.seq = 1;
	w.flags = 1;
	ASSERT_EQ(-1, ioctl(self->fd, P2PLAB_IOC_SVM_WAIT, &w));
	ASSERT_EQ(EINVAL, errno);
	w.flags = 0;
	w.timeout_ms = P2PLAB_TIMEOUT_MAX_MS + 1;
	ASSERT_EQ(-1, ioctl(self->fd, P2PLAB_IOC_SVM_WAIT, &w));
	ASSERT_EQ(EINVAL, errno);
	free(buf);
}

struct async_waiter {
	int fd;
	int64_t seq;
	int ret;
};

static void *async_wait_thread(void *p)
{
	struct async_waiter *aw = p;

	aw->ret = svm_wait(aw->fd, aw->seq, TIMEOUT_MS, NULL);
	return NULL;
}

/*
 * Unbind and close with submissions in flight: unbind does not wait for the queue (the running
 * copy completes, its faults cancelled), a sleeping waiter gets the result or ECANCELED, the
 * buffers can be unmapped at once, the fd binds again, no splat.
 */
TEST_F_TIMEOUT(svm, async_unbind_inflight, 300)
{
	size_t len = 8 * MB;
	uint8_t *a = map_anon(len), *b = map_anon(len);
	struct async_waiter aw;
	struct p2plab_svm_bind bb = {};
	pthread_t th;
	int64_t last = 0;
	double t0, t_unbind;
	int i, fd2;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	fill(a, len, 122);
	for (i = 0; i < 16; i++) {
		last = svm_submit(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA);
		ASSERT_GT(last, 0);
	}
	aw.fd = self->fd;
	aw.seq = last;
	aw.ret = 1;
	ASSERT_EQ(0, pthread_create(&th, NULL, async_wait_thread, &aw));
	usleep(20000);
	t0 = pl_now();
	ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_SVM_UNBIND));
	t_unbind = pl_now() - t0;
	pthread_join(th, NULL);
	TH_LOG("unbind with 16 x 8 MiB in flight: %.1f ms, waiter: %s", t_unbind * 1e3,
	       aw.ret ? strerror(-aw.ret) : "completed");
	ASSERT_TRUE(aw.ret == -ECANCELED || aw.ret == 0 || aw.ret == -ENOENT);
	ASSERT_EQ(-ENOENT, svm_wait(self->fd, last, 0, NULL));
	ASSERT_LT(t_unbind, 10.0);
	munmap(b, len);
	/* bind again: works */
	ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_SVM_BIND, &bb));
	b = map_anon(len);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, (uintptr_t)b, len, VA2VA, NULL));
	ASSERT_EQ(-1, check(b, len, 122));

	/* close with submissions in flight, then unmap the buffers */
	fd2 = svm_open_bind(&bb);
	ASSERT_GE(fd2, 0);
	for (i = 0; i < 8; i++)
		ASSERT_GT(svm_submit(fd2, (uintptr_t)a, (uintptr_t)b, len, VA2VA), 0);
	t0 = pl_now();
	close(fd2);
	TH_LOG("close with 8 x 8 MiB in flight: %.1f ms", (pl_now() - t0) * 1e3);
	munmap(a, len);
	munmap(b, len);
}

/* threads submit and wait on one context at once */
static void *async_thr(void *p)
{
	struct async_waiter *aw = p;
	size_t len = 256 * 1024;
	uint8_t *s = malloc(len), *d = malloc(len);
	int i, r = 0;

	if (!s || !d) {
		aw->ret = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < 20 && !r; i++) {
		int64_t q;

		fill(s, len, (uint32_t)aw->seq * 1000 + i);
		memset(d, 0, len);
		q = svm_submit(aw->fd, (uintptr_t)s, (uintptr_t)d, len, VA2VA);
		if (q < 0)
			r = (int)q;
		else
			r = svm_wait(aw->fd, q, TIMEOUT_MS, NULL);
		if (!r && check(d, len, (uint32_t)aw->seq * 1000 + i) != -1)
			r = -EILSEQ;
	}
	free(s);
	free(d);
	aw->ret = r;
	return NULL;
}

TEST_F_TIMEOUT(svm, async_multi_thread, 300)
{
	struct async_waiter aw[4];
	pthread_t th[4];
	int i;

	for (i = 0; i < 4; i++) {
		aw[i].fd = self->fd;
		aw[i].seq = i + 1;	/* thread number: seeds its patterns */
		aw[i].ret = 1;
		ASSERT_EQ(0, pthread_create(&th[i], NULL, async_thr, &aw[i]));
	}
	for (i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		EXPECT_EQ(0, aw[i].ret) TH_LOG("thread %d: %s", i, strerror(-aw[i].ret));
	}
}

/* ---- placement (P2PLAB_IOC_SVM_PLACE) ---- */

static int svm_place(int fd, void *start, size_t len, uint32_t policy, uint32_t residency_ms,
		     struct p2plab_svm_place *out)
{
	struct p2plab_svm_place l;

	if (!out)
		out = &l;
	memset(out, 0, sizeof(*out));
	out->start = (uintptr_t)start;
	out->len = len;
	out->policy = policy;
	out->min_residency_ms = residency_ms;
	return ioctl(fd, P2PLAB_IOC_SVM_PLACE, out) ? -errno : 0;
}

/* the placement counters, by setting a policy again on a page nobody uses */
static void place_counters(int fd, struct p2plab_svm_place *pl)
{
	static void *scratch;

	if (!scratch)
		scratch = map_anon(4096);
	svm_place(fd, scratch, 4096, P2PLAB_SVM_PLACE_SYSTEM, 0, pl);
}

/* PREFER_DEVICE on this backend? (odp with the HMM device memory; else EOPNOTSUPP) */
static bool place_supported(int fd, void *buf, size_t len)
{
	return svm_place(fd, buf, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, 1000, NULL) == 0;
}

/* a buffer of 4 KiB pages (no THP), written by the CPU */
static void *place_buf(size_t len, uint32_t seed)
{
	void *p = map_aligned(len, 2 * MB);

	if (!p)
		return NULL;
	madvise(p, len, MADV_NOHUGEPAGE);
	fill(p, len, seed);
	return p;
}

/*
 * prefer device: the device's first touch migrates the range into its private memory (CPU
 * copies), the device then reads and writes it there (LOCAL leaves); a CPU touch brings pages back
 */
TEST_F_TIMEOUT(svm, placement_prefer_device, 300)
{
	size_t len = 1 * MB;
	uint8_t *a = place_buf(len, 130), *back = malloc(len);
	struct p2plab_svm_place p0, p1, p2;
	struct p2plab_svm_copy c;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, back);
	if (!place_supported(self->fd, a, len)) {
		/* gpusvm, or no device-private memory: the error is clear, SYSTEM still works */
		ASSERT_EQ(-EOPNOTSUPP, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE,
						 0, NULL));
		ASSERT_EQ(0, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
		SKIP(return, "PREFER_DEVICE not supported by this backend");
	}
	place_counters(self->fd, &p0);
	ASSERT_EQ(0, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, 60000, NULL));
	/* device read: migrates, then reads its own memory */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	ASSERT_EQ(len, pread(self->fd, back, len, 0));
	ASSERT_EQ(-1, check(back, len, 130));
	place_counters(self->fd, &p1);
	TH_LOG("first touch: %llu pages migrated in %llu migrations, %llu LOCAL leaves, %.2f ms",
	       (unsigned long long)(p1.to_dev_pages - p0.to_dev_pages),
	       (unsigned long long)(p1.to_dev_migrations - p0.to_dev_migrations),
	       (unsigned long long)(p1.local_leaves - p0.local_leaves), c.ns / 1e6);
	ASSERT_EQ(len / 4096, p1.to_dev_pages - p0.to_dev_pages);
	ASSERT_EQ(1, p1.to_dev_migrations - p0.to_dev_migrations);
	ASSERT_GE(p1.local_leaves - p0.local_leaves, len / 4096);
	/* mapped: the same read again takes no fault and migrates nothing */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 4 * MB, len, VA2DEV, &c));
	ASSERT_EQ(0, c.faults);
	/* device write into the placed pages (device memory to device memory) */
	fill(back, len, 131);
	ASSERT_EQ(len, pwrite(self->fd, back, len, 8 * MB));
	ASSERT_EQ(0, svm_copy(self->fd, 8 * MB, (uintptr_t)a, len, DEV2VA, &c));
	/* the CPU reads: migrate_to_ram page by page, the device's data */
	ASSERT_EQ(-1, check(a, len, 131));
	/* within the residency the device maps the pages where they are (RAM now): no migration */
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	ASSERT_EQ(len, pread(self->fd, back, len, 0));
	ASSERT_EQ(-1, check(back, len, 131));
	place_counters(self->fd, &p2);
	ASSERT_EQ(p1.to_dev_migrations, p2.to_dev_migrations);
	ASSERT_GE(p2.guarded - p1.guarded, 1);
	/* back to SYSTEM: no migration */
	ASSERT_EQ(0, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	munmap(a, len);
	free(back);
}

/*
 * Ping-pong: the CPU writes the buffer (placed pages come back), the device reads it; data checked
 * after every round trip. With @hint, the policy is set again every round (the device's mappings
 * of the range go, so every round's device read faults and asks to migrate).
 */
static void pingpong(struct __test_metadata *_metadata, int fd, uint8_t *a, size_t len,
		     uint32_t residency_ms, int rounds, unsigned int sleep_us, bool hint,
		     uint64_t *migrations, uint64_t *guarded, double *secs)
{
	uint8_t *back = malloc(len);
	struct p2plab_svm_place p0, p1;
	double t0;
	int i;

	ASSERT_NE(NULL, back);
	ASSERT_EQ(0, svm_place(fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, residency_ms, NULL));
	place_counters(fd, &p0);
	t0 = pl_now();
	for (i = 0; i < rounds; i++) {
		fill(a, len, 200 + i);		/* CPU: placed pages come back */
		if (hint && i)
			ASSERT_EQ(0, svm_place(fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE,
					       residency_ms, NULL));
		ASSERT_EQ(0, svm_copy(fd, (uintptr_t)a, 0, len, VA2DEV, NULL)) TH_LOG("round %d", i);
		ASSERT_EQ(len, pread(fd, back, len, 0));
		ASSERT_EQ(-1, check(back, len, 200 + i)) TH_LOG("round %d", i);
		if (sleep_us)
			usleep(sleep_us);
	}
	*secs = pl_now() - t0;
	place_counters(fd, &p1);
	*migrations = p1.to_dev_migrations - p0.to_dev_migrations;
	*guarded = p1.guarded - p0.guarded;
	TH_LOG("residency %u ms%s: %d rounds in %.3f s: %llu migrations to the device (%llu pages), %llu guarded faults",
	       residency_ms, hint ? ", policy set every round" : "", rounds, *secs,
	       (unsigned long long)*migrations,
	       (unsigned long long)(p1.to_dev_pages - p0.to_dev_pages),
	       (unsigned long long)*guarded);
	free(back);
}

/* debugfs: the "ctx N:" line of <debugfs>/p2plab/p2plabD/svm, and the HMM side's "private:" line */
static bool dbg_lines(int ctx, char *svm_line, size_t n1, char *hmm_line, size_t n2)
{
	char path[128], line[512], want[16];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/kernel/debug/p2plab/p2plab%d/svm", svm_dev());
	snprintf(want, sizeof(want), "ctx %d:", ctx);
	f = fopen(path, "r");
	if (!f)
		return false;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, want, strlen(want))) {
			snprintf(svm_line, n1, "%s", line);
			found = true;
		}
	fclose(f);
	hmm_line[0] = 0;
	snprintf(path, sizeof(path), "/sys/kernel/debug/p2plab-hmm/p2plab%d", svm_dev());
	f = fopen(path, "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "private:", 8))
				snprintf(hmm_line, n2, "%s", line);
		fclose(f);
	}
	return found;
}

TEST_F_TIMEOUT(svm, placement_pingpong, 300)
{
	char dsvm[512], dhmm[512];
	struct p2plab_svm_place pc;
	unsigned long long dm = 0;
	size_t len = 256 * 1024;
	uint8_t *a = place_buf(len, 140);
	uint64_t m, g;
	double t;

	ASSERT_NE(NULL, a);
	if (!place_supported(self->fd, a, len))
		SKIP(return, "PREFER_DEVICE not supported by this backend");
	/* guard 1 s: one migration, then the device maps the pages in RAM (guarded fault) */
	pingpong(_metadata, self->fd, a, len, 1000, 20, 0, false, &m, &g, &t);
	ASSERT_GE(m, 1);
	ASSERT_LE(m, (uint64_t)(t / 1.0) + 1);
	ASSERT_GE(g, 1);
	/* guard 100 ms, a fault every round for ~1 s: at most one migration per 100 ms */
	pingpong(_metadata, self->fd, a, len, 100, 40, 20000, true, &m, &g, &t);
	ASSERT_GE(m, 2);
	ASSERT_LE(m, (uint64_t)(t / 0.1) + 1);
	/* every round either migrated or was guarded (when every round is slower than the 100 ms
	 * guard, all 40 migrate: m = 40, g = 0; 40 - m - 1 would underflow as unsigned) */
	ASSERT_GE(g + m + 1, 40);
	/* guard (almost) off: every round migrates */
	pingpong(_metadata, self->fd, a, len, 1, 10, 5000, false, &m, &g, &t);
	ASSERT_EQ(10, m);
	/* the same counters in debugfs (when mounted) */
	place_counters(self->fd, &pc);
	if (dbg_lines(self->b.ctx, dsvm, sizeof(dsvm), dhmm, sizeof(dhmm))) {
		char *p = strstr(dsvm, "to_dev_migrations ");

		TH_LOG("debugfs: %s", dsvm);
		TH_LOG("debugfs: %s", dhmm);
		ASSERT_NE(NULL, p);
		ASSERT_EQ(1, sscanf(p, "to_dev_migrations %llu", &dm));
		ASSERT_EQ(pc.to_dev_migrations, dm);
	}
	munmap(a, len);
}

/*
 * "One ring": a submission's descriptor is parked while its fault migrates pages to the device and
 * a CPU thread migrates others back (written when the parked submission held the ring, so neither
 * could use it): no timeout, no error, both directions counted.
 */
struct place_cpu {
	uint8_t *a;
	size_t len;
	volatile int stop;
	unsigned long rounds;
};

static void *place_cpu_thread(void *p)
{
	struct place_cpu *pc = p;

	while (!pc->stop) {
		size_t o;

		for (o = 0; o < pc->len; o += 4096)
			pc->a[o] ^= 1;		/* a CPU write: a placed page comes back */
		pc->rounds++;
	}
	return NULL;
}

TEST_F_TIMEOUT(svm, placement_concurrent_cpu, 300)
{
	size_t len = 512 * 1024;
	uint8_t *a = place_buf(len, 150);
	struct p2plab_svm_place p0, p1;
	struct place_cpu pc = { .a = a, .len = len };
	struct p2plab_svm_copy c;
	pthread_t th;
	double t0;
	int i, r, errors = 0;

	ASSERT_NE(NULL, a);
	if (!place_supported(self->fd, a, len))
		SKIP(return, "PREFER_DEVICE not supported by this backend");
	ASSERT_EQ(0, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, 1, NULL));
	place_counters(self->fd, &p0);
	ASSERT_EQ(0, pthread_create(&th, NULL, place_cpu_thread, &pc));
	t0 = pl_now();
	for (i = 0; i < 100 && pl_now() - t0 < 20; i++) {
		memset(&c, 0, sizeof(c));
		r = svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c);
		if (r) {
			errors++;
			TH_LOG("copy %d: %s", i, strerror(-r));
		}
	}
	pc.stop = 1;
	pthread_join(th, NULL);
	place_counters(self->fd, &p1);
	TH_LOG("%d device reads in %.2f s against %lu CPU passes: %llu migrations to the device (%llu pages), %llu guarded faults",
	       i, pl_now() - t0, pc.rounds,
	       (unsigned long long)(p1.to_dev_migrations - p0.to_dev_migrations),
	       (unsigned long long)(p1.to_dev_pages - p0.to_dev_pages),
	       (unsigned long long)(p1.guarded - p0.guarded));
	ASSERT_EQ(0, errors);
	ASSERT_GE(p1.to_dev_migrations - p0.to_dev_migrations, 1);
	/* the bytes the CPU did not flip are the pattern still, after all the round trips */
	for (i = 0; i < (int)len; i += 4096)
		a[i] = 0;
	{
		uint8_t *ref = malloc(len);

		ASSERT_NE(NULL, ref);
		fill(ref, len, 150);
		for (i = 0; i < (int)len; i += 4096)
			ref[i] = 0;
		ASSERT_EQ(0, memcmp(ref, a, len));
		free(ref);
	}
	munmap(a, len);
}

/*
 * fork with placed pages: the device-private entries become read-only in both processes (COW).
 * A device write then needs the page writable: hmm_range_fault() reports our own read-only page as
 * it is, so the driver faults it again as a stranger (migrate_to_ram, COW break) and retries. The
 * parent gets the device's data, the child keeps the old data.
 */
TEST_F_TIMEOUT(svm, placement_fork, 120)
{
	size_t len = 256 * 1024;
	uint8_t *a = place_buf(len, 160), *b = malloc(len);
	struct p2plab_svm_stats s0, s1;
	int go[2], status;
	pid_t pid;
	char ch;

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	if (!place_supported(self->fd, a, len))
		SKIP(return, "PREFER_DEVICE not supported by this backend");
	ASSERT_EQ(0, svm_place(self->fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, 60000, NULL));
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, NULL));	/* migrates */
	ASSERT_EQ(0, pipe(go));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		int r = 0;

		if (read(go[0], &ch, 1) != 1)
			r |= 1;
		if (check(a, len, 160) != -1)	/* the parent's device write is not ours */
			r |= 2;
		_exit(r);
	}
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	fill(b, len, 161);
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)b, (uintptr_t)a, len, VA2VA, NULL));
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	ASSERT_EQ(s0.cancels, s1.cancels);
	ASSERT_EQ(-1, check(a, len, 161));
	ASSERT_EQ(1, write(go[1], "x", 1));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	TH_LOG("device write after fork: %llu faults, %llu retries",
	       (unsigned long long)(s1.faults - s0.faults),
	       (unsigned long long)(s1.retries - s0.retries));
	munmap(a, len);
	free(b);
}

TEST_F(svm, placement_bad_requests)
{
	uint8_t *a = map_aligned(2 * MB, 2 * MB);
	int i, r;

	ASSERT_NE(NULL, a);
	ASSERT_EQ(-EINVAL, svm_place(self->fd, a + 1, 4096, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	ASSERT_EQ(-EINVAL, svm_place(self->fd, a, 4095, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	ASSERT_EQ(-EINVAL, svm_place(self->fd, a, 0, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	ASSERT_EQ(-EINVAL, svm_place(self->fd, a, 4096, 7, 0, NULL));
	ASSERT_EQ(-EINVAL, svm_place(self->fd, (void *)(1ul << 47), (1ul << 47) + 4096,
				     P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	/* at most P2PLAB_SVM_MAX_POLICIES ranges (one is place_counters'): then ENOSPC */
	for (i = 0, r = 0; i < P2PLAB_SVM_MAX_POLICIES + 1 && !r; i++)
		r = svm_place(self->fd, a + i * 8192, 4096, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL);
	ASSERT_EQ(-ENOSPC, r);
	/* a range covering them all replaces them */
	ASSERT_EQ(0, svm_place(self->fd, a, 2 * MB, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	ASSERT_EQ(0, svm_place(self->fd, a, 4096, P2PLAB_SVM_PLACE_SYSTEM, 0, NULL));
	munmap(a, 2 * MB);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

struct lat3 {
	unsigned int n;
	double irq, handle, dev_gap, resume;
};

/* medians over the last n (<= nlat) fault samples of s */
static void lat_medians(const struct p2plab_svm_stats *s, unsigned int n, struct lat3 *l)
{
	uint64_t a[P2PLAB_SVM_LAT_SAMPLES], b[P2PLAB_SVM_LAT_SAMPLES], g[P2PLAB_SVM_LAT_SAMPLES];
	uint64_t r[P2PLAB_SVM_LAT_SAMPLES];
	unsigned int i, first, ng = 0, nr = 0;

	if (n > s->nlat)
		n = s->nlat;
	first = s->nlat - n;
	for (i = 0; i < n; i++) {
		a[i] = s->lat[first + i].irq_ns;
		b[i] = s->lat[first + i].handle_ns;
		if (i)
			g[ng++] = s->lat[first + i].dev_ts - s->lat[first + i - 1].dev_ts;
		if (i && s->lat[first + i].resume_ns)
			r[nr++] = s->lat[first + i].resume_ns;
	}
	qsort(r, nr, sizeof(r[0]), cmp_u64);
	l->resume = nr ? r[nr / 2] : 0;
	qsort(a, n, sizeof(a[0]), cmp_u64);
	qsort(b, n, sizeof(b[0]), cmp_u64);
	qsort(g, ng, sizeof(g[0]), cmp_u64);
	l->n = n;
	l->irq = n ? a[n / 2] : 0;
	l->handle = n ? b[n / 2] : 0;
	l->dev_gap = ng ? g[ng / 2] : 0;
}

/* figures for docs/svm.md: device read of a buffer by VA, first touch vs mapped vs physical */
static void bench_one(struct __test_metadata *_metadata, FIXTURE_DATA(svm) *self, bool thp)
{
	const char *e = getenv("SVM_BENCH_MB");
	size_t len = (e ? atoi(e) : 32) * MB;
	struct p2plab_svm_stats s0, s1;
	struct p2plab_svm_copy c;
	struct p2plab_dma d;
	struct lat3 l;
	double t0, t_first, t_mapped, t_phys;
	uint8_t *a;
	unsigned int n;

	if (len > self->win)
		len = self->win;
	a = map_aligned(len, 2 * MB);
	ASSERT_NE(NULL, a);
	if (thp) {
		if (!thp_available())
			SKIP(return, "transparent hugepages disabled");
		ASSERT_EQ(0, madvise(a, len, MADV_HUGEPAGE));
	} else {
		ASSERT_EQ(0, madvise(a, len, MADV_NOHUGEPAGE));
	}
	fill(a, len, 20);
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	t0 = pl_now();
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	t_first = pl_now() - t0;
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	t0 = pl_now();
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	t_mapped = pl_now() - t0;
	ASSERT_EQ(0, c.faults);
	memset(&d, 0, sizeof(d));
	d.uaddr = (uintptr_t)a;
	d.dev_off = 0;
	d.len = len;
	d.dir = P2PLAB_DIR_TO_DEV;
	t0 = pl_now();
	ASSERT_EQ(0, ioctl(self->fd, P2PLAB_IOC_DMA, &d));
	t_phys = pl_now() - t0;
	n = s1.faults - s0.faults;
	lat_medians(&s1, n, &l);
	printf("# bench %s %zu MiB: first-touch %.1f MB/s (%.3f s, %u faults, "
	       "%llu 2M + %llu 4K leaves), mapped %.1f MB/s, physical %.1f MB/s, "
	       "first/mapped %.2f; per fault (median of %u): irq->replay %.1f us, "
	       "record->replay %.1f us, replay->next fault irq %.1f us, device fault-to-fault %.1f us\n",
	       thp ? "thp" : "4k", len / MB, len / MB / t_first, t_first, n,
	       (unsigned long long)(s1.pte_2m - s0.pte_2m),
	       (unsigned long long)(s1.pte_4k - s0.pte_4k), len / MB / t_mapped,
	       len / MB / t_phys, t_mapped / t_first, l.n, l.irq / 1e3, l.handle / 1e3,
	       l.resume / 1e3, l.dev_gap / 1e3);
	/* the bytes arrived */
	memset(a, 0, 4096);
	ASSERT_EQ(4096, pread(self->fd, a, 4096, 0));
	ASSERT_EQ(-1, check(a, 4096, 20));
	munmap(a, len);
}

TEST_F_TIMEOUT(svm, bench_4k, 600)
{
	bench_one(_metadata, self, false);
}

TEST_F_TIMEOUT(svm, bench_thp, 600)
{
	bench_one(_metadata, self, true);
}

/* one-page faults: every other page read-only, so each page is its own VMA (the fault-ahead window
 * is clamped to the VMA): one device read of the range takes one fault per page */
TEST_F_TIMEOUT(svm, bench_fault_rate, 600)
{
	size_t pages = 64, len = pages * 4096, i;
	struct p2plab_svm_stats s0, s1;
	struct p2plab_svm_copy c;
	struct lat3 l;
	uint8_t *a = map_anon(len);
	double t0, t;

	ASSERT_NE(NULL, a);
	fill(a, len, 21);
	for (i = 0; i < pages; i += 2)
		ASSERT_EQ(0, mprotect(a + i * 4096, 4096, PROT_READ));
	ASSERT_EQ(0, svm_stats(self->fd, &s0));
	t0 = pl_now();
	ASSERT_EQ(0, svm_copy(self->fd, (uintptr_t)a, 0, len, VA2DEV, &c));
	t = pl_now() - t0;
	ASSERT_EQ(0, svm_stats(self->fd, &s1));
	ASSERT_EQ(pages, s1.faults - s0.faults);
	lat_medians(&s1, pages, &l);
	printf("# bench fault-rate: %zu one-page faults in %.3f s = %.0f faults/s; per fault (median "
	       "of %u): irq->replay %.1f us, record->replay %.1f us, replay->next fault irq %.1f us, "
	       "device fault-to-fault %.1f us\n",
	       pages, t, pages / t, l.n, l.irq / 1e3, l.handle / 1e3, l.resume / 1e3,
	       l.dev_gap / 1e3);
	munmap(a, len);
}

/* ---- helper for the QMP-scripted interleaving (not a test) ---- */

struct hold_arg {
	int fd;
	uint8_t *a;
	size_t len;
	int ret;
	uint32_t timeout_ms;	/* 0: 120 s */
	struct p2plab_svm_copy c;
};

static void *hold_copy(void *p)
{
	struct hold_arg *h = p;

	memset(&h->c, 0, sizeof(h->c));
	h->c.src = (uintptr_t)h->a;
	h->c.dst = 0;
	h->c.len = h->len;
	h->c.flags = VA2DEV;
	h->c.timeout_ms = h->timeout_ms ?: 120000;
	h->ret = ioctl(h->fd, P2PLAB_IOC_SVM_COPY, &h->c) ? -errno : 0;
	return NULL;
}

/* start a copy of a fresh buffer (its fault held) and wait until it is parked; 0 or -1 */
static int hold_start(struct hold_arg *h, pthread_t *t, uint32_t seed)
{
	struct p2plab_svm_stats s;
	int i;

	h->a = map_anon(h->len);
	if (!h->a)
		return -1;
	fill(h->a, h->len, seed);
	if (pthread_create(t, NULL, hold_copy, h))
		return -1;
	for (i = 0; i < 400; i++) {
		if (!svm_stats(h->fd, &s) && s.hw_parked >= 1)
			return 0;
		usleep(50000);
	}
	printf("the copy never parked (mmu-hold-faults not set?)\n");
	return -1;
}

/* bind, then hold_start(); 0, or the exit status of a setup failure (2: bind, 3: never parked) */
static int hold_parked(struct hold_arg *h, int seed, pthread_t *t, struct p2plab_svm_stats *s)
{
	struct p2plab_svm_bind b;

	h->fd = svm_open_bind(&b);
	if (h->fd < 0) {
		printf("bind: %s\n", strerror(-h->fd));
		return 2;
	}
	if (hold_start(h, t, seed))
		return 3;
	return svm_stats(h->fd, s) ? 3 : 0;
}

static int hold_munmap(const char *state)
{
	struct p2plab_svm_stats s;
	struct hold_arg h = { .len = 64 * 1024 };
	pthread_t t;
	FILE *f;
	int r;

	r = hold_parked(&h, 30, &t, &s);
	if (r)
		return r;
	printf("parked: %u, faults handled %llu\n", s.hw_parked, (unsigned long long)s.faults);
	munmap(h.a, h.len);
	f = fopen(state, "w");
	fprintf(f, "MUNMAPPED\n");
	fclose(f);
	printf("MUNMAPPED %p\n", h.a);
	fflush(stdout);
	pthread_join(t, NULL);
	printf("RESULT ret=%d (%s) fault_va=%#llx buffer=%p err_code=%#x\n", h.ret,
	       h.ret ? strerror(-h.ret) : "ok", (unsigned long long)h.c.fault_va, h.a,
	       h.c.err_code);
	return h.ret == -EFAULT && h.c.fault_va >= (uintptr_t)h.a &&
	       h.c.fault_va < (uintptr_t)h.a + h.len ? 0 : 1;
}

static void state_write(const char *state, const char *what)
{
	FILE *f = fopen(state, "a");

	if (f) {
		fprintf(f, "%s\n", what);
		fclose(f);
	}
}

#define OTHERS_LEN	(256 * 1024)
#define OTHERS_PROMPT_MS 5000.0	/* "promptly": a mapped 256 KiB copy takes a few ms */
#define OTHERS_PHYS_OFF	(4 * MB)	/* device memory of the physical copy, away from the parked one */

struct others_phys {
	int fd;
	uint8_t *p;
	int ret;
	double ms;
};

/* the physical copy of hold-others, to device memory and back, timed */
static void *others_phys_copy(void *arg)
{
	struct others_phys *o = arg;
	double t0 = pl_now();

	o->ret = pl_dma(o->fd, o->p, OTHERS_PHYS_OFF, OTHERS_LEN, P2PLAB_DIR_TO_DEV, NULL) ?
		 -errno : 0;
	memset(o->p, 0, OTHERS_LEN);
	if (!o->ret)
		o->ret = pl_dma(o->fd, o->p, OTHERS_PHYS_OFF, OTHERS_LEN, P2PLAB_DIR_FROM_DEV,
				NULL) ? -errno : 0;
	o->ms = (pl_now() - t0) * 1000;
	return NULL;
}

/*
 * The other process of hold-others: its own context, its buffers mapped on the device before the
 * hold (so its copy does not fault), then on "go" one SVM copy and, at the same time from another
 * thread, one physical copy (P2PLAB_IOC_DMA, to device memory and back), each timed. Exit 0 iff
 * both succeeded with the right data within OTHERS_PROMPT_MS.
 */
static int hold_others_child(int ready, int go)
{
	struct p2plab_svm_bind b;
	uint8_t *a = map_anon(OTHERS_LEN), *c = map_anon(OTHERS_LEN), *p = map_anon(OTHERS_LEN);
	struct others_phys o = { .p = p };
	int fd = svm_open_bind(&b), sret;
	double t0, svm_ms;
	bool prompt, data_ok;
	pthread_t t;
	char ch = 0;

	if (fd < 0 || !a || !c || !p) {
		printf("OTHERS setup failed: %s\n", fd < 0 ? strerror(-fd) : "mmap");
		return 2;
	}
	/* no khugepaged collapse of the warm buffers while the hold is on (it would fault again) */
	madvise(a, OTHERS_LEN, MADV_NOHUGEPAGE);
	madvise(c, OTHERS_LEN, MADV_NOHUGEPAGE);
	fill(a, OTHERS_LEN, 41);
	memset(c, 0, OTHERS_LEN);
	if (svm_copy(fd, (uintptr_t)a, (uintptr_t)c, OTHERS_LEN, VA2VA, NULL) ||
	    check(c, OTHERS_LEN, 41) != -1) {
		printf("OTHERS warm-up copy failed\n");
		return 2;
	}
	fill(p, OTHERS_LEN, 43);
	if (write(ready, &ch, 1) != 1 || read(go, &ch, 1) != 1)
		return 2;

	fill(a, OTHERS_LEN, 42);	/* present, writable pages: no invalidation */
	o.fd = fd;
	if (pthread_create(&t, NULL, others_phys_copy, &o))
		return 2;
	t0 = pl_now();
	sret = svm_copy(fd, (uintptr_t)a, (uintptr_t)c, OTHERS_LEN, VA2VA, NULL);
	svm_ms = (pl_now() - t0) * 1000;
	pthread_join(t, NULL);
	data_ok = !sret && check(c, OTHERS_LEN, 42) == -1 && !o.ret &&
		  check(p, OTHERS_LEN, 43) == -1;
	prompt = svm_ms < OTHERS_PROMPT_MS && o.ms < OTHERS_PROMPT_MS;
	printf("OTHERS svm ret=%d ms=%.1f phys ret=%d ms=%.1f data %s: %s\n", sret, svm_ms, o.ret,
	       o.ms, data_ok ? "ok" : "BAD", prompt ? "prompt" : "SLOW");
	fflush(stdout);
	close(fd);
	return data_ok && prompt ? 0 : 1;
}

/*
 * svm-tests hold-others STATE GO (scenarios/svm/svm-qmp.yaml, mmu-hold-faults): a child process
 * binds its own context and maps its buffers on the device ("WARM" in STATE); once GO exists (the
 * scenario has set mmu-hold-faults), this process's device read of a fresh buffer faults and stays
 * parked ("PARKED"); meanwhile the child's SVM copy and physical copy must complete promptly while
 * the descriptor is still parked ("OTHERS_DONE"); the scenario then clears the knob and the parked
 * copy completes with the right data in device memory. Exit 0 iff all of that held.
 */
static int hold_others(const char *state, const char *go_file)
{
	int ready[2], go[2], status, i, dev, r;
	struct p2plab_svm_stats s;
	struct hold_arg h = { .len = 1 * MB, .timeout_ms = 30000 };
	bool parked_after, data_ok;
	pthread_t t;
	uint8_t *back;
	double t0;
	pid_t pid;
	char ch = 0;

	if (pipe(ready) || pipe(go))
		return 2;
	pid = fork();
	if (pid < 0)
		return 2;
	if (pid == 0)
		_exit(hold_others_child(ready[1], go[0]));
	if (read(ready[0], &ch, 1) != 1) {
		printf("the other process did not get ready\n");
		return 2;
	}
	state_write(state, "WARM");
	for (i = 0; i < 1200 && access(go_file, F_OK); i++)
		usleep(100000);
	if (i == 1200) {
		printf("no %s within 120 s\n", go_file);
		return 2;
	}

	t0 = pl_now();
	r = hold_parked(&h, 40, &t, &s);	/* VA -> device offset 0, 120 s timeout */
	if (r)
		return r;
	printf("PARKED: %u descriptor(s) after %.1f ms\n", s.hw_parked, (pl_now() - t0) * 1000);
	fflush(stdout);
	state_write(state, "PARKED");

	if (write(go[1], &ch, 1) != 1 || waitpid(pid, &status, 0) != pid)
		return 2;
	parked_after = !svm_stats(h.fd, &s) && s.hw_parked >= 1;
	printf("OTHERS exit %d, the first copy still parked: %s\n",
	       WIFEXITED(status) ? WEXITSTATUS(status) : -1, parked_after ? "yes" : "NO");
	fflush(stdout);
	state_write(state, "OTHERS_DONE");

	pthread_join(t, NULL);	/* the scenario releases the hold */
	back = malloc(h.len);
	dev = pl_open(svm_dev());
	data_ok = !h.ret && back && dev >= 0 && !pl_pread_all(dev, back, h.len, 0) &&
		  check(back, h.len, 40) == -1;
	printf("RESULT parked copy ret=%d (%s) after %.1f ms, data %s\n", h.ret,
	       h.ret ? strerror(-h.ret) : "ok", h.c.ns / 1e6, data_ok ? "ok" : "BAD");
	return WIFEXITED(status) && !WEXITSTATUS(status) && parked_after && data_ok ? 0 : 1;
}

/*
 * svm-tests hold-abort (scenarios/svm/svm-qmp.yaml, with mmu-hold-faults set): a parked copy with
 * a 2 s timeout ends with ETIMEDOUT at its timeout (the driver takes the ring back and resets the
 * engine); a parked copy with a long timeout ends at once with EIO / P2PLAB_ERR_ABORTED when the
 * engine is reset under it (P2PLAB_IOC_RESET: the ring generation it waits on is gone). Exit 0
 * iff both did.
 */
static int hold_abort(void)
{
	struct hold_arg h1 = { .len = 64 * 1024, .timeout_ms = 2000 };
	struct hold_arg h2 = { .len = 64 * 1024 };
	struct p2plab_svm_bind b;
	bool ok1, ok2;
	pthread_t t;
	double t0;
	int fd;

	fd = svm_open_bind(&b);
	if (fd < 0) {
		printf("bind: %s\n", strerror(-fd));
		return 2;
	}
	h1.fd = fd;
	h2.fd = fd;
	t0 = pl_now();
	if (hold_start(&h1, &t, 60))
		return 3;
	pthread_join(t, NULL);
	ok1 = h1.ret == -ETIMEDOUT;
	printf("TIMEOUT parked copy ret=%d (%s) after %.1f ms: %s\n", h1.ret,
	       h1.ret ? strerror(-h1.ret) : "ok", (pl_now() - t0) * 1000, ok1 ? "ok" : "BAD");
	fflush(stdout);

	if (hold_start(&h2, &t, 61))
		return 3;
	t0 = pl_now();
	if (ioctl(fd, P2PLAB_IOC_RESET)) {
		printf("P2PLAB_IOC_RESET: %s\n", strerror(errno));
		return 2;
	}
	pthread_join(t, NULL);
	ok2 = h2.ret == -EIO && h2.c.err_code == P2PLAB_ERR_ABORTED && pl_now() - t0 < 5;
	printf("RESET parked copy ret=%d (%s) err_code=%#x %.1f ms after the reset: %s\n", h2.ret,
	       h2.ret ? strerror(-h2.ret) : "ok", h2.c.err_code, (pl_now() - t0) * 1000,
	       ok2 ? "ok" : "BAD");
	close(fd);
	return ok1 && ok2 ? 0 : 1;
}

/*
 * svm-tests loop DEV SECONDS: bind /dev/p2plabDEV, device copies (first touch + verify) until the
 * time is up or a copy fails; prints "LOOP <dev> ok <n>" or "LOOP <dev> errno <e> after <n>".
 * For hot-unplug while bound (scenarios/svm/svm-unplug.yaml): ENODEV/ENOENT once the device goes.
 */
static int loop_copies(int dev, int seconds)
{
	struct p2plab_svm_bind b;
	size_t len = 256 * 1024;
	double end = pl_now() + seconds;
	long n = 0;
	int fd, ret = 0;
	char env[16];

	snprintf(env, sizeof(env), "%d", dev);
	setenv("SVM_DEV", env, 1);
	fd = svm_open_bind(&b);
	if (fd < 0) {
		printf("LOOP %d bind errno %d\n", dev, -fd);
		return 2;
	}
	printf("LOOP %d bound ctx %u\n", dev, b.ctx);
	fflush(stdout);
	while (pl_now() < end) {
		uint8_t *a = map_anon(len), *c = map_anon(len);

		fill(a, len, n);
		ret = svm_copy(fd, (uintptr_t)a, (uintptr_t)c, len, VA2VA, NULL);
		if (!ret && check(c, len, n) != -1)
			ret = -EILSEQ;
		munmap(a, len);
		munmap(c, len);
		if (ret)
			break;
		n++;
	}
	if (ret)
		printf("LOOP %d errno %d after %ld\n", dev, -ret, n);
	else
		printf("LOOP %d ok %ld\n", dev, n);
	close(fd);
	return ret == -EILSEQ ? 1 : 0;
}

/*
 * svm-tests pressure TARGET_MB SECONDS: memory pressure for scenarios/svm/svm-pressure.yaml. For
 * SECONDS, keeps MemAvailable near TARGET_MB by holding 2 MiB chunks of anonymous memory (every
 * other one THP-advised: direct compaction), and churns them (unmap + fault again: the
 * allocations run into the watermarks, so kswapd, direct reclaim and compaction run; MADV_PAGEOUT
 * on another chunk). There is no swap: anonymous memory itself cannot be reclaimed. Exits 0; the
 * OOM killer may end it (oom_score_adj 1000).
 */
static long mem_available_mb(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemAvailable: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb / 1024;
}

static int pressure(long target_mb, int seconds)
{
	size_t chunk = 2 * MB, max = 1024, n = 0, round = 0, peak = 0;
	uint8_t **c = calloc(max, sizeof(*c));
	double t0 = pl_now();
	FILE *f = fopen("/proc/self/oom_score_adj", "w");
	bool said = false;

	if (f) {
		fputs("1000", f);
		fclose(f);
	}
	if (!c)
		return 1;
	while (pl_now() - t0 < seconds) {
		long avail = mem_available_mb();
		uint8_t *p;

		round++;
		if (avail > target_mb + 4 && n < max) {
			p = map_aligned(chunk, 2 * MB);
			if (!p)
				continue;
			madvise(p, chunk, (n & 1) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
			memset(p, (int)round, chunk);
			c[n++] = p;
			peak = n > peak ? n : peak;
			continue;
		}
		if (!said) {
			printf("PRESSURE holding %zu MiB, MemAvailable %ld MiB\n", n * chunk / MB, avail);
			fflush(stdout);
			said = true;
		}
		if (!n)
			continue;
		if (avail < target_mb) {
			munmap(c[--n], chunk);
			continue;
		}
		/* churn: a chunk goes and comes back, another is paged out (if it could be) */
		p = c[round % n];
		munmap(p, chunk);
		p = map_aligned(chunk, 2 * MB);
		if (!p) {
			size_t k = round % n;

			c[k] = c[--n];
			continue;
		}
		madvise(p, chunk, (round & 1) ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
		memset(p, (int)round, chunk);
		c[round % n] = p;
		madvise(c[(round + n / 2) % n], chunk, MADV_PAGEOUT);
	}
	printf("PRESSURE done: %zu rounds, peak %zu MiB, holding %zu MiB\n", round, peak * chunk / MB,
	       n * chunk / MB);
	return 0;
}

/*
 * svm-tests place-hold DEV SECONDS: for scenarios/svm/svm-unplug.yaml. Places 1 MiB of this
 * process in device DEV's memory (PREFER_DEVICE + a device read: migrated, "PLACED"), holds it
 * SECONDS (the device is removed meanwhile: remove() evicts the pages to RAM with CPU copies), then
 * checks it with the CPU: "HOLD d data ok" (exit 0) or the first bad word (exit 1).
 */
static int place_hold(int dev, int seconds)
{
	struct p2plab_svm_place pl;
	struct p2plab_svm_bind b;
	size_t len = 1 * MB;
	uint8_t *a;
	char env[16];
	long bad;
	int fd, r;

	snprintf(env, sizeof(env), "%d", dev);
	setenv("SVM_DEV", env, 1);
	fd = svm_open_bind(&b);
	if (fd < 0) {
		printf("HOLD %d bind errno %d\n", dev, -fd);
		return 2;
	}
	a = place_buf(len, 170);
	if (!a)
		return 2;
	r = svm_place(fd, a, len, P2PLAB_SVM_PLACE_PREFER_DEVICE, 60000, NULL);
	if (!r)
		r = svm_copy(fd, (uintptr_t)a, 0, len, VA2DEV, NULL);
	place_counters(fd, &pl);
	printf("PLACED %d: %s, %llu pages in device memory\n", dev, r ? strerror(-r) : "ok",
	       (unsigned long long)pl.to_dev_pages);
	fflush(stdout);
	sleep(seconds);
	bad = check(a, len, 170);
	if (bad == -1)
		printf("HOLD %d data ok\n", dev);
	else
		printf("HOLD %d data BAD at word %ld\n", dev, bad);
	fflush(stdout);
	close(fd);
	return bad == -1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "place-hold"))
		return place_hold(atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "pressure"))
		return pressure(atol(argv[2]), atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "hold-munmap"))
		return hold_munmap(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "hold-abort"))
		return hold_abort();
	if (argc == 4 && !strcmp(argv[1], "hold-others"))
		return hold_others(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "loop"))
		return loop_copies(atoi(argv[2]), atoi(argv[3]));
	return test_harness_run(argc, argv);
}
