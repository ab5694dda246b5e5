/* Models ONNX Runtime accepts whatever their declared shapes: an input of unknown rank,
   symbolic and partly known dims, an input with a default, and a scikit-learn classifier
   with its ZipMap output. Each reference case (inputs and onnxruntime's outputs, written
   by core/tests/models/gen_models.py into $INSITU_TEST_MODELS/manifest.txt) is run
   through run_model and infer, in process and through an embedded server over TCP; every
   output's dtype, dims and every element must match. */
#include "insitu.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) x, strlen(x)
#define MAX_TENSORS 64
#define MAX_DIMS 8

static const char *MODELS[] = {"unknown_rank", "symbolic_dims", "optional_input", "zipmap"};
#define N_MODELS (sizeof MODELS / sizeof MODELS[0])

typedef struct {
  char model[64], kind[4], file[128];
  int case_no, index;
  insitu_dtype dtype;
  size_t ndims, dims[MAX_DIMS];
  void *data;
  size_t nbytes;
} ref_tensor;

static int failures = 0;
static ref_tensor refs[MAX_TENSORS];
static size_t n_refs = 0;

static void fail(int line, const char *what) {
  char msg[512];
  insitu_last_error_message(msg, sizeof msg);
  fprintf(stderr, "line %d: %s (last error: %s)\n", line, what, msg);
  failures++;
}
#define OK(call)                                 \
  do {                                           \
    if ((call) != INSITU_STATUS_OK) fail(__LINE__, #call); \
  } while (0)

static int dtype_of(const char *name, insitu_dtype *out) {
  if (strcmp(name, "FLOAT") == 0) *out = INSITU_DTYPE_FLOAT;
  else if (strcmp(name, "INT64") == 0) *out = INSITU_DTYPE_INT64;
  else return 0;
  return 1;
}

static size_t elem_size(insitu_dtype d) { return d == INSITU_DTYPE_INT64 ? 8 : 4; }

static void *read_file(const char *dir, const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  void *buf = malloc(n > 0 ? (size_t)n : 1);
  *len = fread(buf, 1, (size_t)n, f);
  fclose(f);
  return buf;
}

static int wanted(const char *model) {
  for (size_t i = 0; i < N_MODELS; i++)
    if (strcmp(model, MODELS[i]) == 0) return 1;
  return 0;
}

static int load_manifest(const char *dir) {
  char path[1024], dtype[16];
  snprintf(path, sizeof path, "%s/manifest.txt", dir);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  ref_tensor t;
  while (fscanf(f, "%63s %d %3s %d %15s %zu", t.model, &t.case_no, t.kind, &t.index, dtype, &t.ndims) == 6) {
    if (t.ndims > MAX_DIMS) break;
    for (size_t d = 0; d < t.ndims; d++)
      if (fscanf(f, "%zu", &t.dims[d]) != 1) break;
    if (fscanf(f, "%127s", t.file) != 1) break;
    if (!wanted(t.model)) continue;
    if (!dtype_of(dtype, &t.dtype) || n_refs == MAX_TENSORS) {
      fprintf(stderr, "manifest: unexpected %s tensor in %s\n", dtype, t.model);
      failures++;
      continue;
    }
    t.data = read_file(dir, t.file, &t.nbytes);
    if (!t.data) {
      fprintf(stderr, "cannot read %s\n", t.file);
      failures++;
      continue;
    }
    refs[n_refs++] = t;
  }
  fclose(f);
  return 1;
}

/* Every element of `got` against the reference: integers exactly, floats within 1e-5. */
static void compare(const char *where, const insitu_tensor *got, const ref_tensor *want) {
  if (insitu_tensor_dtype(got) != want->dtype || insitu_tensor_ndims(got) != want->ndims) {
    fprintf(stderr, "%s: dtype/rank differ from onnxruntime's\n", where);
    failures++;
    return;
  }
  for (size_t d = 0; d < want->ndims; d++)
    if (insitu_tensor_dims(got)[d] != want->dims[d]) {
      fprintf(stderr, "%s: dim %zu is %zu, onnxruntime gave %zu\n", where, d, insitu_tensor_dims(got)[d],
              want->dims[d]);
      failures++;
      return;
    }
  if (insitu_tensor_nbytes(got) != want->nbytes) {
    fprintf(stderr, "%s: %zu bytes, onnxruntime gave %zu\n", where, insitu_tensor_nbytes(got), want->nbytes);
    failures++;
    return;
  }
  size_t n = want->nbytes / elem_size(want->dtype);
  for (size_t i = 0; i < n; i++) {
    int same;
    if (want->dtype == INSITU_DTYPE_INT64) {
      same = ((const int64_t *)insitu_tensor_data(got))[i] == ((const int64_t *)want->data)[i];
    } else {
      float a = ((const float *)insitu_tensor_data(got))[i], b = ((const float *)want->data)[i];
      same = fabsf(a - b) <= 1e-5f + 1e-5f * fabsf(b);
    }
    if (!same) {
      fprintf(stderr, "%s: element %zu differs from onnxruntime's\n", where, i);
      failures++;
      return;
    }
  }
}

static void run_cases(insitu_client *c, const char *dir, const char *mode) {
  for (size_t m = 0; m < N_MODELS; m++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.onnx", dir, MODELS[m]);
    OK(insitu_client_set_model_from_file(c, S(MODELS[m]), S(path), S("CPU"), 0, 0, 0));
    for (int k = 0;; k++) {
      const ref_tensor *ins[MAX_DIMS], *outs[MAX_DIMS];
      size_t n_in = 0, n_out = 0;
      for (size_t r = 0; r < n_refs; r++) {
        const ref_tensor *t = &refs[r];
        if (strcmp(t->model, MODELS[m]) != 0 || t->case_no != k) continue;
        if (strcmp(t->kind, "in") == 0 && n_in < MAX_DIMS) ins[n_in++] = t;
        else if (n_out < MAX_DIMS) outs[n_out++] = t;
      }
      if (n_in == 0) {
        if (k == 0) {
          fprintf(stderr, "%s: no reference cases\n", MODELS[m]);
          failures++;
        }
        break;
      }
      char in_names[MAX_DIMS][96], out_names[MAX_DIMS][96], where[160];
      const char *in_ptrs[MAX_DIMS], *out_ptrs[MAX_DIMS];
      size_t in_lens[MAX_DIMS], out_lens[MAX_DIMS];
      insitu_tensor *owned[MAX_DIMS] = {NULL};
      const insitu_tensor *inputs[MAX_DIMS];
      for (size_t i = 0; i < n_in; i++) {
        snprintf(in_names[i], sizeof in_names[i], "%s.%d.in%zu", MODELS[m], k, i);
        in_ptrs[i] = in_names[i];
        in_lens[i] = strlen(in_names[i]);
        OK(insitu_client_put_tensor(c, in_names[i], in_lens[i], ins[i]->data, ins[i]->nbytes, ins[i]->dtype,
                                    ins[i]->dims, ins[i]->ndims));
        OK(insitu_tensor_new(ins[i]->data, ins[i]->nbytes, ins[i]->dtype, ins[i]->dims, ins[i]->ndims, &owned[i]));
        inputs[i] = owned[i];
      }
      for (size_t o = 0; o < n_out; o++) {
        snprintf(out_names[o], sizeof out_names[o], "%s.%d.out%zu", MODELS[m], k, o);
        out_ptrs[o] = out_names[o];
        out_lens[o] = strlen(out_names[o]);
      }
      /* Stored tensors in, stored tensors out. */
      OK(insitu_client_run_model(c, S(MODELS[m]), in_ptrs, in_lens, n_in, out_ptrs, out_lens, n_out));
      for (size_t o = 0; o < n_out; o++) {
        insitu_tensor *got = NULL;
        snprintf(where, sizeof where, "%s run_model %s", mode, out_names[o]);
        OK(insitu_client_get_tensor(c, out_names[o], out_lens[o], &got));
        if (got) compare(where, got, outs[o]);
        insitu_tensor_free(got);
      }
      /* Arrays in, arrays out, nothing stored. */
      insitu_tensor *results[MAX_DIMS] = {NULL};
      size_t n_results = 0;
      OK(insitu_client_infer(c, S(MODELS[m]), inputs, n_in, results, MAX_DIMS, &n_results));
      if (n_results != n_out) {
        fprintf(stderr, "%s infer %s: %zu outputs, onnxruntime gave %zu\n", mode, MODELS[m], n_results, n_out);
        failures++;
      }
      for (size_t o = 0; o < n_results && o < n_out; o++) {
        snprintf(where, sizeof where, "%s infer %s case %d output %zu", mode, MODELS[m], k, o);
        compare(where, results[o], outs[o]);
      }
      for (size_t o = 0; o < n_results; o++) insitu_tensor_free(results[o]);
      for (size_t i = 0; i < n_in; i++) insitu_tensor_free(owned[i]);
    }
  }
}

int main(void) {
  const char *dir = getenv("INSITU_TEST_MODELS");
  if (!dir || !load_manifest(dir)) {
    fprintf(stderr, "INSITU_TEST_MODELS must name a directory of generated models (manifest.txt)\n");
    return 1;
  }
  insitu_client *c = NULL, *remote = NULL;
  insitu_server *server = NULL;
  OK(insitu_client_connect(S("inproc"), &c));
  run_cases(c, dir, "inproc");

  OK(insitu_client_start_server(c, NULL, 0, S("127.0.0.1:0"), &server));
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%u", (unsigned)insitu_server_tcp_port(server));
  OK(insitu_client_connect(S(addr), &remote));
  if (remote) run_cases(remote, dir, "tcp");
  insitu_client_free(remote);
  OK(insitu_server_free(server));
  insitu_client_free(c);
  for (size_t r = 0; r < n_refs; r++) free(refs[r].data);
  if (failures) {
    fprintf(stderr, "%d checks failed\n", failures);
    return 1;
  }
  printf("C models: %zu reference tensors of %zu models matched onnxruntime\n", n_refs, N_MODELS);
  return 0;
}
