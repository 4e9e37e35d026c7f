// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab-topo - the kernel's P2P verdict for every ordered pair of p2plab devices, for the
 * controller's topology picture (`./p2plab topo`, topo.txt/topo.svg of every case).
 *
 * For each client /dev/p2plabA and provider /dev/p2plabB (A != B) it asks P2PLAB_IOC_P2P_QUERY:
 * the module DMA-maps one page of B's p2pmem for A and reports what the DMA core decided
 * (pci_p2pdma_state(): bus address, host bridge or not supported). Nothing is transferred, no
 * device counter moves (only the driver's p2p_* mapping counters, which tests read as deltas).
 *
 * With --config it first prints every PCI function's config space (what root reads from sysfs,
 * trailing zero bytes cut), so the controller reads the PCIe port type and the ACS capability and
 * control registers without one od process per function (each fork costs ~35 ms under TCG).
 *
 * Output, one record a line (the controller parses it; keep it stable):
 *   config PCI_NAME HEX
 *   dev ID PCI_NAME flags=0xF p2p_size=N mem_size=N
 *   dev ID error=ERRNO_NAME
 *   pair CLIENT_ID PROVIDER_ID CLIENT_PCI PROVIDER_PCI map=NAME distance=D bus_offset=0xX
 *   pair CLIENT_ID PROVIDER_ID CLIENT_PCI PROVIDER_PCI error=ERRNO_NAME
 * Exit 0 (also with no device: no lines).
 */
#include "p2plab-lib.h"

static const char *errname(int e)
{
	switch (e) {
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case EREMOTEIO: return "EREMOTEIO";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EBUSY: return "EBUSY";
	default: return strerror(e);
	}
}

static void dump_config(void)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		unsigned char buf[4096];
		char p[PATH_MAX];
		ssize_t n;
		int fd, i;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/sys/bus/pci/devices/%s/config", e->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = pread(fd, buf, sizeof(buf), 0);
		close(fd);
		if (n <= 0)
			continue;
		while (n > 0 && !buf[n - 1])
			n--;
		printf("config %s ", e->d_name);
		for (i = 0; i < n; i++)
			printf("%02x", buf[i]);
		printf("\n");
	}
	closedir(d);
}

int main(int argc, char **argv)
{
	int ids[PL_MAX_DEVS], fds[PL_MAX_DEVS], n = pl_list(ids), i, j;
	struct p2plab_info info[PL_MAX_DEVS];

	if (argc > 1 && !strcmp(argv[1], "--config"))
		dump_config();
	for (i = 0; i < n; i++) {
		fds[i] = pl_open(ids[i]);
		if (fds[i] < 0 || pl_info(fds[i], &info[i])) {
			printf("dev %d error=%s\n", ids[i], errname(errno));
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = -1;
			continue;
		}
		printf("dev %d %s flags=%#x p2p_size=%llu mem_size=%llu\n", ids[i], info[i].pci_name,
		       info[i].flags, (unsigned long long)info[i].p2p_size,
		       (unsigned long long)info[i].mem_size);
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			struct p2plab_p2p_query q;

			if (i == j || fds[i] < 0 || fds[j] < 0)
				continue;
			memset(&q, 0, sizeof(q));
			q.peer_id = ids[j];
			printf("pair %d %d %s %s ", ids[i], ids[j], info[i].pci_name, info[j].pci_name);
			if (ioctl(fds[i], P2PLAB_IOC_P2P_QUERY, &q))
				printf("error=%s\n", errname(errno));
			else
				printf("map=%s distance=%d bus_offset=%#llx\n", pl_map_name(q.map_type),
				       q.distance, (unsigned long long)q.bus_offset);
		}
	}
	for (i = 0; i < n; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	return 0;
}
