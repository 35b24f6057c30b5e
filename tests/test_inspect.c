// test_inspect.c — what aec shows of its work: --list-ops against
// docs/language.md, the generated file's buffer tables and kernel notes,
// --dump-ir, --dot and --line.
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) fwrite(buf, 1, n, out);
  fclose(f);
  fclose(out);
  return text;
}

enum { MAX_OPS = 128 };

// docs/language.md's op entries: lines `### \`name(args)\``, in order.
static int doc_ops(const char *doc, char ops[MAX_OPS][128]) {
  int n = 0;
  for (const char *p = doc; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
    if (strncmp(p, "### `", 5) != 0) continue;
    const char *end = strchr(p + 5, '`');
    ck_assert_msg(end && n < MAX_OPS, "a malformed op heading in docs/language.md");
    snprintf(ops[n++], 128, "%.*s", (int)(end - p - 5), p + 5);
  }
  return n;
}

// Every op `aec --list-ops` prints has a `### \`name(args)\`` entry in
// docs/language.md with the same arguments, and no other entry claims to be an op.
START_TEST(language_reference_matches_list_ops) {
  CommandResult r = run_command("'%s/aec' --list-ops", AEC_BUILD_DIR);
  ck_assert_int_eq(r.status, 0);
  char path[4096];
  snprintf(path, sizeof path, "%s/docs/language.md", AEC_SOURCE_DIR);
  char *doc = read_text(path);
  ck_assert_msg(doc != NULL, "docs/language.md is missing");
  static char documented[MAX_OPS][128];
  int n_documented = doc_ops(doc, documented);
  bool used[MAX_OPS] = {0};
  int listed = 0;
  for (char *line = strtok(r.out, "\n"); line; line = strtok(NULL, "\n")) {
    char signature[128];
    const char *gap = strstr(line, "  ");
    snprintf(signature, sizeof signature, "%.*s", gap ? (int)(gap - line) : (int)strlen(line), line);
    ck_assert_msg(strchr(signature, '(') && signature[strlen(signature) - 1] == ')', "odd --list-ops line: %s", line);
    listed++;
    bool found = false;
    for (int i = 0; i < n_documented; i++)
      if (strcmp(documented[i], signature) == 0) found = used[i] = true;
    if (!found) {
      // Name the documented entry with the same name, if its arguments differ.
      char name[128];
      snprintf(name, sizeof name, "%.*s(", (int)(strchr(signature, '(') - signature), signature);
      const char *other = "none";
      for (int i = 0; i < n_documented; i++)
        if (strncmp(documented[i], name, strlen(name)) == 0) other = documented[i];
      ck_assert_msg(false, "aec --list-ops has `%s`; docs/language.md needs a `### `%s`` entry (it has: %s)", signature,
                    signature, other);
    }
  }
  ck_assert_int_ge(listed, 20);
  for (int i = 0; i < n_documented; i++)
    ck_assert_msg(used[i], "docs/language.md documents `%s`, which aec --list-ops does not list", documented[i]);
  free(doc);
  command_result_free(&r);
}
END_TEST

// The acceptance path of docs/generated-code.md: from the header table of
// deep.ae's C alone, the second layer's (encoder.dense_2's) backward kernels,
// each defined below under its note and drawn as a box by --dot.
START_TEST(header_table_leads_to_a_layers_backward_kernel) {
  char *dir = make_temp_dir("inspect");
  CommandResult r = run_command("cd '%s' && '%s/aec' examples/deep.ae -o '%s/deep.c'", AEC_SOURCE_DIR, AEC_BUILD_DIR, dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  char path[4096];
  snprintf(path, sizeof path, "%s/deep.c", dir);
  char *c = read_text(path);
  ck_assert(c != NULL);
  ck_assert_ptr_nonnull(strstr(c, "// Options: -O2 --dtype f32\n"));
  const char *kernels = strstr(c, "// ---- kernels");
  ck_assert_ptr_nonnull(kernels);
  // The table row: value, shape, storage, kernel, layer, place, pass.
  const char *row = strstr(c, "//   grad_encoder_dense_2_kernel ");
  ck_assert_msg(row && row < kernels, "no table row for grad_encoder_dense_2_kernel above the kernels");
  const char *end = strchr(row, '\n');
  char line[512];
  snprintf(line, sizeof line, "%.*s", (int)(end - row), row);
  ck_assert_msg(strstr(line, "[128, 64]") && strstr(line, "grads + ENCODER_DENSE_2_KERNEL_OFFSET") &&
                    strstr(line, " compute_grad_encoder_dense_2_kernel ") && strstr(line, " encoder.dense_2 ") &&
                    strstr(line, " 3:35 ") && strstr(line, "backward"),
                "unexpected row: %s", line);
  const char *note = strstr(kernels, "// ==== compute_grad_encoder_dense_2_kernel: backward (step 0), deep.ae:3:35\n");
  ck_assert_ptr_nonnull(note);
  ck_assert_ptr_nonnull(strstr(note, "// FLOPs: "));
  ck_assert_ptr_nonnull(strstr(note, "static void compute_grad_encoder_dense_2_kernel("));
  command_result_free(&r);

  r = run_command("cd '%s' && '%s/aec' examples/deep.ae --dot", AEC_SOURCE_DIR, AEC_BUILD_DIR);
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_nonnull(strstr(r.out, "digraph aec {"));
  ck_assert_ptr_nonnull(strstr(r.out, "label=\"compute_grad_encoder_dense_2_kernel\""));
  ck_assert_ptr_nonnull(strstr(r.out, "dense_grad_kernel\\ngrad_encoder_dense_2_kernel\\n[128, 64]  deep.ae:3:35\\nencoder.dense_2\""));
  ck_assert_ptr_nonnull(strstr(r.out, "style=\"filled,dashed\", fillcolor=\"#f8c291\""));  // backward
  ck_assert_ptr_nonnull(strstr(r.out, "shape=box, style=filled, fillcolor=\"#9ecae1\""));   // forward
  snprintf(path, sizeof path, "%s/deep.dot", dir);
  write_file(path, r.out, strlen(r.out));
  command_result_free(&r);
  // Rendered when Graphviz is installed (AEC_EXTRA_PACKAGES=graphviz scripts/install-deps.sh).
  r = run_command("command -v dot");
  if (r.status == 0) {
    command_result_free(&r);
    r = run_command("dot -Tpng '%s/deep.dot' -o '%s/deep.png'", dir, dir);
    ck_assert_msg(r.status == 0, "dot -Tpng failed: %s", r.err);
  }
  command_result_free(&r);
  free(c);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(dump_ir_shows_every_pass_and_is_stable) {
  CommandResult a = run_command("cd '%s' && '%s/aec' examples/deep.ae --dump-ir", AEC_SOURCE_DIR, AEC_BUILD_DIR);
  CommandResult b = run_command("cd '%s' && '%s/aec' examples/deep.ae --dump-ir", AEC_SOURCE_DIR, AEC_BUILD_DIR);
  ck_assert_int_eq(a.status, 0);
  ck_assert_str_eq(a.out, b.out);
  const char *expected[] = {
      "== after lower_program",
      "== after autodiff",
      "== after plan_inference",
      "== function recon_loss_and_grad (step 0: minimize recon over encoder, decoder)",
      "-- group 14 gemm -> kernel compute_grad_encoder_dense_2_kernel\n",
      "== function eval_losses",
      "== function encode",
      "%7 = dense %4, %5, %6 : [64]xN  name=encoder_dense_2 at=examples/deep.ae:3:35 layer=encoder.dense_2\n",
      "= dense_grad_kernel %4, %43 : [128, 64]  name=grad_encoder_dense_2_kernel at=examples/deep.ae:3:35 "
      "layer=encoder.dense_2 backward step=0\n",
  };
  for (size_t i = 0; i < sizeof expected / sizeof *expected; i++)
    ck_assert_msg(strstr(a.out, expected[i]), "--dump-ir lacks: %s", expected[i]);
  command_result_free(&a);
  command_result_free(&b);
}
END_TEST

// aec --line: every kernel line is pointed at its .ae line, and each restoring
// directive names the .c file at its true line; the file still compiles.
START_TEST(line_directives_point_at_the_ae_file) {
  char *dir = make_temp_dir("line");
  CommandResult r = run_command("cd '%s' && '%s/aec' examples/deep.ae --line -o '%s/deep.c'", AEC_SOURCE_DIR,
                                AEC_BUILD_DIR, dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  char path[4096];
  snprintf(path, sizeof path, "%s/deep.c", dir);
  char *c = read_text(path);
  ck_assert_ptr_nonnull(strstr(c, "// Options: -O2 --dtype f32 --line\n"));
  ck_assert_ptr_nonnull(strstr(c, "#line 3 \"examples/deep.ae\"\nstatic void compute_grad_encoder_dense_2_kernel("));
  int line = 1, restores = 0;
  char restore[4200];
  snprintf(restore, sizeof restore, "\"%s\"", path);
  for (const char *p = c; *p; p = strchr(p, '\n') + 1, line++) {
    if (strncmp(p, "#line ", 6) == 0 && strncmp(strchr(p, '"'), restore, strlen(restore)) == 0) {
      ck_assert_int_eq(atoi(p + 6), line + 1);
      restores++;
    }
    if (!strchr(p, '\n')) break;
  }
  ck_assert_int_ge(restores, 20);
  r = run_command("cc -std=gnu11 -fopenmp -Wall -Wextra -Werror -I'%s/include' -c '%s' -o '%s/deep.o'", AEC_BUILD_DIR,
                  path, dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  free(c);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *inspect_suite(void) {
  Suite *s = suite_create("inspect");
  TCase *tc = tcase_create("inspect");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, language_reference_matches_list_ops);
  tcase_add_test(tc, header_table_leads_to_a_layers_backward_kernel);
  tcase_add_test(tc, dump_ir_shows_every_pass_and_is_stable);
  tcase_add_test(tc, line_directives_point_at_the_ae_file);
  suite_add_tcase(s, tc);
  return s;
}
