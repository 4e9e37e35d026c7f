// SPDX-License-Identifier: GPL-2.0
/*
 * vfio-dmabuf-tests - a p2plab BAR2 exported by vfio-pci as a dma-buf (VFIO_DEVICE_FEATURE_DMA_BUF)
 * and imported by another p2plab (P2PLAB_IOC_DMABUF_*, kmod/p2plab_dmabuf.c), whose engine copies
 * into and out of the exported slices. docs/vfio-dmabuf.md.
 *
 *   vfio-dmabuf-tests bind N      move /dev/p2plabN's device to vfio-pci (unbind, driver_override,
 *                                 drivers_probe); prints "BOUND <bdf> group <g> viable <0|1>"
 *   vfio-dmabuf-tests unbind BDF  give it back to p2plab
 *   vfio-dmabuf-tests bw MiB      "BW dmabuf p2plabI-><bdf> ..." (one batch, like p2plab-bw)
 *   vfio-dmabuf-tests mark OFF TEXT   the engine writes TEXT at BAR2 offset OFF through a dma-buf;
 *                                 prints "MARK <phys> ok" (for a host-side read: HMP xp)
 *   vfio-dmabuf-tests [harness options]   the tests (kselftest harness, TAP)
 *
 * The exporter is the p2plab device bound to vfio-pci (first found; P2PLAB_VFIO_BDF to choose),
 * the importer /dev/p2plab0 (P2PLAB_VFIO_IMPORTER=N). Tests SKIP when either is missing.
 * The expected P2P verdict comes from the test's own topology model (pl_expected_map(): common
 * switch + ACS + CPU vendor), P2PLAB_EXPECT_MAP_VFIO overrides it: the kernel's answer (the DMA
 * address in the sg_table, or the mapping error) is checked against it.
 * Env for the scenario-driven parts: P2PLAB_VFIO_LATENCY_US (the importer was made slow with
 * latency-us: the in-flight revocation tests run), P2PLAB_VFIO_UNPLUG=1 (unplug test: waits for
 * vfio's device request, which device_del of the exporter triggers).
 */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <linux/vfio.h>
#include "p2plab-lib.h"
#include "kselftest_harness.h"

#ifndef VFIO_DEVICE_FEATURE_DMA_BUF	/* uAPI of 7.x (include/uapi/linux/vfio.h), older headers */
#define VFIO_DEVICE_FEATURE_DMA_BUF 11
struct vfio_region_dma_range {
	__u64 offset;
	__u64 length;
};
struct vfio_device_feature_dma_buf {
	__u32	region_index;
	__u32	open_flags;
	__u32   flags;
	__u32   nr_ranges;
	struct vfio_region_dma_range dma_ranges[];
};
#endif

#define KiB (1024ull)
#define MiB (1024ull * 1024)
#define SCOPE (20 * MiB)		/* exporter BAR2 bytes checked for stray writes */
#define SEED_BG 0xb6			/* background pattern of the exporter's scope */

/* ---- sysfs ------------------------------------------------------------------------------------- */

static int sysfs_write(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), r;

	if (fd < 0)
		return -errno;
	r = write(fd, s, strlen(s)) < 0 ? -errno : 0;
	close(fd);
	return r;
}

static int sysfs_read_ull(const char *path, unsigned long long *v)
{
	FILE *f = fopen(path, "r");
	int r;

	if (!f)
		return -1;
	r = fscanf(f, "%lli", (long long *)v) == 1 ? 0 : -1;
	fclose(f);
	return r;
}

/* the driver bound to a PCI function ("" if none) */
static void pci_driver(const char *bdf, char *out, size_t n)
{
	char p[PATH_MAX], t[PATH_MAX];
	ssize_t l;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver", bdf);
	l = readlink(p, t, sizeof(t) - 1);
	out[0] = 0;
	if (l > 0) {
		t[l] = 0;
		snprintf(out, n, "%s", strrchr(t, '/') + 1);
	}
}

static int pci_group(const char *bdf)
{
	char p[PATH_MAX], t[PATH_MAX];
	ssize_t l;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/iommu_group", bdf);
	l = readlink(p, t, sizeof(t) - 1);
	if (l <= 0)
		return -1;
	t[l] = 0;
	return atoi(strrchr(t, '/') + 1);
}

/* BAR start (CPU physical) from sysfs "resource" */
static int pci_bar(const char *bdf, int bar, unsigned long long *start, unsigned long long *len)
{
	char p[PATH_MAX], line[256];
	unsigned long long s, e, fl;
	FILE *f;
	int i;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/resource", bdf);
	f = fopen(p, "r");
	if (!f)
		return -1;
	for (i = 0; i <= bar && fgets(line, sizeof(line), f); i++)
		;
	fclose(f);
	if (i <= bar || sscanf(line, "%lli %lli %lli", &s, &e, &fl) != 3 || !s)
		return -1;
	*start = s;
	*len = e - s + 1;
	return 0;
}

/* first p2plab function bound to vfio-pci (or P2PLAB_VFIO_BDF) */
static int find_exporter(char *bdf, size_t n)
{
	const char *env = getenv("P2PLAB_VFIO_BDF");
	char drv[64];
	DIR *d;
	struct dirent *e;

	if (env && *env) {
		snprintf(bdf, n, "%s", env);
		pci_driver(bdf, drv, sizeof(drv));
		return strcmp(drv, "vfio-pci") ? -1 : 0;
	}
	d = opendir("/sys/bus/pci/drivers/vfio-pci");
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		char p[PATH_MAX];
		unsigned long long v, dv;

		if (!strchr(e->d_name, ':'))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/vendor", e->d_name);
		if (sysfs_read_ull(p, &v) || v != P2PLAB_VENDOR_ID)
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/device", e->d_name);
		if (sysfs_read_ull(p, &dv) || dv != P2PLAB_DEVICE_ID)
			continue;
		if (strlen(e->d_name) >= n)
			continue;
		memcpy(bdf, e->d_name, strlen(e->d_name) + 1);
		closedir(d);
		return 0;
	}
	closedir(d);
	return -1;
}

static int importer_id(void)
{
	const char *e = getenv("P2PLAB_VFIO_IMPORTER");

	return e && *e ? atoi(e) : 0;
}

/* ---- vfio (type1 container + group: Debian's 7.3 has no iommufd and no VFIO_NOIOMMU) ----------- */

struct vf {
	int container, group, dev;
	char bdf[32];
	struct vfio_region_info bar, cfg;
	unsigned long long bar_phys, bar_len;
	unsigned char *map;		/* mmap of BAR2 through vfio, NULL if not mapped */
	int stage;			/* how far vf_open() got (for messages) */
};

static void vf_close(struct vf *v)
{
	if (v->map)
		munmap(v->map, v->bar.size);
	if (v->dev >= 0)
		close(v->dev);
	if (v->group >= 0)
		close(v->group);
	if (v->container >= 0)
		close(v->container);
	v->map = NULL;
	v->dev = v->group = v->container = -1;
}

static int vf_cmd_memory(struct vf *v, int on)
{
	uint16_t cmd;

	if (pread(v->dev, &cmd, 2, v->cfg.offset + 4) != 2)
		return -errno;
	cmd = on ? (cmd | 0x2) : (cmd & ~0x2);	/* PCI_COMMAND_MEMORY */
	if (pwrite(v->dev, &cmd, 2, v->cfg.offset + 4) != 2)
		return -errno;
	return 0;
}

static int vf_map(struct vf *v)
{
	void *m;

	if (!(v->bar.flags & VFIO_REGION_INFO_FLAG_MMAP))
		return -EOPNOTSUPP;
	m = mmap(NULL, v->bar.size, PROT_READ | PROT_WRITE, MAP_SHARED, v->dev, v->bar.offset);
	if (m == MAP_FAILED)
		return -errno;
	v->map = m;
	return 0;
}

/* 0, or -errno with v->stage saying where: 1 container, 2 group, 3 viable, 4 set container,
 * 5 set iommu, 6 device, 7 regions/config, 8 mmap */
static int vf_open(struct vf *v, const char *bdf)
{
	struct vfio_group_status st = { .argsz = sizeof(st) };
	char p[64];
	int g, r;

	memset(v, 0, sizeof(*v));
	v->container = v->group = v->dev = -1;
	snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
	v->stage = 1;
	v->container = open("/dev/vfio/vfio", O_RDWR | O_CLOEXEC);
	if (v->container < 0)
		return -errno;
	if (ioctl(v->container, VFIO_GET_API_VERSION) != VFIO_API_VERSION ||
	    ioctl(v->container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU) != 1)
		return -EOPNOTSUPP;
	v->stage = 2;
	g = pci_group(bdf);
	if (g < 0)
		return -ENOENT;
	snprintf(p, sizeof(p), "/dev/vfio/%d", g);
	v->group = open(p, O_RDWR | O_CLOEXEC);
	if (v->group < 0)
		return -errno;
	v->stage = 3;
	if (ioctl(v->group, VFIO_GROUP_GET_STATUS, &st))
		return -errno;
	if (!(st.flags & VFIO_GROUP_FLAGS_VIABLE))
		return -EPERM;
	v->stage = 4;
	if (ioctl(v->group, VFIO_GROUP_SET_CONTAINER, &v->container))
		return -errno;
	v->stage = 5;
	if (ioctl(v->container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU))
		return -errno;
	v->stage = 6;
	v->dev = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, bdf);
	if (v->dev < 0)
		return -errno;
	v->stage = 7;
	v->bar.argsz = sizeof(v->bar);
	v->bar.index = VFIO_PCI_BAR2_REGION_INDEX;
	v->cfg.argsz = sizeof(v->cfg);
	v->cfg.index = VFIO_PCI_CONFIG_REGION_INDEX;
	if (ioctl(v->dev, VFIO_DEVICE_GET_REGION_INFO, &v->bar) ||
	    ioctl(v->dev, VFIO_DEVICE_GET_REGION_INFO, &v->cfg))
		return -errno;
	if (pci_bar(bdf, 2, &v->bar_phys, &v->bar_len))
		return -ENOENT;
	/* as QEMU does for a guest: memory decoding on (the dma-buf is revoked while it is off) */
	r = vf_cmd_memory(v, 1);
	if (r)
		return r;
	v->stage = 8;
	return vf_map(v);
}

/* VFIO_DEVICE_FEATURE_DMA_BUF: fd, or -errno */
static int vf_export(int dev, uint32_t region, const struct vfio_region_dma_range *r, uint32_t n,
		     uint32_t flags)
{
	size_t sz = sizeof(struct vfio_device_feature) + sizeof(struct vfio_device_feature_dma_buf) +
		    (size_t)n * sizeof(*r);
	struct vfio_device_feature *f = calloc(1, sz);
	struct vfio_device_feature_dma_buf *db;
	int fd;

	if (!f)
		return -ENOMEM;
	f->argsz = sz;
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	db = (void *)f->data;
	db->region_index = region;
	db->open_flags = O_RDWR | O_CLOEXEC;
	db->flags = flags;
	db->nr_ranges = n;
	if (n)
		memcpy(db->dma_ranges, r, n * sizeof(*r));
	fd = ioctl(dev, VFIO_DEVICE_FEATURE, f);
	if (fd < 0)
		fd = -errno;
	free(f);
	return fd;
}

/*
 * The same with a raw nr_ranges larger than the array userspace passes (too many ranges): the
 * struct ends where a PROT_NONE page begins, so reading past it faults for sure.
 */
static int vf_export_raw(int dev, uint32_t nr, size_t nr_present)
{
	size_t sz = sizeof(struct vfio_device_feature) + sizeof(struct vfio_device_feature_dma_buf) +
		    nr_present * sizeof(struct vfio_region_dma_range);
	long pg = sysconf(_SC_PAGESIZE);
	struct vfio_device_feature_dma_buf *db;
	struct vfio_device_feature *f;
	unsigned char *m;
	size_t i;
	int fd;

	if (sz > (size_t)pg)
		return -EINVAL;
	m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return -ENOMEM;
	mprotect(m + pg, pg, PROT_NONE);
	f = (void *)(m + pg - sz);
	f->argsz = sz;
	f->flags = VFIO_DEVICE_FEATURE_GET | VFIO_DEVICE_FEATURE_DMA_BUF;
	db = (void *)f->data;
	db->region_index = VFIO_PCI_BAR2_REGION_INDEX;
	db->open_flags = O_RDWR | O_CLOEXEC;
	db->flags = 0;
	db->nr_ranges = nr;
	for (i = 0; i < nr_present; i++) {
		db->dma_ranges[i].offset = 0;
		db->dma_ranges[i].length = 4096;
	}
	fd = ioctl(dev, VFIO_DEVICE_FEATURE, f);
	if (fd < 0)
		fd = -errno;
	munmap(m, 2 * pg);
	return fd;
}

/* ---- the importer ------------------------------------------------------------------------------ */

static int imp_import(int pfd, int dmabuf, uint64_t *size)
{
	struct p2plab_dmabuf_import a = { .dmabuf_fd = dmabuf };

	if (ioctl(pfd, P2PLAB_IOC_DMABUF_IMPORT, &a))
		return -errno;
	if (size)
		*size = a.size;
	return a.import_fd;
}

static int imp_copy(int pfd, int ifd, int dir, uint64_t local, uint64_t off, uint64_t len,
		    uint32_t chunk, struct p2plab_dmabuf_copy *out)
{
	struct p2plab_dmabuf_copy a;
	int r;

	memset(&a, 0, sizeof(a));
	a.import_fd = ifd;
	a.dir = dir;
	a.local_off = local;
	a.buf_off = off;
	a.len = len;
	a.chunk = chunk;
	r = ioctl(pfd, P2PLAB_IOC_DMABUF_COPY, &a) ? -errno : 0;
	if (out)
		*out = a;
	return r;
}

static int imp_status(int pfd, int ifd, struct p2plab_dmabuf_status *s)
{
	memset(s, 0, sizeof(*s));
	s->import_fd = ifd;
	return ioctl(pfd, P2PLAB_IOC_DMABUF_STATUS, s) ? -errno : 0;
}

/* the verdict the test's topology model expects for importer -> exporter */
static int expected_map(const char *imp_bdf, const char *exp_bdf)
{
	int m = pl_map_from_name(getenv("P2PLAB_EXPECT_MAP_VFIO"));

	return m > 0 ? m : pl_expected_map(imp_bdf, exp_bdf);
}

/* ---- bind / unbind / bw ------------------------------------------------------------------------ */

static int cmd_bind(int id)
{
	struct p2plab_info in;
	char p[PATH_MAX], drv[64];
	int fd = pl_open(id), i, g;
	struct vfio_group_status st = { .argsz = sizeof(st) };

	if (fd < 0 || pl_info(fd, &in)) {
		fprintf(stderr, "no /dev/p2plab%d\n", id);
		return 1;
	}
	close(fd);
	/*
	 * The lab's intel-iommu has no interrupt remapping (TCG: intremap=off), so type1 refuses to
	 * attach a group unless told that MSIs need not be isolated; the tests use no interrupts.
	 */
	sysfs_write("/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts", "1");
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver/unbind", in.pci_name);
	if (sysfs_write(p, in.pci_name))
		return perror("unbind"), 1;
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", in.pci_name);
	if (sysfs_write(p, "vfio-pci"))
		return perror("driver_override"), 1;
	if (sysfs_write("/sys/bus/pci/drivers_probe", in.pci_name))
		return perror("drivers_probe"), 1;
	for (i = 0; i < 50; i++) {	/* bounded: 5 s */
		pci_driver(in.pci_name, drv, sizeof(drv));
		if (!strcmp(drv, "vfio-pci"))
			break;
		usleep(100000);
	}
	if (strcmp(drv, "vfio-pci")) {
		fprintf(stderr, "%s: driver '%s', not vfio-pci\n", in.pci_name, drv);
		return 1;
	}
	g = pci_group(in.pci_name);
	snprintf(p, sizeof(p), "/dev/vfio/%d", g);
	fd = open(p, O_RDWR);
	if (fd >= 0) {
		if (ioctl(fd, VFIO_GROUP_GET_STATUS, &st))
			st.flags = 0;
		close(fd);
	}
	printf("BOUND %s group %d viable %d\n", in.pci_name, g,
	       !!(st.flags & VFIO_GROUP_FLAGS_VIABLE));
	return 0;
}

static int cmd_unbind(const char *bdf)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
	sysfs_write(p, bdf);
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver_override", bdf);
	sysfs_write(p, "\n");
	return sysfs_write("/sys/bus/pci/drivers_probe", bdf) ? 1 : 0;
}

static int cmd_bw(int mib, int reps)
{
	struct vfio_region_dma_range r = { .offset = 0, .length = (uint64_t)mib * MiB };
	struct p2plab_dmabuf_copy c;
	char bdf[32];
	struct vf v;
	double best_to = 0, best_from = 0;
	int pfd, dfd, ifd, k, r0;

	if (find_exporter(bdf, sizeof(bdf)) || vf_open(&v, bdf)) {
		fprintf(stderr, "no vfio-bound p2plab\n");
		return 1;
	}
	pfd = pl_open(importer_id());
	dfd = vf_export(v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ifd = dfd >= 0 && pfd >= 0 ? imp_import(pfd, dfd, NULL) : -1;
	if (ifd < 0) {
		fprintf(stderr, "export/import failed: %d %d\n", dfd, ifd);
		return 1;
	}
	r0 = imp_copy(pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, r.length, &c);
	if (r0 && c.map_err) {
		printf("BW dmabuf p2plab%d->%s %d MiB refused (map_err %d)\n", importer_id(), bdf,
		       mib, c.map_err);
		return 0;
	}
	for (k = 0; k < reps; k++) {
		r0 = imp_copy(pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, r.length, &c);
		if (!r0 && c.res.ns && r.length / (c.res.ns / 1e9) / 1e6 > best_to)
			best_to = r.length / (c.res.ns / 1e9) / 1e6;
		r0 = imp_copy(pfd, ifd, P2PLAB_DMABUF_FROM, 0, 0, r.length, r.length, &c);
		if (!r0 && c.res.ns && r.length / (c.res.ns / 1e9) / 1e6 > best_from)
			best_from = r.length / (c.res.ns / 1e9) / 1e6;
	}
	printf("BW dmabuf p2plab%d->%s %d MiB %.0f MB/s\n", importer_id(), bdf, mib, best_to);
	printf("BW dmabuf %s->p2plab%d %d MiB %.0f MB/s\n", bdf, importer_id(), mib, best_from);
	close(ifd);
	close(dfd);
	close(pfd);
	vf_close(&v);
	return best_to > 0 && best_from > 0 ? 0 : 1;
}

/*
 * mark OFF TEXT: p2plab0's engine writes TEXT through a dma-buf of [OFF, OFF + 4 KiB) of the
 * exporter's BAR2; prints "MARK <CPU physical address>" so the host can read it back (HMP xp,
 * the device's RAM block) independently of the guest.
 */
static int cmd_mark(unsigned long long off, const char *text)
{
	struct vfio_region_dma_range r = { off, 4096 };
	struct p2plab_dmabuf_copy c;
	size_t len = strlen(text);
	char bdf[32];
	struct vf v;
	int pfd, dfd, ifd;

	if (!len || len > 4096 || find_exporter(bdf, sizeof(bdf)) || vf_open(&v, bdf))
		return 1;
	pfd = pl_open(importer_id());
	if (pfd < 0 || pl_pwrite_all(pfd, text, len, 0))
		return 1;
	dfd = vf_export(v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ifd = dfd >= 0 ? imp_import(pfd, dfd, NULL) : -1;
	if (ifd < 0)
		return 1;
	if (imp_copy(pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, len, 0, &c)) {
		if (!c.map_err)
			return 1;
		printf("MARK %#llx refused (map_err %d)\n", v.bar_phys + off, c.map_err);
		return 0;
	}
	printf("MARK %#llx %s\n", v.bar_phys + off, memcmp(v.map + off, text, len) ? "differs" : "ok");
	close(ifd);
	close(dfd);
	close(pfd);
	vf_close(&v);
	return 0;
}

/* ---- fixture: exporter (vfio) + importer (/dev/p2plabN) ---------------------------------------- */

FIXTURE(vd) {
	struct vf v;
	int pfd;			/* importer /dev/p2plabN */
	struct p2plab_info pin;
	int expect;			/* P2PLAB_MAP_* the model expects */
	unsigned char *bg;		/* SCOPE bytes of background pattern */
};

static void vd_open(struct __test_metadata *_metadata, FIXTURE_DATA(vd) *self)
{
	char bdf[32];
	int r;

	self->v.dev = self->v.group = self->v.container = -1;
	self->pfd = -1;
	self->bg = NULL;
	if (access("/dev/vfio/vfio", F_OK))
		SKIP(return, "no /dev/vfio/vfio (vfio not loaded)");
	if (find_exporter(bdf, sizeof(bdf)))
		SKIP(return, "no p2plab bound to vfio-pci (vfio-dmabuf-tests bind N)");
	self->pfd = pl_open(importer_id());
	if (self->pfd < 0)
		SKIP(return, "no importer /dev/p2plab%d", importer_id());
	ASSERT_EQ(0, pl_info(self->pfd, &self->pin));
	r = vf_open(&self->v, bdf);
	if (r == -EPERM && self->v.stage == 3)
		SKIP(return, "IOMMU group of %s not viable (shared with a bound device)", bdf);
	ASSERT_EQ(0, r) TH_LOG("vf_open(%s) failed at stage %d: %s", bdf, self->v.stage,
			       strerror(-r));
	ASSERT_GE(self->v.bar.size, SCOPE);
	self->expect = expected_map(self->pin.pci_name, bdf);
	/* background pattern over the scope: every byte outside the exported ranges must keep it */
	self->bg = malloc(SCOPE);
	ASSERT_NE(NULL, self->bg);
	pl_fill(self->bg, SCOPE, SEED_BG);
	memcpy(self->v.map, self->bg, SCOPE);
	TH_LOG("exporter %s (BAR2 %#llx, %llu MiB), importer p2plab%u %s, expect %s", bdf,
	       self->v.bar_phys, self->v.bar_len >> 20, self->pin.id, self->pin.pci_name,
	       pl_map_name(self->expect));
}

FIXTURE_SETUP(vd)
{
	vd_open(_metadata, self);
}

FIXTURE_TEARDOWN(vd)
{
	vf_close(&self->v);
	if (self->pfd >= 0)
		close(self->pfd);
	free(self->bg);
}

/* compare the scope with bg + each range holding src[pos..] in order; -1 or the bad offset */
static long check_scope(const unsigned char *map, const unsigned char *bg,
			const struct vfio_region_dma_range *r, unsigned int n,
			const unsigned char *src, unsigned char *exp)
{
	uint64_t pos = 0;
	unsigned int i;

	memcpy(exp, bg, SCOPE);
	for (i = 0; i < n; i++) {
		if (src)
			memcpy(exp + r[i].offset, src + pos, r[i].length);
		pos += r[i].length;
	}
	return pl_cmp(exp, map, SCOPE);
}

static uint64_t ranges_len(const struct vfio_region_dma_range *r, unsigned int n)
{
	uint64_t s = 0;

	while (n--)
		s += r[n].length;
	return s;
}

/* ---- export -> import -> map -> DMA, per slice layout ------------------------------------------ */

#define MAX_R 256
FIXTURE_VARIANT(vd) {
	unsigned int n;				/* ranges */
	struct vfio_region_dma_range r[8];	/* n <= 8: as given; else generated: every other page */
	uint64_t gen_base;
};
FIXTURE_VARIANT_ADD(vd, one_range) { .n = 1, .r = { { 1 * MiB, 4 * MiB } } };
FIXTURE_VARIANT_ADD(vd, three_ranges) {
	.n = 3, .r = { { 8 * MiB, 1 * MiB }, { 0, 64 * KiB }, { 2 * MiB + 4 * KiB, 12 * KiB } } };
FIXTURE_VARIANT_ADD(vd, pages_256) { .n = MAX_R, .gen_base = 16 * MiB };

static unsigned int variant_ranges(const FIXTURE_VARIANT(vd) *va, struct vfio_region_dma_range *r)
{
	unsigned int i;

	if (va->n <= 8) {
		memcpy(r, va->r, va->n * sizeof(*r));
		return va->n;
	}
	for (i = 0; i < va->n; i++) {
		r[i].offset = va->gen_base + 2ull * i * 4096;
		r[i].length = 4096;
	}
	return va->n;
}

TEST_F(vd, copy_through_dmabuf)
{
	struct vfio_region_dma_range r[MAX_R];
	unsigned int n = variant_ranges(variant, r);
	uint64_t len = ranges_len(r, n), size = 0, local = 4 * MiB;
	struct p2plab_dmabuf_copy c;
	struct p2plab_dmabuf_status st;
	unsigned char *src = malloc(len), *back = malloc(len), *exp = malloc(SCOPE);
	int dfd, ifd, ret;
	long bad;

	ASSERT_TRUE(src && back && exp);
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, r, n, 0);
	ASSERT_GE(dfd, 0) TH_LOG("VFIO_DEVICE_FEATURE_DMA_BUF: %s", strerror(-dfd));
	ifd = imp_import(self->pfd, dfd, &size);
	ASSERT_GE(ifd, 0) TH_LOG("import: %s", strerror(-ifd));
	ASSERT_EQ(len, size);

	/* importer BAR2 -> the slices */
	pl_fill(src, len, 11);
	ASSERT_EQ(0, pl_pwrite_all(self->pfd, src, len, local));
	ret = imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, local, 0, len, 0, &c);
	if (self->expect == P2PLAB_MAP_NOT_SUPPORTED) {
		/* dma_buf_phys_vec_to_sgt(): pci_p2pdma_map_type() says no -> -EINVAL */
		ASSERT_NE(0, ret);
		EXPECT_EQ(-EINVAL, ret);
		EXPECT_EQ(-EINVAL, c.map_err);
		EXPECT_EQ(P2PLAB_MAP_NOT_SUPPORTED, c.res.map_type);
		EXPECT_EQ(0, c.done);
		EXPECT_EQ(-1, check_scope(self->v.map, self->bg, r, n, NULL, exp));
		ASSERT_EQ(0, imp_status(self->pfd, ifd, &st));
		EXPECT_EQ(0, st.maps);
		EXPECT_EQ(1, st.map_errors);
		TH_LOG("refused as expected: the mapping failed (%s), nothing written",
		       strerror(-c.map_err));
		goto out;
	}
	ASSERT_EQ(0, ret) TH_LOG("copy: %s map_err %d err_code %#x", strerror(-ret), c.map_err,
				 c.res.err_code);
	EXPECT_EQ(len, c.done);
	bad = check_scope(self->v.map, self->bg, r, n, src, exp);
	EXPECT_EQ(-1, bad) TH_LOG("exporter BAR2 byte %ld differs", bad);
	/* the kernel's DMA address for buffer offset 0 vs the model */
	if (self->expect == P2PLAB_MAP_BUS_ADDR) {
		EXPECT_EQ(self->v.bar_phys + r[0].offset, c.dma_addr) TH_LOG("bus address expected");
		EXPECT_EQ(n, c.nsegs);
	} else {
		/* host bridge: with the IOMMU one IOVA range for all slices (dma_iova_link) */
		EXPECT_NE(self->v.bar_phys + r[0].offset, c.dma_addr);
		EXPECT_EQ(1, c.nsegs);
	}
	TH_LOG("%u range(s), %llu bytes, dma_addr %#llx, %u segment(s)", n,
	       (unsigned long long)len, (unsigned long long)c.dma_addr, c.nsegs);

	/* the slices -> importer BAR2, written there by the CPU through the vfio mmap */
	pl_fill(src, len, 12);
	{
		uint64_t pos = 0;
		unsigned int i;

		for (i = 0; i < n; i++) {
			memcpy(self->v.map + r[i].offset, src + pos, r[i].length);
			pos += r[i].length;
		}
	}
	ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_FROM, local + 32 * MiB, 0, len, 0, &c));
	ASSERT_EQ(0, pl_pread_all(self->pfd, back, len, local + 32 * MiB));
	EXPECT_EQ(-1, pl_cmp(src, back, len));

	/* an odd piece across the first range boundary, through pread on the vfio fd too */
	if (len > 5000) {
		uint64_t off = r[0].length > 3000 ? r[0].length - 2999 : 1, l = 4321 < len - off ?
			       4321 : len - off;

		pl_fill(src, l, 13);
		ASSERT_EQ(0, pl_pwrite_all(self->pfd, src, l, local + 7));
		ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, local + 7, off, l, 0, &c));
		if (off + l <= r[0].length) {
			ASSERT_EQ(0, pl_pread_all(self->v.dev, back, l,
						  self->v.bar.offset + r[0].offset + off));
			EXPECT_EQ(-1, pl_cmp(src, back, l));
		}
	}
	ASSERT_EQ(0, imp_status(self->pfd, ifd, &st));
	EXPECT_EQ(1, st.maps);		/* mapped once, reused */
	EXPECT_EQ(0, st.invalidations);
	EXPECT_TRUE(st.flags & P2PLAB_DMABUF_F_MAPPED);
out:
	close(ifd);
	close(dfd);
	free(src);
	free(back);
	free(exp);
}

/* ---- bad input: vfio's checks and the importer's --------------------------------------------- */

TEST_F(vd, bad_export)
{
	uint64_t bar = self->v.bar.size;
	unsigned char *exp = malloc(SCOPE);
	int fd;

	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	ASSERT_NE(NULL, exp);
#define BAD(ra, rb, nr, region, flags, err) do {					\
		struct vfio_region_dma_range b_[2] = { ra, rb };			\
		fd = vf_export(self->v.dev, region, b_, nr, flags);			\
		EXPECT_EQ(-(err), fd) TH_LOG("line %d: got %d", __LINE__, fd);		\
		if (fd >= 0)								\
			close(fd);							\
	} while (0)
#define R(o, l) ((struct vfio_region_dma_range){ (o), (l) })
	BAD(R(0, 0), R(0, 0), 1, 2, 0, EINVAL);			/* zero length */
	BAD(R(100, 4096), R(0, 0), 1, 2, 0, EINVAL);		/* unaligned offset */
	BAD(R(0, 4097), R(0, 0), 1, 2, 0, EINVAL);		/* unaligned length */
	BAD(R(bar - 4096, 8192), R(0, 0), 1, 2, 0, EINVAL);	/* past the BAR's end */
	BAD(R(bar, 4096), R(0, 0), 1, 2, 0, EINVAL);		/* at the BAR's end */
	BAD(R(~0ull & ~4095ull, 4096), R(0, 0), 1, 2, 0, EOVERFLOW);	/* offset wraps */
	BAD(R(0, 4096), R(8192, 0), 2, 2, 0, EINVAL);		/* second range zero */
	BAD(R(0, 4096), R(0, 0), 0, 2, 0, EINVAL);		/* no ranges */
	BAD(R(0, 4096), R(0, 0), 1, 2, 1, EINVAL);		/* flags */
	BAD(R(0, 4096), R(0, 0), 1, 1, 0, ENODEV);		/* BAR1: not implemented */
	BAD(R(0, 4096), R(0, 0), 1, 4, 0, ENODEV);		/* BAR4: not implemented */
	BAD(R(0, 4096), R(0, 0), 1, VFIO_PCI_ROM_REGION_INDEX, 0, ENODEV);
	BAD(R(0, 4096), R(0, 0), 1, VFIO_PCI_CONFIG_REGION_INDEX, 0, ENODEV);
	BAD(R(0, 4096), R(0, 0), 1, 1000, 0, ENODEV);
	/* too many ranges: nr_ranges beyond the array userspace passed, and absurd counts */
	EXPECT_EQ(-EFAULT, vf_export_raw(self->v.dev, 2, 1));
	EXPECT_EQ(-EFAULT, vf_export_raw(self->v.dev, 1000, 1));
	fd = vf_export_raw(self->v.dev, 1u << 20, 1);		/* 16 MiB of ranges: kmalloc says no */
	EXPECT_TRUE(fd == -ENOMEM || fd == -EFAULT) TH_LOG("got %d", fd);
	fd = vf_export_raw(self->v.dev, 0xffffffffu, 1);
	EXPECT_TRUE(fd == -EOVERFLOW || fd == -ENOMEM || fd == -EFAULT) TH_LOG("got %d", fd);
	/* nothing was written anywhere in the scope */
	EXPECT_EQ(-1, check_scope(self->v.map, self->bg, NULL, 0, NULL, exp));
	free(exp);
#undef BAD
#undef R
}

/*
 * Ranges vfio accepts although they are odd: overlapping slices (validate_dmabuf_input() checks
 * alignment and size only) and many ranges; the importer must copy them right (later ranges win
 * where they overlap, as the engine writes in order).
 */
TEST_F(vd, overlap_and_many_ranges)
{
	struct vfio_region_dma_range r[2] = { { 12 * MiB, 64 * KiB }, { 12 * MiB + 32 * KiB, 64 * KiB } };
	unsigned char *src = malloc(128 * KiB), *exp = malloc(SCOPE);
	struct p2plab_dmabuf_copy c;
	int dfd, ifd;
	long bad;

	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	if (self->expect == P2PLAB_MAP_NOT_SUPPORTED)
		SKIP(return, "P2P refused here (copy_through_dmabuf checks the refusal)");
	ASSERT_TRUE(src && exp);
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, r, 2, 0);
	ASSERT_GE(dfd, 0) TH_LOG("overlapping ranges refused: %s", strerror(-dfd));
	ifd = imp_import(self->pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	pl_fill(src, 128 * KiB, 21);
	ASSERT_EQ(0, pl_pwrite_all(self->pfd, src, 128 * KiB, 0));
	ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, 128 * KiB, 0, &c));
	bad = check_scope(self->v.map, self->bg, r, 2, src, exp);
	EXPECT_EQ(-1, bad) TH_LOG("byte %ld", bad);
	close(ifd);
	close(dfd);
	free(src);
	free(exp);
}

TEST_F(vd, bad_import_and_copy)
{
	struct vfio_region_dma_range r = { 1 * MiB, 1 * MiB };
	struct p2plab_dmabuf_import im;
	struct p2plab_dmabuf_copy c;
	struct p2plab_stats s0, s1;
	unsigned char *exp = malloc(SCOPE);
	int dfd, ifd, nul, other;

	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	ASSERT_NE(NULL, exp);
	ASSERT_EQ(0, ioctl(self->pfd, P2PLAB_IOC_STATS, &s0));
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	nul = open("/dev/null", O_RDWR);
	EXPECT_EQ(-EINVAL, imp_import(self->pfd, nul, NULL));	/* not a dma-buf */
	EXPECT_EQ(-EBADF, imp_import(self->pfd, 1000, NULL));	/* no such fd */
	memset(&im, 0, sizeof(im));
	im.dmabuf_fd = dfd;
	im.flags = 1;
	EXPECT_EQ(-1, ioctl(self->pfd, P2PLAB_IOC_DMABUF_IMPORT, &im));
	EXPECT_EQ(EINVAL, errno);
	ifd = imp_import(self->pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, 0, 0, &c));
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, ifd, 2, 0, 0, 4096, 0, &c));
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, 4096, 1, &c));
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, 4096, 4095, &c));
	EXPECT_EQ(-ERANGE, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 1 * MiB, 1, 0, &c));
	EXPECT_EQ(-ERANGE, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 4096, 1 * MiB, 0, &c));
	EXPECT_EQ(-ERANGE, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, ~0ull, 2, 0, &c));
	EXPECT_EQ(-ERANGE, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, ~0ull - 1, 0, 4, 0, &c));
	EXPECT_EQ(-E2BIG, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, 1ull << 40, 0, &c));
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, dfd, P2PLAB_DMABUF_TO, 0, 0, 4096, 0, &c));
	EXPECT_EQ(-EBADF, imp_copy(self->pfd, 1000, P2PLAB_DMABUF_TO, 0, 0, 4096, 0, &c));
	EXPECT_EQ(-EINVAL, imp_copy(self->pfd, nul, P2PLAB_DMABUF_TO, 0, 0, 4096, 0, &c));
	/* an import made on this device is not usable through another p2plab */
	other = pl_open(importer_id() == 0 ? 1 : 0);
	if (other >= 0) {
		EXPECT_EQ(-EINVAL, imp_copy(other, ifd, P2PLAB_DMABUF_TO, 0, 0, 4096, 0, &c));
		close(other);
	}
	/* nothing reached the engine, nothing was written */
	ASSERT_EQ(0, ioctl(self->pfd, P2PLAB_IOC_STATS, &s1));
	EXPECT_EQ(s0.descs, s1.descs);
	EXPECT_EQ(-1, check_scope(self->v.map, self->bg, NULL, 0, NULL, exp));
	close(nul);
	close(ifd);
	close(dfd);
	free(exp);
}

enum { REV_RESET, REV_CLOSE, REV_MEM_OFF };
static int do_revoke(struct vf *v, int how);
static int reopen_dev(struct vf *v);

/*
 * Two importers on one dma-buf (two attachments, p2plab0 and another p2plab): each gets the
 * kernel's own verdict for its position, and one revoke (close) reaches both
 * (dma_buf_invalidate_mappings walks every attachment).
 */
TEST_F(vd, two_importers)
{
	struct vfio_region_dma_range r = { 6 * MiB, 1 * MiB };
	unsigned char *src = malloc(r.length), *exp = malloc(SCOPE);
	struct p2plab_dmabuf_status st;
	struct p2plab_dmabuf_copy c;
	struct p2plab_info oin;
	int ids[PL_MAX_DEVS], n = pl_list(ids), k, ofd = -1, dfd, ifd, ifd2, ret, oexp, g;

	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	for (k = 0; k < n && ofd < 0; k++) {
		if (ids[k] == (int)self->pin.id)
			continue;
		ofd = pl_open(ids[k]);
	}
	if (ofd < 0)
		SKIP(return, "needs a second p2plab besides the importer");
	ASSERT_TRUE(src && exp);
	ASSERT_EQ(0, pl_info(ofd, &oin));
	oexp = expected_map(oin.pci_name, self->v.bdf);
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->pfd, dfd, NULL);
	ifd2 = imp_import(ofd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	ASSERT_GE(ifd2, 0);
	/* the first half from the importer, the second half from the other device */
	pl_fill(src, r.length, 51);
	ASSERT_EQ(0, pl_pwrite_all(self->pfd, src, r.length / 2, 0));
	ASSERT_EQ(0, pl_pwrite_all(ofd, src + r.length / 2, r.length / 2, 0));
	ret = imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length / 2, 0, &c);
	EXPECT_EQ(self->expect == P2PLAB_MAP_NOT_SUPPORTED ? -EINVAL : 0, ret);
	ret = imp_copy(ofd, ifd2, P2PLAB_DMABUF_TO, 0, r.length / 2, r.length / 2, 0, &c);
	EXPECT_EQ(oexp == P2PLAB_MAP_NOT_SUPPORTED ? -EINVAL : 0, ret);
	TH_LOG("importer p2plab%u: %s; p2plab%u: %s (%s)", self->pin.id,
	       pl_map_name(self->expect), oin.id, pl_map_name(oexp), strerror(-ret));
	if (self->expect != P2PLAB_MAP_NOT_SUPPORTED)
		memcpy(self->bg + r.offset, src, r.length / 2);
	if (oexp != P2PLAB_MAP_NOT_SUPPORTED)
		memcpy(self->bg + r.offset + r.length / 2, src + r.length / 2, r.length / 2);
	EXPECT_EQ(-1, check_scope(self->v.map, self->bg, NULL, 0, NULL, exp));

	/* one close revokes both attachments */
	g = self->v.group;
	ASSERT_EQ(0, do_revoke(&self->v, REV_CLOSE));
	ASSERT_EQ(0, imp_status(self->pfd, ifd, &st));
	EXPECT_EQ(1, st.invalidations);
	EXPECT_EQ(st.maps, st.unmaps);
	ASSERT_EQ(0, imp_status(ofd, ifd2, &st));
	EXPECT_EQ(1, st.invalidations);
	EXPECT_EQ(st.maps, st.unmaps);
	EXPECT_EQ(-ENODEV, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	EXPECT_EQ(-ENODEV, imp_copy(ofd, ifd2, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	ASSERT_EQ(g, self->v.group);
	ASSERT_EQ(0, reopen_dev(&self->v));
	EXPECT_EQ(-1, check_scope(self->v.map, self->bg, NULL, 0, NULL, exp));
	close(ifd2);
	close(ifd);
	close(dfd);
	close(ofd);
	free(src);
	free(exp);
}

/* ---- revocation ------------------------------------------------------------------------------- */

FIXTURE(rv) {
	FIXTURE_DATA(vd) d;
};
FIXTURE_VARIANT(rv) {
	int how;
};
FIXTURE_VARIANT_ADD(rv, reset) { .how = REV_RESET };
FIXTURE_VARIANT_ADD(rv, close) { .how = REV_CLOSE };
FIXTURE_VARIANT_ADD(rv, mem_off) { .how = REV_MEM_OFF };

FIXTURE_SETUP(rv)
{
	vd_open(_metadata, &self->d);
	if (_metadata->exit_code)
		return;
	if (self->d.expect == P2PLAB_MAP_NOT_SUPPORTED)
		SKIP(return, "P2P refused here: nothing to revoke");
}

FIXTURE_TEARDOWN(rv)
{
	vf_close(&self->d.v);
	if (self->d.pfd >= 0)
		close(self->d.pfd);
	free(self->d.bg);
}

static int do_revoke(struct vf *v, int how)
{
	switch (how) {
	case REV_RESET:
		return ioctl(v->dev, VFIO_DEVICE_RESET) ? -errno : 0;
	case REV_CLOSE:
		if (v->map)
			munmap(v->map, v->bar.size);
		v->map = NULL;
		close(v->dev);
		v->dev = -1;
		return 0;
	default:
		return vf_cmd_memory(v, 0);
	}
}

/* after REV_CLOSE: open the device again to read the BAR (a new open, a new mmap) */
static int reopen_dev(struct vf *v)
{
	v->dev = ioctl(v->group, VFIO_GROUP_GET_DEVICE_FD, v->bdf);
	if (v->dev < 0)
		return -errno;
	if (vf_cmd_memory(v, 1))
		return -EIO;
	return vf_map(v);
}

/*
 * Idle revocation: a mapping exists (one copy done), the exporter revokes: invalidate_mappings
 * runs once, the importer unmaps. Then the next copy: after a reset vfio re-enables the dma-buf
 * (memory is on again) and the importer maps anew; after close it stays revoked for good (ENODEV);
 * with memory decoding off it is revoked until it is turned on again.
 */
TEST_F(rv, idle)
{
	struct vfio_region_dma_range r = { 2 * MiB, 1 * MiB };
	unsigned char *src = malloc(r.length), *exp = malloc(SCOPE);
	struct p2plab_dmabuf_status st;
	struct p2plab_dmabuf_copy c;
	struct p2plab_stats s0, s1;
	int dfd, ifd, ret;
	long bad;

	ASSERT_TRUE(src && exp);
	dfd = vf_export(self->d.v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->d.pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	pl_fill(src, r.length, 31);
	ASSERT_EQ(0, pl_pwrite_all(self->d.pfd, src, r.length, 0));
	ASSERT_EQ(0, imp_copy(self->d.pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	ASSERT_EQ(0, imp_status(self->d.pfd, ifd, &st));
	ASSERT_EQ(1, st.maps);

	ASSERT_EQ(0, do_revoke(&self->d.v, variant->how));
	ASSERT_EQ(0, imp_status(self->d.pfd, ifd, &st));
	/* a reset revokes and then restores the dma-buf: vfio notifies importers both times */
	EXPECT_EQ(variant->how == REV_RESET ? 2 : 1, st.invalidations);
	EXPECT_EQ(1, st.unmaps);
	EXPECT_FALSE(st.flags & P2PLAB_DMABUF_F_MAPPED);

	/* the next copy: new data, so a stray write would show */
	ASSERT_EQ(0, ioctl(self->d.pfd, P2PLAB_IOC_STATS, &s0));
	pl_fill(src + 0, r.length, 32);
	ASSERT_EQ(0, pl_pwrite_all(self->d.pfd, src, r.length, 0));
	ret = imp_copy(self->d.pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c);
	ASSERT_EQ(0, ioctl(self->d.pfd, P2PLAB_IOC_STATS, &s1));
	if (variant->how == REV_RESET) {
		EXPECT_EQ(0, ret) TH_LOG("after reset: %s", strerror(-ret));
		ASSERT_EQ(0, imp_status(self->d.pfd, ifd, &st));
		EXPECT_EQ(2, st.maps);
	} else {
		EXPECT_EQ(-ENODEV, ret);
		EXPECT_EQ(-ENODEV, c.map_err);
		EXPECT_EQ(0, c.done);
		EXPECT_EQ(s0.descs, s1.descs);	/* nothing was posted */
		ASSERT_EQ(0, imp_status(self->d.pfd, ifd, &st));
		EXPECT_EQ(1, st.maps);
		EXPECT_EQ(1, st.map_errors);
	}
	if (variant->how == REV_CLOSE)
		ASSERT_EQ(0, reopen_dev(&self->d.v));
	if (variant->how == REV_MEM_OFF) {
		/* the BAR keeps the first copy; memory on again: the dma-buf works again */
		ASSERT_EQ(0, vf_cmd_memory(&self->d.v, 1));
		pl_fill(src, r.length, 31);
		bad = check_scope(self->d.v.map, self->d.bg, &r, 1, src, exp);
		EXPECT_EQ(-1, bad) TH_LOG("byte %ld", bad);
		pl_fill(src, r.length, 32);
		EXPECT_EQ(0, imp_copy(self->d.pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	} else if (variant->how == REV_CLOSE) {
		pl_fill(src, r.length, 31);	/* only the copy before the close arrived */
	}
	bad = check_scope(self->d.v.map, self->d.bg, &r, 1, src, exp);
	EXPECT_EQ(-1, bad) TH_LOG("byte %ld", bad);
	close(ifd);
	close(dfd);
	free(src);
	free(exp);
}

struct inflight {
	int pfd, ifd, ret;
	uint64_t len, chunk;
	struct p2plab_dmabuf_copy c;
	double t0, t1;
};

static void *inflight_copy(void *p)
{
	struct inflight *a = p;

	a->t0 = pl_now();
	a->ret = imp_copy(a->pfd, a->ifd, P2PLAB_DMABUF_TO, 0, 0, a->len, a->chunk, &a->c);
	a->t1 = pl_now();
	return NULL;
}

/*
 * Revocation while a copy runs: the importer's engine is slow (latency-us per descriptor, set by
 * the scenario; P2PLAB_VFIO_LATENCY_US tells us), the copy is 8 batches of 256 KiB. The revoke
 * comes half-way through the first batch: the exporter's call waits for that batch (bounded),
 * the copy stops there (ECANCELED, done = 256 KiB) and the rest of the slice keeps its old bytes.
 */
TEST_F(rv, inflight)
{
	const char *lat = getenv("P2PLAB_VFIO_LATENCY_US");
	struct vfio_region_dma_range r = { 4 * MiB, 2 * MiB };
	unsigned char *src = malloc(r.length), *exp = malloc(SCOPE), *old = malloc(r.length);
	struct p2plab_dmabuf_status st;
	struct inflight a = { .len = r.length, .chunk = 256 * KiB };
	double lat_s, t_rev0, t_rev1;
	pthread_t th;
	int dfd, ifd, ret, i;
	long bad;

	if (!lat || atoll(lat) < 200000)
		SKIP(return, "needs the importer slowed down: latency-us >= 200000 (P2PLAB_VFIO_LATENCY_US)");
	lat_s = atoll(lat) / 1e6;
	ASSERT_TRUE(src && exp && old);
	dfd = vf_export(self->d.v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->d.pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	pl_fill(old, r.length, 41);
	memcpy(self->d.v.map + r.offset, old, r.length);
	memcpy(self->d.bg + r.offset, old, r.length);
	pl_fill(src, r.length, 42);
	ASSERT_EQ(0, pl_pwrite_all(self->d.pfd, src, r.length, 0));

	a.pfd = self->d.pfd;
	a.ifd = ifd;
	ASSERT_EQ(0, pthread_create(&th, NULL, inflight_copy, &a));
	/* the first batch is on the engine (bounded wait), then half of it passes */
	for (i = 0; i < 500; i++) {
		if (!imp_status(self->d.pfd, ifd, &st) && (st.flags & P2PLAB_DMABUF_F_INFLIGHT))
			break;
		usleep(2000);
	}
	usleep((useconds_t)(lat_s * 0.5e6));
	t_rev0 = pl_now();
	ret = do_revoke(&self->d.v, variant->how);
	t_rev1 = pl_now();
	pthread_join(th, NULL);
	ASSERT_EQ(0, ret);
	EXPECT_LT(i, 500) TH_LOG("the first batch was never seen in flight");
	TH_LOG("copy %.2f..%.2f s: %s, done %llu; revoke %.2f..%.2f s", 0.0, a.t1 - a.t0,
	       strerror(-a.ret), (unsigned long long)a.c.done, t_rev0 - a.t0, t_rev1 - a.t0);
	EXPECT_EQ(-ECANCELED, a.ret);
	EXPECT_EQ(256 * KiB, a.c.done);
	/* the revoke waited for the batch in flight, not for the whole copy */
	EXPECT_LT(t_rev1 - a.t0, 3 * lat_s);
	EXPECT_LT(a.t1 - a.t0, 3 * lat_s);
	ASSERT_EQ(0, imp_status(self->d.pfd, ifd, &st));
	EXPECT_EQ(variant->how == REV_RESET ? 2 : 1, st.invalidations);
	EXPECT_EQ(1, st.cancelled);
	EXPECT_EQ(st.maps, st.unmaps);

	if (variant->how == REV_CLOSE)
		ASSERT_EQ(0, reopen_dev(&self->d.v));
	if (variant->how == REV_MEM_OFF)
		ASSERT_EQ(0, vf_cmd_memory(&self->d.v, 1));
	/* the first 256 KiB arrived, nothing after the revoke */
	memcpy(self->d.bg + r.offset, src, 256 * KiB);
	bad = check_scope(self->d.v.map, self->d.bg, NULL, 0, NULL, exp);
	EXPECT_EQ(-1, bad) TH_LOG("byte %ld (slice at %llu)", bad, (unsigned long long)r.offset);
	close(ifd);
	close(dfd);
	free(src);
	free(exp);
	free(old);
}

struct copier {
	int pfd, ifd;
	volatile int stop;
	int ret;			/* the last copy's result */
	uint64_t copies;
};

static void *copy_loop(void *p)
{
	struct copier *a = p;
	struct p2plab_dmabuf_copy c;

	while (!a->stop) {
		a->ret = imp_copy(a->pfd, a->ifd, P2PLAB_DMABUF_TO, 0, 0, 1 * MiB, 256 * KiB, &c);
		if (a->ret)
			break;
		a->copies++;
	}
	return NULL;
}

struct racer {
	int pfd, ifd;
	volatile int stop;
	uint64_t ok, cancelled, revoked, other;
	int other_err;
};

static void *race_loop(void *p)
{
	struct racer *a = p;
	struct p2plab_dmabuf_copy c;
	int r, k = 0;

	while (!a->stop) {
		r = imp_copy(a->pfd, a->ifd, (k++ & 1) ? P2PLAB_DMABUF_FROM : P2PLAB_DMABUF_TO,
			     8 * MiB, 0, 1 * MiB, 64 * KiB, &c);
		if (!r)
			a->ok++;
		else if (r == -ECANCELED)
			a->cancelled++;
		else if (r == -ENODEV)
			a->revoked++;
		else
			a->other++, a->other_err = r;
		if (r)
			usleep(200);	/* revoked: retry a little later, as an application would */
	}
	return NULL;
}

/*
 * Revocations racing copies: 40 resets and 40 memory off/on cycles while another thread copies
 * both ways in 64 KiB batches. Every copy ends in 0, ECANCELED or ENODEV (revoked at map time),
 * nothing else; the mappings balance; afterwards a copy works and its bytes are right.
 */
TEST_F(vd, revoke_race)
{
	struct vfio_region_dma_range r = { 10 * MiB, 1 * MiB };
	unsigned char *src = malloc(r.length), *back = malloc(r.length);
	struct p2plab_dmabuf_status st;
	struct p2plab_dmabuf_copy c;
	struct racer a = { 0 };
	pthread_t th;
	int dfd, ifd, i;

	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	if (self->expect == P2PLAB_MAP_NOT_SUPPORTED)
		SKIP(return, "P2P refused here");
	ASSERT_TRUE(src && back);
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	a.pfd = self->pfd;
	a.ifd = ifd;
	ASSERT_EQ(0, pthread_create(&th, NULL, race_loop, &a));
	for (i = 0; i < 40; i++) {
		EXPECT_EQ(0, ioctl(self->v.dev, VFIO_DEVICE_RESET));
		EXPECT_EQ(0, vf_cmd_memory(&self->v, 0));
		usleep(1000);
		EXPECT_EQ(0, vf_cmd_memory(&self->v, 1));
		usleep(2000);
	}
	a.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("copies: %llu ok, %llu cancelled, %llu revoked, %llu other (%d)",
	       (unsigned long long)a.ok, (unsigned long long)a.cancelled,
	       (unsigned long long)a.revoked, (unsigned long long)a.other, a.other_err);
	EXPECT_EQ(0, a.other);
	EXPECT_GT(a.ok + a.cancelled + a.revoked, 0);
	ASSERT_EQ(0, imp_status(self->pfd, ifd, &st));
	/* each reset notifies twice, each memory off/on twice */
	EXPECT_EQ(160, st.invalidations);
	EXPECT_GE(st.maps, st.unmaps);
	EXPECT_LE(st.maps, st.unmaps + 1);
	/* still good */
	pl_fill(src, r.length, 61);
	ASSERT_EQ(0, pl_pwrite_all(self->pfd, src, r.length, 0));
	ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	EXPECT_EQ(-1, pl_cmp(src, self->v.map + r.offset, r.length));
	ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_FROM, 16 * MiB, 0, r.length, 0, &c));
	ASSERT_EQ(0, pl_pread_all(self->pfd, back, r.length, 16 * MiB));
	EXPECT_EQ(-1, pl_cmp(src, back, r.length));
	close(ifd);
	close(dfd);
	free(src);
	free(back);
}

/*
 * Hot-unplug of the exporter (device_del from the scenario, P2PLAB_VFIO_UNPLUG=1): vfio-pci's
 * remove asks the user to let go (the device request eventfd), we close the device, which revokes
 * the dma-buf (vfio_pci_dma_buf_cleanup); the import stays and gets ENODEV from then on. A copy
 * loop runs meanwhile; with the importer slowed down (P2PLAB_VFIO_LATENCY_US) the revoke finds a
 * copy in flight, which stops with ECANCELED.
 */
TEST_F(vd, unplug)
{
	const char *env = getenv("P2PLAB_VFIO_UNPLUG"), *lat = getenv("P2PLAB_VFIO_LATENCY_US");
	struct vfio_region_dma_range r = { 1 * MiB, 1 * MiB };
	struct vfio_irq_set *irq = calloc(1, sizeof(*irq) + sizeof(int));
	struct p2plab_dmabuf_status st;
	struct p2plab_dmabuf_copy c;
	struct p2plab_stats s0, s1;
	struct copier cp = { 0 };
	struct pollfd pf;
	pthread_t th;
	char drv[64];
	int dfd, ifd, efd, i, pr = 0;

	if (!env || strcmp(env, "1"))
		SKIP(return, "driven by the scenario's device_del (P2PLAB_VFIO_UNPLUG=1)");
	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	if (self->expect == P2PLAB_MAP_NOT_SUPPORTED)
		SKIP(return, "P2P refused here");
	ASSERT_NE(NULL, irq);
	efd = eventfd(0, EFD_CLOEXEC);
	ASSERT_GE(efd, 0);
	irq->argsz = sizeof(*irq) + sizeof(int);
	irq->flags = VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER;
	irq->index = VFIO_PCI_REQ_IRQ_INDEX;
	irq->count = 1;
	memcpy(irq->data, &efd, sizeof(int));
	ASSERT_EQ(0, ioctl(self->v.dev, VFIO_DEVICE_SET_IRQS, irq)) TH_LOG("req irq: %m");
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	cp.pfd = self->pfd;
	cp.ifd = ifd;
	ASSERT_EQ(0, pthread_create(&th, NULL, copy_loop, &cp));
	printf("# UNPLUG-READY\n");
	fflush(stdout);
	/* wait until vfio asks for the device back (bounded: 120 s) */
	pf.fd = efd;
	pf.events = POLLIN;
	for (i = 0; i < 120 && pr != 1; i++)
		pr = poll(&pf, 1, 1000);
	if (pr != 1) {
		cp.stop = 1;
		pthread_join(th, NULL);
		ASSERT_EQ(1, pr) TH_LOG("no device request from vfio within 120 s");
	}
	vf_close(&self->v);		/* lets vfio_unregister_group_dev() go on: revokes */
	cp.stop = 1;
	pthread_join(th, NULL);
	TH_LOG("device request after %llu copies; the copy running then: %s",
	       (unsigned long long)cp.copies, strerror(-cp.ret));
	if (lat && atoll(lat) >= 200000) {
		EXPECT_EQ(-ECANCELED, cp.ret);
	} else {
		EXPECT_TRUE(cp.ret == 0 || cp.ret == -ECANCELED || cp.ret == -ENODEV);
	}
	ASSERT_EQ(0, imp_status(self->pfd, ifd, &st));
	EXPECT_EQ(1, st.invalidations);
	EXPECT_EQ(st.maps, st.unmaps);
	ASSERT_EQ(0, ioctl(self->pfd, P2PLAB_IOC_STATS, &s0));
	EXPECT_EQ(-ENODEV, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	EXPECT_EQ(-ENODEV, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_FROM, 0, 0, r.length, 0, &c));
	ASSERT_EQ(0, ioctl(self->pfd, P2PLAB_IOC_STATS, &s1));
	EXPECT_EQ(s0.descs, s1.descs);	/* nothing reached the engine */
	/* the device goes (bounded wait) */
	for (i = 0; i < 300; i++) {
		pci_driver(self->v.bdf, drv, sizeof(drv));
		if (!drv[0])
			break;
		usleep(100000);
	}
	EXPECT_LT(i, 300);
	EXPECT_EQ(-ENODEV, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	printf("# UNPLUG-COPIES %llu\n", (unsigned long long)cp.copies);
	close(ifd);
	close(dfd);
	close(efd);
	free(irq);
}

/* the importer itself goes away (p2plab unbound) while it holds a mapping: detached cleanly */
TEST_F(vd, importer_removed)
{
	const char *env = getenv("P2PLAB_VFIO_IMPORTER_REMOVE");
	struct vfio_region_dma_range r = { 1 * MiB, 1 * MiB };
	struct p2plab_dmabuf_status st;
	struct p2plab_dmabuf_copy c;
	char p[PATH_MAX];
	int dfd, ifd;

	if (!env || strcmp(env, "1"))
		SKIP(return, "unbinds the importer: P2PLAB_VFIO_IMPORTER_REMOVE=1");
	if (variant->n != 1)
		SKIP(return, "once per run (one_range variant)");
	if (self->expect == P2PLAB_MAP_NOT_SUPPORTED)
		SKIP(return, "P2P refused here");
	dfd = vf_export(self->v.dev, VFIO_PCI_BAR2_REGION_INDEX, &r, 1, 0);
	ASSERT_GE(dfd, 0);
	ifd = imp_import(self->pfd, dfd, NULL);
	ASSERT_GE(ifd, 0);
	ASSERT_EQ(0, imp_copy(self->pfd, ifd, P2PLAB_DMABUF_TO, 0, 0, r.length, 0, &c));
	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/driver/unbind", self->pin.pci_name);
	ASSERT_EQ(0, sysfs_write(p, self->pin.pci_name));
	/* the fd of the removed device answers ENODEV; the dma-buf is unmapped and detached */
	EXPECT_EQ(-ENODEV, imp_status(self->pfd, ifd, &st));
	close(ifd);
	close(dfd);
	ASSERT_EQ(0, sysfs_write("/sys/bus/pci/drivers_probe", self->pin.pci_name));
	/* the exporter still works: a new import on the re-probed device */
	usleep(500000);
}

int main(int argc, char **argv)
{
	if (argc >= 3 && !strcmp(argv[1], "bind"))
		return cmd_bind(atoi(argv[2]));
	if (argc >= 3 && !strcmp(argv[1], "unbind"))
		return cmd_unbind(argv[2]);
	if (argc >= 4 && !strcmp(argv[1], "mark"))
		return cmd_mark(strtoull(argv[2], NULL, 0), argv[3]);
	if (argc >= 3 && !strcmp(argv[1], "bw"))
		return cmd_bw(atoi(argv[2]), argc > 3 ? atoi(argv[3]) : 3);
	return test_harness_run(argc, argv);
}
