// writer.h — the one C writer (writer.c): everything that writes generated C
// text asks it. Above ir/, below every module that generates code.
#ifndef AEC_WRITER_H
#define AEC_WRITER_H

#include "ir.h"

typedef enum DType { DTYPE_F32, DTYPE_F64 } DType;

typedef struct EmitOptions {
  int opt_level;  // 0: one kernel per node, plain loops, no reuse (the reference); 2: everything
  const char *source_path;
  const char *model_name;
  const char *source_hash;
  DType dtype;
  const char *command_line;  // the header's "Options:" line: what shapes the code, canonical (not argv)
  bool line_directives;      // aec --line: #line directives point each kernel at its .ae line
  const char *c_name;        // the .c file's name, for the #line directives that point back at it
  const char *library_header;  // aec --lib: the header NAME.h the C includes; the library's API instead of main
  const unsigned char *weights;  // aec --lib --weights FILE: the checkpoint's bytes, put in the C; else NULL
  size_t weights_size;
  const char *weights_name;      // FILE, for messages
} EmitOptions;

typedef struct Emitter {
  // The output stream: only writer.c reads or writes it.
  FILE *out;
  Graph *graph;
  const EmitOptions *options;
  const char *kernel_name;  // the name emit_kernel_open gives the kernel being written
  const SharePlan *share;         // values the steps of a batch share (passes/share.c), or NULL
  size_t thread_stack_bytes;      // the most any kernel written so far keeps on one thread's stack
} Emitter;

// ------------------------------------------------------------ writer.c
// Lines and fragments of C.
void emit_line(Emitter *emitter, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void emit_lines(Emitter *emitter, const char *const *lines);  // each line of a NULL-ended list, as is
void emit_format(Emitter *emitter, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  // no newline
void emit_text(Emitter *emitter, const char *text);  // as is
void emit_blank(Emitter *emitter);
bool emit_failed(const Emitter *emitter);  // a write failed
// Text written between begin and end goes to a buffer instead of the output
// (a kernel written before its heading is known). Captures nest.
typedef struct Capture Capture;
Capture *emit_capture_begin(Emitter *emitter);
char *emit_capture_end(Emitter *emitter, Capture *capture, size_t *size);  // malloc'd, NUL-ended

// User text in generated C goes through one escaping function per context
// (writer.c says which bytes each escapes and why).
// String literals: emit_c_string writes one, quotes included;
// emit_c_string_bytes writes the inside of one.
void emit_c_string(Emitter *emitter, const char *text);
void emit_c_string_bytes(Emitter *emitter, const char *text, size_t length);
// Comments: `length` bytes of `text` made safe to stand in a // or /* */
// comment, cut (between escapes) to fit `size`.
void comment_text(const char *text, size_t length, char *buf, size_t size);
// Identifiers (aec --lib's prefix): text made a C identifier (see writer.c).
void c_identifier(const char *text, char *buf, size_t size);
// `#include "NAME"` for a plain file name; false (nothing written) otherwise.
bool include_name_ok(const char *name);
bool emit_include(Emitter *emitter, const char *name);
// `static const unsigned char NAME[] = {...};` holding size bytes of data,
// 8-byte aligned (a checkpoint's bytes, aec --lib --weights).
void emit_byte_array(Emitter *emitter, const char *name, const unsigned char *data, size_t size);
// A .ae source line for a comment: trimmed, then through comment_text.
void source_line(Loc loc, char *buf, size_t size);
// `FILE:LINE` of a location for a comment (the file's base name, escaped).
void source_place(Loc loc, char *buf, size_t size);
// `#line LINE "PATH"` (aec --line), and the marker line that tools/inspect.c
// turns into a directive back at the .c file's own line.
void emit_line_directive(Emitter *emitter, int line, const char *path);
#define LINE_RESTORE_MARKER "#line 0 \"@aec-restore\""

// The kernel being written keeps `bytes` of arrays on the stack of each thread
// that runs it (at most): the model records the largest, and the runtime makes
// room for it in every thread (runtime/stack.c).
void emit_stack_use(Emitter *emitter, size_t bytes);
// The size of the generated file's `real`: 4 (f32) or 8 (f64).
size_t emit_real_bytes(const Emitter *emitter);

// Names of constants in the generated C.
void upper_name(const char *name, char *buf, size_t size);
// The per-sample size constant of a node: ENCODER_DENSE_1_SIZE.
const char *size_const(const Graph *graph, int node, char *buf, size_t size);
// A parameter's constant: ENCODER_DENSE_1_KERNEL_OFFSET (suffix "OFFSET"), ..._SIZE.
void param_const(const Graph *graph, int param, const char *suffix, char *buf, size_t size);

// Opens a kernel: the comment naming its .ae place and formula, then
// `static void NAME(int n, const real *restrict NAMES[0], ..., real *restrict
// NAMES[n_inputs]) {`. `n` is there when anything is batched.
void emit_kernel_open(Emitter *emitter, const Node *node, const char *const *arg_names, const char *formula);
// The same, but the inputs whose bit is set in `written_inputs` (bit i: input
// i) are `real *restrict`: the kernel also writes them (a batchnorm's running
// statistics, parameters of the buffer that no step trains).
void emit_kernel_open_writing(Emitter *emitter, const Node *node, const char *const *arg_names, const char *formula,
                              unsigned written_inputs);

// Expression templates (the mini-language of OpInfo.expr, ops/ops.h): writes
// `tmpl` for `node` with $0..$3 as the inputs a, b, c, d at `index`.
void expand_template(Emitter *emitter, const Node *node, const char *tmpl, const char *index, const char *count_expr,
                     const char *rows_expr);
// The same with each $k replaced by operands[k].
void expand_with(Emitter *emitter, const Node *node, const char *tmpl, char operands[MAX_INPUTS][64],
                 const char *index, const char *count_expr, const char *rows_expr);

// Fused kernels. The values a group reads from outside itself, in order of
// first use, and the parameter name a fused kernel gives the i-th of them
// (a, b, c, ...).
enum { MAX_GROUP_INPUTS = 16 };
int group_inputs(const Graph *graph, const Group *group, int *inputs);
const char *group_param_name(int i);
bool group_uses_batch(const Graph *graph, const Group *group);
// A fused kernel's heading: the .ae line, the ops, and what a, b, ... are.
void emit_group_comment(Emitter *emitter, const Group *group, const int *inputs, int n_inputs);
// `static void NAME(int n, uint64_t key, uint64_t row0, const real *restrict a, ..., real *restrict OUTPUTS...) {`
void emit_group_signature(Emitter *emitter, const char *name, const Group *group, int n_inputs,
                          const char *const *outputs, int n_outputs);
// The expressions member `member`'s template reads: earlier members'
// temporaries (vK), or the group's input arrays at `index` (element 0 for scalars).
void member_operands(const Graph *graph, const Group *group, int member, const int *inputs, int n_inputs,
                     const char *index, char operands[MAX_INPUTS][64]);
// Member m's template `text` at element `at`.
void expand_member_text(Emitter *emitter, const Group *group, int m, const int *inputs, int n_inputs,
                        const char *text);

#endif
