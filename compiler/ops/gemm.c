// gemm.c — matrix products specialized to their shapes. The three
// products of a dense layer (forward, input gradient, kernel gradient) are
// written as one register-blocked micro-kernel (gemm_rows: a 14 x 2-vector
// block of accumulators, or 14 x 1 for the last columns, GNU C vector types,
// no intrinsics) called with literal sizes from a per-shape function whose
// OpenMP loop splits output blocks between threads. Each output element is computed by one thread in
// one fixed order, so results do not depend on the thread count. The
// elementwise ops fused after a product (bias, activation, the activation's
// derivative) run on each block while it is in cache.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops.h"
#define AERT_KERNELS_SHARED_ONLY  // AERT_GEMM_ROWS and AERT_PANEL_DEPTH, which the generated code uses too
#include "aert_kernels.h"

// Products whose depth K is a constant up to PANEL_DEPTH copy each block of 32
// columns of their weight into a [K][32] panel on the thread's stack (at most
// 256 KiB) before using it for every row block: the panel is read in order,
// where the weight's rows are N apart (a stand-alone loop over the same
// blocks ran at 135 GFLOP/s from the weight in place, 174 from a panel). The
// panel is zero-padded to 32 columns, so the last, narrower column block (20
// columns of 500) runs the same 14 x 2-vector loop and only its store is cut.
// Deeper ones read the weight in place (and transpose an input gradient's
// kernel into scratch first).
enum { PANEL_DEPTH = AERT_PANEL_DEPTH };

// The micro-kernel's tile: GEMM_ROWS rows of a at a time, against two vectors
// of columns (see gemm_rows).
enum { GEMM_ROWS = AERT_GEMM_ROWS };

static bool packs_panels(const Graph *g, const Node *lead) {
  return (lead->op == OP_DENSE || lead->op == OP_DENSE_GRAD_INPUT) &&
         shape_size(g->nodes[lead->inputs[0]].shape) <= PANEL_DEPTH;
}

size_t gemm_scratch(const Graph *g, const Group *group, bool optimize) {
  if (!optimize || group->kind != GROUP_GEMM) return 0;
  const Node *lead = &g->nodes[group->members[0]];
  if (lead->op != OP_DENSE_GRAD_INPUT || packs_panels(g, lead)) return 0;
  return shape_size(g->nodes[lead->inputs[1]].shape);  // the kernel, transposed
}

// The loop over output blocks: `rows` is a C expression (n, or a constant).
// With `pack` (a statement filling panel[K][GEMM_COLS] from columns j0 to
// j0 + cols of the weight) each thread packs a panel when its column block
// changes; blocks run column block by column block, so that is once a block.
static void emit_row_blocks(Emitter *e, const char *rows_expr, bool rows_constant) {
  if (rows_constant) {
    emit_line(e, "  enum { ROW_BLOCKS = (%s + GEMM_ROWS - 1) / GEMM_ROWS };", rows_expr);
    emit_line(e, "  const int row_blocks = ROW_BLOCKS;");
  } else {
    emit_line(e, "  const int row_blocks = (%s + GEMM_ROWS - 1) / GEMM_ROWS;", rows_expr);
  }
}

// The generated code's GEMM_COLS: two 64-byte vectors of reals.
static size_t gemm_cols(const Emitter *e) { return 128 / emit_real_bytes(e); }

// The stack a thread's panels of a product by strips or by chunks fill, at
// most (the generated STRIP_PANELS_BYTES and CHUNK_PANELS_BYTES).
enum { THREAD_PANELS_MIB = 1 };

// A panel[DEPTH * GEMM_COLS] on each thread's stack, DEPTH at most PANEL_DEPTH.
static void use_panel_stack(Emitter *e) { emit_stack_use(e, PANEL_DEPTH * gemm_cols(e) * emit_real_bytes(e)); }

static bool one_column_block(const Emitter *e, const Node *lead) { return shape_size(lead->shape) <= gemm_cols(e); }

// Weights from this size up are asked for ahead (gemm_tile_ahead): smaller ones
// stay in the caches from one step to the next (simple.ae's and deep.ae's,
// 100-400 KB, gained nothing), and the large model's products that gained most
// read weights of 2-3 MB.
enum { AHEAD_MIN_BYTES = 1 << 20 };

// A packed forward or input-gradient tile (the weight is the lead's input 1).
// With more than one column block and a weight of AHEAD_MIN_BYTES or more, it
// asks for this row block's share of the rows its thread packs next
// (gemm_tile_ahead): of the weight b[K][N] for a forward product, rows N
// apart; of b[N][K] for an input gradient, whose next panel is next_cols rows
// of K in a row, asked for as K stretches of next_cols.
static void emit_packed_tile(Emitter *e, const Node *lead, bool transposed) {
  const size_t real_size = emit_real_bytes(e);
  if (one_column_block(e, lead) || shape_size(e->graph->nodes[lead->inputs[1]].shape) * real_size < AHEAD_MIN_BYTES) {
    emit_line(e, "    gemm_tile(rows, cols, GEMM_COLS, K, a + (size_t)i0 * K, K, 1, panel, GEMM_COLS, out + (size_t)i0 * N + j0, N);");
    return;
  }
  emit_line(e, "    const int share = (K + row_blocks - 1) / row_blocks, first = i0 / GEMM_ROWS * share;");
  if (transposed) {
    emit_line(e, "    const int next_cols = N - j0 - GEMM_COLS < GEMM_COLS ? N - j0 - GEMM_COLS : GEMM_COLS;");
    emit_line(e, "    const real *ahead = next_cols > 0 && first < K ? b + (size_t)(j0 + GEMM_COLS) * K + (size_t)first * next_cols : NULL;");
  } else {
    emit_line(e, "    const real *ahead = j0 + GEMM_COLS < N && first < K ? b + (size_t)first * N + j0 + GEMM_COLS : NULL;");
  }
  emit_line(e, "    gemm_tile_ahead(rows, cols, GEMM_COLS, K, a + (size_t)i0 * K, K, 1, panel, GEMM_COLS, out + (size_t)i0 * N + j0, N,");
  emit_line(e, "                    ahead, K - first < share ? K - first : share, %s, 0);", transposed ? "next_cols" : "N");
}

// The panel of a weight b[K][N] read as is (a forward product).
static const char *const PACK_WEIGHT =
    "for (int k = 0; k < K; k++) for (int j = 0; j < GEMM_COLS; j++) "
    "panel[(size_t)k * GEMM_COLS + j] = j < cols ? b[(size_t)k * N + j0 + j] : 0;";

static void emit_blocks_open(Emitter *e, const char *rows_expr, const char *pack) {
  if (pack) {
    use_panel_stack(e);
    emit_line(e, "#pragma omp parallel");
    emit_line(e, "  {");
    emit_line(e, "  real panel[DEPTH * GEMM_COLS] __attribute__((aligned(64)));  // this thread's column block of b");
    emit_line(e, "  int packed = -1;");
    emit_line(e, "#pragma omp for schedule(static)");
  } else {
    emit_line(e, "#pragma omp parallel for schedule(static)");
  }
  emit_line(e, "  for (int block = 0; block < (N + GEMM_COLS - 1) / GEMM_COLS * row_blocks; block++) {");
  emit_line(e, "    const int j0 = block / row_blocks * GEMM_COLS, i0 = block %% row_blocks * GEMM_ROWS;");
  emit_line(e, "    const int rows = %s - i0 < GEMM_ROWS ? %s - i0 : GEMM_ROWS;", rows_expr, rows_expr);
  emit_line(e, "    const int cols = N - j0 < GEMM_COLS ? N - j0 : GEMM_COLS;");
  if (pack) {
    emit_line(e, "    if (packed != j0) {");
    emit_line(e, "      %s", pack);
    emit_line(e, "      packed = j0;");
    emit_line(e, "    }");
  }
}

static void emit_block_loop(Emitter *e, const char *rows_expr, bool rows_constant, const char *pack) {
  emit_row_blocks(e, rows_expr, rows_constant);
  emit_blocks_open(e, rows_expr, pack);
}

// A product of the batch's n rows with one column block (N <= GEMM_COLS): 14-row
// blocks would split 10 to 9 between two threads (256 = 18 x 14 + 4), so each
// thread takes an even share of the rows instead and tiles it the same way.
// An element's sum does not depend on which tile it falls in, so results stay
// the same on any thread count.
static void emit_row_split_open(Emitter *e, const char *pack) {
  emit_line(e, "#pragma omp parallel");
  emit_line(e, "  {");
  emit_line(e, "  const int j0 = 0, cols = N;");
  if (pack) {
    use_panel_stack(e);
    emit_line(e, "  real panel[DEPTH * GEMM_COLS] __attribute__((aligned(64)));  // this thread's copy of b");
    emit_line(e, "  %s", pack);
  }
  emit_line(e, "  int first, last;");
  emit_line(e, "  thread_rows(n, &first, &last);");
  emit_line(e, "  for (int i0 = first; i0 < last; i0 += GEMM_ROWS) {");
  emit_line(e, "    const int rows = last - i0 < GEMM_ROWS ? last - i0 : GEMM_ROWS;");
}

// The forward and input-gradient products' loop: by rows when there is one
// column block, else over 14 x 32 blocks.
static bool emit_product_loop(Emitter *e, const Node *lead, const char *pack) {
  if (one_column_block(e, lead)) {
    emit_row_split_open(e, pack);
    return true;
  }
  emit_block_loop(e, "n", false, pack);
  return pack != NULL;
}

static void emit_block_loop_end(Emitter *e, bool pack) {
  emit_line(e, "  }");
  if (pack) emit_line(e, "  }");
  emit_line(e, "}");
}

static const char *letter(int i) { return group_param_name(i); }

// The epilogue: members 1.. of the group applied to v0 at element `at`, the
// block's loops `indent` deeper than a kernel's body. Each row is one simd
// loop over its columns, so an element's column alone decides whether it
// goes through a vector or a scalar function (libmvec's expf differs from
// the scalar one in the last bit): left to itself, GCC made versions of the
// nest by the tile's row count, and a thread's last, shorter tile, which
// depends on how the batch's rows split between threads, took another.
static void emit_epilogue_at(Emitter *e, const Group *group, const int *inputs, int n_inputs, const char *first_value,
                             const char *indent) {
  const Graph *g = e->graph;
  emit_line(e, "%s    for (int r = 0; r < rows; r++)", indent);
  emit_line(e, "#pragma omp simd");
  emit_line(e, "%s      for (int j = 0; j < cols; j++) {", indent);
  emit_line(e, "%s        const size_t at = (size_t)(i0 + r) * N + j0 + j;", indent);
  emit_line(e, "%s        const real v0 = %s;", indent, first_value);
  for (int m = 1; m < group->n_members; m++) {
    emit_format(e, "%s        const real v%d = ", indent, m);
    expand_member(e, group, m, inputs, n_inputs);
    emit_format(e, ";  // %s\n", op_name(g->nodes[group->members[m]].op));
  }
  emit_line(e, "%s        out[at] = v%d;", indent, group->n_members - 1);
  emit_line(e, "%s      }", indent);
}

static void emit_epilogue(Emitter *e, const Group *group, const int *inputs, int n_inputs, const char *first_value) {
  emit_epilogue_at(e, group, inputs, n_inputs, first_value, "");
}

// Inside the parallel region of a product by strips or by chunks: this thread's
// blocks of schedule(static)'s numbering, column block by column block, and the
// column blocks they fall in (the first and the last may be shared).
static const char *const THREAD_COLUMN_BLOCKS[] = {
    "  int first, last;  // this thread's blocks, numbered column block by column block",
    "  thread_rows(COL_BLOCKS * row_blocks, &first, &last);",
    "  const int first_col = first / row_blocks, owned = last > first ? (last - 1) / row_blocks - first_col + 1 : 0;",
    NULL};

// A forward product with a weight of AHEAD_MIN_BYTES or more goes by chunks of
// K: each thread packs its column blocks of the weight for K rows at a time, as
// many as fit CHUNK_PANELS_BYTES, then runs every 14-row block of a against
// those panels in turn, the block's chunk of a staying in L1 while the panels
// stream from L2; the sums go on in `out` from one chunk to the next, and the
// epilogue runs after the last. Column block by column block, every tile read
// its 14 rows of a, 28-56 KB, from L2 again. The 784-1000-500-250-30 model
// trained 1.4-3.3% faster (four sets of 4-8 alternating runs, medians): in the
// step its products with N = 1000 went from 257-270 to 271-285 GFLOP/s, and the
// others moved within the machine's noise. Timed alone, repeated on the same
// operands, the chunks were 0-4% slower: the gain is in the step, where a was
// just written by the previous product (each core a half of its columns),
// which may be why. Under 1 MiB they cost deep.ae 6% and simple.ae 12%. Up to
// 128 column blocks, so a chunk is at least 64 deep. The blocks are
// schedule(static)'s, numbered column block by column block, and every element
// sums over k in order: the panel path's results, bit for bit.
enum { CHUNKS_MOST_COLUMN_BLOCKS = 128 };

static bool by_chunks(const Emitter *e, const Node *lead) {
  const size_t real_size = emit_real_bytes(e);
  return !one_column_block(e, lead) && shape_size(lead->shape) <= CHUNKS_MOST_COLUMN_BLOCKS * gemm_cols(e) &&
         shape_size(e->graph->nodes[lead->inputs[1]].shape) * real_size >= AHEAD_MIN_BYTES;
}

static void emit_chunks(Emitter *e, const Group *group, const int *inputs, int n_inputs) {
  static const char *const head[] = {
      "  // By chunks: this thread's column blocks of b for as many rows of K as fit 1 MiB of",
      "  // stack, then each 14-row block of a against them; the sums go on in out.",
      NULL};
  static const char *const head_rest[] = {
      "  const int row_blocks = (n + GEMM_ROWS - 1) / GEMM_ROWS;",
      "  if (row_blocks == 0) return;",
      "#pragma omp parallel",
      "  {",
      NULL};
  static const char *const rest[] = {
      "  const size_t whole = (size_t)owned * K * GEMM_COLS * sizeof(real);  // its panels K rows deep",
      "  const int chunks = (int)((whole + CHUNK_PANELS_BYTES - 1) / CHUNK_PANELS_BYTES), chunk = (K + chunks - 1) / (chunks > 0 ? chunks : 1);",
      "  real panels[(owned > 0 ? owned : 1) * chunk * GEMM_COLS] __attribute__((aligned(64)));  // its column blocks of b's chunk",
      "  for (int k0 = 0; k0 < K && owned > 0; k0 += chunk) {",
      "    const int depth = K - k0 < chunk ? K - k0 : chunk;",
      "    for (int p = 0; p < owned; p++) {",
      "      const int j0 = (first_col + p) * GEMM_COLS, cols = N - j0 < GEMM_COLS ? N - j0 : GEMM_COLS;",
      "      real *panel = panels + (size_t)p * depth * GEMM_COLS;",
      "      for (int k = 0; k < depth; k++)",
      "        for (int j = 0; j < GEMM_COLS; j++) panel[(size_t)k * GEMM_COLS + j] = j < cols ? b[(size_t)(k0 + k) * N + j0 + j] : 0;",
      "    }",
      "    for (int i = 0; i < row_blocks; i++) {",
      "      const int i0 = i * GEMM_ROWS, rows = n - i0 < GEMM_ROWS ? n - i0 : GEMM_ROWS;",
      "      // Of its column blocks, the first and the last may have only some row blocks here.",
      "      const int p0 = first_col * row_blocks + i < first, p1 = (first_col + owned - 1) * row_blocks + i >= last ? owned - 1 : owned;",
      "      for (int p = p0; p < p1; p++) {",
      "        const int j0 = (first_col + p) * GEMM_COLS, cols = N - j0 < GEMM_COLS ? N - j0 : GEMM_COLS;",
      "        gemm_tile_ahead(rows, cols, GEMM_COLS, depth, a + (size_t)i0 * K + k0, K, 1, panels + (size_t)p * depth * GEMM_COLS,",
      "                        GEMM_COLS, out + (size_t)i0 * N + j0, N, NULL, 0, 0, k0 > 0);",
      "        if (k0 + depth < K) continue;",
      NULL};
  static const char *const tail[] = {
      "      }",
      "    }",
      "  }",
      "  }",
      "}",
      NULL};
  // The panels, each column block's rounding of K to whole chunks at most a row deeper.
  emit_stack_use(e, ((size_t)THREAD_PANELS_MIB << 20) + CHUNKS_MOST_COLUMN_BLOCKS * gemm_cols(e) * emit_real_bytes(e));
  emit_lines(e, head);
  emit_line(e, "  enum { COL_BLOCKS = (N + GEMM_COLS - 1) / GEMM_COLS, CHUNK_PANELS_BYTES = %d << 20 };", THREAD_PANELS_MIB);
  emit_lines(e, head_rest);
  emit_lines(e, THREAD_COLUMN_BLOCKS);
  emit_lines(e, rest);
  emit_epilogue_at(e, group, inputs, n_inputs, "out[at] + c[j0 + j]", "    ");
  emit_lines(e, tail);
}

// A block's rows of the loss kernel, `width` columns each: every value in
// the loop is a real (no double sums), so it vectorizes with libmvec's calls
// (see emit_loss_group); the column sums and factors are updated in it, where
// copying the terms to arrays for separate loops cost simple.ae's loss kernel 5%.
static void emit_loss_rows(Emitter *e, const Group *group, const int *inputs, int n_inputs, const char *width) {
  const Graph *g = e->graph;
  const OpInfo *loss_op = op_info(g->nodes[group->members[1]].op);
  const char *loss_name = op_name(g->nodes[group->members[1]].op);
  emit_line(e, "      for (int r = 0; r < rows; r++) {");
  emit_line(e, "#pragma omp simd");
  emit_line(e, "        for (int j = 0; j < %s; j++) {", width);
  emit_line(e, "          const size_t at = (size_t)(i0 + r) * N + j0 + j;");
  emit_line(e, "          const real v0 = out[at] + c[j0 + j];");
  emit_format(e, "          column_sums[j] += ");
  if (loss_op->log_factor) {
    expand_member_text(e, group, 1, inputs, n_inputs, loss_op->rest);
    emit_format(e, ";  // %s, but for the logarithm of\n          column_factors[j] *= ", loss_name);
    expand_member_text(e, group, 1, inputs, n_inputs, loss_op->log_factor);
  } else {
    expand_member(e, group, 1, inputs, n_inputs);
  }
  emit_format(e, ";  // %s\n          out[at] = ", loss_name);
  expand_member(e, group, 2, inputs, n_inputs);
  emit_format(e, ";  // %s\n", op_name(g->nodes[group->members[2]].op));
  emit_line(e, "        }");
  emit_line(e, "      }");
}

// The last layer with its loss: each block adds its share of the loss to
// its own partial sum (summed in block order afterwards, whatever the
// threads) and writes the loss's gradient in place of the layer's output.
static void emit_gemm_loss(Emitter *e, const char *name, const Group *group, const int *inputs, int n_inputs) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  const Node *loss = &g->nodes[group->members[1]];
  char in[512], out[512];
  size_const(g, lead->inputs[0], in, sizeof in);
  size_const(g, lead->id, out, sizeof out);
  emit_format(e, "static void %s(int n, ", name);
  for (int i = 0; i < n_inputs; i++) emit_format(e, "const real *restrict %s, ", letter(i));
  emit_format(e, "real *restrict loss, real *restrict out) {\n");
  emit_line(e, "  enum { K = %s, N = %s };", in, out);
  emit_line(e, "  const size_t count = (size_t)n * N;");
  emit_row_blocks(e, "n", false);
  emit_line(e, "  const int blocks = (N + GEMM_COLS - 1) / GEMM_COLS * row_blocks;");
  emit_line(e, "  double *restrict partial = aert_loss_partials((size_t)blocks);  // a block's share of the loss each");
  const bool pack = packs_panels(g, lead);
  if (pack) emit_line(e, "  enum { DEPTH = K };");
  emit_blocks_open(e, "n", pack ? PACK_WEIGHT : NULL);
  if (pack) {
    emit_packed_tile(e, lead, false);
  } else {
    emit_line(e, "    gemm_tile(rows, cols, cols, K, a + (size_t)i0 * K, K, 1, b + j0, N, out + (size_t)i0 * N + j0, N);");
  }
  const OpInfo *loss_op = op_info(loss->op);
  const bool split_log = loss_op->log_factor != NULL;
  emit_line(e, "    // A block's at most 14 terms a column are summed in real, the columns in double.");
  emit_line(e, "    real column_sums[GEMM_COLS] = {0};");
  if (split_log) {
    emit_line(e, "    // The terms' logarithms: one of each column's product of factors (each in [1, 2]).");
    emit_line(e, "    real column_factors[GEMM_COLS];");
    emit_line(e, "    for (int j = 0; j < GEMM_COLS; j++) column_factors[j] = 1;");
  }
  // With a constant width, a full block's loop keeps its column sums and
  // factors in registers and needs no masks: simple.ae's loss kernel took 9%
  // less time than with the width `cols` alone.
  emit_line(e, "    if (cols == GEMM_COLS) {");
  emit_loss_rows(e, group, inputs, n_inputs, "GEMM_COLS");
  emit_line(e, "    } else {");
  emit_loss_rows(e, group, inputs, n_inputs, "cols");
  emit_line(e, "    }");
  if (split_log) {
    emit_line(e, "#pragma omp simd");
    emit_line(e, "    for (int j = 0; j < cols; j++) column_sums[j] += log(column_factors[j]);");
  }
  emit_line(e, "    double sum = 0;");
  emit_line(e, "    for (int j = 0; j < GEMM_COLS; j++) sum += column_sums[j];");
  emit_line(e, "    partial[block] = sum;");
  emit_line(e, "  }");
  if (pack) emit_line(e, "  }");
  emit_line(e, "  double sum = 0;");
  emit_line(e, "  for (int block = 0; block < blocks; block++) sum += partial[block];");
  switch (op_info(loss->op)->divisor) {
  case DIVIDE_BY_ONE: emit_line(e, "  loss[0] = (real)sum;"); break;
  case DIVIDE_BY_COUNT: emit_line(e, "  loss[0] = (real)(sum / (double)count);"); break;
  case DIVIDE_BY_ROWS: emit_line(e, "  loss[0] = (real)(sum / n);"); break;
  }
  emit_line(e, "}");
}

// The kernel's parameters in emit_call's order: the inputs, a kernel gradient's
// bias gradient (Group.second_output), the output, the scratch.
static void emit_signature(Emitter *e, const char *name, const Group *group, int n_inputs, bool batch, bool scratch) {
  emit_format(e, "static void %s(", name);
  if (batch) emit_format(e, "int n, ");
  for (int i = 0; i < n_inputs; i++) emit_format(e, "const real *restrict %s, ", letter(i));
  if (group->second_output >= 0) emit_format(e, "real *restrict bias, ");
  emit_format(e, "real *restrict out%s) {\n", scratch ? ", real *restrict scratch" : "");
}

static void emit_comment(Emitter *e, const Group *group, const int *inputs, int n_inputs, const char *formula) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  emit_blank(e);
  if (lead->loc.source) {
    char line[160], place[1200];
    source_line(lead->loc, line, sizeof line);
    source_place(lead->loc, place, sizeof place);
    emit_format(e, "// %s: %s\n", place, line);
  }
  emit_format(e, "// %s%s", lead->is_backward ? "backward: " : "", op_name(lead->op));
  for (int m = 1; m < group->n_members; m++) emit_format(e, " -> %s", op_name(g->nodes[group->members[m]].op));
  emit_format(e, ", %.0f FLOPs per sample\n// %s\n// reads", op_info(lead->op)->flops(g, lead), formula);
  for (int i = 0; i < n_inputs; i++) emit_format(e, "%s %s = %s", i ? "," : "", letter(i), g->nodes[inputs[i]].name);
  emit_format(e, "\n");
}

// A kernel gradient's panel: column block j0 of b[n][N], n rows deep.
static const char *const PACK_GRADIENT =
    "for (int k = 0; k < n; k++) for (int j = 0; j < GEMM_COLS; j++) "
    "panel[(size_t)k * GEMM_COLS + j] = j < cols ? b[(size_t)k * N + j0 + j] : 0;";

// The bias gradient of the column block just packed, under the `if` that gives
// the block to one thread.
static const char *const PANEL_BIAS_SUMS[] = {
    "      real sums[GEMM_COLS] = {0};  // each column in batch order, as the bias_grad kernel",
    "      for (int k = 0; k < n; k++)",
    "        for (int j = 0; j < GEMM_COLS; j++) sums[j] += panel[(size_t)k * GEMM_COLS + j];",
    "      for (int j = 0; j < cols; j++) bias[j0 + j] = sums[j];",
    "    }",
    NULL};

// A kernel gradient of a weight of AHEAD_MIN_BYTES or more, by strips: each
// thread first packs every column block of b (the output's gradient, n rows
// deep) it has blocks in, with their bias sums, and then goes row block by row
// block: it copies a's 14 columns of that block into a [n][GEMM_ROWS] strip and
// runs them against each of its panels. Column block by column block, a tile
// read its 14 a values for every k from a row of a 1-4 KB past the last one's,
// and the next tile the same rows again; the strip is one stretch of the L1
// cache, read by every panel in turn, and the panels stream from L2. On the
// 784-1000-500-250-30 model the four largest kernel gradients went from 245-285
// to 278-309 GFLOP/s, timed warm (time-kernels, 2 x 30 repeats each), and the
// model trained 3% faster; on weights under 1 MiB (250 x 500, 500 x 250) strips
// were 0-5% slower. The strip's copy runs GEMM_ROWS lanes whatever `rows` is: a
// loop of `rows` iterations did not vectorize and took the gain back. The blocks are
// schedule(static)'s, numbered column block by column block, and each element
// sums over the batch in order, so the results are the panel path's, bit for bit.
static void emit_strips(Emitter *e, bool bias) {
  static const char *const head[] = {
      "  // By strips: a's 14 columns of a row block at a time, copied into a strip and run",
      "  // against every column block of b this thread packed, while those fit 1 MiB of stack.",
      NULL};
  static const char *const head_rest[] = {
      "  if (n <= AEC_PANEL_DEPTH && (size_t)n * COL_BLOCKS * GEMM_COLS * sizeof(real) <= STRIP_PANELS_BYTES) {",
      "#pragma omp parallel",
      "  {",
      NULL};
  static const char *const panels[] = {
      "  real panels[(owned > 0 ? owned : 1) * n * GEMM_COLS] __attribute__((aligned(64)));  // its column blocks of b",
      "  real strip[n * GEMM_ROWS] __attribute__((aligned(64)));  // a's columns i0 to i0 + rows, as [n][GEMM_ROWS]",
      "  for (int c = 0; c < owned; c++) {",
      "    const int j0 = (first_col + c) * GEMM_COLS, cols = N - j0 < GEMM_COLS ? N - j0 : GEMM_COLS;",
      "    real *panel = panels + (size_t)c * n * GEMM_COLS;",
      NULL};
  static const char *const tail[] = {
      "  }",
      "  for (int i = 0; i < ROW_BLOCKS; i++) {",
      "    const int i0 = i * GEMM_ROWS, rows = M - i0 < GEMM_ROWS ? M - i0 : GEMM_ROWS;",
      "    // Of its column blocks, the first and the last may have only some row blocks here.",
      "    const int c0 = first_col * ROW_BLOCKS + i < first, c1 = (first_col + owned - 1) * ROW_BLOCKS + i >= last ? owned - 1 : owned;",
      "    if (c0 >= c1) continue;",
      "    for (int k = 0; k < n; k++)",
      "      for (int r = 0; r < GEMM_ROWS; r++) strip[(size_t)k * GEMM_ROWS + r] = r < rows ? a[(size_t)k * M + i0 + r] : 0;",
      "    for (int c = c0; c < c1; c++) {",
      "      const int j0 = (first_col + c) * GEMM_COLS, cols = N - j0 < GEMM_COLS ? N - j0 : GEMM_COLS;",
      "      gemm_tile(rows, cols, GEMM_COLS, n, strip, 1, GEMM_ROWS, panels + (size_t)c * n * GEMM_COLS, GEMM_COLS,",
      "                out + (size_t)i0 * N + j0, N);",
      "    }",
      "  }",
      "  }",
      "  return;",
      "  }",
      NULL};
  // The panels, and a strip of GEMM_ROWS columns of a, the batch deep.
  emit_stack_use(e, ((size_t)THREAD_PANELS_MIB << 20) + PANEL_DEPTH * GEMM_ROWS * emit_real_bytes(e));
  emit_lines(e, head);
  emit_line(e, "  enum { COL_BLOCKS = (N + GEMM_COLS - 1) / GEMM_COLS, STRIP_PANELS_BYTES = %d << 20 };", THREAD_PANELS_MIB);
  emit_lines(e, head_rest);
  emit_lines(e, THREAD_COLUMN_BLOCKS);
  emit_lines(e, panels);
  emit_line(e, "    %s", PACK_GRADIENT);
  if (bias) {
    emit_line(e, "    if ((first_col + c) * ROW_BLOCKS >= first) {  // the column block's first block is this thread's");
    emit_lines(e, PANEL_BIAS_SUMS);
  }
  emit_lines(e, tail);
}

void emit_gemm_group(Emitter *e, const char *name, const Group *group) {
  const Graph *g = e->graph;
  const Node *lead = &g->nodes[group->members[0]];
  int inputs[32];
  int n_inputs = group_inputs(g, group, inputs);
  char in[512], out[512];
  if (group->kind == GROUP_GEMM_LOSS) {
    emit_comment(e, group, inputs, n_inputs, "loss = sum of the loss over out[n][N] = a[n][K] . b[K][N] + c[N]; out = its gradient");
    emit_gemm_loss(e, name, group, inputs, n_inputs);
    return;
  }
  switch (lead->op) {
  case OP_DENSE:  // out[n][N] = a[n][K] . b[K][N] + c[N], then the epilogue
    size_const(g, lead->inputs[0], in, sizeof in);
    size_const(g, lead->id, out, sizeof out);
    emit_comment(e, group, inputs, n_inputs, "out[n][N] = epilogue(a[n][K] . b[K][N] + c[N])");
    emit_signature(e, name, group, n_inputs, true, false);
    emit_line(e, "  enum { K = %s, N = %s };", in, out);
    bool braced;
    if (packs_panels(g, lead) && by_chunks(e, lead)) {
      emit_chunks(e, group, inputs, n_inputs);
      return;
    }
    if (packs_panels(g, lead)) {
      emit_line(e, "  enum { DEPTH = K };");
      braced = emit_product_loop(e, lead, PACK_WEIGHT);
      emit_packed_tile(e, lead, false);
    } else {
      braced = emit_product_loop(e, lead, NULL);
      emit_line(e, "    gemm_tile(rows, cols, cols, K, a + (size_t)i0 * K, K, 1, b + j0, N, out + (size_t)i0 * N + j0, N);");
    }
    emit_epilogue(e, group, inputs, n_inputs, "out[at] + c[j0 + j]");
    emit_block_loop_end(e, braced);
    return;
  case OP_DENSE_GRAD_INPUT:  // out[n][N] = a[n][K] . b[N][K]^T, b transposed into scratch first
    size_const(g, lead->inputs[0], in, sizeof in);
    size_const(g, lead->id, out, sizeof out);
    if (packs_panels(g, lead)) {
      emit_comment(e, group, inputs, n_inputs, "out[n][N] = epilogue(a[n][K] . b[N][K]^T), b^T packed a column block at a time");
      emit_signature(e, name, group, n_inputs, true, false);
      emit_line(e, "  enum { K = %s, N = %s, DEPTH = K };", in, out);
      const bool braced = emit_product_loop(e, lead, "pack_transposed(panel, b, K, j0, cols);");
      emit_packed_tile(e, lead, true);
      emit_epilogue(e, group, inputs, n_inputs, "out[at]");
      emit_block_loop_end(e, braced);
      return;
    }
    emit_comment(e, group, inputs, n_inputs, "out[n][N] = epilogue(a[n][K] . b[N][K]^T), b^T packed into scratch[K][N]");
    emit_signature(e, name, group, n_inputs, true, true);
    emit_line(e, "  enum { K = %s, N = %s };", in, out);
    emit_line(e, "  // The transpose goes by 16 x 16 tiles so reads and writes both stay in cache.");
    emit_line(e, "#pragma omp parallel for schedule(static)");
    emit_line(e, "  for (int col0 = 0; col0 < N; col0 += 16)");
    emit_line(e, "    for (int k0 = 0; k0 < K; k0 += 16)");
    emit_line(e, "      for (int col = col0; col < col0 + 16 && col < N; col++)");
    emit_line(e, "        for (int k = k0; k < k0 + 16 && k < K; k++) scratch[(size_t)k * N + col] = b[(size_t)col * K + k];");
    const bool scratch_braced = emit_product_loop(e, lead, NULL);
    emit_line(e, "    gemm_tile(rows, cols, cols, K, a + (size_t)i0 * K, K, 1, scratch + j0, N, out + (size_t)i0 * N + j0, N);");
    emit_epilogue(e, group, inputs, n_inputs, "out[at]");
    emit_block_loop_end(e, scratch_braced);
    return;
  case OP_DENSE_GRAD_KERNEL: {  // out[M][N] = a[n][M]^T . b[n][N]; with a bias gradient, bias[N] = its column sums
    const bool bias = group->second_output >= 0;
    size_const(g, lead->inputs[0], in, sizeof in);
    size_const(g, lead->inputs[1], out, sizeof out);
    emit_comment(e, group, inputs, n_inputs,
                 bias ? "out[M][N] = a[n][M]^T . b[n][N], summed over the batch; bias[N] = b's column sums"
                      : "out[M][N] = a[n][M]^T . b[n][N], summed over the batch");
    emit_signature(e, name, group, n_inputs, true, false);
    emit_line(e, "  enum { M = %s, N = %s };", in, out);
    emit_row_blocks(e, "M", true);
    const size_t real_size = emit_real_bytes(e);
    if (shape_size(lead->shape) * real_size >= AHEAD_MIN_BYTES)
      emit_strips(e, bias);
    emit_line(e, "  if (n <= AEC_PANEL_DEPTH) {  // b's column block packed as the weights' are, n rows deep");
    emit_line(e, "  const int DEPTH = n;");
    emit_blocks_open(e, "M", PACK_GRADIENT);
    if (bias) {
      emit_line(e, "    if (i0 == 0) {  // the column block's first block: one thread, just packed");
      emit_lines(e, PANEL_BIAS_SUMS);
    }
    emit_line(e, "    gemm_tile(rows, cols, GEMM_COLS, n, a + i0, 1, M, panel, GEMM_COLS, out + (size_t)i0 * N + j0, N);");
    emit_line(e, "  }");
    emit_line(e, "  }");
    emit_line(e, "  return;");
    emit_line(e, "  }");
    if (bias) emit_column_sums(e, "b", "bias", "N");
    emit_blocks_open(e, "M", NULL);
    emit_line(e, "    gemm_tile(rows, cols, cols, n, a + i0, 1, M, b + j0, N, out + (size_t)i0 * N + j0, N);");
    emit_block_loop_end(e, false);
    return;
  }
  default:
    fprintf(stderr, "aec: internal error: %s is not a matrix product\n", op_name(lead->op));
    exit(3);
  }
}
