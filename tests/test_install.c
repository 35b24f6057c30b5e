// test_install.c — `make install DESTDIR=D PREFIX=/usr` writes aec, the
// runtime's libraries and headers, aert.pc, the two man pages and the
// examples, and nothing else; pkg-config finds the runtime through aert.pc
// and its flags build a generated program; both pages render without a
// warning and name every option and command the programs' --help lists; the
// installed aec, moved away from the build folder, finds its runtime through
// the install layout and builds a program that trains; `make uninstall`
// leaves no file behind.
#define _GNU_SOURCE
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// make in the source folder, on this build folder (build-asan under make
// check-asan), as a user would run it: not as part of the make running the tests.
static CommandResult run_make(const char *target, const char *destdir) {
  return run_command("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C %s BUILD=%s %s "
                     "DESTDIR=%s PREFIX=/usr",
                     AEC_SOURCE_DIR, AEC_BUILD_DIR, target, destdir);
}

// How many lines `text` has.
static int count_lines(const char *text) {
  int n = 0;
  for (const char *c = text; *c; c++) n += *c == '\n';
  return n;
}

// Each installed file, as a line "./usr/..." of `find`'s sorted output.
static char *installed_files(const char *root) {
  CommandResult r = run_command("cd %s && find . -type f | LC_ALL=C sort", root);
  ck_assert_msg(r.status == 0, "%s", r.err);
  free(r.err);
  return r.out;
}

static bool has_line(const char *lines, const char *line) {
  size_t n = strlen(line);
  for (const char *at = lines; (at = strstr(at, line)); at++)
    if ((at == lines || at[-1] == '\n') && at[n] == '\n') return true;
  return false;
}

// The runtime's files (those in the build folder: the MPI libraries where
// this machine built them), aec and the pages; then the examples, each the
// same as its source, and every examples/*.ae among them.
static void check_file_list(const char *dest, const char *files) {
  const char *always[] = {"bin/aec", "lib/libaert.a", "lib/libaert_f64.a", "lib/pkgconfig/aert.pc",
                          "include/aert/aert.h", "include/aert/aert_kernels.h", "include/aert/aert_optimizers.def",
                          "share/man/man1/aec.1", "share/man/man1/aec-model.1"};
  int expected = 0;
  char line[4096];
  for (size_t i = 0; i < sizeof always / sizeof *always; i++, expected++) {
    snprintf(line, sizeof line, "./usr/%s", always[i]);
    ck_assert_msg(has_line(files, line), "make install did not write %s; it wrote:\n%s", line, files);
  }
  const char *mpi[] = {"libaert_mpi.a", "libaert_mpi_f64.a"};
  for (int i = 0; i < 2; i++) {
    snprintf(line, sizeof line, "%s/%s", AEC_BUILD_DIR, mpi[i]);
    if (!path_exists(line)) continue;
    snprintf(line, sizeof line, "./usr/lib/%s", mpi[i]);
    ck_assert_msg(has_line(files, line), "%s was built but not installed:\n%s", mpi[i], files);
    expected++;
  }
  int examples = 0;
  for (const char *at = files; (at = strstr(at, "./usr/share/aec/examples/")); at++, examples++) {
    const char *name = at + strlen("./usr/share/aec/examples/");
    int length = (int)strcspn(name, "\n");
    CommandResult r = run_command("cmp %s/usr/share/aec/examples/%.*s %s/examples/%.*s", dest, length, name,
                                  AEC_SOURCE_DIR, length, name);
    ck_assert_msg(r.status == 0, "installed example %.*s differs from the source's: %s%s", length, name, r.out, r.err);
    command_result_free(&r);
  }
  glob_t g;
  ck_assert_int_eq(glob(AEC_SOURCE_DIR "/examples/*.ae", 0, NULL, &g), 0);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    snprintf(line, sizeof line, "./usr/share/aec/examples/%s", strrchr(g.gl_pathv[i], '/') + 1);
    ck_assert_msg(has_line(files, line), "make install left out %s", line);
  }
  ck_assert_int_ge(examples, (int)g.gl_pathc);
  globfree(&g);
  ck_assert_msg(count_lines(files) == expected + examples, "make install wrote files it should not have:\n%s", files);
}

// pkg-config as a packager's cross build would call it (the sysroot before
// every path), and its flags building MODEL.c from the installed aec,
// warnings as errors, with nothing from the build folder.
static void check_pkg_config(const char *dest, const char *work) {
  CommandResult r = run_command("PKG_CONFIG_PATH=%s/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=%s pkg-config --cflags "
                                "--libs aert",
                                dest, dest);
  ck_assert_msg(r.status == 0, "pkg-config: %s", r.err);
  char want[4096];
  const char *flags[] = {"-I%s/usr/include/aert", "-L%s/usr/lib", "-laert", "-fopenmp", "-lcairo", "-lz", "-lm"};
  for (size_t i = 0; i < sizeof flags / sizeof *flags; i++) {
    snprintf(want, sizeof want, flags[i], dest);
    ck_assert_msg(strstr(r.out, want), "pkg-config --cflags --libs aert gave '%s', without %s", r.out, want);
  }
  command_result_free(&r);
  r = run_command("cd %s && export PKG_CONFIG_PATH=%s/usr/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=%s && "
                  "env -u AEC_RUNTIME_DIR %s/usr/bin/aec %s/usr/share/aec/examples/simple.ae -o by_hand.c && "
                  "cc ${AEC_CFLAGS:--O0} -Wall -Wextra -Werror by_hand.c $(pkg-config --cflags --libs aert) -o by_hand && "
                  "./by_hand summary",
                  work, dest, dest, dest, dest);
  ck_assert_msg(r.status == 0, "building a program with pkg-config's flags failed: %s", r.err);
  ck_assert_msg(figure(r.out, "params") > 0, "by_hand summary counted no parameters: %s", r.out);
  command_result_free(&r);
}

// Renders a page with man (-l: this file, not the one the system has), the
// way `man` shows it; fails on any warning; returns the text.
static char *render_page(const char *page) {
  CommandResult r = run_command("LC_ALL=C MANWIDTH=100 man --warnings -l %s", page);
  ck_assert_msg(r.status == 0 && r.err[0] == '\0', "man -l %s: status %d, warnings:\n%s", page, r.status, r.err);
  free(r.err);
  return r.out;
}

// Every first word of the option lines ("  -x ...") of `help` is in `page`.
// (at least `least` of them).
static void check_options_shown(const char *help, const char *page, const char *what, int least) {
  int shown = 0;
  for (const char *at = help; (at = strstr(at, "\n  -")); at++, shown++) {
    char flag[64];
    ck_assert_int_eq(sscanf(at + 3, "%63[^ ,\n]", flag), 1);
    ck_assert_msg(strstr(page, flag), "%s's page does not show %s from its --help", what, flag);
  }
  ck_assert_int_ge(shown, least);
}

static void check_pages(const char *dest, const char *work) {
  char path[4096];
  snprintf(path, sizeof path, "%s/usr/share/man/man1/aec.1", dest);
  char *aec_page = render_page(path);
  ck_assert_msg(strstr(aec_page, "NAME") && strstr(aec_page, "aec - compile"), "aec(1) renders as:\n%s", aec_page);
  CommandResult help = run_command("%s/usr/bin/aec --help", dest);
  ck_assert_int_eq(help.status, 0);
  check_options_shown(help.out, aec_page, "aec", 10);
  command_result_free(&help);
  free(aec_page);

  snprintf(path, sizeof path, "%s/usr/share/man/man1/aec-model.1", dest);
  char *model_page = render_page(path);
  help = run_command("cd %s && ./by_hand --help", work);
  ck_assert_int_eq(help.status, 0);
  const char *list = strstr(help.out, "commands:\n");
  ck_assert_ptr_nonnull(list);
  int commands = 0;
  char name[64], heading[80];
  for (const char *at = list; (at = strstr(at, "\n  ")) && sscanf(at + 3, "%63s", name) == 1; at++, commands++) {
    snprintf(heading, sizeof heading, "\n   %s\n", name);  // .SS NAME
    ck_assert_msg(strstr(model_page, heading), "aec-model(1) has no section for the command %s", name);
    CommandResult options = run_command("cd %s && ./by_hand %s --help", work, name);
    ck_assert_int_eq(options.status, 0);
    check_options_shown(options.out, model_page, name, 1);
    command_result_free(&options);
  }
  ck_assert_int_gt(commands, 10);
  command_result_free(&help);
  free(model_page);
}

// The installed tree moved elsewhere: aec there knows no build folder, and
// AEC_RUNTIME_DIR is unset.
static void check_moved_aec_trains(const char *dest, const char *work) {
  CommandResult r = run_command("mkdir -p %s/elsewhere && cp -a %s/usr %s/elsewhere/ && cd %s && "
                                "env -u AEC_RUNTIME_DIR %s/elsewhere/usr/bin/aec -v "
                                "%s/elsewhere/usr/share/aec/examples/simple.ae -o simple",
                                work, dest, work, work, work, work);
  ck_assert_msg(r.status == 0, "the moved aec failed: %s", r.err);
  char want[4096];
  snprintf(want, sizeof want, "-I%s/elsewhere/usr/include/aert ", work);
  ck_assert_msg(strstr(r.err, want), "the moved aec did not use its own headers: %s", r.err);
  snprintf(want, sizeof want, " %s/elsewhere/usr/lib/libaert.a ", work);
  ck_assert_msg(strstr(r.err, want), "the moved aec did not link its own libaert.a: %s", r.err);
  ck_assert_msg(!strstr(r.err, AEC_BUILD_DIR), "the moved aec used the build folder: %s", r.err);
  command_result_free(&r);
  r = run_command("cd %s && ./simple train --epochs 1 --batches 2 --test none --checkpoint s.safetensors", work);
  ck_assert_msg(r.status == 0, "training with the moved aec's program failed: %s", r.err);
  ck_assert_msg(isfinite(figure(r.out, "train.recon")), "no train.recon figure: %s", r.out);
  command_result_free(&r);
  snprintf(want, sizeof want, "%s/s.safetensors", work);
  ck_assert(path_exists(want));
}

START_TEST(install_then_uninstall) {
  char *dest = make_temp_dir("install-root"), *work = make_temp_dir("install-work");
  CommandResult r = run_make("install", dest);
  ck_assert_msg(r.status == 0, "make install failed: %s", r.err);
  command_result_free(&r);
  char *files = installed_files(dest);
  check_file_list(dest, files);
  free(files);
  check_pkg_config(dest, work);
  check_pages(dest, work);
  check_moved_aec_trains(dest, work);

  r = run_make("uninstall", dest);
  ck_assert_msg(r.status == 0, "make uninstall failed: %s", r.err);
  ck_assert_msg(!strstr(r.out, "uninstall: kept /"), "make uninstall kept a folder: %s", r.out);
  command_result_free(&r);
  files = installed_files(dest);
  ck_assert_msg(files[0] == '\0', "make uninstall left:\n%s", files);
  free(files);
  char path[4096];
  snprintf(path, sizeof path, "%s/usr/include/aert", dest);
  ck_assert_msg(!path_exists(path), "make uninstall left the folder %s", path);
  snprintf(path, sizeof path, "%s/usr/share/aec", dest);
  ck_assert_msg(!path_exists(path), "make uninstall left the folder %s", path);
  remove_tree(dest), remove_tree(work);
  free(dest), free(work);
}
END_TEST

Suite *install_suite(void) {
  Suite *s = suite_create("install");
  TCase *tc = tcase_create("install");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, install_then_uninstall);
  suite_add_tcase(s, tc);
  return s;
}
