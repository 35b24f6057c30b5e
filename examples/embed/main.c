// main.c — a program of your own that uses a trained autoencoder: the model
// of examples/simple.ae as a C library (`aec simple.ae --lib -o simple`
// writes simple.h and simple.c; README.md builds it). It reads samples from
// a CSV file (a row each, SIMPLE_INPUT_SIZE values), prints each one's code
// and reconstruction error, and with a third argument writes the codes as a
// .npy file, float32 [n, SIMPLE_CODE_SIZE], as `./simple encode -o codes.npy`.
//
//   usage: embed CHECKPOINT SAMPLES.csv [CODES.npy]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "simple.h"

enum { MOST_SAMPLES = 1000 };

// Up to `most` rows of `size` comma-separated numbers; the number read, or -1.
static int read_csv(const char *path, float *x, int most, int size) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  int n = 0;
  while (n < most) {
    int j = 0;
    for (; j < size; j++)
      if (fscanf(f, " %f ,", &x[(size_t)n * size + j]) != 1) break;
    if (j < size) break;
    n++;
  }
  fclose(f);
  return n;
}

// codes[n * size] as a .npy file: float32, C order, shape (n, size).
static int write_npy(const char *path, const float *codes, int n, int size) {
  char header[128];
  int length = snprintf(header, sizeof header, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", n, size);
  while ((10 + length + 1) % 64 != 0) header[length++] = ' ';
  header[length++] = '\n';
  unsigned char preamble[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)length, (unsigned char)(length >> 8)};
  FILE *f = fopen(path, "wb");
  if (!f) return -1;
  int ok = fwrite(preamble, 1, 10, f) == 10 && fwrite(header, 1, (size_t)length, f) == (size_t)length &&
           fwrite(codes, sizeof *codes, (size_t)n * size, f) == (size_t)n * size;
  return fclose(f) == 0 && ok ? 0 : -1;
}

int main(int argc, char **argv) {
  if (argc < 3 || argc > 4) {
    fprintf(stderr, "usage: %s CHECKPOINT SAMPLES.csv [CODES.npy]\n", argv[0]);
    return 2;
  }
  char err[512];
  simple_t *model = simple_open(argv[1], err, sizeof err);
  if (!model) {
    fprintf(stderr, "embed: %s\n", err);
    return 1;
  }
  float *x = malloc(sizeof(float) * MOST_SAMPLES * SIMPLE_INPUT_SIZE);
  float *codes = malloc(sizeof(float) * MOST_SAMPLES * SIMPLE_CODE_SIZE);
  float *scores = malloc(sizeof(float) * MOST_SAMPLES);
  int n = x && codes && scores ? read_csv(argv[2], x, MOST_SAMPLES, SIMPLE_INPUT_SIZE) : -1;
  int status = 1;
  if (n < 0) {
    fprintf(stderr, "embed: cannot read %s\n", argv[2]);
  } else if (simple_encode(model, x, n, codes) != 0 || simple_score(model, x, n, scores) != 0) {
    fprintf(stderr, "embed: %s\n", simple_error(model));
  } else {
    printf("%d samples of %d values, codes of %d\n", n, SIMPLE_INPUT_SIZE, SIMPLE_CODE_SIZE);
    for (int i = 0; i < n && i < 5; i++) {
      printf("sample %d: score %.6f, code [", i, scores[i]);
      for (int j = 0; j < SIMPLE_CODE_SIZE && j < 4; j++) printf("%s%.5f", j ? ", " : "", codes[(size_t)i * SIMPLE_CODE_SIZE + j]);
      printf("%s]\n", SIMPLE_CODE_SIZE > 4 ? ", ..." : "");
    }
    status = 0;
    if (argc == 4 && write_npy(argv[3], codes, n, SIMPLE_CODE_SIZE) != 0) {
      fprintf(stderr, "embed: cannot write %s\n", argv[3]);
      status = 1;
    } else if (argc == 4) {
      printf("wrote %s\n", argv[3]);
    }
  }
  free(x), free(codes), free(scores);
  simple_close(model);
  return status;
}
