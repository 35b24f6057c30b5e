// test_checkpoint.c — libaert's safetensors checkpoints on their own, with
// the hand-written model lin (helpers.c): the round trip, damaged and hostile
// files, another model's checkpoint, and saves that fail without losing the
// old checkpoint.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "aert.h"
#include "tests.h"

enum { N_ELEMS = LIN_N_ELEMS };

static aert_ctx *lin_ctx(void) {
  aert_ctx *ctx = calloc(1, sizeof *ctx);
  ctx->params = calloc(N_ELEMS, sizeof(aert_real));
  ctx->grads = calloc(N_ELEMS, sizeof(aert_real));
  ctx->opt_state = calloc(1, sizeof(aert_real *));
  ctx->opt_state[0] = calloc(2 * N_ELEMS, sizeof(aert_real));
  ctx->opt_t = calloc(1, sizeof(int64_t));
  ctx->lr = calloc(1, sizeof(double));
  ctx->seed = 5;
  return ctx;
}

static void lin_ctx_free(aert_ctx *ctx) {
  free(ctx->params), free(ctx->grads), free(ctx->opt_state[0]), free(ctx->opt_state), free(ctx->opt_t), free(ctx->lr);
  free(ctx);
}

static void fill_ctx(aert_ctx *ctx) {
  for (int e = 0; e < N_ELEMS; e++) ctx->params[e] = (aert_real)aert_normal(1, (uint64_t)e);
  for (int e = 0; e < 2 * N_ELEMS; e++) ctx->opt_state[0][e] = (aert_real)aert_uniform01(2, (uint64_t)e);
  ctx->opt_t[0] = 1234;
  ctx->seed = 77;
}

// Loads a checkpoint, returning the status and (in *message) what it printed.
static int load_checkpoint_capturing(const char *path, const aert_model *model, aert_ctx *ctx, char **message) {
  aert_progress_state st;
  stderr_capture c = stderr_begin();
  int status = aert_checkpoint_load(path, model, ctx, &st);
  *message = stderr_end(&c);
  return status;
}

static void assert_checkpoint_fails(const char *path, const aert_model *model, const char *word1, const char *word2) {
  aert_ctx *ctx = lin_ctx();
  char *message = NULL;
  ck_assert_int_eq(load_checkpoint_capturing(path, model, ctx, &message), -1);
  ck_assert_msg(strstr(message, "error:") && strstr(message, path) && strstr(message, word1) &&
                    (!word2 || strstr(message, word2)),
                "message lacks '%s'/'%s': %s", word1, word2 ? word2 : "", message);
  free(message);
  lin_ctx_free(ctx);
}

static bool contains(const char *bytes, size_t size, const char *text) {
  return memmem(bytes, size, text, strlen(text)) != NULL;
}

static size_t count_entries(const char *dir) {
  DIR *d = opendir(dir);
  size_t n = 0;
  for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
  closedir(d);
  return n;
}

START_TEST(test_checkpoint_round_trip) {
  char *dir = make_temp_dir("ckpt");
  char *path = path_in(dir, "a.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx(), *b = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {.epoch = 3, .batch_counter = 99}, back = {.epoch = 0};
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  ck_assert_uint_eq(count_entries(dir), 1);  // no temporary file left behind
  ck_assert_int_eq(aert_checkpoint_load(path, &m, b, &back), 0);
  ck_assert_mem_eq(a->params, b->params, N_ELEMS * sizeof(aert_real));
  ck_assert_mem_eq(a->opt_state[0], b->opt_state[0], 2 * N_ELEMS * sizeof(aert_real));
  ck_assert_int_eq(b->opt_t[0], 1234);
  ck_assert_uint_eq(b->seed, 77);
  ck_assert_int_eq(back.epoch, 3);
  ck_assert_uint_eq(back.batch_counter, 99);
  size_t size;
  char *bytes = read_whole_file(path, &size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)bytes[i];
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_eq(size, 8 + n + (N_ELEMS * 3) * sizeof(aert_real));
  ck_assert(contains(bytes, size, "\"encoder.dense.kernel\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,32]}"));
  ck_assert(contains(bytes, size, "\"optimizer.recon.state\""));
  ck_assert(contains(bytes, size, "\"optimizer.recon.t\":\"1234\""));
  ck_assert(contains(bytes, size, "\"aec_model\":\"lin\""));
  free(bytes);
  lin_ctx_free(a), lin_ctx_free(b);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Writes a file: header length, the JSON header, then `data_bytes` zero bytes.
static void write_safetensors(const char *path, const char *json, size_t data_bytes, uint64_t forged_length) {
  size_t hl = strlen(json), size = 8 + hl + data_bytes;
  unsigned char *all = calloc(1, size);
  uint64_t n = forged_length ? forged_length : hl;
  for (int i = 0; i < 8; i++) all[i] = (unsigned char)(n >> (8 * i));
  memcpy(all + 8, json, hl);
  write_file(path, all, size);
  free(all);
}

START_TEST(test_checkpoint_damage) {
  char *dir = make_temp_dir("ckptbad");
  char *good = path_in(dir, "good.safetensors"), *half = path_in(dir, "half.safetensors");
  char *forged = path_in(dir, "forged.safetensors"), *bounds = path_in(dir, "bounds.safetensors");
  char *json = path_in(dir, "json.safetensors"), *tiny = path_in(dir, "tiny.safetensors");
  char *missing = path_in(dir, "missing.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {.epoch = 1, .batch_counter = 2, .epoch_batch = 0};
  ck_assert_int_eq(aert_checkpoint_save(good, &m, a, &st), 0);
  size_t size;
  char *bytes = read_whole_file(good, &size);
  write_file(half, bytes, size / 2);
  assert_checkpoint_fails(half, &m, "truncated", NULL);
  char *copy = malloc(size);
  memcpy(copy, bytes, size);
  copy[5] = 0x40;  // a header length of 2^46
  write_file(forged, copy, size);
  assert_checkpoint_fails(forged, &m, "header length", NULL);
  write_safetensors(bounds, "{\"encoder.dense.kernel\":{\"dtype\":\"F32\",\"shape\":[4,2],\"data_offsets\":[0,4000]}}", 32, 0);
  assert_checkpoint_fails(bounds, &m, "encoder.dense.kernel", "4000");
  write_safetensors(json, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, 0);
  assert_checkpoint_fails(json, &m, "JSON", NULL);
  char deep[2100];
  memset(deep, '[', 1000), memset(deep + 1000, ']', 1000), deep[2000] = 0;
  const char *hostile[] = {deep, "{\"a\":\"\\q\"}", "{\"a\":1,\"a\":2}", "{\"a\":\"abc", "{\"a\":01}",
                           "{\"a\":\"\\ud800\"}", "{\"a\" 1}", "{} x", "{\"a\":[1,2,]}", "{\"a\":tru}"};
  for (size_t i = 0; i < sizeof hostile / sizeof *hostile; i++) {
    write_safetensors(json, hostile[i], 0, 0);
    assert_checkpoint_fails(json, &m, "JSON", NULL);
  }
  write_safetensors(json, "{\"__metadata__\":{\"epoch\":3}}", 0, 0);
  assert_checkpoint_fails(json, &m, "__metadata__", NULL);
  write_safetensors(json, "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}", 0, 0);
  assert_checkpoint_fails(json, &m, "'x'", NULL);
  write_file(tiny, "abc", 3);
  assert_checkpoint_fails(tiny, &m, "too short", NULL);
  assert_checkpoint_fails(missing, &m, "cannot open", NULL);

  // Random damage never crashes the loader: it loads or says why not.
  stderr_capture c = stderr_begin();
  for (int trial = 0; trial < 300; trial++) {
    memcpy(copy, bytes, size);
    for (int k = 0; k < 1 + trial % 4; k++) {
      size_t at = (size_t)(aert_hash64((uint64_t)trial, (uint64_t)k) % size);
      copy[at] = (char)aert_hash64((uint64_t)trial, 100 + (uint64_t)k);
    }
    write_file(json, copy, trial % 7 == 0 ? size - (size_t)trial % 50 : size);
    aert_ctx *b = lin_ctx();
    aert_progress_state back;
    int status = aert_checkpoint_load(json, &m, b, &back);
    ck_assert(status == 0 || status == -1);
    lin_ctx_free(b);
  }
  free(stderr_end(&c));
  free(bytes), free(copy);
  free(good), free(half), free(forged), free(bounds), free(json), free(tiny), free(missing);
  lin_ctx_free(a);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_checkpoint_wrong_model) {
  char *dir = make_temp_dir("ckptmodel");
  char *path = path_in(dir, "a.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {.epoch = 1, .batch_counter = 2, .epoch_batch = 0};
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  aert_param wider[4];
  memcpy(wider, lin_params, sizeof wider);
  wider[0].shape[1] = 3;  // a code of 3
  aert_model other = m;
  other.params = wider;
  other.name = "wider";
  assert_checkpoint_fails(path, &other, "encoder.dense.kernel", "[4, 3]");
  assert_checkpoint_fails(path, &other, "[4, 2]", NULL);
  wider[0].shape[1] = 2;
  wider[0].name = "encoder.dense_1.kernel";
  assert_checkpoint_fails(path, &other, "no tensor 'encoder.dense_1.kernel'", "lin");
  lin_ctx_free(a);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(test_checkpoint_save_failures) {
  char *dir = make_temp_dir("ckptsave");
  char *path = path_in(dir, "a.safetensors"), *nodir = path_in(dir, "no/such/dir.safetensors");
  aert_model m = lin_model();
  aert_ctx *a = lin_ctx();
  fill_ctx(a);
  aert_progress_state st = {.epoch = 1, .batch_counter = 2, .epoch_batch = 0};
  stderr_capture c = stderr_begin();
  ck_assert_int_eq(aert_checkpoint_save(nodir, &m, a, &st), -1);
  char *message = stderr_end(&c);
  ck_assert_msg(strstr(message, nodir) && strstr(message, "cannot create"), "%s", message);
  free(message);
  ck_assert_int_eq(aert_checkpoint_save(path, &m, a, &st), 0);
  size_t before_size;
  char *before = read_whole_file(path, &before_size);
  // A full disk: writes beyond 100 bytes fail (EFBIG); the old checkpoint
  // stays. In a child, so the limit ends with it.
  fflush(stdout), fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {100, 100};
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) _exit(3);
    a->params[0] += 1;
    char *err = path_in(dir, "err.txt");
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    _exit(aert_checkpoint_save(path, &m, a, &st) == -1 ? 0 : 1);
  }
  int raw = 0;
  ck_assert_int_eq(waitpid(pid, &raw, 0), pid);
  ck_assert(WIFEXITED(raw) && WEXITSTATUS(raw) == 0);
  char *err = path_in(dir, "err.txt");
  message = read_whole_file(err, NULL);
  ck_assert_msg(strstr(message, path) && strstr(message, "cannot write"), "%s", message);
  unlink(err);
  free(err);
  ck_assert_uint_eq(count_entries(dir), 1);
  size_t after_size;
  char *after = read_whole_file(path, &after_size);
  ck_assert_uint_eq(before_size, after_size);
  ck_assert_mem_eq(before, after, before_size);
  free(message), free(before), free(after), free(path), free(nodir);
  lin_ctx_free(a);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *checkpoint_suite(void) {
  Suite *s = suite_create("checkpoint");
  TCase *units = tcase_create("units");
  tcase_set_timeout(units, 60);
  tcase_add_test(units, test_checkpoint_round_trip);
  tcase_add_test(units, test_checkpoint_damage);
  tcase_add_test(units, test_checkpoint_wrong_model);
  tcase_add_test(units, test_checkpoint_save_failures);
  suite_add_tcase(s, units);
  return s;
}
