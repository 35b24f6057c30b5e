// cgen.h — the code generator: writes the whole C program from its plan
// (passes/plan.c) through the writer. Above passes/.
#ifndef AEC_CGEN_H
#define AEC_CGEN_H

#include "passes.h"

// ----------------------------------------------------------- program.c
// Writes the whole C program. Returns false when a write failed or the
// model's training memory does not fit (reported by plan_program).
bool emit_program(FILE *out, const ProgramPlan *plan, const EmitOptions *options);

// ----------------------------------------------------------- kernels.c
void emit_kernels(Emitter *emitter, const ProgramPlan *plan, bool split);  // split: in two halves under AEC_PART

// --------------------------------------------------------- functions.c
void emit_functions(Emitter *emitter, const ProgramPlan *plan);

// ------------------------------------------------------------- notes.c
// Where a value of the function lives, as the generated C spells it.
void storage_of(const Graph *graph, const FunctionPlan *fn, int id, char *buf, size_t size);
// The generated file's table of a function's buffers: shape, storage, writer kernel, layer.
void emit_buffer_table(Emitter *emitter, const FunctionPlan *fn);
// The comment above each kernel: its nodes (op, .ae place, layer, shape) and FLOPs.
void emit_kernel_note(Emitter *emitter, const char *kernel, const Group *group);
// Writes a kernel's text: a blank line, the note, the text (its leading
// blank line dropped), each code line pointed at its .ae line under aec --line.
void emit_kernel_with_note(Emitter *emitter, const char *kernel, const Group *group, const char *text);
// The comment above a step's function: what it reads from earlier steps, what
// it computes again and why, what it leaves for later ones.
void emit_share_comment(Emitter *emitter, const SharePlan *plan, int step);

// ----------------------------------------------------------- library.c
// aec --lib: NAME.h, the library's API with every shape as a named constant;
// and, in NAME.c in place of main, the API's functions.
bool emit_library_header(FILE *out, const ProgramPlan *plan, const EmitOptions *options);
void emit_library_api(Emitter *emitter);

// ---------------------------------------------------------- describe.c
// The model as JSON (format in describe.c): the forward graph, parameters,
// losses, steps and random nodes; what `./model describe` prints and
// tests/torch/ rebuilds the model from. Returns malloc'd text, or NULL.
char *describe_graph(const Graph *graph, const char *model_name, const char *source_path);
// Writes `static const char description[] = "...";` for the model table.
void emit_description(Emitter *emitter);

#endif
