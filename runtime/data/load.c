// load.c — aert_dataset_load: names a data set ("fashion-mnist:train", a
// path, or a folder of PNG images "dir/"), reads its bytes (dataset.c) and
// hands them to the IDX, CSV or .npy parser (a .npy's labels from
// X.labels.npy beside it), divides by --scale; and the names of the labels
// (Fashion-MNIST's, or a folder's classes).
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data.h"

#define FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

static bool has_suffix(const char *s, const char *suffix) {
  size_t a = strlen(s), b = strlen(suffix);
  return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

static bool has_suffix_gz(const char *s, const char *suffix) {
  char buf[32];
  snprintf(buf, sizeof buf, "%s.gz", suffix);
  return has_suffix(s, suffix) || has_suffix(s, buf);
}

// "fashion-mnist:train" -> the Debian package's file; NULL (after a message)
// for an unknown split; a copy of spec otherwise.
static char *resolve_spec(const char *spec) {
  const char *prefix = "fashion-mnist:";
  char *path = NULL;
  if (strncmp(spec, prefix, strlen(prefix)) != 0) return strdup(spec);
  const char *split = spec + strlen(prefix);
  const char *file = strcmp(split, "train") == 0 ? "train" : strcmp(split, "test") == 0 ? "t10k" : NULL;
  if (!file) {
    aert_error("%s: unknown data set (fashion-mnist:train or fashion-mnist:test)", spec);
    return NULL;
  }
  const char *dir = getenv("AERT_FASHION_MNIST_DIR");
  if (asprintf(&path, "%s/%s-images-idx3-ubyte.gz", dir && *dir ? dir : FASHION_MNIST_DIR, file) < 0) return NULL;
  struct stat st;
  if (stat(path, &st) != 0) {
    aert_error("%s: not found; %s needs the Debian package dataset-fashion-mnist "
               "(apt-get install dataset-fashion-mnist)", path, spec);
    free(path);
    return NULL;
  }
  return path;
}

static bool is_idx_magic(const unsigned char *d, size_t size) {
  return size >= 4 && d[0] == 0 && d[1] == 0 && d[2] == 0x08;
}

typedef enum data_format { FORMAT_UNKNOWN, FORMAT_CSV, FORMAT_NPY, FORMAT_IDX } data_format;

// The format, from the name and the first bytes.
static data_format format_of(const char *path, const unsigned char *data, size_t size) {
  bool npy = size >= 6 && memcmp(data, "\x93NUMPY", 6) == 0;
  if (has_suffix_gz(path, ".csv") || has_suffix_gz(path, ".txt")) return FORMAT_CSV;
  if (has_suffix_gz(path, ".npy") || npy) return FORMAT_NPY;
  if (strstr(path, "idx") || strstr(path, "ubyte") || is_idx_magic(data, size)) return FORMAT_IDX;
  return FORMAT_UNKNOWN;
}

// aert_read_file's bound: what the header declares, AERT_MAX_CSV_BYTES for CSV.
static size_t format_limit(const char *path, const unsigned char *head, size_t n, bool *declared) {
  switch (format_of(path, head, n)) {
  case FORMAT_CSV: return AERT_MAX_CSV_BYTES;
  case FORMAT_NPY: return aert_npy_limit(path, head, n, declared);
  case FORMAT_IDX: return aert_idx_limit(path, head, n, declared);
  default: break;
  }
  aert_error("%s: unknown data format (expected an IDX file, .csv or .npy)", path);
  return 0;
}

// A CSV file of whole numbers beyond 1 (pixels from 0 to 255, counts) is
// read as it is: the warning says so, and how to scale it.
static void warn_unscaled_csv(const aert_dataset *d) {
  aert_real most = 0;
  size_t total = d->n * d->sample_size;
  for (size_t i = 0; i < total; i++) {
    aert_real v = d->x[i];
    if (v < 0 || (double)v != floor((double)v)) return;  // not whole numbers: features, as they are
    if (v > most) most = v;
  }
  if (most > 1)
    aert_warning("%s: the values are whole numbers up to %g, read as they are (not scaled to [0, 1]); pixels from 0 "
                 "to 255 want --scale 255", d->path, (double)most);
}

// `path` names a folder: "dir/" reads its PNG images; without the slash it
// is refused as any other directory, with the hint.
static bool is_folder_spec(const char *path, bool *refused) {
  struct stat st;
  size_t n = strlen(path);
  *refused = false;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return false;
  if (n && path[n - 1] == '/') return true;
  aert_error("%s: is a directory, not a data file (a folder of PNG images is named with a trailing slash: %s/)", path,
             path);
  *refused = true;
  return false;
}

aert_dataset *aert_dataset_load_expecting(const char *spec, const aert_data_expect *expect) {
  if (!spec || !*spec) {
    aert_error("no data file given");
    return NULL;
  }
  char *path = resolve_spec(spec);
  if (!path) return NULL;
  unsigned char *data = NULL;
  size_t size = 0;
  aert_dataset *d = NULL;
  data_format format = FORMAT_UNKNOWN;
  bool refused = false;
  if (is_folder_spec(path, &refused)) {
    d = aert_load_png_folder(path, expect);
  } else if (!refused && aert_read_file(path, format_limit, &data, &size) == 0) {
    switch (format = format_of(path, data, size)) {
    case FORMAT_CSV: d = aert_parse_csv(path, (const char *)data, size, expect->size, expect->what); break;
    case FORMAT_NPY: d = aert_parse_npy(path, &data, size, expect); break;
    case FORMAT_IDX: d = aert_parse_idx(path, &data, size, expect->size, expect->what); break;
    default: aert_error("%s: unknown data format (expected an IDX file, .csv or .npy)", path);
    }
  }
  free(data);
  if (d && format == FORMAT_NPY && !d->labels) {
    bool failed = false;
    d->labels = aert_load_npy_labels(path, d->n, &failed);
    if (failed) aert_dataset_free(d), d = NULL;
  }
  if (d && expect->scale > 0 && expect->scale != 1) {
    size_t total = d->n * d->sample_size;
    for (size_t i = 0; i < total; i++) d->x[i] = (aert_real)(d->x[i] / expect->scale);
  }
  if (d && format == FORMAT_CSV) warn_unscaled_csv(d);
  free(path);
  return d;
}

aert_dataset *aert_dataset_load_described(const char *spec, size_t expect_size, const char *expect_what) {
  aert_data_expect expect = {.size = expect_size, .what = expect_what};
  return aert_dataset_load_expecting(spec, &expect);
}

aert_dataset *aert_dataset_load(const char *spec, size_t expect_size) {
  return aert_dataset_load_described(spec, expect_size, NULL);
}

static const char *const fashion_names[] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                            "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

const char *const *aert_label_names(const aert_dataset *data, int *count) {
  if (data->class_names) {
    *count = data->n_classes;
    return (const char *const *)data->class_names;
  }
  bool fashion = data->path && strstr(data->path, "fashion-mnist") != NULL;
  *count = fashion ? 10 : 0;
  return fashion ? fashion_names : NULL;
}
