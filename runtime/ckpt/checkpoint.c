// checkpoint.c — checkpoints as safetensors files: an 8-byte little-endian
// header length N, N bytes of JSON (padded with spaces to a multiple of 8),
// then the tensors' raw little-endian bytes, contiguous and in header order.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"

#define MAX_HEADER_BYTES ((uint64_t)100 << 20)  // as the safetensors library
#define REAL_DTYPE (sizeof(aert_real) == 8 ? "F64" : "F32")

void aert_optimizer_key(const aert_model *model, int step, char *out, size_t size) {
  const char *loss = model->steps[step].loss;
  bool shared = false;
  for (int s = 0; s < model->n_steps; s++)
    if (s != step && strcmp(model->steps[s].loss, loss) == 0) shared = true;
  if (shared) snprintf(out, size, "optimizer.step%d", step);
  else snprintf(out, size, "optimizer.%s", loss);
}

// Each optimizer's name (aert_optimizers.def), which a checkpoint records
// beside its state: another optimizer's state of the same size is not resumed.
static const char *const optimizer_names[] = {
#define OPTIMIZER(kind, name, kernel, takes_t, states, last_state_if, settings) [AERT_##kind] = name,
#include "aert_optimizers.def"
};

// ------------------------------------------------------------------ saving
static void add_meta(aert_buf *h, const char *key, const char *value) {
  aert_buf_printf(h, ",");
  aert_buf_json_string(h, key);
  aert_buf_printf(h, ":");
  aert_buf_json_string(h, value ? value : "");
}

static void add_tensor(aert_buf *h, const char *name, int rank, const int *shape, size_t *offset, size_t elems) {
  aert_buf_printf(h, ",");
  aert_buf_json_string(h, name);
  aert_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", REAL_DTYPE);
  for (int i = 0; i < rank; i++) aert_buf_printf(h, "%s%d", i ? "," : "", shape[i]);
  size_t end = *offset + elems * sizeof(aert_real);
  aert_buf_printf(h, "],\"data_offsets\":[%zu,%zu]}", *offset, end);
  *offset = end;
}

// Each parameter's axes, from the model's description (the op that reads
// it): a dense kernel is [in, out], the transpose of torch.nn.Linear.weight;
// a conv kernel [out, in, kh, kw] as Conv2d.weight; a deconv kernel [in,
// out, kh, kw] as ConvTranspose2d.weight; a bias [out]. NULL where no layer
// reads it as a kernel or a bias (the checkpoint then says nothing of it).
static void param_layouts(const aert_model *model, const char **layouts) {
  for (int i = 0; i < model->n_params; i++) layouts[i] = model->params[i].rank == 1 ? "out" : NULL;
  char error[128];
  json_value *d = model->description ? json_parse(model->description, strlen(model->description), error, sizeof error) : NULL;
  const json_value *nodes = d ? json_get(d, "nodes") : NULL;
  if (!nodes || nodes->type != JSON_ARRAY) return json_free(d);
  for (size_t k = 0; k < nodes->count; k++) {
    const json_value *op = json_get(&nodes->items[k], "op"), *inputs = json_get(&nodes->items[k], "inputs");
    if (!op || op->type != JSON_STRING || !inputs || inputs->type != JSON_ARRAY || inputs->count < 2) continue;
    const char *layout = strcmp(op->text, "dense") == 0    ? "in,out"
                         : strcmp(op->text, "conv") == 0   ? "out,in,kh,kw"
                         : strcmp(op->text, "deconv") == 0 ? "in,out,kh,kw"
                                                           : NULL;
    uint64_t id;
    if (!layout || !json_as_u64(&inputs->items[1], &id) || id >= nodes->count) continue;
    const json_value *param = json_get(&nodes->items[id], "param");
    for (int i = 0; param && param->type == JSON_STRING && i < model->n_params; i++)
      if (strcmp(model->params[i].name, param->text) == 0 && model->params[i].rank > 1) layouts[i] = layout;
  }
  json_free(d);
}

// The JSON header, padded with spaces to a multiple of 8 bytes.
static bool build_header(aert_buf *h, const aert_model *model, const aert_ctx *ctx, const aert_progress_state *st) {
  char value[64], key[256];
  // Not "pt": the tensors are aec's layout, not a PyTorch state_dict's (docs/checkpoints.md).
  aert_buf_printf(h, "{\"__metadata__\":{\"format\":\"aec\"");
  add_meta(h, "layout", "aec: dense kernels [in, out] (torch.nn.Linear.weight transposed), conv kernels "
                        "[out, in, kh, kw] (Conv2d.weight), deconv kernels [in, out, kh, kw] "
                        "(ConvTranspose2d.weight), biases [out]; each tensor's axes in layout.NAME");
  add_meta(h, "aec_model", model->name);
  add_meta(h, "source_hash", model->source_hash);
  add_meta(h, "aec_version", model->aec_version);
  add_meta(h, "dtype", sizeof(aert_real) == 8 ? "f64" : "f32");
  snprintf(value, sizeof value, "%" PRId64, st->epoch);
  add_meta(h, "epoch", value);
  snprintf(value, sizeof value, "%" PRIu64, st->batch_counter);
  add_meta(h, "batch_counter", value);
  if (st->epoch_batch) {
    snprintf(value, sizeof value, "%" PRIu64, st->epoch_batch);
    add_meta(h, "epoch_batch", value);
  }
  snprintf(value, sizeof value, "%" PRIu64, ctx->seed);
  add_meta(h, "seed", value);
  if (st->best_epoch > 0) {  // early stopping's best so far (train --patience)
    snprintf(value, sizeof value, "%" PRId64, st->best_epoch);
    add_meta(h, "best_epoch", value);
    snprintf(value, sizeof value, "%.17g", st->best_value);
    add_meta(h, "best_value", value);
    add_meta(h, "best_loss", st->best_loss);
  }
  if (ctx->progress != (double)st->epoch) {  // a mid-epoch checkpoint's fractional epoch (schedules at eval)
    snprintf(value, sizeof value, "%.17g", ctx->progress);
    add_meta(h, "progress", value);
  }
  for (int s = 0; s < model->n_steps; s++) {
    char prefix[200];
    aert_optimizer_key(model, s, prefix, sizeof prefix);
    snprintf(key, sizeof key, "%s.t", prefix);
    snprintf(value, sizeof value, "%" PRId64, ctx->opt_t[s]);
    add_meta(h, key, value);
    snprintf(key, sizeof key, "%s.optimizer", prefix);
    add_meta(h, key, optimizer_names[model->steps[s].optimizer]);
  }
  const char **layouts = calloc((size_t)model->n_params + 1, sizeof *layouts);
  if (!layouts) return false;
  param_layouts(model, layouts);
  for (int i = 0; i < model->n_params; i++)
    if (layouts[i]) {
      snprintf(key, sizeof key, "layout.%s", model->params[i].name);
      add_meta(h, key, layouts[i]);
    }
  free(layouts);
  aert_buf_printf(h, "}");
  size_t offset = 0;
  for (int i = 0; i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    add_tensor(h, p->name, p->rank, p->shape, &offset, p->size);
  }
  for (int s = 0; s < model->n_steps; s++) {
    size_t n = model->steps[s].state_size;
    if (n == 0) continue;
    char prefix[200];
    aert_optimizer_key(model, s, prefix, sizeof prefix);
    snprintf(key, sizeof key, "%s.state", prefix);
    int shape[1] = {(int)n};
    add_tensor(h, key, 1, shape, &offset, n);
  }
  aert_buf_printf(h, "}");
  while (!h->failed && h->length % 8 != 0) aert_buf_printf(h, " ");
  return !h->failed;
}

static bool write_bytes(FILE *f, const void *data, size_t size) { return size == 0 || fwrite(data, 1, size, f) == size; }

static bool write_checkpoint_file(FILE *f, const aert_buf *h, const aert_model *model, const aert_ctx *ctx) {
  unsigned char length[8];
  for (int i = 0; i < 8; i++) length[i] = (unsigned char)((uint64_t)h->length >> (8 * i));
  bool ok = write_bytes(f, length, 8) && write_bytes(f, h->data, h->length);
  for (int i = 0; ok && i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    ok = write_bytes(f, ctx->params + p->offset, p->size * sizeof(aert_real));
  }
  for (int s = 0; ok && s < model->n_steps; s++)
    ok = write_bytes(f, ctx->opt_state[s], model->steps[s].state_size * sizeof(aert_real));
  return ok;
}

// Through core's safe output (output.c): a temporary beside the file, synced,
// then renamed over it, so a crash or a full disk leaves the old checkpoint.
int aert_checkpoint_save(const char *path, const aert_model *model, const aert_ctx *ctx,
                         const aert_progress_state *state) {
  aert_buf header = {0};
  if (!build_header(&header, model, ctx, state)) {
    aert_error("%s: out of memory writing the checkpoint header", path);
    aert_buf_free(&header);
    return -1;
  }
  aert_output *out = aert_output_begin(path, "the checkpoint");
  bool ok = out != NULL;
  if (ok && !write_checkpoint_file(aert_output_stream(out), &header, model, ctx)) {
    aert_error("%s: cannot write the checkpoint: %s", path, strerror(errno ? errno : EIO));
    aert_output_abandon(out);
    ok = false;
  } else if (ok) {
    ok = aert_output_commit(out);
  }
  aert_buf_free(&header);
  return ok ? 0 : -1;
}

// ----------------------------------------------------------------- loading
typedef struct tensor_info {
  const char *name;
  const json_value *entry;
  int dtype_size;
  bool is_f64;  // F64 or F32: the only dtypes a parameter may have
  int rank;
  uint64_t shape[8];
  uint64_t begin, end;
  bool used;
} tensor_info;

typedef struct checkpoint_file {
  const char *path;
  FILE *f;
  uint64_t size, header_length, data_size;
  json_value *header;
  const json_value *metadata;
  tensor_info *tensors;
  size_t n_tensors;
  bool in_memory;  // f reads a checkpoint in memory (fmemopen) of `size` bytes
} checkpoint_file;

static int dtype_size(const char *dtype) {
  static const struct { const char *name; int size; } table[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2},
      {"I8", 1},  {"U64", 8}, {"U32", 4}, {"U16", 2},  {"U8", 1},  {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}};
  for (size_t i = 0; i < sizeof table / sizeof *table; i++)
    if (strcmp(dtype, table[i].name) == 0) return table[i].size;
  return 0;
}

static void format_u64_shape(char *out, size_t size, int rank, const uint64_t *shape) {
  size_t n = (size_t)snprintf(out, size, "[");
  for (int i = 0; i < rank && n < size; i++) n += (size_t)snprintf(out + n, size - n, "%s%" PRIu64, i ? ", " : "", shape[i]);
  if (n < size) snprintf(out + n, size - n, "]");
}

// Reads and checks one tensor's entry of the header.
static bool read_tensor_info(const checkpoint_file *c, const char *name, const json_value *e, tensor_info *t) {
  memset(t, 0, sizeof *t);
  t->name = name;
  t->entry = e;
  const json_value *dtype = json_get(e, "dtype"), *shape = json_get(e, "shape"), *offsets = json_get(e, "data_offsets");
  if (e->type != JSON_OBJECT || !dtype || dtype->type != JSON_STRING || !shape || shape->type != JSON_ARRAY ||
      !offsets || offsets->type != JSON_ARRAY || offsets->count != 2) {
    aert_error("%s: tensor '%s': the header entry needs \"dtype\", \"shape\" and \"data_offsets\": [begin, end]",
               c->path, name);
    return false;
  }
  t->dtype_size = dtype_size(dtype->text);
  if (!t->dtype_size) {
    aert_error("%s: tensor '%s': unknown dtype '%s'", c->path, name, dtype->text);
    return false;
  }
  t->is_f64 = strcmp(dtype->text, "F64") == 0;
  if (shape->count > 8) {
    aert_error("%s: tensor '%s': shape has %zu dimensions (at most 8)", c->path, name, shape->count);
    return false;
  }
  t->rank = (int)shape->count;
  uint64_t bytes = (uint64_t)t->dtype_size;
  for (int i = 0; i < t->rank; i++) {
    if (!json_as_u64(&shape->items[i], &t->shape[i]) ||
        (t->shape[i] != 0 && bytes > UINT64_MAX / t->shape[i])) {
      aert_error("%s: tensor '%s': malformed or too large shape", c->path, name);
      return false;
    }
    bytes *= t->shape[i];
  }
  if (!json_as_u64(&offsets->items[0], &t->begin) || !json_as_u64(&offsets->items[1], &t->end) || t->end < t->begin) {
    aert_error("%s: tensor '%s': malformed data_offsets", c->path, name);
    return false;
  }
  if (t->end > c->data_size) {
    aert_error("%s: truncated or corrupt checkpoint: tensor '%s' ends at byte %" PRIu64
               " of the data, but only %" PRIu64 " bytes follow the header",
               c->path, name, t->end, c->data_size);
    return false;
  }
  if (t->end - t->begin != bytes) {
    aert_error("%s: tensor '%s': data_offsets span %" PRIu64 " bytes, but its dtype and shape need %" PRIu64,
               c->path, name, t->end - t->begin, bytes);
    return false;
  }
  return true;
}

static int compare_begin(const void *a, const void *b) {
  const tensor_info *x = a, *y = b;
  return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1 : x->end > y->end;
}

// The tensors must tile the data exactly: no gaps, no overlaps, nothing after.
static bool check_layout(const checkpoint_file *c) {
  tensor_info *sorted = malloc((c->n_tensors + 1) * sizeof *sorted);
  if (!sorted) return false;
  memcpy(sorted, c->tensors, c->n_tensors * sizeof *sorted);
  qsort(sorted, c->n_tensors, sizeof *sorted, compare_begin);
  uint64_t at = 0;
  bool ok = true;
  for (size_t i = 0; i < c->n_tensors && ok; i++) {
    if (sorted[i].begin != at) {
      aert_error("%s: corrupt checkpoint: tensor '%s' starts at byte %" PRIu64 " of the data, expected %" PRIu64,
                 c->path, sorted[i].name, sorted[i].begin, at);
      ok = false;
    }
    at = sorted[i].end;
  }
  if (ok && at != c->data_size) {
    aert_error("%s: corrupt checkpoint: %" PRIu64 " bytes of data follow the last tensor", c->path, c->data_size - at);
    ok = false;
  }
  free(sorted);
  return ok;
}

static bool read_header(checkpoint_file *c) {
  struct stat st;
  if (!c->in_memory && (fstat(fileno(c->f), &st) != 0 || !S_ISREG(st.st_mode))) {
    aert_error("%s: not a regular file", c->path);
    return false;
  }
  if (!c->in_memory) c->size = (uint64_t)st.st_size;
  unsigned char length[8];
  if (c->size < 8 || fread(length, 1, 8, c->f) != 8) {
    aert_error("%s: not a checkpoint: %" PRIu64 " bytes, too short for a safetensors header", c->path, c->size);
    return false;
  }
  for (int i = 7; i >= 0; i--) c->header_length = c->header_length << 8 | length[i];
  if (c->header_length > c->size - 8 || c->header_length > MAX_HEADER_BYTES || c->header_length < 2) {
    aert_error("%s: truncated or not a checkpoint: the header length %" PRIu64 " does not fit the file's %" PRIu64
               " bytes",
               c->path, c->header_length, c->size);
    return false;
  }
  c->data_size = c->size - 8 - c->header_length;
  char *text = malloc(c->header_length);
  if (!text || fread(text, 1, c->header_length, c->f) != c->header_length) {
    aert_error("%s: cannot read the checkpoint header", c->path);
    free(text);
    return false;
  }
  char error[128];
  c->header = json_parse(text, c->header_length, error, sizeof error);
  free(text);
  if (!c->header || c->header->type != JSON_OBJECT) {
    aert_error("%s: corrupt checkpoint: the header is not a JSON object (%s)", c->path,
               c->header ? "another JSON value" : error);
    return false;
  }
  return true;
}

static bool read_entries(checkpoint_file *c) {
  const json_value *h = c->header;
  c->tensors = calloc(h->count + 1, sizeof *c->tensors);
  if (!c->tensors) return false;
  for (size_t i = 0; i < h->count; i++) {
    if (strcmp(h->keys[i], "__metadata__") == 0) {
      c->metadata = &h->items[i];
      bool strings = c->metadata->type == JSON_OBJECT;
      for (size_t j = 0; strings && j < c->metadata->count; j++) strings = c->metadata->items[j].type == JSON_STRING;
      if (!strings) {
        aert_error("%s: corrupt checkpoint: __metadata__ must map strings to strings", c->path);
        return false;
      }
      continue;
    }
    if (!read_tensor_info(c, h->keys[i], &h->items[i], &c->tensors[c->n_tensors])) return false;
    c->n_tensors++;
  }
  return check_layout(c);
}

static tensor_info *find_tensor(checkpoint_file *c, const char *name) {
  for (size_t i = 0; i < c->n_tensors; i++)
    if (strcmp(c->tensors[i].name, name) == 0) return &c->tensors[i];
  return NULL;
}

static const char *meta(const checkpoint_file *c, const char *key) {
  const json_value *v = json_get(c->metadata, key);
  return v ? v->text : NULL;
}

// The fractional epoch the checkpoint was saved at (ctx->progress): the
// epochs it holds, unless it says otherwise (saved mid-epoch).
static bool meta_progress(const checkpoint_file *c, double epochs, double *out) {
  const char *text = meta(c, "progress");
  if (!text) return *out = epochs, true;
  char *end;
  double v = strtod(text, &end);
  if (end == text || *end || !(v >= 0) || v > 1e12) {
    aert_error("%s: corrupt checkpoint: metadata progress is '%.40s', not a fractional epoch", c->path, text);
    return false;
  }
  *out = v;
  return true;
}

static const char *model_of(const checkpoint_file *c) {
  const char *name = meta(c, "aec_model");
  return name ? name : "unknown";
}

// Checks a tensor's dtype and shape against what the model holds there.
static bool check_tensor(const checkpoint_file *c, const aert_model *model, const tensor_info *t, int rank,
                         const int *shape) {
  bool same = t->rank == rank;
  for (int i = 0; same && i < rank; i++) same = t->shape[i] == (uint64_t)shape[i];
  if (!same) {
    char have[128], want[128];
    format_u64_shape(have, sizeof have, t->rank, t->shape);
    aert_format_shape(want, sizeof want, rank, shape);
    aert_error("%s: tensor '%s' has shape %s, but model '%s' needs %s (the checkpoint is from model '%s')", c->path,
               t->name, have, model->name, want, model_of(c));
    return false;
  }
  if (t->dtype_size != 4 && t->dtype_size != 8) goto bad_dtype;
  if (t->dtype_size == 8 && !t->is_f64) goto bad_dtype;
  if (t->dtype_size == 4 && strcmp(json_get(t->entry, "dtype")->text, "F32") != 0) goto bad_dtype;
  return true;
bad_dtype:
  aert_error("%s: tensor '%s' has dtype %s; parameters must be F32 or F64", c->path, t->name,
             json_get(t->entry, "dtype")->text);
  return false;
}

// Reads a tensor's data into out, converting F32/F64 to aert_real.
static bool read_tensor_data(checkpoint_file *c, const tensor_info *t, aert_real *out) {
  size_t n = (size_t)((t->end - t->begin) / (uint64_t)t->dtype_size);
  unsigned char *raw = malloc(t->end - t->begin + 1);
  bool ok = raw && fseeko(c->f, (off_t)(8 + c->header_length + t->begin), SEEK_SET) == 0 &&
            fread(raw, 1, t->end - t->begin, c->f) == t->end - t->begin;
  if (!ok) {
    aert_error("%s: cannot read tensor '%s': %s", c->path, t->name, raw ? "read error" : "out of memory");
    free(raw);
    return false;
  }
  for (size_t i = 0; i < n && ok; i++) {
    double v;
    if (t->is_f64) {
      memcpy(&v, raw + 8 * i, 8);
    } else {
      float f;
      memcpy(&f, raw + 4 * i, 4);
      v = f;
    }
    out[i] = (aert_real)v;
    if (!isfinite(out[i])) {
      aert_error("%s: tensor '%s' holds a non-finite value (%g at element %zu)", c->path, t->name, v, i);
      ok = false;
    }
  }
  free(raw);
  return ok;
}

// Counts read from a checkpoint (optimizer steps, batches) are at most 2^53:
// an int64_t holds them without wrapping, a double exactly, and no run takes
// that many steps. A larger one is a damaged or hostile file.
#define MAX_COUNT ((uint64_t)1 << 53)

// The metadata `key` as an integer of at most `max`; absent: *out unchanged.
static bool meta_u64_max(const checkpoint_file *c, const char *key, uint64_t max, uint64_t *out) {
  const char *text = meta(c, key);
  if (!text) return true;  // absent: keep the default
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (!*text || *end || errno || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
    aert_error("%s: corrupt checkpoint: metadata %s is '%.40s', not a count", c->path, key, text);
    return false;
  }
  if (v > max) {
    aert_error("%s: corrupt checkpoint: metadata %s is %llu, more than %" PRIu64 "", c->path, key, v, max);
    return false;
  }
  *out = v;
  return true;
}

static bool meta_u64(const checkpoint_file *c, const char *key, uint64_t *out) {
  return meta_u64_max(c, key, UINT64_MAX, out);
}

static bool load_parameters(checkpoint_file *c, const aert_model *model, aert_ctx *ctx) {
  for (int i = 0; i < model->n_params; i++) {
    const aert_param *p = &model->params[i];
    tensor_info *t = find_tensor(c, p->name);
    if (!t) {
      aert_error("%s: the checkpoint has no tensor '%s': it is from model '%s', not a checkpoint of '%s'", c->path,
                 p->name, model_of(c), model->name);
      return false;
    }
    if (!check_tensor(c, model, t, p->rank, p->shape) || !read_tensor_data(c, t, ctx->params + p->offset))
      return false;
    t->used = true;
  }
  return true;
}

static bool load_optimizer(checkpoint_file *c, const aert_model *model, aert_ctx *ctx, bool want) {
  for (int s = 0; s < model->n_steps; s++) {
    char prefix[200], key[256];
    aert_optimizer_key(model, s, prefix, sizeof prefix);
    snprintf(key, sizeof key, "%s.state", prefix);
    size_t n = model->steps[s].state_size;
    tensor_info *t = find_tensor(c, key);
    uint64_t steps_done = 0;
    snprintf(key, sizeof key, "%s.t", prefix);
    bool has_t = meta(c, key) != NULL;
    if (!meta_u64_max(c, key, MAX_COUNT, &steps_done)) return false;
    snprintf(key, sizeof key, "%s.optimizer", prefix);
    const char *saved = meta(c, key), *ours = optimizer_names[model->steps[s].optimizer];
    bool other = saved && strcmp(saved, ours) != 0;  // absent: a checkpoint from before the optimizers' names
    if (other && want)
      aert_note("%s: step '%s' was trained with %.40s, and this model's step uses %s: its optimizer starts fresh",
                c->path, model->steps[s].loss, saved, ours);
    if ((n > 0 && !t) || other) {
      if (want && !other)
        aert_note("%s: no optimizer state for step '%s': its optimizer starts fresh", c->path, model->steps[s].loss);
      memset(ctx->opt_state[s], 0, n * sizeof(aert_real));
      ctx->opt_t[s] = 0;
      if (t) t->used = true;
      continue;
    }
    if (n > 0) {
      int shape[1] = {(int)n};
      if (!check_tensor(c, model, t, 1, shape) || !read_tensor_data(c, t, ctx->opt_state[s])) return false;
      t->used = true;
      if (!has_t) {
        aert_error("%s: corrupt checkpoint: optimizer state '%s.state' without its step count '%s'", c->path, prefix,
                   key);
        return false;
      }
    }
    ctx->opt_t[s] = (int64_t)steps_done;
  }
  return true;
}

static bool check_all_used(const checkpoint_file *c, const aert_model *model) {
  for (size_t i = 0; i < c->n_tensors; i++) {
    if (c->tensors[i].used || strncmp(c->tensors[i].name, "optimizer.", 10) == 0) continue;
    aert_error("%s: the checkpoint has tensor '%s', which model '%s' does not have (the checkpoint is from model '%s')",
               c->path, c->tensors[i].name, model->name, model_of(c));
    return false;
  }
  return true;
}

// Early stopping's best so far, when the checkpoint records one.
static bool meta_best(const checkpoint_file *c, aert_progress_state *state) {
  uint64_t epoch = 0;
  const char *value = meta(c, "best_value"), *loss = meta(c, "best_loss");
  if (!meta_u64_max(c, "best_epoch", INT32_MAX, &epoch) || epoch == 0) return epoch == 0;
  char *end = NULL;
  double v = value ? strtod(value, &end) : NAN;
  if (!value || end == value || *end || !isfinite(v) || !loss || strlen(loss) >= sizeof state->best_loss) {
    aert_error("%s: corrupt checkpoint: best_epoch %" PRIu64 " without a finite best_value and a best_loss name",
               c->path, epoch);
    return false;
  }
  state->best_epoch = (int64_t)epoch, state->best_value = v;
  snprintf(state->best_loss, sizeof state->best_loss, "%s", loss);
  return true;
}

static int load_checkpoint(checkpoint_file c, const aert_model *model, aert_ctx *ctx, aert_progress_state *state,
                           bool want_optimizer) {
  const char *path = c.path;
  uint64_t epoch = 0, batches = 0, epoch_batch = 0, seed = ctx->seed;
  bool ok = read_header(&c) && read_entries(&c) && load_parameters(&c, model, ctx) &&
            load_optimizer(&c, model, ctx, want_optimizer) && check_all_used(&c, model) &&
            meta_u64_max(&c, "epoch", INT32_MAX, &epoch) && meta_u64_max(&c, "batch_counter", MAX_COUNT, &batches) &&
            meta_u64(&c, "seed", &seed) && meta_u64_max(&c, "epoch_batch", MAX_COUNT, &epoch_batch);
  if (ok) {
    const char *hash = meta(&c, "source_hash");
    if (hash && model->source_hash && strcmp(hash, model->source_hash) != 0)
      aert_note("%s: written by another build of model '%s' (source hash %.12s, this program %.12s)", path,
                model_of(&c), hash, model->source_hash);
    ctx->seed = seed;
    ok = meta_progress(&c, (double)epoch, &ctx->progress);
  }
  if (ok) {
    if (state) state->epoch = (int64_t)epoch, state->batch_counter = batches, state->epoch_batch = epoch_batch;
    aert_progress_state best = {0};
    ok = meta_best(&c, &best);
    if (ok && state) state->best_epoch = best.best_epoch, state->best_value = best.best_value,
                     memcpy(state->best_loss, best.best_loss, sizeof best.best_loss);
  }
  json_free(c.header);
  free(c.tensors);
  fclose(c.f);
  return ok ? 0 : -1;
}

int aert_checkpoint_load_ex(const char *path, const aert_model *model, aert_ctx *ctx, aert_progress_state *state,
                            bool want_optimizer) {
  checkpoint_file c = {.path = path};
  c.f = aert_fopen_input(path, "checkpoint", NULL);
  if (!c.f) return -1;
  return load_checkpoint(c, model, ctx, state, want_optimizer);
}

int aert_checkpoint_load_memory(const void *data, size_t size, const char *name, const aert_model *model,
                                aert_ctx *ctx) {
  checkpoint_file c = {.path = name, .in_memory = true, .size = size};
  c.f = size ? fmemopen((void *)data, size, "rb") : NULL;
  if (!c.f) {
    aert_error("%s: an empty checkpoint (%zu bytes)", name, size);
    return -1;
  }
  return load_checkpoint(c, model, ctx, NULL, false);
}

int aert_checkpoint_load(const char *path, const aert_model *model, aert_ctx *ctx, aert_progress_state *state) {
  return aert_checkpoint_load_ex(path, model, ctx, state, true);
}
