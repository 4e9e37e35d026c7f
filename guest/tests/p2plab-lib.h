/* SPDX-License-Identifier: GPL-2.0 */
/* p2plab-lib.h - small helpers for the guest test programs (static, no dependencies). */
#ifndef P2PLAB_LIB_H
#define P2PLAB_LIB_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/types.h>
#include "p2plab_hw.h"
#include "p2plab_ioctl.h"

#define PL_MAX_DEVS 16

static inline double pl_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline int pl_open(int id)
{
	char p[64];

	snprintf(p, sizeof(p), "/dev/p2plab%d", id);
	return open(p, O_RDWR | O_CLOEXEC);
}

/* number of /dev/p2plabN, ids in ids[] (ascending) */
static inline int pl_list(int *ids)
{
	int n = 0, i;

	for (i = 0; i < 64 && n < PL_MAX_DEVS; i++) {
		char p[64];

		snprintf(p, sizeof(p), "/dev/p2plab%d", i);
		if (access(p, F_OK) == 0)
			ids[n++] = i;
	}
	return n;
}

static inline int pl_info(int fd, struct p2plab_info *in)
{
	memset(in, 0, sizeof(*in));
	return ioctl(fd, P2PLAB_IOC_INFO, in);
}

static inline int pl_dma(int fd, void *buf, uint64_t dev_off, uint64_t len, int dir,
			 struct p2plab_dma *out)
{
	struct p2plab_dma a;
	int r;

	memset(&a, 0, sizeof(a));
	a.uaddr = (uintptr_t)buf;
	a.dev_off = dev_off;
	a.len = len;
	a.dir = dir;
	r = ioctl(fd, P2PLAB_IOC_DMA, &a);
	if (out)
		*out = a;
	return r;
}

/* deterministic pattern: byte i of stream `seed` */
static inline void pl_fill(void *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 12345u;
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++) {
		x ^= x << 13; x ^= x >> 17; x ^= x << 5;
		b[i] = (unsigned char)x;
	}
}

/* index of the first difference, or -1 */
static inline long pl_cmp(const void *a, const void *b, size_t len)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	if (!memcmp(a, b, len))
		return -1;
	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			return (long)i;
	return -1;
}

static inline int pl_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pwrite(fd, (const char *)buf + done, len - done, off + done);

		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static inline int pl_pread_all(int fd, void *buf, size_t len, off_t off)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done, off + done);

		if (r <= 0)
			return -1;
		done += r;
	}
	return 0;
}

static inline void *pl_alloc(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static inline const char *pl_map_name(unsigned int t)
{
	switch (t) {
	case P2PLAB_MAP_NONE: return "none";
	case P2PLAB_MAP_NOT_SUPPORTED: return "not-supported";
	case P2PLAB_MAP_BUS_ADDR: return "bus";
	case P2PLAB_MAP_THRU_HOST_BRIDGE: return "host-bridge";
	default: return "unknown";
	}
}

static inline int pl_map_from_name(const char *s)
{
	if (!s || !*s)
		return -1;
	if (!strcmp(s, "bus") || !strcmp(s, "bus-addr"))
		return P2PLAB_MAP_BUS_ADDR;
	if (!strcmp(s, "host-bridge") || !strcmp(s, "host"))
		return P2PLAB_MAP_THRU_HOST_BRIDGE;
	if (!strcmp(s, "not-supported") || !strcmp(s, "none") || !strcmp(s, "refused"))
		return P2PLAB_MAP_NOT_SUPPORTED;
	return -1;
}

/* ---- topology from sysfs ----------------------------------------------------------------------- */

/* canonical sysfs path of a PCI device ("/sys/devices/pci0000:00/0000:00:02.0/0000:01:00.0/...") */
static inline int pl_pci_path(const char *bdf, char *out, size_t n)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s", bdf);
	return realpath(p, out) ? 0 : -1;
	(void)n;
}

/* the ACS control register of a PCI function, 0 if it has no ACS capability */
static inline unsigned int pl_acs_ctrl(const char *devpath)
{
	unsigned char cfg[4096];
	char p[PATH_MAX];
	int fd, off = 0x100, guard = 0;
	ssize_t n;

	snprintf(p, sizeof(p), "%.4000s/config", devpath);
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return 0;
	n = pread(fd, cfg, sizeof(cfg), 0);
	close(fd);
	if (n < 0x104)
		return 0;
	while (off >= 0x100 && off + 8 <= n && guard++ < 64) {
		uint32_t h = cfg[off] | cfg[off + 1] << 8 | cfg[off + 2] << 16 | (uint32_t)cfg[off + 3] << 24;

		if ((h & 0xffff) == 0x000d)	/* PCI_EXT_CAP_ID_ACS */
			return cfg[off + 6] | cfg[off + 7] << 8;
		off = h >> 20;
		if (!off)
			break;
	}
	return 0;
}

#define PL_ACS_REDIR (0x0004 | 0x0008 | 0x0040)	/* RR | CR | EC */

/* is this CPU one whose root complex Linux trusts for P2P (AMD family >= 0x17)? */
static inline int pl_cpu_p2p_ok(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[256];
	int amd = 0, fam = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "vendor_id", 9) && strstr(line, "AuthenticAMD"))
			amd = 1;
		if (!strncmp(line, "cpu family", 10))
			fam = atoi(strchr(line, ':') + 1);
		if (line[0] == '\n')
			break;
	}
	fclose(f);
	return amd && fam >= 0x17;
}

/*
 * Expected P2P verdict between two PCI functions from the topology alone: a common upstream
 * bridge and no ACS redirect on the way -> bus; otherwise through the host bridge if the CPU
 * allows it (AMD Zen+), else not supported. (QEMU's q35 host bridge is on no allow-list.)
 */
static inline int pl_expected_map(const char *bdf_a, const char *bdf_b)
{
	char a[PATH_MAX], b[PATH_MAX], ca[PATH_MAX];
	size_t common = 0, i;
	int redir = 0, ancestors = 0;
	char *s;

	if (pl_pci_path(bdf_a, a, sizeof(a)) || pl_pci_path(bdf_b, b, sizeof(b)))
		return -1;
	/* longest common prefix made of whole path components */
	for (i = 0; a[i] && a[i] == b[i]; i++)
		if (a[i] == '/')
			common = i;
	if ((!a[i] && b[i] == '/') || (!b[i] && a[i] == '/'))
		common = i;
	/* common PCI ancestors: components after "/sys/devices/pciDDDD:BB" */
	memcpy(ca, a, common);
	ca[common] = 0;
	s = strstr(ca, "/pci");
	if (s) {
		s = strchr(s + 1, '/');
		while (s) {
			ancestors++;
			s = strchr(s + 1, '/');
		}
	}
	if (ancestors == 0)
		return pl_cpu_p2p_ok() ? P2PLAB_MAP_THRU_HOST_BRIDGE : P2PLAB_MAP_NOT_SUPPORTED;
	/* every bridge from each device up to (and including) the common one */
	for (int side = 0; side < 2; side++) {
		char p[PATH_MAX];

		strcpy(p, side ? b : a);
		while (strlen(p) >= common) {
			if (pl_acs_ctrl(p) & PL_ACS_REDIR)
				redir = 1;
			s = strrchr(p, '/');
			if (!s || (size_t)(s - p) < common)
				break;
			*s = 0;
		}
	}
	if (!redir)
		return P2PLAB_MAP_BUS_ADDR;
	return pl_cpu_p2p_ok() ? P2PLAB_MAP_THRU_HOST_BRIDGE : P2PLAB_MAP_NOT_SUPPORTED;
}

/* the PCI address (BDF) of /dev/nvme0, "" if none */
static inline int pl_nvme_bdf(char *out, size_t n)
{
	char p[PATH_MAX];
	char *s;

	if (!realpath("/sys/class/nvme/nvme0/device", p))
		return -1;
	s = strrchr(p, '/');
	snprintf(out, n, "%s", s + 1);
	return 0;
}

/* mmap len bytes of a device's p2pmem (NULL + errno if it has none) */
static inline void *pl_p2pmem_map(const char *bdf, size_t len, int *fdp)
{
	char p[PATH_MAX];
	void *m;
	int fd;

	snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/p2pmem/allocate", bdf);
	fd = open(p, O_RDWR);
	if (fd < 0)
		return NULL;
	m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		close(fd);
		return NULL;
	}
	*fdp = fd;
	return m;
}

#endif /* P2PLAB_LIB_H */
