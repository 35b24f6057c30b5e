// table.c — the op table: one row per op of ir/ops.def, in its order, each
// row defined in its family file (elementwise.c, dense.c, conv.c, pool.c,
// noise.c, losses.c, prior.c). It only points at the rows: nothing here
// calls a family, so the families may add nodes (build.c, which reads the
// table) without a cycle of calls.
#include "ops.h"

// ------------------------------------------------------------------ table
static const OpInfo *const op_table[] = {
#define OP(kind, name) &kind##_row,
#include "ops.def"
};
_Static_assert(sizeof op_table / sizeof *op_table == OP_COUNT, "every op of ops.def has its row in the table");

const OpInfo *op_info(OpKind op) { return op_table[op]; }

