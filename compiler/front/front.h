// front.h — from the AST to the graph: scopes, nets (weights instantiated on
// first use), the language's builtins (ir/ops.def's builtin rows), the train
// block, and the roles the application commands use. Above ops/ (nodes are
// added through its rules). Its files share lowering.h.
#ifndef AEC_FRONT_H
#define AEC_FRONT_H

#include "ops.h"

// ------------------------------------------- lower.c (with scope.c, builtins.c, layers.c, train.c)
// Builds the graph from the AST: evaluates params (with -D overrides),
// applies nets (instantiating weights on first use), checks shapes,
// collects losses and the train block. Reports errors through diag_*;
// returns NULL when any was found.
typedef struct Define {
  const char *name;
  double value;
} Define;

Graph *lower_program(const Program *program, const Define *defines, int n_defines);

// ------------------------------------------------------------ roles.c
// Sets Graph.corrupt_node and Graph.first_kernel_param (after lowering, before
// autodiff): what `denoise` and `filters` use.
void find_roles(Graph *graph);

// Every language-level operation, `name(arguments)  summary`, one a line, in
// ops.def's order (aec --list-ops; builtins.c).
void list_ops(FILE *out);

#endif
