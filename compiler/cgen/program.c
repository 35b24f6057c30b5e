// program.c — writes the generated C program from its plan: a header saying
// what produced it, shapes and parameter offsets as named constants, the
// kernels (kernels.c), the optimizers, the functions (functions.c), and the
// aert_model table the runtime drives.
#include <stdlib.h>
#include <string.h>

#include "cgen.h"


// Whether some step's lr follows a schedule: the model table then lists them.
static bool any_lr_schedule(const Graph *g) {
  for (int i = 0; i < g->n_steps; i++)
    if (g->steps[i].lr_schedule != OP_INPUT) return true;
  return false;
}

static void emit_tables(Emitter *e) {
  Graph *g = e->graph;
  emit_blank(e);
  emit_line(e, "static const aert_param params[] = {");
  for (int i = 0; i < g->n_params; i++) {
    const Param *p = &g->params[i];
    char off[512], size[512];
    param_const(g, i, "OFFSET", off, sizeof off);
    param_const(g, i, "SIZE", size, sizeof size);
    emit_format(e, "  {\"%s\", %d, {", p->name, p->shape.rank);
    for (int d = 0; d < p->shape.rank; d++) emit_format(e, d ? ", %d" : "%d", p->shape.dims[d]);
    const char *init = p->state ? (p->init_ones ? "AERT_INIT_STATE_ONES" : "AERT_INIT_STATE_ZEROS")
                       : p->init_ones ? "AERT_INIT_ONES"
                       : p->is_kernel ? "AERT_INIT_GLOROT_UNIFORM"
                                      : "AERT_INIT_ZEROS";
    emit_format(e, "}, %s, %s, %s, %d, %d},\n", off, size, init, p->fan_in, p->fan_out);
  }
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "static const aert_layer layers[] = {");
  for (int i = 0; i < g->n_layers; i++) {
    const Layer *l = &g->layers[i];
    Shape s = g->nodes[l->node].shape;
    emit_format(e, "  {\"%s\", ", l->name);
    emit_c_string(e, l->description);
    emit_format(e, ", %d, {", s.rank);
    for (int d = 0; d < s.rank; d++) emit_format(e, d ? ", %d" : "%d", s.dims[d]);
    emit_format(e, "}, %ld, %.0f, %d},\n", l->params, l->flops, l->loc.line);
  }
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "// Each layer's output at inference: a node of the description, or -1 (not from the input alone).");
  emit_format(e, "static const int layer_nodes[] = {");
  for (int i = 0; i < g->n_layers; i++) emit_format(e, "%s%d", i ? ", " : "", g->layer_eval_nodes[i]);
  if (g->n_layers == 0) emit_format(e, "-1");
  emit_format(e, "};\n");
  emit_blank(e);
  emit_format(e, "static const char *const loss_names[] = {");
  for (int i = 0; i < g->n_losses; i++) emit_format(e, "%s\"%s\"", i ? ", " : "", g->losses[i].name);
  emit_format(e, "};\n\n");
  if (g->n_loss_parts > 0) {  // eval's parts of the losses that are sums
    emit_format(e, "static const char *const loss_part_names[] = {");
    for (int i = 0; i < g->n_loss_parts; i++) emit_format(e, "%s\"%s\"", i ? ", " : "", g->loss_parts[i].name);
    emit_format(e, "};\n");
    emit_format(e, "static const int loss_part_losses[] = {");
    for (int i = 0; i < g->n_loss_parts; i++) emit_format(e, "%s%d", i ? ", " : "", g->loss_parts[i].loss);
    emit_format(e, "};\n\n");
  }
  for (int i = 0; i < g->n_steps; i++) {  // the parameters each step updates (params[] indices)
    const Step *s = &g->steps[i];
    emit_format(e, "static const int step_%d_params[] = {", i);
    for (int p = 0; p < s->n_params; p++) emit_format(e, "%s%d", p ? ", " : "", s->params[p]);
    emit_format(e, "%s};\n", s->n_params ? "" : "-1");
  }
  emit_line(e, "static const aert_step steps[] = {");
  for (int i = 0; i < g->n_steps; i++) {
    const Step *s = &g->steps[i];
    emit_line(e, "  {\"%s\", %d, \"%s\", %s, %.17g, %zu, %d, step_%d_params},", s->loss_name, s->loss_index,
              s->nets_text, optimizer_table[s->optimizer].c_kind, s->lr, (size_t)step_n_states(s) * s->n_elems,
              s->n_params, i);
  }
  emit_line(e, "};");
  if (any_lr_schedule(g)) {  // each step's lr schedule (aert_model.lr_schedules)
    emit_blank(e);
    emit_line(e, "static const aert_schedule lr_schedules[] = {");
    for (int i = 0; i < g->n_steps; i++) {
      const Step *s = &g->steps[i];
      if (s->lr_schedule == OP_INPUT)
        emit_line(e, "  {AERT_SCHEDULE_CONSTANT, %.17g, %.17g, 1},  // %s", s->lr, s->lr, s->loss_name);
      else
        emit_line(e, "  {%s, %.17g, %.17g, %.17g},  // %s", schedule_c_kind(s->lr_schedule), s->lr, s->lr_to,
                  s->lr_epochs, s->loss_name);
    }
    emit_line(e, "};");
  }
}

static void emit_model(Emitter *e, bool has_layer_output) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  Shape in = g->nodes[g->input_node].shape;
  char code_size[512] = "0", recon_size[512] = "0";
  if (g->code_node >= 0) size_const(g, g->code_node, code_size, sizeof code_size);
  if (g->reconstruction_node >= 0) size_const(g, g->reconstruction_node, recon_size, sizeof recon_size);
  emit_blank(e);
  emit_line(e, "static const aert_model model = {");
  emit_line(e, "  .abi_version = AERT_ABI_VERSION,");
  emit_format(e, "  .name = ");
  emit_c_string(e, o->model_name);
  emit_format(e, ",\n  .source_file = ");
  emit_c_string(e, o->source_path);
  emit_format(e, ",\n");
  emit_line(e, "  .source_hash = \"%s\",", o->source_hash);
  emit_line(e, "  .aec_version = \"%s\",", AEC_VERSION);
  emit_format(e, "  .input_rank = %d,\n  .input_shape = {", in.rank);
  for (int d = 0; d < in.rank; d++) emit_format(e, d ? ", %d" : "%d", in.dims[d]);
  emit_format(e, "},\n");
  emit_line(e, "  .input_size = INPUT_SIZE,");
  emit_line(e, "  .n_param_elems = PARAM_ELEMS,");
  emit_line(e, "  .n_params = %d,", g->n_params);
  emit_line(e, "  .params = params,");
  emit_line(e, "  .n_layers = %d,", g->n_layers);
  emit_line(e, "  .layers = layers,");
  emit_line(e, "  .n_kernels = (int)(sizeof kernels / sizeof *kernels),");
  emit_line(e, "  .kernels = kernels,");
  emit_line(e, "  .n_losses = %d,", g->n_losses);
  emit_line(e, "  .loss_names = loss_names,");
  emit_line(e, "  .n_steps = %d,", g->n_steps);
  emit_line(e, "  .steps = steps,");
  emit_format(e, "  .default_data = ");
  emit_c_string(e, g->train.data);
  emit_format(e, ",\n  .default_test = ");
  emit_c_string(e, g->train.test);
  emit_format(e, ",\n");
  emit_line(e, "  .default_batch = %d,", g->train.batch);
  emit_line(e, "  .default_epochs = %d,", g->train.epochs);
  emit_line(e, "  .default_seed = %lluu,", (unsigned long long)g->train.seed);
  if (g->train.validation) {
    emit_format(e, "  .default_validation = ");
    emit_c_string(e, g->train.validation);
    emit_format(e, ",\n");
  }
  if (g->train.patience) emit_line(e, "  .default_patience = %d,", g->train.patience);
  emit_line(e, "  .arena_per_sample = ARENA_PER_SAMPLE,");
  emit_line(e, "  .arena_fixed = ARENA_FIXED,");
  emit_line(e, "  .code_size = %s,", code_size);
  emit_line(e, "  .recon_size = %s,", recon_size);
  emit_line(e, "  .loss_and_grad = loss_and_grad,");
  emit_line(e, "  .apply_update = apply_update,");
  emit_line(e, "  .eval_losses = eval_losses,");
  emit_line(e, "  .reconstruct = %s,", g->reconstruction_node >= 0 ? "reconstruct" : "NULL");
  emit_line(e, "  .encode = %s,", g->code_node >= 0 ? "encode" : "NULL");
  emit_line(e, "  .corrupt = %s,", g->corrupt_node >= 0 ? "corrupt" : "NULL");
  if (g->first_kernel_param >= 0)
    emit_line(e, "  .first_kernel = \"%s\",", g->params[g->first_kernel_param].name);
  emit_line(e, "  .description = description,");
  emit_prior_entry(e);  // ops/prior.c
  emit_line(e, "  .layer_output = %s,", has_layer_output ? "layer_output" : "NULL");
  emit_line(e, "  .layer_nodes = layer_nodes,");
  emit_line(e, "  .thread_stack_bytes = %zu,", e->thread_stack_bytes);
  if (any_lr_schedule(g)) emit_line(e, "  .lr_schedules = lr_schedules,");
  if (g->decode_node >= 0) emit_line(e, "  .decode = decode,");
  if (g->decode_missing) {  // names the input: user text, escaped
    emit_format(e, "  .decode_missing = ");
    emit_c_string(e, g->decode_missing);
    emit_format(e, ",\n");
  }
  if (g->code_logvar_node >= 0) emit_line(e, "  .code_sampled = 1,");
  if (g->code_logvar_node >= 0 && has_layer_output) {  // encode --sample reads the log-variance through layer_output
    for (int i = 0; i < g->n_layers; i++)
      if (g->layers[i].node == g->code_logvar_node && g->layer_eval_nodes[i] >= 0) {
        emit_line(e, "  .code_logvar_layer = %d,  // 1 + layers' %s", i + 1, g->layers[i].name);
        break;
      }
  }
  if (g->n_loss_parts > 0) {
    emit_line(e, "  .n_loss_parts = %d,", g->n_loss_parts);
    emit_line(e, "  .loss_part_names = loss_part_names,");
    emit_line(e, "  .loss_part_losses = loss_part_losses,");
    emit_line(e, "  .eval_loss_parts = eval_loss_parts,");
  }
  emit_line(e, "};");
  emit_blank(e);
  if (o->library_header) {  // aec --lib: the API (library.c) instead of main
    emit_library_api(e);
    return;
  }
  emit_line(e, "#ifdef AERT_MPI  // aec --mpi: trains data-parallel under mpirun (libaert_mpi.a)");
  emit_line(e, "int main(int argc, char **argv) { return aert_main_with(&model, argc, argv, aert_comm_mpi); }");
  emit_line(e, "#else");
  emit_line(e, "int main(int argc, char **argv) { return aert_main(&model, argc, argv); }");
  emit_line(e, "#endif");
}

static void emit_header(Emitter *e, const bool *used, size_t arena_per_sample, size_t arena_fixed) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  char source[1100];
  comment_text(o->source_path, strlen(o->source_path), source, sizeof source);
  emit_line(e, "// %s.c — generated by aec %s from %s (source hash %s).", o->model_name, AEC_VERSION, source,
            o->source_hash);
  emit_line(e, "// Options: %s", o->command_line);
  emit_line(e, "// Element type: %s. Regenerate rather than edit; see the kernels below for what", o->dtype == DTYPE_F64 ? "double" : "float");
  emit_line(e, "// each .ae line became. Build (aec installed; from a build folder, -I BUILD/include -L BUILD for");
  emit_line(e, "// pkg-config's flags):");
  emit_line(e, "//   cc -O3 -march=native -fno-math-errno -DAEC_LIBMVEC %s.c $(pkg-config --cflags --libs aert) -lmvec -o %s",
            o->model_name, o->model_name);
  emit_blank(e);
  if (o->dtype == DTYPE_F64) emit_line(e, "#define AERT_REAL double");
  emit_line(e, "#include <stddef.h>");
  emit_line(e, "#include <stdint.h>");
  emit_line(e, "#include <string.h>");
  if (o->library_header) emit_line(e, "#include <stdlib.h>");
  emit_line(e, "#include <tgmath.h>");
  emit_blank(e);
  emit_line(e, "#include \"aert.h\"");
  emit_line(e, "#include \"aert_kernels.h\"  // the C every generated program shares, whatever its model");
  emit_blank(e);
  if (o->library_header && emit_include(e, o->library_header)) emit_blank(e);  // the API library.c's functions implement
  emit_line(e, "typedef aert_real real;");
  emit_blank(e);
  emit_line(e, "// ---- shapes: elements per sample of each batched value, or in all of an unbatched one");
  emit_line(e, "enum {");
  char upper_input[256];
  upper_name(g->nodes[g->input_node].name, upper_input, sizeof upper_input);
  for (int id = 0; id < g->n_nodes; id++) {
    const Node *node = &g->nodes[id];
    if (!used[id] || node->op == OP_CONSTANT) continue;
    char c[512], shape[64];
    size_const(g, id, c, sizeof c);
    shape_format(node->shape, shape, sizeof shape);
    emit_line(e, "  %s = %zu,  // %s%s", c, shape_size(node->shape), shape, node->shape.batched ? " per sample" : "");
  }
  emit_line(e, "  INPUT_SIZE = %s_SIZE,  // the input", upper_input);
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "// ---- parameters: one buffer, each tensor at its offset (gradients use the same layout)");
  emit_line(e, "enum {");
  for (int i = 0; i < g->n_params; i++) {
    char off[512];
    param_const(g, i, "OFFSET", off, sizeof off);
    emit_line(e, "  %s = %zu,  // %s", off, g->params[i].offset, g->params[i].name);
  }
  emit_line(e, "  PARAM_ELEMS = %zu,", g->n_param_elems);
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "// ---- the arena: batched values take `capacity` x their per-sample size each");
  emit_line(e, "enum { ARENA_PER_SAMPLE = %zu, ARENA_FIXED = %zu };", arena_per_sample, arena_fixed);
}

bool emit_program(FILE *out, const ProgramPlan *plan, const EmitOptions *options) {
  Graph *graph = plan->graph;
  Emitter e = {.out = out, .graph = graph, .options = options, .share = &plan->share};
  // The kernels go to a buffer first: writing them records the stack they need (the model table says it).
  Capture *capture = emit_capture_begin(&e);
  emit_kernels(&e, plan);  // kernels.c
  char *kernel_text = emit_capture_end(&e, capture, NULL);
  emit_header(&e, plan->used, plan->arena_per_sample, plan->arena_fixed);
  emit_blank(&e);
  emit_line(&e, "// ---- buffers: every value of each generated function, where it lives and which kernel computes it");
  for (int p = 0; p < plan->n_functions; p++)
    if (plan->functions[p]) emit_buffer_table(&e, plan->functions[p]);  // notes.c
  emit_blank(&e);
  emit_line(&e, "// ---- kernels, in the order they first run");
  emit_text(&e, kernel_text);
  free(kernel_text);
  emit_functions(&e, plan);  // functions.c
  emit_tables(&e);
  emit_blank(&e);
  emit_line(&e, "static const aert_kernel kernels[] = {");
  for (int k = 0; k < plan->n_kernels; k++) {
    const KernelPlan *kernel = &plan->kernels[k];
    emit_line(&e, "  {\"%s\", %d, %.0f, %.0f, %d},", kernel->name, kernel->line, kernel->flops_per_sample,
              kernel->flops_per_call, kernel->is_gemm);
  }
  if (plan->n_kernels == 0) emit_line(&e, "  {\"none\", 0, 0, 0, 0},");
  emit_line(&e, "};");
  emit_description(&e);
  const FunctionPlan *layer_out = plan->functions[graph->n_steps + 4];
  emit_model(&e, layer_out != NULL);
  return plan->fits && !emit_failed(&e);
}
