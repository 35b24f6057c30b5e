// diag.c — errors and notes, printed like a C compiler's:
//
//   examples/bad.ae:3:19: error: expected ')' but found '->'
//       3 | net e = dense(128 -> dense(3)
//         |                   ^
//
// The echoed line has its tabs expanded and unprintable bytes shown as '?',
// so the caret lines up in any terminal; a long line is cut to a window
// around the column, marked with "...".
#include <stdarg.h>
#include <string.h>

#include "dsl.h"

enum { LINE_WINDOW = 120, TAB_STOP = 8 };

static FILE *output;    // NULL: stderr
static int error_count;  // stops at DIAG_MAX_ERRORS + 1, meaning "too many"

static FILE *out(void) { return output ? output : stderr; }

void diag_set_output(FILE *out) { output = out; }
void diag_reset(void) { error_count = 0; }
int diag_error_count(void) { return error_count; }

// Counts one more error; false when it must not be printed because the
// limit has been passed (the first such error says so, once).
static bool count_error(void) {
  if (error_count > DIAG_MAX_ERRORS) return false;
  if (error_count++ < DIAG_MAX_ERRORS) return true;
  fputs("aec: too many errors, stopping\n", out());
  return false;
}

// (Here rather than in source.c, which reports through this file.)
const char *source_line_text(const Source *source, int line, size_t *length) {
  if (line < 1 || line > source->n_lines) {
    *length = 0;
    return source->text + source->length;
  }
  const char *text = source->text + source->line_start[line - 1], *end = source->text + source->length;
  const char *newline = memchr(text, '\n', (size_t)(end - text));
  size_t n = (size_t)((newline ? newline : end) - text);
  if (n > 0 && text[n - 1] == '\r') n--;
  *length = n;
  return text;
}

static void show_line(Loc loc) {
  FILE *f = out();
  size_t length;
  const char *text = source_line_text(loc.source, loc.line, &length);
  size_t column = loc.col > 0 ? (size_t)loc.col - 1 : 0;
  if (column > length) column = length;

  size_t from = 0, to = length;
  if (length > LINE_WINDOW) {
    from = column > LINE_WINDOW / 2 ? column - LINE_WINDOW / 2 : 0;
    if (from > length - LINE_WINDOW) from = length - LINE_WINDOW;
    to = from + LINE_WINDOW;
  }

  char number[16];
  int width = snprintf(number, sizeof number, "%d", loc.line);
  if (width < 4) width = 4;
  fprintf(f, " %*s | %s", width, number, from > 0 ? "..." : "");
  int display = 0, caret = 0;
  for (size_t i = from; i < to; i++) {
    unsigned char c = text[i];
    if (i == column) caret = display;
    if (c == '\t') {
      int spaces = TAB_STOP - display % TAB_STOP;
      fprintf(f, "%*s", spaces, "");
      display += spaces;
    } else {
      fputc(c >= ' ' && c < 0x7f ? c : '?', f);
      display++;
    }
  }
  if (column == to) caret = display;
  fprintf(f, "%s\n", to < length ? "..." : "");
  fprintf(f, " %*s | %*s^\n", width, "", caret + (from > 0 ? 3 : 0), "");
}

static void report(Loc loc, const char *severity, const char *fmt, va_list ap) {
  FILE *f = out();
  if (loc.source)
    fprintf(f, "%s:%d:%d: %s: ", loc.source->path, loc.line, loc.col, severity);
  else
    fprintf(f, "aec: %s: ", severity);
  vfprintf(f, fmt, ap);
  fputc('\n', f);
  if (loc.source) show_line(loc);
}

void diag_verror(Loc loc, const char *fmt, va_list ap) {
  if (count_error()) report(loc, "error", fmt, ap);
}

void diag_error(Loc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(loc, fmt, ap);
  va_end(ap);
}

// A note belongs to the error before it: silent once errors are no longer shown.
void diag_note(Loc loc, const char *fmt, ...) {
  if (error_count > DIAG_MAX_ERRORS) return;
  va_list ap;
  va_start(ap, fmt);
  report(loc, "note", fmt, ap);
  va_end(ap);
}

void diag_error_plain(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror((Loc){0}, fmt, ap);
  va_end(ap);
}

// Optimal string alignment distance, or a large number for words too long to compare.
static int edit_distance(const char *a, const char *b) {
  enum { MAX = 48 };
  int n = (int)strlen(a), m = (int)strlen(b);
  if (n >= MAX || m >= MAX) return MAX;
  int d[MAX + 1][MAX + 1];
  for (int i = 0; i <= n; i++) d[i][0] = i;
  for (int j = 0; j <= m; j++) d[0][j] = j;
  for (int i = 1; i <= n; i++)
    for (int j = 1; j <= m; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[n][m];
}

const char *diag_nearest(const char *word, const char *const *candidates, int n) {
  int length = (int)strlen(word), limit = length / 3, best = -1, best_distance = 0;
  if (limit < 1 && length >= 2) limit = 1;  // a one-letter name is near every other: no suggestion
  for (int i = 0; i < n; i++) {
    if (!candidates[i] || strcmp(candidates[i], word) == 0) continue;
    int d = edit_distance(word, candidates[i]);
    if (d <= limit && (best < 0 || d < best_distance)) best = i, best_distance = d;
  }
  return best < 0 ? NULL : candidates[best];
}
