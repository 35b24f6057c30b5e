// fuzz_checkpoint.c — libFuzzer harness for the safetensors reader: the
// input is written to a temporary file and loaded with
// aert_checkpoint_load_ex into a small hand-made model (the 4-2-4 linear
// autoencoder of tests/test_runtime.c), as `train --resume` and `eval
// --checkpoint` do. With AEC_FUZZ_SEED_DIR set, it first writes a valid
// checkpoint of that model there (the seed corpus).
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aert.h"
#include "ckpt.h"

enum { IN = 4, CODE = 2, N_ELEMS = 22 };

static const aert_param params[] = {
    {"encoder.dense.kernel", 2, {IN, CODE}, 0, 8, AERT_INIT_GLOROT_UNIFORM, IN, CODE},
    {"encoder.dense.bias", 1, {CODE}, 8, 2, AERT_INIT_ZEROS, IN, CODE},
    {"decoder.dense.kernel", 2, {CODE, IN}, 10, 8, AERT_INIT_GLOROT_UNIFORM, CODE, IN},
    {"decoder.dense.bias", 1, {IN}, 18, 4, AERT_INIT_ZEROS, CODE, IN},
};
static const char *const loss_names[] = {"recon"};
static const aert_step steps[] = {
    {"recon", 0, "encoder, decoder", AERT_ADAM, 0.01, 2 * N_ELEMS},
};
static const aert_model model = {
    .abi_version = AERT_ABI_VERSION, .name = "lin", .source_file = "lin.ae", .source_hash = "0123456789abcdef",
    .aec_version = "test", .input_rank = 1, .input_shape = {IN}, .input_size = IN, .n_param_elems = N_ELEMS,
    .n_params = 4, .params = params, .n_losses = 1, .loss_names = loss_names, .n_steps = 1, .steps = steps,
    .default_batch = 8, .default_epochs = 3, .default_seed = 1, .arena_per_sample = 12, .code_size = CODE,
    .recon_size = IN,
};

static char dir[64];
static aert_real p[N_ELEMS], g[N_ELEMS], state[2 * N_ELEMS];
static aert_real *opt_state[1] = {state};
static int64_t opt_t[1];
static double lr[1];
static aert_ctx ctx = {.params = p, .grads = g, .opt_state = opt_state, .opt_t = opt_t, .lr = lr, .seed = 5};

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/aec-fuzz-ckpt-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
  if (!mkdtemp(dir)) abort();
  const char *seeds = getenv("AEC_FUZZ_SEED_DIR");
  if (seeds && *seeds) {
    char path[4096];
    for (int e = 0; e < N_ELEMS; e++) p[e] = (aert_real)aert_normal(1, (uint64_t)e);
    for (int e = 0; e < 2 * N_ELEMS; e++) state[e] = (aert_real)aert_uniform01(2, (uint64_t)e);
    opt_t[0] = 1234;
    aert_progress_state st = {.epoch = 2, .batch_counter = 17};
    snprintf(path, sizeof path, "%s/lin.safetensors", seeds);
    if (aert_checkpoint_save(path, &model, &ctx, &st) != 0) abort();
  }
  // The runtime's messages go to /dev/null; libFuzzer and the sanitizers keep
  // the real standard error (libFuzzer copied the FILE pointer at start-up).
  if (!getenv("AEC_FUZZ_VERBOSE")) stderr = fopen("/dev/null", "w");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 1 << 20) return -1;
  char path[128];
  snprintf(path, sizeof path, "%s/c.safetensors", dir);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(data, 1, size, f);
  fclose(f);
  aert_progress_state st;
  aert_checkpoint_load_ex(path, &model, &ctx, &st, size % 2 == 0);
  unlink(path);
  return 0;
}
