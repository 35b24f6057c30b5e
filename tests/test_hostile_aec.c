// test_hostile_aec.c — aec against hostile and careless input: user text
// (file names, .ae lines, -D names) cannot escape the comments and strings
// of the generated C, whatever its bytes; numbers the generated code cannot
// hold are reported at their .ae place; and the compiler's time grows
// linearly with the number of statements.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools.h"
#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

static const char *const model =
    "param code = 4\n"
    "input x: [8]\n"
    "net encoder = dense(code, relu)   # a comment ending in a backslash \\\n"
    "net decoder = dense(8, sigmoid)   # ?\?/\n"
    "# */ and a trigraph ?\?/\n"
    "loss recon = mse(decoder(encoder(x)), x)   # \xe2\x80\xae bidi override, \xff invalid UTF-8\n"
    "train { data \"train.csv\" batch 4 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

// The bytes comment_text writes stand for the input: \xNN escapes decoded
// give it back.
static size_t decode_escapes(const char *text, char *out) {
  size_t n = 0;
  for (const char *p = text; *p; p++) {
    if (p[0] == '\\' && p[1] == 'x') {
      unsigned v;
      ck_assert_msg(sscanf(p + 2, "%2x", &v) == 1, "a backslash not starting an \\xNN escape in '%s'", text);
      out[n++] = (char)v, p += 3;
    } else {
      out[n++] = *p;
    }
  }
  return n;
}

// The property every comment must have: printable ASCII, no ?? (trigraphs),
// no */, no backslash but those of \xNN escapes (so none at a line's end),
// and nothing lost.
static void check_comment_text(const char *in, size_t length) {
  char out[4096], back[4096];
  comment_text(in, length, out, sizeof out);
  for (const char *p = out; *p; p++) {
    ck_assert_msg(*p >= 0x20 && *p <= 0x7e, "byte 0x%02x in a comment", (unsigned char)*p);
    ck_assert_msg(!(p[0] == '?' && p[1] == '?'), "?? in '%s'", out);
    ck_assert_msg(!(p[0] == '*' && p[1] == '/'), "*/ in '%s'", out);
    if (*p == '\\') ck_assert_msg(p[1] == 'x', "a bare backslash in '%s'", out);
  }
  ck_assert_uint_eq(decode_escapes(out, back), length);
  ck_assert(memcmp(back, in, length) == 0);
}

START_TEST(comment_text_escapes_every_byte_and_every_way_out) {
  char all[256];
  for (int c = 0; c < 256; c++) {
    char one[1] = {(char)c};
    check_comment_text(one, 1);
    all[c] = (char)c;
  }
  check_comment_text(all, sizeof all);
  const char *const tricky[] = {"\\", "a\\", "a\\ ", "a\\\t", "\\\n", "\\\r\n", "?\?/", "a?\?/", "??\?/", "*/", "**/",
                                "/*", "\n#include <stdio.h>\n", "\r", "\f\v", "\"", "'", "?\\?", "?\?=", "?\?'"};
  for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++) check_comment_text(tricky[i], strlen(tricky[i]));
  unsigned s = 7;
  for (int round = 0; round < 2000; round++) {  // random strings over the bytes that matter most
    static const char pick[] = "\\?*/\n\r \t\"'x\x80\xff";
    char text[40];
    size_t n = 1 + round % 39;
    for (size_t i = 0; i < n; i++) s = s * 1103515245u + 12345u, text[i] = pick[(s >> 16) % (sizeof pick - 1)];
    check_comment_text(text, n);
  }
  // Cut to size between escapes, never inside one.
  char small[6];
  comment_text("ab\n\n", 4, small, sizeof small);
  ck_assert_str_eq(small, "ab");
}
END_TEST

// Every byte value in a C string literal (and #line directive) comes back
// the same from a compiled program built with trigraphs on.
START_TEST(string_literals_carry_every_byte) {
  char text[300];
  size_t n = 0;
  for (int c = 1; c < 256; c++) text[n++] = (char)c;
  memcpy(text + n, "?\?/?\?=?\?'", 9), n += 9;
  text[n] = '\0';
  char *dir = make_temp_dir("cstring");
  char *path = path_in(dir, "s.c");
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  Emitter e = {.out = f};
  emit_line_directive(&e, 1, text);
  emit_text(&e, "#include <stdio.h>\nstatic const char s[] = ");
  emit_c_string(&e, text);
  emit_text(&e, ";\nint main(void) { fwrite(s, 1, sizeof s - 1, stdout); return 0; }\n");
  ck_assert(!emit_failed(&e));
  fclose(f);
  CommandResult r = run_command("cd %s && cc -std=c11 -trigraphs -Wall -Wextra -Werror s.c -o s && ./s > out", dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  char *out_path = path_in(dir, "out");
  size_t size = 0;
  char *got = read_whole_file(out_path, &size);
  ck_assert_uint_eq(size, n);
  ck_assert(memcmp(got, text, n) == 0);
  free(got), free(out_path), free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Writes the model under `name` in dir, compiles it (plain and with --line)
// and checks the generated C with trigraphs on and every warning an error;
// then builds and runs the program for the name that tried to inject code.
static void compile_under_name(const char *dir, const char *name, bool run) {
  char *path = path_in(dir, name);
  write_file(path, model, strlen(model));
  // The name is passed through the environment: no quoting of its bytes.
  setenv("AE_NAME", path, 1);
  for (int line = 0; line < 2; line++) {
    CommandResult r = run_command(
        "cd %s && %s \"$AE_NAME\" %s -o gen.c && cc -std=gnu11 -trigraphs -fsyntax-only -fopenmp -Wall -Wextra -Werror "
        "-I%s/runtime gen.c",
        dir, AEC, line ? "--line" : "", AEC_SOURCE_DIR);
    ck_assert_msg(r.status == 0, "name of %zu bytes%s: %s", strlen(name), line ? " (--line)" : "", r.err);
    command_result_free(&r);
  }
  if (run) {
    CommandResult r = run_command("cd %s && %s \"$AE_NAME\" -o prog && ./prog summary", dir, AEC);
    ck_assert_msg(r.status == 0, "%s", r.err);
    // (the summary names the model's file, which holds `INJECTED\n` with a backslash; the planted code
    // would write the word and a real line end)
    ck_assert_msg(!strstr(r.err, "INJECTED\n") && !strstr(r.out, "INJECTED\n"), "the file name's code ran:\n%s", r.err);
    command_result_free(&r);
  }
  unlink(path);
  free(path);
}

START_TEST(odd_ae_file_names_stay_in_comments_and_strings) {
  char *dir = make_temp_dir("names");
  compile_under_name(dir,
                     "m\n#include <stdio.h>\n__attribute__((constructor)) static void pwn(void){fputs(\"INJECTED\\n\","
                     "stderr);}\n#define Z \\\n.ae",
                     true);
  char every[256];  // every byte but NUL and '/', in two names (a name holds at most 255)
  size_t n = 0;
  for (int c = 1; c < 128; c++)
    if (c != '/') every[n++] = (char)c;
  every[n] = '\0';
  compile_under_name(dir, every, false);
  n = 0;
  for (int c = 128; c < 256; c++) every[n++] = (char)c;
  every[n] = '\0';
  compile_under_name(dir, every, false);
  const char *const names[] = {"ends in a backslash\\", "ends in ?\?", "?\?( trigraphs ?\?)", "star-slash *", "\"quoted\" 'both'",
                               "-leading-dash.ae", " spaces .ae", "tab\there.ae", "cr\r.ae"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) compile_under_name(dir, names[i], false);
  char *sub = path_in(dir, "d*?\?");  // a directory that puts */ and ?? in the path
  ck_assert_int_eq(mkdir(sub, 0755), 0);
  compile_under_name(dir, "d*?\?/m.ae", false);
  free(sub);
  char longest[256];
  memset(longest, 'a', 252);
  memcpy(longest + 252, ".ae", 4);  // 255 bytes
  compile_under_name(dir, longest, false);
  remove_tree(dir);
  free(dir);
}
END_TEST

// -D names reach a comment of the generated C: only .ae names are taken,
// and only finite numbers.
START_TEST(define_names_and_values_are_checked) {
  char *dir = make_temp_dir("defines");
  char *path = path_in(dir, "m.ae");
  write_file(path, model, strlen(model));
  const char *const bad[] = {"-D 'code\n#error injected=4'", "-D 'code\\=4'", "-D code=inf", "-D code=nan",
                             "-D code=1e999", "-D 9code=4"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    CommandResult r = run_command("cd %s && %s m.ae %s -o gen.c", dir, AEC, bad[i]);
    ck_assert_msg(r.status == 2, "%s: status %d", bad[i], r.status);
    ck_assert_msg(strstr(r.err, "expected NAME=NUMBER") != NULL, "%s: %s", bad[i], r.err);
    command_result_free(&r);
  }
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Numbers the generated C cannot hold: reported at their place, never
// written as `inf` or `nan` into the C.
START_TEST(non_finite_numbers_are_reported_at_their_place) {
  static const struct {
    const char *expr, *dtype, *place;
  } cases[] = {
      {"mse(d(e(x)), x) * (1e308 * 10)", "f32", "m.ae:5:35:"},
      {"mse(d(e(x)), x) * (1e308*1e308 - 1e308*1e308)", "f32", "m.ae:5:34:"},
      {"mse(clip(d(e(x)), 0, 1e308*10), x)", "f64", "m.ae:5:36:"},
      {"mse(d(e(x)), x) * 1e39", "f32", "m.ae:5:26:"},  // beyond float, fine in double
      {"mse(d(e(x)), x) * (1e200 / 1e-200)", "f64", "m.ae:5:35:"},
  };
  char *dir = make_temp_dir("nonfinite");
  char *path = path_in(dir, "m.ae");
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char text[512];
    snprintf(text, sizeof text,
             "param code = 4\ninput x: [8]\nnet e = dense(code, relu)\nnet d = dense(8, sigmoid)\nloss r = %s\n",
             cases[i].expr);
    write_file(path, text, strlen(text));
    CommandResult r = run_command("cd %s && rm -f gen.c && %s m.ae --dtype %s -o gen.c", dir, AEC, cases[i].dtype);
    ck_assert_msg(r.status == 1, "%s: status %d", cases[i].expr, r.status);
    ck_assert_msg(strstr(r.err, cases[i].place) != NULL, "%s: expected a report at %s:\n%s", cases[i].expr,
                  cases[i].place, r.err);
    ck_assert_msg(strstr(r.err, "undeclared") == NULL, "%s", r.err);
    command_result_free(&r);
    char *gen = path_in(dir, "gen.c");
    ck_assert_msg(!path_exists(gen), "%s: gen.c written", cases[i].expr);
    free(gen);
  }
  // The same `param big = 1e308 * 10` is reported; 1e39 is fine under f64.
  const char *big = "param big = 1e308 * 10\ninput x: [8]\nnet d = dense(8)\nloss r = mse(d(x), x)\n";
  write_file(path, big, strlen(big));
  CommandResult r = run_command("cd %s && %s m.ae -o gen.c", dir, AEC);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "m.ae:1:19:") != NULL, "%s", r.err);
  command_result_free(&r);
  const char *wide = "input x: [8]\nnet d = dense(8)\nloss r = mse(d(x), x) * 1e39\n";
  write_file(path, wide, strlen(wide));
  r = run_command("cd %s && %s m.ae --dtype f64 -o gen.c && cc -std=gnu11 -fsyntax-only -fopenmp -Wall -Wextra -Werror -I%s/runtime gen.c",
                  dir, AEC, AEC_SOURCE_DIR);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// A model of n statements of every kind: params, nets, losses and a chain
// of values (each the relu of the last).
static void write_statements(const char *path, int n) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  int quarter = n / 4;
  fprintf(f, "input x: [8]\nnet d = dense(8)\nh0 = d(x)\n");
  for (int i = 1; i <= quarter; i++) fprintf(f, "param p%d = %d\n", i, i);
  for (int i = 1; i <= quarter; i++) fprintf(f, "net n%d = dense(p%d, relu)\n", i, i % 16 + 1);
  for (int i = 1; i <= quarter; i++) fprintf(f, "h%d = relu(h%d)\n", i, i - 1);
  for (int i = 1; i <= quarter; i++) fprintf(f, "loss r%d = mse(h%d, x) * %d\n", i, i, i);
  fprintf(f, "train { data \"train.csv\" batch 4 epochs 1\n step minimize r1 over d with adam(lr=0.01) }\n");
  fclose(f);
}

// CPU seconds aec takes on a file (its children's user + system time).
static double aec_seconds(const char *dir, const char *name) {
  struct rusage before, after;
  getrusage(RUSAGE_CHILDREN, &before);
  CommandResult r = run_command("cd %s && %s %s -o out.c", dir, AEC, name);
  getrusage(RUSAGE_CHILDREN, &after);
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  return (double)(after.ru_utime.tv_sec - before.ru_utime.tv_sec + after.ru_stime.tv_sec - before.ru_stime.tv_sec) +
         (double)(after.ru_utime.tv_usec - before.ru_utime.tv_usec + after.ru_stime.tv_usec - before.ru_stime.tv_usec) / 1e6;
}

// Ten times the statements take about ten times as long, not a hundred:
// the bound (30x, plus a second for start-up noise) lets a loaded machine
// pass and fails any quadratic pass (it was 480x for params alone).
START_TEST(compile_time_grows_linearly_with_statements) {
  char *dir = make_temp_dir("scaling");
  char *small = path_in(dir, "small.ae"), *big = path_in(dir, "big.ae");
  write_statements(small, 10000);
  write_statements(big, 100000);
  double t_small = aec_seconds(dir, "small.ae"), t_big = aec_seconds(dir, "big.ae");
  ck_assert_msg(t_big < 30 * t_small + 1.0, "10k statements: %.3f s, 100k: %.3f s (ratio %.1f)", t_small, t_big,
                t_big / t_small);
  free(small), free(big);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *hostile_aec_suite(void) {
  Suite *s = suite_create("hostile_aec");
  TCase *tc = tcase_create("escaping");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, comment_text_escapes_every_byte_and_every_way_out);
  tcase_add_test(tc, string_literals_carry_every_byte);
  tcase_add_test(tc, odd_ae_file_names_stay_in_comments_and_strings);
  tcase_add_test(tc, define_names_and_values_are_checked);
  suite_add_tcase(s, tc);
  tc = tcase_create("numbers_and_scale");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, non_finite_numbers_are_reported_at_their_place);
  tcase_add_test(tc, compile_time_grows_linearly_with_statements);
  suite_add_tcase(s, tc);
  return s;
}
