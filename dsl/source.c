// source.c — loading `.ae` texts. The text is kept whole and NUL-terminated
// so that the lexer can use the terminator as its sentinel and diagnostics
// can echo any line; NUL bytes inside it are the lexer's business.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

// What a file that is not a regular one is, in words; NULL for a regular file.
static const char *not_regular(mode_t mode) {
  if (S_ISREG(mode)) return NULL;
  if (S_ISDIR(mode)) return strerror(EISDIR);
  if (S_ISCHR(mode)) return "a character device, not a regular file";
  if (S_ISBLK(mode)) return "a block device, not a regular file";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe), not a regular file";
  return "not a regular file";
}

// Only a regular file is read: /dev/zero would never end, and a FIFO is
// opened without blocking, so one with no writer does not hang aec.
Source *source_load(const char *path) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  struct stat st;
  const char *problem = fd < 0 ? strerror(errno) : fstat(fd, &st) != 0 ? strerror(errno) : not_regular(st.st_mode);
  FILE *file = problem ? NULL : fdopen(fd, "rb");
  if (!file) {
    diag_error_plain("cannot read '%s': %s", path, problem ? problem : strerror(errno));
    if (fd >= 0) close(fd);
    return NULL;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  size_t length = 0, capacity = 1 << 16;
  char *text = checked(malloc(capacity));
  for (;;) {
    if (capacity - length < 2) text = checked(realloc(text, capacity *= 2));
    size_t got = fread(text + length, 1, capacity - length - 1, file);
    length += got;
    if (got == 0 || length > MAX_SOURCE_SIZE) break;
  }
  problem = ferror(file) ? strerror(errno) : length > MAX_SOURCE_SIZE ? "file too large" : NULL;
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
