/* put + unpack through a Unix socket (the shared-memory heap) next to two memcpys of the
 * same bytes, 1 MiB and 16 MiB of doubles; prints per size:
 *   "<n> MiB <insitu p50> <insitu p99> <memcpy x2 p50> <memcpy x2 p99>" (microseconds).
 *   bench_shm_c <socket path> <reps>                                                    */
#include "insitu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
  if (argc < 3) return 2;
  char addr[4096];
  snprintf(addr, sizeof addr, "unix://%s", argv[1]);
  int reps = atoi(argv[2]);
  if (reps < 3) reps = 3;
  insitu_client *c;
  if (insitu_client_connect(addr, strlen(addr), &c)) return 1;
  double *t = malloc(reps * sizeof *t), *m = malloc(reps * sizeof *m);
  for (size_t mib = 1; mib <= 16; mib *= 16) {
    size_t n = mib * (1 << 20) / sizeof(double), bytes = n * sizeof(double), dims[1] = {n}, got[1], nd;
    double *a = malloc(bytes), *b = malloc(bytes), *d = malloc(bytes);
    for (size_t i = 0; i < n; i++) a[i] = (double)rand() / RAND_MAX;
    memset(b, 0, bytes);
    memset(d, 0, bytes);
    for (int r = -2; r < reps; r++) {
      double t0 = now_us();
      if (insitu_client_put_tensor(c, "c", 1, a, bytes, INSITU_DTYPE_DOUBLE, dims, 1)) return 1;
      if (insitu_client_unpack_tensor(c, "c", 1, INSITU_DTYPE_DOUBLE, b, bytes, got, 1, &nd)) return 1;
      double t1 = now_us();
      memcpy(d, a, bytes);
      memcpy(b, d, bytes);
      double t2 = now_us();
      if (r >= 0) {
        t[r] = t1 - t0;
        m[r] = t2 - t1;
      }
    }
    if (insitu_client_unpack_tensor(c, "c", 1, INSITU_DTYPE_DOUBLE, b, bytes, got, 1, &nd)) return 1;
    if (memcmp(a, b, bytes)) {
      fprintf(stderr, "round trip differs\n");
      return 1;
    }
    qsort(t, reps, sizeof *t, cmp);
    qsort(m, reps, sizeof *m, cmp);
    printf("%zu MiB %.1f %.1f %.1f %.1f\n", mib, t[reps / 2], t[reps * 99 / 100], m[reps / 2], m[reps * 99 / 100]);
    free(a);
    free(b);
    free(d);
  }
  insitu_client_free(c);
  return 0;
}
