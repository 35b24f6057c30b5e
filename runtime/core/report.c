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

// aert_capture_begin's buffer on this thread, or NULL: messages go to stderr.
static _Thread_local char *capture_buffer;
static _Thread_local size_t capture_size;
static _Thread_local bool capture_has_error;

void aert_capture_begin(char *buffer, size_t size) {
  capture_buffer = size ? buffer : NULL, capture_size = size, capture_has_error = false;
  if (capture_buffer) capture_buffer[0] = '\0';
}

bool aert_capture_end(void) {
  bool had = capture_has_error;
  capture_buffer = NULL, capture_size = 0, capture_has_error = false;
  return had;
}

static void report(const char *kind, const char *fmt, va_list ap) {
  char line[2048];
  vsnprintf(line, sizeof line, fmt, ap);
  if (capture_buffer) {  // the first error is kept; notes and warnings are dropped
    if (kind[0] == 'e' && !capture_has_error) snprintf(capture_buffer, capture_size, "%s", line);
    capture_has_error |= kind[0] == 'e';
    return;
  }
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
