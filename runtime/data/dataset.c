// dataset.c — what the data set parsers share: a file's bytes (plain or
// gzip), a new data set around them, and the sample size checked against the
// model's. The parsers (idx.c, csv.c, npy.c) build on it; load.c picks one.
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "data.h"


bool aert_check_sample_size(const char *path, size_t got, size_t expect, const char *expect_what) {
  if (expect == 0 || got == expect) return true;
  if (expect_what)
    aert_error("%s: each sample has %zu values, %s", path, got, expect_what);
  else
    aert_error("%s: each sample has %zu values, the model expects %zu", path, got, expect);
  return false;
}

// aert_dataset_new, or aert_dataset_adopt with `values`.
static aert_dataset *new_dataset(const char *path, size_t n, int rank, const size_t *shape, bool with_labels,
                                 aert_real *values) {
  if (rank < 1 || rank > 3) abort();  // callers flatten
  aert_dataset *d = calloc(1, sizeof *d);
  size_t sample = 1, total;
  for (int i = 0; i < rank; i++) sample *= shape[i];  // callers checked overflow
  if (!d || !(d->path = strdup(path))) {
    free(d);
    free(values);
    aert_error("%s: out of memory", path);
    return NULL;
  }
  d->x = values;
  if (sample == 0 || sample > INT32_MAX) {
    aert_error("%s: samples of %zu values are not supported", path, sample);
    aert_dataset_free(d);
    return NULL;
  }
  d->n = n;
  d->sample_size = sample;
  d->rank = rank;
  for (int i = 0; i < rank; i++) d->shape[i] = (int)shape[i];
  if (!aert_mul_size(n, sample, SIZE_MAX / sizeof(aert_real), &total)) {
    aert_error("%s: %zu samples of %zu values are too many to hold in memory", path, n, sample);
    aert_dataset_free(d);
    return NULL;
  }
  if (!d->x) d->x = malloc(total ? total * sizeof(aert_real) : 1);
  if (with_labels) d->labels = malloc(n ? n * sizeof(int32_t) : 1);
  if (!d->x || (with_labels && !d->labels)) {
    aert_error("%s: out of memory for %zu samples of %zu values", path, n, sample);
    aert_dataset_free(d);
    return NULL;
  }
  return d;
}

aert_dataset *aert_dataset_new(const char *path, size_t n, int rank, const size_t *shape, bool with_labels) {
  return new_dataset(path, n, rank, shape, with_labels, NULL);
}

aert_dataset *aert_dataset_adopt(const char *path, size_t n, int rank, const size_t *shape, aert_real *values) {
  return new_dataset(path, n, rank, shape, false, values);
}

const unsigned char *aert_values_room(const char *path, unsigned char **buffer, size_t offset, size_t count,
                                      size_t item, aert_real **values) {
  const size_t in = count * item, out = count * sizeof(aert_real);  // the parsers checked both against the file
  if (out > in) {
    // The room, and the values where they are now until they have moved (a
    // small file's header can be longer than what the values grow by).
    const size_t held = out > offset + in ? out : offset + in;
    unsigned char *room = realloc(*buffer, held);  // a large buffer is remapped, not copied
    if (!room) {
      aert_error("%s: out of memory for %zu values", path, count);
      return NULL;
    }
    *buffer = room;
    memmove(room + out - in, room + offset, in);
    if (held > out && (room = realloc(room, out))) *buffer = room;
    *values = (aert_real *)*buffer;
    return *buffer + out - in;
  }
  memmove(*buffer, *buffer + offset, in);
  unsigned char *fitted = realloc(*buffer, in ? in : 1);  // without the read's spare capacity
  if (fitted) *buffer = fitted;
  *values = (aert_real *)*buffer;
  return *buffer;
}

aert_dataset *aert_dataset_split(aert_dataset *d, double fraction, uint64_t seed) {
  size_t held = (size_t)llround(fraction * (double)d->n);
  if (held < 1) held = 1;
  if (d->n < 2 || held >= d->n) {
    aert_error("%s: holding out %g of its %zu samples for validation leaves none to train on", d->path, fraction,
               d->n);
    return NULL;
  }
  size_t shape[3];
  for (int i = 0; i < d->rank; i++) shape[i] = (size_t)d->shape[i];
  char *name = NULL;
  uint32_t *order = malloc(d->n * sizeof *order);
  bool *out = calloc(d->n, sizeof *out);
  aert_dataset *v = NULL;
  if (order && out && asprintf(&name, "%s (validation)", d->path) >= 0)
    v = new_dataset(name, held, d->rank, shape, d->labels != NULL, NULL);
  else
    aert_error("%s: out of memory for the validation split", d->path);
  if (v) {
    aert_shuffle(order, d->n, seed, 0x76616c6964ULL);  // "valid": a stream of its own
    for (size_t i = 0; i < held; i++) out[order[i]] = true;
    const size_t size = d->sample_size;
    for (size_t i = 0, kept = 0, moved = 0; i < d->n; i++) {
      size_t to = out[i] ? moved++ : kept++;
      aert_real *dst = out[i] ? v->x : d->x;
      int32_t *labels = out[i] ? v->labels : d->labels;
      memmove(dst + to * size, d->x + i * size, size * sizeof *dst);  // kept <= i: never ahead of the reads
      if (labels) labels[to] = d->labels[i];
    }
    d->n -= held;
  }
  free(name);
  free(order);
  free(out);
  return v;
}

void aert_dataset_free(aert_dataset *d) {
  if (!d) return;
  free(d->path);
  free(d->x);
  free(d->labels);
  for (int i = 0; i < d->n_classes; i++) free(d->class_names[i]);
  free(d->class_names);
  free(d);
}

static bool grow(unsigned char **data, size_t *capacity, size_t need) {
  if (need <= *capacity) return true;
  size_t c = *capacity ? *capacity : 1 << 16;
  while (c < need) c *= 2;
  unsigned char *p = realloc(*data, c);
  if (!p) return false;
  *data = p;
  *capacity = c;
  return true;
}

// Reads until *size is `until` or the file ends; false on a read error.
static bool read_until(gzFile file, unsigned char **data, size_t *size, size_t *capacity, size_t until,
                       bool *out_of_memory) {
  const size_t chunk = (size_t)1 << 20;
  while (*size < until) {
    size_t want = until - *size < chunk ? until - *size : chunk;
    if (!grow(data, capacity, *size + want + 1)) {
      *out_of_memory = true;
      return false;
    }
    int got = gzread(file, *data + *size, (unsigned)want);
    if (got < 0) return false;
    if (got == 0) break;
    *size += (size_t)got;
  }
  return true;
}

// After a read: false, after a message, when it failed or the gzip data is bad.
static bool read_succeeded(const char *path, gzFile file, bool ok, bool out_of_memory, size_t size) {
  if (out_of_memory) {
    aert_error("%s: out of memory after %zu bytes", path, size);
    return false;
  }
  int code = Z_OK;
  const char *message = gzerror(file, &code);
  if (ok && (code == Z_OK || code == Z_STREAM_END)) return true;
  const char *what = code == Z_BUF_ERROR ? "the gzip data is truncated" : code == Z_ERRNO ? strerror(errno) : "cannot decompress";
  // zlib names a file it was handed as a descriptor "<fd:N>": say the path instead.
  const char *colon = message && strncmp(message, "<fd:", 4) == 0 ? strstr(message, ": ") : NULL;
  if (colon)
    aert_error("%s: %s (zlib: %s: %s)", path, what, path, colon + 2);
  else
    aert_error("%s: %s (zlib: %s)", path, what, message && *message ? message : zError(code));
  return false;
}

int aert_read_file(const char *path, aert_size_limit *limit, unsigned char **out, size_t *out_size) {
  int fd = aert_open_input(path, "data file", NULL);
  if (fd < 0) return -1;
  gzFile file = gzdopen(fd, "rb");
  if (!file) {
    close(fd);
    aert_error("%s: cannot open: out of memory", path);
    return -1;
  }
  unsigned char *data = NULL;
  size_t size = 0, capacity = 0, allowed = 0;
  bool out_of_memory = false;
  // The head first; what it declares bounds the rest.
  bool ok = read_until(file, &data, &size, &capacity, AERT_HEAD_BYTES, &out_of_memory);
  if (!read_succeeded(path, file, ok, out_of_memory, size)) goto fail;
  size_t most = AERT_MAX_DATA_BYTES;
  bool declared = false;
  if (size > 0 && limit) {
    most = limit(path, data, size, &declared);
    if (most == 0) goto fail;  // the limit said why
    if (most > AERT_MAX_DATA_BYTES) most = AERT_MAX_DATA_BYTES, declared = false;
  }
  allowed = most + AERT_TRAILING_MARGIN;
  if (size >= AERT_HEAD_BYTES) {
    ok = read_until(file, &data, &size, &capacity, allowed + 1, &out_of_memory);
    if (!read_succeeded(path, file, ok, out_of_memory, size)) goto fail;
  }
  if (size > allowed) {
    if (!declared)
      aert_error("%s: more than %zu bytes (after decompression), the most a data file of this kind may hold", path,
                 most);
    else
      aert_error("%s: trailing data: the header declares %zu bytes in all, but the file goes on past %zu", path, most,
                 allowed);
    goto fail;
  }
  if (gzclose_r(file) != Z_OK) {
    file = NULL;
    aert_error("%s: read error", path);
    goto fail;
  }
  if (size == 0) {
    aert_error("%s: the file is empty", path);
    free(data);
    return -1;
  }
  data[size] = 0;
  *out = data;
  *out_size = size;
  return 0;
fail:
  if (file) gzclose_r(file);
  free(data);
  return -1;
}
