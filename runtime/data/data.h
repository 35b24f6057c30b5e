// data.h — data sets (runtime/data/), above core: aert_dataset_load
// (aert.h) names a data set and picks a parser (load.c); the IDX, CSV and
// .npy parsers build on dataset.c's helpers.
#ifndef AERT_DATA_H
#define AERT_DATA_H

#include "core.h"

// ---------------------------------------------------------- for the layers above
// load.c: aert_dataset_load with the model's side of a size mismatch spelled
// out: `expect_what` like "the model's input has 784 ([1, 28, 28])". NULL:
// "the model expects 784 values". expect_size 0 accepts any size.
aert_dataset *aert_dataset_load_described(const char *spec, size_t expect_size, const char *expect_what);
// What the model expects of a data set, for aert_dataset_load_expecting.
typedef struct aert_data_expect {
  size_t size;       // the sample size; 0 accepts any
  const char *what;  // "the model's input has 784 ([1, 28, 28])", or NULL
  int rank;          // the model's input shape when known (rank 0: not): a folder of images takes
  int shape[3];      // its channels from it; a .npy of another shape is said to be reshaped
  double scale;      // --scale: every value is divided by it after reading (0: as read)
} aert_data_expect;
aert_dataset *aert_dataset_load_expecting(const char *spec, const aert_data_expect *expect);
// load.c: label names when the data set is Fashion-MNIST's (*count of them), else NULL.
const char *const *aert_label_names(const aert_dataset *data, int *count);
// dataset.c: moves round(fraction * n) samples of `d`, chosen by a
// permutation keyed by `seed` and kept in their order, into a new data set
// (named "<path> (validation)"); `d` keeps the others, in order. At least one
// sample stays on each side. NULL after a message.
aert_dataset *aert_dataset_split(aert_dataset *d, double fraction, uint64_t seed);
// classes.c: a set of classes as written on the command line ("0-7,9": labels
// and ranges, comma-separated), as member[AERT_MAX_LABEL + 1] (free it);
// NULL after a message naming `option` and what is wrong.
bool *aert_parse_classes(const char *option, const char *text);
// classes.c: keeps the samples whose label is a member (in order); false after
// a message when the data set has no labels or none is a member.
bool aert_dataset_keep_classes(aert_dataset *data, const bool *member, const char *option, const char *text);

// ---------------------------------------------------------- dataset.c, for the parsers
// How much a data file may hold, after decompression. A file is read head
// first (AERT_HEAD_BYTES, or less when the file is shorter); what its header
// declares bounds the rest, and no file is read past that by more than
// AERT_TRAILING_MARGIN (enough to say how much follows), nor past
// AERT_MAX_DATA_BYTES. A CSV file declares nothing: AERT_MAX_CSV_BYTES is
// its bound. So a gzip bomb, /dev/zero or a header that understates its data
// cost at most the bound in memory (docs/robustness.md).
#define AERT_HEAD_BYTES ((size_t)1 << 17)
#define AERT_TRAILING_MARGIN ((size_t)1 << 16)
#define AERT_MAX_DATA_BYTES ((size_t)16 << 30)
#define AERT_MAX_CSV_BYTES ((size_t)1 << 30)
// The most bytes the file `path` may hold, given its first n bytes (its
// header), with *declared set when its header says so (clear for a cap); 0
// after a message when the head already shows the file unusable.
typedef size_t aert_size_limit(const char *path, const unsigned char *head, size_t n, bool *declared);
// Reads a whole regular file, plain or gzip, into memory (with one spare zero
// byte after the data), no further than `limit` allows (NULL:
// AERT_MAX_DATA_BYTES). 0, or -1 after a message.
int aert_read_file(const char *path, aert_size_limit *limit, unsigned char **data, size_t *size);
// The largest label a CSV file may give (so at most 65536 classes: the probe's
// weights and a plot's legend grow with them). IDX labels are bytes.
#define AERT_MAX_LABEL 65535
// idx.c, npy.c: the size the header at the start of an IDX or .npy file declares.
size_t aert_idx_limit(const char *path, const unsigned char *head, size_t n, bool *declared);
size_t aert_npy_limit(const char *path, const unsigned char *head, size_t n, bool *declared);
// A dataset of n samples of `rank`/`shape`; x (and labels when asked) allocated.
aert_dataset *aert_dataset_new(const char *path, size_t n, int rank, const size_t *shape, bool with_labels);
// The same around `values` (n samples, malloc'd), which the dataset owns from
// the call on, failed or not.
aert_dataset *aert_dataset_adopt(const char *path, size_t n, int rank, const size_t *shape, aert_real *values);
// Makes the file's buffer (*buffer, from aert_read_file) room for `count`
// aert_reals, so that a parser converts the file's values where they lie
// instead of beside a second copy: the count values of `item` bytes at
// *buffer + offset move to the end of that room when an aert_real is wider
// than an item, to its start otherwise. Converting them in order, each value
// read before its aert_real is written, never overwrites one not read yet.
// Sets *values to the room and returns the values' new place; NULL after a
// message (out of memory), *buffer still the caller's.
const unsigned char *aert_values_room(const char *path, unsigned char **buffer, size_t offset, size_t count,
                                      size_t item, aert_real **values);
// Checks a sample size against the model's and prints the message when they differ.
bool aert_check_sample_size(const char *path, size_t got, size_t expect, const char *expect_what);

// ---------------------------------------------------------- the parsers, for load.c
// Per-format parsers, given the file's bytes (data[size] is a zero byte). The
// IDX and .npy parsers convert the values inside the buffer (aert_values_room)
// and hand it to the dataset: on success *data is NULL, the buffer theirs.
aert_dataset *aert_parse_idx(const char *path, unsigned char **data, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_csv(const char *path, const char *text, size_t size, size_t expect_size,
                             const char *expect_what);
aert_dataset *aert_parse_npy(const char *path, unsigned char **data, size_t size, const aert_data_expect *expect);
// npy.c: the labels of X.npy from X.labels.npy beside it (X.labels.npy.gz for
// X.npy.gz), integers from 0 to AERT_MAX_LABEL, one a sample; NULL (no
// message) when there is no such file, *failed set after a message when it is
// unusable or holds another number of labels.
int32_t *aert_load_npy_labels(const char *path, size_t n, bool *failed);
// png.c: a folder of PNG images ("dir/"), gray or RGB, as [channels, height,
// width] in [0, 1]; class sub-folders give labels (their names sorted).
aert_dataset *aert_load_png_folder(const char *path, const aert_data_expect *expect);
// idx.c: labels of an IDX labels file for n images; NULL (no message) when
// the file does not exist, and *failed set after a message when it is unusable.
int32_t *aert_load_idx_labels(const char *images_path, size_t n, bool *failed);

#endif
