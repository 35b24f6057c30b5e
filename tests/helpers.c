// helpers.c — running commands, temporary directories and figures for the
// Check suites (see tests.h).
#define _GNU_SOURCE
#include <cairo.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
  ck_assert_msg(r.status == 0, "`%s` failed (%d):\n%s", command, r.status, r.err);
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
