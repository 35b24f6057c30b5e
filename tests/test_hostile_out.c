// test_hostile_out.c — hostile places to write (issue 24, round two): every
// file a program or aec writes under a user's name (checkpoint, encode and
// reconstruct outputs, --log, PNG pictures, aec -o) never follows a link
// planted at a temporary's name, never replaces a FIFO, device, directory or
// dangling link, writes through a link to a regular file, takes odd names
// (newlines, quotes, every byte, 255 bytes), fails before any work when its
// directory cannot be written, and leaves no partial file; SIGINT and SIGTERM
// stop training with a checkpoint that the message names.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests.h"

static const char *const model_text =
    "input x: [16]\n"
    "net encoder = dense(8, relu)\n"
    "net decoder = dense(16, sigmoid)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 16 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

static char *dir;  // m.ae, train.csv (400 samples), ./m and k.safetensors (one epoch)

static void setup(void) {
  dir = make_program_dir("hostout", model_text, 400, 16);
  must_succeed_in(dir, "./m train --checkpoint k.safetensors");
}

static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

// --------------------------------------------------------------- helpers
// Runs argv (argv[0] a path) in `dir` without a shell, so names reach it as
// they are; `out` and `err` capture its output. The exit status, or 1000 +
// the signal that ended it.
typedef struct run_result {
  int status;
  char *out, *err;
} run_result;

static pid_t spawn(const char *const argv[], const char *capture) {
  fflush(stdout), fflush(stderr);
  pid_t pid = fork();
  ck_assert_int_ge(pid, 0);
  if (pid == 0) {
    char path[4096];
    snprintf(path, sizeof path, "%s/out", capture);
    int out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    snprintf(path, sizeof path, "%s/err", capture);
    int err = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int null = open("/dev/null", O_RDONLY);
    if (out < 0 || err < 0 || null < 0 || chdir(dir) != 0) _exit(120);
    dup2(null, 0), dup2(out, 1), dup2(err, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

static run_result finish(pid_t pid, char *capture) {
  int raw = 0;
  ck_assert_int_eq(waitpid(pid, &raw, 0), pid);
  run_result r = {WIFEXITED(raw) ? WEXITSTATUS(raw) : 1000 + WTERMSIG(raw), NULL, NULL};
  char *path = path_in(capture, "out");
  r.out = read_whole_file(path, NULL);
  free(path);
  path = path_in(capture, "err");
  r.err = read_whole_file(path, NULL);
  free(path);
  remove_tree(capture);
  free(capture);
  return r;
}

static run_result run(const char *const argv[]) {
  char *capture = make_temp_dir("hostcap");
  return finish(spawn(argv, capture), capture);
}

static void result_free(run_result *r) { free(r->out), free(r->err); }

static char *in_dir(const char *name) { return path_in(dir, name); }

static mode_t kind(const char *name) {
  char *path = in_dir(name);
  struct stat st;
  mode_t mode = lstat(path, &st) == 0 ? st.st_mode & S_IFMT : 0;
  free(path);
  return mode;
}

static void put(const char *name, const char *text) {
  char *path = in_dir(name);
  write_file(path, text, strlen(text));
  free(path);
}

static char *get(const char *name) {
  char *path = in_dir(name);
  char *text = read_whole_file(path, NULL);
  free(path);
  return text;
}

// No temporary (".NAME.aec-tmp-...", or the old "NAME.tmp.PID") is left in dir.
static void assert_no_temporary(const char *when) {
  DIR *d = opendir(dir);
  ck_assert_ptr_nonnull(d);
  for (struct dirent *e; (e = readdir(d)) != NULL;)
    ck_assert_msg(!strstr(e->d_name, ".aec-tmp-") && !strstr(e->d_name, ".tmp."), "%s: %s was left behind", when,
                  e->d_name);
  closedir(d);
}

static void link_to(const char *target, const char *name) {
  char *path = in_dir(name);
  ck_assert_int_eq(symlink(target, path), 0);
  free(path);
}

static void make_fifo(const char *name) {
  char *path = in_dir(name);
  ck_assert_int_eq(mkfifo(path, 0644), 0);
  free(path);
}

// A character device like /dev/null (1, 3), made in the test's directory:
// a program that replaces it does no harm (the tests run as root).
static void make_null_device(const char *name) {
  char *path = in_dir(name);
  ck_assert_msg(mknod(path, S_IFCHR | 0666, makedev(1, 3)) == 0, "mknod %s: %m", path);
  free(path);
}

// ------------------------------------------- symbolic links, special files
// One command that writes `name`; fails the test unless it exits `expect`
// (0 or 1) with a message naming the file when it fails.
typedef enum writer { CHECKPOINT, ENCODE, RECONSTRUCT, LOG, AEC } writer;
static const char *const writer_names[] = {"train --checkpoint", "encode -o", "reconstruct -o", "train --log", "aec -o"};

static void write_with(writer w, const char *name, int expect) {
  char aec[4096];
  snprintf(aec, sizeof aec, "%s/aec", AEC_BUILD_DIR);
  const char *const argvs[][12] = {
      {"./m", "train", "--checkpoint", name, NULL},
      {"./m", "encode", "--checkpoint", "k.safetensors", "--data", "train.csv", "-o", name, NULL},
      {"./m", "reconstruct", "--checkpoint", "k.safetensors", "--data", "train.csv", "-o", name, NULL},
      {"./m", "train", "--checkpoint", "l.safetensors", "--log", name, NULL},
      {aec, "m.ae", "-o", name, NULL},
  };
  run_result r = run(argvs[w]);
  ck_assert_msg(r.status == expect, "%s %s: exit %d, expected %d\n%s", writer_names[w], name, r.status, expect, r.err);
  if (expect != 0) ck_assert_msg(strstr(r.err, name), "%s %s: the message does not name it:\n%s", writer_names[w], name, r.err);
  result_free(&r);
}

// Checks the file `name` holds what writer w writes.
static void assert_written(writer w, const char *name) {
  char *path = in_dir(name);
  int width, height;
  if (w == RECONSTRUCT) ck_assert_msg(read_png_size(path, &width, &height), "%s is no PNG", path);
  char *text = read_whole_file(path, NULL);
  if (w == ENCODE) ck_assert_msg(strncmp(text, "z0,", 3) == 0, "%s: %.40s", path, text);
  if (w == LOG) ck_assert_msg(strncmp(text, "epoch,", 6) == 0, "%s: %.40s", path, text);
  if (w == AEC) ck_assert_msg(strncmp(text, "\177ELF", 4) == 0 || strstr(text, "#include"), "%s is no program", path);
  free(text);
  if (w == CHECKPOINT) {
    const char *const eval[] = {"./m", "eval", "--checkpoint", name, "--data", "train.csv", NULL};
    run_result r = run(eval);
    ck_assert_msg(r.status == 0, "%s does not load: %s", path, r.err);
    result_free(&r);
  }
  free(path);
}

START_TEST(outputs_never_replace_links_or_special_files) {
  for (writer w = CHECKPOINT; w <= AEC; w++) {
    // A dangling link: refused; nothing is made where it points.
    link_to("nowhere", "dangling");
    write_with(w, "dangling", 1);
    ck_assert_int_eq(kind("dangling"), S_IFLNK);
    ck_assert_int_eq(kind("nowhere"), 0);
    // A link to a regular file: that file is written, the link stays.
    put("real", "old\n");
    link_to("real", "link");
    write_with(w, "link", 0);
    ck_assert_int_eq(kind("link"), S_IFLNK);
    ck_assert_int_eq(kind("real"), S_IFREG);
    assert_written(w, "real");
    // A FIFO, a character device and a directory: refused, left as they are.
    make_fifo("fifo");
    write_with(w, "fifo", 1);
    ck_assert_int_eq(kind("fifo"), S_IFIFO);
    make_null_device("null");
    write_with(w, "null", 1);
    ck_assert_int_eq(kind("null"), S_IFCHR);
    char *sub = in_dir("sub");
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    write_with(w, "sub", 1);
    ck_assert_int_eq(kind("sub"), S_IFDIR);
    // /dev/null itself: refused, and still the device.
    write_with(w, "/dev/null", 1);
    struct stat st;
    ck_assert(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    assert_no_temporary(writer_names[w]);
    rmdir(sub), free(sub);
    const char *made[] = {"dangling", "link", "real", "fifo", "null"};
    for (int i = 0; i < 5; i++) {
      char *path = in_dir(made[i]);
      unlink(path), free(path);
    }
  }
}
END_TEST

// The old temporaries were NAME.tmp.PID: a link planted there (the inner
// shell's $$ is the pid the program keeps through exec) must not be followed.
START_TEST(planted_link_at_old_temporary_name_is_not_followed) {
  put("victim", "precious\n");
  const char *commands[] = {
      "sh -c 'ln -s victim p.safetensors.tmp.$$ && exec ./m train --checkpoint p.safetensors'",
      "sh -c 'ln -s victim codes.csv.tmp.$$ && exec ./m encode --checkpoint k.safetensors --data train.csv -o codes.csv'",
      "sh -c 'ln -s victim out.c.tmp.$$ && exec %s/aec m.ae -o out.c'",
      "sh -c 'ln -s victim prog.aec-$$.c && exec %s/aec m.ae -o prog'",
  };
  for (int i = 0; i < 4; i++) {
    char command[4096];
    snprintf(command, sizeof command, commands[i], AEC_BUILD_DIR);
    CommandResult r = run_in(dir, command);
    ck_assert_msg(r.status == 0, "%s: %s", command, r.err);
    command_result_free(&r);
    char *text = get("victim");
    ck_assert_msg(strcmp(text, "precious\n") == 0, "%s wrote through the planted link", command);
    free(text);
  }
  assert_written(CHECKPOINT, "p.safetensors");
  assert_written(ENCODE, "codes.csv");
  assert_written(AEC, "out.c");
  assert_written(AEC, "prog");
}
END_TEST

// ------------------------------------------------------------ odd names
START_TEST(odd_output_names_are_written_where_asked) {
  char every[256], longest[256];
  int n = 0;
  for (int b = 1; b < 256; b++)
    if (b != '/') every[n++] = (char)b;
  every[n] = 0;  // 254 bytes: 1 to 255 but '/'
  memset(longest, 'n', 255);
  longest[255] = 0;
  const char *names[] = {"new\nline", "back\\slash", "quo'te\"s", "sp a ce", "-dash", every, longest};
  for (int i = 0; i < 7; i++) {
    const char *name = names[i];
    write_with(CHECKPOINT, name, 0);
    assert_written(CHECKPOINT, name);
    const char *const encode[] = {"./m", "encode", "--checkpoint", name, "--data", "train.csv", "-o", name, NULL};
    run_result r = run(encode);  // the checkpoint replaced by the codes under the same name
    ck_assert_msg(r.status == 0 && strstr(r.err, name), "encode -o name %d: %d %s", i, r.status, r.err);
    result_free(&r);
    assert_written(ENCODE, name);
    write_with(RECONSTRUCT, name, 0);
    assert_written(RECONSTRUCT, name);
    char *path = in_dir(name);
    unlink(path), free(path);
    // A failure names the file too.
    char below[600];
    snprintf(below, sizeof below, "train.csv/%s", name);
    write_with(ENCODE, below, 1);
  }
  assert_no_temporary("odd names");
}
END_TEST

// ----------------------------------------------------- unwritable places
// A path under a regular file fails with ENOTDIR even for root: the program
// says so before any work (no epoch trained, no code computed).
START_TEST(unwritable_directory_fails_before_any_work) {
  const char *const trains[][9] = {
      {"./m", "train", "--epochs", "50", "--checkpoint", "train.csv/sub/k.safetensors", NULL},
      {"./m", "train", "--epochs", "50", "--checkpoint", "u.safetensors", "--log", "train.csv/sub/l.csv", NULL},
      {"./m", "train", "--epochs", "50", "--checkpoint", "u.safetensors", "--trace", "train.csv/t.jsonl", NULL},
  };
  for (int i = 0; i < 3; i++) {
    run_result r = run(trains[i]);
    ck_assert_msg(r.status == 1 && strstr(r.err, "train.csv/") && strstr(r.err, "Not a directory"), "%d: %d %s", i,
                  r.status, r.err);
    ck_assert_msg(!strstr(r.out, "epoch") && !strstr(r.err, "training on"), "trained before failing:\n%s%s", r.out, r.err);
    result_free(&r);
  }
  const char *const others[][11] = {
      {"./m", "encode", "--checkpoint", "k.safetensors", "--data", "train.csv", "-o", "train.csv/c.csv", NULL},
      {"./m", "encode", "--checkpoint", "k.safetensors", "--data", "train.csv", "-o", "c.csv", "--plot", "train.csv/p.png"},
      {"./m", "reconstruct", "--checkpoint", "k.safetensors", "--data", "train.csv", "-o", "train.csv/r.png", NULL},
      {"./m", "filters", "--checkpoint", "k.safetensors", "-o", "train.csv/f.png", NULL},
  };
  for (int i = 0; i < 4; i++) {
    run_result r = run(others[i]);
    ck_assert_msg(r.status == 1 && strstr(r.err, "train.csv/") && strstr(r.err, "Not a directory"), "%s: %d %s",
                  others[i][1], r.status, r.err);
    ck_assert_msg(!strstr(r.err, "wrote"), "%s wrote something first:\n%s", others[i][1], r.err);
    result_free(&r);
  }
  ck_assert_int_eq(kind("c.csv"), 0);  // encode --plot into an unwritable place wrote no codes first
}
END_TEST

// A write that fails midway (here writes past 1 KiB fail with EFBIG, as on a
// full disk) leaves the old file, or none, under the name, and says why.
START_TEST(failed_writes_leave_no_partial_file) {
  put("old.csv", "old codes\n");
  const char *limit = "trap '' XFSZ; ulimit -f 1; exec ";
  CommandResult r = run_command("cd %s && %s ./m encode --checkpoint k.safetensors --data train.csv -o old.csv", dir, limit);
  ck_assert_msg(r.status == 1 && strstr(r.err, "old.csv: cannot write") && strstr(r.err, "File too large"), "%d %s",
                r.status, r.err);
  command_result_free(&r);
  char *text = get("old.csv");
  ck_assert_str_eq(text, "old codes\n");
  free(text);
  r = run_command("cd %s && %s ./m encode --checkpoint k.safetensors --data train.csv -o new.npy", dir, limit);
  ck_assert_msg(r.status == 1 && strstr(r.err, "new.npy: cannot write") && strstr(r.err, "File too large"), "%d %s",
                r.status, r.err);
  command_result_free(&r);
  ck_assert_int_eq(kind("new.npy"), 0);
  // A PNG: the message carries errno's text.
  r = run_command("cd %s && %s ./m reconstruct --checkpoint k.safetensors --data train.csv --count 200 -o r.png", dir, limit);
  ck_assert_msg(r.status == 1 && strstr(r.err, "r.png: cannot write the PNG image: File too large"), "%d %s", r.status,
                r.err);
  command_result_free(&r);
  ck_assert_int_eq(kind("r.png"), 0);
  // The checkpoint, then the log.
  r = run_command("cd %s && %s ./m train --checkpoint big.safetensors --log l.csv", dir, limit);
  ck_assert_msg(r.status == 1 && strstr(r.err, "big.safetensors: cannot write the checkpoint: File too large"), "%d %s",
                r.status, r.err);
  command_result_free(&r);
  ck_assert_int_eq(kind("big.safetensors"), 0);
  ck_assert_int_eq(kind("l.csv"), 0);
  assert_no_temporary("failed writes");
}
END_TEST

// A temporary that a dead process left (its pid in the name) is removed by
// the next write of the same name; a live process's stays.
START_TEST(dead_writers_temporaries_are_removed) {
  pid_t dead = fork();
  ck_assert_int_ge(dead, 0);
  if (dead == 0) _exit(0);
  ck_assert_int_eq(waitpid(dead, NULL, 0), dead);
  char name[128];
  snprintf(name, sizeof name, ".k.safetensors.aec-tmp-%d-AbC123", (int)dead);
  put(name, "left by a kill -9");
  snprintf(name, sizeof name, ".k.safetensors.aec-tmp-%d-XyZ789", (int)getpid());
  put(name, "being written");
  must_succeed_in(dir, "./m train --checkpoint k.safetensors --resume k.safetensors --epochs 2");
  ck_assert_int_eq(kind(name), S_IFREG);
  char *path = in_dir(name);
  unlink(path), free(path);
  assert_no_temporary("after a dead writer");
}
END_TEST

// A resumed --log keeps its lines (through a link to it too) and adds the new epochs'.
START_TEST(resumed_log_keeps_its_lines) {
  put("log.csv", "");
  link_to("log.csv", "log-link");
  must_succeed_in(dir, "./m train --epochs 2 --checkpoint r.safetensors --log log-link");
  must_succeed_in(dir, "./m train --epochs 3 --checkpoint r.safetensors --resume r.safetensors --log log-link");
  char *text = get("log.csv");
  int lines = 0;
  for (const char *at = text; (at = strchr(at, '\n')) != NULL; at++) lines++;
  ck_assert_msg(lines == 4 && strncmp(text, "epoch,", 6) == 0 && strstr(text, "\n3,"), "%s", text);
  ck_assert_int_eq(kind("log-link"), S_IFLNK);
  free(text);
}
END_TEST

// ---------------------------------------------------------------- signals
// 20 runs of train, each sent SIGINT or SIGTERM at a random moment once it
// has started: it exits 130 or 143 naming the checkpoint and its epochs and
// batches; the checkpoint on disk loads and holds what the message says, and
// no temporary remains.
static long long header_number(const char *header, const char *key) {
  char quoted[64];
  snprintf(quoted, sizeof quoted, "\"%s\":\"", key);
  const char *at = strstr(header, quoted);
  return at ? atoll(at + strlen(quoted)) : 0;
}

// Waits until the program spawned with `capture` says it is training.
static void wait_for_training(const char *capture) {
  char *err_path = path_in(capture, "err");
  for (int waited = 0;; waited++) {
    ck_assert_msg(waited < 20000, "train did not start");
    FILE *f = fopen(err_path, "r");
    char text[512] = "";
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[got] = 0;
    if (strstr(text, "training on")) break;
    usleep(1000);
  }
  free(err_path);
}

START_TEST(signals_stop_training_with_a_named_checkpoint) {
  unsigned seed = 2024;
  const char *const argv[] = {"./m", "train", "--epochs", "1000000", "--checkpoint", "s.safetensors", NULL};
  for (int i = 0; i < 20; i++) {
    int sig = i % 2 ? SIGTERM : SIGINT;
    char *capture = make_temp_dir("hostsig");
    pid_t pid = spawn(argv, capture);
    wait_for_training(capture);
    seed = seed * 1103515245u + 12345u;
    struct timespec pause = {0, (long)((seed >> 16) % 150) * 1000000L};  // 0 to 149 ms
    nanosleep(&pause, NULL);
    ck_assert_int_eq(kill(pid, sig), 0);
    run_result r = finish(pid, capture);
    ck_assert_msg(r.status == 128 + sig, "run %d: exit %d after signal %d\n%s", i, r.status, sig, r.err);
    const char *said = strstr(r.err, "the checkpoint s.safetensors holds ");
    ck_assert_msg(said && strstr(r.err, sig == SIGINT ? "SIGINT" : "SIGTERM"), "run %d: %s", i, r.err);
    long long epochs = atoll(said + strlen("the checkpoint s.safetensors holds ")), batches = 0;
    const char *and = strstr(said, " epochs and ");
    if (and) batches = atoll(and + strlen(" epochs and "));
    const char *last = NULL;  // standard output's last "epoch N" is never ahead of the checkpoint
    for (const char *at = r.out; (at = strstr(at, "epoch ")) != NULL; at++) last = at;
    ck_assert_msg(!last || atoll(last + 6) <= epochs, "run %d: stdout says %.12s, the checkpoint holds %lld epochs", i,
                  last, epochs);
    must_succeed_in(dir, "./m eval --checkpoint s.safetensors --data train.csv");
    size_t size;
    char *path = in_dir("s.safetensors");
    char *file = read_whole_file(path, &size);
    free(path);
    ck_assert_msg(size > 8, "run %d: the checkpoint is empty", i);
    ck_assert_msg(header_number(file + 8, "epoch") == epochs && header_number(file + 8, "epoch_batch") == batches,
                  "run %d: the message says %lld epochs and %lld batches, the checkpoint %.300s", i, epochs, batches,
                  file + 8);
    free(file);
    result_free(&r);
    assert_no_temporary("after a signal");
  }
  // A second signal close behind the first (perhaps while the checkpoint is
  // written) exits at once: the checkpoint on disk stays whole, no temporary stays.
  for (int i = 0; i < 4; i++) {
    char *capture = make_temp_dir("hostsig2");
    pid_t pid = spawn(argv, capture);
    struct timespec pause = {0, 50000000L}, gap = {0, (long)i * 700000L};
    wait_for_training(capture);
    nanosleep(&pause, NULL);
    ck_assert_int_eq(kill(pid, SIGINT), 0);
    nanosleep(&gap, NULL);
    kill(pid, SIGINT);
    run_result r = finish(pid, capture);
    ck_assert_msg(r.status == 130 && strstr(r.err, "s.safetensors"), "two signals: exit %d\n%s", r.status, r.err);
    must_succeed_in(dir, "./m eval --checkpoint s.safetensors --data train.csv");
    result_free(&r);
    assert_no_temporary("after two signals");
  }
}
END_TEST

Suite *hostile_out_suite(void) {
  Suite *s = suite_create("hostile_out");
  TCase *t = tcase_create("hostile_out");
  tcase_set_timeout(t, 300);
  tcase_add_checked_fixture(t, setup, teardown);
  tcase_add_test(t, outputs_never_replace_links_or_special_files);
  tcase_add_test(t, planted_link_at_old_temporary_name_is_not_followed);
  tcase_add_test(t, odd_output_names_are_written_where_asked);
  tcase_add_test(t, unwritable_directory_fails_before_any_work);
  tcase_add_test(t, failed_writes_leave_no_partial_file);
  tcase_add_test(t, dead_writers_temporaries_are_removed);
  tcase_add_test(t, resumed_log_keeps_its_lines);
  tcase_add_test(t, signals_stop_training_with_a_named_checkpoint);
  suite_add_tcase(s, t);
  return s;
}
