// SPDX-License-Identifier: GPL-2.0
/*
 * p2plab-bw - DMA bandwidth of the p2plab engines: RAM->dev, dev->RAM, dev->peer for every pair,
 * dev->NVMe CMB. Prints one line per measurement: "BW <what> <MiB> MiB <MB/s> MB/s <map>".
 * Usage: p2plab-bw [MiB per copy (default 64)] [repetitions (default 3)]
 */
#include "p2plab-lib.h"

static double best(double a, double b) { return a > b ? a : b; }

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? strtoul(argv[1], NULL, 0) : 64, len = mib << 20;
	int reps = argc > 2 ? atoi(argv[2]) : 3, ids[PL_MAX_DEVS], n = pl_list(ids), i, j, k;
	struct p2plab_info info[PL_MAX_DEVS];
	int fds[PL_MAX_DEVS];
	char *buf = pl_alloc(len);

	if (!n || !buf) {
		fprintf(stderr, "no p2plab device or no memory\n");
		return 4;
	}
	memset(buf, 1, len);
	for (i = 0; i < n; i++) {
		fds[i] = pl_open(ids[i]);
		if (fds[i] < 0 || pl_info(fds[i], &info[i]))
			return 1;
	}
	for (i = 0; i < n; i++) {
		size_t l = len < info[i].p2p_size ? len : info[i].p2p_size;
		double to = 0, from = 0;

		for (k = 0; k < reps; k++) {
			struct p2plab_dma r;

			if (pl_dma(fds[i], buf, 0, l, P2PLAB_DIR_TO_DEV, &r) == 0)
				to = best(to, l / (r.res.ns / 1e3));
			if (pl_dma(fds[i], buf, 0, l, P2PLAB_DIR_FROM_DEV, &r) == 0)
				from = best(from, l / (r.res.ns / 1e3));
		}
		printf("BW ram->p2plab%d %zu MiB %.0f MB/s none\n", info[i].id, l >> 20, to);
		printf("BW p2plab%d->ram %zu MiB %.0f MB/s none\n", info[i].id, l >> 20, from);
		for (j = 0; j < n; j++) {
			struct p2plab_peer_copy pc;
			double bw = 0;
			size_t pl = l < info[j].p2p_size ? l : info[j].p2p_size;
			int ok = 0;

			if (i == j)
				continue;
			for (k = 0; k < reps; k++) {
				memset(&pc, 0, sizeof(pc));
				pc.peer_id = info[j].id;
				pc.len = pl;
				pc.dir = P2PLAB_PEER_TO;
				if (ioctl(fds[i], P2PLAB_IOC_PEER_COPY, &pc) == 0) {
					bw = best(bw, pl / (pc.res.ns / 1e3));
					ok = 1;
				}
			}
			printf("BW p2plab%d->p2plab%d %zu MiB %.0f MB/s %s%s\n", info[i].id, info[j].id,
			       pl >> 20, bw, pl_map_name(pc.res.map_type), ok ? "" : " (refused)");
		}
	}
	/* NVMe CMB */
	{
		char bdf[64];
		int pfd;
		size_t cl = 16 << 20;
		char *cmb = pl_nvme_bdf(bdf, sizeof(bdf)) ? NULL : pl_p2pmem_map(bdf, cl, &pfd);

		for (i = 0; cmb && i < n; i++) {
			struct p2plab_dma r = { 0 };
			double bw = 0;
			int ok = 0;

			for (k = 0; k < reps; k++)
				if (pl_dma(fds[i], cmb, 0, cl, P2PLAB_DIR_FROM_DEV, &r) == 0) {
					bw = best(bw, cl / (r.res.ns / 1e3));
					ok = 1;
				}
			printf("BW p2plab%d->nvme-cmb %zu MiB %.0f MB/s %s%s\n", info[i].id, cl >> 20, bw,
			       pl_map_name(r.res.map_type), ok ? "" : " (refused)");
		}
	}
	return 0;
}
