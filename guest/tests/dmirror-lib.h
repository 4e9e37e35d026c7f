/* SPDX-License-Identifier: GPL-2.0 */
/*
 * dmirror-lib.h - the dmirror uAPI (the kernel's lib/test_hmm_uapi.h) as the HMM guest programs
 * use it: open /dev/hmm_dmirrorN, run one command. Shared by hmm-p2plab-tests.c and hmm-stress.c.
 */
#ifndef DMIRROR_LIB_H
#define DMIRROR_LIB_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/ioctl.h>

#include "test_hmm_uapi.h"	/* the kernel's lib/test_hmm_uapi.h (scripts/fetch-kernel-src.sh) */

static inline int dm_open(int unit)
{
	char path[64];

	snprintf(path, sizeof(path), "/dev/hmm_dmirror%d", unit);
	return open(path, O_RDWR);
}

/* one dmirror command on @npages at @addr, data at @ptr: 0 or -errno; *@out gets cpages/faults */
static inline int dm_cmd(int fd, unsigned long req, void *addr, void *ptr, unsigned long npages,
			 struct hmm_dmirror_cmd *out)
{
	struct hmm_dmirror_cmd cmd = {
		.addr = (uintptr_t)addr, .ptr = (uintptr_t)ptr, .npages = npages,
	};
	int ret;

	do {
		ret = ioctl(fd, req, &cmd);
	} while (ret && errno == EINTR);
	if (out)
		*out = cmd;
	return ret ? -errno : 0;
}

#endif /* DMIRROR_LIB_H */
