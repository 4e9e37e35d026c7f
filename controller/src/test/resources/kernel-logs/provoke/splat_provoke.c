// SPDX-License-Identifier: GPL-2.0
/*
 * splat_provoke: makes the running kernel print real splat reports, to capture them as test data for
 * the controller's splat classifier (see README.md next to this file). NOT part of the lab.
 *   echo warn|ubsan|softlockup|hungtask|null > /sys/kernel/debug/splat_provoke
 */
#include <linux/module.h>
#include <linux/debugfs.h>
#include <linux/uaccess.h>
#include <linux/delay.h>
#include <linux/kthread.h>
#include <linux/sched.h>

static struct dentry *dir;

static noinline int splat_array(int i)
{
	int a[4] = { 1, 2, 3, 4 };
	volatile int idx = i;

	return a[idx];		/* UBSAN_BOUNDS: index 4 out of range for type 'int [4]' */
}

static int hung_fn(void *unused)
{
	schedule_timeout_uninterruptible(20 * HZ);	/* D state, reported by khungtaskd */
	return 0;
}

static ssize_t provoke_write(struct file *f, const char __user *ubuf, size_t len, loff_t *off)
{
	char cmd[32] = {};

	if (copy_from_user(cmd, ubuf, min(len, sizeof(cmd) - 1)))
		return -EFAULT;
	strim(cmd);
	if (!strcmp(cmd, "warn")) {
		WARN(1, "splat_provoke: a WARN() on purpose\n");
	} else if (!strcmp(cmd, "ubsan")) {
		pr_info("splat_provoke: %d\n", splat_array(4));
	} else if (!strcmp(cmd, "softlockup")) {
		unsigned long end = jiffies + 30 * HZ;

		preempt_disable();
		while (time_before(jiffies, end))
			cpu_relax();
		preempt_enable();
	} else if (!strcmp(cmd, "hungtask")) {
		kthread_run(hung_fn, NULL, "splat_hung");
	} else if (!strcmp(cmd, "null")) {
		volatile int *p = NULL;

		pr_info("splat_provoke: %d\n", *p);
	} else {
		return -EINVAL;
	}
	return len;
}

static const struct file_operations provoke_fops = {
	.owner = THIS_MODULE,
	.write = provoke_write,
};

static int __init provoke_init(void)
{
	dir = debugfs_create_file("splat_provoke", 0200, NULL, NULL, &provoke_fops);
	return 0;
}

static void __exit provoke_exit(void)
{
	debugfs_remove(dir);
}

module_init(provoke_init);
module_exit(provoke_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("provoke real kernel splats to capture them as test data");
