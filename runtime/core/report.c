// report.c — the program's name and the one-line messages on stderr.
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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

void aert_progress(const char *what, size_t done, size_t total) {
  static double last, start;
  static bool shown;
  static int tty = -1;
  if (tty < 0) tty = isatty(2);
  double now = aert_now();
  if (done == 0) start = now;
  if (!tty) return;
  if (done >= total) {
    if (shown) fputs("\r\033[K", stderr), fflush(stderr);
    shown = false;
    return;
  }
  if (now - last < 0.1 || now - start < 0.5) return;  // nothing for work that ends soon
  last = now, shown = true;
  fprintf(stderr, "\r%s: %zu/%zu (%.0f%%)\033[K", what, done, total, 100.0 * (double)done / (double)(total ? total : 1));
  fflush(stderr);
}
