// test_ops.c — every op row is complete. ops.def lists the ops; each one's
// OpInfo row (ops/) must give what the passes and the writer will ask of it,
// so a new op that forgets a piece fails here, by name, rather than in some
// model that happens to use it. (table.c's _Static_assert and the link
// check that every op has a row at all.)
#define _GNU_SOURCE
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools.h"
#include "tests.h"

// ops.def's builtin rows, in order: what aec --list-ops must print.
static const struct {
  const char *name;
  OpKind op;  // OP_INPUT for a BUILTIN row
  bool activation;
} builtin_rows[] = {
#define BUILTIN_OP(kind, name, params, lowering, summary) {name, kind, false},
#define BUILTIN(name, params, lowering, summary) {name, OP_INPUT, false},
#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary) {name, kind, true},
#include "ops.def"
};
enum { N_BUILTIN_ROWS = sizeof builtin_rows / sizeof *builtin_rows };

// The ACTIVATION rows: an activation, its gradient op and that op's derivative.
static const struct {
  OpKind op, grad, grad2;
  const char *name, *grad_name, *second;
  GradientReads reads;
} activation_rows[] = {
#define ACTIVATION(kind, name, forward, gradient, second, reads, param, fallback, summary) \
  {kind, kind##_GRAD, kind##_GRAD2, name, name "_grad", second, reads},
#include "ops.def"
};

// Gradient ops are named *_grad* (dense_grad_input, bias_grad, relu_grad,
// bce_grad_target, ...); every other op with inputs is one a model's
// forward graph can hold, which autodiff may have to differentiate.
static bool is_gradient_op(OpKind op) { return strstr(op_name(op), "grad") != NULL; }

// The largest $N an expression template reads, or -1.
static int largest_operand(const char *expr) {
  int largest = -1;
  for (const char *p = strchr(expr, '$'); p; p = strchr(p + 1, '$'))
    if (isdigit((unsigned char)p[1]) && p[1] - '0' > largest) largest = p[1] - '0';
  return largest;
}

static bool mentions_draws(const char *expr) {
  return strstr(expr, "$uniform") != NULL || strstr(expr, "$normal") != NULL;
}

START_TEST(every_op_has_a_unique_name) {
  for (int op = 0; op < OP_COUNT; op++) {
    const char *name = op_name(op);
    ck_assert_msg(name && *name, "op %d has no name in ops.def", op);
    for (const char *c = name; *c; c++)
      ck_assert_msg(islower((unsigned char)*c) || isdigit((unsigned char)*c) || *c == '_',
                    "op name '%s' is not a lower-case identifier", name);
    for (int other = 0; other < op; other++)
      ck_assert_msg(strcmp(op_name(other), name) != 0, "two ops are named '%s'", name);
    ck_assert_ptr_nonnull(op_info(op));
  }
}
END_TEST

// A kernel kind, and what that kind needs: an expression for elementwise and
// reduce kernels (reading only inputs it has), an emit function for custom
// ones, and none of either for storage.
START_TEST(every_op_has_a_kernel_and_what_it_needs) {
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *info = op_info(op);
    const char *name = op_name(op);
    switch (info->kernel) {
    case KERNEL_NONE:
      ck_assert_msg(op == OP_INPUT || op == OP_PARAM || op == OP_CONSTANT || info->schedule, "%s has no kernel", name);
      ck_assert_msg(!info->expr && !info->emit, "%s is storage but has a kernel", name);
      break;
    case KERNEL_CUSTOM:
      ck_assert_msg(info->emit != NULL, "%s has a custom kernel but no emit function", name);
      break;
    case KERNEL_ELEMENTWISE:
    case KERNEL_REDUCE:
      ck_assert_msg(info->expr && *info->expr, "%s has an elementwise or reduce kernel but no expression", name);
      ck_assert_msg(largest_operand(info->expr) < info->n_inputs, "%s's expression reads $%d but it has %d inputs",
                    name, largest_operand(info->expr), info->n_inputs);
      ck_assert_msg(mentions_draws(info->expr) == info->random, "%s: its expression %s random draws, but the row %s",
                    name, mentions_draws(info->expr) ? "takes" : "takes no", info->random ? "is random" : "is not");
      ck_assert_msg(!info->emit, "%s has both an expression and an emit function", name);
      break;
    }
    if (info->kernel == KERNEL_REDUCE) ck_assert_msg(info->n_inputs >= 1, "%s reduces nothing", name);
    if (info->kernel != KERNEL_NONE) ck_assert_msg(info->flops != NULL, "%s has a kernel but no FLOPs rule", name);
    if (info->rest || info->log_factor)
      ck_assert_msg(info->rest && info->log_factor && info->kernel == KERNEL_REDUCE, "%s: a half-split loss term", name);
  }
}
END_TEST

// Whether op stands for another at inference only (batchnorm_eval): a
// training graph, which autodiff differentiates, never holds it.
static bool is_inference_only(OpKind op) {
  for (int other = 0; other < OP_COUNT; other++)
    if (op_info(other)->inference_op == op && op != OP_INPUT) return true;
  return false;
}

// A shape rule wherever the op has inputs (ops without inputs get their
// shape when they are made: input, param, the priors), and a
// vector-Jacobian rule for every op a forward graph can hold.
START_TEST(every_forward_op_has_a_shape_and_a_gradient_rule) {
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *info = op_info(op);
    const char *name = op_name(op);
    ck_assert_msg(info->n_inputs >= 0 && info->n_inputs <= MAX_INPUTS, "%s: %d inputs", name, info->n_inputs);
    if (info->n_inputs > 0) ck_assert_msg(info->shape != NULL, "%s has inputs but no shape rule", name);
    if (info->inference_op != OP_INPUT) {
      const OpInfo *at_inference = op_info(info->inference_op);
      ck_assert_msg(at_inference->n_inputs == info->n_inputs && at_inference->kernel != KERNEL_NONE,
                    "%s's inference op %s must take the same inputs and have a kernel", name,
                    op_name(info->inference_op));
    }
    if (info->n_inputs > 0 && !is_gradient_op(op) && !is_inference_only(op))
      ck_assert_msg(info->vjp != NULL, "%s can be in a forward graph but has no vector-Jacobian rule", name);
    if (info->n_inputs == 0) ck_assert_msg(!info->vjp, "%s has no input to differentiate", name);
  }
}
END_TEST

// Each ACTIVATION row gives the activation, its gradient op and the
// gradient's derivative, one elementwise input, two and two, named alike; the
// activation's vjp makes the gradient op, whose own vjp (second derivatives)
// makes the third op unless its expression is "0".
START_TEST(every_activation_has_its_gradient_op) {
  for (size_t i = 0; i < sizeof activation_rows / sizeof *activation_rows; i++) {
    const OpInfo *act = op_info(activation_rows[i].op), *grad = op_info(activation_rows[i].grad);
    const char *name = activation_rows[i].name;
    ck_assert_str_eq(op_name(activation_rows[i].op), name);
    ck_assert_str_eq(op_name(activation_rows[i].grad), activation_rows[i].grad_name);
    ck_assert_msg(act->kernel == KERNEL_ELEMENTWISE && act->n_inputs == 1 && act->pure && act->vjp, "%s", name);
    ck_assert_msg(act->activation_gradient == activation_rows[i].grad, "%s's gradient op is not %s_grad", name, name);
    ck_assert_msg(act->gradient_reads_output == (activation_rows[i].reads == READS_OUTPUT), "%s", name);
    ck_assert_msg(grad->kernel == KERNEL_ELEMENTWISE && grad->n_inputs == 2 && grad->pure && grad->vjp, "%s_grad", name);
    ck_assert_msg(strstr(grad->expr, "$1") != NULL, "%s_grad does not read the incoming gradient ($1)", name);
    const OpInfo *grad2 = op_info(activation_rows[i].grad2);
    ck_assert_msg(grad->second_gradient == activation_rows[i].grad2, "%s_grad's derivative is not %s_grad2", name, name);
    ck_assert_msg(grad2->kernel == KERNEL_ELEMENTWISE && grad2->n_inputs == 2 && grad2->pure && !grad2->vjp, "%s_grad2", name);
    ck_assert_str_eq(grad2->expr, activation_rows[i].second);
    ck_assert_msg(strcmp(grad2->expr, "0") == 0 || strstr(grad2->expr, "$1") != NULL,
                  "%s_grad2 does not read the product of the gradients ($1)", name);
    // Only a gradient of the output may be applied at a maxpool's switches (pool.c).
    ck_assert_msg(grad->zero_where_gradient_is == act->gradient_reads_output, "%s_grad", name);
  }
}
END_TEST

// The rows' other promises: a loss's fused gradient op reads its inputs and
// the scalar gradient; fusion hooks come with the kernel that does the fusing.
START_TEST(fusion_and_loss_fields_are_consistent) {
  for (int op = 0; op < OP_COUNT; op++) {
    const OpInfo *info = op_info(op);
    const char *name = op_name(op);
    if (info->gradient_op != OP_INPUT) {
      const OpInfo *grad = op_info(info->gradient_op);
      ck_assert_msg(info->kernel == KERNEL_REDUCE && info->n_inputs == 2, "%s has a fused gradient but is no loss", name);
      ck_assert_msg(grad->kernel == KERNEL_ELEMENTWISE && grad->n_inputs == 3, "%s's gradient op", name);
    }
    if (info->takes_epilogue || info->takes_reader)
      ck_assert_msg(info->emit_group != NULL && info->kernel == KERNEL_CUSTOM, "%s fuses without a group kernel", name);
    if (info->window) ck_assert_msg(info->kernel == KERNEL_CUSTOM && info->n_inputs >= 1, "%s", name);
    // at inference it passes input 0 through (sample_normal's mean)
    if (info->identity_at_inference) ck_assert_msg(info->random && info->n_inputs >= 1, "%s", name);
    if (info->prior) ck_assert_msg(info->random && info->n_inputs == 0, "%s", name);
  }
}
END_TEST

// aec --list-ops prints every builtin row, in ops.def's order.
START_TEST(list_ops_prints_every_builtin_row) {
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  list_ops(out);
  fclose(out);
  const char *line = text;
  for (int i = 0; i < N_BUILTIN_ROWS; i++) {
    ck_assert_msg(line && *line, "--list-ops stops before %s", builtin_rows[i].name);
    size_t n = strlen(builtin_rows[i].name);
    ck_assert_msg(strncmp(line, builtin_rows[i].name, n) == 0 && line[n] == '(', "--list-ops has %.*s where ops.def has %s",
                  (int)strcspn(line, "("), line, builtin_rows[i].name);
    if (builtin_rows[i].op != OP_INPUT) ck_assert_str_eq(op_name(builtin_rows[i].op), builtin_rows[i].name);
    line = strchr(line, '\n');
    line = line ? line + 1 : NULL;
  }
  ck_assert_msg(!line || !*line, "--list-ops prints more than ops.def's rows: %s", line);
  free(text);
}
END_TEST

// Lowers `text` and returns the messages (the graph is freed).
static char *lowering_messages(const char *text) {
  char *buffer = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&buffer, &size);
  diag_set_output(out);
  diag_reset();
  Source *src = source_from_string("t.ae", text);
  Program *program = parse_program(src);
  Graph *g = program && diag_error_count() == 0 ? lower_program(program, NULL, 0) : NULL;
  if (g) graph_free(g);
  fclose(out);
  diag_set_output(stderr);
  return buffer;
}

// Every activation is a layer argument, a pipeline stage and a function, and
// the message for a wrong activation argument lists every one.
START_TEST(every_activation_is_usable_and_listed) {
  char *messages = lowering_messages("input x: [4]\nnet e = dense(4, 3)\nloss l = mse(e(x), x)\n");
  for (int i = 0; i < N_BUILTIN_ROWS; i++)
    if (builtin_rows[i].activation)
      ck_assert_msg(strstr(messages, builtin_rows[i].name), "the activation list lacks %s: %s", builtin_rows[i].name,
                    messages);
  ck_assert_msg(strstr(messages, ", linear"), "%s", messages);
  free(messages);
  for (int i = 0; i < N_BUILTIN_ROWS; i++) {
    if (!builtin_rows[i].activation) continue;
    char text[512];
    const char *a = builtin_rows[i].name;
    snprintf(text, sizeof text, "input x: [4]\nnet e = dense(4, %s) -> %s\nnet d(v) {\n  return dense(%s(v), 4)\n}\n"
             "loss l = mse(d(e(x)), x)\n", a, a, a);
    messages = lowering_messages(text);
    ck_assert_msg(*messages == '\0', "%s:\n%s", a, messages);
    free(messages);
  }
}
END_TEST

Suite *ops_suite(void) {
  Suite *s = suite_create("ops");
  TCase *t = tcase_create("op rows");
  tcase_add_test(t, every_op_has_a_unique_name);
  tcase_add_test(t, every_op_has_a_kernel_and_what_it_needs);
  tcase_add_test(t, every_forward_op_has_a_shape_and_a_gradient_rule);
  tcase_add_test(t, every_activation_has_its_gradient_op);
  tcase_add_test(t, fusion_and_loss_fields_are_consistent);
  tcase_add_test(t, list_ops_prints_every_builtin_row);
  tcase_add_test(t, every_activation_is_usable_and_listed);
  suite_add_tcase(s, t);
  return s;
}
