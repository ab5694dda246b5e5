/* Example 01: put a tensor from C, read it back into your own buffer.
   Usage: 01_c_put_get [address]   (default: $SSDB, or "inproc") */
#include "insitu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
  char msg[256];
  insitu_last_error_message(msg, sizeof msg);
  fprintf(stderr, "%s failed: %s\n", what, msg);
  return 1;
}

int main(int argc, char **argv) {
  const char *address = argc > 1 ? argv[1] : (getenv("SSDB") ? getenv("SSDB") : "inproc");
  insitu_client *c;
  if (insitu_client_connect(address, strlen(address), &c) != INSITU_STATUS_OK) return fail("connect");

  double field[4][5];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 5; j++) field[i][j] = i * 10.0 + j;
  size_t dims[2] = {4, 5};
  if (insitu_client_put_tensor(c, "field", 5, field, sizeof field, INSITU_DTYPE_DOUBLE, dims, 2))
    return fail("put_tensor");

  double back[4][5];
  size_t got[2], ndims;
  if (insitu_client_unpack_tensor(c, "field", 5, INSITU_DTYPE_DOUBLE, back, sizeof back, got, 2, &ndims))
    return fail("unpack_tensor");
  if (ndims != 2 || got[0] != 4 || got[1] != 5 || memcmp(back, field, sizeof field) != 0) {
    fprintf(stderr, "round trip differs\n");
    return 1;
  }
  /* Errors come back as statuses with a message; the program goes on. */
  insitu_tensor *t;
  if (insitu_client_get_tensor(c, "missing", 7, &t) == INSITU_STATUS_NOT_FOUND) {
    char msg[128];
    insitu_last_error_message(msg, sizeof msg);
    printf("as expected: %s\n", msg);
  }
  insitu_client_free(c);
  printf("example 01: put/get OK at %s\n", address);
  return 0;
}
