// layers.c — the builtins that are layers of a net: dense, conv and deconv
// (they make weights), and the pooling, upsampling, unpooling and reshaping
// rows (maxpool, upsample, unpool, flatten, reshape). Each call site of a
// net is one layer, `<net>.<kind>_<i>` in the summary; its weights are
// `<net>.<kind>_<i>.kernel` and `.bias`, made on the net's first application
// and shared by every later one. A conv kernel is [filters, in, k, k]
// (PyTorch's Conv2d layout), a deconv kernel [in, filters, k, k]
// (ConvTranspose2d's), a dense kernel [in, units]. A layer's FLOPs are its
// op's (the op table's rule: one reckoning for the summary and --stats).
// A tied dense layer, dense(units, act?, tied=NET.LAYER), makes only its
// bias and uses the named dense layer's kernel, which must be [units, in],
// transposed (dense_tied); a tied deconv(filters, k, act?, tied=NET.LAYER)
// uses a conv layer's kernel [in, filters, k, k] as its own (a conv kernel
// is laid out as the transposed conv that undoes it wants). The kernel stays
// its owner's (its net's steps change it; its gradient sums both uses), one
// parameter in checkpoints. The named layer must exist when the tied layer
// is first reached: its net applied earlier in the file, or a layer before
// this one in the same net.
#include <stdlib.h>
#include <string.h>

#include "lowering.h"

// The call site's layer in the net being applied: made on the net's first
// application (its name `<kind>_<i>`, i counting the net's layers of that
// kind), found after. *first tells which.
static LayerSite *layer_site(Lowerer *L, const Expr *call, const char *kind, bool *first) {
  for (int i = 0; i < L->n_sites; i++)
    if (L->sites[i].net == L->current_net && L->sites[i].site == call) return *first = false, &L->sites[i];
  L->sites = grow_for(L->sites, L->n_sites, sizeof(LayerSite));
  LayerSite *site = &L->sites[L->n_sites++];
  *site = (LayerSite){.net = L->current_net, .site = call, .kernel = -1, .bias = -1, .tied_to = -1,
                      .running_mean = -1, .running_var = -1};
  int index = 1;
  for (int i = 0; i + 1 < L->n_sites; i++)
    index += L->sites[i].net == L->current_net && strncmp(L->sites[i].layer, kind, strlen(kind)) == 0 &&
             L->sites[i].layer[strlen(kind)] == '_';
  snprintf(site->layer, sizeof site->layer, "%s_%d", kind, index);
  *first = true;
  return site;
}

// The site's kernel and bias, `<net>.<layer>.kernel` and `.bias` (Glorot
// fans as Keras counts them).
static void make_weights(Lowerer *L, LayerSite *site, Shape kernel, int filters, int fan_in, int fan_out, Loc loc) {
  Graph *g = L->graph;
  const char *net = g->nets[L->current_net].name;
  char name[300];
  snprintf(name, sizeof name, "%s.%s.kernel", net, site->layer);
  site->kernel = graph_add_param(g, name, L->current_net, kernel, true, fan_in, fan_out, loc);
  snprintf(name, sizeof name, "%s.%s.bias", net, site->layer);
  site->bias = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {filters}}, false, fan_in, fan_out,
                               loc);
}

// A new node gets the site's layer name: <prefix>_<layer>.
static void name_after_layer(Lowerer *L, int node, int before, const LayerSite *site) {
  if (node < before) return;
  char name[300];
  snprintf(name, sizeof name, "%s%s%s", L->prefix, L->prefix[0] ? "_" : "", site->layer);
  graph_set_name(L->graph, node, name);
}

// The layer's line in the summary: its output (after the activation), the
// weights it made and, for a layer with weights, its op's FLOPs.
static void record_layer(Lowerer *L, const LayerSite *site, const char *description, int output, int op_node, Loc loc) {
  if (L->current_net < 0) return;  // outside a net (flatten(y) in a loss): a value, not a layer of a net
  Graph *g = L->graph;
  long params = 0;
  double flops = 0;
  if (site->kernel >= 0) {  // a tied layer's kernel is counted with the layer that owns it
    params = (site->tied_to >= 0 ? 0 : (long)g->params[g->nodes[site->kernel].param_index].size) +
             (long)g->params[g->nodes[site->bias].param_index].size;
    flops = op_info(g->nodes[op_node].op)->flops(g, &g->nodes[op_node]);
  }
  char full[300];
  snprintf(full, sizeof full, "%s.%s", g->nets[L->current_net].name, site->layer);
  g->layers = grow_for(g->layers, g->n_layers, sizeof(Layer));
  g->layers[g->n_layers++] = (Layer){.name = strdup(full), .description = strdup(description), .node = output,
                                     .params = params, .flops = flops, .loc = loc};
}

// A layer that makes weights must be inside a net (checked before its
// arguments, so that it is said even when an argument is in error).
bool layer_inside_net(Lowerer *L, const Builtin *b, const Expr *call) {
  if (L->current_net >= 0 || !op_info(b->op)->makes_weights) return true;
  diag_error(call->loc, "%s makes weights, so it must be inside a net: net name = %s(...)", b->name, b->name);
  return false;
}

// ----------------------------------------------------------- tied layers
// The layers of net `net` of kind `kind` that own a kernel, "dense_1, dense_2",
// for messages.
static void list_layers(const Lowerer *L, int net, const char *kind, char *out, size_t size) {
  size_t used = 0, n = strlen(kind);
  out[0] = '\0';
  for (int i = 0; i < L->n_sites && used < size; i++) {
    const LayerSite *s = &L->sites[i];
    if (s->net != net || s->kernel < 0 || s->tied_to >= 0 || strncmp(s->layer, kind, n) != 0 || s->layer[n] != '_')
      continue;
    used += (size_t)snprintf(out + used, size - used, "%s%s.%s", used ? ", " : "", L->graph->nets[net].name, s->layer);
  }
}

// tied=NET.LAYER: the site of a `kind` layer that owns its kernel, or -1
// after reporting. `self` is the tied layer's own site.
static int find_tied_site(Lowerer *L, const Builtin *b, const Expr *name, const char *kind, int self) {
  Graph *g = L->graph;
  if (name->kind != EXPR_MEMBER) {
    diag_error(name->loc, "%s: tied= takes a layer's name, NET.LAYER as in checkpoints, like tied=encoder.%s_1",
               b->name, kind);
    return -1;
  }
  Binding *binding = scope_find(&L->globals, name->lhs->name);
  if (!binding || binding->value.kind != VAL_NET) {
    char nets[400] = "";
    size_t used = 0;
    for (int i = 0; i < g->n_nets && used < sizeof nets; i++)
      used += (size_t)snprintf(nets + used, sizeof nets - used, "%s%s", i ? ", " : "", g->nets[i].name);
    diag_error(name->lhs->loc, "%s: tied=%s: there is no net named '%s'%s%s", b->name, name->name, name->lhs->name,
               g->n_nets ? "; the nets are " : "", nets);
    return -1;
  }
  int net = binding->value.net;
  const Net *owner = &g->nets[net];
  char layers[400];
  list_layers(L, net, kind, layers, sizeof layers);
  int found = -1;
  for (int i = 0; i < L->n_sites && found < 0; i++)
    if (L->sites[i].net == net && strcmp(L->sites[i].layer, name->rhs->name) == 0) found = i;
  if (found < 0 && !owner->applied && !owner->applying) {
    diag_error(name->lhs->loc,
               "%s: tied=%s: net '%s' has not been applied yet, so its layers have no weights; a tied layer uses "
               "weights that exist: apply '%s' before the net that ties to it",
               b->name, name->name, owner->name, owner->name);
    return -1;
  }
  if (found < 0) {
    diag_error(name->rhs->loc, "%s: tied=%s: net '%s' has no layer '%s'%s; %s %s layers%s%s", b->name, name->name,
               owner->name, name->rhs->name, owner->applying ? " before this one" : "",
               layers[0] ? "its" : "it has no", kind, layers[0] ? " are " : "", layers);
    return -1;
  }
  if (found == self) {
    diag_error(name->rhs->loc, "%s: tied=%s names this layer itself; tie to a %s layer before it%s%s", b->name,
               name->name, kind, layers[0] ? ": " : "", layers);
    return -1;
  }
  const LayerSite *site = &L->sites[found];
  size_t n = strlen(kind);
  bool right_kind = strncmp(site->layer, kind, n) == 0 && site->layer[n] == '_';
  if (right_kind && site->kernel < 0) return -1;  // its own error is already reported
  if (!right_kind || site->kernel < 0) {
    char others[500];
    if (layers[0]) snprintf(others, sizeof others, "the %s layers of '%s' are %s", kind, owner->name, layers);
    else snprintf(others, sizeof others, "net '%s' has no %s layers", owner->name, kind);
    diag_error(name->rhs->loc, "%s: tied=%s is a %.*s layer, but %s ties only to a %s layer's kernel; %s", b->name,
               name->name, (int)strcspn(site->layer, "_"), site->layer, b->name, kind, others);
    return -1;
  }
  if (site->tied_to >= 0) {
    const LayerSite *root = &L->sites[site->tied_to];
    diag_error(name->rhs->loc, "%s: tied=%s is itself tied and has no kernel of its own; tie to the layer that owns it: "
               "tied=%s.%s", b->name, name->name, g->nets[root->net].name, root->layer);
    return -1;
  }
  return found;
}

// ----------------------------------------------------------------- dense
Value lower_dense(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1, units = 0;
  if (!want_tensor(args, 0, b, call, &x) | !want_int(args, 1, b, call, 1, &units)) return error_value;
  OpKind act = OP_INPUT;
  if (args->present[2] && !want_activation(args, 2, b, call, &act)) return error_value;
  Graph *g = L->graph;
  Shape in = g->nodes[x].shape;
  if (!in.batched || in.rank != 1) {
    char s[64];
    shape_format(in, s, sizeof s);
    diag_error(call->loc, "dense needs a flat input of shape [features] per sample, but got %s%s", s,
               in.batched ? "; add flatten() before it" : "");
    return error_value;
  }
  const Expr *tied = args->present[3] ? args->expr[3] : NULL;
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  if (first && tied) {
    int site_index = (int)(site - L->sites);
    int owner = find_tied_site(L, b, tied, "dense", site_index);
    site = &L->sites[site_index];
    if (owner < 0) return error_value;
    const LayerSite *o = &L->sites[owner];
    Shape w = g->nodes[o->kernel].shape;
    if (w.dims[0] != units || w.dims[1] != in.dims[0]) {
      char fitting[200] = "";  // a dense layer whose kernel has the shape wanted
      for (int i = 0; i < L->n_sites && !fitting[0]; i++) {
        const LayerSite *s = &L->sites[i];
        if (s->kernel < 0 || s->tied_to >= 0 || g->nodes[s->kernel].op != OP_PARAM ||
            strncmp(s->layer, "dense_", 6) != 0)
          continue;
        Shape k = g->nodes[s->kernel].shape;
        if (k.rank == 2 && k.dims[0] == units && k.dims[1] == in.dims[0])
          snprintf(fitting, sizeof fitting, " (%s.%s does)", g->nets[s->net].name, s->layer);
      }
      diag_error(tied->loc,
                 "dense: tied=%s has the kernel [%d, %d] (it maps %d features to %d); used transposed it maps %d to "
                 "%d, but this layer maps %d to %d and needs the kernel [%d, %d] (units, inputs): write "
                 "dense(%d, tied=%s) on an input of %d features, or tie to a layer that maps %d to %d%s",
                 tied->name, w.dims[0], w.dims[1], w.dims[0], w.dims[1], w.dims[1], w.dims[0], in.dims[0], units,
                 units, in.dims[0], w.dims[0], tied->name, w.dims[1], units, in.dims[0], fitting);
      return error_value;
    }
    site->tied_to = owner;
    site->kernel = o->kernel;
    char name[300];
    snprintf(name, sizeof name, "%s.%s.bias", g->nets[L->current_net].name, site->layer);
    site->bias = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {units}}, false, in.dims[0],
                                 units, call->loc);
  } else if (first) {
    int fan_in = in.dims[0];
    make_weights(L, site, (Shape){.rank = 2, .dims = {fan_in, units}}, units, fan_in, units, call->loc);
  }
  if (site->kernel < 0) return error_value;  // a tied layer reported on the net's first application
  OpKind op = site->tied_to >= 0 ? OP_DENSE_TIED : b->op;
  int z = add_named(L, op, (int[]){x, site->kernel, site->bias}, 3, call->loc, site->layer);
  int y = apply_activation(L, z, act, NULL, call->loc, site->layer);
  if (y < 0) return error_value;
  if (first) {
    char description[200], tied_text[120] = "";
    if (site->tied_to >= 0)
      snprintf(tied_text, sizeof tied_text, ", tied=%s.%s", g->nets[L->sites[site->tied_to].net].name,
               L->sites[site->tied_to].layer);
    snprintf(description, sizeof description, "dense(%d%s%s%s)", units, act == OP_INPUT ? "" : ", ",
             act == OP_INPUT ? "" : activation_name(act), tied_text);
    record_layer(L, site, description, y, z, call->loc);
  }
  return tensor_value(y);
}

// ---------------------------------------------------------- convolutions
// conv(filters, k, activation?, stride?, pad?), deconv(...): attr {stride,
// pad (0 same, 1 valid)}; a conv's stride defaults to 1, a deconv's to 2.
Value lower_conv(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  Graph *g = L->graph;
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  bool is_deconv = b->op == OP_DECONV, ok = true;
  int filters = whole_arg(args, 1, b, call, 1, 0, &ok);
  int k = whole_arg(args, 2, b, call, 1, 0, &ok);
  int stride = whole_arg(args, 4, b, call, 1, is_deconv ? 2 : 1, &ok);
  int pad = whole_arg(args, 5, b, call, 0, 0, &ok);
  OpKind act = OP_INPUT;
  if (args->present[3] && !want_activation(args, 3, b, call, &act)) return error_value;
  if (!ok) return error_value;
  Shape in = g->nodes[x].shape;
  if (!in.batched || in.rank != 3) {
    char s[64];
    shape_format(in, s, sizeof s);
    diag_error(call->loc, "%s needs an image input of shape [channels, height, width] per sample, but got %s%s", b->name,
               s, in.batched && in.rank == 1 ? "; add reshape([c, h, w]) before it" : "");
    return error_value;
  }
  int before = g->n_nodes;
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  const Expr *tied = is_deconv && args->present[6] ? args->expr[6] : NULL;
  if (first && tied) {  // a conv's kernel [F, C, k, k] is a deconv kernel [in F, filters C, k, k] as it is
    int site_index = (int)(site - L->sites);
    int owner = find_tied_site(L, b, tied, "conv", site_index);
    site = &L->sites[site_index];
    if (owner < 0) return error_value;
    const LayerSite *o = &L->sites[owner];
    Shape w = g->nodes[o->kernel].shape;
    if (w.dims[0] != in.dims[0] || w.dims[1] != filters || w.dims[2] != k) {
      char fitting[200] = "";  // a conv layer whose kernel has the shape wanted
      for (int i = 0; i < L->n_sites && !fitting[0]; i++) {
        const LayerSite *s = &L->sites[i];
        if (s->kernel < 0 || s->tied_to >= 0 || strncmp(s->layer, "conv_", 5) != 0) continue;
        Shape q = g->nodes[s->kernel].shape;
        if (q.rank == 4 && q.dims[0] == in.dims[0] && q.dims[1] == filters && q.dims[2] == k)
          snprintf(fitting, sizeof fitting, " (%s.%s does)", g->nets[s->net].name, s->layer);
      }
      diag_error(tied->loc,
                 "deconv: tied=%s has the kernel [%d, %d, %d, %d] (a %dx%d conv from %d channels to %d); used "
                 "transposed it maps %d channels to %d, but this layer maps %d to %d with %dx%d windows and needs the "
                 "kernel [%d, %d, %d, %d] (inputs, filters, k, k): write deconv(%d, %d, tied=%s) on an input of %d "
                 "channels, or tie to a %dx%d conv from %d channels to %d%s",
                 tied->name, w.dims[0], w.dims[1], w.dims[2], w.dims[3], w.dims[2], w.dims[3], w.dims[1], w.dims[0],
                 w.dims[0], w.dims[1], in.dims[0], filters, k, k, in.dims[0], filters, k, k, w.dims[1], w.dims[2],
                 tied->name, w.dims[0], k, k, filters, in.dims[0], fitting);
      return error_value;
    }
    site->tied_to = owner;
    site->kernel = o->kernel;
    char name[300];
    snprintf(name, sizeof name, "%s.%s.bias", g->nets[L->current_net].name, site->layer);
    site->bias = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {filters}}, false,
                                 filters * k * k, in.dims[0] * k * k, call->loc);
  } else if (first) {
    int c = in.dims[0];
    Shape kernel = {.rank = 4, .dims = {is_deconv ? c : filters, is_deconv ? filters : c, k, k}};
    int fan_in = c * k * k, fan_out = filters * k * k;  // Keras: the receptive field times the channels
    if (is_deconv) fan_in = filters * k * k, fan_out = c * k * k;
    make_weights(L, site, kernel, filters, fan_in, fan_out, call->loc);
  }
  if (site->kernel < 0) return error_value;  // a tied layer reported on the net's first application
  double attr[MAX_ATTRS] = {stride, pad};
  int z = graph_add_attr(g, b->op, (int[]){x, site->kernel, site->bias}, 3, attr, call->loc);
  if (z < 0) return error_value;
  name_after_layer(L, z, before, site);
  int y = apply_activation(L, z, act, NULL, call->loc, site->layer);
  if (y < 0) return error_value;
  if (first) {
    char stride_text[32] = "", description[200], tied_text[120] = "";
    if (stride != (is_deconv ? 2 : 1)) snprintf(stride_text, sizeof stride_text, ", stride=%d", stride);
    if (site->tied_to >= 0)
      snprintf(tied_text, sizeof tied_text, ", tied=%s.%s", g->nets[L->sites[site->tied_to].net].name,
               L->sites[site->tied_to].layer);
    snprintf(description, sizeof description, "%s(%d, %d%s%s%s%s%s)", b->name, filters, k,
             act == OP_INPUT ? "" : ", ", act == OP_INPUT ? "" : activation_name(act), stride_text,
             pad ? ", pad=valid" : "", tied_text);
    record_layer(L, site, description, y, z, call->loc);
  }
  return tensor_value(y);
}

// ------------------------------------------------------------- batchnorm
// batchnorm(): its scale (`<net>.batchnorm_<i>.scale`, ones) and shift
// (zeros), trained, and its running mean (zeros) and variance (ones), which
// no step trains (Param.state), one value a unit or channel each; the op
// (ops/norm.c) with PyTorch's eps and momentum.
Value lower_batchnorm(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  Graph *g = L->graph;
  Shape in = g->nodes[x].shape;
  if (!in.batched || (in.rank != 1 && in.rank != 3)) {
    char s[64];
    shape_format(in, s, sizeof s);
    diag_error(call->loc,
               "batchnorm normalizes the units of a flat value [units] or the channels of an image [channels, "
               "height, width] per sample, but got %s%s",
               s, in.batched ? "; flatten() or reshape([c, h, w]) it first" : "; apply it to a value with a batch");
    return error_value;
  }
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  if (first) {
    const char *net = g->nets[L->current_net].name;
    static const char *const parts[] = {"scale", "shift", "running_mean", "running_var"};
    int *nodes[] = {&site->kernel, &site->bias, &site->running_mean, &site->running_var};
    for (int i = 0; i < 4; i++) {
      char name[300];
      snprintf(name, sizeof name, "%s.%s.%s", net, site->layer, parts[i]);
      *nodes[i] = graph_add_param(g, name, L->current_net, (Shape){.rank = 1, .dims = {in.dims[0]}}, false, 0, 0,
                                  call->loc);
      Param *p = &g->params[g->nodes[*nodes[i]].param_index];
      p->init_ones = i == 0 || i == 3;
      p->state = i >= 2;
    }
  }
  int before = g->n_nodes;
  double attr[MAX_ATTRS] = {1e-5, 0.1};  // eps, momentum: PyTorch's
  int y = graph_add_attr(g, b->op, (int[]){x, site->kernel, site->bias, site->running_mean, site->running_var}, 5,
                         attr, call->loc);
  if (y < 0) return error_value;
  name_after_layer(L, y, before, site);
  if (first) record_layer(L, site, "batchnorm()", y, y, call->loc);
  return tensor_value(y);
}

// ------------------------------------------------ layers without weights
// The node `y` (already made, from node `before` on) as the call site's layer.
static Value finish_layer(Lowerer *L, const Builtin *b, const Expr *call, int y, int before, const char *description) {
  if (y < 0) return error_value;
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  name_after_layer(L, y, before, site);
  if (first) record_layer(L, site, description, y, y, call->loc);
  return tensor_value(y);
}

// A pooling or upsampling row, name(input, k, pad?): attr {k, pad}, pad
// (0 same, 1 valid) given when the row has it and valid when left out.
Value lower_window(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  int before = L->graph->n_nodes;
  bool ok = true, has_pad = builtin_arity(b) > 2;
  double attr[MAX_ATTRS] = {whole_arg(args, 1, b, call, 1, 0, &ok)};
  if (has_pad) attr[1] = whole_arg(args, 2, b, call, 0, 1, &ok);  // valid unless pad=same
  if (!ok) return error_value;
  char description[200];
  snprintf(description, sizeof description, "%s(%d%s)", b->name, (int)attr[0],
           has_pad && attr[1] == 0 ? ", pad=same" : "");
  // The site is named before the node is made, as the layers with weights are.
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  int y = graph_add_attr(L->graph, b->op, &x, 1, attr, call->loc);
  if (y < 0) return error_value;
  name_after_layer(L, y, before, site);
  if (first) record_layer(L, site, description, y, y, call->loc);
  return tensor_value(y);
}

// unpool(v, pool): v back at the switches of `pool`, a maxpool's output.
Value lower_unpool(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  Graph *g = L->graph;
  int x = -1, pool = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  int before = g->n_nodes;
  if (!want_tensor(args, 1, b, call, &pool)) return error_value;
  if (g->nodes[pool].op != OP_MAXPOOL) {
    diag_error(arg_loc(args, 1, call), "unpool: its second argument must be a value made by maxpool (its switches)");
    return error_value;
  }
  char description[200];
  snprintf(description, sizeof description, "unpool(%s)",
           args->expr[1] && args->expr[1]->kind == EXPR_NAME ? args->expr[1]->name : "pool");
  int y = graph_add_attr(g, b->op, (int[]){x, g->nodes[pool].inputs[0]}, 2, g->nodes[pool].attr, call->loc);
  return finish_layer(L, b, call, y, before, description);
}

// flatten(): a reshape to one axis.
Value lower_flatten(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  int before = L->graph->n_nodes;
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  double attr[MAX_ATTRS] = {(double)shape_size(L->graph->nodes[x].shape)};
  int y = graph_add_attr(L->graph, OP_RESHAPE, &x, 1, attr, call->loc);
  if (y < 0) return error_value;
  name_after_layer(L, y, before, site);
  if (first) record_layer(L, site, "flatten()", y, y, call->loc);
  return tensor_value(y);
}

// reshape([..]): attr the new dims (0 ends them).
Value lower_reshape(Lowerer *L, const Builtin *b, const Expr *call, Bound *args) {
  int x = -1;
  if (!want_tensor(args, 0, b, call, &x)) return error_value;
  int before = L->graph->n_nodes;
  const Expr *list = args->value[1].kind == VAL_LIST ? args->expr[1] : NULL;
  if (!list || list->n_items < 1 || list->n_items > 3) {
    diag_error(arg_loc(args, 1, call), "reshape: the shape is a list of 1 to 3 sizes, like [8, 4, 4]");
    return error_value;
  }
  double attr[MAX_ATTRS] = {0};
  char description[200];
  size_t used = (size_t)snprintf(description, sizeof description, "reshape([");
  for (int i = 0; i < list->n_items; i++) {
    long d;
    if (!eval_whole(L, list->items[i], "a dimension", 1, 1 << 24, &d)) return error_value;
    attr[i] = (double)d;
    used += (size_t)snprintf(description + used, sizeof description - used, "%s%ld", i ? ", " : "", d);
  }
  snprintf(description + used, sizeof description - used, "])");
  bool first;
  LayerSite *site = layer_site(L, call, b->name, &first);
  int y = graph_add_attr(L->graph, b->op, &x, 1, attr, call->loc);
  if (y < 0) return error_value;
  name_after_layer(L, y, before, site);
  if (first) record_layer(L, site, description, y, y, call->loc);
  return tensor_value(y);
}
