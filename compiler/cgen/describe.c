// describe.c — the model's description as JSON: the forward graph (input,
// parameters, every forward node with its IR op name, inputs, attributes and
// shape), the named losses, the steps with their optimizers, the train
// block's settings and the random nodes. The generated program embeds it
// and prints it with `./model describe`; tests/torch/ rebuilds the model in
// PyTorch from it. Backward nodes are left out: the description says what the
// model computes, not how aec differentiates it.
//
// The format (version 1), one JSON object:
//   format, model, source, aec_version
//   input:   {node, name, shape}
//   params:  [{name, node, net, shape, kernel, offset, size}]   buffer order
//   nets:    [{name, params: [param names]}]
//   nodes:   [{id, op, name, inputs, shape, batched, attr, line, ...}]
//            in topological (id) order; `attr` is Node.attr (constant: its
//            value; leaky_relu: its slope; ...); param nodes add `param`;
//            random nodes add `random: {draws}` (see below); ops that map
//            each element to the element at the same place (the op table's
//            elementwise kernels) add `elementwise: true`; ops that map
//            image positions through windows (conv, deconv, pooling,
//            upsampling, unpooling) add `windows` (see below); a tied
//            layer (dense_tied) adds `transposed: [i]`, the inputs it uses
//            transposed (the kernel of the layer it ties to, in that
//            layer's own layout).
//   losses:  [{name, node}]
//   steps:   [{loss, loss_index, nets, params, optimizer, lr, and the
//              optimizer's other settings by name (runtime/
//              aert_optimizers.def: sgd's momentum; adam's beta1, beta2,
//              eps; ...)}], and lr_schedule: {kind ("ramp" or
//            "cosine"), from, to, epochs} for a step whose lr is a
//            schedule (lr is then its from). A schedule in a loss is a
//            node, op "ramp" or "cosine" with attr [from, to, epochs].
//   train:   {data, test, batch, epochs, seed}
//   code, reconstruction: node ids or null
//   random:  [node ids of random nodes]; each random node's `random.draws`
//            names the per-element draws its kernel uses ("uniform0",
//            "uniform1", "normal"), which `train --dump-random DIR` writes.
//   windows: [{input, rows: AXIS, cols: AXIS}], one per input the op
//            windows (not a kernel or a bias), from the geometry its kernels
//            use (the op table's window rule). AXIS = {size, stride, pad,
//            on}: window w covers positions w * stride - pad .. w * stride -
//            pad + size - 1 of the input (on "input": a conv or a pool,
//            output position w reads that window), of the output (on
//            "output": a transposed conv or an upsample, input position w
//            writes it), or of both ("both": an unpool's switches, each
//            output position of window w reads the input's window w). The
//            runtime maps receptive fields through them (runtime/receptive.c).
#define _GNU_SOURCE
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cgen.h"

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *c = (const unsigned char *)(s ? s : ""); *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(f, "\\%c", *c);
    else if (*c < 32) fprintf(f, "\\u%04x", *c);
    else fputc(*c, f);
  }
  fputc('"', f);
}

static void json_number(FILE *f, double v) {
  if (isfinite(v)) fprintf(f, "%.17g", v);
  else fprintf(f, "null");
}

static void json_shape(FILE *f, Shape s) {
  fputc('[', f);
  for (int d = 0; d < s.rank; d++) fprintf(f, d ? ", %d" : "%d", s.dims[d]);
  fputc(']', f);
}

static void json_node_or_null(FILE *f, int node) {
  if (node >= 0) fprintf(f, "%d", node);
  else fprintf(f, "null");
}

// The draws a random op's kernel takes for each element: those its
// expression template names, or all three for a custom kernel.
static void json_draws(FILE *f, const OpInfo *info) {
  static const char *const draws[] = {"uniform0", "uniform1", "normal"};
  bool first = true;
  fputc('[', f);
  for (int i = 0; i < 3; i++) {
    char marker[16];
    snprintf(marker, sizeof marker, "$%s", draws[i]);
    if (info->kernel == KERNEL_CUSTOM || (info->expr && strstr(info->expr, marker))) {
      fprintf(f, "%s\"%s\"", first ? "" : ", ", draws[i]);
      first = false;
    }
  }
  fputc(']', f);
}

// The windows of a windowed op's inputs (see the format above).
static void json_windows(FILE *f, const Graph *g, const Node *n, const OpInfo *info) {
  fprintf(f, ", \"windows\": [");
  bool first = true;
  for (int i = 0; i < n->n_inputs; i++) {
    Window axes[2];
    if (!info->window(g, n, i, 0, &axes[0]) || !info->window(g, n, i, 1, &axes[1])) continue;
    fprintf(f, "%s{\"input\": %d", first ? "" : ", ", i);
    for (int a = 0; a < 2; a++) {
      const Window *w = &axes[a];
      fprintf(f, ", \"%s\": {\"size\": %d, \"stride\": %d, \"pad\": %d, \"on\": \"%s\"}", a ? "cols" : "rows",
              w->size, w->stride, w->pad, w->both ? "both" : w->transposed ? "output" : "input");
    }
    fprintf(f, "}");
    first = false;
  }
  fprintf(f, "]");
}

static void describe_node(FILE *f, const Graph *g, const Node *n) {
  const OpInfo *info = op_info(n->op);
  fprintf(f, "    {\"id\": %d, \"op\": ", n->id);
  json_string(f, op_name(n->op));
  fprintf(f, ", \"name\": ");
  json_string(f, n->name);
  fprintf(f, ", \"inputs\": [");
  for (int i = 0; i < n->n_inputs; i++) fprintf(f, i ? ", %d" : "%d", n->inputs[i]);
  fprintf(f, "], \"shape\": ");
  json_shape(f, n->shape);
  fprintf(f, ", \"batched\": %s, \"attr\": [", n->shape.batched ? "true" : "false");
  for (int i = 0; i < MAX_ATTRS; i++) {
    if (i) fprintf(f, ", ");
    json_number(f, n->attr[i]);
  }
  fprintf(f, "], \"line\": %d", n->loc.line);
  if (n->op == OP_PARAM) {
    fprintf(f, ", \"param\": ");
    json_string(f, g->params[n->param_index].name);
  }
  if (info->kernel == KERNEL_ELEMENTWISE) fprintf(f, ", \"elementwise\": true");
  if (info->window) json_windows(f, g, n, info);
  if (info->transposed_kernel) fprintf(f, ", \"transposed\": [1]");
  if (n->derivative)
    fprintf(f, ", \"derivative\": {\"of\": \"%s\", \"y\": %d, \"x\": %d}",
            n->derivative == DERIVATIVE_GRAD ? "grad" : "jacobian_norm", n->derivative_of[0], n->derivative_of[1]);
  if (n->inside >= 0) fprintf(f, ", \"inside\": %d", n->inside);
  if (info->random) {
    fprintf(f, ", \"random\": {\"rng_node\": %d, \"draws\": ", n->rng_node);
    json_draws(f, info);
    fprintf(f, "}");
  }
  fprintf(f, "}");
}

static void describe_step(FILE *f, const Graph *g, const Step *s) {
  fprintf(f, "    {\"loss\": ");
  json_string(f, s->loss_name);
  fprintf(f, ", \"loss_index\": %d, \"nets\": [", s->loss_index);
  for (int i = 0; i < s->n_nets; i++) {
    if (i) fprintf(f, ", ");
    json_string(f, g->nets[s->nets[i]].name);
  }
  fprintf(f, "], \"params\": [");
  for (int i = 0; i < s->n_params; i++) {
    if (i) fprintf(f, ", ");
    json_string(f, g->params[s->params[i]].name);
  }
  const OptimizerInfo *info = &optimizer_table[s->optimizer];
  fprintf(f, "], \"optimizer\": \"%s\"", info->name);
  for (int i = 0; i < optimizer_n_settings(info); i++) {  // lr first
    fprintf(f, ", \"%s\": ", info->settings[i].name);
    json_number(f, s->settings[i]);
  }
  if (s->lr_schedule != OP_INPUT) {  // lr is its `from`
    fprintf(f, ", \"lr_schedule\": {\"kind\": \"%s\", \"from\": ", op_name(s->lr_schedule));
    json_number(f, s->lr);
    fprintf(f, ", \"to\": ");
    json_number(f, s->lr_to);
    fprintf(f, ", \"epochs\": ");
    json_number(f, s->lr_epochs);
    fprintf(f, "}");
  }
  fprintf(f, "}");
}

char *describe_graph(const Graph *g, const char *model_name, const char *source_path) {
  char *text = NULL;
  size_t length = 0;
  FILE *f = open_memstream(&text, &length);
  if (!f) return NULL;
  fprintf(f, "{\n  \"format\": 1,\n  \"model\": ");
  json_string(f, model_name);
  fprintf(f, ",\n  \"source\": ");
  json_string(f, source_path);
  fprintf(f, ",\n  \"aec_version\": \"%s\",\n", AEC_VERSION);
  fprintf(f, "  \"input\": {\"node\": %d, \"name\": ", g->input_node);
  json_string(f, g->input_name);
  fprintf(f, ", \"shape\": ");
  json_shape(f, g->nodes[g->input_node].shape);
  fprintf(f, "},\n  \"params\": [\n");
  for (int i = 0; i < g->n_params; i++) {
    const Param *p = &g->params[i];
    fprintf(f, "    {\"name\": ");
    json_string(f, p->name);
    fprintf(f, ", \"node\": %d, \"net\": ", p->node);
    json_string(f, g->nets[p->net].name);
    fprintf(f, ", \"shape\": ");
    json_shape(f, p->shape);
    fprintf(f, ", \"kernel\": %s, \"offset\": %zu, \"size\": %zu%s}%s\n", p->is_kernel ? "true" : "false", p->offset,
            p->size, p->state ? ", \"state\": true" : "", i + 1 < g->n_params ? "," : "");
  }
  fprintf(f, "  ],\n  \"nets\": [\n");
  for (int i = 0; i < g->n_nets; i++) {
    const Net *net = &g->nets[i];
    fprintf(f, "    {\"name\": ");
    json_string(f, net->name);
    fprintf(f, ", \"params\": [");
    for (int j = 0; j < net->n_params; j++) {
      if (j) fprintf(f, ", ");
      json_string(f, g->params[net->param_ids[j]].name);
    }
    fprintf(f, "]}%s\n", i + 1 < g->n_nets ? "," : "");
  }
  fprintf(f, "  ],\n  \"nodes\": [\n");
  bool first = true;
  for (int id = 0; id < g->n_nodes; id++) {
    if (g->nodes[id].is_backward) continue;
    if (!first) fprintf(f, ",\n");
    describe_node(f, g, &g->nodes[id]);
    first = false;
  }
  fprintf(f, "\n  ],\n  \"losses\": [\n");
  for (int i = 0; i < g->n_losses; i++) {
    fprintf(f, "    {\"name\": ");
    json_string(f, g->losses[i].name);
    fprintf(f, ", \"node\": %d}%s\n", g->losses[i].node, i + 1 < g->n_losses ? "," : "");
  }
  fprintf(f, "  ],\n  \"steps\": [\n");
  for (int i = 0; i < g->n_steps; i++) {
    describe_step(f, g, &g->steps[i]);
    fprintf(f, "%s\n", i + 1 < g->n_steps ? "," : "");
  }
  fprintf(f, "  ],\n  \"train\": {\"data\": ");
  json_string(f, g->train.data);
  fprintf(f, ", \"test\": ");
  json_string(f, g->train.test);
  fprintf(f, ", \"batch\": %d, \"epochs\": %d, \"seed\": %llu},\n", g->train.batch, g->train.epochs,
          (unsigned long long)g->train.seed);
  fprintf(f, "  \"code\": ");
  json_node_or_null(f, g->code_node);
  fprintf(f, ",\n  \"reconstruction\": ");
  json_node_or_null(f, g->reconstruction_node);
  fprintf(f, ",\n  \"random\": [");
  first = true;
  for (int id = 0; id < g->n_nodes; id++) {
    if (g->nodes[id].is_backward || !op_info(g->nodes[id].op)->random) continue;
    fprintf(f, first ? "%d" : ", %d", id);
    first = false;
  }
  fprintf(f, "]\n}\n");
  if (fclose(f) != 0) {
    free(text);
    return NULL;
  }
  return text;
}

void emit_description(Emitter *e) {
  char *text = describe_graph(e->graph, e->options->model_name, e->options->source_path);
  if (!text) {
    fprintf(stderr, "aec: out of memory writing the model description\n");
    exit(3);
  }
  emit_format(e, "\n// The model as JSON (`describe` prints it): the forward graph, losses and steps.\n");
  emit_format(e, "static const char description[] =");
  const char *line = text;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t n = end ? (size_t)(end - line) : strlen(line);
    emit_format(e, "\n    \"");
    emit_c_string_bytes(e, line, n);
    emit_format(e, "%s\"", end ? "\\n" : "");
    line += n + (end ? 1 : 0);
  }
  emit_format(e, ";\n");
  free(text);
}
