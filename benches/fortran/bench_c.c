/* put + get of the same 16 MiB double array from C (row-major), in process. */
#include "insitu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

int main(void) {
  enum { NX = 1024, NY = 2048, REPS = 41 };
  size_t n = (size_t)NX * NY, dims[2] = {NX, NY}, got[2], nd;
  double *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), t[REPS];
  for (size_t i = 0; i < n; i++) a[i] = (double)rand() / RAND_MAX;
  insitu_client *c;
  if (insitu_client_connect("inproc", 6, &c)) return 1;
  for (int r = 0; r < REPS; r++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (insitu_client_put_tensor(c, "a", 1, a, n * sizeof *a, INSITU_DTYPE_DOUBLE, dims, 2)) return 1;
    if (insitu_client_unpack_tensor(c, "a", 1, INSITU_DTYPE_DOUBLE, b, n * sizeof *b, got, 2, &nd)) return 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    t[r] = (t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3;
  }
  if (memcmp(a, b, n * sizeof *a)) return 1;
  qsort(t, REPS, sizeof *t, cmp);
  printf("c put+get 16 MiB us: %12.1f\n", t[REPS / 2]);
  insitu_client_free(c);
  return 0;
}
