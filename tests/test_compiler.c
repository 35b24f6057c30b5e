// test_compiler.c — lowering, shapes, weight sharing, autodiff and the
// compiler's diagnostics, in process, on small .ae texts.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"
#include "tests.h"

// Compiles text up to autodiff; returns the graph (or NULL) and the
// diagnostics printed on the way in *messages.
static Graph *compile_text(const char *text, char **messages) {
  char *buffer = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&buffer, &size);
  diag_set_output(out);
  diag_reset();
  Source *src = source_from_string("t.ae", text);
  Program *program = parse_program(src);
  Graph *g = NULL;
  if (program && diag_error_count() == 0) g = lower_program(program, NULL, 0);
  if (g && !autodiff(g)) {
    graph_free(g);
    g = NULL;
  }
  fclose(out);
  diag_set_output(stderr);
  *messages = buffer;
  // The source must outlive the graph's locations; tests free both.
  return g;
}

static void expect_error(const char *text, const char *message) {
  char *messages = NULL;
  Graph *g = compile_text(text, &messages);
  ck_assert_msg(g == NULL, "expected an error for:\n%s", text);
  ck_assert_msg(strstr(messages, message) != NULL, "expected\n  %s\nin\n%s", message, messages);
  free(messages);
}

static Graph *expect_ok(const char *text) {
  char *messages = NULL;
  Graph *g = compile_text(text, &messages);
  ck_assert_msg(g != NULL, "unexpected errors:\n%s", messages);
  ck_assert_str_eq(messages, "");
  free(messages);
  return g;
}

static int find_node(const Graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++)
    if (strcmp(g->nodes[i].name, name) == 0) return i;
  return -1;
}

static const char *simple_ae =
    "param code = 32\n"
    "input x: [784]\n"
    "net encoder = dense(code, relu)\n"
    "net decoder = dense(784, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { batch 64 epochs 3 seed 7 step minimize recon over encoder, decoder with adam(lr=0.002) }\n";

START_TEST(validation_and_patience_in_the_train_block) {
  static const char *head = "input x: [784]\nnet e = dense(32, relu)\nnet d = dense(784, sigmoid)\n"
                            "loss r = bce(d(e(x)), x)\n";
  char text[512];
  snprintf(text, sizeof text, "%strain { validation 0.1 patience 5 step minimize r over e, d with adam() }\n", head);
  Graph *g = expect_ok(text);
  ck_assert_str_eq(g->train.validation, "0.10000000000000001");
  ck_assert_int_eq(g->train.patience, 5);
  graph_free(g);
  snprintf(text, sizeof text, "%strain { validation \"val.csv\" }\n", head);
  g = expect_ok(text);
  ck_assert_str_eq(g->train.validation, "val.csv");
  ck_assert_int_eq(g->train.patience, 0);
  graph_free(g);
  snprintf(text, sizeof text, "%strain { validation \"0.5\" }\n", head);  // a file named 0.5, not a fraction
  g = expect_ok(text);
  ck_assert_str_eq(g->train.validation, "./0.5");
  graph_free(g);
  snprintf(text, sizeof text, "%strain { validation 10 }\n", head);
  expect_error(text, "between 0 and 1 (such as 0.1)");
  snprintf(text, sizeof text, "%strain { patience 0 }\n", head);
  expect_error(text, "patience must be a whole number from 1");
}
END_TEST

START_TEST(shapes_of_a_dense_autoencoder) {
  Graph *g = expect_ok(simple_ae);
  int code = find_node(g, "encoder_dense_1_relu");
  ck_assert_int_ge(code, 0);
  ck_assert(g->nodes[code].shape.batched);
  ck_assert_int_eq(g->nodes[code].shape.rank, 1);
  ck_assert_int_eq(g->nodes[code].shape.dims[0], 32);
  ck_assert_int_eq(g->n_params, 4);
  ck_assert_str_eq(g->params[0].name, "encoder.dense_1.kernel");
  ck_assert_int_eq(g->params[0].shape.dims[0], 784);
  ck_assert_int_eq(g->params[0].shape.dims[1], 32);
  ck_assert_uint_eq(g->n_param_elems, 784 * 32 + 32 + 32 * 784 + 784);
  ck_assert_int_eq(g->code_node, code);
  ck_assert_int_eq(g->nodes[g->reconstruction_node].op, OP_SIGMOID);
  ck_assert_int_eq(g->train.batch, 64);
  ck_assert_int_eq(g->train.epochs, 3);
  ck_assert_uint_eq(g->train.seed, 7);
  ck_assert_double_eq(g->steps[0].lr, 0.002);
  graph_free(g);
}
END_TEST

START_TEST(bce_of_a_sigmoid_uses_the_logits) {
  Graph *g = expect_ok(simple_ae);
  const Node *loss = &g->nodes[g->losses[0].node];
  ck_assert_int_eq(loss->op, OP_BCE_LOGITS);
  ck_assert_int_eq(g->nodes[loss->inputs[0]].op, OP_DENSE);
  graph_free(g);
}
END_TEST

START_TEST(a_second_call_shares_weights) {
  Graph *g = expect_ok("input x: [10]\n"
                       "net f = dense(10, tanh)\n"
                       "loss l = mse(f(f(x)), x)\n");
  ck_assert_int_eq(g->n_params, 2);
  int dense = 0;
  for (int i = 0; i < g->n_nodes; i++) dense += g->nodes[i].op == OP_DENSE;
  ck_assert_int_eq(dense, 2);
  // Both applications feed the one kernel's gradient: it is a sum.
  ck_assert_int_eq(g->nodes[g->steps[0].grad_nodes[0]].op, OP_ADD);
  graph_free(g);
}
END_TEST

START_TEST(functional_nets_and_params_in_shapes) {
  Graph *g = expect_ok("param width = 6\n"
                       "input x: [width * 2]\n"
                       "net ae(v) {\n  h = dense(v, width, relu)\n  return dense(h, 12, sigmoid)\n}\n"
                       "loss l = mse(ae(x), x) + 0.001 * l2(ae)\n");
  ck_assert_int_eq(g->nodes[g->input_node].shape.dims[0], 12);
  ck_assert_int_eq(g->params[0].shape.dims[1], 6);
  graph_free(g);
}
END_TEST

START_TEST(defaults_without_a_train_block) {
  Graph *g = expect_ok("input x: [4]\nnet e = dense(2)\nnet d = dense(4)\nloss l = mse(d(e(x)), x)\n");
  ck_assert_int_eq(g->n_steps, 1);
  ck_assert_int_eq(g->steps[0].optimizer, OPTIMIZER_ADAM);
  ck_assert_int_eq(g->steps[0].n_nets, 2);
  ck_assert_str_eq(g->train.data, "fashion-mnist:train");
  ck_assert_str_eq(g->train.test, "fashion-mnist:test");
  ck_assert_uint_eq(g->train.seed, 1);
  graph_free(g);
}
END_TEST

START_TEST(a_step_only_differentiates_its_nets) {
  Graph *g = expect_ok("input x: [4]\nnet e = dense(2)\nnet d = dense(4)\nloss l = mse(d(e(x)), x)\n"
                       "train { step minimize l over d with sgd(lr=0.1, momentum=0.9) }\n");
  ck_assert_int_eq(g->steps[0].n_params, 2);
  ck_assert_str_eq(g->params[g->steps[0].params[0]].name, "d.dense_1.kernel");
  for (int i = 0; i < g->n_nodes; i++)  // nothing computes the gradient of e's kernel
    ck_assert(!(g->nodes[i].is_backward && g->nodes[i].op == OP_DENSE_GRAD_INPUT));
  ck_assert_double_eq(step_setting(&g->steps[0], "momentum"), 0.9);
  graph_free(g);
}
END_TEST

// Each optimizer's settings start at its row's defaults (PyTorch's); the
// arguments replace them, positional in the row's order or by keyword.
START_TEST(optimizer_settings_from_the_table) {
  Graph *g = expect_ok("input x: [4]\nnet e = dense(2)\nnet d = dense(4)\nloss l = mse(d(e(x)), x)\n"
                       "train { step minimize l over e, d with adamw()\n"
                       "        step minimize l over e, d with adamw(0.01, 0.8, weight_decay=0.5)\n"
                       "        step minimize l over e, d with rmsprop()\n"
                       "        step minimize l over d with rmsprop(lr=ramp(0.1, 0.01, 2), momentum=0.9, eps=0.001) }\n");
  ck_assert_int_eq(g->n_steps, 4);
  const Step *s = g->steps;
  ck_assert_int_eq(s[0].optimizer, OPTIMIZER_ADAMW);
  const double adamw_defaults[] = {0.001, 0.9, 0.999, 1e-8, 0.01};
  const char *const adamw_names[] = {"lr", "beta1", "beta2", "eps", "weight_decay"};
  for (int i = 0; i < 5; i++) ck_assert_double_eq(step_setting(&s[0], adamw_names[i]), adamw_defaults[i]);
  ck_assert_double_eq(s[1].lr, 0.01);
  ck_assert_double_eq(step_setting(&s[1], "beta1"), 0.8);
  ck_assert_double_eq(step_setting(&s[1], "beta2"), 0.999);
  ck_assert_double_eq(step_setting(&s[1], "weight_decay"), 0.5);
  ck_assert_int_eq(s[2].optimizer, OPTIMIZER_RMSPROP);
  ck_assert_double_eq(s[2].lr, 0.01);
  ck_assert_double_eq(step_setting(&s[2], "alpha"), 0.99);
  ck_assert_double_eq(step_setting(&s[2], "eps"), 1e-8);
  ck_assert_double_eq(step_setting(&s[2], "momentum"), 0);
  ck_assert(isnan(step_setting(&s[2], "weight_decay")));
  ck_assert_int_eq(s[3].lr_schedule, OP_RAMP);
  ck_assert_double_eq(s[3].lr, 0.1);
  ck_assert_double_eq(step_setting(&s[3], "eps"), 0.001);
  // adamw keeps m and v; rmsprop its momentum buffer only with momentum
  ck_assert_int_eq(step_n_states(&s[0]), 2);
  ck_assert_int_eq(step_n_states(&s[2]), 1);
  ck_assert_int_eq(step_n_states(&s[3]), 2);
  char text[400];
  step_optimizer_format(&s[1], false, text, sizeof text);
  ck_assert_str_eq(text, "adamw(lr=0.01, beta1=0.8, weight_decay=0.5)");
  step_optimizer_format(&s[3], true, text, sizeof text);
  ck_assert_str_eq(text, "rmsprop(lr=ramp(0.1, 0.01, 2), alpha=0.99, eps=0.001, momentum=0.9)");
  graph_free(g);
}
END_TEST

// Every row of runtime/aert_optimizers.def is complete: lr first, each
// default within its range, setting and state names unique, a momentum-like
// setting that drops the last state vector names one of its settings.
START_TEST(every_optimizer_row_is_complete) {
  for (int k = 0; k < OPTIMIZER_COUNT; k++) {
    const OptimizerInfo *info = &optimizer_table[k];
    ck_assert_ptr_eq(optimizer_named(info->name), info);
    int n = optimizer_n_settings(info);
    ck_assert_int_ge(n, 1);
    ck_assert_str_eq(info->settings[0].name, "lr");
    for (int i = 0; i < n; i++) {
      ck_assert_msg(setting_in_range(info->settings[i].range, info->settings[i].fallback), "%s: %s's default",
                    info->name, info->settings[i].name);
      for (int j = 0; j < i; j++) ck_assert_str_ne(info->settings[i].name, info->settings[j].name);
    }
    ck_assert_ptr_nonnull(info->states[0]);
    for (int i = 0; i < MAX_OPTIMIZER_STATES && info->states[i]; i++)
      for (int j = 0; j < i; j++) ck_assert_str_ne(info->states[i], info->states[j]);
    if (info->last_state_if) {
      bool found = false;
      for (int i = 0; i < n; i++) found |= strcmp(info->settings[i].name, info->last_state_if) == 0;
      ck_assert_msg(found, "%s: last_state_if names no setting", info->name);
      ck_assert_ptr_nonnull(info->states[1]);
    }
  }
}
END_TEST

// The groups of kind GROUP_UNPOOL_GRADIENT in the first step's fused plan,
// each checked to be an unpool and the activation gradient reading it.
static int unpool_gradient_groups(const char *text, bool fuse) {
  Graph *g = expect_ok(text);
  const Step *step = &g->steps[0];
  int outputs[64], n_outputs = 0;
  outputs[n_outputs++] = g->losses[step->loss_index].node;
  for (int i = 0; i < step->n_params && n_outputs < 64; i++) outputs[n_outputs++] = step->grad_nodes[i];
  Schedule schedule = schedule_for(g, outputs, n_outputs);
  FusionPlan plan = fuse_schedule(g, &schedule, outputs, n_outputs, fuse);
  int count = 0;
  for (int i = 0; i < plan.n_groups; i++) {
    const Group *group = &plan.groups[i];
    if (group->kind != GROUP_UNPOOL_GRADIENT) continue;
    ck_assert_int_eq(group->n_members, 2);
    const Node *unpool = &g->nodes[group->members[0]], *gradient = &g->nodes[group->members[1]];
    ck_assert_int_eq(unpool->op, OP_UNPOOL);
    ck_assert(op_info(gradient->op)->zero_where_gradient_is);
    ck_assert_int_eq(gradient->inputs[1], unpool->id);
    ck_assert_int_eq(group->output, gradient->id);
    count++;
  }
  fusion_plan_free(&plan);
  schedule_free(&schedule);
  graph_free(g);
  return count;
}

START_TEST(a_maxpool_gradient_takes_the_activation_gradient) {
  // relu, leaky_relu and tanh before maxpools whose windows lie inside the
  // input: covering all of it (6 x 6), and leaving its last row and column (5 x 5).
  const char *inside =
      "input x: [2, 6, 6]\n"
      "net e(x) {\n"
      "  r = maxpool(conv(x, 3, 3, relu), 2)\n"
      "  l = maxpool(conv(x, 3, 2, leaky_relu, pad=valid), 2)\n"
      "  t = maxpool(conv(x, 2, 3, tanh), 3)\n"
      "  return dense(flatten(r), 6) + dense(flatten(l), 6) + dense(flatten(t), 6)\n"
      "}\n"
      "net d = dense(72, sigmoid) -> reshape([2, 6, 6])\n"
      "loss l = bce(d(e(x)), x)\n";
  ck_assert_int_eq(unpool_gradient_groups(inside, true), 3);
  ck_assert_int_eq(unpool_gradient_groups(inside, false), 0);  // -O0: one kernel a node
  // Windows off the input's edge (pad=same on 5 x 5), and a maxpool of a
  // conv's output that a softplus also reads (softplus's gradient reads its
  // input, the value pooled, and the pooled gradient is summed with it): none.
  ck_assert_int_eq(unpool_gradient_groups("input x: [1, 5, 5]\n"
                                          "net e = conv(2, 3, relu) -> maxpool(2, pad=same) -> flatten() -> dense(4)\n"
                                          "net d = dense(25, sigmoid) -> reshape([1, 5, 5])\n"
                                          "loss l = bce(d(e(x)), x)\n",
                                          true),
                   0);
  ck_assert_int_eq(unpool_gradient_groups("input x: [1, 6, 6]\n"
                                          "net e(x) {\n"
                                          "  c = conv(x, 2, 3)\n"
                                          "  return dense(flatten(maxpool(c, 2)), 4) + dense(flatten(softplus(c)), 4)\n"
                                          "}\n"
                                          "net d = dense(36, sigmoid) -> reshape([1, 6, 6])\n"
                                          "loss l = bce(d(e(x)), x)\n",
                                          true),
                   0);
}
END_TEST

START_TEST(shape_errors_name_both_shapes) {
  expect_error("input x: [784]\nnet e = dense(16)\nnet d = dense(700, sigmoid)\nloss l = bce(d(e(x)), x)\n",
               "t.ae:4:10: error: bce: the prediction has shape [700] but the target has shape [784]; make the "
               "prediction's last layer produce [784], or compare with a target of shape [700]");
  expect_error("input x: [4]\nnet e = dense(2)\nloss l = mean(e(x) + x)\n",
               "t.ae:3:20: error: '+': the shapes [2] and [4] do not broadcast");
  expect_error("input x: [1, 28, 28]\nnet e = dense(2)\nloss l = mean(e(x))\n",
               "dense needs a flat input of shape [features] per sample, but got [1, 28, 28]; add flatten() before it");
}
END_TEST

START_TEST(a_net_keeps_its_first_shapes) {
  expect_error("input x: [4]\nnet e = dense(4)\nnet f = dense(2)\nloss l = mean(f(x)) + mean(f(f(x)))\n",
               "dense: its weights were made for inputs of 4 features, but this input has 2");
}
END_TEST

START_TEST(names_and_arity_errors) {
  expect_error("input x: [4]\nnet e = dense(2)\nloss l = mse(e(y), x)\n", "t.ae:3:16: error: unknown name 'y'");
  expect_error("input x: [4]\nnet e = dense(2, relu, 3)\nloss l = mean(e(x))\n",
               "t.ae:2:24: error: dense takes at most 2 arguments after its input, but 3 were given");
  expect_error("input x: [4]\nnet e = dense(units=2, act=relu)\nloss l = mean(e(x))\n",
               "t.ae:2:24: error: dense has no argument named 'act'");
  expect_error("input x: [4]\nnet e = dense()\nloss l = mean(e(x))\n", "t.ae:2:9: error: dense needs its argument 'units'");
  expect_error("input x: [4]\nnet e = frobnicate(3)\nloss l = mean(e(x))\n",
               "t.ae:2:9: error: unknown operation 'frobnicate'");
  expect_error("input x: [4]\nnet e = dense(2)\nloss l = mean(e(x, x))\n", "net 'e' takes 1 input, but 2 were given");
  expect_error("input x: [4]\nnet e = dense(2)\nloss l = mean(e(x))\nloss l = sum(e(x))\n",
               "t.ae:4:6: error: loss 'l' is already defined");
}
END_TEST

START_TEST(dropout_p_must_be_from_0_to_below_1) {
  expect_error("input x: [4]\nnet e = dense(4) -> dropout(1)\nloss l = mean(e(x))\n",
               "t.ae:2:29: error: dropout: the fraction p must be at least 0 and below 1");
  expect_error("input x: [4]\np = dropout(x, -0.5)\nnet e = dense(4)\nloss l = mse(e(p), x)\n",
               "t.ae:2:16: error: dropout: the fraction p must be at least 0 and below 1");
  expect_error("input x: [4]\np = dropout(x, x)\nnet e = dense(4)\nloss l = mse(e(p), x)\n",
               "t.ae:2:16: error: dropout: argument 'p' must be a number");
  expect_error("input x: [4]\np = dropout(x)\nnet e = dense(4)\nloss l = mse(e(p), x)\n",
               "t.ae:2:5: error: dropout needs its argument 'p'");
}
END_TEST

START_TEST(train_block_errors) {
  const char *model = "input x: [4]\nnet e = dense(2)\nnet d = dense(4)\nnet c = dense(1)\nloss l = mse(d(e(x)), x)\n";
  char text[1024];
  snprintf(text, sizeof text, "%strain { step minimize nope over e with adam() }\n", model);
  expect_error(text, "t.ae:6:23: error: unknown loss 'nope'");
  snprintf(text, sizeof text, "%strain { step minimize l over e, q with adam() }\n", model);
  expect_error(text, "t.ae:6:33: error: unknown net 'q'");
  snprintf(text, sizeof text, "%strain { step minimize l over c with adam() }\n", model);
  expect_error(text, "t.ae:6:30: error: net 'c' is never applied, so it has no weights to train");
  snprintf(text, sizeof text, "%strain { step minimize l over e with adagrad(lr=1) }\n", model);
  expect_error(text, "t.ae:6:37: error: unknown optimizer 'adagrad'; the optimizers are sgd, adam, adamw and rmsprop");
  snprintf(text, sizeof text, "%strain { step minimize l over e with rmsprop(beta1=0.9) }\n", model);
  expect_error(text, "t.ae:6:45: error: rmsprop has no setting 'beta1'; its settings are lr, alpha, eps and momentum");
  snprintf(text, sizeof text, "%strain { step minimize l over e with sgd(0.1, 0.9, 0) }\n", model);
  expect_error(text, "t.ae:6:51: error: sgd takes at most 2 settings: lr and momentum");
  snprintf(text, sizeof text, "%strain { step minimize l over e with adamw(weight_decay=-1) }\n", model);
  expect_error(text, "adamw: weight_decay = -1 is out of range; it must be at least 0, as in weight_decay=0.01");
  snprintf(text, sizeof text, "%strain { batch 0 step minimize l over e with adam() }\n", model);
  expect_error(text, "t.ae:6:15: error: batch must be a whole number from 1 to 1048576");
  snprintf(text, sizeof text, "%strain { step minimize l over e with adam(lr=-1) }\n", model);
  expect_error(text, "adam: lr = -1 is out of range");
}
END_TEST

START_TEST(a_loss_must_depend_on_its_step_nets) {
  expect_error("input x: [4]\nnet e = dense(4)\nnet c = dense(1)\nloss l = mse(e(x), x)\nloss k = mean(c(x))\n"
               "train { step minimize l over e, c with adam() step minimize k over c with adam() }\n",
               "loss 'l' does not depend on the parameters of net 'c', so this step cannot train it");
}
END_TEST

START_TEST(several_errors_in_one_run) {
  char *messages = NULL;
  Graph *g = compile_text("input x: [4]\nnet e = dense(2)\nloss a = mean(e(y))\nloss b = mean(e(z))\nloss c = mean(q)\n",
                          &messages);
  ck_assert_ptr_null(g);
  ck_assert_ptr_nonnull(strstr(messages, "unknown name 'y'"));
  ck_assert_ptr_nonnull(strstr(messages, "unknown name 'z'"));
  ck_assert_ptr_nonnull(strstr(messages, "unknown name 'q'"));
  ck_assert_int_eq(diag_error_count(), 3);
  free(messages);
}
END_TEST

START_TEST(missing_input_or_loss) {
  expect_error("net e = dense(2)\n", "t.ae:1:1: error: the file declares no input");
  expect_error("input x: [4]\nnet e = dense(2)\n", "t.ae:1:1: error: the file defines no loss");
  expect_error("input x: [4]\nloss l = 3 * 2\n", "a loss must be a scalar");
  expect_error("input x: [4]\nnet e = dense(2)\nloss l = e(x)\n",
               "a loss must be a scalar per sample, but this is of shape [2]; sum(v) or mean(v) reduces");
}
END_TEST

START_TEST(recursion_is_refused) {
  expect_error("input x: [4]\nnet f(v) {\n  return f(v)\n}\nloss l = mean(f(x))\n",
               "net 'f' applies itself; nets cannot be recursive");
}
END_TEST

// dropout(v, p): a pipeline stage or a function; attributes {p, 1/(1-p)}; a
// random node whose gradient reuses its draws (rng_node) and scale; gone
// from the inference graph. p = 0 is allowed (the identity, scale 1).
START_TEST(dropout_lowers_as_a_stage_and_as_a_function) {
  Graph *g = expect_ok("input x: [4]\n"
                       "net e = dense(4, relu) -> dropout(0.2) -> dense(3)\n"
                       "net d = dense(4)\n"
                       "loss l = mse(d(dropout(e(x), 0.5)), x) + mean(dropout(x, 0))\n");
  int in_net = find_node(g, "e_dropout"), forward[3], n_forward = 0, n_grad = 0;
  ck_assert_int_ge(in_net, 0);
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *node = &g->nodes[i];
    if (node->op == OP_DROPOUT) {
      ck_assert(!node->is_backward);
      ck_assert_int_eq(node->rng_node, i);
      ck_assert_int_lt(n_forward, 3);
      forward[n_forward++] = i;
    }
    if (node->op == OP_DROPOUT_GRAD) {  // the gradient through a dropout: its forward node's draws and attributes
      const Node *of = &g->nodes[node->rng_node];
      ck_assert(node->is_backward);
      ck_assert_int_eq(of->op, OP_DROPOUT);
      ck_assert_double_eq(node->attr[0], of->attr[0]);
      ck_assert_double_eq(node->attr[1], of->attr[1]);
      n_grad++;
    }
  }
  ck_assert_int_eq(n_forward, 3);
  ck_assert_int_eq(n_grad, 2);  // the dropout of the input alone needs no gradient
  ck_assert_int_eq(forward[0], in_net);
  ck_assert_double_eq(g->nodes[forward[0]].attr[0], 0.2);
  ck_assert_double_eq(g->nodes[forward[0]].attr[1], 1 / (1 - 0.2));
  ck_assert_double_eq(g->nodes[forward[1]].attr[1], 2);
  ck_assert_double_eq(g->nodes[forward[2]].attr[0], 0);
  ck_assert_double_eq(g->nodes[forward[2]].attr[1], 1);
  ck_assert(op_info(OP_DROPOUT)->random && op_info(OP_DROPOUT)->identity_at_inference);
  plan_inference(g);
  bool *reached = calloc((size_t)g->n_nodes, sizeof(bool));
  reached[g->eval_losses[0]] = true;
  for (int id = g->eval_losses[0]; id >= 0; id--) {
    if (!reached[id]) continue;
    ck_assert_msg(g->nodes[id].op != OP_DROPOUT, "the inference loss still drops out (%s)", g->nodes[id].name);
    for (int i = 0; i < g->nodes[id].n_inputs; i++) reached[g->nodes[id].inputs[i]] = true;
  }
  free(reached);
  graph_free(g);
}
END_TEST

// Layers without weights may be applied outside a net (they used to crash
// aec, recording a layer of net -1): they make plain values.
START_TEST(pooling_and_flatten_outside_a_net) {
  Graph *g = expect_ok("input x: [1, 8, 8]\n"
                       "net d = flatten() -> dense(64) -> reshape([1, 8, 8])\n"
                       "y = maxpool(d(x), 2)\n"
                       "loss r = mse(flatten(upsample(y, 2)), flatten(x))\n");
  ck_assert_int_ge(find_node(g, "y_maxpool_1"), 0);
  ck_assert_int_eq(g->n_layers, 3);  // the net's
  graph_free(g);
}
END_TEST

START_TEST(every_example_parses) {
  static const char *const examples[] = {"simple", "deep", "denoise", "sparse", "conv", "unpool", "adversarial"};
  for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
    char path[512];
    snprintf(path, sizeof path, "%s/examples/%s.ae", AEC_SOURCE_DIR, examples[i]);
    diag_reset();
    Source *src = source_load(path);
    ck_assert_ptr_nonnull(src);
    Program *program = parse_program(src);
    ck_assert_ptr_nonnull(program);
    ck_assert_msg(diag_error_count() == 0, "%s does not parse", path);
  }
}
END_TEST

// DESIGN part 1b: arithmetic on values, per-sample reductions, several results.
START_TEST(sum_and_mean_are_per_sample_and_a_loss_averages_them) {
  Graph *g = expect_ok("input x: [4]\nnet e = dense(4)\nloss l = sum(x - e(x)) + 2 * mean(square(e(x)))\n");
  const Node *loss = &g->nodes[g->losses[0].node];
  ck_assert_str_eq(op_name(loss->op), "batch_mean");  // the mean over the batch of a [1] value a sample
  const Node *terms = &g->nodes[loss->inputs[0]];
  ck_assert(terms->shape.batched && terms->shape.rank == 1 && terms->shape.dims[0] == 1);
  int sums = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if ((g->nodes[i].op == OP_SUM || g->nodes[i].op == OP_MEAN) && !g->nodes[i].is_backward) {
      ck_assert(g->nodes[i].shape.batched && shape_size(g->nodes[i].shape) == 1);
      sums++;
    }
  ck_assert_int_eq(sums, 2);
  graph_free(g);
}
END_TEST

START_TEST(a_per_sample_value_broadcasts) {
  graph_free(expect_ok("input x: [1, 4, 4]\nnet e = conv(2, 3)\nh = e(x)\n"
                       "loss l = mean(h / sqrt(sum(square(h)) + 1) - mean(h) * h) + mean(exp(h) * abs(h))\n"));
  graph_free(expect_ok("input x: [4]\nnet e = dense(4, relu)\nloss l = mean(log(e(x)))\n"));  // log(0) is the user's
  expect_error("input x: [4]\nnet e = dense(3)\nloss l = mean(e(x) + x)\n",
               "t.ae:3:20: error: '+': the shapes [3] and [4] do not broadcast; both sides need the same shape, or "
               "one side must be a number or a [1] value per sample");
  expect_error("input x: [4]\nnet e = dense(4)\nloss l = mse(e(x), x) * mean(x)\n",
               "t.ae:3:23: error: a product of a mean over the batch: mse, bce, l1, l2 and kl_sparsity are already");
  expect_error("input x: [4]\nnet e = dense(4)\nloss l = mean(x) / mse(e(x), x)\n", "a division of a mean over");
  expect_error("input x: [4]\nnet e = dense(4)\nloss l = exp(mse(e(x), x))\n", "exp of a mean over the batch");
}
END_TEST

START_TEST(several_results_bind_several_names) {
  Graph *g = expect_ok("input x: [4]\nnet e(v) {\n  h = dense(v, 3, relu)\n  return dense(h, 2), dense(h, 2)\n}\n"
                       "net d = dense(4, sigmoid)\nm, s = e(x)\nloss l = bce(d(sample_normal(m, s)), x) + "
                       "kl_normal(m, s)\n");
  ck_assert_int_eq(g->n_params, 8);  // three dense layers in e, one in d
  graph_free(g);
  const char *net = "input x: [4]\nnet e(v) {\n  return dense(v, 2), dense(v, 3)\n}\nnet f = dense(2)\n";
  char text[512];
  snprintf(text, sizeof text, "%sa, b = f(x)\nloss l = mean(a)\n", net);
  expect_error(text, "t.ae:6:8: error: 2 names are bound to 'f', which gives 1 result; bind one name");
  snprintf(text, sizeof text, "%sa, b, c = e(x)\nloss l = mean(a)\n", net);
  expect_error(text, "3 names are bound to 'e', which gives 2 results; bind as many names as it returns");
  snprintf(text, sizeof text, "%sloss l = mean(e(x))\n", net);
  expect_error(text, "t.ae:6:15: error: 'e' gives 2 results, and a value here is one; bind them to names first: "
                     "a, b = e(...)");
  snprintf(text, sizeof text, "%sa, b = e(x)\nloss l = kl_normal(a, b)\n", net);
  expect_error(text, "t.ae:7:10: error: kl_normal: the mean has shape [2] but the log-variance has shape [3]; give "
                     "both the same number of units");
  snprintf(text, sizeof text, "%sa, b = e(x)\nloss l = mean(concat(a, b)) + mean(slice(b, 1, 3))\n", net);
  graph_free(expect_ok(text));
  snprintf(text, sizeof text, "%sa, b = e(x)\nloss l = mean(slice(b, 2, 4))\n", net);
  expect_error(text, "t.ae:7:15: error: slice: from 2 to 4 is not a part of the last axis of [3]; take whole numbers "
                     "with 0 <= from < to <= 3");
  expect_error("input x: [1, 4, 4]\nnet e = flatten()\nloss l = mean(concat(x, e(x)))\n",
               "concat: [1, 4, 4] and [16] cannot be joined along the last axis; every other axis must be the same");
  snprintf(text, sizeof text, "%sa, b = e(x)\nloss l = mean(sample_normal(a, 0))\n", net);
  expect_error(text, "sample_normal: argument 'logvar' must be");
}
END_TEST

Suite *compiler_suite(void) {
  Suite *s = suite_create("compiler");
  TCase *t = tcase_create("lowering");
  tcase_add_test(t, shapes_of_a_dense_autoencoder);
  tcase_add_test(t, validation_and_patience_in_the_train_block);
  tcase_add_test(t, bce_of_a_sigmoid_uses_the_logits);
  tcase_add_test(t, a_second_call_shares_weights);
  tcase_add_test(t, functional_nets_and_params_in_shapes);
  tcase_add_test(t, defaults_without_a_train_block);
  tcase_add_test(t, a_step_only_differentiates_its_nets);
  tcase_add_test(t, optimizer_settings_from_the_table);
  tcase_add_test(t, every_optimizer_row_is_complete);
  tcase_add_test(t, dropout_lowers_as_a_stage_and_as_a_function);
  tcase_add_test(t, a_maxpool_gradient_takes_the_activation_gradient);
  tcase_add_test(t, pooling_and_flatten_outside_a_net);
  tcase_add_test(t, every_example_parses);
  suite_add_tcase(s, t);
  TCase *e = tcase_create("diagnostics");
  tcase_add_test(e, shape_errors_name_both_shapes);
  tcase_add_test(e, a_net_keeps_its_first_shapes);
  tcase_add_test(e, names_and_arity_errors);
  tcase_add_test(e, dropout_p_must_be_from_0_to_below_1);
  tcase_add_test(e, train_block_errors);
  tcase_add_test(e, a_loss_must_depend_on_its_step_nets);
  tcase_add_test(e, several_errors_in_one_run);
  tcase_add_test(e, missing_input_or_loss);
  tcase_add_test(e, recursion_is_refused);
  suite_add_tcase(s, e);
  TCase *v = tcase_create("values");
  tcase_add_test(v, sum_and_mean_are_per_sample_and_a_loss_averages_them);
  tcase_add_test(v, a_per_sample_value_broadcasts);
  tcase_add_test(v, several_results_bind_several_names);
  suite_add_tcase(s, v);
  return s;
}
