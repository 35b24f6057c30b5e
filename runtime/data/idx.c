// idx.c — IDX files (LeCun's MNIST format): a big-endian header, then u8
// data. Images are scaled to [0, 1]; labels come from the matching
// "*-labels-idx1-*" file when there is one.
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

#define IDX_IMAGES_MAGIC 0x00000803u
#define IDX_LABELS_MAGIC 0x00000801u
#define IDX_U8 0x08

static uint32_t read_be32(const unsigned char *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

// Reads the header: dims[0..ndim). Returns the header's byte length, 0 after a message.
static size_t read_idx_header(const char *path, const unsigned char *data, size_t size, uint32_t *magic,
                              size_t *dims, int *ndim) {
  if (size < 4) {
    aert_error("%s: truncated IDX file: %zu bytes, shorter than its 4-byte magic number", path, size);
    return 0;
  }
  *magic = read_be32(data);
  *ndim = data[3];
  if (data[0] != 0 || data[1] != 0 || data[2] != IDX_U8 || *ndim < 1 || *ndim > 4) {
    aert_error("%s: not an IDX file of bytes: magic number 0x%08x (expected 0x%08x for images, 0x%08x for labels)",
               path, *magic, IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC);
    return 0;
  }
  size_t header = 4 + 4 * (size_t)*ndim;
  if (size < header) {
    aert_error("%s: truncated IDX file: the header needs %zu bytes, the file has %zu", path, header, size);
    return 0;
  }
  for (int i = 0; i < *ndim; i++) dims[i] = read_be32(data + 4 + 4 * i);
  return header;
}

size_t aert_idx_limit(const char *path, const unsigned char *head, size_t n, bool *declared) {
  uint32_t magic;
  size_t dims[4], total;
  int ndim;
  size_t header = read_idx_header(path, head, n, &magic, dims, &ndim);
  if (!header) return 0;
  size_t product = 1;
  for (int i = 0; i < ndim; i++)
    if (!aert_mul_size(product, dims[i], SIZE_MAX - header, &product)) return SIZE_MAX;  // the reader's cap bounds it
  *declared = true;
  return total = header + product;
}

// Checks that the data after the header is exactly `need` bytes.
static bool check_idx_length(const char *path, size_t have, size_t need, const char *what) {
  if (have < need) {
    aert_error("%s: truncated IDX file: the header says %s (%zu bytes of data), the file has %zu", path, what,
               need, have);
    return false;
  }
  if (have > need) {
    aert_error("%s: the header says %s (%zu bytes of data), but %zu bytes follow it", path, what, need, have);
    return false;
  }
  return true;
}

aert_dataset *aert_parse_idx(const char *path, unsigned char **data, size_t size, size_t expect_size,
                             const char *expect_what) {
  uint32_t magic;
  size_t dims[4];
  int ndim;
  size_t header = read_idx_header(path, *data, size, &magic, dims, &ndim);
  if (!header) return NULL;
  if (ndim == 1) {
    aert_error("%s: is an IDX labels file (magic 0x%08x), not images (magic 0x%08x)", path, magic,
               IDX_IMAGES_MAGIC);
    return NULL;
  }
  size_t n = dims[0], sample = 1, total;
  bool fits = true;
  for (int i = 1; i < ndim; i++) fits = fits && aert_mul_size(sample, dims[i], SIZE_MAX, &sample);
  if (!fits || !aert_mul_size(n, sample, SIZE_MAX, &total)) {
    aert_error("%s: the IDX header's dimensions are too large (%zu samples)", path, n);
    return NULL;
  }
  char what[128];
  snprintf(what, sizeof what, "%zu samples of %zu values", n, sample);
  if (!aert_check_sample_size(path, sample, expect_size, expect_what)) return NULL;
  if (!check_idx_length(path, size - header, total, what)) return NULL;
  if (n == 0) {
    aert_error("%s: the IDX file holds no samples", path);
    return NULL;
  }
  bool failed = false;
  int32_t *labels = aert_load_idx_labels(path, n, &failed);
  if (failed) return NULL;
  aert_real *values;
  const unsigned char *pixels = aert_values_room(path, data, header, total, 1, &values);
  if (!pixels) {
    free(labels);
    return NULL;
  }
  // In order, each pixel read before its value is written: see aert_values_room.
  for (size_t i = 0; i < total; i++) values[i] = (aert_real)pixels[i] / (aert_real)255;
  *data = NULL;
  aert_dataset *d = aert_dataset_adopt(path, n, ndim - 1, dims + 1, values);
  if (!d) {
    free(labels);
    return NULL;
  }
  d->labels = labels;
  return d;
}

// "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz"; NULL when
// the name has no "images-idx3".
static char *labels_path_for(const char *images_path) {
  const char *key = "images-idx3", *replacement = "labels-idx1";
  const char *at = strstr(images_path, key);
  if (!at) return NULL;
  char *path = NULL;
  if (asprintf(&path, "%.*s%s%s", (int)(at - images_path), images_path, replacement, at + strlen(key)) < 0)
    return NULL;
  return path;
}

static int32_t *parse_idx_labels(const char *path, const unsigned char *data, size_t size, size_t n) {
  uint32_t magic;
  size_t dims[4];
  int ndim;
  size_t header = read_idx_header(path, data, size, &magic, dims, &ndim);
  if (!header) return NULL;
  if (magic != IDX_LABELS_MAGIC) {
    aert_error("%s: not an IDX labels file: magic number 0x%08x (expected 0x%08x)", path, magic, IDX_LABELS_MAGIC);
    return NULL;
  }
  if (dims[0] != n) {
    aert_error("%s: has %zu labels for %zu images", path, dims[0], n);
    return NULL;
  }
  char what[64];
  snprintf(what, sizeof what, "%zu labels", n);
  if (!check_idx_length(path, size - header, n, what)) return NULL;
  int32_t *labels = malloc(n * sizeof *labels);
  if (!labels) {
    aert_error("%s: out of memory for %zu labels", path, n);
    return NULL;
  }
  for (size_t i = 0; i < n; i++) labels[i] = data[header + i];
  return labels;
}

int32_t *aert_load_idx_labels(const char *images_path, size_t n, bool *failed) {
  *failed = false;
  char *path = labels_path_for(images_path);
  struct stat st;
  if (!path || stat(path, &st) != 0) {
    free(path);
    return NULL;
  }
  unsigned char *data = NULL;
  size_t size = 0;
  int32_t *labels = NULL;
  if (aert_read_file(path, aert_idx_limit, &data, &size) == 0) labels = parse_idx_labels(path, data, size, n);
  *failed = labels == NULL;
  free(data);
  free(path);
  return labels;
}
