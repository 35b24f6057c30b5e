// npy.c — NumPy .npy files (format versions 1–3): little-endian float32,
// float64 or uint8 (scaled by 1/255), C order, shape [n, ...]; a sample of
// another shape than the model's input is read in C order, with a warning;
// labels from X.labels.npy beside X.npy (as encode writes them).
#define _GNU_SOURCE
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

// A header longer than this is refused: numpy writes a few hundred bytes at
// most (32 axes), and the head the reader looks at first holds it whole.
#define NPY_MAX_HEADER 65536
_Static_assert(12 + NPY_MAX_HEADER <= AERT_HEAD_BYTES, "the head holds any header");

typedef struct npy_header {
  char descr[16];
  bool fortran_order;
  int ndim;
  size_t shape[32];
  bool has_descr, has_shape;
} npy_header;

// A cursor over the header's Python dict literal.
typedef struct dict_reader {
  const char *p, *end;
} dict_reader;

static void skip_space(dict_reader *r) {
  while (r->p < r->end && isspace((unsigned char)*r->p)) r->p++;
}

static bool accept(dict_reader *r, char c) {
  skip_space(r);
  if (r->p < r->end && *r->p == c) {
    r->p++;
    return true;
  }
  return false;
}

// A quoted string without escapes, into out.
static bool read_quoted(dict_reader *r, char *out, size_t size) {
  skip_space(r);
  if (r->p >= r->end || (*r->p != '\'' && *r->p != '"')) return false;
  char quote = *r->p++;
  size_t n = 0;
  while (r->p < r->end && *r->p != quote) {
    if (n + 1 >= size || *r->p == '\\') return false;
    out[n++] = *r->p++;
  }
  if (r->p >= r->end) return false;
  r->p++;
  out[n] = 0;
  return true;
}

static bool read_word(dict_reader *r, const char *word) {
  skip_space(r);
  size_t n = strlen(word);
  if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0) return false;
  r->p += n;
  return true;
}

static bool read_size(dict_reader *r, size_t *out) {
  skip_space(r);
  if (r->p >= r->end || !isdigit((unsigned char)*r->p)) return false;
  size_t v = 0;
  while (r->p < r->end && isdigit((unsigned char)*r->p)) {
    size_t digit = (size_t)(*r->p++ - '0');
    if (v > (SIZE_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  if (r->p < r->end && (*r->p == 'L' || *r->p == 'l')) r->p++;  // Python 2 longs
  *out = v;
  return true;
}

static bool read_shape(dict_reader *r, npy_header *h) {
  if (!accept(r, '(')) return false;
  h->ndim = 0;
  while (!accept(r, ')')) {
    if (h->ndim == 32 || !read_size(r, &h->shape[h->ndim++])) return false;
    if (!accept(r, ',')) {
      if (!accept(r, ')')) return false;
      break;
    }
  }
  h->has_shape = true;
  return true;
}

static bool parse_header_dict(const char *text, size_t length, npy_header *h) {
  dict_reader r = {text, text + length};
  if (!accept(&r, '{')) return false;
  while (!accept(&r, '}')) {
    char key[32];
    if (!read_quoted(&r, key, sizeof key) || !accept(&r, ':')) return false;
    if (strcmp(key, "descr") == 0) {
      if (!read_quoted(&r, h->descr, sizeof h->descr)) return false;
      h->has_descr = true;
    } else if (strcmp(key, "fortran_order") == 0) {
      if (read_word(&r, "True")) h->fortran_order = true;
      else if (!read_word(&r, "False")) return false;
    } else if (strcmp(key, "shape") == 0) {
      if (!read_shape(&r, h)) return false;
    } else {
      return false;
    }
    if (!accept(&r, ',')) {
      if (!accept(&r, '}')) return false;
      break;
    }
  }
  return h->has_descr && h->has_shape;
}

static size_t item_size(const char *descr) {
  if (strcmp(descr, "<f4") == 0) return 4;
  if (strcmp(descr, "<f8") == 0) return 8;
  if (strcmp(descr, "|u1") == 0 || strcmp(descr, "<u1") == 0 || strcmp(descr, "u1") == 0) return 1;
  return 0;
}

// Reads the magic, version and header; the data's offset, or 0 after a message.
static size_t read_npy_header(const char *path, const unsigned char *data, size_t size, npy_header *h) {
  if (size < 10 || memcmp(data, "\x93NUMPY", 6) != 0) {
    aert_error("%s: not a .npy file (it does not start with \\x93NUMPY)", path);
    return 0;
  }
  int major = data[6];
  size_t header_len, start;
  if (major == 1) {
    header_len = (size_t)data[8] | (size_t)data[9] << 8;
    start = 10;
  } else if (major == 2 || major == 3) {
    if (size < 12) goto truncated;
    header_len = (size_t)data[8] | (size_t)data[9] << 8 | (size_t)data[10] << 16 | (size_t)data[11] << 24;
    start = 12;
  } else {
    aert_error("%s: .npy format version %d is not supported (1, 2 or 3)", path, major);
    return 0;
  }
  if (header_len > NPY_MAX_HEADER) {
    aert_error("%s: the .npy header is %zu bytes long, more than the %d this reader takes", path, header_len,
               NPY_MAX_HEADER);
    return 0;
  }
  if (header_len > size - start) goto truncated;
  if (!parse_header_dict((const char *)data + start, header_len, h)) {
    aert_error("%s: the .npy header is malformed: %.*s", path, (int)(header_len > 200 ? 200 : header_len),
               (const char *)data + start);
    return 0;
  }
  return start + header_len;
truncated:
  aert_error("%s: truncated .npy file: the header is cut off (%zu bytes)", path, size);
  return 0;
}

size_t aert_npy_limit(const char *path, const unsigned char *head, size_t n, bool *declared) {
  npy_header h = {0};
  size_t offset = read_npy_header(path, head, n, &h), total = 1;
  if (!offset) return 0;
  size_t item = item_size(h.descr);
  for (int i = 0; i < h.ndim; i++)
    if (!aert_mul_size(total, h.shape[i], SIZE_MAX, &total)) return SIZE_MAX;  // the reader's cap bounds it
  if (!aert_mul_size(total, item ? item : 8, SIZE_MAX - offset, &total)) return SIZE_MAX;
  *declared = true;
  return offset + total;
}

static double element(const unsigned char *p, size_t item) {
  if (item == 1) return p[0] / 255.0;
  if (item == 4) {
    float f;
    memcpy(&f, p, 4);
    return f;
  }
  double v;
  memcpy(&v, p, 8);
  return v;
}

// The shape without its axes of 1, into out; its rank.
static int squeezed(int rank, const size_t *shape, size_t *out) {
  int n = 0;
  for (int i = 0; i < rank; i++)
    if (shape[i] != 1) out[n++] = shape[i];
  return n;
}

static void format_sizes(char *out, size_t size, int rank, const size_t *shape) {
  size_t used = (size_t)snprintf(out, size, "[");
  for (int i = 0; i < rank && used < size; i++) used += (size_t)snprintf(out + used, size - used, i ? ", %zu" : "%zu", shape[i]);
  if (used < size) snprintf(out + used, size - used, "]");
}

// A sample of several axes that the model reads in another shape (the same
// values in C order, axes of 1 aside) gets a warning naming both shapes.
static void warn_reshaped(const char *path, const npy_header *h, const aert_data_expect *e) {
  size_t model[3], mine[32], a[32], b[32];
  int rank = h->ndim - 1;
  if (e->rank < 1 || rank < 2) return;  // flat data has no shape to contradict
  for (int i = 0; i < e->rank; i++) model[i] = (size_t)e->shape[i];
  memcpy(mine, h->shape + 1, (size_t)rank * sizeof *mine);
  int na = squeezed(rank, mine, a), nb = squeezed(e->rank, model, b);
  if (na == nb && memcmp(a, b, (size_t)na * sizeof *a) == 0) return;
  char got[160], want[64];
  format_sizes(got, sizeof got, rank, mine);
  format_sizes(want, sizeof want, e->rank, model);
  if (e->rank == 1)
    aert_warning("%s: each sample is %s; it is flattened to the model's input %s", path, got, want);
  else
    aert_warning("%s: each sample is %s, read as the model's input %s in C order (reshaped, not transposed)%s", path,
                 got, want,
                 rank == 3 && mine[2] == model[0] ? "; if its last axis is the channels, make them the first: "
                                                     "numpy.transpose(x, (0, 3, 1, 2))"
                                                   : "");
}

aert_dataset *aert_parse_npy(const char *path, unsigned char **data, size_t size, const aert_data_expect *expect) {
  size_t expect_size = expect->size;
  const char *expect_what = expect->what;
  npy_header h = {0};
  size_t offset = read_npy_header(path, *data, size, &h);
  if (!offset) return NULL;
  size_t item = item_size(h.descr);
  if (!item) {
    aert_error("%s: dtype '%s' is not supported (float32 '<f4', float64 '<f8' or uint8 '|u1')", path, h.descr);
    return NULL;
  }
  if (h.fortran_order) {
    aert_error("%s: the array is in Fortran order; save it in C order (numpy.ascontiguousarray)", path);
    return NULL;
  }
  if (h.ndim < 1) {
    aert_error("%s: the array is a scalar; it needs a shape [n, ...] of n samples", path);
    return NULL;
  }
  size_t n = h.shape[0], sample = 1, total, bytes;
  bool fits = true;
  for (int i = 1; i < h.ndim; i++) fits = fits && aert_mul_size(sample, h.shape[i], SIZE_MAX, &sample);
  if (!fits || !aert_mul_size(n, sample, SIZE_MAX, &total) || !aert_mul_size(total, item, SIZE_MAX, &bytes)) {
    aert_error("%s: the .npy shape is too large", path);
    return NULL;
  }
  if (!aert_check_sample_size(path, sample, expect_size, expect_what)) return NULL;
  if (size - offset != bytes) {
    aert_error("%s: %s .npy file: the header says %zu samples of %zu values (%zu bytes of data), the file has %zu",
               path, size - offset < bytes ? "truncated" : "malformed", n, sample, bytes, size - offset);
    return NULL;
  }
  if (n == 0) {
    aert_error("%s: the array holds no samples", path);
    return NULL;
  }
  int rank = h.ndim - 1;
  size_t flat[1] = {sample};  // scalars per sample, or more than 3 axes: one axis
  bool keep_shape = rank >= 1 && rank <= 3;
  aert_real *values;
  const unsigned char *p = aert_values_room(path, data, offset, total, item, &values);
  if (!p) return NULL;
  for (size_t i = 0; i < total; i++) {  // in order: see aert_values_room
    double v = element(p + i * item, item);
    if (!isfinite(v) || !isfinite((aert_real)v)) {
      aert_error("%s: sample %zu, value %zu is %g, not a finite number", path, i / sample, i % sample, v);
      return NULL;
    }
    values[i] = (aert_real)v;
  }
  *data = NULL;
  warn_reshaped(path, &h, expect);
  return aert_dataset_adopt(path, n, keep_shape ? rank : 1, keep_shape ? h.shape + 1 : flat, values);
}

// ------------------------------------------------------------------ labels
// "x.npy" -> "x.labels.npy", "x.npy.gz" -> "x.labels.npy.gz"; NULL for other names.
static char *labels_path_for(const char *path) {
  size_t n = strlen(path);
  const char *suffix = n >= 7 && strcmp(path + n - 7, ".npy.gz") == 0 ? ".npy.gz"
                       : n >= 4 && strcmp(path + n - 4, ".npy") == 0  ? ".npy"
                                                                        : NULL;
  char *out = NULL;
  if (!suffix || asprintf(&out, "%.*s.labels%s", (int)(n - strlen(suffix)), path, suffix) < 0) return NULL;
  return out;
}

// A label's value from an integer or float item; false when it is not a whole number.
static bool label_value(const unsigned char *p, const char *descr, size_t item, double *out) {
  char kind = descr[1];
  if (kind == 'f') return *out = element(p, item), true;
  uint64_t u = 0;
  for (size_t b = 0; b < item; b++) u |= (uint64_t)p[b] << (8 * b);
  if (kind == 'i' && item < 8 && (u >> (8 * item - 1)) & 1) u |= ~(uint64_t)0 << (8 * item);  // sign
  *out = kind == 'i' ? (double)(int64_t)u : (double)u;
  return true;
}

static int32_t *parse_labels(const char *path, const unsigned char *data, size_t size, size_t n, const char *images) {
  npy_header h = {0};
  size_t offset = read_npy_header(path, data, size, &h);
  if (!offset) return NULL;
  const char *d = h.descr;
  bool known = strlen(d) == 3 && (d[0] == '<' || d[0] == '|') && strchr("iuf", d[1]) && strchr("1248", d[2]) &&
               !(d[1] == 'f' && d[2] != '4' && d[2] != '8');
  size_t item = known ? (size_t)(d[2] - '0') : 0;
  if (!known || h.fortran_order) {
    aert_error("%s: labels must be integers ('<i4', '<i8', '|u1', ...) in C order, not '%s'", path, d);
    return NULL;
  }
  if (h.ndim < 1 || h.ndim > 2 || (h.ndim == 2 && h.shape[1] != 1)) {
    aert_error("%s: labels are an array of shape [n] (or [n, 1]), one a sample", path);
    return NULL;
  }
  if (h.shape[0] != n) {
    aert_error("%s: %zu labels for the %zu samples of %s", path, h.shape[0], n, images);
    return NULL;
  }
  if (size - offset != n * item) {
    aert_error("%s: %s .npy file: the header says %zu labels (%zu bytes of data), the file has %zu", path,
               size - offset < n * item ? "truncated" : "malformed", n, n * item, size - offset);
    return NULL;
  }
  int32_t *labels = malloc((n ? n : 1) * sizeof *labels);
  if (!labels) {
    aert_error("%s: out of memory for %zu labels", path, n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) {
    double v;
    label_value(data + offset + i * item, d, item, &v);
    if (!(v >= 0 && v <= AERT_MAX_LABEL && v == (double)(int32_t)v)) {
      aert_error("%s: label %zu is %g, not an integer from 0 to %d", path, i, v, AERT_MAX_LABEL);
      free(labels);
      return NULL;
    }
    labels[i] = (int32_t)v;
  }
  return labels;
}

int32_t *aert_load_npy_labels(const char *path, size_t n, bool *failed) {
  *failed = false;
  char *labels_path = labels_path_for(path);
  struct stat st;
  if (!labels_path || stat(labels_path, &st) != 0) {
    free(labels_path);
    return NULL;
  }
  unsigned char *data = NULL;
  size_t size = 0;
  int32_t *labels = NULL;
  if (aert_read_file(labels_path, aert_npy_limit, &data, &size) == 0)
    labels = parse_labels(labels_path, data, size, n, path);
  *failed = labels == NULL;
  free(data);
  free(labels_path);
  return labels;
}
