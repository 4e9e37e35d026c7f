/* Native host memcpy bandwidth, for comparison with the p2plab DMA engine (scripts/qemu-bench.sh). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    size_t len = (argc > 1 ? strtoull(argv[1], NULL, 0) : 256) << 20;
    int reps = argc > 2 ? atoi(argv[2]) : 5;
    char *a = malloc(len), *b = malloc(len);
    double best = 1e30;

    if (!a || !b) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    memset(a, 0xa5, len);
    memset(b, 0, len);                  /* fault both in first */
    for (int i = 0; i < reps; i++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        memcpy(b, a, len);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
        if (s < best) {
            best = s;
        }
    }
    if (memcmp(a, b, len)) {
        return 1;
    }
    printf("# bench host-memcpy    %zu MiB in %.3f s = %.0f MB/s (best of %d)\n", len >> 20, best,
           len / best / 1e6, reps);
    return 0;
}
