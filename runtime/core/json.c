// json.c — a small strict JSON parser for safetensors headers (bounded
// depth, every read checked against the end of the text) and a growing
// string buffer for writing them.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define JSON_MAX_DEPTH 64
#define JSON_MAX_VALUES (1 << 20)  // in one document: bounds memory on hostile input
#define JSON_MAX_KEYS 16384        // in one object

typedef struct json_parser {
  const char *text;
  size_t length, pos;
  size_t values;  // parsed so far
  char *error;
  size_t error_size;
  bool failed;
} json_parser;

static bool fail(json_parser *p, const char *what) {
  if (!p->failed) snprintf(p->error, p->error_size, "%s at byte %zu", what, p->pos);
  p->failed = true;
  return false;
}

static void skip_ws(json_parser *p) {
  while (p->pos < p->length) {
    char c = p->text[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int peek(const json_parser *p) { return p->pos < p->length ? (unsigned char)p->text[p->pos] : -1; }

static bool append_char(aert_buf *buf, char c) {
  aert_buf_printf(buf, "%c", c);
  return !buf->failed;
}

static int hex_digit(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(json_parser *p, unsigned *out) {
  if (p->length - p->pos < 4) return fail(p, "truncated \\u escape");
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int d = hex_digit((unsigned char)p->text[p->pos + i]);
    if (d < 0) return fail(p, "bad \\u escape");
    v = v << 4 | (unsigned)d;
  }
  p->pos += 4;
  *out = v;
  return true;
}

static bool append_utf8(aert_buf *buf, unsigned cp) {
  if (cp < 0x80) return append_char(buf, (char)cp);
  if (cp < 0x800) return append_char(buf, (char)(0xc0 | cp >> 6)) && append_char(buf, (char)(0x80 | (cp & 0x3f)));
  if (cp < 0x10000)
    return append_char(buf, (char)(0xe0 | cp >> 12)) && append_char(buf, (char)(0x80 | ((cp >> 6) & 0x3f))) &&
           append_char(buf, (char)(0x80 | (cp & 0x3f)));
  return append_char(buf, (char)(0xf0 | cp >> 18)) && append_char(buf, (char)(0x80 | ((cp >> 12) & 0x3f))) &&
         append_char(buf, (char)(0x80 | ((cp >> 6) & 0x3f))) && append_char(buf, (char)(0x80 | (cp & 0x3f)));
}

static bool read_escape(json_parser *p, aert_buf *buf) {
  if (p->pos >= p->length) return fail(p, "unterminated string");
  char c = p->text[p->pos++];
  const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
  const char *hit = strchr(from, c);
  if (c && hit) return append_char(buf, to[hit - from]);
  if (c != 'u') return fail(p, "bad escape in string");
  unsigned cp;
  if (!read_hex4(p, &cp)) return false;
  if (cp >= 0xd800 && cp < 0xdc00) {
    unsigned low;
    if (p->length - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
      return fail(p, "unpaired surrogate in string");
    p->pos += 2;
    if (!read_hex4(p, &low)) return false;
    if (low < 0xdc00 || low >= 0xe000) return fail(p, "unpaired surrogate in string");
    cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
  } else if (cp >= 0xdc00 && cp < 0xe000) {
    return fail(p, "unpaired surrogate in string");
  }
  if (cp == 0) return fail(p, "\\u0000 in string");
  return append_utf8(buf, cp);
}

// Reads a string (the opening quote is next) into a new NUL-terminated text.
static bool read_string(json_parser *p, char **out, size_t *out_length) {
  aert_buf buf = {0};
  p->pos++;
  for (;;) {
    if (p->pos >= p->length) {
      aert_buf_free(&buf);
      return fail(p, "unterminated string");
    }
    unsigned char c = (unsigned char)p->text[p->pos++];
    bool ok = true;
    if (c == '"') break;
    if (c < 0x20) {
      p->pos--;
      ok = fail(p, "control character in string");
    } else if (c == '\\') {
      ok = read_escape(p, &buf);
    } else {
      ok = append_char(&buf, (char)c);
    }
    if (!ok || buf.failed) {
      aert_buf_free(&buf);
      return buf.failed && !p->failed ? fail(p, "out of memory") : false;
    }
  }
  if (!buf.data) aert_buf_printf(&buf, "%s", "");
  if (buf.failed) return fail(p, "out of memory");
  *out = buf.data;
  *out_length = buf.length;
  return true;
}

static bool is_digit(int c) { return c >= '0' && c <= '9'; }

static bool read_number(json_parser *p, json_value *v) {
  size_t start = p->pos;
  if (peek(p) == '-') p->pos++;
  if (peek(p) == '0') p->pos++;
  else if (is_digit(peek(p))) while (is_digit(peek(p))) p->pos++;
  else return fail(p, "bad number");
  if (peek(p) == '.') {
    p->pos++;
    if (!is_digit(peek(p))) return fail(p, "bad number");
    while (is_digit(peek(p))) p->pos++;
  }
  if (peek(p) == 'e' || peek(p) == 'E') {
    p->pos++;
    if (peek(p) == '+' || peek(p) == '-') p->pos++;
    if (!is_digit(peek(p))) return fail(p, "bad number");
    while (is_digit(peek(p))) p->pos++;
  }
  v->type = JSON_NUMBER;
  v->length = p->pos - start;
  v->text = strndup(p->text + start, v->length);
  return v->text ? true : fail(p, "out of memory");
}

static bool read_literal(json_parser *p, const char *word) {
  size_t n = strlen(word);
  if (p->length - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return fail(p, "unexpected character");
  p->pos += n;
  return true;
}

static bool read_value(json_parser *p, json_value *v, int depth);

// Appends a zeroed member to an array or object; NULL when out of memory.
static json_value *add_member(json_value *v) {
  if ((v->count & (v->count - 1)) == 0) {  // count is 0 or a power of two: grow
    size_t c = v->count ? 2 * v->count : 1;
    json_value *items = realloc(v->items, c * sizeof *items);
    if (!items) return NULL;
    v->items = items;
    if (v->type == JSON_OBJECT) {
      char **keys = realloc(v->keys, c * sizeof *keys);
      if (!keys) return NULL;
      v->keys = keys;
    }
  }
  json_value *m = &v->items[v->count];
  memset(m, 0, sizeof *m);
  if (v->type == JSON_OBJECT) v->keys[v->count] = NULL;
  v->count++;
  return m;
}

static bool read_array(json_parser *p, json_value *v, int depth) {
  v->type = JSON_ARRAY;
  p->pos++;
  skip_ws(p);
  if (peek(p) == ']') {
    p->pos++;
    return true;
  }
  for (;;) {
    json_value *m = add_member(v);
    if (!m) return fail(p, "out of memory");
    if (!read_value(p, m, depth + 1)) return false;
    skip_ws(p);
    int c = peek(p);
    p->pos += c >= 0;
    if (c == ']') return true;
    if (c != ',') return p->pos -= c >= 0, fail(p, "expected ',' or ']'");
  }
}

size_t json_key_comparisons;

typedef struct key_at {
  const char *key;
  size_t pos;  // where the key starts in the text
} key_at;

static int compare_key_at(const void *a, const void *b) {
  const key_at *x = a, *y = b;
  json_key_comparisons++;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->pos > y->pos) - (x->pos < y->pos);
}

// Fails at the first key (in the text) that repeats an earlier one: the keys
// sorted, so n log n comparisons rather than each key against all before it.
static bool check_duplicate_keys(json_parser *p, key_at *keys, size_t n) {
  qsort(keys, n, sizeof *keys, compare_key_at);
  size_t first = SIZE_MAX;
  for (size_t i = 1; i < n; i++) {
    json_key_comparisons++;
    if (strcmp(keys[i - 1].key, keys[i].key) == 0 && keys[i].pos < first) first = keys[i].pos;
  }
  if (first == SIZE_MAX) return true;
  p->pos = first;
  return fail(p, "duplicate key");
}

static bool read_members(json_parser *p, json_value *v, int depth, key_at **keys) {
  for (;;) {
    skip_ws(p);
    if (peek(p) != '"') return fail(p, "expected a string key");
    if (v->count >= JSON_MAX_KEYS) return fail(p, "too many keys in an object");
    char *key;
    size_t key_length;
    size_t key_pos = p->pos;
    if (!read_string(p, &key, &key_length)) return false;
    if (strlen(key) != key_length) {
      free(key);
      p->pos = key_pos;
      return fail(p, "malformed key");
    }
    json_value *m = add_member(v);
    if (m && (v->count & (v->count - 1)) == 0) {  // grown as the members are
      key_at *grown = realloc(*keys, 2 * v->count * sizeof *grown);
      if (grown) *keys = grown;
      else m = NULL;
    }
    if (!m) {
      free(key);
      return fail(p, "out of memory");
    }
    v->keys[v->count - 1] = key;
    (*keys)[v->count - 1] = (key_at){key, key_pos};
    skip_ws(p);
    if (peek(p) != ':') return fail(p, "expected ':'");
    p->pos++;
    if (!read_value(p, m, depth + 1)) return false;
    skip_ws(p);
    int c = peek(p);
    p->pos += c >= 0;
    if (c == '}') return check_duplicate_keys(p, *keys, v->count);
    if (c != ',') return p->pos -= c >= 0, fail(p, "expected ',' or '}'");
  }
}

static bool read_object(json_parser *p, json_value *v, int depth) {
  v->type = JSON_OBJECT;
  p->pos++;
  skip_ws(p);
  if (peek(p) == '}') {
    p->pos++;
    return true;
  }
  key_at *keys = NULL;
  bool ok = read_members(p, v, depth, &keys);
  free(keys);
  return ok;
}

static bool read_value(json_parser *p, json_value *v, int depth) {
  if (depth > JSON_MAX_DEPTH) return fail(p, "nested too deeply");
  if (++p->values > JSON_MAX_VALUES) return fail(p, "too many values");
  skip_ws(p);
  int c = peek(p);
  switch (c) {
  case '{': return read_object(p, v, depth);
  case '[': return read_array(p, v, depth);
  case '"': v->type = JSON_STRING; return read_string(p, &v->text, &v->length);
  case 't': v->type = JSON_BOOL; v->boolean = true; return read_literal(p, "true");
  case 'f': v->type = JSON_BOOL; return read_literal(p, "false");
  case 'n': v->type = JSON_NULL; return read_literal(p, "null");
  case -1: return fail(p, "unexpected end");
  default: return c == '-' || is_digit(c) ? read_number(p, v) : fail(p, "unexpected character");
  }
}

static void free_members(json_value *v) {
  for (size_t i = 0; i < v->count; i++) {
    free_members(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
  free(v->text);
}

json_value *json_parse(const char *text, size_t length, char *error, size_t error_size) {
  json_parser p = {text, length, 0, 0, error, error_size, false};
  json_value *root = calloc(1, sizeof *root);
  if (!root) {
    snprintf(error, error_size, "out of memory");
    return NULL;
  }
  if (read_value(&p, root, 0)) {
    skip_ws(&p);
    if (p.pos == p.length) return root;
    fail(&p, "unexpected text after the value");
  }
  json_free(root);
  return NULL;
}

void json_free(json_value *value) {
  if (!value) return;
  free_members(value);
  free(value);
}

const json_value *json_get(const json_value *object, const char *key) {
  if (!object || object->type != JSON_OBJECT) return NULL;
  for (size_t i = 0; i < object->count; i++)
    if (object->keys[i] && strcmp(object->keys[i], key) == 0) return &object->items[i];
  return NULL;
}

bool json_as_u64(const json_value *value, uint64_t *out) {
  if (!value || value->type != JSON_NUMBER || value->length == 0) return false;
  uint64_t v = 0;
  for (size_t i = 0; i < value->length; i++) {
    char c = value->text[i];
    if (!is_digit(c)) return false;  // a sign, fraction or exponent
    uint64_t digit = (uint64_t)(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *out = v;
  return true;
}

// ------------------------------------------------------------ the buffer
void aert_buf_printf(aert_buf *buf, const char *fmt, ...) {
  if (buf->failed) return;
  for (;;) {
    size_t room = buf->capacity - buf->length;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf->data ? buf->data + buf->length : NULL, buf->data ? room : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      buf->failed = true;
      return;
    }
    if (buf->data && (size_t)n < room) {
      buf->length += (size_t)n;
      return;
    }
    size_t c = buf->capacity ? buf->capacity : 256;
    while (c < buf->length + (size_t)n + 1) c *= 2;
    char *grown = realloc(buf->data, c);
    if (!grown) {
      buf->failed = true;
      return;
    }
    buf->data = grown;
    buf->capacity = c;
  }
}

void aert_buf_json_string(aert_buf *buf, const char *text) {
  aert_buf_printf(buf, "\"");
  for (const unsigned char *s = (const unsigned char *)text; *s; s++) {
    if (*s == '"' || *s == '\\') aert_buf_printf(buf, "\\%c", *s);
    else if (*s < 0x20) aert_buf_printf(buf, "\\u%04x", *s);
    else aert_buf_printf(buf, "%c", *s);
  }
  aert_buf_printf(buf, "\"");
}

void aert_buf_free(aert_buf *buf) {
  free(buf->data);
  buf->data = NULL;
  buf->length = buf->capacity = 0;
}
