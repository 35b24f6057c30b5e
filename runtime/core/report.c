// report.c — the program's name and the one-line messages on stderr.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core.h"

static char program_name[128] = "aert";

void aert_set_program(const char *argv0) {
  if (!argv0 || !*argv0) return;
  const char *slash = strrchr(argv0, '/');
  snprintf(program_name, sizeof program_name, "%s", slash ? slash + 1 : argv0);
}

const char *aert_program(void) { return program_name; }

static void report(const char *kind, const char *fmt, va_list ap) {
  char line[2048];
  vsnprintf(line, sizeof line, fmt, ap);
  fprintf(stderr, "%s: %s%s\n", program_name, kind, line);
  fflush(stderr);
}

void aert_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report("error: ", fmt, ap);
  va_end(ap);
}

void aert_warning(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report("warning: ", fmt, ap);
  va_end(ap);
}

void aert_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  report("note: ", fmt, ap);
  va_end(ap);
}

double aert_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
