/* safetensors and checkpoints: a round trip in memory and on disk; every malformed-file case gives its
 * own error whose message names the problem (and the tensor); a net's weights and checkpoints save and
 * load bit-exactly; files that do not fit the net (other model, other classes, missing, extra, wrong
 * dtype, truncated) fail with a message naming the tensor and both shapes and leave the net unchanged;
 * the model and classes of a file without metadata (PyTorch's save_file) come from its shapes, and
 * shapes that fit no model, or another model than the one named, are refused naming tensor and shapes. */
#define _POSIX_C_SOURCE 200809L /* mkdtemp, truncate, popen */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/io.h"
#include "alexnet/train.h" /* an_net_save, an_net_load */
#include "check.h"

/* ---- helpers ---- */

/* Fails unless status is want and the last error contains every string of the NULL-terminated list. */
static void expect_error(an_status status, an_status want, ...) {
  const char *msg = an_last_error();
  if (status != want)
    fail_msg("status %s, expected %s; message: %s", an_status_name(status), an_status_name(want), msg);
  va_list ap;
  va_start(ap, want);
  for (const char *s; (s = va_arg(ap, const char *));)
    if (!strstr(msg, s)) {
      va_end(ap);
      fail_msg("the message does not mention \"%s\": %s", s, msg);
    }
  va_end(ap);
  printf("  ok: %s\n", msg);
}

/* A file in memory: the header length, json, then data_bytes bytes of 0x5a. */
static uint8_t *make_file(const char *json, size_t data_bytes, size_t *n) {
  const size_t len = strlen(json);
  *n = 8 + len + data_bytes;
  uint8_t *b = malloc(*n);
  assert_non_null(b);
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)len >> (8 * i));
  memcpy(b + 8, json, len);
  memset(b + 8 + len, 0x5a, data_bytes);
  return b;
}

/* Parses json + data_bytes and expects a format error mentioning the strings given. */
#define EXPECT_BAD(json, data_bytes, ...)                              \
  do {                                                                 \
    size_t n_;                                                         \
    uint8_t *b_ = make_file((json), (data_bytes), &n_);                \
    an_safetensors *st_ = (an_safetensors *)0x1;                       \
    an_status s_ = an_st_parse(b_, n_, "bad.safetensors", &st_);       \
    assert_null(st_);                                                  \
    expect_error(s_, AN_ERR_IO, "bad.safetensors", __VA_ARGS__, NULL); \
    free(b_);                                                          \
  } while (0)

static char tmpdir[256];

static void temp_path(char *buf, size_t size, const char *name) { snprintf(buf, size, "%s/%s", tmpdir, name); }

static int make_tmpdir(void) {
  snprintf(tmpdir, sizeof tmpdir, "%s/alexnet-st-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  return mkdtemp(tmpdir) ? 0 : -1;
}

/* ---- the format ---- */

static void test_round_trip(void **state) {
  (void)state;
  float a[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f}; /* (2, 3) */
  int32_t b[4] = {7, -8, 9, 2147483647};                  /* (4) */
  double c = 3.14159;                                     /* () */
  an_st_entry e[4] = {
      {"features.0.weight", AN_DTYPE_F32, 2, {2, 3}, a},
      {"labels", AN_DTYPE_I32, 1, {4}, b},
      {"scalar", AN_DTYPE_F64, 0, {0}, &c},
      {"empty", AN_DTYPE_U8, 1, {0}, NULL},
  };
  an_st_meta meta[2] = {{"model", "alexnet-half"}, {"quote\"key", "value with \"quotes\" and \\ and \xc3\xa9"}};
  uint8_t *bytes;
  size_t n;
  TEST_OK(an_st_serialize(e, 4, meta, 2, &bytes, &n));
  uint64_t header = 0;
  for (int i = 7; i >= 0; i--) header = header << 8 | bytes[i];
  assert_int_equal((8 + header) % 8, 0); /* data 8-aligned */
  assert_int_equal(n, 8 + header + sizeof a + sizeof b + sizeof c);

  an_safetensors *st;
  TEST_OK(an_st_parse(bytes, n, "mem", &st));
  assert_int_equal(st->n_tensors, 4);
  assert_int_equal(st->n_meta, 2);
  assert_string_equal(an_st_meta_get(st, "model"), "alexnet-half");
  assert_string_equal(an_st_meta_get(st, "quote\"key"), meta[1].value);
  assert_null(an_st_meta_get(st, "absent"));
  for (int i = 0; i < 4; i++) {
    const int j = an_st_find(st, e[i].name);
    assert_int_equal(j, i); /* header order kept */
    const an_st_tensor *t = &st->tensors[j];
    assert_int_equal(t->dtype, e[i].dtype);
    assert_int_equal(t->ndim, e[i].ndim);
    for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], e[i].shape[d]);
  }
  assert_int_equal(an_st_find(st, "nope"), -1);
  float a2[6];
  int32_t b2[4];
  double c2;
  TEST_OK(an_st_read(st, 0, a2, sizeof a2));
  TEST_OK(an_st_read(st, 1, b2, sizeof b2));
  TEST_OK(an_st_read(st, 2, &c2, sizeof c2));
  TEST_OK(an_st_read(st, 3, NULL, 0));
  assert_memory_equal(a, a2, sizeof a);
  assert_memory_equal(b, b2, sizeof b);
  assert_memory_equal(&c, &c2, sizeof c);
  expect_error(an_st_read(st, 0, a2, 4), AN_ERR_ARGUMENT, "features.0.weight", "24 bytes", NULL);
  an_st_close(st);

  /* on disk: the same bytes, atomically (no temporary left behind), and read back from the file */
  char path[512];
  temp_path(path, sizeof path, "round.safetensors");
  TEST_OK(an_st_write(path, e, 4, meta, 2));
  TEST_OK(an_st_write(path, e, 4, meta, 2)); /* replaces the file */
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t *disk = malloc(n + 1);
  assert_non_null(disk);
  assert_int_equal(fread(disk, 1, n + 1, f), n);
  fclose(f);
  assert_memory_equal(disk, bytes, n);
  free(disk);
  char listing[600];
  snprintf(listing, sizeof listing, "ls %s | grep -c tmp", tmpdir);
  FILE *p = popen(listing, "r");
  assert_non_null(p);
  int leftovers = -1;
  assert_int_equal(fscanf(p, "%d", &leftovers), 1);
  pclose(p);
  assert_int_equal(leftovers, 0);

  TEST_OK(an_st_open(path, &st));
  assert_string_equal(st->source, path);
  TEST_OK(an_st_read(st, 1, b2, sizeof b2));
  TEST_OK(an_st_read(st, 0, a2, sizeof a2));
  assert_memory_equal(a, a2, sizeof a);
  assert_memory_equal(b, b2, sizeof b);
  an_st_close(st);
  free(bytes);

  /* no metadata, no tensors: still a valid file */
  TEST_OK(an_st_serialize(NULL, 0, NULL, 0, &bytes, &n));
  TEST_OK(an_st_parse(bytes, n, "empty", &st));
  assert_int_equal(st->n_tensors, 0);
  assert_int_equal(st->n_meta, 0);
  an_st_close(st);
  free(bytes);
}

static void test_writer_rejects(void **state) {
  (void)state;
  float x[2] = {0};
  an_st_entry dup[2] = {{"w", AN_DTYPE_F32, 1, {2}, x}, {"w", AN_DTYPE_F32, 1, {2}, x}};
  uint8_t *bytes;
  size_t n;
  expect_error(an_st_serialize(dup, 2, NULL, 0, &bytes, &n), AN_ERR_ARGUMENT, "tensor w given twice", NULL);
  an_st_entry reserved = {"__metadata__", AN_DTYPE_F32, 1, {2}, x};
  expect_error(an_st_serialize(&reserved, 1, NULL, 0, &bytes, &n), AN_ERR_ARGUMENT, "__metadata__", NULL);
  an_st_meta twice[2] = {{"k", "a"}, {"k", "b"}};
  expect_error(an_st_serialize(NULL, 0, twice, 2, &bytes, &n), AN_ERR_ARGUMENT, "'k' given twice", NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/no/such/dir/w.safetensors", tmpdir);
  expect_error(an_st_write(path, dup, 1, NULL, 0), AN_ERR_IO, "no/such/dir", "temporary file", NULL);
}

static void test_bad_length(void **state) {
  (void)state;
  an_safetensors *st;
  const uint8_t tiny[5] = {1, 0, 0, 0, 0};
  expect_error(an_st_parse(tiny, sizeof tiny, "bad.safetensors", &st), AN_ERR_IO, "bad.safetensors",
               "truncated file", "5 bytes", NULL);
  /* length field says 1000, 12 bytes follow */
  uint8_t beyond[20] = {0xe8, 0x03};
  memcpy(beyond + 8, "{}          ", 12);
  expect_error(an_st_parse(beyond, sizeof beyond, "bad.safetensors", &st), AN_ERR_IO,
               "header length 1000 runs past the end of the file", "12 bytes", NULL);
  /* an absurd length (2^63) */
  uint8_t huge[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
  expect_error(an_st_parse(huge, sizeof huge, "bad.safetensors", &st), AN_ERR_IO, "runs past the end", NULL);
  /* a header over the limit inside a file that is large enough */
  const size_t big = (size_t)AN_ST_MAX_HEADER_BYTES + 64;
  uint8_t *b = calloc(big, 1);
  assert_non_null(b);
  const uint64_t len = AN_ST_MAX_HEADER_BYTES + 1;
  for (int i = 0; i < 8; i++) b[i] = (uint8_t)(len >> (8 * i));
  expect_error(an_st_parse(b, big, "bad.safetensors", &st), AN_ERR_IO, "exceeds the limit", NULL);
  free(b);
}

static void test_bad_json(void **state) {
  (void)state;
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", ", 0, "not valid JSON");
  EXPECT_BAD("", 0, "not valid JSON");
  EXPECT_BAD("{}  x", 0, "bytes after its JSON object", "byte 4");
  EXPECT_BAD("[1, 2]", 0, "not a JSON object");
  EXPECT_BAD("\"text\"", 0, "not a JSON object");
}

static void test_bad_fields(void **state) {
  (void)state;
  EXPECT_BAD("{\"w\": 3}", 0, "tensor w is not a JSON object");
  EXPECT_BAD("{\"w\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "tensor w has no dtype");
  EXPECT_BAD("{\"w\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
             "tensor w: dtype is not a string");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F33\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
             "tensor w has unknown dtype 'F33'");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "tensor w has no shape");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": 4, \"data_offsets\": [0, 4]}}", 4,
             "tensor w: shape is not an array");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4,
             "tensor w: shape element 0 is not a non-negative integer");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1, 1.5], \"data_offsets\": [0, 4]}}", 4,
             "tensor w: shape element 1 is not a non-negative integer");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 4]}}", 4, "shape element 0");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4,
             "tensor w has 9 dimensions");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 4]}}", 4,
             "tensor w: shape [4294967296,4294967296] has more elements");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "tensor w has no data_offsets");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", 4,
             "tensor w: data_offsets is not a pair");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, -4]}}", 4,
             "data_offsets is not a pair");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": {\"a\": 0}}}", 4,
             "data_offsets is not a pair");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 0]}}", 4, "end before they begin");
  EXPECT_BAD("{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "empty name");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"w\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}",
             8, "tensor w appears twice");
  EXPECT_BAD("{\"__metadata__\": [\"a\"]}", 0, "__metadata__ is not a JSON object");
  EXPECT_BAD("{\"__metadata__\": {\"epoch\": 3}}", 0, "__metadata__ value of 'epoch' is not a string");
  EXPECT_BAD("{\"__metadata__\": {\"a\": \"1\", \"a\": \"2\"}}", 0, "key 'a' twice");
  EXPECT_BAD("{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "__metadata__ twice");
}

static void test_bad_offsets(void **state) {
  (void)state;
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8,
             "tensor w: data_offsets [0, 16) lie outside the data section of 8 bytes");
  EXPECT_BAD("{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
             12, "tensors a [0, 8) and b [4, 12) have overlapping data_offsets");
  /* b lies inside a: overlap with the furthest-reaching tensor, not only the previous one */
  EXPECT_BAD("{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]},"
             " \"b\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [2, 3]},"
             " \"c\": {\"dtype\": \"U8\", \"shape\": [1], \"data_offsets\": [5, 6]}}",
             16, "overlapping", "a [0, 16)");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}", 8,
             "tensor w: data_offsets span 8 bytes, but shape [3] of F32 needs 12");
  EXPECT_BAD("{\"w\": {\"dtype\": \"F64\", \"shape\": [2, 2], \"data_offsets\": [0, 16]}}", 32,
             "span 16 bytes, but shape [2,2] of F64 needs 32");
  /* empty tensors share offsets without overlapping anything */
  size_t n;
  uint8_t *b = make_file("{\"e\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [4, 4]},"
                         " \"w\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
                         8, &n);
  an_safetensors *st;
  TEST_OK(an_st_parse(b, n, "ok", &st));
  an_st_close(st);
  free(b);
}

static void test_bad_files_on_disk(void **state) {
  (void)state;
  char path[512];
  an_safetensors *st;
  temp_path(path, sizeof path, "does-not-exist.safetensors");
  expect_error(an_st_open(path, &st), AN_ERR_IO, "does-not-exist.safetensors", "cannot open", NULL);
  expect_error(an_st_open(tmpdir, &st), AN_ERR_IO, "not a regular file", NULL);

  /* a valid file, then truncated at several points */
  float w[16] = {0};
  an_st_entry e[2] = {{"features.0.weight", AN_DTYPE_F32, 2, {2, 4}, w},
                      {"features.0.bias", AN_DTYPE_F32, 1, {8}, w + 8}};
  temp_path(path, sizeof path, "trunc.safetensors");
  TEST_OK(an_st_write(path, e, 2, NULL, 0));
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  uint8_t full[512];
  const size_t n = fread(full, 1, sizeof full, f);
  fclose(f);
  const size_t cuts[] = {n - 1, n - 32, n - 64, 20, 4};
  const char *want[] = {"features.0.bias", "features.0.bias", "features.0.weight", "runs past the end",
                        "truncated file"};
  for (int i = 0; i < 5; i++) {
    assert_int_equal(truncate(path, (off_t)cuts[i]), 0);
    expect_error(an_st_open(path, &st), AN_ERR_IO, path, want[i], NULL);
    f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(full, 1, n, f), n);
    fclose(f);
  }
  /* a file that shrinks after its header was read: the data read reports it */
  TEST_OK(an_st_open(path, &st));
  assert_int_equal(truncate(path, (off_t)(n - 8)), 0);
  float got[8];
  expect_error(an_st_read(st, 1, got, sizeof got), AN_ERR_IO, "truncated file", "features.0.bias", NULL);
  an_st_close(st);
}

/* ---- a net's weights and checkpoints ---- */

#define CLASSES 10
#define INPUT 63

/* The shared runtime fixture (test_rt), opened by the first device test: the format tests need none. */
static int setup_device(void **state) {
  (void)state;
  if (!test_rt) test_rt = test_runtime();
  return test_rt ? 0 : -1;
}

static an_net *make_net(const char *model, int classes, uint64_t seed) {
  an_net *net;
  TEST_OK(an_net_create(test_rt, model, classes, 1, INPUT, &net));
  TEST_OK(an_net_init(net, seed));
  return net;
}

static float *read_buffer(an_net *net, cl_mem mem) {
  float *x = test_floats(net->n_params); /* (n_params) */
  TEST_OK(an_read(net->rt, x, an_at(mem, 0), net->n_params));
  return x;
}

/* One training step so the momentum is not zero. */
static void train_once(an_net *net) {
  float images[3 * INPUT * INPUT]; /* (1, 3, INPUT, INPUT) */
  test_rng rng = test_rng_seeded(5);
  test_fill_uniform(images, sizeof images / sizeof images[0], -1.0f, 1.0f, &rng);
  const int label = 3;
  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  float loss;
  TEST_OK(an_net_train_step(net, images, &label, &sgd, 1, 0, &loss));
}

static void test_net_weights_round_trip(void **state) {
  (void)state;
  char path[512];
  temp_path(path, sizeof path, "weights.safetensors");
  an_net *a = make_net("alexnet-half", CLASSES, 1), *b = make_net("alexnet-half", CLASSES, 2);
  train_once(b); /* b has momentum: loading weights must zero it */
  TEST_OK(an_net_save(a, path, NULL));
  an_checkpoint_meta m;
  TEST_OK(an_net_load(b, path, &m));
  float *pa = read_buffer(a, a->params), *pb = read_buffer(b, b->params), *vb = read_buffer(b, b->momentum);
  assert_memory_equal(pa, pb, a->n_params * sizeof(float));
  for (size_t i = 0; i < b->n_params; i++) assert_true(vb[i] == 0.0f);
  assert_int_equal(m.checkpoint, 0);
  assert_int_equal(m.format_version, AN_CHECKPOINT_FORMAT_VERSION);
  assert_string_equal(m.model, "alexnet-half");
  assert_int_equal(m.classes, CLASSES);
  assert_int_equal(m.input_hw, INPUT);

  /* the file itself: every tensor of the table, named and shaped as the net says */
  an_safetensors *st;
  TEST_OK(an_st_open(path, &st));
  assert_int_equal(st->n_tensors, a->n_tensors);
  assert_string_equal(an_st_meta_get(st, "kind"), "weights");
  const int j = an_st_find(st, "features.3.weight");
  assert_true(j >= 0);
  assert_int_equal(st->tensors[j].shape[0], 128);
  assert_int_equal(st->tensors[j].shape[1], 48);
  an_st_close(st);
  free(pa), free(pb), free(vb);
  an_net_destroy(a), an_net_destroy(b);
}

static void test_net_checkpoint_round_trip(void **state) {
  (void)state;
  char path[512];
  temp_path(path, sizeof path, "checkpoint.safetensors");
  an_net *a = make_net("alexnet-half", CLASSES, 1), *b = make_net("alexnet-half", CLASSES, 2);
  train_once(a);
  an_checkpoint_meta meta = {.checkpoint = 1,
                             .epoch = 3,
                             .step = 12345678901LL,
                             .seed = 18446744073709551615ULL,
                             .lr = 0.0123,
                             .mean = "0.485,0.456,0.406",
                             .std = "0.229,0.224,0.225"};
  TEST_OK(an_net_save(a, path, &meta));
  an_checkpoint_meta m;
  TEST_OK(an_net_load(b, path, &m));
  float *pa = read_buffer(a, a->params), *pb = read_buffer(b, b->params);
  float *va = read_buffer(a, a->momentum), *vb = read_buffer(b, b->momentum);
  assert_memory_equal(pa, pb, a->n_params * sizeof(float));
  assert_memory_equal(va, vb, a->n_params * sizeof(float));
  int nonzero = 0;
  for (size_t i = 0; i < a->n_params && !nonzero; i++) nonzero = va[i] != 0.0f;
  assert_true(nonzero);
  assert_int_equal(m.checkpoint, 1);
  assert_int_equal(m.epoch, 3);
  assert_true(m.step == 12345678901LL);
  assert_true(m.seed == 18446744073709551615ULL);
  assert_true(m.lr == 0.0123);
  assert_string_equal(m.mean, meta.mean);
  assert_string_equal(m.std, meta.std);
  assert_string_equal(m.model, "alexnet-half");
  free(pa), free(pb), free(va), free(vb);
  an_net_destroy(a), an_net_destroy(b);
}

/* Rewrites src into dst through the safetensors API: drop the tensor called drop, put *replace in place
 * of the tensor of its name, add *extra, and replace the metadata (none when n_meta is 0). */
static void rewrite(const char *src, const char *dst, const char *drop, const an_st_entry *replace,
                    const an_st_entry *extra, const an_st_meta *meta, int n_meta) {
  an_safetensors *st;
  TEST_OK(an_st_open(src, &st));
  an_st_entry *e = calloc((size_t)st->n_tensors + 1, sizeof *e);
  void **data = calloc((size_t)st->n_tensors, sizeof *data);
  assert_non_null(e);
  assert_non_null(data);
  int n = 0;
  for (int i = 0; i < st->n_tensors; i++) {
    const an_st_tensor *t = &st->tensors[i];
    const size_t bytes = (size_t)(t->end - t->begin);
    data[i] = malloc(bytes ? bytes : 1);
    assert_non_null(data[i]);
    TEST_OK(an_st_read(st, i, data[i], bytes));
    if (drop && !strcmp(t->name, drop)) continue;
    if (replace && !strcmp(t->name, replace->name)) {
      e[n++] = *replace;
      continue;
    }
    e[n] = (an_st_entry){t->name, t->dtype, t->ndim, {0}, data[i]};
    memcpy(e[n].shape, t->shape, sizeof e[n].shape);
    n++;
  }
  if (extra) e[n++] = *extra;
  TEST_OK(an_st_write(dst, e, n, meta, n_meta));
  for (int i = 0; i < st->n_tensors; i++) free(data[i]);
  free(data), free(e);
  an_st_close(st);
}

/* Loading path into net fails with want and the strings given, and the net's parameters and momentum
 * are what they were. */
#define EXPECT_LOAD_FAILS(net, path, want, ...)                                                 \
  do {                                                                                          \
    float *p0_ = read_buffer((net), (net)->params), *v0_ = read_buffer((net), (net)->momentum); \
    expect_error(an_net_load((net), (path), NULL), (want), __VA_ARGS__, NULL);                  \
    float *p1_ = read_buffer((net), (net)->params), *v1_ = read_buffer((net), (net)->momentum); \
    assert_memory_equal(p0_, p1_, (net)->n_params * sizeof(float));                             \
    assert_memory_equal(v0_, v1_, (net)->n_params * sizeof(float));                             \
    free(p0_), free(p1_), free(v0_), free(v1_);                                                 \
  } while (0)

static void test_net_load_rejects(void **state) {
  (void)state;
  char good[512], ckpt[512], half5[512], bad[512];
  temp_path(good, sizeof good, "good.safetensors");
  temp_path(ckpt, sizeof ckpt, "ckpt.safetensors");
  temp_path(half5, sizeof half5, "half5.safetensors");
  temp_path(bad, sizeof bad, "bad.safetensors");
  an_net *net = make_net("alexnet-half", CLASSES, 7);
  train_once(net); /* non-zero momentum, which a failed load must keep too */
  {
    an_net *other = make_net("alexnet-half", CLASSES, 4);
    TEST_OK(an_net_save(other, good, NULL));
    const an_checkpoint_meta meta = {.checkpoint = 1};
    TEST_OK(an_net_save(other, ckpt, &meta));
    an_net_destroy(other);
    other = make_net("alexnet-half", 5, 3);
    TEST_OK(an_net_save(other, half5, NULL));
    an_net_destroy(other);
  }
  static float zeros[64 * 3 * 11 * 11];
  /* another model named in the metadata; without metadata (a bare state_dict), torchvision's conv1 */
  const an_st_meta tv_meta[2] = {{"model", "alexnet-tv"}, {"kind", "weights"}};
  rewrite(good, bad, NULL, NULL, NULL, tv_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, bad, "model alexnet-tv", "the net is alexnet-half");
  const an_st_entry tv_conv1 = {"features.0.weight", AN_DTYPE_F32, 4, {64, 3, 11, 11}, zeros};
  rewrite(good, bad, NULL, &tv_conv1, NULL, NULL, 0);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT,
                    "bad.safetensors: tensor features.0.weight has shape [64,3,11,11], "
                    "the model needs [48,3,11,11]");
  /* other classes, with and without metadata */
  EXPECT_LOAD_FAILS(net, half5, AN_ERR_ARGUMENT,
                    "half5.safetensors: tensor classifier.6.weight has shape [5,2048], "
                    "the model needs [10,2048]");
  rewrite(half5, bad, NULL, NULL, NULL, NULL, 0);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT,
                    "tensor classifier.6.weight has shape [5,2048], the model needs [10,2048]");
  /* a vector where the model has a matrix */
  const an_st_entry flat = {"classifier.4.weight", AN_DTYPE_F32, 1, {2048 * 2048}, NULL};
  float *flat_data = test_floats(2048 * 2048);
  memset(flat_data, 0, 2048 * 2048 * sizeof(float));
  an_st_entry flat_entry = flat;
  flat_entry.data = flat_data;
  rewrite(good, bad, NULL, &flat_entry, NULL, NULL, 0);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT,
                    "tensor classifier.4.weight has shape [4194304], the model needs [2048,2048]");
  free(flat_data);

  const an_st_meta weights_meta[2] = {{"model", "alexnet-half"}, {"kind", "weights"}};
  rewrite(good, bad, "classifier.6.bias", NULL, NULL, weights_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, "tensor classifier.6.bias is missing (the model needs [10])");
  const an_st_entry extra = {"classifier.7.weight", AN_DTYPE_F32, 1, {4}, zeros};
  rewrite(good, bad, NULL, NULL, &extra, weights_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, "tensor classifier.7.weight is not part of model alexnet-half");
  const an_st_entry as_int = {"features.6.bias", AN_DTYPE_I32, 1, {192}, zeros};
  rewrite(good, bad, NULL, &as_int, NULL, weights_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, "tensor features.6.bias has dtype I32, the model needs F32");
  const an_st_entry as_half = {"features.6.bias", AN_DTYPE_F16, 1, {192}, zeros};
  rewrite(good, bad, NULL, &as_half, NULL, weights_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, "tensor features.6.bias has dtype F16, the model needs F32");
  /* a checkpoint that lost one momentum tensor; a checkpoint's tensors under "kind: weights" */
  const an_st_meta ckpt_meta[1] = {{"kind", "checkpoint"}};
  rewrite(ckpt, bad, "momentum.features.8.weight", NULL, NULL, ckpt_meta, 1);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT,
                    "tensor momentum.features.8.weight is missing (the model needs [192,192,3,3])");
  rewrite(ckpt, bad, NULL, NULL, NULL, weights_meta, 2);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_ARGUMENT, "momentum.features.0.weight is not part of model alexnet-half",
                    "do not say checkpoint", "16 tensors");
  /* metadata this build cannot use */
  const an_st_meta newer[1] = {{"format_version", "2"}};
  rewrite(good, bad, NULL, NULL, NULL, newer, 1);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_IO, "format_version 2 is newer");
  const an_st_meta kind[1] = {{"kind", "optimizer"}};
  rewrite(good, bad, NULL, NULL, NULL, kind, 1);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_IO, "kind is 'optimizer'");
  const an_st_meta epoch[1] = {{"epoch", "three"}};
  rewrite(good, bad, NULL, NULL, NULL, epoch, 1);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_IO, "epoch is 'three', not an integer");
  /* truncated: the data of most tensors are cut off */
  rewrite(good, bad, NULL, NULL, NULL, weights_meta, 2);
  assert_int_equal(truncate(bad, 4096), 0);
  EXPECT_LOAD_FAILS(net, bad, AN_ERR_IO, "truncated file");
  EXPECT_LOAD_FAILS(net, "/nonexistent/w.safetensors", AN_ERR_IO, "/nonexistent/w.safetensors: cannot open");

  /* and the good files still load into the same net afterwards */
  TEST_OK(an_net_load(net, good, NULL));
  TEST_OK(an_net_load(net, ckpt, NULL));
  an_net_destroy(net);
}

/* ---- which model a file holds, from its shapes (an_model_identify) ---- */

/* A file of model's tensors for `classes` as PyTorch's save_file writes it (no metadata unless meta is
 * given), its data a hole (sparse: only the header is ever read here). change (may be NULL) is the name
 * of one tensor to write with shape new_shape (ndim 0: leave it out) or, new_dtype set, as F16. */
static void write_plain(const char *path, const char *model, int classes, const char *change, int ndim,
                        const int64_t *new_shape, int new_f16, const char *meta) {
  an_net *plan = NULL;
  TEST_OK(an_net_plan(model, classes, 1, 224, &plan));
  size_t cap = 16384, len = 0;
  char *json = malloc(cap);
  assert_non_null(json);
  len += (size_t)snprintf(json + len, cap - len, "{%s", meta ? meta : "");
  uint64_t offset = 0;
  int first = !meta;
  for (int i = 0; i < plan->n_tensors; i++) {
    const an_tensor *t = &plan->tensors[i];
    int64_t shape[4];
    int nd = t->ndim, f16 = 0;
    for (int d = 0; d < nd; d++) shape[d] = t->shape[d];
    if (change && !strcmp(change, t->name)) {
      if (!ndim && !new_f16) continue;
      if (ndim) {
        nd = ndim;
        memcpy(shape, new_shape, (size_t)ndim * sizeof *shape);
      }
      f16 = new_f16;
    }
    uint64_t count = 1;
    for (int d = 0; d < nd; d++) count *= (uint64_t)shape[d];
    const uint64_t bytes = count * (f16 ? 2 : 4);
    len += (size_t)snprintf(json + len, cap - len, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",",
                            t->name, f16 ? "F16" : "F32");
    for (int d = 0; d < nd; d++)
      len += (size_t)snprintf(json + len, cap - len, "%s%lld", d ? "," : "", (long long)shape[d]);
    len += (size_t)snprintf(json + len, cap - len, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                            (unsigned long long)(offset + bytes));
    offset += bytes;
    first = 0;
  }
  len += (size_t)snprintf(json + len, cap - len, "}");
  assert_true(len < cap);
  while (len % 8) json[len++] = ' ';
  FILE *f = fopen(path, "wb");
  assert_non_null(f);
  uint8_t n8[8];
  for (int i = 0; i < 8; i++) n8[i] = (uint8_t)((uint64_t)len >> (8 * i));
  assert_int_equal(fwrite(n8, 1, 8, f), 8);
  assert_int_equal(fwrite(json, 1, len, f), len);
  assert_int_equal(fclose(f), 0);
  assert_int_equal(truncate(path, (off_t)(8 + len + offset)), 0);
  free(json);
  an_net_destroy(plan);
}

static void test_identify_models(void **state) {
  (void)state;
  static const char *const models[] = {"alexnet", "alexnet-half", "alexnet-tv"};
  static const char *const conv1[] = {"[96,3,11,11]", "[48,3,11,11]", "[64,3,11,11]"};
  char path[300];
  temp_path(path, sizeof path, "plain.safetensors");
  for (int i = 0; i < 3; i++) {
    const an_model_desc *m;
    int classes;
    write_plain(path, models[i], 7, NULL, 0, NULL, 0, NULL);
    TEST_OK(an_model_identify_file(path, NULL, &m, &classes));
    assert_string_equal(m->name, models[i]);
    assert_int_equal(classes, 7);
    TEST_OK(an_model_identify_file(path, models[i], &m, &classes));
    assert_string_equal(m->name, models[i]);
    assert_int_equal(classes, 7);
    for (int j = 0; j < 3; j++) { /* --model as a check: the tensor, both shapes, what the file holds */
      if (j == i) continue;
      char holds[64];
      snprintf(holds, sizeof holds, "the file holds %s weights (7 classes)", models[i]);
      expect_error(an_model_identify_file(path, models[j], &m, &classes), AN_ERR_ARGUMENT, "features.0.weight",
                   conv1[i], conv1[j], holds, NULL);
      assert_null(m);
    }
  }
  /* 1000 classes too */
  write_plain(path, "alexnet-tv", 1000, NULL, 0, NULL, 0, NULL);
  const an_model_desc *m;
  int classes;
  TEST_OK(an_model_identify_file(path, NULL, &m, &classes));
  assert_string_equal(m->name, "alexnet-tv");
  assert_int_equal(classes, 1000);
}

static void test_identify_rejects(void **state) {
  (void)state;
  char path[300];
  temp_path(path, sizeof path, "bad.safetensors");
  const an_model_desc *m;
  int classes;
  /* alexnet with conv2 in one group (96 input channels): the shapes fit no model */
  const int64_t one_group[4] = {256, 96, 5, 5};
  write_plain(path, "alexnet", 7, "features.4.weight", 4, one_group, 0, NULL);
  expect_error(an_model_identify_file(path, NULL, &m, &classes), AN_ERR_ARGUMENT, "fit none of the models",
               "tensor features.4.weight has shape [256,96,5,5], model alexnet needs [256,48,5,5]",
               "model alexnet-half needs [48,3,11,11]", "model alexnet-tv needs [64,3,11,11]", NULL);
  expect_error(an_model_identify_file(path, "alexnet", &m, &classes), AN_ERR_ARGUMENT, "fit none of the models",
               "features.4.weight has shape [256,96,5,5]", NULL);
  /* no last layer: no classes */
  write_plain(path, "alexnet-half", 7, "classifier.6.weight", 0, NULL, 0, NULL);
  expect_error(an_model_identify_file(path, NULL, &m, &classes), AN_ERR_ARGUMENT,
               "tensor classifier.6.weight (the classes are its rows) is missing", NULL);
  /* a last bias of other rows than its weight */
  const int64_t bias5[1] = {5};
  write_plain(path, "alexnet-half", 7, "classifier.6.bias", 1, bias5, 0, NULL);
  expect_error(an_model_identify_file(path, NULL, &m, &classes), AN_ERR_ARGUMENT,
               "tensor classifier.6.bias has shape [5], model alexnet-half needs [7]", NULL);
  /* F16 */
  write_plain(path, "alexnet-tv", 7, "features.3.weight", 0, NULL, 1, NULL);
  expect_error(an_model_identify_file(path, NULL, &m, &classes), AN_ERR_ARGUMENT,
               "tensor features.3.weight has dtype F16, model alexnet-tv needs F32", NULL);
  /* metadata that contradict the shapes or --model */
  write_plain(path, "alexnet-tv", 7, NULL, 0, NULL, 0, "\"__metadata__\":{\"classes\":\"5\"}");
  expect_error(an_model_identify_file(path, NULL, &m, &classes), AN_ERR_ARGUMENT,
               "__metadata__ classes is 5, the last layer has 7 rows", NULL);
  write_plain(path, "alexnet-tv", 7, NULL, 0, NULL, 0, "\"__metadata__\":{\"model\":\"alexnet-tv\"}");
  TEST_OK(an_model_identify_file(path, NULL, &m, &classes));
  assert_string_equal(m->name, "alexnet-tv");
  expect_error(an_model_identify_file(path, "alexnet-half", &m, &classes), AN_ERR_ARGUMENT,
               "holds weights of model alexnet-tv (its metadata say so), not alexnet-half", NULL);
  expect_error(an_model_identify_file(path, "resnet", &m, &classes), AN_ERR_UNKNOWN_MODEL, "resnet", NULL);
}

static int cleanup_tmpdir(void **state) {
  test_runtime_teardown(state);
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
  return system(cmd) == 0 ? 0 : -1;
}

static int setup_all(void **state) {
  (void)state;
  return make_tmpdir();
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_round_trip),
      cmocka_unit_test(test_writer_rejects),
      cmocka_unit_test(test_bad_length),
      cmocka_unit_test(test_bad_json),
      cmocka_unit_test(test_bad_fields),
      cmocka_unit_test(test_bad_offsets),
      cmocka_unit_test(test_bad_files_on_disk),
      cmocka_unit_test(test_identify_models),
      cmocka_unit_test(test_identify_rejects),
      cmocka_unit_test_setup(test_net_weights_round_trip, setup_device),
      cmocka_unit_test_setup(test_net_checkpoint_round_trip, setup_device),
      cmocka_unit_test_setup(test_net_load_rejects, setup_device),
  };
  return cmocka_run_group_tests(tests, setup_all, cleanup_tmpdir);
}
