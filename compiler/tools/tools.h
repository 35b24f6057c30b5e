// tools.h — what aec shows a person besides the program: --summary,
// --dump-ir, --dot, --stats and the #line directives of --line. They read
// the graph and the plans and write no generated C. Above cgen/.
#ifndef AEC_TOOLS_H
#define AEC_TOOLS_H

#include "cgen.h"

// ----------------------------------------------------------- inspect.c
// One node a line, in one stable form: `%ID = OP %IN, ... : SHAPE  name=... at=FILE:LINE:COL ...`.
void dump_node(FILE *out, const Graph *graph, int node);
void dump_graph(FILE *out, const Graph *graph, const char *after_pass);
void dump_function(FILE *out, const Graph *graph, const FunctionPlan *fn);
void write_dot(FILE *out, const Graph *graph, FunctionPlan *const *fns, int n_fns);
// Copies generated C to `out`, turning each LINE_RESTORE_MARKER line into a
// directive naming `c_name` at the real line.
bool write_with_line_directives(FILE *out, const char *text, size_t size, const char *c_name);

// ------------------------------------------------------------- stats.c
void print_stats(FILE *out, const ProgramPlan *plan, DType dtype);

// ----------------------------------------------------------- summary.c
void print_summary(FILE *out, const Graph *graph);

#endif
