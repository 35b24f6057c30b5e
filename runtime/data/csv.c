// csv.c — comma-separated samples, one a row. The first non-blank row is a
// header, skipped with a note, when no field of it is a number; a first row
// with some numbers and some words is an error naming the first word (a typo
// in a sample, not a header). A row with one more column than the model's
// sample carries an integer label from 0 to AERT_MAX_LABEL first. A NUL byte
// anywhere is an error naming its line and column.
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

typedef struct csv_field {
  const char *start;
  size_t length;
} csv_field;

typedef struct csv_reader {
  const char *path;
  const char *p, *end;
  size_t line;  // of the row last read
  csv_field *fields;
  size_t n_fields, capacity;
} csv_reader;

static bool is_blank(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (!isspace((unsigned char)s[i])) return false;
  return true;
}

// Splits the next non-blank line into fields; false at the end of the text,
// or with *failed after a message.
static bool next_row(csv_reader *r, bool *out_of_memory, bool *failed) {
  *out_of_memory = false;
  while (r->p < r->end) {
    const char *start = r->p;
    const char *nl = memchr(start, '\n', (size_t)(r->end - start));
    const char *stop = nl ? nl : r->end;
    r->p = nl ? nl + 1 : r->end;
    r->line++;
    const char *nul = memchr(start, 0, (size_t)(stop - start));
    if (nul) {
      aert_error("%s:%zu:%zu: a NUL byte (a CSV file is text)", r->path, r->line, (size_t)(nul - start) + 1);
      *failed = true;
      return false;
    }
    if (is_blank(start, (size_t)(stop - start))) continue;
    r->n_fields = 0;
    for (const char *f = start;;) {
      const char *comma = memchr(f, ',', (size_t)(stop - f));
      const char *fend = comma ? comma : stop;
      if (r->n_fields == r->capacity) {
        size_t c = r->capacity ? 2 * r->capacity : 1024;
        csv_field *grown = realloc(r->fields, c * sizeof *grown);
        if (!grown) {
          *out_of_memory = true;
          return false;
        }
        r->fields = grown;
        r->capacity = c;
      }
      r->fields[r->n_fields++] = (csv_field){f, (size_t)(fend - f)};
      if (!comma) break;
      f = comma + 1;
    }
    return true;
  }
  return false;
}

// Parses one field as a number; false when it is not one (NaN and inf parse).
static bool parse_number(csv_field field, double *out) {
  char buf[128];
  const char *s = field.start;
  size_t n = field.length;
  while (n && isspace((unsigned char)*s)) s++, n--;
  while (n && isspace((unsigned char)s[n - 1])) n--;
  if (n == 0 || n >= sizeof buf) return false;
  memcpy(buf, s, n);
  buf[n] = 0;
  char *end;
  errno = 0;
  *out = strtod(buf, &end);
  return *end == 0;
}

// How many fields of the row are numbers; the first that is not in *word.
static size_t count_numbers(const csv_reader *r, size_t *word) {
  double v;
  size_t numbers = 0;
  *word = SIZE_MAX;
  for (size_t i = 0; i < r->n_fields; i++)
    if (parse_number(r->fields[i], &v)) numbers++;
    else if (*word == SIZE_MAX) *word = i;
  return numbers;
}

// Grows the value and label arrays to hold `rows` rows.
static bool reserve_rows(aert_real **x, int32_t **labels, size_t *capacity, size_t rows, size_t cols) {
  if (rows <= *capacity) return true;
  size_t c = *capacity ? 2 * *capacity : 256, bytes;
  if (!aert_mul_size(c, cols, SIZE_MAX / sizeof(aert_real), &bytes)) return false;
  aert_real *nx = realloc(*x, bytes * sizeof(aert_real));
  if (!nx) return false;
  *x = nx;
  int32_t *nl = realloc(*labels, c * sizeof(int32_t));
  if (!nl) return false;
  *labels = nl;
  *capacity = c;
  return true;
}

static bool parse_row(const csv_reader *r, bool labelled, aert_real *x, int32_t *label) {
  for (size_t i = 0; i < r->n_fields; i++) {
    double v;
    int width = (int)(r->fields[i].length > 40 ? 40 : r->fields[i].length);
    if (!parse_number(r->fields[i], &v)) {
      aert_error("%s:%zu: column %zu: '%.*s' is not a number", r->path, r->line, i + 1, width, r->fields[i].start);
      return false;
    }
    if (!isfinite(v) || !isfinite((aert_real)v)) {
      aert_error("%s:%zu: column %zu: '%.*s' is not a finite number", r->path, r->line, i + 1, width,
                 r->fields[i].start);
      return false;
    }
    if (labelled && i == 0) {
      if (v != floor(v) || v < 0 || v > AERT_MAX_LABEL) {
        aert_error("%s:%zu: the label '%.*s' (column 1) is not an integer from 0 to %d (a row of %zu values is read "
                   "as a label, then %zu values)", r->path, r->line, width, r->fields[i].start, AERT_MAX_LABEL,
                   r->n_fields, r->n_fields - 1);
        return false;
      }
      *label = (int32_t)v;
    } else {
      x[i - labelled] = (aert_real)v;
    }
  }
  return true;
}

aert_dataset *aert_parse_csv(const char *path, const char *text, size_t size, size_t expect_size,
                             const char *expect_what) {
  csv_reader r = {.path = path, .p = text, .end = text + size};
  aert_real *x = NULL;
  int32_t *labels = NULL;
  aert_dataset *d = NULL;
  size_t rows = 0, capacity = 0, cols = 0, first_line = 0, header_line = 0;
  bool labelled = false, oom = false, ok = true, failed = false;
  while (ok && next_row(&r, &oom, &failed)) {
    if (rows == 0 && cols == 0) {
      size_t word, numbers = first_line == 0 ? count_numbers(&r, &word) : r.n_fields;
      if (numbers == 0) {
        first_line = header_line = r.line;  // a header: said once the samples are read
        continue;
      }
      if (numbers < r.n_fields) {
        int width = (int)(r.fields[word].length > 40 ? 40 : r.fields[word].length);
        aert_error("%s:%zu: column %zu: '%.*s' is not a number (the first row has %zu numbers: a header has none)",
                   path, r.line, word + 1, width, r.fields[word].start, numbers);
        goto done;
      }
      first_line = r.line;
      cols = r.n_fields;
      labelled = expect_size != 0 && cols == expect_size + 1;
      if (!aert_check_sample_size(path, cols - labelled, expect_size, expect_what)) goto done;
    } else if (r.n_fields != cols) {
      aert_error("%s:%zu: the row has %zu values, the first row (line %zu) has %zu", path, r.line, r.n_fields,
                 first_line, cols);
      goto done;
    }
    size_t sample = cols - labelled;
    if (!reserve_rows(&x, &labels, &capacity, rows + 1, sample)) {
      oom = true;
      break;
    }
    ok = parse_row(&r, labelled, x + rows * sample, labels + rows);
    rows++;
  }
  if (oom) aert_error("%s: out of memory at line %zu", path, r.line);
  if (oom || !ok || failed) goto done;
  if (rows == 0) {
    aert_error("%s: no samples in the file%s", path, first_line ? " (only a header line)" : "");
    goto done;
  }
  if (header_line)
    aert_note("%s:%zu: no field of the first row is a number: it is a header, not a sample", path, header_line);
  size_t shape[1] = {cols - labelled};
  d = aert_dataset_new(path, rows, 1, shape, labelled);
  if (d) {
    memcpy(d->x, x, rows * shape[0] * sizeof(aert_real));
    if (labelled) memcpy(d->labels, labels, rows * sizeof(int32_t));
  }
done:
  free(x);
  free(labels);
  free(r.fields);
  return d;
}
