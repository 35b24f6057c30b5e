// classes.c — sets of classes named on the command line ("0-7,9": labels,
// ranges of them, comma-separated), which train --classes keeps of a data
// set and detect --normal calls normal, and a data set cut down to the
// samples whose label is in such a set.
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"

// A label at *p (digits only), advancing p; false after a message.
static bool parse_label(const char *option, const char *text, const char **p, long *out) {
  const char *start = *p;
  if (!isdigit((unsigned char)*start)) {
    size_t len = strcspn(start, ",-");
    if (len == 0)
      aert_error("%s %s: a class is missing %s (write classes as labels and ranges, like 0-7,9)", option, text,
                 *start ? "before a separator" : "at the end");
    else
      aert_error("%s %s: '%.*s' is not a class; classes are labels from 0 to %d, and ranges of them, like 0-7,9",
                 option, text, (int)len, start, AERT_MAX_LABEL);
    return false;
  }
  char *end;
  errno = 0;
  long v = strtol(start, &end, 10);
  if (errno || v > AERT_MAX_LABEL) {
    aert_error("%s %s: class %.*s is more than the largest label, %d", option, text, (int)(end - start), start,
               AERT_MAX_LABEL);
    return false;
  }
  *p = end;
  *out = v;
  return true;
}

bool *aert_parse_classes(const char *option, const char *text) {
  bool *member = calloc((size_t)AERT_MAX_LABEL + 1, sizeof *member);
  if (!member) return aert_error("out of memory for %s", option), NULL;
  const char *p = text;
  for (;;) {
    long lo, hi;
    if (!parse_label(option, text, &p, &lo)) break;
    hi = lo;
    if (*p == '-') {
      p++;
      if (!parse_label(option, text, &p, &hi)) break;
      if (hi < lo) {
        aert_error("%s %s: the range %ld-%ld runs backwards; write %ld-%ld", option, text, lo, hi, hi, lo);
        break;
      }
    }
    for (long c = lo; c <= hi; c++) member[c] = true;
    if (*p == 0) return member;
    if (*p != ',') {
      aert_error("%s %s: unexpected '%c' after class %ld (write classes as labels and ranges, like 0-7,9)", option,
                 text, *p, hi);
      break;
    }
    p++;
  }
  free(member);
  return NULL;
}

bool aert_dataset_keep_classes(aert_dataset *data, const bool *member, const char *option, const char *text) {
  if (!data->labels) {
    aert_error("%s: %s %s selects samples by label, and this data set has none", data->path, option, text);
    return false;
  }
  size_t kept = 0, size = data->sample_size;
  int32_t lo = 0, hi = 0;
  for (size_t i = 0; i < data->n; i++) {
    int32_t label = data->labels[i];
    if (i == 0 || label < lo) lo = label;
    if (i == 0 || label > hi) hi = label;
    if (label < 0 || label > AERT_MAX_LABEL || !member[label]) continue;
    if (kept != i) {
      memmove(data->x + kept * size, data->x + i * size, size * sizeof *data->x);
      data->labels[kept] = label;
    }
    kept++;
  }
  if (kept == 0) {
    if (data->n)
      aert_error("%s: no sample has a label in %s %s (its labels run from %d to %d)", data->path, option, text,
                 (int)lo, (int)hi);
    else
      aert_error("%s: no sample has a label in %s %s (it has no samples)", data->path, option, text);
    return false;
  }
  data->n = kept;
  return true;
}
