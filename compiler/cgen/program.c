// program.c — writes the generated C program from its plan: a header saying
// what produced it, shapes and parameter offsets as named constants, the
// kernels (kernels.c), the optimizers, the functions (functions.c), and the
// aert_model table the runtime drives.
#include <stdlib.h>
#include <string.h>

#include "cgen.h"


static void emit_optimizers(Emitter *e) {
  bool adam = false, sgd = false;
  for (int i = 0; i < e->graph->n_steps; i++) {
    adam |= e->graph->steps[i].optimizer == OPTIMIZER_ADAM;
    sgd |= e->graph->steps[i].optimizer == OPTIMIZER_SGD;
  }
  if (adam) {
    emit_blank(e);
    emit_line(e, "// Adam (Kingma & Ba), in PyTorch's arrangement: m and v are the running");
    emit_line(e, "// moments, t the update count, the bias corrections folded into the step");
    emit_line(e, "// (the second as a product: one division an element, not two). Both cores");
    emit_line(e, "// share any tensor list over 16384 elements, 4096 at a time to whichever is");
    emit_line(e, "// free: an equal split left one waiting 40%% of simple.ae's update for");
    emit_line(e, "// gradients that sat in the other core's cache. Elementwise, so the result");
    emit_line(e, "// does not depend on which thread took which chunk.");
    emit_line(e, "static void adam(real *restrict p, const real *restrict g, real *restrict m, real *restrict v,");
    emit_line(e, "                 size_t size, real lr, real beta1, real beta2, real eps, double t) {");
    emit_line(e, "  const real bias_correction1 = (real)(1 - pow((double)beta1, t));");
    emit_line(e, "  const real bias_correction2_sqrt = (real)sqrt(1 - pow((double)beta2, t));");
    emit_line(e, "  const real step_size = lr / bias_correction1, inverse_correction2 = 1 / bias_correction2_sqrt;");
    emit_line(e, "#pragma omp parallel for simd schedule(dynamic, 4096) if (size >= 16384)");
    emit_line(e, "  for (size_t i = 0; i < size; i++) {");
    emit_line(e, "    m[i] += (1 - beta1) * (g[i] - m[i]);");
    emit_line(e, "    v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];");
    emit_line(e, "    p[i] -= step_size * m[i] / (sqrt(v[i]) * inverse_correction2 + eps);");
    emit_line(e, "  }");
    emit_line(e, "}");
  }
  if (sgd) {
    emit_blank(e);
    emit_line(e, "// SGD with momentum, as PyTorch: velocity = momentum * velocity + g; p -= lr * velocity.");
    emit_line(e, "static void sgd(real *restrict p, const real *restrict g, real *restrict velocity, size_t size,");
    emit_line(e, "                real lr, real momentum) {");
    emit_line(e, "#pragma omp parallel for simd schedule(static) if (size >= 65536)");
    emit_line(e, "  for (size_t i = 0; i < size; i++) {");
    emit_line(e, "    velocity[i] = momentum * velocity[i] + g[i];");
    emit_line(e, "    p[i] -= lr * velocity[i];");
    emit_line(e, "  }");
    emit_line(e, "}");
  }
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
    emit_format(e, "}, %s, %s, %s, %d, %d},\n", off, size, p->is_kernel ? "AERT_INIT_GLOROT_UNIFORM" : "AERT_INIT_ZEROS",
            p->fan_in, p->fan_out);
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
  emit_line(e, "static const aert_step steps[] = {");
  for (int i = 0; i < g->n_steps; i++) {
    const Step *s = &g->steps[i];
    emit_line(e, "  {\"%s\", %d, \"%s\", %s, %.17g, %.17g, %.17g, %.17g, %.17g, %zu},", s->loss_name, s->loss_index,
              s->nets_text, s->optimizer == OPTIMIZER_ADAM ? "AERT_ADAM" : "AERT_SGD", s->lr, s->momentum, s->beta1,
              s->beta2, s->eps, s->optimizer == OPTIMIZER_ADAM ? 2 * s->n_elems : s->n_elems);
  }
  emit_line(e, "};");
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
  emit_line(e, "};");
  emit_blank(e);
  emit_line(e, "int main(int argc, char **argv) { return aert_main(&model, argc, argv); }");
}

// exp(x) for x <= 0, as the losses on logits use it (exp(-|z|)). In float it
// is written out, so a simd loop keeps it in registers: libmvec's expf is a
// call around which every vector register is saved (simple.ae's fused loss
// kernel: 0.079 -> 0.074 s an epoch). The clamp is arithmetic, so x = -inf
// gives NaN, in a loss that an infinite logit has made NaN or infinite anyway.
static void emit_exp_nonpositive(Emitter *e, DType dtype) {
  static const char *const in_float[] = {
      "// exp(x) for x <= 0 (the losses on logits take exp(-|z|)), written out so that",
      "// a simd loop keeps it in registers: 2^k e^r, k = round(x / ln 2), e^r to degree 7.",
      "// Within 7.9e-8 relative of exp on [-87, 0]; below -87 it gives e^-87.",
      "static inline real exp_nonpositive(real x) {",
      "  const real lowest = -87;",
      "  x = (x > lowest) * x + (x <= lowest) * lowest;  // a conditional kept GCC from vectorizing",
      "  const int32_t k = (int32_t)(x * 1.44269504088896341f - 0.5f);",
      "  const real r = (x - (real)k * 0.693145751953125f) - (real)k * 1.42860682030941723e-06f;",
      "  const real poly = 1 + r * (1 + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720 + r * (1.0f / 5040)))))));",
      "  const union { int32_t bits; real value; } two_to_k = {.bits = (k + 127) * (1 << 23)};",
      "  return poly * two_to_k.value;",
      "}",
      NULL};
  static const char *const in_double[] = {
      "// exp(x) for x <= 0 (the losses on logits take exp(-|z|)).",
      "static inline real exp_nonpositive(real x) { return exp(x); }",
      NULL};
  const char *const *text = dtype == DTYPE_F64 ? in_double : in_float;
  emit_lines(e, text);
}

static void emit_header(Emitter *e, const bool *used, size_t arena_per_sample, size_t arena_fixed) {
  Graph *g = e->graph;
  const EmitOptions *o = e->options;
  emit_line(e, "// %s.c — generated by aec %s from %s (source hash %s).", o->model_name, AEC_VERSION, o->source_path,
            o->source_hash);
  emit_line(e, "// Options: %s", o->command_line);
  emit_line(e, "// Element type: %s. Regenerate rather than edit; see the kernels below for what", o->dtype == DTYPE_F64 ? "double" : "float");
  emit_line(e, "// each .ae line became. Build: cc -O3 -march=native -fopenmp -fno-math-errno -DAEC_LIBMVEC %s.c -laert -lcairo -lz -lmvec -lm", o->model_name);
  emit_blank(e);
  if (o->dtype == DTYPE_F64) emit_line(e, "#define AERT_REAL double");
  emit_line(e, "#include <stddef.h>");
  emit_line(e, "#include <stdint.h>");
  emit_line(e, "#include <string.h>");
  emit_line(e, "#include <tgmath.h>");
  emit_blank(e);
  emit_line(e, "#include \"aert.h\"");
  emit_blank(e);
  emit_line(e, "typedef aert_real real;");
  static const char *const vector_math[] = {
      "",
      "// With AEC_LIBMVEC (aec sets it, with -fno-math-errno and -lmvec), glibc's vector",
      "// math library computes exp, log and tanh 16 lanes at a time inside simd loops.",
      "#if defined(AEC_LIBMVEC) && defined(__GLIBC__) && defined(__x86_64__)",
      "#define AEC_VECTOR_MATH __attribute__((simd(\"notinbranch\")))",
      "AEC_VECTOR_MATH float (expf)(float);",
      "AEC_VECTOR_MATH float (logf)(float);",
      "AEC_VECTOR_MATH float (log1pf)(float);",
      "AEC_VECTOR_MATH float (tanhf)(float);",
      "AEC_VECTOR_MATH double (exp)(double);",
      "AEC_VECTOR_MATH double (log)(double);",
      "AEC_VECTOR_MATH double (log1p)(double);",
      "AEC_VECTOR_MATH double (tanh)(double);",
      "#endif",
      NULL};
  emit_lines(e, vector_math);
  emit_blank(e);
  emit_exp_nonpositive(e, o->dtype);
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
  if (plan->any_gemm && options->opt_level > 0) emit_gemm_support(&e);
  emit_blank(&e);
  emit_line(&e, "// train --profile times each kernel call; otherwise TIMED costs one test.");
  emit_line(&e, "#define TIMED(kernel, call)                                 \\");
  emit_line(&e, "  do {                                                      \\");
  emit_line(&e, "    if (!ctx->kernel_seconds) {                             \\");
  emit_line(&e, "      call;                                                 \\");
  emit_line(&e, "      break;                                                \\");
  emit_line(&e, "    }                                                       \\");
  emit_line(&e, "    const double start_ = aert_seconds();                   \\");
  emit_line(&e, "    call;                                                   \\");
  emit_line(&e, "    ctx->kernel_seconds[kernel] += aert_seconds() - start_; \\");
  emit_line(&e, "    ctx->kernel_calls[kernel] += 1;                         \\");
  emit_line(&e, "    ctx->kernel_samples[kernel] += n;                       \\");
  emit_line(&e, "  } while (0)");
  emit_blank(&e);
  emit_line(&e, "// ---- kernels, in the order they first run");
  emit_text(&e, kernel_text);
  free(kernel_text);
  emit_optimizers(&e);
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
