// trace.c — what an outside check needs to replay a training run step by
// step (tests/torch/ does it in PyTorch, with the model `describe` prints):
// `train --trace FILE` (each batch's samples and each step's loss) and
// `train --dump-random DIR` (the draws of every random node, batch after
// batch).
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

// ------------------------------------------------------------ random draws
// One random node's dump: DIR/<node name>.<draw>.npy, one file a draw kind,
// [rows, ...node shape] with the rows of every batch one after another (a
// batched node: n rows a batch; an unbatched one: one row a batch).
typedef struct random_file {
  aert_output *out;
  FILE *f;
  char *path;
  int draw;          // 0: uniform0, 1: uniform1, 2: normal
  int rng_node;
  bool batched;
  size_t size;       // elements a row
  int rank;
  int shape[4];
  size_t rows;
} random_file;

struct aert_trace {
  aert_output *out;
  FILE *log;
  const char *log_path;
  random_file *random;
  int n_random;
};

enum { NPY_HEADER = 128 };  // fixed, so the row count can be written at the end

static bool write_npy_header(random_file *r) {
  char dims[160];
  int n = snprintf(dims, sizeof dims, "%zu,", r->rows);
  for (int d = 0; d < r->rank; d++) n += snprintf(dims + n, sizeof dims - (size_t)n, "%s%d", d ? "," : "", r->shape[d]);
  char header[NPY_HEADER + 1];
  // magic, version 1.0, the header's length (little-endian u16, set below), the header
  int len = snprintf(header, sizeof header, "\x93NUMPY\x01%c%c%c{'descr': '<f%d', 'fortran_order': False, 'shape': (%s), }",
                     0, 0, 0, (int)sizeof(aert_real), dims);
  if (len < 0 || len >= NPY_HEADER) return false;
  header[8] = (char)(NPY_HEADER - 10);  // header length, little-endian u16
  header[9] = 0;
  memset(header + len, ' ', (size_t)(NPY_HEADER - len));
  header[NPY_HEADER - 1] = '\n';
  return fseek(r->f, 0, SEEK_SET) == 0 && fwrite(header, 1, NPY_HEADER, r->f) == NPY_HEADER && fseek(r->f, 0, SEEK_END) == 0;
}

static const char *const draw_names[] = {"uniform0", "uniform1", "normal"};

static bool add_random_file(aert_trace *t, const char *dir, const json_value *node, const char *draw) {
  int which = -1;
  for (int i = 0; i < 3; i++)
    if (strcmp(draw, draw_names[i]) == 0) which = i;
  const json_value *name = json_get(node, "name"), *shape = json_get(node, "shape"),
                   *batched = json_get(node, "batched"), *random = json_get(node, "random");
  const json_value *rng = random ? json_get(random, "rng_node") : NULL;
  uint64_t rng_node = 0;
  if (which < 0 || !name || name->type != JSON_STRING || !shape || shape->type != JSON_ARRAY || shape->count > 4 ||
      !batched || !rng || !json_as_u64(rng, &rng_node)) {
    aert_error("--dump-random: the model description's random node is malformed");
    return false;
  }
  random_file r = {.draw = which, .rng_node = (int)rng_node, .batched = batched->boolean, .size = 1,
                   .rank = (int)shape->count};
  for (size_t d = 0; d < shape->count; d++) {
    uint64_t v = 0;
    if (!json_as_u64(&shape->items[d], &v)) return false;
    r.shape[d] = (int)v;
    r.size *= (size_t)v;
  }
  if (asprintf(&r.path, "%s/%s.%s.npy", dir, name->text, draw) < 0) return false;
  r.out = aert_output_begin(r.path, "the draws");
  if (!r.out) return free(r.path), false;
  r.f = aert_output_stream(r.out);
  if (!write_npy_header(&r)) {
    aert_error("%s: cannot write the draws: %s", r.path, strerror(errno));
    aert_output_abandon(r.out);
    free(r.path);
    return false;
  }
  random_file *grown = realloc(t->random, (size_t)(t->n_random + 1) * sizeof *t->random);
  if (!grown) {  // the files opened so far stay in t->random, closed with it
    aert_error("%s: out of memory", r.path);
    aert_output_abandon(r.out);
    free(r.path);
    return false;
  }
  t->random = grown;
  t->random[t->n_random++] = r;
  return true;
}

static bool open_random_dump(aert_trace *t, const aert_model *model, const char *dir) {
  if (!model->description) {
    aert_error("--dump-random: this program carries no model description");
    return false;
  }
  if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
    aert_error("%s: cannot make the directory: %s", dir, strerror(errno));
    return false;
  }
  char error[256];
  json_value *d = json_parse(model->description, strlen(model->description), error, sizeof error);
  if (!d) {
    aert_error("--dump-random: the model description is not JSON (%s)", error);
    return false;
  }
  const json_value *nodes = json_get(d, "nodes");
  bool ok = nodes && nodes->type == JSON_ARRAY;
  for (size_t i = 0; ok && i < nodes->count; i++) {
    const json_value *node = &nodes->items[i], *random = json_get(node, "random");
    const json_value *draws = random ? json_get(random, "draws") : NULL;
    for (size_t k = 0; ok && draws && k < draws->count; k++)
      ok = draws->items[k].type == JSON_STRING && add_random_file(t, dir, node, draws->items[k].text);
  }
  json_free(d);
  return ok;
}

// The draws the generated kernels take for element i of a random node with
// key `key` (emit.c's expand_template: $uniform0 and $uniform1 are counters
// 2i and 2i+1 of aert_uniform01, $normal is counter i of aert_normal; the key
// is aert_hash64(aert_stream_key(seed, AERT_STREAM_CORRUPT, batch_counter),
// rng_node)).
static bool dump_random(aert_trace *t, const aert_ctx *ctx, int n) {
  uint64_t batch_key = aert_stream_key(ctx->seed, AERT_STREAM_CORRUPT, ctx->batch_counter);
  for (int i = 0; i < t->n_random; i++) {
    random_file *r = &t->random[i];
    uint64_t key = aert_hash64(batch_key, (uint64_t)r->rng_node);
    size_t rows = r->batched ? (size_t)n : 1, count = rows * r->size;
    for (size_t e = 0; e < count; e++) {
      double v = r->draw == 2 ? aert_normal(key, e) : aert_uniform01(key, 2 * e + (uint64_t)r->draw);
      aert_real x = (aert_real)v;
      if (fwrite(&x, sizeof x, 1, r->f) != 1) {
        aert_error("%s: cannot write: %s", r->path, strerror(errno));
        return false;
      }
    }
    r->rows += rows;
  }
  return true;
}

// ------------------------------------------------------------------ trace
aert_trace *aert_trace_open(const aert_model *model, const aert_options *options) {
  if (!options->trace && !options->dump_random) return NULL;
  aert_trace *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  if (options->trace) {
    t->log_path = options->trace;
    t->out = aert_output_begin(options->trace, "the trace");
    if (!t->out) {
      aert_trace_close(t, false);
      return NULL;
    }
    t->log = aert_output_stream(t->out);
  }
  if (options->dump_random && !open_random_dump(t, model, options->dump_random)) {
    aert_trace_close(t, false);
    return NULL;
  }
  return t;
}

bool aert_trace_batch(aert_trace *t, const aert_model *model, const aert_ctx *ctx, int epoch, size_t batch,
                      const uint32_t *samples, int n, const double *losses) {
  if (!t) return true;
  if (t->log) {
    fprintf(t->log, "{\"epoch\": %d, \"batch\": %zu, \"batch_counter\": %llu, \"losses\": [", epoch + 1, batch + 1,
            (unsigned long long)ctx->batch_counter);
    for (int s = 0; s < model->n_steps; s++) fprintf(t->log, "%s%.9g", s ? ", " : "", losses[s]);
    fprintf(t->log, "], \"progress\": %.17g, \"lr\": [", ctx->progress);  // schedules' values follow from them
    for (int s = 0; s < model->n_steps; s++) fprintf(t->log, "%s%.17g", s ? ", " : "", ctx->lr[s]);
    fprintf(t->log, "], \"samples\": [");
    for (int i = 0; i < n; i++) fprintf(t->log, i ? ", %u" : "%u", samples[i]);
    fprintf(t->log, "]}\n");
    if (ferror(t->log)) {
      aert_error("%s: cannot write the trace: %s", t->log_path, strerror(errno));
      return false;
    }
  }
  return dump_random(t, ctx, n);
}

bool aert_trace_close(aert_trace *t, bool keep) {
  if (!t) return true;
  bool ok = true;
  if (t->out && keep) ok = aert_output_commit(t->out);
  else aert_output_abandon(t->out);
  for (int i = 0; i < t->n_random; i++) {
    random_file *r = &t->random[i];
    if (keep && ok && !write_npy_header(r)) {
      aert_error("%s: cannot write the draws: %s", r->path, strerror(errno));
      ok = false;
    }
    if (keep && ok) ok = aert_output_commit(r->out);
    else aert_output_abandon(r->out);
    free(r->path);
  }
  free(t->random);
  free(t);
  return ok;
}
