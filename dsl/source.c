// source.c — loading `.ae` texts. The text is kept whole and NUL-terminated
// so that the lexer can use the terminator as its sentinel and diagnostics
// can echo any line; NUL bytes inside it are the lexer's business.
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"

// Columns are ints, so a larger file could not be located exactly.
enum { MAX_SOURCE_SIZE = 1 << 30 };

static void *checked(void *pointer) {
  if (!pointer) {
    fputs("aec: out of memory\n", stderr);
    exit(EXIT_FAILURE);
  }
  return pointer;
}

static Source *new_source(const char *path, char *text, size_t length) {
  Source *source = checked(malloc(sizeof(Source)));
  source->path = checked(strdup(path));
  source->text = text;
  source->length = length;
  size_t lines = 1;
  for (const char *c = text; (c = memchr(c, '\n', length - (size_t)(c - text))) != NULL; c++) lines++;
  source->line_start = checked(malloc(lines * sizeof(size_t)));
  source->n_lines = 0;
  source->line_start[source->n_lines++] = 0;
  for (size_t i = 0; i < length; i++)
    if (text[i] == '\n') source->line_start[source->n_lines++] = i + 1;
  return source;
}

Source *source_load(const char *path) {
  FILE *file = fopen(path, "rb");
  if (!file) {
    diag_error_plain("cannot read '%s': %s", path, strerror(errno));
    return NULL;
  }
  size_t length = 0, capacity = 1 << 16;
  char *text = checked(malloc(capacity));
  for (;;) {
    if (capacity - length < 2) text = checked(realloc(text, capacity *= 2));
    size_t got = fread(text + length, 1, capacity - length - 1, file);
    length += got;
    if (got == 0 || length > MAX_SOURCE_SIZE) break;
  }
  const char *problem = ferror(file) ? strerror(errno) : length > MAX_SOURCE_SIZE ? "file too large" : NULL;
  fclose(file);
  if (problem) {
    diag_error_plain("cannot read '%s': %s", path, problem);
    free(text);
    return NULL;
  }
  text[length] = '\0';
  return new_source(path, text, length);
}

Source *source_from_string(const char *path, const char *text) { return source_from_bytes(path, text, strlen(text)); }

Source *source_from_bytes(const char *path, const char *bytes, size_t length) {
  char *copy = checked(malloc(length + 1));
  memcpy(copy, bytes, length);
  copy[length] = '\0';
  return new_source(path, copy, length);
}

void source_free(Source *source) {
  if (!source) return;
  free(source->line_start);
  free((char *)source->path);
  free(source->text);
  free(source);
}
