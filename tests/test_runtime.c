/* The runtime and the net's error paths: status names, device discovery and selection, the build
 * failure path, the setup hook through which the GEMM layer applies its tuning (an_runtime_open stays
 * untuned, an_runtime_create applies the file), and each clear error a user can meet (unknown model or device, an input too small,
 * a batch too large for the device, labels out of range, a NaN loss). */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alexnet/model.h"
#include "check.h"

#define rt test_rt

static void assert_message_has(const char *needle) {
  if (!strstr(an_last_error(), needle)) fail_msg("the error '%s' does not mention '%s'", an_last_error(), needle);
}

static void test_status_names(void **state) {
  (void)state;
  assert_string_equal(an_status_name(0), "CL_SUCCESS");
  assert_string_equal(an_status_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
  assert_string_equal(an_status_name(-11), "CL_BUILD_PROGRAM_FAILURE");
  assert_string_equal(an_status_name(-2046), "CLBlastInvalidLocalMemUsage");
  assert_string_equal(an_status_name(-1017), "CLBlastInvalidDimension");
  assert_string_equal(an_status_name(AN_ERR_BUILD), "AN_ERR_BUILD");
  assert_string_equal(an_status_name(12345), "UNKNOWN_STATUS");
  assert_int_equal(an_error(-5, "x.c", 7, "clFoo(bar)"), -5);
  assert_string_equal(an_last_error(), "clFoo(bar): CL_OUT_OF_RESOURCES (-5) at x.c:7");
}

static void test_device_selection(void **state) {
  (void)state;
  an_device_info *list;
  int n;
  if (an_list_devices(&list, &n) != AN_OK) fail_msg("no OpenCL device: %s", an_last_error());
  assert_true(n >= 1);
  an_device_info d;
  char spec[64];
  snprintf(spec, sizeof spec, "%d:%d", list[0].platform_index, list[0].device_index);
  TEST_OK(an_select_device(spec, &d));
  assert_ptr_equal(d.device, list[0].device);
  /* a name substring, in another case */
  char sub[8] = {0};
  for (int i = 0; i < 4 && list[0].name[i]; i++)
    sub[i] = (char)((list[0].name[i] >= 'a' && list[0].name[i] <= 'z') ? list[0].name[i] - 32 : list[0].name[i]);
  TEST_OK(an_select_device(sub, &d));
  /* ALEXNET_DEVICE when no spec is given */
  setenv("ALEXNET_DEVICE", spec, 1);
  TEST_OK(an_select_device(NULL, &d));
  assert_ptr_equal(d.device, list[0].device);
  setenv("ALEXNET_DEVICE", "0:0,0:1", 1); /* two devices, where one is opened: says so */
  assert_int_equal(an_select_device(NULL, &d), AN_ERR_DEVICE_NOT_FOUND);
  assert_message_has("names two devices");
  setenv("ALEXNET_DEVICE", "no-such-device-anywhere", 1);
  assert_int_equal(an_select_device(NULL, &d), AN_ERR_DEVICE_NOT_FOUND);
  unsetenv("ALEXNET_DEVICE");
  assert_int_equal(an_select_device("97:3", &d), AN_ERR_DEVICE_NOT_FOUND);
  assert_message_has("no OpenCL device matches '97:3'");
  assert_message_has(list[0].name); /* the message lists what exists */
  assert_int_equal(an_select_device("0:0x", &d), AN_ERR_DEVICE_NOT_FOUND);
  free(list);
}

static void test_build_failure_reports(void **state) {
  (void)state;
  cl_program prog = NULL;
  assert_int_equal(an_build_program(rt, "__kernel void broken(__global float *x) { x[0] = undefined_name; }",
                                    "-cl-std=CL1.2", &prog),
                   AN_ERR_BUILD);
  assert_null(prog);
  assert_message_has("clBuildProgram");
  assert_message_has("-cl-std=CL1.2");
}

static void test_cl_dir_missing(void **state) {
  (void)state;
  an_runtime *other = NULL;
  setenv("ALEXNET_CL_DIR", "/nonexistent-alexnet-kernels", 1);
  const an_status s = an_runtime_create(NULL, &other);
  unsetenv("ALEXNET_CL_DIR");
  assert_int_equal(s, AN_ERR_IO);
  assert_null(other);
  assert_message_has("conv.cl");
}

/* The compiled-program cache: written on a miss, used on a hit, and a corrupt or truncated entry is
 * rebuilt from source, never trusted. */
static void test_program_cache(void **state) {
  (void)state;
  char dir[] = "/tmp/alexnet-test-cacheXXXXXX";
  assert_non_null(mkdtemp(dir));
  setenv("ALEXNET_CACHE_DIR", dir, 1);
  an_runtime *a = NULL;
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->program_from_cache, 0);
  an_runtime_destroy(a);
  char cmd[512], path[512] = "";
  snprintf(cmd, sizeof cmd, "ls %s/program-*.bin", dir);
  FILE *ls = popen(cmd, "r");
  assert_non_null(ls);
  assert_non_null(fgets(path, sizeof path, ls));
  pclose(ls);
  path[strcspn(path, "\n")] = '\0';
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->program_from_cache, 1);
  an_runtime_destroy(a);
  /* flip bytes in the middle of the binary */
  FILE *f = fopen(path, "r+b");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  const long size = ftell(f);
  fseek(f, size / 2, SEEK_SET);
  fputs("garbage!", f);
  fclose(f);
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->program_from_cache, 0); /* rebuilt */
  an_runtime_destroy(a);
  TEST_OK(an_runtime_create(NULL, &a)); /* and cached again */
  assert_int_equal(a->program_from_cache, 1);
  an_runtime_destroy(a);
  /* truncated */
  assert_int_equal(truncate(path, size / 3), 0);
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->program_from_cache, 0);
  /* the rebuilt program works: a small layer runs */
  cl_mem m;
  TEST_OK(an_alloc(a, 64, &m));
  TEST_OK(an_fill(a, an_at(m, 0), 2.0f, 64));
  TEST_OK(an_sgd_update(a, 32, 0.5f, 0.0f, 0.0f, an_at(m, 0), an_at(m, 32), an_at(m, 32)));
  float w;
  TEST_OK(an_read(a, &w, an_at(m, 0), 1));
  assert_true(w == 1.0f); /* 2 - 0.5·2 */
  clReleaseMemObject(m);
  an_runtime_destroy(a);
  unsetenv("ALEXNET_CACHE_DIR");
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
}

/* what the setup hook saw, and what the runtime freed through the table hook */
static int setups, frees;
static struct an_gemm_table *freed;

static void count_free(struct an_gemm_table *table) { frees++, freed = table; }

static an_status attach_marker(an_runtime *r) {
  setups++;
  r->gemm_table = (struct an_gemm_table *)&setups; /* opaque to the runtime: only handed back */
  r->gemm_table_free = count_free;
  return AN_OK;
}

static an_status refuse(an_runtime *r) {
  attach_marker(r);
  return an_error(AN_ERR_ARGUMENT, __FILE__, __LINE__, "setup refused");
}

static void test_setup_hook(void **state) {
  (void)state;
  an_runtime *a = NULL;
  setups = frees = 0;
  TEST_OK(an_runtime_open(NULL, attach_marker, &a));
  assert_int_equal(setups, 1);
  an_runtime_destroy(a);
  assert_int_equal(frees, 1);
  assert_ptr_equal(freed, &setups);
  /* a failing setup is the opening's status, and the half-made runtime is freed with what it holds */
  setups = frees = 0;
  assert_int_equal(an_runtime_open(NULL, refuse, &a), AN_ERR_ARGUMENT);
  assert_null(a);
  assert_message_has("setup refused");
  assert_int_equal(setups, 1);
  assert_int_equal(frees, 1);
}

/* an_runtime_create applies the device's tuning file through the hook; an_runtime_open alone and
 * ALEXNET_NO_TUNING=1 do not */
static void test_create_applies_tuning(void **state) {
  (void)state;
  char dir[] = "/tmp/alexnet-test-tuningXXXXXX", path[128];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/gemm-tuning.txt", dir);
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fprintf(f,
          "%s\t%s\tGEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=2 MDIMC=2 MWG=16 NDIMB=2 NDIMC=2 NWG=16 SA=0 SB=0 STRM=0 "
          "STRN=0 VWM=8 VWN=8 MIN_INDIRECT=128\t1.00 GFLOP/s\n",
          rt->info.name, rt->info.driver_version);
  fclose(f);
  setenv("ALEXNET_TUNING_FILE", path, 1);
  unsetenv("ALEXNET_NO_TUNING");
  an_runtime *a = NULL;
  TEST_OK(an_runtime_open(NULL, NULL, &a));
  assert_int_equal(a->gemm_tuned, 0);
  assert_null(a->gemm_table);
  an_runtime_destroy(a);
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->gemm_tuned, 1);
  assert_non_null(strstr(a->gemm_tuning, "MWG=16"));
  an_runtime_destroy(a);
  setenv("ALEXNET_NO_TUNING", "1", 1);
  TEST_OK(an_runtime_create(NULL, &a));
  assert_int_equal(a->gemm_tuned, 0);
  an_runtime_destroy(a);
  unsetenv("ALEXNET_NO_TUNING");
  unsetenv("ALEXNET_TUNING_FILE");
  remove(path);
  rmdir(dir);
}

static void test_net_errors(void **state) {
  (void)state;
  an_net *net = NULL;
  assert_int_equal(an_net_create(rt, "alexnet-xl", 10, 2, 224, &net), AN_ERR_UNKNOWN_MODEL);
  assert_message_has("alexnet-xl");
  assert_int_equal(an_net_create(rt, "alexnet", 10, 2, 31, &net), AN_ERR_ARGUMENT);
  assert_message_has("too small");
  assert_int_equal(an_net_create(rt, "alexnet", 0, 2, 224, &net), AN_ERR_ARGUMENT);
  /* a batch no device here holds: refused before any work, with the size and a hint */
  assert_int_equal(an_net_create(rt, "alexnet", 1000, 1 << 20, 224, &net), AN_ERR_DEVICE_MEMORY);
  assert_message_has("smaller batch");
  assert_null(net);
}

static void test_bad_labels_and_nan_loss(void **state) {
  (void)state;
  an_net *net;
  TEST_OK(an_net_create(rt, "alexnet-half", 7, 2, 63, &net));
  TEST_OK(an_net_init(net, 3));
  const size_t pixels = (size_t)2 * 3 * 63 * 63;
  float *images = test_floats(pixels);
  test_rng rng = test_rng_seeded(5);
  test_fill_uniform(images, pixels, -1, 1, &rng);
  int labels[2] = {1, 7};
  const an_sgd_params sgd = {0.01f, 0.9f, 5e-4f, 0};
  float loss;
  assert_int_equal(an_net_train_step(net, images, labels, &sgd, 1, 0, &loss), AN_ERR_ARGUMENT);
  assert_message_has("label 7 of sample 1");
  labels[1] = 6;
  TEST_OK(an_net_train_step(net, images, labels, &sgd, 1, 0, &loss));
  assert_true(fabs(loss - log(7.0)) < 0.3);
  /* a NaN weight makes the loss NaN: the step says so instead of training on */
  float *params = test_floats(net->n_params);
  TEST_OK(an_net_read_params(net, params));
  params[net->tensors[net->n_tensors - 1].offset] = NAN; /* the last bias */
  TEST_OK(an_net_write_params(net, params));
  assert_int_equal(an_net_train_step(net, images, labels, &sgd, 1, 1, &loss), AN_ERR_NOT_FINITE);
  assert_message_has("the loss is nan");
  free(params);
  free(images);
  an_net_destroy(net);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_status_names),
      cmocka_unit_test(test_device_selection),
      cmocka_unit_test(test_build_failure_reports),
      cmocka_unit_test(test_cl_dir_missing),
      cmocka_unit_test(test_program_cache),
      cmocka_unit_test(test_setup_hook),
      cmocka_unit_test(test_net_errors),
      cmocka_unit_test(test_bad_labels_and_nan_loss),
      cmocka_unit_test(test_create_applies_tuning), /* last: it overrides CLBlast's GEMM on the device */
  };
  return cmocka_run_group_tests(tests, test_runtime_setup, test_runtime_teardown);
}
