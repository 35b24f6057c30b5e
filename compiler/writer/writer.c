// writer.c — the one C writer. Every piece of generated C text goes out
// through the functions here: lines and fragments, the kernel headings that
// name the .ae line, expression templates ($0, $attr0, $normal, ...: the
// mini-language OpInfo.expr is written in, documented in ops/ops.h), the
// signatures and operands of fused kernels, and the escaping of user text
// into C comments and string literals. Nothing else touches the output
// stream (Emitter.out).
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "writer.h"

void emit_line(Emitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(e->out, fmt, ap);
  va_end(ap);
  fputc('\n', e->out);
}

void emit_lines(Emitter *e, const char *const *lines) {
  for (int i = 0; lines[i]; i++) emit_line(e, "%s", lines[i]);
}

void emit_stack_use(Emitter *e, size_t bytes) {
  if (bytes > e->thread_stack_bytes) e->thread_stack_bytes = bytes;
}

size_t emit_real_bytes(const Emitter *e) { return e->options->dtype == DTYPE_F64 ? 8 : 4; }

void emit_blank(Emitter *e) { fputc('\n', e->out); }

void emit_format(Emitter *e, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(e->out, fmt, ap);
  va_end(ap);
}

void emit_text(Emitter *e, const char *text) { fputs(text, e->out); }

bool emit_failed(const Emitter *e) { return ferror(e->out) != 0; }

struct Capture {
  FILE *saved;
  char *text;
  size_t size;
};

Capture *emit_capture_begin(Emitter *e) {
  Capture *c = calloc(1, sizeof *c);
  c->saved = e->out;
  e->out = open_memstream(&c->text, &c->size);
  if (!e->out) {
    fprintf(stderr, "aec: out of memory\n");
    exit(1);
  }
  return c;
}

char *emit_capture_end(Emitter *e, Capture *c, size_t *size) {
  fclose(e->out);
  e->out = c->saved;
  char *text = c->text;
  if (size) *size = c->size;
  free(c);
  return text;
}

void upper_name(const char *name, char *buf, size_t size) {
  size_t i = 0;
  for (; name[i] && i + 1 < size; i++) buf[i] = (char)toupper((unsigned char)name[i]);
  buf[i] = '\0';
}

const char *size_const(const Graph *graph, int node, char *buf, size_t size) {
  char upper[320];
  upper_name(graph->nodes[node].name, upper, sizeof upper);
  snprintf(buf, size, "%s_SIZE", upper);
  return buf;
}

// ------------------------------------------------- user text into C
// User text (file names, .ae source lines and comments, -D names, the model
// description) reaches the generated C in two contexts only, each through
// one function here: comment_text for comments, string_bytes for string
// literals (and #line directives). Names of values, nets and layers are .ae
// identifiers, checked by the lexer, and go out as they are.

// Comment context. Printable ASCII stays; every other byte, and each byte
// that could end or extend a comment, becomes \xNN: a line end (ends a //
// comment), a backslash (backslash-newline, even with spaces between,
// continues it onto the next line), the first ? of ?? (the trigraph ??/ is
// a backslash under -std=c11), the / of */ (ends a block comment). Bytes
// past 0x7e go too: a bidirectional-override character in a comment is a
// -Wbidi-chars warning, and invalid UTF-8 a -Winvalid-utf8 one. Whole escapes
// only: a long text is cut between them.
void comment_text(const char *text, size_t length, char *buf, size_t size) {
  size_t n = 0;
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)text[i];
    bool plain = c >= 0x20 && c <= 0x7e && c != '\\' && !(c == '?' && i + 1 < length && text[i + 1] == '?') &&
                 !(c == '/' && i > 0 && text[i - 1] == '*');
    size_t need = plain ? 1 : 4;
    if (n + need + 1 > size) break;
    if (plain) buf[n++] = (char)c;
    else n += (size_t)snprintf(buf + n, size - n, "\\x%02x", c);
  }
  if (size) buf[n] = '\0';
}

// Identifier context (aec --lib's function and constant names): letters,
// digits and _ stay, every other byte becomes _, and a name that would start
// with a digit (or be empty) starts with m_.
void c_identifier(const char *text, char *buf, size_t size) {
  size_t n = 0;
  if (size == 0) return;
  if (!isalpha((unsigned char)text[0]) && text[0] != '_' && size > 3) buf[n++] = 'm', buf[n++] = '_';
  for (size_t i = 0; text[i] && n + 1 < size; i++) {
    unsigned char c = (unsigned char)text[i];
    buf[n++] = c < 0x80 && (isalnum(c) || c == '_') ? (char)c : '_';
  }
  buf[n] = '\0';
}

// Header-name context: `#include "NAME"` takes no escapes, so only plain
// file names go there (letters, digits, . _ - +, not starting with a dot).
bool include_name_ok(const char *name) {
  if (!name[0] || name[0] == '.') return false;
  for (const char *c = name; *c; c++)
    if (!(((unsigned char)*c < 0x80 && isalnum((unsigned char)*c)) || strchr("._-+", *c))) return false;
  return true;
}

void emit_byte_array(Emitter *e, const char *name, const unsigned char *data, size_t size) {
  fprintf(e->out, "static const unsigned char %s[%zu] __attribute__((aligned(8))) = {", name, size ? size : 1);
  for (size_t i = 0; i < size; i++) fprintf(e->out, "%s%u,", i % 24 ? "" : "\n  ", data[i]);
  fprintf(e->out, "%s\n};\n", size ? "" : "0");
}

bool emit_include(Emitter *e, const char *name) {
  if (!include_name_ok(name)) return false;
  fprintf(e->out, "#include \"%s\"\n", name);
  return true;
}

void source_line(Loc loc, char *buf, size_t size) {
  if (size) buf[0] = '\0';
  if (!loc.source) return;
  size_t n;
  const char *text = source_line_text(loc.source, loc.line, &n);
  while (n > 0 && (*text == ' ' || *text == '\t')) text++, n--;
  while (n > 0 && isspace((unsigned char)text[n - 1])) n--;
  comment_text(text, n, buf, size);
}

void source_place(Loc loc, char *buf, size_t size) {
  if (size) buf[0] = '\0';
  if (!loc.source) return;
  const char *path = loc.source->path, *slash = strrchr(path, '/');
  if (slash) path = slash + 1;
  char base[1100];
  comment_text(path, strlen(path), base, sizeof base);
  snprintf(buf, size, "%s:%d", base, loc.line);
}

void emit_kernel_open(Emitter *e, const Node *node, const char *const *arg_names, const char *formula) {
  emit_kernel_open_writing(e, node, arg_names, formula, 0);
}

void emit_kernel_open_writing(Emitter *e, const Node *node, const char *const *arg_names, const char *formula,
                              unsigned written_inputs) {
  const Graph *g = e->graph;
  char line[160], place[1200], shape[64];
  source_line(node->loc, line, sizeof line);
  source_place(node->loc, place, sizeof place);
  shape_format(node->shape, shape, sizeof shape);
  emit_blank(e);
  if (node->loc.source) emit_line(e, "// %s: %s", place, line);
  emit_line(e, "// %s%s -> %s%s%s", node->is_backward ? "backward: " : "", op_name(node->op), shape,
            node->shape.batched ? " per sample" : "", "");
  if (formula) emit_line(e, "// %s", formula);
  if (e->kernel_name)
    fprintf(e->out, "static void %s(", e->kernel_name);
  else
    fprintf(e->out, "static void compute_%s(", node->name);
  bool batch = node_uses_batch(g, node);
  if (batch) fprintf(e->out, "int n, ");
  if (node->rng_node >= 0) fprintf(e->out, "uint64_t key, uint64_t row0, ");
  for (int i = 0; i < node->n_inputs; i++)
    fprintf(e->out, "%sreal *restrict %s, ", written_inputs >> i & 1 ? "" : "const ", arg_names[i]);
  fprintf(e->out, "real *restrict %s) {\n", arg_names[node->n_inputs]);
}

void param_const(const Graph *g, int param, const char *suffix, char *buf, size_t size) {
  char upper[320];
  upper_name(g->nodes[g->params[param].node].name, upper, sizeof upper);
  snprintf(buf, size, "%s_%s", upper, suffix);
}


// String-literal context: the bytes of a C string literal, without the
// quotes. Printable ASCII stays but for " \\ and ? (\\? keeps ??/ and its
// kin from being trigraphs); every other byte is a three-digit octal escape,
// which, unlike \\x, cannot swallow the characters after it.
static void string_bytes(FILE *out, const char *text, size_t length) {
  for (size_t i = 0; i < length; i++) {
    unsigned char c = (unsigned char)text[i];
    if (c == '"' || c == '\\' || c == '?') fprintf(out, "\\%c", c);
    else if (c >= 0x20 && c <= 0x7e) fputc(c, out);
    else fprintf(out, "\\%03o", c);
  }
}

void emit_c_string(Emitter *e, const char *text) {
  fputc('"', e->out);
  string_bytes(e->out, text, strlen(text));
  fputc('"', e->out);
}

void emit_c_string_bytes(Emitter *e, const char *text, size_t length) { string_bytes(e->out, text, length); }

// ------------------------------------------------ expression templates
// Expands an op's expression template (see OpInfo.expr in ops/ops.h).
// Where an elementwise op reading input `in` at element `index` of its output
// `node` reads: element 0 of a scalar, the sample's one element of a [1] value
// per sample broadcast over a larger sample, the sample's element of a value
// without a batch broadcast over the batch, else the same element.
static void operand_index(const Graph *g, int in, const Node *node, const char *index, char *out, size_t size) {
  Shape shape = g->nodes[in].shape;
  size_t per_sample = shape_size(node->shape);
  if (shape_is_scalar(shape))
    snprintf(out, size, "0");
  else if (shape_is_per_sample_scalar(shape) && node->shape.batched && per_sample > 1)
    snprintf(out, size, "%s / %zu", index, per_sample);
  else if (!shape.batched && node->shape.batched && per_sample > 1)
    snprintf(out, size, "%s %% %zu", index, per_sample);
  else
    snprintf(out, size, "%s", index);
}

// The counter of a random node's draw for element `index` of the batch: of
// the element in the whole batch, whose first row is the kernel's row0 (a
// process's share of the batch under MPI starts there; 0 alone), so that a
// sample draws the same noise whichever process holds it.
static void draw_counter(const Node *node, const char *index, char *out, size_t size) {
  if (node->shape.batched)
    snprintf(out, size, "(row0 * %zu + (uint64_t)%s)", shape_size(node->shape), index);
  else
    snprintf(out, size, "(uint64_t)%s", index);
}

void expand_template(Emitter *e, const Node *node, const char *tmpl, const char *index, const char *count_expr,
                     const char *rows_expr) {
  static const char *names[] = {"a", "b", "c", "d"};
  for (const char *p = tmpl; *p; p++) {
    if (*p != '$') {
      fputc(*p, e->out);
      continue;
    }
    const char *word = p + 1;
    size_t length = 0;
    while (word[length] == '_' || ((word[length] | 32) >= 'a' && (word[length] | 32) <= 'z')) length++;
    while (word[length] >= '0' && word[length] <= '9') length++;
    char key[32];
    snprintf(key, sizeof key, "%.*s", (int)length, word);
    if (key[0] >= '0' && key[0] <= '3' && key[1] == '\0') {
      int i = key[0] - '0';
      char at[64];
      operand_index(e->graph, node->inputs[i], node, index, at, sizeof at);
      fprintf(e->out, "%s[%s]", names[i], at);
    } else if (strncmp(key, "attr", 4) == 0 && key[4] >= '0' && key[4] < '0' + MAX_ATTRS && !key[5]) {
      fprintf(e->out, "(real)%.17g", node->attr[key[4] - '0']);
    } else if (strcmp(key, "count") == 0) {
      fprintf(e->out, "%s", count_expr);
    } else if (strcmp(key, "per_count") == 0) {  // a loop-invariant reciprocal: one multiply an element, no divide
      fprintf(e->out, "(1 / %s)", count_expr);
    } else if (strcmp(key, "per_row") == 0) {
      fprintf(e->out, "(1 / %s)", rows_expr);
    } else if (strcmp(key, "rows") == 0) {
      fprintf(e->out, "%s", rows_expr);
    } else if (strcmp(key, "i") == 0) {
      fprintf(e->out, "%s", index);
    } else if (strcmp(key, "uniform0") == 0 || strcmp(key, "uniform1") == 0) {
      char at[160];
      draw_counter(node, index, at, sizeof at);
      fprintf(e->out, "(real)aert_uniform01(key, 2 * %s + %c)", at, key[7]);
    } else if (strcmp(key, "normal") == 0) {
      char at[160];
      draw_counter(node, index, at, sizeof at);
      fprintf(e->out, "(real)aert_normal(key, %s)", at);
    } else {
      fprintf(stderr, "aec: internal error: op %s's template has an unknown $%s\n", op_name(node->op), key);
      exit(3);
    }
    p += length;
  }
}

// -------------------------------------------------------- fused kernels
// The values a group reads from outside itself, in order of first use.
int group_inputs(const Graph *g, const Group *group, int *inputs) {
  int n = 0;
  for (int m = 0; m < group->n_members; m++) {
    const Node *node = &g->nodes[group->members[m]];
    for (int i = 0; i < node->n_inputs; i++) {
      int in = node->inputs[i];
      bool seen = false;
      for (int k = 0; k < group->n_members; k++) seen |= group->members[k] == in;
      for (int k = 0; k < n; k++) seen |= inputs[k] == in;
      if (!seen) inputs[n++] = in;
    }
  }
  return n;
}

static const char *const param_letters[] = {"a", "b", "c", "d", "e", "f", "g", "h", "p", "q", "r", "s", "u", "w",
                                            "y", "z"};

const char *group_param_name(int i) { return param_letters[i]; }

bool group_uses_batch(const Graph *g, const Group *group) {
  for (int m = 0; m < group->n_members; m++)
    if (node_uses_batch(g, &g->nodes[group->members[m]])) return true;
  return false;
}

void emit_group_comment(Emitter *e, const Group *group, const int *inputs, int n_inputs) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  char line[160], place[1200];
  source_line(lead->loc, line, sizeof line);
  source_place(lead->loc, place, sizeof place);
  emit_blank(e);
  if (lead->loc.source) emit_line(e, "// %s: %s", place, line);
  fprintf(e->out, "// fused%s:", lead->is_backward ? " (backward)" : "");
  for (int m = 0; m < group->n_members; m++)
    fprintf(e->out, "%s %s", m ? " ->" : "", op_name(g->nodes[group->members[m]].op));
  fprintf(e->out, "\n");
  if (n_inputs) {
    fprintf(e->out, "// reads");
    for (int i = 0; i < n_inputs; i++) fprintf(e->out, "%s %s = %s", i ? "," : "", param_letters[i], g->nodes[inputs[i]].name);
    fprintf(e->out, "\n");
  }
}

// `static void NAME(int n, uint64_t key, uint64_t row0, const real *restrict a, ..., real *restrict out...)`
void emit_group_signature(Emitter *e, const char *name, const Group *group, int n_inputs,
                          const char *const *outputs, int n_outputs) {
  const Graph *g = e->graph;
  bool key = false;
  for (int m = 0; m < group->n_members; m++) key |= g->nodes[group->members[m]].rng_node >= 0;
  fprintf(e->out, "static void %s(", name);
  if (group_uses_batch(g, group)) fprintf(e->out, "int n, ");
  if (key) fprintf(e->out, "uint64_t key, uint64_t row0, ");
  for (int i = 0; i < n_inputs; i++) fprintf(e->out, "const real *restrict %s, ", param_letters[i]);
  for (int o = 0; o < n_outputs; o++) fprintf(e->out, "real *restrict %s%s", outputs[o], o + 1 < n_outputs ? ", " : ") {\n");
}

// The expressions a member's template reads: earlier members' temporaries,
// or the group's input arrays at `index` (element 0 for scalars, the sample's
// element for a broadcast [1] value).
void member_operands(const Graph *g, const Group *group, int member, const int *inputs, int n_inputs,
                     const char *index, char operands[MAX_INPUTS][64]) {
  const Node *node = &g->nodes[group->members[member]];
  for (int i = 0; i < node->n_inputs; i++) {
    int in = node->inputs[i];
    snprintf(operands[i], 64, "?");
    for (int m = 0; m < member; m++)
      if (group->members[m] == in) snprintf(operands[i], 64, "v%d", m);
    for (int k = 0; k < n_inputs; k++)
      if (inputs[k] == in) {
        char at[48];
        operand_index(g, in, node, index, at, sizeof at);
        snprintf(operands[i], 64, "%s[%s]", param_letters[k], at);
      }
  }
}

// Like expand_template, with each $k replaced by operands[k].
void expand_with(Emitter *e, const Node *node, const char *tmpl, char operands[MAX_INPUTS][64], const char *index,
                 const char *count_expr, const char *rows_expr) {
  for (const char *p = tmpl; *p; p++) {
    if (*p == '$' && p[1] >= '0' && p[1] <= '3' && !(p[2] >= '0' && p[2] <= '9')) {
      fputs(operands[p[1] - '0'], e->out);
      p++;
      continue;
    }
    if (*p != '$') {
      fputc(*p, e->out);
      continue;
    }
    const char *end = p + 1;
    while (*end == '_' || ((*end | 32) >= 'a' && (*end | 32) <= 'z')) end++;
    while (*end >= '0' && *end <= '9') end++;
    char piece[40];
    snprintf(piece, sizeof piece, "%.*s", (int)(end - p), p);
    expand_template(e, node, piece, index, count_expr, rows_expr);
    p = end - 1;
  }
}

// Member m's template `text` at element `at` (the product kernels' epilogues):
// operands are earlier members' values (vK) or the group's inputs (a letter,
// [at] or [0]).
void expand_member_text(Emitter *e, const Group *group, int m, const int *inputs, int n_inputs, const char *text) {
  const Node *node = &e->graph->nodes[group->members[m]];
  char operands[MAX_INPUTS][64];
  member_operands(e->graph, group, m, inputs, n_inputs, "at", operands);
  expand_with(e, node, text, operands, "at", "(real)count", node->shape.batched ? "(real)n" : "1");
}


void emit_line_directive(Emitter *e, int line, const char *path) {
  fprintf(e->out, "#line %d \"", line);
  string_bytes(e->out, path, strlen(path));
  fprintf(e->out, "\"\n");
}
