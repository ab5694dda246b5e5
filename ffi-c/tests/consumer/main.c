#include <insitu.h>
#include <stdio.h>
int main(void) {
  insitu_client *c;
  if (insitu_client_connect("inproc", 6, &c) != INSITU_STATUS_OK) return 1;
  int v[3] = {1, 2, 3};
  size_t d[1] = {3};
  if (insitu_client_put_tensor(c, "v", 1, v, sizeof v, INSITU_DTYPE_INT32, d, 1)) return 1;
  insitu_client_free(c);
  printf("consumer C OK\n");
  return 0;
}
