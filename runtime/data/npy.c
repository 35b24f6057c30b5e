// npy.c — NumPy .npy files (format versions 1–3): little-endian float32,
// float64 or uint8 (scaled by 1/255), C order, shape [n, ...].
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

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

aert_dataset *aert_parse_npy(const char *path, unsigned char **data, size_t size, size_t expect_size,
                             const char *expect_what) {
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
  return aert_dataset_adopt(path, n, keep_shape ? rank : 1, keep_shape ? h.shape + 1 : flat, values);
}
