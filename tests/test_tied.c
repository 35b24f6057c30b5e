// test_tied.c — named layers and tied weights (DESIGN.md part 1b): NET.LAYER
// parses as a member expression with both places kept; a tied dense layer
// adds only its bias (tied.ae has fewer parameters than the same model
// untied); the tied kernel is its owner's: one tensor in checkpoints, changed
// only by a step that names the owning net; the description says that the
// kernel is used transposed; a net may tie to an earlier layer of its own,
// not to a later one. The bad inputs' messages are in tests/bad/tied_*.ae.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dsl.h"
#include "tests.h"

START_TEST(a_layer_name_is_a_member_expression) {
  Source *source = source_from_string("t.ae", "net d = dense(6, tied=encoder.dense_1)\n");
  diag_set_output(fopen("/dev/null", "w"));
  diag_reset();
  Program *program = parse_program(source);
  ck_assert_int_eq(diag_error_count(), 0);
  ck_assert_ptr_nonnull(program);
  ck_assert_int_eq(program->n_stmts, 1);
  const Expr *call = program->stmts[0]->value;
  if (call->kind == EXPR_PIPELINE) call = call->items[0];
  ck_assert_int_eq(call->kind, EXPR_CALL);
  ck_assert_int_eq(call->n_args, 2);
  ck_assert_str_eq(call->args[1].keyword, "tied");
  const Expr *member = call->args[1].value;
  ck_assert_int_eq(member->kind, EXPR_MEMBER);
  ck_assert_str_eq(member->name, "encoder.dense_1");
  ck_assert_str_eq(member->lhs->name, "encoder");
  ck_assert_str_eq(member->rhs->name, "dense_1");
  ck_assert_int_eq(member->loc.col, 23);       // the net's name
  ck_assert_int_eq(member->rhs->loc.col, 31);  // the layer's
  ast_free_all();
  source_free(source);
  diag_set_output(NULL);
}
END_TEST

static long total_params(const char *model_text) {
  char *dir = make_temp_dir("tied-summary"), *path = path_in(dir, "m.ae");
  write_file(path, model_text, strlen(model_text));
  CommandResult r = run_command("%s/aec %s --summary", AEC_BUILD_DIR, path);
  ck_assert_msg(r.status == 0, "aec --summary failed:\n%s", r.err);
  const char *line = strstr(r.out, "Total params: ");
  ck_assert_msg(line != NULL, "no total in:\n%s", r.out);
  long params = strtol(line + 14, NULL, 10);
  command_result_free(&r);
  remove_tree(dir);
  free(path), free(dir);
  return params;
}

START_TEST(a_tied_layer_adds_only_its_bias) {
  char *tied = read_whole_file(AEC_SOURCE_DIR "/examples/tied.ae", NULL);
  const char *untied = "input x: [784]\n"
                       "net encoder = dense(128, relu) -> dense(32, relu)\n"
                       "net decoder = dense(128, relu) -> dense(784, sigmoid)\n"
                       "loss recon = bce(decoder(encoder(x)), x)\n";
  long with = total_params(tied), without = total_params(untied);
  ck_assert_int_eq(without, 784 * 128 + 128 + 128 * 32 + 32 + 32 * 128 + 128 + 128 * 784 + 784);
  ck_assert_int_eq(with, without - 32 * 128 - 128 * 784);
  free(tied);
  // A tied deconv adds its bias only too.
  ck_assert_int_eq(total_params("input x: [1, 6, 6]\n"
                                "net encoder = conv(2, 3, tanh, stride=2)\n"
                                "net decoder = deconv(1, 3, sigmoid, stride=2, tied=encoder.conv_1)\n"
                                "loss recon = bce(decoder(encoder(x)), x)\n"),
                   2 * 1 * 3 * 3 + 2 + 1);
}
END_TEST

// A tensor's bytes in a safetensors file (NULL when it has none), and how
// many tensors the header names.
typedef struct Tensors {
  char *file;
  size_t size;
  const char *header;
  size_t header_length;
} Tensors;

static Tensors read_tensors(const char *dir, const char *name) {
  Tensors t = {0};
  char *path = path_in(dir, name);
  t.file = read_whole_file(path, &t.size);
  free(path);
  ck_assert_uint_ge(t.size, 8);
  uint64_t length = 0;
  for (int i = 7; i >= 0; i--) length = length << 8 | (unsigned char)t.file[i];
  ck_assert_uint_le(8 + length, t.size);
  t.header = t.file + 8, t.header_length = length;
  return t;
}

static const char *tensor(const Tensors *t, const char *name, size_t *bytes) {
  char key[200];
  snprintf(key, sizeof key, "\"%s\"", name);
  const char *at = memmem(t->header, t->header_length, key, strlen(key));
  if (!at) return NULL;
  const char *offsets = strstr(at, "\"data_offsets\"");
  ck_assert_ptr_nonnull(offsets);
  unsigned long begin, end;
  ck_assert_int_eq(sscanf(offsets, "\"data_offsets\":[%lu,%lu]", &begin, &end), 2);
  *bytes = end - begin;
  return t->header + t->header_length + begin;
}

static int count_in_header(const Tensors *t, const char *text) {
  int n = 0;
  for (const char *p = t->header; (p = memmem(p, t->header_length - (size_t)(p - t->header), text, strlen(text)));
       p++)
    n++;
  return n;
}

static bool same_tensor(const Tensors *a, const Tensors *b, const char *name) {
  size_t na = 0, nb = 0;
  const char *da = tensor(a, name, &na), *db = tensor(b, name, &nb);
  ck_assert_msg(da && db, "%s is missing from a checkpoint", name);
  ck_assert_uint_eq(na, nb);
  return memcmp(da, db, na) == 0;
}

// Trains one epoch of `steps` on the small tied model and checks which
// tensors changed.
static void train_tied(const char *steps, bool encoder_changes) {
  char model[1024];
  snprintf(model, sizeof model,
           "input x: [6]\n"
           "net encoder = dense(4, tanh) -> dense(3, sigmoid)\n"
           "net decoder = dense(4, tanh, tied=encoder.dense_2) -> dense(6, sigmoid, tied=encoder.dense_1)\n"
           "loss recon = bce(decoder(encoder(x)), x)\n"
           "train { batch 8  epochs 1  %s }\n",
           steps);
  char *dir = make_program_dir("tied-train", model, 32, 6);
  must_succeed_in(dir, "./m train --data train.csv --test none --epochs 0 --checkpoint init.safetensors");
  must_succeed_in(dir, "./m train --data train.csv --test none --epochs 1 --checkpoint final.safetensors");
  Tensors init = read_tensors(dir, "init.safetensors"), final = read_tensors(dir, "final.safetensors");
  // The kernels are held once, by their owner; the decoder has biases only.
  ck_assert_int_eq(count_in_header(&final, ".kernel\":{"), 2);
  ck_assert_int_eq(count_in_header(&final, "\"encoder.dense_1.kernel\":{"), 1);
  ck_assert_int_eq(count_in_header(&final, "\"decoder.dense_1.kernel\":{"), 0);
  ck_assert_int_eq(count_in_header(&final, "\"decoder.dense_2.bias\":{"), 1);
  size_t bytes = 0;
  ck_assert_ptr_nonnull(tensor(&final, "encoder.dense_1.kernel", &bytes));
  ck_assert_uint_eq(bytes, 6 * 4 * 4);  // [6, 4] float32
  ck_assert(!same_tensor(&init, &final, "decoder.dense_1.bias"));
  ck_assert(!same_tensor(&init, &final, "decoder.dense_2.bias"));
  ck_assert_int_eq(same_tensor(&init, &final, "encoder.dense_1.kernel"), !encoder_changes);
  ck_assert_int_eq(same_tensor(&init, &final, "encoder.dense_2.kernel"), !encoder_changes);
  ck_assert_int_eq(same_tensor(&init, &final, "encoder.dense_1.bias"), !encoder_changes);
  free(init.file), free(final.file);
  remove_tree(dir);
  free(dir);
}

START_TEST(a_step_over_the_decoder_leaves_the_tied_kernels) {
  train_tied("step minimize recon over decoder with adam(lr=0.01)", false);
}
END_TEST

START_TEST(a_step_over_the_owner_changes_them) {
  train_tied("step minimize recon over encoder, decoder with adam(lr=0.01)", true);
}
END_TEST

START_TEST(the_description_says_the_kernel_is_transposed) {
  char *dir = make_program_dir("tied-describe",
                               "input x: [6]\n"
                               "net ae = dense(3, tanh) -> dense(6, sigmoid, tied=ae.dense_1)\n"
                               "loss recon = bce(ae(x), x)\n",
                               8, 6);
  CommandResult r = run_in(dir, "./m describe");
  ck_assert_int_eq(r.status, 0);
  const char *node = strstr(r.out, "\"op\": \"dense_tied\"");
  ck_assert_msg(node != NULL, "no dense_tied node in:\n%s", r.out);
  const char *end = strchr(node, '}');
  const char *transposed = strstr(node, "\"transposed\": [1]");
  ck_assert_msg(transposed && transposed < end, "the dense_tied node does not say its kernel is transposed:\n%s", r.out);
  ck_assert_ptr_null(strstr(end, "\"op\": \"dense_tied\""));  // one tied layer
  ck_assert_int_eq(strstr(r.out, "\"transposed\"") == transposed, 1);  // and nothing else is
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(a_net_ties_to_an_earlier_layer_of_its_own_not_a_later_one) {
  ck_assert_int_eq(total_params("input x: [6]\n"
                                "net ae = dense(3, tanh) -> dense(6, sigmoid, tied=ae.dense_1)\n"
                                "loss recon = bce(ae(x), x)\n"),
                   6 * 3 + 3 + 6);
  char *dir = make_temp_dir("tied-later"), *path = path_in(dir, "m.ae");
  const char *text = "input x: [6]\n"
                     "net ae = dense(6, sigmoid, tied=ae.dense_2) -> dense(6, tanh)\n"
                     "loss recon = bce(ae(x), x)\n";
  write_file(path, text, strlen(text));
  CommandResult r = run_command("%s/aec %s --summary", AEC_BUILD_DIR, path);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "net 'ae' has no layer 'dense_2' before this one; it has no dense layers") != NULL,
                "unexpected message:\n%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(path), free(dir);
}
END_TEST

Suite *tied_suite(void) {
  Suite *s = suite_create("tied");
  TCase *front = tcase_create("front");
  tcase_add_test(front, a_layer_name_is_a_member_expression);
  tcase_add_test(front, a_tied_layer_adds_only_its_bias);
  tcase_add_test(front, a_net_ties_to_an_earlier_layer_of_its_own_not_a_later_one);
  suite_add_tcase(s, front);
  TCase *programs = tcase_create("programs");
  tcase_set_timeout(programs, 300);
  tcase_add_test(programs, a_step_over_the_decoder_leaves_the_tied_kernels);
  tcase_add_test(programs, a_step_over_the_owner_changes_them);
  tcase_add_test(programs, the_description_says_the_kernel_is_transposed);
  suite_add_tcase(s, programs);
  return s;
}
