// helpers.c — running commands, temporary directories, files and figures for
// the Check suites, and lin, a model written by hand for the runtime's own
// tests (see tests.h).
#define _GNU_SOURCE
#include <cairo.h>
#include <ftw.h>
#include <math.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "tests.h"

enum { CAPTURE_LIMIT = 512 * 1024 };

static char *read_capped(const char *path) {
  FILE *file = fopen(path, "rb");
  char *text = calloc(CAPTURE_LIMIT + 1, 1);
  ck_assert_ptr_nonnull(text);
  if (file) {
    size_t got = fread(text, 1, CAPTURE_LIMIT, file);
    text[got] = '\0';
    fclose(file);
  }
  return text;
}

CommandResult run_command(const char *fmt, ...) {
  char *command = NULL;
  va_list ap;
  va_start(ap, fmt);
  ck_assert_int_ge(vasprintf(&command, fmt, ap), 0);
  va_end(ap);
  char *dir = make_temp_dir("cmd");
  char *wrapped = NULL;
  ck_assert_int_ge(asprintf(&wrapped, "( %s ) >%s/out 2>%s/err </dev/null", command, dir, dir), 0);
  int raw = system(wrapped);
  CommandResult result;
  result.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/out", dir), 0);
  result.out = read_capped(path);
  free(path);
  ck_assert_int_ge(asprintf(&path, "%s/err", dir), 0);
  result.err = read_capped(path);
  free(path);
  remove_tree(dir);
  free(dir);
  free(wrapped);
  free(command);
  return result;
}

void command_result_free(CommandResult *result) {
  free(result->out);
  free(result->err);
  result->out = result->err = NULL;
}

CommandResult run_in(const char *dir, const char *command) { return run_command("cd %s && %s", dir, command); }

void must_succeed_in(const char *dir, const char *command) {
  CommandResult r = run_in(dir, command);
  // The end of what it printed: Check's messages have a size limit (a linker's
  // page of undefined references went over it, and the test's process died).
  size_t length = r.err ? strlen(r.err) : 0;
  ck_assert_msg(r.status == 0, "`%.1000s` failed (%d):\n%s%s", command, r.status, length > 3000 ? "..." : "",
                r.err ? r.err + (length > 3000 ? length - 3000 : 0) : "");
  command_result_free(&r);
}

char *make_temp_dir(const char *tag) {
  const char *base = getenv("TMPDIR");
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/aec-test-%s-XXXXXX", base && *base ? base : "/tmp", tag), 0);
  ck_assert_msg(mkdtemp(path) != NULL, "cannot make a temporary directory %s", path);
  return path;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(path);
}

void remove_tree(const char *path) { nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS); }

void write_file(const char *path, const void *data, size_t size) {
  FILE *file = fopen(path, "wb");
  ck_assert_msg(file != NULL, "cannot write %s", path);
  ck_assert_uint_eq(fwrite(data, 1, size, file), size);
  ck_assert_int_eq(fclose(file), 0);
}

double figure(const char *stdout_text, const char *name) {
  size_t length = strlen(name);
  double value = NAN;  // the last occurrence wins: train prints per epoch
  for (const char *line = stdout_text; line && *line;) {
    if (strncmp(line, name, length) == 0 && line[length] == ' ') value = strtod(line + length + 1, NULL);
    const char *next = strchr(line, '\n');
    line = next ? next + 1 : NULL;
  }
  return value;
}

bool read_png_size(const char *path, int *width, int *height) {
  cairo_surface_t *png = cairo_image_surface_create_from_png(path);
  bool ok = cairo_surface_status(png) == CAIRO_STATUS_SUCCESS;
  *width = ok ? cairo_image_surface_get_width(png) : 0;
  *height = ok ? cairo_image_surface_get_height(png) : 0;
  cairo_surface_destroy(png);
  return ok;
}

char *make_program_dir(const char *tag, const char *model_text, int n, int size) {
  char *dir = make_temp_dir(tag), path[4096];
  snprintf(path, sizeof path, "%s/m.ae", dir);
  write_file(path, model_text, strlen(model_text));
  snprintf(path, sizeof path, "%s/train.csv", dir);
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  unsigned s = 12345;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < size; j++)
      s = s * 1103515245u + 12345u, fprintf(f, "%.4f%c", (s >> 16) % 10000 / 1e4, j == size - 1 ? '\n' : ',');
  fclose(f);
  CommandResult r = run_command("cd %s && %s/aec m.ae -o m", dir, AEC_BUILD_DIR);
  ck_assert_msg(r.status == 0, "aec failed: %s", r.err);
  command_result_free(&r);
  return dir;
}

static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

void write_idx(const char *path, uint32_t magic, const uint32_t *dims, int ndim, const unsigned char *bytes, size_t n,
               bool gz) {
  unsigned char header[4 + 16];
  put_be32(header, magic);
  for (int i = 0; i < ndim; i++) put_be32(header + 4 + 4 * i, dims[i]);
  size_t hl = 4 + 4 * (size_t)ndim;
  if (!gz) {
    unsigned char *all = malloc(hl + n + 1);
    memcpy(all, header, hl);
    memcpy(all + hl, bytes, n);
    write_file(path, all, hl + n);
    free(all);
    return;
  }
  gzFile f = gzopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gzwrite(f, header, (unsigned)hl), (int)hl);
  if (n) ck_assert_int_eq(gzwrite(f, bytes, (unsigned)n), (int)n);
  ck_assert_int_eq(gzclose(f), Z_OK);
}

// ----------------------------------------------------------------- files
char *path_in(const char *dir, const char *name) {
  char *path = NULL;
  ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
  return path;
}

char *read_whole_file(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  ck_assert_msg(f != NULL, "cannot read %s", path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *data = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(data, 1, (size_t)n, f), (size_t)n);
  data[n] = 0;
  fclose(f);
  if (size) *size = (size_t)n;
  return data;
}

bool path_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

stderr_capture stderr_begin(void) {
  stderr_capture c;
  char *dir = make_temp_dir("stderr");
  c.path = path_in(dir, "err");
  free(dir);
  fflush(stderr);
  c.saved = dup(2);
  int fd = open(c.path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  ck_assert_int_ge(fd, 0);
  dup2(fd, 2);
  close(fd);
  return c;
}

char *stderr_end(stderr_capture *c) {
  fflush(stderr);
  dup2(c->saved, 2);
  close(c->saved);
  char *text = read_whole_file(c->path, NULL);
  unlink(c->path);
  char *dir = strdup(c->path);
  *strrchr(dir, '/') = 0;
  rmdir(dir);
  free(dir);
  free(c->path);
  return text;
}

// ------------------------------------------------- a hand-written model: lin
// x[4] -> z = x W1 + b1 [2] -> y = z W2 + b2 [4], loss mean((y - x)^2).
enum { IN = LIN_IN, CODE = LIN_CODE, W1 = 0, B1 = 8, W2 = 10, B2 = 18, N_ELEMS = LIN_N_ELEMS, PER_SAMPLE = 12 };
int lin_nan_after_batches = -1;

static void lin_forward(const aert_ctx *ctx, const aert_real *x, int n, aert_real *z, aert_real *y) {
  const aert_real *p = ctx->params;
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < CODE; j++) {
      aert_real s = p[B1 + j];
      for (int m = 0; m < IN; m++) s += x[i * IN + m] * p[W1 + m * CODE + j];
      z[i * CODE + j] = s;
    }
    for (int k = 0; k < IN; k++) {
      aert_real s = p[B2 + k];
      for (int j = 0; j < CODE; j++) s += z[i * CODE + j] * p[W2 + j * IN + k];
      y[i * IN + k] = s;
    }
  }
}

static double lin_loss(const aert_real *x, const aert_real *y, int n) {
  double loss = 0;
  for (int e = 0; e < n * IN; e++) loss += (double)(y[e] - x[e]) * (double)(y[e] - x[e]);
  return loss / (n * IN);
}

static double lin_loss_and_grad(aert_ctx *ctx, int step, const aert_real *x, int n) {
  (void)step;
  aert_real *z = ctx->arena, *y = z + n * CODE, *dy = y + n * IN, *dz = dy + n * IN;
  aert_real *g = ctx->grads, *p = ctx->params;
  lin_forward(ctx, x, n, z, y);
  memset(g, 0, N_ELEMS * sizeof *g);
  for (int e = 0; e < n * IN; e++) dy[e] = 2 * (y[e] - x[e]) / (aert_real)(n * IN);
  for (int i = 0; i < n; i++) {
    for (int j = 0; j < CODE; j++) {
      aert_real s = 0;
      for (int k = 0; k < IN; k++) {
        g[W2 + j * IN + k] += z[i * CODE + j] * dy[i * IN + k];
        s += dy[i * IN + k] * p[W2 + j * IN + k];
      }
      dz[i * CODE + j] = s;
      g[B1 + j] += s;
      for (int m = 0; m < IN; m++) g[W1 + m * CODE + j] += x[i * IN + m] * s;
    }
    for (int k = 0; k < IN; k++) g[B2 + k] += dy[i * IN + k];
  }
  if (lin_nan_after_batches >= 0 && ctx->batch_counter >= (uint64_t)lin_nan_after_batches) return NAN;
  return lin_loss(x, y, n);
}

static void lin_adam(aert_ctx *ctx, int step) {
  const double b1 = 0.9, b2 = 0.999, eps = 1e-7;
  int64_t t = ++ctx->opt_t[step];
  aert_real *m = ctx->opt_state[step], *v = m + N_ELEMS;
  double lr = ctx->lr[step] * sqrt(1 - pow(b2, (double)t)) / (1 - pow(b1, (double)t));
  for (int e = 0; e < N_ELEMS; e++) {
    aert_real g = ctx->grads[e];
    m[e] = (aert_real)(b1 * m[e] + (1 - b1) * g);
    v[e] = (aert_real)(b2 * v[e] + (1 - b2) * g * g);
    ctx->params[e] -= (aert_real)(lr * m[e] / (sqrt(v[e]) + eps));
  }
}

static void lin_eval_losses(aert_ctx *ctx, const aert_real *x, int n, double *losses) {
  aert_real *z = ctx->arena, *y = z + n * CODE;
  lin_forward(ctx, x, n, z, y);
  losses[0] = lin_loss(x, y, n);
}

static void lin_reconstruct(aert_ctx *ctx, const aert_real *x, int n, aert_real *out) {
  lin_forward(ctx, x, n, ctx->arena, out);
}

static void lin_encode(aert_ctx *ctx, const aert_real *x, int n, aert_real *out) {
  lin_forward(ctx, x, n, out, ctx->arena);
}

const aert_param lin_params[4] = {
    {"encoder.dense.kernel", 2, {IN, CODE}, W1, 8, AERT_INIT_GLOROT_UNIFORM, IN, CODE},
    {"encoder.dense.bias", 1, {CODE}, B1, 2, AERT_INIT_ZEROS, IN, CODE},
    {"decoder.dense.kernel", 2, {CODE, IN}, W2, 8, AERT_INIT_GLOROT_UNIFORM, CODE, IN},
    {"decoder.dense.bias", 1, {IN}, B2, 4, AERT_INIT_ZEROS, CODE, IN},
};
static const aert_layer lin_layers[] = {
    {"encoder.dense", "dense(2)", 1, {CODE}, 10, 2.0 * IN * CODE, 3},
    {"decoder.dense", "dense(4)", 1, {IN}, 12, 2.0 * CODE * IN, 4},
};
static const char *const lin_loss_names[] = {"recon"};
static const int lin_step_params[] = {0, 1, 2, 3};
static const aert_step lin_steps[] = {
    {"recon", 0, "encoder, decoder", AERT_ADAM, 0.01, 2 * N_ELEMS, 4, lin_step_params},
};

aert_model lin_model(void) {
  aert_model m = {
      .abi_version = AERT_ABI_VERSION,
      .name = "lin",
      .source_file = "lin.ae",
      .source_hash = "0123456789abcdef",
      .aec_version = "test",
      .input_rank = 1,
      .input_shape = {IN},
      .input_size = IN,
      .n_param_elems = N_ELEMS,
      .n_params = 4,
      .params = lin_params,
      .n_layers = 2,
      .layers = lin_layers,
      .n_losses = 1,
      .loss_names = lin_loss_names,
      .n_steps = 1,
      .steps = lin_steps,
      .default_data = "train.csv",
      .default_test = "test.csv",
      .default_batch = 8,
      .default_epochs = 3,
      .default_seed = 1,
      .arena_per_sample = PER_SAMPLE,
      .arena_fixed = 0,
      .code_size = CODE,
      .recon_size = IN,
      .loss_and_grad = lin_loss_and_grad,
      .apply_update = lin_adam,
      .eval_losses = lin_eval_losses,
      .reconstruct = lin_reconstruct,
      .encode = lin_encode,
  };
  return m;
}

// Every number after "losses": [ on each line of a trace.
int trace_losses(const char *path, double *losses, int max) {
  FILE *f = fopen(path, "r");
  ck_assert_msg(f != NULL, "no trace %s", path);
  char *line = NULL;
  size_t cap = 0;
  int n = 0;
  while (getline(&line, &cap, f) > 0) {
    char *at = strstr(line, "\"losses\": [");
    if (!at) continue;
    at += strlen("\"losses\": [");
    while (n < max) {
      char *end;
      double v = strtod(at, &end);
      if (end == at) break;
      losses[n++] = v;
      at = end;
      while (*at == ',' || *at == ' ') at++;
    }
  }
  free(line);
  fclose(f);
  return n;
}

// A .npy file (format 1.0) of `bytes` bytes of data, its header padded to 64 bytes.
void write_npy(const char *path, const char *descr, const char *shape, const void *data, size_t bytes) {
  char header[256];
  int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  int total = 10 + n + 1;
  int pad = (64 - total % 64) % 64;
  unsigned char *all = malloc((size_t)(total + pad) + bytes);
  memcpy(all, "\x93NUMPY\x01\x00", 8);
  uint16_t hl = (uint16_t)(n + pad + 1);
  all[8] = (unsigned char)(hl & 0xff), all[9] = (unsigned char)(hl >> 8);
  memcpy(all + 10, header, (size_t)n);
  memset(all + 10 + n, ' ', (size_t)pad);
  all[10 + n + pad] = '\n';
  memcpy(all + total + pad, data, bytes);
  write_file(path, all, (size_t)(total + pad) + bytes);
  free(all);
}
