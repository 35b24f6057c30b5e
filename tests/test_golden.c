// test_golden.c — the generated C of each tests/golden/NAME.ae must equal the
// reviewed tests/golden/NAME.c line for line, so every change to the emitter's
// output shows up in review. After an intended change: `make golden`, then
// review `git diff tests/golden` and commit the new files with the change.
#define _GNU_SOURCE
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

static char *read_whole(const char *path) {
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

// The first line where `want` and `got` differ (1-based), or 0 when equal;
// the two lines are copied to want_line and got_line.
static int first_difference(const char *want, const char *got, char *want_line, char *got_line, size_t size) {
  int line = 1;
  while (*want || *got) {
    const char *we = strchr(want, '\n'), *ge = strchr(got, '\n');
    size_t wn = we ? (size_t)(we - want) : strlen(want), gn = ge ? (size_t)(ge - got) : strlen(got);
    if (wn != gn || memcmp(want, got, wn) != 0 || !we != !ge) {
      snprintf(want_line, size, "%.*s", (int)wn, want);
      snprintf(got_line, size, "%.*s", (int)gn, got);
      if (!*want) snprintf(want_line, size, "(end of file)");
      if (!*got) snprintf(got_line, size, "(end of file)");
      return line;
    }
    want += wn + (we ? 1 : 0);
    got += gn + (ge ? 1 : 0);
    line++;
  }
  return 0;
}

static void check_golden(const char *name) {
  char *dir = make_temp_dir("golden");
  CommandResult r = run_command("cd '%s/tests/golden' && '%s/aec' '%s.ae' -o '%s/%s.c'", AEC_SOURCE_DIR, AEC_BUILD_DIR,
                                name, dir, name);
  ck_assert_msg(r.status == 0, "aec %s.ae failed:\n%s", name, r.err);
  char golden_path[4096], out_path[4096];
  snprintf(golden_path, sizeof golden_path, "%s/tests/golden/%s.c", AEC_SOURCE_DIR, name);
  snprintf(out_path, sizeof out_path, "%s/%s.c", dir, name);
  char *want = read_whole(golden_path), *got = read_whole(out_path);
  ck_assert_msg(want != NULL, "tests/golden/%s.c is missing: run `make golden`", name);
  ck_assert(got != NULL);
  char want_line[512], got_line[512];
  int line = first_difference(want, got, want_line, got_line, sizeof want_line);
  ck_assert_msg(line == 0,
                "the generated C of tests/golden/%s.ae differs from tests/golden/%s.c at line %d:\n"
                "  reviewed: %s\n  now:      %s\n"
                "If the emitter's change is intended, run `make golden` and review `git diff tests/golden`.",
                name, name, line, want_line, got_line);
  free(want), free(got);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}

// Every tests/golden/*.ae has its reviewed .c, and matches it.
START_TEST(generated_c_matches_the_reviewed_files) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/golden", AEC_SOURCE_DIR);
  DIR *d = opendir(path);
  ck_assert_msg(d != NULL, "no tests/golden directory");
  int models = 0;
  for (struct dirent *entry; (entry = readdir(d));) {
    size_t n = strlen(entry->d_name);
    if (n < 4 || strcmp(entry->d_name + n - 3, ".ae") != 0) continue;
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n - 3), entry->d_name);
    check_golden(name);
    models++;
  }
  closedir(d);
  ck_assert_int_ge(models, 2);
}
END_TEST

// The comparison catches a change to any one line, even one character.
START_TEST(one_changed_line_is_caught) {
  char path[4096];
  snprintf(path, sizeof path, "%s/tests/golden/dense2.c", AEC_SOURCE_DIR);
  char *want = read_whole(path);
  ck_assert(want != NULL);
  char *edited = strdup(want);
  char *kernel = strstr(edited, "static void compute_");
  ck_assert(kernel != NULL);
  char *body = strchr(kernel, '\n') + 1;  // the line after the kernel's signature
  body[2] = body[2] == 'x' ? 'y' : 'x';
  int expected = 1;
  for (const char *c = edited; c < body; c++) expected += *c == '\n';
  char a[512], b[512];
  ck_assert_int_eq(first_difference(want, want, a, b, sizeof a), 0);
  ck_assert_int_eq(first_difference(want, edited, a, b, sizeof a), expected);
  // A dropped final line counts too.
  size_t n = strlen(want);
  want[n - 1] = '\0';
  char *cut = strrchr(want, '\n');
  ck_assert(cut != NULL);
  want[n - 1] = '\n';
  char *shorter = strndup(want, (size_t)(cut - want) + 1);
  ck_assert_int_gt(first_difference(want, shorter, a, b, sizeof a), 0);
  free(shorter), free(edited), free(want);
}
END_TEST

// The float exp_nonpositive of runtime/aert_kernels.h (written out for simd
// loops in place of libmvec's expf) against the C library's exp in double:
// within 1.2e-7 relative (an ulp at 1) on every 13th float of [-87, 0],
// exactly 1 at 0, and e^-87 below -87. The harness includes the header as a
// generated program does, which also compiles it warning-free on its own.
START_TEST(float_exp_nonpositive_is_within_an_ulp) {
  char *dir = make_temp_dir("exp");
  static const char harness[] =
      "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n"
      "#include \"aert_kernels.h\"\n"
      "int main(void) {\n"
      "  double worst = 0;\n"
      "  for (uint32_t bits = 0x80000000u; bits <= 0xc2ae0000u; bits += 13) {  // -0 to -87\n"
      "    float x;\n"
      "    memcpy(&x, &bits, sizeof x);\n"
      "    double want = exp((double)x), error = fabs(exp_nonpositive(x) - want) / want;\n"
      "    if (error > worst) worst = error;\n"
      "  }\n"
      "  printf(\"worst %.3g at0 %.9g below %.9g\\n\", worst, exp_nonpositive(0), exp_nonpositive(-100));\n"
      "  double below = fabs(exp_nonpositive(-100) - exp(-87.0)) / exp(-87.0);\n"
      "  return worst < 1.2e-7 && exp_nonpositive(0) == 1 && below < 1.2e-7 ? 0 : 1;\n"
      "}\n";
  char file[600];
  snprintf(file, sizeof file, "%s/exp.c", dir);
  write_file(file, harness, sizeof harness - 1);
  must_succeed_in(dir, "cc -O2 -std=gnu11 -fopenmp -Wall -Wextra -Werror -I'" AEC_SOURCE_DIR "/runtime' exp.c -o exp -lm");
  CommandResult r = run_in(dir, "./exp");
  ck_assert_msg(r.status == 0, "exp_nonpositive strays from exp: %s", r.out);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *golden_suite(void) {
  Suite *s = suite_create("golden");
  TCase *tc = tcase_create("golden");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, generated_c_matches_the_reviewed_files);
  tcase_add_test(tc, one_changed_line_is_caught);
  tcase_add_test(tc, float_exp_nonpositive_is_within_an_ulp);
  suite_add_tcase(s, tc);
  return s;
}
