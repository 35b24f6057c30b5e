// test_hostile_in.c — hostile inputs, round two (issue 24): what the program
// reads (data files, label files, checkpoints, plot-xy's CSV) when it is a
// gzip bomb, a device, a FIFO, a directory, a dangling symbolic link or a
// loop of them, or has an odd name; --batch larger than the data; labels far
// beyond the classes there are; plot ranges below the values' precision; CSV
// files with a typo in the first row or a NUL byte; checkpoint counts of 2^63
// and more; JSON objects of many keys (the duplicate check counted, not
// timed); and the fuzzers' regression inputs of data files.
#define _GNU_SOURCE
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "aert.h"
#include "ckpt.h"
#include "core.h"
#include "tests.h"

// ------------------------------------------------------------- helpers
static aert_dataset *load_capturing(const char *spec, size_t expect, char **message) {
  stderr_capture c = stderr_begin();
  aert_dataset *d = aert_dataset_load(spec, expect);
  *message = stderr_end(&c);
  return d;
}

// Loading `path` fails with one message that names it and holds `word`.
static void assert_load_fails(const char *path, size_t expect, const char *word) {
  char *message = NULL;
  aert_dataset *d = load_capturing(path, expect, &message);
  ck_assert_msg(d == NULL, "loading %s should fail", path);
  ck_assert_msg(strstr(message, "error:") && strstr(message, path) && strstr(message, word),
                "the message for %s lacks the name or '%s': %s", path, word, message);
  free(message);
}

// The most memory this process has held, in KiB.
static long peak_kib(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Sanitizer builds reserve terabytes of address space: no ulimit -v there.
static bool sanitized(void) {
  const char *flags = getenv("AEC_CFLAGS");
  return flags && strstr(flags, "sanitize=address");
}

// `zeros` zero bytes after `head` as one gzip file: a small file that
// expands to far more than its header declares.
static void write_gzip_bomb(const char *path, const void *head, size_t head_size, size_t zeros) {
  gzFile f = gzopen(path, "wb9");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(gzwrite(f, head, (unsigned)head_size), (int)head_size);
  static unsigned char block[1 << 16];
  for (size_t done = 0; done < zeros; done += sizeof block)
    ck_assert_int_eq(gzwrite(f, block, sizeof block), (int)sizeof block);
  ck_assert_int_eq(gzclose(f), Z_OK);
}

// An IDX header of 3 images of 2 x 2 bytes (12 bytes of data declared).
static const unsigned char small_idx_header[16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2};

// ------------------------------------------- 4: unbounded decompression
START_TEST(gzip_bomb_idx_is_read_no_further_than_its_header) {
  char *dir = make_temp_dir("bomb");
  char *path = path_in(dir, "bomb-images-idx3-ubyte.gz");
  write_gzip_bomb(path, small_idx_header, sizeof small_idx_header, (size_t)256 << 20);  // 256 MiB of zeros
  struct stat st;
  ck_assert_int_eq(stat(path, &st), 0);
  ck_assert_int_lt(st.st_size, 1 << 20);  // a small file
  long before = peak_kib();
  assert_load_fails(path, 4, "trailing data");
  long grown = peak_kib() - before;
  ck_assert_msg(grown < 16 * 1024, "rejecting the bomb took %ld KiB more memory", grown);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(npy_and_labels_bombs_are_bounded_too) {
  char *dir = make_temp_dir("bomb");
  // A .npy header declaring 2 x 2 float32 (16 bytes), then 128 MiB.
  char header[128];
  int h = snprintf(header + 10, sizeof header - 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }");
  while ((10 + h + 1) % 64) header[10 + h++] = ' ';
  header[10 + h++] = '\n';
  memcpy(header, "\x93NUMPY\x01\x00", 8);
  header[8] = (char)h, header[9] = 0;
  char *npy = path_in(dir, "bomb.npy.gz");
  write_gzip_bomb(npy, header, (size_t)(10 + h), (size_t)128 << 20);
  long before = peak_kib();
  assert_load_fails(npy, 2, "trailing data");
  // An images file whose labels file declares 3 labels and holds 128 MiB.
  unsigned char pixels[12] = {0};
  uint32_t dims[3] = {3, 2, 2};
  char *images = path_in(dir, "t-images-idx3-ubyte"), *labels = path_in(dir, "t-labels-idx1-ubyte");
  write_idx(images, 0x803, dims, 3, pixels, 12, false);
  const unsigned char label_header[8] = {0, 0, 8, 1, 0, 0, 0, 3};
  write_gzip_bomb(labels, label_header, sizeof label_header, (size_t)128 << 20);
  char *message = NULL;
  aert_dataset *d = load_capturing(images, 4, &message);
  ck_assert_ptr_null(d);
  ck_assert_msg(strstr(message, labels) && strstr(message, "trailing data"), "%s", message);
  free(message);
  long grown = peak_kib() - before;
  ck_assert_msg(grown < 16 * 1024, "rejecting the bombs took %ld KiB more memory", grown);
  free(npy), free(images), free(labels);
  remove_tree(dir);
  free(dir);
}
END_TEST

// Special files as data, through the library: each one message naming it.
START_TEST(special_files_as_data_are_refused) {
  char *dir = make_temp_dir("special");
  char *fifo = path_in(dir, "pipe.csv"), *dangling = path_in(dir, "dangling.csv"), *loop = path_in(dir, "loop.csv");
  char *sub = path_in(dir, "folder.csv");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  ck_assert_int_eq(symlink("nowhere.csv", dangling), 0);
  ck_assert_int_eq(symlink("loop.csv", loop), 0);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  assert_load_fails("/dev/zero", 4, "character device");
  assert_load_fails("/dev/null", 4, "character device");
  assert_load_fails(fifo, 4, "FIFO");
  assert_load_fails(sub, 4, "directory");
  assert_load_fails(dangling, 4, "nowhere.csv");
  assert_load_fails(loop, 4, "loop of symbolic links");
  free(fifo), free(dangling), free(loop), free(sub);
  remove_tree(dir);
  free(dir);
}
END_TEST

// --------------------------------------------- the compiled program's view
static char *prog;  // a directory with ./m (input [4]), train.csv (64 rows) and m.safetensors

static const char *small_model =
    "input x: [4]\n"
    "net encoder = dense(3, relu) -> dense(2, sigmoid)\n"
    "net decoder = dense(3, relu) -> dense(4, sigmoid)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

static void setup_program(void) {
  prog = make_program_dir("hostile", small_model, 64, 4);
  must_succeed_in(prog, "./m train --epochs 1 --checkpoint m.safetensors");
}

static void teardown_program(void) {
  remove_tree(prog);
  free(prog);
}

// Runs `command` in the program's directory with at most 20 s and (where the
// build allows it) 2 GiB of address space, so a hang or a runaway allocation
// fails the test instead of the machine.
static CommandResult run_bounded(const char *command) {
  char *wrapped = NULL;
  ck_assert_int_ge(asprintf(&wrapped, "cd %s && %s timeout 20 %s", prog, sanitized() ? "" : "ulimit -v 2097152 &&",
                            command),
                   0);
  CommandResult r = run_command("%s", wrapped);
  free(wrapped);
  return r;
}

static void expect_refused(const char *command, const char *name, const char *word) {
  CommandResult r = run_bounded(command);
  ck_assert_msg(r.status == 1, "`%s`: status %d, expected 1\n%s", command, r.status, r.err);
  ck_assert_msg(strstr(r.err, name) && strstr(r.err, word), "`%s`: expected '%s' and '%s' in\n%s", command, name,
                word, r.err);
  command_result_free(&r);
}

START_TEST(special_files_as_program_inputs) {
  must_succeed_in(prog, "mkfifo fifo.csv fifo.safetensors && ln -sf gone.csv dangling.csv && ln -sf self.csv self.csv"
                        " && mkdir -p adir.csv && cp train.csv s-images-idx3-ubyte.csv");
  expect_refused("./m train --data /dev/zero --epochs 1", "/dev/zero", "character device");
  expect_refused("./m train --data /dev/null --epochs 1", "/dev/null", "character device");
  expect_refused("./m train --data fifo.csv --epochs 1", "fifo.csv", "FIFO");
  expect_refused("./m train --data adir.csv --epochs 1", "adir.csv", "directory");
  expect_refused("./m train --data dangling.csv --epochs 1", "dangling.csv", "does not exist");
  expect_refused("./m train --data self.csv --epochs 1", "self.csv", "loop of symbolic links");
  expect_refused("./m eval --checkpoint /dev/zero --data train.csv", "/dev/zero", "character device");
  expect_refused("./m eval --checkpoint fifo.safetensors --data train.csv", "fifo.safetensors", "FIFO");
  expect_refused("./m eval --checkpoint adir.csv --data train.csv", "adir.csv", "directory");
  expect_refused("./m eval --checkpoint dangling.csv --data train.csv", "dangling.csv", "does not exist");
  expect_refused("./m eval --checkpoint self.csv --data train.csv", "self.csv", "loop of symbolic links");
  expect_refused("./m plot-xy --csv /dev/zero -o p.png", "/dev/zero", "character device");
  expect_refused("./m plot-xy --csv fifo.csv -o p.png", "fifo.csv", "FIFO");
  expect_refused("./m plot-xy --csv adir.csv -o p.png", "adir.csv", "directory");
  expect_refused("./m plot-xy --csv self.csv -o p.png", "self.csv", "loop of symbolic links");
  // An IDX images file whose labels file is a FIFO, a directory, /dev/zero.
  static const char *const kinds[][2] = {{"mkfifo x-labels-idx1-ubyte", "FIFO"},
                                         {"mkdir x-labels-idx1-ubyte", "directory"},
                                         {"ln -s /dev/zero x-labels-idx1-ubyte", "character device"}};
  for (int k = 0; k < 3; k++) {
    char setup[256];
    snprintf(setup, sizeof setup,
             "rm -rf x-labels-idx1-ubyte && printf '\\0\\0\\10\\3\\0\\0\\0\\1\\0\\0\\0\\2\\0\\0\\0\\2abcd' > "
             "x-images-idx3-ubyte && %s",
             kinds[k][0]);
    must_succeed_in(prog, setup);
    expect_refused("./m eval --checkpoint m.safetensors --data x-images-idx3-ubyte", "x-labels-idx1-ubyte",
                   kinds[k][1]);
  }
}
END_TEST

// aec's own input, the .ae file: /dev/zero read until memory ran out, a FIFO hung.
START_TEST(aec_reads_only_regular_files) {
  must_succeed_in(prog, "mkfifo model-fifo.ae");
  static const char *const inputs[][2] = {{"/dev/zero", "character device"},
                                          {"model-fifo.ae", "FIFO"},
                                          {"/dev/null", "character device"}};
  for (int i = 0; i < 3; i++) {
    char command[256];
    snprintf(command, sizeof command, "%s/aec %s -o never", AEC_BUILD_DIR, inputs[i][0]);
    expect_refused(command, inputs[i][0], inputs[i][1]);
  }
}
END_TEST

// ------------------------------------------------------- odd file names
// Writes a copy of train.csv (and of m.safetensors) under `name` in the
// program's directory, reads both back, then a damaged copy of each: the
// message names the file.
static void check_odd_name(const char *name) {
  char *csv = NULL, *ckpt = NULL;
  ck_assert_int_ge(asprintf(&csv, "%s/%s.csv", prog, name), 0);
  ck_assert_int_ge(asprintf(&ckpt, "%s/%s.st", prog, name), 0);
  char *train = path_in(prog, "train.csv"), *saved = path_in(prog, "m.safetensors");
  size_t size = 0, ckpt_size = 0;
  char *text = read_whole_file(train, &size), *bytes = read_whole_file(saved, &ckpt_size);
  write_file(csv, text, size);
  write_file(ckpt, bytes, ckpt_size);
  aert_dataset *d = aert_dataset_load(csv, 4);
  ck_assert_msg(d != NULL, "cannot read a data file named %s", csv);
  ck_assert_uint_eq(d->n, 64);
  aert_dataset_free(d);
  write_file(csv, "1,2,3\n", 6);
  assert_load_fails(csv, 4, "each sample has 3 values");
  // The checkpoint through the program: the name passed as an argument, never through a shell.
  aert_model lin = lin_model();
  aert_ctx *ctx = aert_ctx_create(&lin, 1, 1);
  ck_assert_ptr_nonnull(ctx);
  stderr_capture c = stderr_begin();
  int loaded = aert_checkpoint_load(ckpt, &lin, ctx, NULL);  // m's checkpoint is not lin's
  char *message = stderr_end(&c);
  ck_assert_int_ne(loaded, 0);
  ck_assert_msg(strstr(message, ckpt) != NULL, "the message does not name %s: %s", ckpt, message);
  free(message);
  aert_progress_state state = {.epoch = 1, .batch_counter = 2, .epoch_batch = 0};
  ck_assert_msg(aert_checkpoint_save(ckpt, &lin, ctx, &state) == 0, "cannot save a checkpoint named %s", ckpt);
  ck_assert_int_eq(aert_checkpoint_load(ckpt, &lin, ctx, NULL), 0);
  aert_ctx_free(&lin, ctx);
  free(text), free(bytes), free(train), free(saved), free(csv), free(ckpt);
}

START_TEST(odd_file_names_are_read_and_named) {
  check_odd_name("new\nline");
  check_odd_name("back\\slash");
  check_odd_name("quo'te\"s and spaces");
  check_odd_name("-starts-with-dash");
  char low[130], high[130];
  size_t n = 0;
  for (int b = 1; b < 128; b++)
    if (b != '/') low[n++] = (char)b;
  low[n] = 0;
  check_odd_name(low);
  n = 0;
  for (int b = 128; b < 256; b++) high[n++] = (char)b;
  high[n] = 0;
  check_odd_name(high);
  char longest[256];
  memset(longest, 'n', 251);  // 251 + ".csv": a 255-byte name, the longest a file may have
  longest[251] = 0;
  check_odd_name(longest);
}
END_TEST

// ----------------------------------------------- 5: --batch beyond the data
START_TEST(batch_is_clamped_to_the_data) {
  static const char *const commands[] = {
      "./m train --data train.csv --test none --batch 10000000 --epochs 1 --checkpoint big.safetensors",
      "./m eval --checkpoint m.safetensors --data train.csv --batch 10000000",
      "./m encode --checkpoint m.safetensors --data train.csv --batch 10000000 -o codes.csv",
  };
  for (int i = 0; i < 3; i++) {
    CommandResult r = run_bounded(commands[i]);
    ck_assert_msg(r.status == 0, "`%s`: status %d\n%s", commands[i], r.status, r.err);
    ck_assert_msg(strstr(r.err, "--batch 10000000 is more than the 64 samples of train.csv: batches of 64"),
                  "`%s` does not say that its batches are cut:\n%s", commands[i], r.err);
    char *first = strstr(r.err, "--batch 10000000");
    ck_assert_msg(strstr(first + 1, "--batch 10000000") == NULL, "said more than once:\n%s", r.err);
    command_result_free(&r);
  }
  // --threads far beyond the machine: cut too (libgomp crashed at 100000).
  CommandResult t = run_command("cd %s && timeout 60 ./m train --data train.csv --test none --threads 100000 "
                                "--epochs 1 --checkpoint threads.safetensors",
                                prog);  // 1024 threads' stacks: no ulimit -v
  ck_assert_msg(t.status == 0, "status %d\n%s", t.status, t.err);
  ck_assert_msg(strstr(t.err, "--threads 100000 is more than the 1024"), "%s", t.err);
  command_result_free(&t);
  // Without --batch, the model's batch is cut silently.
  CommandResult r = run_bounded("./m eval --checkpoint m.safetensors --data train.csv");
  ck_assert_int_eq(r.status, 0);
  ck_assert_ptr_null(strstr(r.err, "--batch"));
  command_result_free(&r);
}
END_TEST

// ------------------------------------------------------- 8: labels
START_TEST(labels_beyond_the_cap_are_refused) {
  // 64 rows with a label first; the last label is huge.
  static const char *const labels[] = {"2147483646", "2147483647", "10000000", "65536", "-1"};
  for (int i = 0; i < 5; i++) {
    char command[512];
    snprintf(command, sizeof command,
             "awk -F, 'NR < 64 { print NR %% 3 \",\" $0 } NR == 64 { print \"%s,\" $0 }' train.csv > lab.csv",
             labels[i]);
    must_succeed_in(prog, command);
    CommandResult r = run_bounded("./m probe --checkpoint m.safetensors --data lab.csv --test lab.csv --epochs 1");
    ck_assert_msg(r.status == 1, "label %s: status %d\n%s%s", labels[i], r.status, r.out, r.err);
    ck_assert_msg(strstr(r.err, "lab.csv:64: the label") && strstr(r.err, "from 0 to 65535"), "label %s:\n%s",
                  labels[i], r.err);
    command_result_free(&r);
  }
  // Labels 0 and 60000: two classes, not 60001.
  must_succeed_in(prog, "awk -F, '{ print (NR % 2 ? 0 : 60000) \",\" $0 }' train.csv > two.csv");
  CommandResult r = run_bounded("./m probe --checkpoint m.safetensors --data two.csv --test two.csv --epochs 1");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, ", 2 classes,"), "%s", r.err);
  ck_assert(isfinite(figure(r.out, "probe_accuracy")));
  command_result_free(&r);
}
END_TEST

// ------------------------------------------------------- 9: plot-xy ranges
START_TEST(plot_xy_ranges_below_precision_and_beyond) {
  static const char *const cases[] = {
      "x,y\\n1e15,1\\n1.0000000000000002e15,2\\n",  // a step below the ulp: hung
      "x,y\\n1,1e300\\n2,1.0000000000000002e300\\n",
      "x,y\\n5,5\\n",                              // a single point
      "x,y\\n-1e308,-1e308\\n1e308,1e308\\n",      // a range wider than the doubles
      "x,y\\n1e-300,1\\n1e300,2\\n",               // a log x axis over 2000 octaves
      "x,y\\n1e-310,0\\n2e-310,1e-310\\n",         // subnormal values
      "x,y\\n0,0\\n0,0\\n0,0\\n",
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    char setup[256];
    snprintf(setup, sizeof setup, "printf '%s' > xy.csv && rm -f xy.png", cases[i]);
    must_succeed_in(prog, setup);
    CommandResult r = run_bounded("./m plot-xy --csv xy.csv -o xy.png");
    ck_assert_msg(r.status == 0, "case %zu (%s): status %d\n%s", i, cases[i], r.status, r.err);
    command_result_free(&r);
    char *png = path_in(prog, "xy.png");
    int width, height;
    ck_assert_msg(read_png_size(png, &width, &height) && width > 0, "case %zu: no PNG", i);
    free(png);
  }
  static const char *const refused[] = {"x,y\\n1,inf\\n", "x,y\\n1,nan\\n", "x,y\\n1e999,1\\n"};
  for (size_t i = 0; i < 3; i++) {
    char setup[128];
    snprintf(setup, sizeof setup, "printf '%s' > bad.csv", refused[i]);
    must_succeed_in(prog, setup);
    expect_refused("./m plot-xy --csv bad.csv -o bad.png", "bad.csv:2", "finite");
  }
}
END_TEST

// ------------------------------------------------------- 10: CSV rows
START_TEST(csv_typo_in_first_row_and_nul_bytes) {
  char *dir = make_temp_dir("csvrules");
  char *typo = path_in(dir, "typo.csv"), *nul = path_in(dir, "nul.csv"), *header = path_in(dir, "header.csv");
  char *nul2 = path_in(dir, "nul2.csv");
  write_file(typo, "0.1,0.2,O.7\n0.4,0.5,0.6\n", 24);
  char *message = NULL;
  aert_dataset *d = load_capturing(typo, 3, &message);
  ck_assert_msg(d == NULL, "a typo in the first row was taken as a header");
  char where[512];
  snprintf(where, sizeof where, "%s:1: column 3: 'O.7' is not a number", typo);
  ck_assert_msg(strstr(message, where), "%s", message);
  free(message);
  write_file(nul, "0.5\0xyz,1,2\n", 12);
  d = load_capturing(nul, 3, &message);
  ck_assert_msg(d == NULL, "a NUL byte read as the end of the field");
  snprintf(where, sizeof where, "%s:1:4: a NUL byte", nul);
  ck_assert_msg(strstr(message, where), "%s", message);
  free(message);
  write_file(nul2, "1,2,3\n4,5,6\0\n", 13);
  d = load_capturing(nul2, 3, &message);
  ck_assert_ptr_null(d);
  snprintf(where, sizeof where, "%s:2:6: a NUL byte", nul2);
  ck_assert_msg(strstr(message, where), "%s", message);
  free(message);
  // A first row of words is a header, and a note says so.
  write_file(header, "a,b,c\n1,2,3\n", 12);
  d = load_capturing(header, 3, &message);
  ck_assert_ptr_nonnull(d);
  ck_assert_uint_eq(d->n, 1);
  snprintf(where, sizeof where, "%s:1: no field of the first row is a number", header);
  ck_assert_msg(strstr(message, "note:") && strstr(message, where), "%s", message);
  aert_dataset_free(d);
  free(message);
  free(typo), free(nul), free(nul2), free(header);
  remove_tree(dir);
  free(dir);
}
END_TEST

// -------------------------------------------- 12: checkpoint counts
// lin's checkpoint with the metadata `key`'s value replaced by `value`.
static char *checkpoint_with(const char *dir, const char *key, const char *value) {
  aert_model lin = lin_model();
  aert_ctx *ctx = aert_ctx_create(&lin, 1, 1);
  ck_assert_ptr_nonnull(ctx);
  ctx->opt_t[0] = 7;
  char *path = path_in(dir, "lin.safetensors");
  aert_progress_state state = {.epoch = 2, .batch_counter = 10, .epoch_batch = 3};
  ck_assert_int_eq(aert_checkpoint_save(path, &lin, ctx, &state), 0);
  aert_ctx_free(&lin, ctx);
  size_t size;
  char *bytes = read_whole_file(path, &size);
  uint64_t length = 0;
  for (int i = 7; i >= 0; i--) length = length << 8 | (unsigned char)bytes[i];
  char *header = strndup(bytes + 8, length);
  char pattern[128];
  snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
  char *at = strstr(header, pattern);
  ck_assert_msg(at != NULL, "no metadata %s in %s", key, header);
  at += strlen(pattern);
  char *end = strchr(at, '"');
  char *edited = NULL;
  ck_assert_int_ge(asprintf(&edited, "%.*s%s%s", (int)(at - header), header, value, end), 0);
  size_t new_length = strlen(edited);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  for (int i = 0; i < 8; i++) fputc((int)(new_length >> (8 * i) & 0xff), f);
  fwrite(edited, 1, new_length, f);
  fwrite(bytes + 8 + length, 1, size - 8 - length, f);
  fclose(f);
  free(bytes), free(header), free(edited);
  return path;
}

START_TEST(checkpoint_counts_of_2_63_are_refused) {
  char *dir = make_temp_dir("counts");
  aert_model lin = lin_model();
  char key[256];
  aert_optimizer_key(&lin, 0, key, sizeof key - 2);
  strcat(key, ".t");
  static const char *const values[] = {"9223372036854775808", "18446744073709551615", "9007199254740993"};
  const char *keys[] = {key, "batch_counter", "epoch_batch", "epoch"};
  for (int k = 0; k < 4; k++)
    for (int v = 0; v < 3; v++) {
      char *path = checkpoint_with(dir, keys[k], values[v]);
      aert_ctx *ctx = aert_ctx_create(&lin, 1, 1);
      aert_progress_state state = {.epoch = 0, .batch_counter = 0, .epoch_batch = 0};
      stderr_capture c = stderr_begin();
      int loaded = aert_checkpoint_load(path, &lin, ctx, &state);
      char *message = stderr_end(&c);
      ck_assert_msg(loaded != 0, "%s = %s was accepted (t %lld, batches %llu, epoch %lld)", keys[k], values[v],
                    (long long)ctx->opt_t[0], (unsigned long long)state.batch_counter, (long long)state.epoch);
      ck_assert_msg(strstr(message, path) && strstr(message, keys[k]), "%s", message);
      ck_assert_int_ge(ctx->opt_t[0], 0);
      free(message);
      aert_ctx_free(&lin, ctx);
      free(path);
    }
  // 2^53 itself is still a count.
  char *path = checkpoint_with(dir, key, "9007199254740992");
  aert_ctx *ctx = aert_ctx_create(&lin, 1, 1);
  ck_assert_int_eq(aert_checkpoint_load(path, &lin, ctx, NULL), 0);
  ck_assert_int_eq(ctx->opt_t[0], (int64_t)1 << 53);
  aert_ctx_free(&lin, ctx);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ------------------------------------------ 6b: wide JSON objects, counted
// The key comparisons of parsing one object of n distinct keys (and, when
// `duplicate`, its last key the same as its first).
static size_t comparisons_for(size_t n, bool duplicate) {
  size_t cap = n * 24 + 16, used = 0;
  char *text = malloc(cap);
  used += (size_t)snprintf(text + used, cap - used, "{");
  for (size_t i = 0; i < n; i++)
    used += (size_t)snprintf(text + used, cap - used, "%s\"key%zu\":%zu", i ? "," : "",
                             duplicate && i == n - 1 ? (size_t)0 : i * 7919 % n, i);
  used += (size_t)snprintf(text + used, cap - used, "}");
  char error[128];
  size_t before = json_key_comparisons;
  json_value *v = json_parse(text, used, error, sizeof error);
  size_t count = json_key_comparisons - before;
  if (duplicate) {
    ck_assert_ptr_null(v);
    ck_assert_msg(strstr(error, "duplicate key"), "%s", error);
  } else {
    ck_assert_msg(v != NULL, "%s", error);
    ck_assert_uint_eq(v->count, n);
  }
  json_free(v);
  free(text);
  return count;
}

START_TEST(duplicate_key_check_grows_as_n_log_n) {
  // n distinct keys: i * 7919 % n over i < n is a permutation when n and 7919 are coprime.
  size_t small = comparisons_for(1000, false), large = comparisons_for(16000, false);
  // n log n: 16 times the keys cost about 22 times the comparisons; n^2: 256 times.
  ck_assert_msg(large < 40 * small, "1000 keys: %zu comparisons, 16000 keys: %zu", small, large);
  ck_assert_msg(large < 2 * 16000 * 14, "16000 keys: %zu comparisons", large);
  // A duplicate is still found, among many keys.
  ck_assert_uint_lt(comparisons_for(16000, true), 2 * 16000 * 14);
}
END_TEST

// A header of 63 objects of 16,383 keys (71 MB made 63 s) through the checkpoint reader, counted.
START_TEST(checkpoint_of_wide_objects_is_rejected_in_n_log_n) {
  char *dir = make_temp_dir("wide");
  aert_buf h = {0};
  aert_buf_printf(&h, "{");
  for (int o = 0; o < 63; o++) {
    aert_buf_printf(&h, "%s\"t%d\":{", o ? "," : "", o);
    for (int k = 0; k < 16383; k++) aert_buf_printf(&h, "%s\"k%d\":0", k ? "," : "", k);
    aert_buf_printf(&h, "}");
  }
  aert_buf_printf(&h, "}");
  ck_assert(!h.failed);
  char *path = path_in(dir, "wide.safetensors");
  FILE *f = fopen(path, "wb");
  for (int i = 0; i < 8; i++) fputc((int)(h.length >> (8 * i) & 0xff), f);
  fwrite(h.data, 1, h.length, f);
  fclose(f);
  aert_model lin = lin_model();
  aert_ctx *ctx = aert_ctx_create(&lin, 1, 1);
  size_t before = json_key_comparisons;
  stderr_capture c = stderr_begin();
  ck_assert_int_ne(aert_checkpoint_load(path, &lin, ctx, NULL), 0);
  char *message = stderr_end(&c);
  size_t count = json_key_comparisons - before;
  ck_assert_msg(strstr(message, path) != NULL, "%s", message);
  // 63 * 16383 keys: n log n is about 15M comparisons, n^2 about 8.5G.
  ck_assert_msg(count < (size_t)63 * 16383 * 2 * 14, "%zu key comparisons", count);
  free(message);
  aert_ctx_free(&lin, ctx);
  aert_buf_free(&h);
  free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ------------------------------------------------ fuzz regression: data files
// tests/fuzz-regress/ holds data files the fuzzers (or their authors) found
// hostile, named for the loader's format: each is refused with one message,
// without growing this process by more than 16 MiB.
START_TEST(fuzz_regress_data_files_are_refused_in_bounded_memory) {
  glob_t g;
  ck_assert_int_eq(glob(AEC_SOURCE_DIR "/tests/fuzz-regress/data-*", 0, NULL, &g), 0);
  ck_assert_uint_ge(g.gl_pathc, 1);
  for (size_t i = 0; i < g.gl_pathc; i++) {
    long before = peak_kib();
    char *message = NULL;
    aert_dataset *d = load_capturing(g.gl_pathv[i], 0, &message);
    ck_assert_msg(d == NULL, "%s was accepted", g.gl_pathv[i]);
    ck_assert_msg(strstr(message, "error:") && strstr(message, g.gl_pathv[i]), "%s", message);
    long grown = peak_kib() - before;
    ck_assert_msg(grown < 16 * 1024, "%s: %ld KiB more memory", g.gl_pathv[i], grown);
    free(message);
  }
  globfree(&g);
}
END_TEST

Suite *hostile_in_suite(void) {
  Suite *s = suite_create("hostile_in");
  TCase *units = tcase_create("loaders");
  tcase_set_timeout(units, 120);
  tcase_add_test(units, gzip_bomb_idx_is_read_no_further_than_its_header);
  tcase_add_test(units, npy_and_labels_bombs_are_bounded_too);
  tcase_add_test(units, special_files_as_data_are_refused);
  tcase_add_test(units, csv_typo_in_first_row_and_nul_bytes);
  tcase_add_test(units, checkpoint_counts_of_2_63_are_refused);
  tcase_add_test(units, duplicate_key_check_grows_as_n_log_n);
  tcase_add_test(units, checkpoint_of_wide_objects_is_rejected_in_n_log_n);
  tcase_add_test(units, fuzz_regress_data_files_are_refused_in_bounded_memory);
  suite_add_tcase(s, units);
  TCase *program = tcase_create("program");
  tcase_set_timeout(program, 300);
  tcase_add_unchecked_fixture(program, setup_program, teardown_program);
  tcase_add_test(program, special_files_as_program_inputs);
  tcase_add_test(program, aec_reads_only_regular_files);
  tcase_add_test(program, odd_file_names_are_read_and_named);
  tcase_add_test(program, batch_is_clamped_to_the_data);
  tcase_add_test(program, labels_beyond_the_cap_are_refused);
  tcase_add_test(program, plot_xy_ranges_below_precision_and_beyond);
  suite_add_tcase(s, program);
  return s;
}
