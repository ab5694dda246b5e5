/* Every function of the insitu C API, including its error paths: status codes, the
   last-error text, NULL arguments, wrong dtypes, missing keys. The process must survive
   each. Uses the in-process engine ("inproc") plus an embedded server it starts. */
#include "insitu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int failures = 0;
#define S(x) x, strlen(x)

static void check(int line, enum insitu_status got, enum insitu_status want, const char *text) {
  char msg[512];
  insitu_last_error_message(msg, sizeof msg);
  if (got != want) {
    fprintf(stderr, "line %d: status %s, expected %s (%s)\n", line, insitu_status_name(got),
            insitu_status_name(want), msg);
    failures++;
    return;
  }
  if (insitu_last_error_code() != want) {
    fprintf(stderr, "line %d: last error code disagrees\n", line);
    failures++;
  }
  if (text && strcmp(msg, text) != 0) {
    fprintf(stderr, "line %d: message \"%s\", expected \"%s\"\n", line, msg, text);
    failures++;
  }
}
#define OK(call) check(__LINE__, (call), INSITU_STATUS_OK, "")
#define FAILS(call, status, text) check(__LINE__, (call), status, text)
#define TRUE(cond)                                              \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf(stderr, "line %d: %s is false\n", __LINE__, #cond); \
      failures++;                                               \
    }                                                           \
  } while (0)

int main(void) {
  insitu_client *c = NULL, *remote = NULL;
  insitu_tensor *t = NULL;
  bool yes = false;
  char msg[256];

  /* Errors and their text. */
  TRUE(strcmp(insitu_status_name(INSITU_STATUS_NOT_FOUND), "NotFound") == 0);
  FAILS(insitu_client_connect(NULL, 0, &c), INSITU_STATUS_NULL_ARGUMENT, "address must not be NULL");
  FAILS(insitu_client_connect(S("nohost"), &c), INSITU_STATUS_BAD_INPUT,
        "ERR invalid address 'nohost': missing port (expected inproc, host:port, tcp://host:port or unix:///path)");
  TRUE(c == NULL); /* outputs untouched on failure */
  TRUE(insitu_last_error_message(msg, 8) > 7 && strlen(msg) == 7); /* truncated, NUL-terminated */
  setenv("INSITU_CONN_TIMEOUT", "0", 1); /* one attempt: no server listens there */
  FAILS(insitu_client_connect(S("127.0.0.1:1"), &c), INSITU_STATUS_IO, NULL);
  unsetenv("INSITU_CONN_TIMEOUT");
  FAILS(insitu_client_connect(S("inproc"), NULL), INSITU_STATUS_NULL_ARGUMENT, "out must not be NULL");
  unsetenv("SSDB");
  unsetenv("INSITU_ADDRESS");
  FAILS(insitu_client_from_env(&c), INSITU_STATUS_BAD_INPUT, NULL);
  setenv("SSDB", "inproc", 1);
  OK(insitu_client_from_env(&c));
  insitu_client_free(c);
  OK(insitu_client_connect(S("inproc"), &c));

  /* Tensors. */
  float a[2][3] = {{1, 2, 3}, {4, 5, 6}};
  size_t dims[2] = {2, 3};
  OK(insitu_client_put_tensor(c, S("a"), a, sizeof a, INSITU_DTYPE_FLOAT, dims, 2));
  FAILS(insitu_client_put_tensor(c, S("bad"), a, 7, INSITU_DTYPE_FLOAT, dims, 2), INSITU_STATUS_BAD_INPUT,
        "ERR data length does not match tensor shape and type");
  FAILS(insitu_client_put_tensor(NULL, S("a"), a, sizeof a, INSITU_DTYPE_FLOAT, dims, 2),
        INSITU_STATUS_NULL_ARGUMENT, "client must not be NULL");
  FAILS(insitu_client_put_tensor(c, "\xff\xfe", 2, a, sizeof a, INSITU_DTYPE_FLOAT, dims, 2),
        INSITU_STATUS_INVALID_UTF8, "name is not valid UTF-8");
  OK(insitu_client_get_tensor(c, S("a"), &t));
  TRUE(insitu_tensor_dtype(t) == INSITU_DTYPE_FLOAT && insitu_tensor_ndims(t) == 2);
  TRUE(insitu_tensor_dims(t)[0] == 2 && insitu_tensor_dims(t)[1] == 3);
  TRUE(insitu_tensor_nbytes(t) == sizeof a && memcmp(insitu_tensor_data(t), a, sizeof a) == 0);
  insitu_tensor_free(t);
  FAILS(insitu_client_get_tensor(c, S("missing"), &t), INSITU_STATUS_NOT_FOUND,
        "ERR tensor key is empty or in a different shard");
  float back[6] = {0};
  size_t got_dims[4], ndims = 0;
  OK(insitu_client_unpack_tensor(c, S("a"), INSITU_DTYPE_FLOAT, back, sizeof back, got_dims, 4, &ndims));
  TRUE(ndims == 2 && got_dims[0] == 2 && got_dims[1] == 3 && memcmp(back, a, sizeof a) == 0);
  double wrong[6];
  FAILS(insitu_client_unpack_tensor(c, S("a"), INSITU_DTYPE_DOUBLE, wrong, sizeof wrong, got_dims, 4, &ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'a' has dtype FLOAT but the buffer holds DOUBLE");
  FAILS(insitu_client_unpack_tensor(c, S("a"), INSITU_DTYPE_FLOAT, back, 8, got_dims, 4, &ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'a' has 24 bytes but the buffer holds 8");
  FAILS(insitu_client_unpack_tensor(c, S("a"), INSITU_DTYPE_FLOAT, back, sizeof back, got_dims, 1, &ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'a' has 2 dims but dims holds 1");
  /* Fortran order: a column-major 2x3 array is stored as the row-major a, and back. */
  float fa[6] = {1, 4, 2, 5, 3, 6}, fback[6] = {0};
  OK(insitu_client_put_tensor_fortran(c, S("fa"), fa, sizeof fa, INSITU_DTYPE_FLOAT, dims, 2));
  OK(insitu_client_unpack_tensor(c, S("fa"), INSITU_DTYPE_FLOAT, back, sizeof back, got_dims, 4, &ndims));
  TRUE(ndims == 2 && got_dims[0] == 2 && got_dims[1] == 3 && memcmp(back, a, sizeof a) == 0);
  OK(insitu_client_unpack_tensor_fortran(c, S("a"), INSITU_DTYPE_FLOAT, fback, sizeof fback, got_dims, 4, &ndims));
  TRUE(ndims == 2 && got_dims[0] == 2 && got_dims[1] == 3 && memcmp(fback, fa, sizeof fa) == 0);
  FAILS(insitu_client_put_tensor_fortran(c, S("fbad"), fa, 8, INSITU_DTYPE_FLOAT, dims, 2), INSITU_STATUS_BAD_INPUT,
        "ERR data length does not match tensor shape and type");
  FAILS(insitu_client_put_tensor_fortran(c, S("fbad"), NULL, sizeof fa, INSITU_DTYPE_FLOAT, dims, 2),
        INSITU_STATUS_NULL_ARGUMENT, "data must not be NULL");
  FAILS(insitu_client_unpack_tensor_fortran(c, S("a"), INSITU_DTYPE_INT32, fback, sizeof fback, got_dims, 4, &ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'a' has dtype FLOAT but the buffer holds INT32");
  FAILS(insitu_client_unpack_tensor_fortran(c, S("missing"), INSITU_DTYPE_FLOAT, fback, sizeof fback, got_dims, 4,
                                            &ndims),
        INSITU_STATUS_NOT_FOUND, "ERR tensor key is empty or in a different shard");
  OK(insitu_client_delete_tensor(c, S("fa")));
  OK(insitu_client_tensor_exists(c, S("a"), &yes));
  TRUE(yes);
  OK(insitu_client_key_exists(c, S("a"), &yes));
  TRUE(yes);
  OK(insitu_client_poll_tensor(c, S("never"), 1, 3, &yes));
  TRUE(!yes);
  OK(insitu_client_poll_key(c, S("a"), 1, 1, &yes));
  TRUE(yes);
  OK(insitu_client_copy_tensor(c, S("a"), S("b")));
  OK(insitu_client_rename_tensor(c, S("b"), S("c")));
  OK(insitu_client_tensor_exists(c, S("b"), &yes));
  TRUE(!yes);
  OK(insitu_client_delete_tensor(c, S("c")));
  FAILS(insitu_client_delete_tensor(c, S("c")), INSITU_STATUS_NOT_FOUND, "ERR key 'c' does not exist");
  FAILS(insitu_client_rename_tensor(c, S("c"), S("d")), INSITU_STATUS_NOT_FOUND, "ERR no such key");
  OK(insitu_tensor_new(a, sizeof a, INSITU_DTYPE_FLOAT, dims, 2, &t));
  insitu_tensor_free(t);
  FAILS(insitu_tensor_new(a, sizeof a, (enum insitu_dtype)99, dims, 2, &t), INSITU_STATUS_BAD_INPUT,
        "ERR invalid data type");

  /* Datasets and metadata. */
  insitu_dataset *ds = NULL, *back_ds = NULL;
  OK(insitu_dataset_new(S("ds"), &ds));
  int64_t step = 7;
  double dt = 0.5;
  int32_t i32 = -3;
  uint32_t u32 = 4000000000u;
  uint64_t u64 = 18000000000000000000ull;
  float f32 = 1.5f;
  OK(insitu_dataset_add_tensor(ds, S("u"), a, sizeof a, INSITU_DTYPE_FLOAT, dims, 2));
  OK(insitu_dataset_add_meta_scalar(ds, S("step"), INSITU_META_TYPE_INT64, &step));
  OK(insitu_dataset_add_meta_scalar(ds, S("dt"), INSITU_META_TYPE_DOUBLE, &dt));
  OK(insitu_dataset_add_meta_scalar(ds, S("i"), INSITU_META_TYPE_INT32, &i32));
  OK(insitu_dataset_add_meta_scalar(ds, S("u32"), INSITU_META_TYPE_UINT32, &u32));
  OK(insitu_dataset_add_meta_scalar(ds, S("u64"), INSITU_META_TYPE_UINT64, &u64));
  OK(insitu_dataset_add_meta_scalar(ds, S("f"), INSITU_META_TYPE_FLOAT, &f32));
  FAILS(insitu_dataset_add_meta_scalar(ds, S("step"), INSITU_META_TYPE_DOUBLE, &dt), INSITU_STATUS_BAD_INPUT,
        "ERR metadata field 'step' holds another type");
  OK(insitu_dataset_add_meta_string(ds, S("who"), S("simulation")));
  size_t count = 0;
  insitu_dataset *copy = NULL;
  OK(insitu_dataset_clone(ds, &copy));
  OK(insitu_dataset_add_meta_string(copy, S("who"), S("copy only")));
  OK(insitu_dataset_get_meta_string_count(copy, S("who"), &count));
  TRUE(count == 2);
  OK(insitu_dataset_get_meta_string_count(ds, S("who"), &count));
  TRUE(count == 1); /* the copy is deep */
  insitu_dataset_free(copy);
  FAILS(insitu_dataset_clone(NULL, &copy), INSITU_STATUS_NULL_ARGUMENT, "dataset must not be NULL");
  FAILS(insitu_dataset_clone(ds, NULL), INSITU_STATUS_NULL_ARGUMENT, "out must not be NULL");
  OK(insitu_client_put_dataset(c, ds));
  OK(insitu_client_dataset_exists(c, S("ds"), &yes));
  TRUE(yes);
  OK(insitu_client_poll_dataset(c, S("ds"), 1, 1, &yes));
  TRUE(yes);
  OK(insitu_client_get_dataset(c, S("ds"), &back_ds));
  int64_t steps[4];
  OK(insitu_dataset_get_meta_scalars(back_ds, S("step"), INSITU_META_TYPE_INT64, steps, 4, &count));
  TRUE(count == 1 && steps[0] == 7);
  uint64_t u64s[1];
  OK(insitu_dataset_get_meta_scalars(back_ds, S("u64"), INSITU_META_TYPE_UINT64, u64s, 1, &count));
  TRUE(count == 1 && u64s[0] == u64);
  FAILS(insitu_dataset_get_meta_scalars(back_ds, S("step"), INSITU_META_TYPE_DOUBLE, steps, 4, &count),
        INSITU_STATUS_BAD_INPUT, "ERR metadata field 'step' holds another type");
  FAILS(insitu_dataset_get_meta_scalars(back_ds, S("nope"), INSITU_META_TYPE_INT64, steps, 4, &count),
        INSITU_STATUS_NOT_FOUND, "ERR dataset 'ds' has no metadata field 'nope'");
  OK(insitu_dataset_get_meta_string_count(back_ds, S("who"), &count));
  TRUE(count == 1);
  char who[32];
  size_t who_len = 0;
  OK(insitu_dataset_get_meta_string(back_ds, S("who"), 0, who, sizeof who, &who_len));
  TRUE(who_len == 10 && strcmp(who, "simulation") == 0);
  who_len = 0;
  FAILS(insitu_dataset_get_meta_string(back_ds, S("who"), 0, who, 4, &who_len), INSITU_STATUS_BAD_INPUT,
        "ERR string of 10 bytes does not fit a buffer of 4");
  TRUE(who_len == 10); /* the length needed, so the caller can retry */
  OK(insitu_dataset_get_meta_count(back_ds, S("step"), &count));
  TRUE(count == 1);
  OK(insitu_dataset_get_meta_count(back_ds, S("who"), &count));
  TRUE(count == 1);
  FAILS(insitu_dataset_get_meta_count(back_ds, S("nope"), &count), INSITU_STATUS_NOT_FOUND,
        "ERR dataset 'ds' has no metadata field 'nope'");
  /* Dataset tensors in both orders: a is 2x3 row-major; Fortran order is its transpose. */
  float col[6], back_col[6], back_row[6];
  size_t got_ndims = 0;
  for (size_t i = 0; i < 2; i++)
    for (size_t j = 0; j < 3; j++) col[i + 2 * j] = a[i][j];
  OK(insitu_dataset_add_tensor_fortran(back_ds, S("uf"), col, sizeof col, INSITU_DTYPE_FLOAT, dims, 2));
  OK(insitu_dataset_unpack_tensor(back_ds, S("uf"), INSITU_DTYPE_FLOAT, back_row, sizeof back_row, got_dims, 4,
                                  &got_ndims));
  TRUE(got_ndims == 2 && got_dims[0] == 2 && got_dims[1] == 3 && memcmp(back_row, a, sizeof a) == 0);
  OK(insitu_dataset_unpack_tensor_fortran(back_ds, S("u"), INSITU_DTYPE_FLOAT, back_col, sizeof back_col,
                                          got_dims, 4, &got_ndims));
  TRUE(got_ndims == 2 && memcmp(back_col, col, sizeof col) == 0);
  FAILS(insitu_dataset_unpack_tensor(back_ds, S("u"), INSITU_DTYPE_DOUBLE, back_row, sizeof back_row, got_dims, 4,
                                     &got_ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'u' has dtype FLOAT but the buffer holds DOUBLE");
  FAILS(insitu_dataset_unpack_tensor_fortran(back_ds, S("u"), INSITU_DTYPE_FLOAT, back_col, 8, got_dims, 4,
                                             &got_ndims),
        INSITU_STATUS_BAD_INPUT, "ERR tensor 'u' has 24 bytes but the buffer holds 8");
  FAILS(insitu_dataset_add_tensor_fortran(back_ds, S("bad"), col, 8, INSITU_DTYPE_FLOAT, dims, 2),
        INSITU_STATUS_BAD_INPUT, "ERR data length does not match tensor shape and type");
  FAILS(insitu_dataset_get_tensor(back_ds, S("bad"), &t), INSITU_STATUS_NOT_FOUND,
        "ERR dataset 'ds' has no tensor 'bad'");
  OK(insitu_dataset_get_tensor(back_ds, S("u"), &t));
  TRUE(memcmp(insitu_tensor_data(t), a, sizeof a) == 0);
  insitu_tensor_free(t);
  FAILS(insitu_dataset_get_tensor(back_ds, S("v"), &t), INSITU_STATUS_NOT_FOUND, "ERR dataset 'ds' has no tensor 'v'");
  insitu_dataset_free(back_ds);
  OK(insitu_client_copy_dataset(c, S("ds"), S("ds2")));
  OK(insitu_client_rename_dataset(c, S("ds2"), S("ds3")));
  OK(insitu_client_delete_dataset(c, S("ds3")));
  FAILS(insitu_client_get_dataset(c, S("ds3"), &back_ds), INSITU_STATUS_NOT_FOUND,
        "ERR The requested DataSet, \"ds3\", does not exist.");

  /* Aggregation lists. */
  OK(insitu_client_append_to_list(c, S("samples"), ds));
  OK(insitu_client_append_to_list(c, S("samples"), ds));
  size_t len = 0;
  OK(insitu_client_get_list_length(c, S("samples"), &len));
  TRUE(len == 2);
  OK(insitu_client_poll_list_length(c, S("samples"), 2, 1, 1, &yes));
  TRUE(yes);
  insitu_dataset_list *list = NULL;
  OK(insitu_client_get_dataset_list_range(c, S("samples"), 0, -1, &list));
  TRUE(insitu_dataset_list_len(list) == 2 && insitu_dataset_list_get(list, 1) != NULL);
  TRUE(insitu_dataset_list_get(list, 2) == NULL);
  OK(insitu_dataset_get_meta_scalars(insitu_dataset_list_get(list, 0), S("step"), INSITU_META_TYPE_INT64, steps, 4, &count));
  TRUE(steps[0] == 7);
  insitu_dataset_list_free(list);
  OK(insitu_client_copy_list(c, S("samples"), S("copy")));
  OK(insitu_client_rename_list(c, S("copy"), S("moved")));
  OK(insitu_client_delete_list(c, S("moved")));
  OK(insitu_client_get_list_length(c, S("moved"), &len));
  TRUE(len == 0);

  /* Models (when the generated test models are available). */
  const char *models = getenv("INSITU_TEST_MODELS");
  if (models) {
    char path[1024];
    snprintf(path, sizeof path, "%s/mlp.onnx", models);
    OK(insitu_client_set_model_from_file(c, S("mlp"), S(path), S("CPU"), 0, 0, 0));
    FAILS(insitu_client_set_model_from_file(c, S("m2"), S(path), S("TPU"), 0, 0, 0), INSITU_STATUS_BAD_INPUT,
          "ERR Invalid DEVICE");
    FILE *f = fopen(path, "rb");
    char blob[65536];
    size_t n = fread(blob, 1, sizeof blob, f);
    fclose(f);
    OK(insitu_client_set_model(c, S("mlp2"), blob, n, S("CPU"), 4, 0, 0));
    float x[16];
    for (int i = 0; i < 16; i++) x[i] = (float)i * 0.1f;
    size_t xd[2] = {1, 16};
    OK(insitu_client_put_tensor(c, S("x"), x, sizeof x, INSITU_DTYPE_FLOAT, xd, 2));
    const char *ins[1] = {"x"}, *outs[1] = {"y"};
    size_t in_lens[1] = {1}, out_lens[1] = {1};
    OK(insitu_client_run_model(c, S("mlp"), ins, in_lens, 1, outs, out_lens, 1));
    insitu_tensor *y = NULL, *input = NULL, *results[2] = {NULL, NULL};
    OK(insitu_client_get_tensor(c, S("y"), &y));
    OK(insitu_tensor_new(x, sizeof x, INSITU_DTYPE_FLOAT, xd, 2, &input));
    size_t n_out = 0;
    const insitu_tensor *inputs[1] = {input};
    OK(insitu_client_infer(c, S("mlp2"), inputs, 1, results, 2, &n_out));
    TRUE(n_out == 1 && insitu_tensor_nbytes(results[0]) == 16);
    TRUE(memcmp(insitu_tensor_data(results[0]), insitu_tensor_data(y), 16) == 0);
    FAILS(insitu_client_infer(c, S("mlp2"), inputs, 1, results, 0, &n_out), INSITU_STATUS_BAD_INPUT,
          "ERR the model has 1 outputs but outputs holds 0");
    insitu_tensor_free(results[0]);
    insitu_tensor_free(input);
    insitu_tensor_free(y);
    OK(insitu_client_model_exists(c, S("mlp"), &yes));
    TRUE(yes);
    OK(insitu_client_poll_model(c, S("mlp"), 1, 1, &yes));
    TRUE(yes);
    OK(insitu_client_delete_model(c, S("mlp")));
    FAILS(insitu_client_delete_model(c, S("mlp")), INSITU_STATUS_NOT_FOUND, "ERR model key is empty");
    FAILS(insitu_client_run_model(c, S("mlp"), ins, in_lens, 1, outs, out_lens, 1), INSITU_STATUS_NOT_FOUND,
          "ERR model key is empty");
  } else {
    printf("models skipped: INSITU_TEST_MODELS not set\n");
  }

  /* Prefixes. */
  FAILS(insitu_client_set_data_source(c, S("sim9")), INSITU_STATUS_BAD_INPUT,
        "ERR Client error: data source sim9 could not be found during client initialization");
  OK(insitu_client_use_tensor_prefix(c, false));
  OK(insitu_client_use_dataset_prefix(c, true));
  OK(insitu_client_use_list_prefix(c, true));
  OK(insitu_client_use_model_prefix(c, false));
  FAILS(insitu_client_use_list_prefix(NULL, true), INSITU_STATUS_NULL_ARGUMENT, "client must not be NULL");

  /* An embedded server: a second client sees the in-process data. */
  char sock[128];
  snprintf(sock, sizeof sock, "/tmp/insitu-capi-%d.sock", (int)getpid());
  insitu_server *server = NULL;
  OK(insitu_client_start_server(c, S(sock), S("127.0.0.1:0"), &server));
  TRUE(insitu_server_tcp_port(server) > 0);
  char addr[160];
  snprintf(addr, sizeof addr, "unix://%s", sock);
  OK(insitu_client_connect(S(addr), &remote));
  OK(insitu_client_get_tensor(remote, S("a"), &t));
  TRUE(memcmp(insitu_tensor_data(t), a, sizeof a) == 0);
  insitu_tensor_free(t);
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)insitu_server_tcp_port(server));
  insitu_client_free(remote);
  OK(insitu_client_connect(S(addr), &remote));
  OK(insitu_client_key_exists(remote, S("a"), &yes));
  TRUE(yes);
  insitu_client_free(remote);
  FAILS(insitu_client_start_server(c, S(sock), S("not an address"), &server), INSITU_STATUS_BAD_INPUT,
        "ERR invalid TCP address 'not an address' (expected ip:port)");
  OK(insitu_server_free(server));

  /* _free(NULL) is a no-op everywhere. */
  insitu_client_free(NULL);
  insitu_tensor_free(NULL);
  insitu_dataset_free(NULL);
  insitu_dataset_list_free(NULL);
  OK(insitu_server_free(NULL));
  TRUE(insitu_tensor_ndims(NULL) == 0 && insitu_tensor_data(NULL) == NULL);

  insitu_dataset_free(ds);
  insitu_client_free(c);
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("C API: all checks passed\n");
  return 0;
}
