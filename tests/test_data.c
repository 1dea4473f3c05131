/* The data side: datasets (synthetic, Fashion-MNIST, folder-per-class, pack), broken files, resizing,
 * augmentation and its determinism, ten-crop geometry, the PCA statistics and their eigen-decomposition,
 * and the threaded loader (batches equal to an_preprocess of the samples they name, identical for any
 * thread count, resumable). No device is involved.
 *
 * Fashion-MNIST must be installed (Debian's dataset-fashion-mnist): without it the test fails. Every
 * file the test makes lives in a fresh directory under $TMPDIR (or /tmp), removed at the end. */
#define _XOPEN_SOURCE 700 /* nftw, mkdtemp */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alexnet/data.h"
#include "../src/runtime/grow.h"
#include "check.h"
#include "test_data_fixture.h"

static char tmp_root[512];

static int setup(void **state) {
  (void)state;
  const char *base = getenv("TMPDIR");
  snprintf(tmp_root, sizeof tmp_root, "%s/alexnet_test_data_XXXXXX", base && *base ? base : "/tmp");
  if (!mkdtemp(tmp_root)) {
    fprintf(stderr, "cannot create a temporary directory under %s\n", base ? base : "/tmp");
    return -1;
  }
  return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)flag, (void)ftw;
  return remove(path);
}

static int teardown(void **state) {
  (void)state;
  nftw(tmp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
  return 0;
}

static const char *tmp_path(char *buf, size_t size, const char *name) {
  snprintf(buf, size, "%s/%s", tmp_root, name);
  return buf;
}

static void write_bytes(const char *path, const void *bytes, size_t n) {
  FILE *f = fopen(path, "wb");
  if (!f) fail_msg("cannot create %s", path);
  if (n) assert_int_equal(fwrite(bytes, 1, n, f), n);
  fclose(f);
}

static uint8_t *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  if (!f) fail_msg("cannot open %s", path);
  fseek(f, 0, SEEK_END);
  long size = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t *b = malloc((size_t)size + 1);
  assert_non_null(b);
  assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
  fclose(f);
  *n = (size_t)size;
  return b;
}

static void make_dir(const char *path) {
  if (mkdir(path, 0777) != 0) fail_msg("cannot create %s", path);
}

/* Warnings collected instead of printed. */
typedef struct warn_log {
  char lines[64][512];
  int n;
} warn_log;

static void collect_warning(void *ctx, const char *message) {
  warn_log *log = ctx;
  if (log->n < 64) snprintf(log->lines[log->n], sizeof log->lines[0], "%s", message);
  log->n++;
}

static int count_mentions(const warn_log *log, const char *name) {
  int k = 0;
  for (int i = 0; i < log->n && i < 64; i++)
    if (strstr(log->lines[i], name)) k++;
  return k;
}

static an_dataset *synthetic(int count, int classes, int side, uint64_t seed) {
  an_synthetic_config cfg = {count, classes, side, 0.1f, seed};
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_synthetic(&cfg, &ds));
  return ds;
}

static void expect_same_image(const an_image *a, const an_image *b) {
  assert_int_equal(a->width, b->width);
  assert_int_equal(a->height, b->height);
  assert_int_equal(a->channels, b->channels);
  assert_memory_equal(a->pixels, b->pixels, (size_t)a->width * a->height * a->channels);
}

/* ---- synthetic set: generation, export to a folder tree and reading it back ---- */

static void test_synthetic_round_trip(void **state) {
  (void)state;
  an_dataset *ds = synthetic(60, 6, 20, 7);
  assert_int_equal(an_dataset_count(ds), 60);
  assert_int_equal(an_dataset_classes(ds), 6);
  for (int c = 0; c < 6; c++) assert_int_equal(an_dataset_class_count(ds, c), 10);
  for (int i = 0; i < 60; i++) assert_int_equal(an_dataset_label(ds, i), i % 6);
  int w, h, ch;
  assert_int_equal(an_dataset_fixed_size(ds, &w, &h, &ch), 1);
  assert_true(w == 20 && h == 20 && ch == 3);

  /* the same seed makes the same images, another seed others */
  an_dataset *again = synthetic(60, 6, 20, 7), *other = synthetic(60, 6, 20, 8);
  an_image a, b, c;
  TEST_OK(an_dataset_read(ds, 13, &a));
  TEST_OK(an_dataset_read(again, 13, &b));
  TEST_OK(an_dataset_read(other, 13, &c));
  expect_same_image(&a, &b);
  assert_true(memcmp(a.pixels, c.pixels, 20 * 20 * 3) != 0);
  an_image_free(&a), an_image_free(&b), an_image_free(&c);
  an_dataset_destroy(again);
  an_dataset_destroy(other);

  /* PNG is lossless: the folder tree reads back exactly, classes from the folder names */
  char root[600];
  TEST_OK(an_dataset_export_folder(ds, tmp_path(root, sizeof root, "synthetic_png"), "png"));
  an_dataset *folder = NULL;
  TEST_OK(an_dataset_open(root, &folder));
  assert_int_equal(an_dataset_count(folder), 60);
  assert_int_equal(an_dataset_classes(folder), 6);
  TEST_OK(an_dataset_check_classes(ds, folder));
  assert_int_equal(an_dataset_fixed_size(folder, &w, &h, &ch), 0);
  for (int k = 0; k < 60; k++) {
    char name[1024];
    an_dataset_sample_name(folder, k, name, sizeof name);
    const char *base = strrchr(name, '/');
    assert_non_null(base);
    const int i = atoi(base + 1); /* exported as <class>/<index>.png */
    assert_int_equal(an_dataset_label(folder, k), an_dataset_label(ds, i));
    TEST_OK(an_dataset_read(folder, k, &a));
    TEST_OK(an_dataset_read(ds, i, &b));
    expect_same_image(&a, &b);
    an_image_free(&a), an_image_free(&b);
  }
  an_dataset_destroy(folder);

  /* JPEG (the fixture: this generator's sample 2 of another set, at quality 95) decodes close to the
   * original; BMP exactly */
  an_synthetic_config fixture_cfg = {3, 3, 16, 0.05f, 11};
  an_dataset *small = NULL;
  TEST_OK(an_dataset_synthetic(&fixture_cfg, &small));
  TEST_OK(an_image_decode(test_jpeg_16, sizeof test_jpeg_16, "fixture.jpg", &a));
  TEST_OK(an_dataset_read(small, 2, &b));
  assert_true(a.width == 16 && a.height == 16 && a.channels == 3);
  double err = 0;
  for (int i = 0; i < 16 * 16 * 3; i++) err += fabs((double)a.pixels[i] - b.pixels[i]);
  printf("JPEG fixture: mean |error| %.2f levels\n", err / (16 * 16 * 3));
  assert_true(err / (16 * 16 * 3) < 8.0);
  an_image_free(&a), an_image_free(&b);
  an_dataset_destroy(small);
  TEST_OK(an_dataset_export_folder(ds, tmp_path(root, sizeof root, "synthetic_bmp"), "bmp"));
  TEST_OK(an_dataset_open_folder(root, &folder));
  TEST_OK(an_dataset_read(folder, 1, &a));
  TEST_OK(an_dataset_read(ds, 6, &b)); /* folder order: class00's 0, 6, …, then class01's 1, 7, … */
  assert_int_equal(an_dataset_label(folder, 1), 0);
  expect_same_image(&a, &b);
  an_image_free(&a), an_image_free(&b);
  an_dataset_destroy(folder);

  /* a held-out split: stratified, disjoint, covering, and the same for the same seed */
  an_dataset *train = NULL, *val = NULL, *train2 = NULL, *val2 = NULL;
  TEST_OK(an_dataset_split(ds, 0.2, 3, &train, &val));
  TEST_OK(an_dataset_split(ds, 0.2, 3, &train2, &val2));
  assert_int_equal(an_dataset_count(train), 48);
  assert_int_equal(an_dataset_count(val), 12);
  for (int cl = 0; cl < 6; cl++) assert_int_equal(an_dataset_class_count(val, cl), 2);
  for (int i = 0; i < 12; i++) {
    TEST_OK(an_dataset_read(val, i, &a));
    TEST_OK(an_dataset_read(val2, i, &b));
    expect_same_image(&a, &b);
    for (int j = 0; j < 48; j++) { /* no validation image is in the training part */
      an_image t;
      TEST_OK(an_dataset_read(train, j, &t));
      assert_true(memcmp(t.pixels, a.pixels, 20 * 20 * 3) != 0);
      an_image_free(&t);
    }
    an_image_free(&a), an_image_free(&b);
  }
  an_dataset_destroy(ds); /* the views keep the storage alive */
  TEST_OK(an_dataset_read(train, 47, &a));
  an_image_free(&a);
  an_dataset_destroy(train), an_dataset_destroy(val), an_dataset_destroy(train2), an_dataset_destroy(val2);
}

/* ---- Fashion-MNIST from Debian's dataset-fashion-mnist ---- */

static void test_fashion_mnist(void **state) {
  (void)state;
  an_dataset *train = NULL, *test = NULL;
  TEST_OK(an_dataset_open("fashion-mnist", &train)); /* fails (not skips) without the package */
  TEST_OK(an_dataset_open("fashion-mnist:test", &test));
  assert_int_equal(an_dataset_count(train), 60000);
  assert_int_equal(an_dataset_count(test), 10000);
  assert_int_equal(an_dataset_classes(train), 10);
  assert_string_equal(an_dataset_class_name(train, 0), "T-shirt/top");
  assert_string_equal(an_dataset_class_name(train, 9), "Ankle boot");
  for (int c = 0; c < 10; c++) {
    assert_int_equal(an_dataset_class_count(train, c), 6000);
    assert_int_equal(an_dataset_class_count(test, c), 1000);
  }
  for (int i = 0; i < 60000; i++) assert_in_range(an_dataset_label(train, i), 0, 9);
  assert_int_equal(an_dataset_label(train, 0), 9); /* the first training image is an ankle boot */
  int w, h, ch;
  assert_int_equal(an_dataset_fixed_size(train, &w, &h, &ch), 1);
  assert_true(w == 28 && h == 28 && ch == 1);
  an_image img;
  TEST_OK(an_dataset_read(test, 9999, &img));
  long sum = 0;
  for (int i = 0; i < 28 * 28; i++) sum += img.pixels[i];
  assert_true(sum > 0); /* not a blank image */
  an_image_free(&img);

  an_data_stats st;
  TEST_OK(an_data_stats_compute(train, 0, 0, 2, NULL, NULL, &st));
  printf("Fashion-MNIST train: mean %.4f std %.4f eigval %.4f %.2g %.2g\n", st.mean[0], st.std[0], st.eigval[0],
         st.eigval[1], st.eigval[2]);
  assert_true(fabs(st.mean[0] - 0.2860) < 0.001 && fabs(st.std[0] - 0.3530) < 0.001); /* the published figures */
  assert_true(st.mean[0] == st.mean[2] && st.std[0] == st.std[1]);
  assert_true(fabs(st.eigval[0] - 3 * st.std[0] * st.std[0]) < 1e-4); /* grey: one direction, (1,1,1)/√3 */
  assert_true(fabs(st.eigvec[0][0] - 0.57735f) < 1e-4 && st.eigval[1] < 1e-6);
  an_dataset_destroy(train);
  an_dataset_destroy(test);
}

/* ---- IDX files that lie ---- */

static void be32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

static void test_idx_errors(void **state) {
  (void)state;
  uint8_t images[16 + 3 * 4 * 5] = {0}, labels[8 + 3] = {0};
  be32(images, 0x803), be32(images + 4, 3), be32(images + 8, 4), be32(images + 12, 5);
  be32(labels, 0x801), be32(labels + 4, 3);
  labels[8] = 0, labels[9] = 4, labels[10] = 2;
  for (int i = 0; i < 60; i++) images[16 + i] = (uint8_t)(i * 4);
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_open_idx_memory(images, sizeof images, labels, sizeof labels, "tiny", &ds));
  assert_int_equal(an_dataset_count(ds), 3);
  assert_int_equal(an_dataset_classes(ds), 5);
  an_image img;
  TEST_OK(an_dataset_read(ds, 2, &img));
  assert_true(img.width == 5 && img.height == 4 && img.channels == 1 && img.pixels[0] == 160);
  an_image_free(&img);
  an_dataset_destroy(ds);
  /* truncated images, wrong magic, label count mismatch, declared sizes past the data */
  assert_int_equal(an_dataset_open_idx_memory(images, sizeof images - 1, labels, sizeof labels, "t", &ds),
                   AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "truncated"));
  assert_int_equal(an_dataset_open_idx_memory(labels, sizeof labels, labels, sizeof labels, "t", &ds), AN_ERR_IO);
  assert_int_equal(an_dataset_open_idx_memory(images, sizeof images, labels, sizeof labels - 1, "t", &ds),
                   AN_ERR_IO);
  be32(images + 4, 0x7fffffff);
  assert_int_equal(an_dataset_open_idx_memory(images, sizeof images, labels, sizeof labels, "t", &ds), AN_ERR_IO);
  assert_int_equal(an_dataset_open_idx_memory(images, 3, labels, 2, "t", &ds), AN_ERR_IO);
  /* gzip'd: a truncated and a corrupted copy of the real file are errors, not crashes */
  char path[600];
  size_t n;
  const char *fm = getenv("ALEXNET_FASHION_MNIST");
  char gz_path[600];
  snprintf(gz_path, sizeof gz_path, "%s/t10k-labels-idx1-ubyte.gz",
           fm && *fm ? fm : "/usr/share/datasets/fashion-mnist");
  uint8_t *gz = read_bytes(gz_path, &n);
  assert_int_equal(an_dataset_open_idx_memory(images, sizeof images, gz, n / 2, "half.gz", &ds), AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "gzip"));
  gz[n / 2] ^= 0x55;
  gz[n / 2 + 1] ^= 0xAA;
  assert_int_not_equal(an_dataset_open_idx_memory(images, sizeof images, gz, n, "bad.gz", &ds), AN_OK);
  free(gz);
  assert_int_equal(an_dataset_open_idx(tmp_path(path, sizeof path, "none-idx3"), path, &ds), AN_ERR_IO);
  assert_int_equal(an_dataset_open_fashion_mnist(tmp_root, 1, &ds), AN_ERR_IO); /* no files there */
  assert_non_null(strstr(an_last_error(), "dataset-fashion-mnist"));
  assert_null(ds);
}

/* ---- broken image files: named, counted, never a crash ---- */

static uint32_t crc32_of(const uint8_t *p, size_t n) {
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
  }
  return ~c;
}

/* A PNG signature and an IHDR claiming width x height RGB, a few bytes of IDAT, IEND. */
static void write_huge_png(const char *path, uint32_t width, uint32_t height) {
  uint8_t f[8 + 25 + 12 + 4 + 12] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  uint8_t *c = f + 8;
  be32(c, 13), memcpy(c + 4, "IHDR", 4), be32(c + 8, width), be32(c + 12, height);
  c[16] = 8, c[17] = 2; /* 8 bits, RGB */
  be32(c + 21, crc32_of(c + 4, 17));
  c = f + 33;
  be32(c, 4), memcpy(c + 4, "IDAT", 4), memcpy(c + 8, "\x78\x9c\x03\x00", 4);
  be32(c + 12, crc32_of(c + 4, 8));
  c = f + 49;
  be32(c, 0), memcpy(c + 4, "IEND", 4), be32(c + 8, crc32_of(c + 4, 4));
  write_bytes(path, f, sizeof f);
}

static void le32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8), p[2] = (uint8_t)(v >> 16), p[3] = (uint8_t)(v >> 24);
}

/* A BMP header (BITMAPINFOHEADER, 24 bits) claiming width x height, and 64 bytes of pixels. */
static void write_huge_bmp(const char *path, uint32_t width, uint32_t height) {
  uint8_t f[54 + 64] = {'B', 'M'};
  le32(f + 2, sizeof f), le32(f + 10, 54), le32(f + 14, 40), le32(f + 18, width), le32(f + 22, height);
  f[26] = 1, f[28] = 24;
  write_bytes(path, f, sizeof f);
}

static const char *const broken_names[] = {"truncated.jpg", "empty.jpg", "text.png",   "huge.png",
                                           "huge.bmp",      "half.png",  "garbage.jpg"};
enum { N_BROKEN = 7, N_GOOD = 5 };

/* root/a: 2 good images and the broken ones; root/b: 3 good ones; a text file that is no sample. */
static void make_broken_tree(const char *root) {
  char dir[700], path[800];
  make_dir(root);
  snprintf(dir, sizeof dir, "%s/a", root), make_dir(dir);
  an_dataset *ds = synthetic(5, 1, 48, 11);
  an_image img;
  snprintf(dir, sizeof dir, "%s/b", root), make_dir(dir);
  const char *good_png_bmp[3] = {"a/good0.png", "a/good1.bmp", "b/good3.png"}; /* 48x48 */
  for (int i = 0; i < 3; i++) {
    TEST_OK(an_dataset_read(ds, i, &img));
    snprintf(path, sizeof path, "%s/%s", root, good_png_bmp[i]);
    TEST_OK(an_image_write(path, &img));
    an_image_free(&img);
  }
  snprintf(path, sizeof path, "%s/b/good2.jpg", root),
      write_bytes(path, test_jpeg_16, sizeof test_jpeg_16); /* 16x16 */
  snprintf(path, sizeof path, "%s/b/good4.jpg", root), write_bytes(path, test_jpeg_16, sizeof test_jpeg_16);
  size_t n = sizeof test_jpeg_16;
  uint8_t *jpg = malloc(n);
  assert_non_null(jpg);
  memcpy(jpg, test_jpeg_16, n);
  snprintf(path, sizeof path, "%s/a/truncated.jpg", root), write_bytes(path, jpg, n / 2);
  for (size_t i = n / 3; i < n - 2; i += 7) jpg[i] = (uint8_t)(jpg[i] * 31 + 17); /* scribbled scan data */
  snprintf(path, sizeof path, "%s/a/garbage.jpg", root), write_bytes(path, jpg, n);
  free(jpg);
  snprintf(path, sizeof path, "%s/b/good3.png", root);
  uint8_t *png = read_bytes(path, &n);
  snprintf(path, sizeof path, "%s/a/half.png", root), write_bytes(path, png, n / 2);
  free(png);
  snprintf(path, sizeof path, "%s/a/empty.jpg", root), write_bytes(path, "", 0);
  snprintf(path, sizeof path, "%s/a/text.png", root), write_bytes(path, "this is not an image\n", 21);
  snprintf(path, sizeof path, "%s/a/huge.png", root), write_huge_png(path, 100000, 100000);
  snprintf(path, sizeof path, "%s/a/huge.bmp", root), write_huge_bmp(path, 100000, 100000);
  snprintf(path, sizeof path, "%s/b/README.txt", root), write_bytes(path, "notes\n", 6);
  an_dataset_destroy(ds);
}

static void test_broken_files(void **state) {
  (void)state;
  char root[600];
  make_broken_tree(tmp_path(root, sizeof root, "broken"));
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_open_folder(root, &ds));
  assert_int_equal(an_dataset_count(ds), N_GOOD + N_BROKEN); /* README.txt is not a sample */
  int bad = 0;
  for (int i = 0; i < an_dataset_count(ds); i++) { /* each read: AN_OK or AN_ERR_IO naming the file */
    char name[1024];
    an_dataset_sample_name(ds, i, name, sizeof name);
    an_image img;
    const an_status st = an_dataset_read(ds, i, &img);
    if (st != AN_OK) {
      assert_int_equal(st, AN_ERR_IO);
      assert_non_null(strstr(an_last_error(), name));
      printf("  %s\n", an_last_error());
      bad++;
    } else {
      assert_true(img.width == 48 || img.width == 16);
      an_image_free(&img);
    }
  }
  assert_int_equal(bad, N_BROKEN);

  /* evaluation: every image visited once, the broken ones blanked, each warned about once */
  an_loader_config cfg = {
      .batch = 5, .threads = 2, .prefetch = 1, .train = 0, .epochs = 2, .seed = 1, .aug = an_augment_none(32)};
  warn_log log = {.n = 0};
  cfg.warn = collect_warning, cfg.warn_ctx = &log;
  an_loader *ld = NULL;
  TEST_OK(an_loader_create(ds, &cfg, &ld));
  assert_int_equal(an_loader_batches_per_epoch(ld), 3);
  int seen = 0, blank = 0, batches = 0;
  const an_batch *b;
  for (;;) {
    TEST_OK(an_loader_next(ld, &b));
    if (!b) break;
    batches++;
    for (int j = 0; j < b->samples; j++) b->index[j] >= 0 ? seen++ : blank++;
  }
  assert_int_equal(batches, 6);
  assert_int_equal(seen, 2 * N_GOOD);
  assert_int_equal(blank, 2 * N_BROKEN);
  assert_int_equal(an_loader_skipped(ld), N_BROKEN);
  an_loader_destroy(ld);
  assert_int_equal(log.n, N_BROKEN);
  for (int k = 0; k < N_BROKEN; k++) assert_int_equal(count_mentions(&log, broken_names[k]), 1);

  /* training: broken images replaced by readable ones, batches always full */
  cfg.train = 1, cfg.epochs = 3, cfg.batch = 4, cfg.threads = 3;
  log.n = 0;
  TEST_OK(an_loader_create(ds, &cfg, &ld));
  for (;;) {
    TEST_OK(an_loader_next(ld, &b));
    if (!b) break;
    assert_int_equal(b->samples, 4);
    for (int j = 0; j < 4; j++) {
      char name[1024];
      assert_true(b->index[j] >= 0);
      an_dataset_sample_name(ds, b->index[j], name, sizeof name);
      assert_non_null(strstr(name, "good"));
      assert_int_equal(b->labels[j], an_dataset_label(ds, b->index[j]));
    }
  }
  assert_int_equal(an_loader_skipped(ld), N_BROKEN);
  an_loader_destroy(ld);
  assert_int_equal(log.n, N_BROKEN);

  /* statistics and packing skip them too */
  an_data_stats st;
  log.n = 0;
  TEST_OK(an_data_stats_compute(ds, 0, 0, 2, collect_warning, &log, &st));
  assert_int_equal(st.images, N_GOOD);
  assert_int_equal(log.n, N_BROKEN);
  char pack[600];
  an_pack_report report;
  log.n = 0;
  TEST_OK(an_pack_write(ds, tmp_path(pack, sizeof pack, "broken.pack"), 32, 2, collect_warning, &log, &report));
  assert_int_equal(report.written, N_GOOD);
  assert_int_equal(report.skipped, N_BROKEN);
  assert_int_equal(log.n, N_BROKEN);
  an_dataset_destroy(ds);

  /* a dataset with nothing readable: training stops with a clear error, not a hang or a crash */
  char only_bad[600], path[800];
  make_dir(tmp_path(only_bad, sizeof only_bad, "only_bad"));
  snprintf(path, sizeof path, "%s/x", only_bad), make_dir(path);
  snprintf(path, sizeof path, "%s/x/1.jpg", only_bad), write_bytes(path, "", 0);
  snprintf(path, sizeof path, "%s/x/2.png", only_bad), write_bytes(path, "no", 2);
  TEST_OK(an_dataset_open_folder(only_bad, &ds));
  cfg.batch = 2, cfg.threads = 2, cfg.warn = collect_warning, log.n = 0;
  TEST_OK(an_loader_create(ds, &cfg, &ld));
  assert_int_equal(an_loader_next(ld, &b), AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "none of its 2 images"));
  an_loader_destroy(ld);
  assert_int_equal(an_pack_write(ds, tmp_path(pack, sizeof pack, "none.pack"), 8, 1, collect_warning, &log, &report),
                   AN_ERR_IO);
  assert_int_equal(access(pack, F_OK), -1); /* no half-written file left behind */
  an_dataset_destroy(ds);

  /* raw decoder on the crafted headers: refused before allocating */
  an_image img;
  snprintf(path, sizeof path, "%s/a/huge.png", root);
  assert_int_equal(an_image_load(path, &img), AN_ERR_IO);
  assert_null(img.pixels);
}

/* ---- clear errors before training ---- */

static void test_dataset_errors(void **state) {
  (void)state;
  an_dataset *ds = NULL;
  char root[600], path[800];
  assert_int_equal(an_dataset_open(tmp_path(root, sizeof root, "does-not-exist"), &ds), AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "does-not-exist"));
  make_dir(tmp_path(root, sizeof root, "no_classes"));
  assert_int_equal(an_dataset_open(root, &ds), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "no class folders"));
  make_dir(tmp_path(root, sizeof root, "empty_class"));
  snprintf(path, sizeof path, "%s/cats", root), make_dir(path);
  snprintf(path, sizeof path, "%s/dogs", root), make_dir(path);
  snprintf(path, sizeof path, "%s/cats/notes.txt", root), write_bytes(path, "x", 1);
  an_dataset *one = synthetic(1, 1, 8, 1);
  an_image img;
  TEST_OK(an_dataset_read(one, 0, &img));
  snprintf(path, sizeof path, "%s/dogs/d.png", root);
  TEST_OK(an_image_write(path, &img));
  an_image_free(&img);
  assert_int_equal(an_dataset_open(root, &ds), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "'cats' has no image files"));
  assert_null(ds);

  /* an empty dataset, a batch larger than the set, statistics missing */
  an_dataset *train = NULL, *val = NULL;
  TEST_OK(an_dataset_split(one, 0.5, 1, &train, &val)); /* one image: all of it stays in training */
  assert_int_equal(an_dataset_count(val), 0);
  an_loader_config cfg = {.batch = 2, .threads = 1, .prefetch = 1, .train = 0, .aug = an_augment_none(8)};
  an_loader *ld = NULL;
  assert_int_equal(an_loader_create(val, &cfg, &ld), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "empty"));
  cfg.train = 1;
  assert_int_equal(an_loader_create(train, &cfg, &ld), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "fewer than one training batch"));
  cfg.batch = 1, cfg.aug = an_augment_default(8);
  assert_int_equal(an_loader_create(train, &cfg, &ld), AN_ERR_ARGUMENT);
  assert_non_null(strstr(an_last_error(), "statistics"));
  cfg.aug.resize = 4; /* smaller than the input */
  cfg.stats = an_data_stats_imagenet();
  assert_int_equal(an_loader_create(train, &cfg, &ld), AN_ERR_ARGUMENT);
  assert_null(ld);
  an_dataset *other = synthetic(4, 2, 8, 1);
  assert_int_equal(an_dataset_check_classes(one, other), AN_ERR_ARGUMENT);
  an_dataset_destroy(other);
  an_dataset_destroy(train), an_dataset_destroy(val), an_dataset_destroy(one);
}

/* ---- resize ---- */

static void test_resize(void **state) {
  (void)state;
  /* 40x20 grey: dark bands at both ends, 200 in the middle 20 columns. Short side 20 -> 10 makes it
   * 20x10, whose centre 10x10 is exactly the bright middle (edges blend with the band by the filter). */
  uint8_t px[20 * 40], out[10 * 10 * 3];
  for (int y = 0; y < 20; y++)
    for (int x = 0; x < 40; x++) px[y * 40 + x] = x >= 10 && x < 30 ? 200 : 0;
  an_image src = {40, 20, 1, px}, dst = {0, 0, 0, out};
  TEST_OK(an_image_resize_square(&src, 10, &dst));
  assert_true(dst.width == 10 && dst.height == 10 && dst.channels == 3);
  for (int y = 0; y < 10; y++)
    for (int x = 1; x < 9; x++)
      for (int c = 0; c < 3; c++) assert_int_equal(out[(y * 10 + x) * 3 + c], 200);
  assert_int_equal(out[0], 175); /* column 0: source 9…12 with triangle weights, 1/8 of them dark */
  /* a constant image stays constant, shrinking (antialiased) or growing */
  uint8_t flat[30 * 50 * 3], big[73 * 73 * 3], small[7 * 7 * 3];
  memset(flat, 77, sizeof flat);
  an_image f = {50, 30, 3, flat}, g = {0, 0, 0, big}, s = {0, 0, 0, small};
  TEST_OK(an_image_resize_square(&f, 73, &g));
  TEST_OK(an_image_resize_square(&f, 7, &s));
  for (size_t i = 0; i < sizeof big; i++) assert_int_equal(big[i], 77);
  for (size_t i = 0; i < sizeof small; i++) assert_int_equal(small[i], 77);
  /* shrinking a fine checkerboard gives its mean, not aliasing */
  uint8_t checker[64 * 64];
  for (int i = 0; i < 64 * 64; i++) checker[i] = ((i % 64) + (i / 64)) % 2 ? 255 : 0;
  an_image ch = {64, 64, 1, checker}, c8 = {0, 0, 0, small};
  TEST_OK(an_image_resize_square(&ch, 7, &c8));
  for (size_t i = 0; i < 7 * 7 * 3; i++) assert_in_range(small[i], 120, 135);
}

/* ---- augmentation: determinism, ten-crop geometry ---- */

static void test_augment_determinism(void **state) {
  (void)state;
  an_dataset *ds = synthetic(4, 2, 40, 5);
  an_data_stats st;
  TEST_OK(an_data_stats_compute(ds, 0, 0, 1, NULL, NULL, &st));
  an_image img;
  TEST_OK(an_dataset_read(ds, 1, &img));
  an_augment aug = an_augment_default(32); /* resize 37, random crop, flip, PCA, mean/std */
  assert_int_equal(aug.resize, 37);
  const size_t n = 3 * 32 * 32;
  float *a = test_floats(n), *b = test_floats(n), *c = test_floats(n);
  const uint64_t key = an_sample_key(42, 3, 1);
  TEST_OK(an_preprocess(&img, &aug, &st, 1, key, a));
  TEST_OK(an_preprocess(&img, &aug, &st, 1, key, b));
  assert_memory_equal(a, b, n * sizeof(float));
  int differ = 0;
  for (uint64_t e = 0; e < 8; e++) { /* other epochs give other crops, flips and lighting */
    TEST_OK(an_preprocess(&img, &aug, &st, 1, an_sample_key(42, 4 + e, 1), c));
    differ += memcmp(a, c, n * sizeof(float)) != 0;
  }
  assert_int_equal(differ, 8);
  assert_true(an_sample_key(42, 3, 1) != an_sample_key(42, 3, 2) &&
              an_sample_key(42, 3, 1) != an_sample_key(43, 3, 1));
  /* evaluation ignores the key: centre crop, no flip, no lighting */
  TEST_OK(an_preprocess(&img, &aug, &st, 0, 1, a));
  TEST_OK(an_preprocess(&img, &aug, &st, 0, 2, b));
  assert_memory_equal(a, b, n * sizeof(float));
  /* normalised output has roughly zero mean and unit spread over the set */
  double sum = 0, sq = 0;
  for (size_t i = 0; i < n; i++) sum += a[i], sq += (double)a[i] * a[i];
  printf("normalised sample: mean %.3f rms %.3f\n", sum / n, sqrt(sq / n));
  assert_true(fabs(sum / n) < 1.0 && sqrt(sq / n) < 3.0);
  /* the lighting shift is Σ_k eigvec[k] α_k eigval[k]: with everything else off, every pixel of a
   * channel moves by the same amount */
  an_augment light = an_augment_none(40);
  light.pca_std = 0.1f;
  float *plain = test_floats(3 * 40 * 40), *lit = test_floats(3 * 40 * 40);
  TEST_OK(an_preprocess(&img, &light, &st, 1, 9, lit));
  TEST_OK(an_preprocess(&img, &light, &st, 0, 9, plain));
  for (int ch = 0; ch < 3; ch++) {
    const float shift = lit[ch * 1600] - plain[ch * 1600];
    for (int i = 1; i < 1600; i++) assert_true(fabsf(lit[ch * 1600 + i] - plain[ch * 1600 + i] - shift) < 1e-5f);
  }
  free(plain), free(lit);
  free(a), free(b), free(c);
  an_image_free(&img);
  an_dataset_destroy(ds);
}

static void test_ten_crop_geometry(void **state) {
  (void)state;
  enum { S = 10, I = 6 };
  uint8_t px[S * S * 3]; /* R = x·10, G = y·10, B = 7 */
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++)
      px[(y * S + x) * 3] = (uint8_t)(x * 10), px[(y * S + x) * 3 + 1] = (uint8_t)(y * 10),
                       px[(y * S + x) * 3 + 2] = 7;
  an_image img = {S, S, 3, px};
  an_augment aug = an_augment_none(I);
  aug.resize = S; /* the image is the base: no resampling */
  aug.ten_crop = 1;
  aug.scale = 255; /* raw pixel values out */
  assert_int_equal(an_augment_crops(&aug, 0), 10);
  assert_int_equal(an_augment_crops(&aug, 1), 1);
  float *out = test_floats(10 * 3 * I * I);
  TEST_OK(an_preprocess(&img, &aug, NULL, 0, 0, out));
  const int want[5][2] = {{0, 0}, {4, 0}, {0, 4}, {4, 4}, {2, 2}}; /* TL, TR, BL, BR, centre */
  for (int k = 0; k < 10; k++) {
    int x0, y0;
    an_ten_crop_origin(S, I, k, &x0, &y0);
    assert_int_equal(x0, want[k % 5][0]);
    assert_int_equal(y0, want[k % 5][1]);
    const float *crop = out + (size_t)k * 3 * I * I; /* (3, I, I) */
    for (int y = 0; y < I; y++)
      for (int x = 0; x < I; x++) {
        const int sx = k < 5 ? x0 + x : x0 + I - 1 - x; /* 5…9 mirrored */
        assert_true(fabsf(crop[(0 * I + y) * I + x] - sx * 10) < 1e-3f);
        assert_true(fabsf(crop[(1 * I + y) * I + x] - (y0 + y) * 10) < 1e-3f);
        assert_true(fabsf(crop[(2 * I + y) * I + x] - 7) < 1e-3f);
      }
  }
  /* centre-crop evaluation is ten-crop's crop 4 */
  aug.ten_crop = 0;
  float *centre = test_floats(3 * I * I);
  TEST_OK(an_preprocess(&img, &aug, NULL, 0, 0, centre));
  assert_memory_equal(centre, out + 4 * 3 * I * I, sizeof(float) * 3 * I * I);
  /* a training crop stays inside the image and is one of the 25 positions */
  aug.random_crop = 1, aug.flip = 1;
  for (uint64_t key = 0; key < 50; key++) {
    TEST_OK(an_preprocess(&img, &aug, NULL, 1, key, centre));
    const float left = centre[0], right = centre[I - 1], top = centre[I * I];
    const int x0 = (int)lrintf((left < right ? left : right) / 10), y0 = (int)lrintf(top / 10);
    assert_in_range(x0, 0, S - I);
    assert_in_range(y0, 0, S - I);
    assert_true(fabsf(fabsf(right - left) - (I - 1) * 10) < 1e-3f);
  }
  free(centre);
  free(out);
}

/* ---- PCA: the eigen-decomposition and the statistics ---- */

static void test_pca_eigen(void **state) {
  (void)state;
  /* A = Q diag(5, 2, 0.5) Qᵀ with Q a rotation about (1, 2, 2)/3 by 0.7 rad */
  const double lambda[3] = {5, 2, 0.5};
  const double ax[3] = {1 / 3.0, 2 / 3.0, 2 / 3.0}, th = 0.7, c = cos(th), s = sin(th);
  double Q[3][3];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++) {
      const double cross[3][3] = {{0, -ax[2], ax[1]}, {ax[2], 0, -ax[0]}, {-ax[1], ax[0], 0}};
      Q[i][j] = (i == j ? c : 0) + (1 - c) * ax[i] * ax[j] + s * cross[i][j];
    }
  double A[3][3] = {{0}};
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      for (int k = 0; k < 3; k++) A[i][j] += Q[i][k] * lambda[k] * Q[j][k];
  double val[3], vec[3][3];
  an_eigen_sym3((const double(*)[3])A, val, vec);
  for (int k = 0; k < 3; k++) {
    assert_true(fabs(val[k] - lambda[k]) < 1e-12);
    double dot = 0, norm = 0; /* the k-th column of Q, up to sign */
    for (int i = 0; i < 3; i++) dot += vec[k][i] * Q[i][k], norm += vec[k][i] * vec[k][i];
    assert_true(fabs(fabs(dot) - 1) < 1e-12 && fabs(norm - 1) < 1e-12);
    double Av[3] = {0}; /* A v = λ v */
    for (int i = 0; i < 3; i++)
      for (int j = 0; j < 3; j++) Av[i] += A[i][j] * vec[k][j];
    for (int i = 0; i < 3; i++) assert_true(fabs(Av[i] - val[k] * vec[k][i]) < 1e-12);
  }
  /* degenerate: all ones has eigenvalues 3, 0, 0 and (1,1,1)/√3 first */
  const double ones[3][3] = {{1, 1, 1}, {1, 1, 1}, {1, 1, 1}};
  an_eigen_sym3(ones, val, vec);
  assert_true(fabs(val[0] - 3) < 1e-12 && fabs(val[1]) < 1e-12 && fabs(val[2]) < 1e-12);
  for (int i = 0; i < 3; i++) assert_true(fabs(vec[0][i] - 1 / sqrt(3.0)) < 1e-12);
  /* diagonal, unsorted: sorted descending, unit vectors with a positive sign */
  const double diag[3][3] = {{1, 0, 0}, {0, 4, 0}, {0, 0, 2}};
  an_eigen_sym3(diag, val, vec);
  assert_true(val[0] == 4 && val[1] == 2 && val[2] == 1);
  assert_true(vec[0][1] == 1 && vec[1][2] == 1 && vec[2][0] == 1);

  /* statistics of a known set: two 2x2 grey images, one black, one white */
  uint8_t images[16 + 8] = {0}, labels[8 + 2] = {0};
  be32(images, 0x803), be32(images + 4, 2), be32(images + 8, 2), be32(images + 12, 2);
  be32(labels, 0x801), be32(labels + 4, 2);
  memset(images + 20, 255, 4);
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_open_idx_memory(images, sizeof images, labels, sizeof labels, "bw", &ds));
  an_data_stats st, st3;
  TEST_OK(an_data_stats_compute(ds, 0, 0, 1, NULL, NULL, &st));
  TEST_OK(an_data_stats_compute(ds, 0, 0, 3, NULL, NULL, &st3));
  assert_memory_equal(&st, &st3, sizeof st); /* independent of the thread count */
  for (int ch = 0; ch < 3; ch++) assert_true(fabsf(st.mean[ch] - 0.5f) < 1e-6f && fabsf(st.std[ch] - 0.5f) < 1e-6f);
  assert_true(fabsf(st.eigval[0] - 0.75f) < 1e-6f && st.eigval[1] < 1e-7f);
  assert_int_equal(st.images, 2);
  an_dataset_destroy(ds);
}

/* ---- pack round trip ---- */

static void test_pack_round_trip(void **state) {
  (void)state;
  an_dataset *ds = synthetic(50, 5, 24, 3);
  char path[600], bad[600];
  an_pack_report report;
  TEST_OK(an_pack_write(ds, tmp_path(path, sizeof path, "syn24.pack"), 24, 2, NULL, NULL, &report));
  assert_int_equal(report.written, 50);
  assert_int_equal(report.skipped, 0);
  an_dataset *pk = NULL;
  TEST_OK(an_dataset_open(path, &pk)); /* a file: read as a pack */
  assert_int_equal(an_dataset_count(pk), 50);
  TEST_OK(an_dataset_check_classes(ds, pk));
  for (int i = 0; i < 50; i++) { /* same size: the pixels come back exactly */
    an_image a, b;
    assert_int_equal(an_dataset_label(pk, i), an_dataset_label(ds, i));
    TEST_OK(an_dataset_read(pk, i, &a));
    TEST_OK(an_dataset_read(ds, i, &b));
    expect_same_image(&a, &b);
    an_image_free(&a), an_image_free(&b);
  }
  an_dataset_destroy(pk);
  /* another size: each image is an_image_resize_square of the original */
  TEST_OK(an_pack_write(ds, tmp_path(path, sizeof path, "syn16.pack"), 16, 3, NULL, NULL, &report));
  TEST_OK(an_dataset_open_pack(path, &pk));
  uint8_t want[16 * 16 * 3];
  for (int i = 0; i < 50; i += 7) {
    an_image a, b, r = {0, 0, 0, want};
    TEST_OK(an_dataset_read(pk, i, &a));
    TEST_OK(an_dataset_read(ds, i, &b));
    TEST_OK(an_image_resize_square(&b, 16, &r));
    expect_same_image(&a, &r);
    an_image_free(&a), an_image_free(&b);
  }
  an_dataset_destroy(pk);
  /* damaged packs: named errors */
  size_t n;
  uint8_t *bytes = read_bytes(path, &n);
  const size_t cuts[] = {0, 10, 64, n / 2, n - 1};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    write_bytes(tmp_path(bad, sizeof bad, "cut.pack"), bytes, cuts[k]);
    assert_int_equal(an_dataset_open_pack(bad, &pk), AN_ERR_IO);
    assert_non_null(strstr(an_last_error(), "cut.pack"));
  }
  bytes[0] = 'X';
  write_bytes(bad, bytes, n);
  assert_int_equal(an_dataset_open_pack(bad, &pk), AN_ERR_IO);
  bytes[0] = 'A';
  bytes[n - 4] = 99; /* the last label past the classes */
  write_bytes(bad, bytes, n);
  assert_int_equal(an_dataset_open_pack(bad, &pk), AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "label"));
  free(bytes);
  assert_null(pk);
  an_dataset_destroy(ds);
}

/* ---- the loader ---- */

/* Every batch of the loader equals an_preprocess of the samples it names. */
static void check_batches_match(const an_dataset *ds, const an_loader_config *cfg, int max_batches) {
  an_loader *ld = NULL;
  TEST_OK(an_loader_create(ds, cfg, &ld));
  const int crops = an_augment_crops(&cfg->aug, cfg->train), I = cfg->aug.input;
  float *want = test_floats((size_t)crops * 3 * I * I);
  int *seen = calloc((size_t)an_dataset_count(ds), sizeof(int));
  assert_non_null(seen);
  for (int k = 0; k < max_batches; k++) {
    const an_batch *b;
    TEST_OK(an_loader_next(ld, &b));
    if (!b) break;
    assert_int_equal(b->rows, cfg->batch * crops);
    assert_int_equal(b->crops, crops);
    for (int j = 0; j < b->samples; j++) {
      const int idx = b->index[j];
      assert_in_range(idx, 0, an_dataset_count(ds) - 1);
      if (cfg->train) { /* at most once per epoch */
        assert_int_not_equal(seen[idx], b->epoch + 1);
        seen[idx] = b->epoch + 1;
      }
      an_image img;
      TEST_OK(an_dataset_read(ds, idx, &img));
      TEST_OK(
          an_preprocess(&img, &cfg->aug, &cfg->stats, cfg->train, an_sample_key(cfg->seed, b->epoch, idx), want));
      an_image_free(&img);
      assert_memory_equal(b->images + (size_t)j * crops * 3 * I * I, want, sizeof(float) * crops * 3 * I * I);
      for (int r = 0; r < crops; r++) assert_int_equal(b->labels[j * crops + r], an_dataset_label(ds, idx));
    }
  }
  free(seen);
  free(want);
  an_loader_destroy(ld);
}

/* All batches of a run, concatenated: images then labels then indices. */
static uint8_t *run_bytes(const an_dataset *ds, const an_loader_config *cfg, size_t *n) {
  an_loader *ld = NULL;
  TEST_OK(an_loader_create(ds, cfg, &ld));
  size_t cap = 1 << 20, used = 0;
  uint8_t *all = malloc(cap);
  assert_non_null(all);
  for (;;) {
    const an_batch *b;
    TEST_OK(an_loader_next(ld, &b));
    if (!b) break;
    const size_t img = sizeof(float) * (size_t)b->rows * 3 * b->input * b->input;
    const size_t need = img + sizeof(int) * ((size_t)b->rows + cfg->batch) + 2 * sizeof(int);
    while (used + need > cap) assert_non_null(all = realloc(all, cap *= 2));
    memcpy(all + used, b->images, img), used += img;
    memcpy(all + used, b->labels, sizeof(int) * b->rows), used += sizeof(int) * b->rows;
    memcpy(all + used, b->index, sizeof(int) * cfg->batch), used += sizeof(int) * cfg->batch;
    memcpy(all + used, &b->epoch, sizeof(int)), used += sizeof(int);
    memcpy(all + used, &b->step, sizeof(int)), used += sizeof(int);
  }
  an_loader_destroy(ld);
  *n = used;
  return all;
}

/* The loader's slices (one MPI rank's share of each batch) against the whole batches: the same rows,
 * labels and indices at their positions, batch after batch; a slice past the end of evaluation's last
 * batch is all padding. */
static void check_slices(const an_dataset *ds, const an_loader_config *whole, const int *first, const int *count,
                         int n_slices) {
  an_loader *all = NULL, *part[4] = {NULL};
  TEST_OK(an_loader_create(ds, whole, &all));
  for (int s = 0; s < n_slices; s++) {
    an_loader_config c = *whole;
    c.slice_first = first[s], c.slice_count = count[s];
    TEST_OK(an_loader_create(ds, &c, &part[s]));
  }
  const size_t row = (size_t)an_augment_crops(&whole->aug, whole->train) * 3 * whole->aug.input * whole->aug.input;
  for (int k = 0;; k++) {
    const an_batch *b, *p;
    TEST_OK(an_loader_next(all, &b));
    for (int s = 0; s < n_slices; s++) {
      TEST_OK(an_loader_next(part[s], &p));
      assert_true(!b == !p);
      if (!b) continue;
      const int in_slice = b->samples - first[s] < 0 ? 0 : b->samples - first[s];
      assert_int_equal(p->samples, in_slice < count[s] ? in_slice : count[s]);
      assert_int_equal(p->epoch, b->epoch);
      assert_int_equal(p->step, b->step);
      for (int j = 0; j < count[s]; j++) {
        assert_int_equal(p->index[j], b->index[first[s] + j]);
        assert_int_equal(p->labels[j * b->crops], b->labels[(first[s] + j) * b->crops]);
      }
      assert_memory_equal(p->images, b->images + first[s] * row, sizeof(float) * count[s] * row);
    }
    if (!b) break;
  }
  for (int s = 0; s < n_slices; s++) an_loader_destroy(part[s]);
  an_loader_destroy(all);
}

static void test_loader_slices(void **state) {
  (void)state;
  an_dataset *ds = synthetic(70, 7, 30, 9);
  an_loader_config cfg = {
      .batch = 8, .threads = 2, .prefetch = 2, .train = 1, .epochs = 2, .seed = 7, .aug = an_augment_default(24)};
  TEST_OK(an_data_stats_compute(ds, 0, 0, 2, NULL, NULL, &cfg.stats));
  const int first[3] = {0, 3, 5}, count[3] = {3, 2, 3};
  check_slices(ds, &cfg, first, count, 3);
  cfg.train = 0, cfg.epochs = 1, cfg.batch = 16; /* 70 = 4 x 16 + 6: the last batch's second half is padding */
  const int eval_first[2] = {0, 8}, eval_count[2] = {8, 8};
  check_slices(ds, &cfg, eval_first, eval_count, 2);
  an_loader_config bad = cfg;
  bad.slice_first = 10, bad.slice_count = 8; /* past the batch */
  an_loader *ld = NULL;
  assert_int_equal(an_loader_create(ds, &bad, &ld), AN_ERR_ARGUMENT);
  an_dataset_destroy(ds);
}

static void test_loader(void **state) {
  (void)state;
  an_dataset *ds = synthetic(70, 7, 30, 9);
  an_loader_config cfg = {
      .batch = 8, .threads = 1, .prefetch = 1, .train = 1, .epochs = 3, .seed = 2024, .aug = an_augment_default(24)};
  TEST_OK(an_data_stats_compute(ds, 0, 0, 2, NULL, NULL, &cfg.stats));
  check_batches_match(ds, &cfg, 1000);
  /* identical for 1, 2 and 5 threads and for deeper prefetching; another seed differs */
  size_t n1, n2, n5, nd;
  uint8_t *one = run_bytes(ds, &cfg, &n1);
  cfg.threads = 2;
  uint8_t *two = run_bytes(ds, &cfg, &n2);
  cfg.threads = 5, cfg.prefetch = 3;
  uint8_t *five = run_bytes(ds, &cfg, &n5);
  const size_t per_batch = sizeof(float) * 8 * 3 * 24 * 24 + sizeof(int) * (8 + 8 + 2);
  assert_int_equal(n1, 24 * per_batch); /* 70 / 8 = 8 full batches per epoch */
  assert_true(n1 == n2 && n1 == n5);
  assert_memory_equal(one, two, n1);
  assert_memory_equal(one, five, n1);
  cfg.seed = 2025;
  uint8_t *diff = run_bytes(ds, &cfg, &nd);
  assert_true(nd == n1 && memcmp(one, diff, n1) != 0);
  cfg.seed = 2024;
  /* resuming at epoch 1, step 3 gives the uninterrupted run's batches from there on */
  cfg.start_epoch = 1, cfg.start_step = 3;
  size_t nr;
  uint8_t *resumed = run_bytes(ds, &cfg, &nr);
  assert_int_equal(nr, n1 - (8 + 3) * per_batch);
  assert_memory_equal(resumed, one + (8 + 3) * per_batch, nr);
  free(one), free(two), free(five), free(diff), free(resumed);

  /* evaluation: in order, the last batch padded; ten-crop gives 10 rows per sample */
  an_loader_config ev = cfg;
  ev.train = 0, ev.epochs = 1, ev.start_epoch = ev.start_step = 0, ev.batch = 16, ev.threads = 2;
  ev.aug.ten_crop = 1;
  check_batches_match(ds, &ev, 1000);
  an_loader *ld = NULL;
  TEST_OK(an_loader_create(ds, &ev, &ld));
  assert_int_equal(an_loader_batches_per_epoch(ld), 5);
  const an_batch *b;
  for (int k = 0; k < 5; k++) {
    TEST_OK(an_loader_next(ld, &b));
    assert_non_null(b);
    assert_int_equal(b->rows, 160);
    for (int j = 0; j < b->samples; j++) assert_int_equal(b->index[j], k * 16 + j);
  }
  assert_int_equal(b->samples, 6);
  for (int j = 6; j < 16; j++) assert_int_equal(b->index[j], -1);
  for (size_t i = (size_t)6 * 10 * 3 * 24 * 24; i < (size_t)160 * 3 * 24 * 24; i++)
    assert_true(b->images[i] == 0.0f);
  TEST_OK(an_loader_next(ld, &b));
  assert_null(b);
  an_loader_destroy(ld);
  an_dataset_destroy(ds);
}

/* The loader's own speed on Fashion-MNIST at input 64 with augmentation (printed, not asserted). */
static void test_loader_throughput(void **state) {
  (void)state;
  an_dataset *ds = NULL;
  TEST_OK(an_dataset_open("fashion-mnist", &ds));
  an_loader_config cfg = {
      .batch = 128, .threads = 1, .prefetch = 1, .train = 1, .seed = 1, .aug = an_augment_default(64)};
  TEST_OK(an_data_stats_compute(ds, 10000, 1, 2, NULL, NULL, &cfg.stats));
  for (int threads = 1; threads <= 2; threads++) {
    cfg.threads = threads;
    double ips;
    TEST_OK(an_loader_measure(ds, &cfg, 40, &ips));
    printf("loader throughput, Fashion-MNIST 28 -> %d -> crop %d, flip, PCA, mean/std, batch 128, %d thread%s: "
           "%.0f images/s\n",
           cfg.aug.resize, cfg.aug.input, threads, threads > 1 ? "s" : "", ips);
    assert_true(ips > 0);
  }
  an_dataset_destroy(ds);
}


/* A JPEG found by fuzzing whose Huffman table declares more than 256 codes: stb_image 2.27 writes past
 * its table while parsing the header; the decoder must refuse it before stb_image sees it. */
static const unsigned char jpeg_huffman_overflow[245] = {
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00,
    0x00, 0xff, 0xdb, 0x00, 0x84, 0x00, 0x02, 0x01, 0x01, 0x01, 0x01, 0x01, 0x02, 0x01, 0x01, 0x01, 0x02, 0x02, 0x02,
    0x02, 0x02, 0x04, 0x03, 0x02, 0x02, 0x02, 0x02, 0x05, 0x04, 0x04, 0x03, 0x04, 0x06, 0x05, 0x06, 0x06, 0x06, 0x05,
    0x06, 0x06, 0x06, 0x07, 0x09, 0x08, 0x06, 0x07, 0x09, 0x07, 0x06, 0x06, 0x08, 0x0b, 0x08, 0x09, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x06, 0x08, 0x0b, 0x0c, 0x0b, 0x0a, 0x0c, 0x09, 0x0a, 0x0a, 0x0a, 0x01, 0x02, 0x02, 0x02, 0x02, 0x02,
    0x02, 0x05, 0x03, 0x03, 0x05, 0x0a, 0x07, 0x06, 0x07, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a,
    0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0x0a, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10, 0x03,
    0x01, 0x11, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xff, 0xc4, 0x01, 0xa2, 0x00, 0x00, 0x01, 0x05, 0x01, 0x01,
    0x01, 0x01, 0x01, 0x01, 0x00, 0x50, 0x47, 0x14, 0x8d, 0xb9, 0x89, 0x66, 0x0d, 0x97, 0xe5, 0x81, 0x1c, 0x8c, 0xee,
    0xea, 0x30, 0x41, 0x24, 0x01, 0x92, 0xca, 0x7c, 0x4d, 0xa7, 0x19, 0x54, 0x8d, 0x49, 0xf2, 0xae, 0x6d, 0xfb, 0x74,
    0x5a, 0x3b, 0x6a, 0x92, 0x76, 0xb2, 0x6f, 0x7b, 0xa7, 0xab, 0x23, 0x5b, 0x03, 0x3a, 0xbe, 0xd7, 0x92, 0xd6, 0xef,
    0xf0, 0xbd, 0xec, 0xd2, 0x5e, 0xed, 0xaf, 0x7b, 0xdf, 0x96, 0xcd, 0xc9, 0xab, 0x6c, 0xbf, 0xff, 0xd9};

static void test_jpeg_huffman_overflow(void **state) {
  (void)state;
  an_image img;
  assert_int_equal(an_image_decode(jpeg_huffman_overflow, sizeof jpeg_huffman_overflow, "fuzzed.jpg", &img),
                   AN_ERR_IO);
  assert_non_null(strstr(an_last_error(), "fuzzed.jpg: corrupt JPEG (a Huffman table with more than 256 codes)"));
  assert_null(img.pixels);
}

/* The byte grower under idx's readers, with a limit small enough to reach: first size clamped, doubling
 * clamped, and a full buffer at the limit refused with the buffer kept (the readers' "larger than" case). */
static void test_grow_bytes(void **state) {
  (void)state;
  size_t cap = 20;
  uint8_t *buf = an_grow_bytes(NULL, 0, &cap, 10);
  assert_non_null(buf);
  assert_int_equal(cap, 10);
  free(buf);
  cap = 3;
  assert_non_null(buf = an_grow_bytes(NULL, 0, &cap, 10));
  assert_int_equal(cap, 3);
  assert_ptr_equal(an_grow_bytes(buf, 2, &cap, 10), buf); /* room left: unchanged */
  assert_non_null(buf = an_grow_bytes(buf, 3, &cap, 10));
  assert_int_equal(cap, 6);
  assert_non_null(buf = an_grow_bytes(buf, 6, &cap, 10));
  assert_int_equal(cap, 10);
  memset(buf, 7, cap);
  assert_null(an_grow_bytes(buf, 10, &cap, 10));
  assert_int_equal(cap, 10);
  assert_int_equal(buf[9], 7); /* still valid */
  free(buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_synthetic_round_trip),
      cmocka_unit_test(test_fashion_mnist),
      cmocka_unit_test(test_idx_errors),
      cmocka_unit_test(test_broken_files),
      cmocka_unit_test(test_dataset_errors),
      cmocka_unit_test(test_resize),
      cmocka_unit_test(test_augment_determinism),
      cmocka_unit_test(test_ten_crop_geometry),
      cmocka_unit_test(test_pca_eigen),
      cmocka_unit_test(test_pack_round_trip),
      cmocka_unit_test(test_loader),
      cmocka_unit_test(test_loader_slices),
      cmocka_unit_test(test_loader_throughput),
      cmocka_unit_test(test_jpeg_huffman_overflow),
      cmocka_unit_test(test_grow_bytes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
