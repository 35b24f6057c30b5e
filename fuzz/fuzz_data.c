// fuzz_data.c — libFuzzer harness for the data loaders (IDX plain and gzip,
// IDX labels, CSV, npy): the input is written to a temporary file and loaded
// with aert_dataset_load, as `train --data FILE` does. The first byte picks
// the file's name (and so the format), the second the sample size the model
// expects; the rest is the file.
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "aert.h"

static char dir[64];

static void write_bytes(const char *path, const void *data, size_t size, bool gzip) {
  if (gzip) {
    gzFile f = gzopen(path, "wb1");
    if (size) gzwrite(f, data, (unsigned)size);
    gzclose(f);
    return;
  }
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fwrite(data, 1, size, f);
  fclose(f);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc, (void)argv;
  const char *tmp = getenv("TMPDIR");
  snprintf(dir, sizeof dir, "%s/aec-fuzz-data-XXXXXX", tmp && strlen(tmp) < 30 ? tmp : "/tmp");
  if (!mkdtemp(dir)) abort();
  // The runtime's messages go to /dev/null; libFuzzer and the sanitizers keep
  // the real standard error (libFuzzer copied the FILE pointer at start-up).
  if (!getenv("AEC_FUZZ_VERBOSE")) stderr = fopen("/dev/null", "w");
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > 1 << 20) return -1;
  static const char *const names[] = {"a-images-idx3-ubyte", "b-images-idx3-ubyte.gz", "c.csv", "d.npy",
                                      "e.bin", "f.csv.gz", "g-images-idx3-ubyte", "h.npy.gz"};
  static const size_t sizes[] = {784, 1, 2, 3, 4, 12, 28, 6};
  unsigned mode = data[0] % 8;
  size_t expect = sizes[data[1] % 8];
  data += 2, size -= 2;
  char path[128], labels[128];
  snprintf(path, sizeof path, "%s/%s", dir, names[mode]);
  labels[0] = '\0';
  if (mode == 6) {
    // A valid images file of 3 samples of `expect` bytes; the input is its labels file.
    size_t n = 3;
    unsigned char *images = calloc(16 + n * expect, 1);
    images[2] = 0x08, images[3] = 3;
    images[7] = (unsigned char)n;
    size_t rows = expect == 784 ? 28 : 1, cols = expect == 784 ? 28 : expect;
    images[11] = (unsigned char)rows, images[15] = (unsigned char)cols;
    write_bytes(path, images, 16 + n * expect, false);
    free(images);
    snprintf(labels, sizeof labels, "%s/g-labels-idx1-ubyte", dir);
    write_bytes(labels, data, size, false);
  } else {
    bool gzip = (mode == 1 || mode == 5 || mode == 7) && size % 2 == 0;  // else raw bytes named .gz
    write_bytes(path, data, size, gzip);
  }
  aert_dataset *d = aert_dataset_load(path, expect);
  if (d) {
    // Every value and label must be readable.
    volatile double sum = 0;
    for (size_t i = 0; i < d->n * d->sample_size; i++) sum += d->x[i];
    if (d->labels)
      for (size_t i = 0; i < d->n; i++) sum += d->labels[i];
    aert_dataset_free(d);
  }
  unlink(path);
  if (labels[0]) unlink(labels);
  return 0;
}
