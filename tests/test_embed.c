// test_embed.c — aec --lib (compiler/cgen/library.c, runtime/ckpt/embed.c):
// the library's codes equal the program's `encode` bit for bit, through
// examples/embed/main.c built against it; a batch of another size gives the
// same bits; errors come back as values with their messages (nothing on
// stderr from the library, no exit); the header names every shape, rank-3
// ones by channel, height and width, and its names are C identifiers made
// from the model's name. And checkpoints' layout metadata (docs/checkpoints.md),
// without which older checkpoints still load.
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// The flags aec compiles its programs with (compiler/main.c), AEC_CFLAGS
// included: the same code with other flags may round differently.
#define BUILD_LIB_FLAGS "-std=gnu11 -Wall -Wextra -Werror -fopenmp -fno-math-errno -DAEC_LIBMVEC ${AEC_CFLAGS--O3 -march=native}"
#define LINK_LIBS "-lcairo -lz -lmvec -lm"

// n rows of `size` values in [0, 1), the same on every call.
static void write_samples(const char *path, int n, int size) {
  FILE *f = fopen(path, "w");
  ck_assert(f != NULL);
  unsigned s = 777;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < size; j++)
      s = s * 1103515245u + 12345u, fprintf(f, "%.4f%c", (s >> 16) % 10000 / 1e4, j == size - 1 ? '\n' : ',');
  fclose(f);
}

// The bytes after a .npy file's header.
static const char *npy_data(const char *file, size_t size, size_t *data_size) {
  ck_assert_msg(size >= 10 && memcmp(file, "\x93NUMPY", 6) == 0, "not a .npy file");
  size_t header = 10 + ((unsigned char)file[8] | (size_t)(unsigned char)file[9] << 8);
  ck_assert(header <= size);
  *data_size = size - header;
  return file + header;
}

// A directory with simple.ae's program trained one epoch on 300 samples
// (simple.safetensors), its codes from `encode` (codes.npy), and simple.h,
// simple.c from aec --lib.
static char *trained_simple(void) {
  char *dir = make_temp_dir("embed"), *csv = path_in(dir, "train.csv");
  write_samples(csv, 300, 784);
  must_succeed_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/simple.ae -o simple");
  must_succeed_in(dir, "./simple train --data train.csv --test train.csv --epochs 1 --checkpoint simple.safetensors");
  must_succeed_in(dir, "./simple encode --checkpoint simple.safetensors --data train.csv -o codes.npy");
  must_succeed_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/simple.ae --lib -o simple");
  free(csv);
  return dir;
}

START_TEST(the_librarys_codes_equal_encodes_bit_for_bit) {
  char *dir = trained_simple();
  must_succeed_in(dir, "cc " BUILD_LIB_FLAGS " -I" AEC_BUILD_DIR "/include -I. " AEC_SOURCE_DIR
                       "/examples/embed/main.c simple.c " AEC_BUILD_DIR "/libaert.a " LINK_LIBS " -o embed");
  CommandResult r = run_in(dir, "./embed simple.safetensors train.csv lib.npy");
  ck_assert_msg(r.status == 0, "embed failed:\n%s", r.err);
  ck_assert_msg(strstr(r.out, "300 samples of 784 values, codes of 32") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "sample 4: score 0.6") != NULL, "no score near bce's 0.69 in:\n%s", r.out);
  ck_assert_str_eq(r.err, "");  // the library prints nothing
  command_result_free(&r);
  char *a_path = path_in(dir, "codes.npy"), *b_path = path_in(dir, "lib.npy");
  size_t a_size, b_size, a_data, b_data;
  char *a = read_whole_file(a_path, &a_size), *b = read_whole_file(b_path, &b_size);
  const char *x = npy_data(a, a_size, &a_data), *y = npy_data(b, b_size, &b_data);
  ck_assert_uint_eq(a_data, 300 * 32 * sizeof(float));
  ck_assert_uint_eq(b_data, a_data);
  ck_assert_msg(memcmp(x, y, a_data) == 0, "the library's codes differ from encode's");
  free(a), free(b), free(a_path), free(b_path);
  remove_tree(dir);
  free(dir);
}
END_TEST

// The checkpoint without the layout metadata, as aec wrote checkpoints
// before it: "format":"pt", no "layout" or "layout.NAME" keys.
static void write_old_checkpoint(const char *from, const char *to) {
  size_t size;
  char *file = read_whole_file(from, &size);
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | (unsigned char)file[i];
  ck_assert(n + 8 <= size);
  char *header = strndup(file + 8, n), *out = calloc(n + 16, 1), *at = header;
  size_t length = 0;
  const char *format = "\"format\":\"aec\"";
  ck_assert_msg(strstr(header, format) != NULL, "no %s in %s", format, header);
  while (*at) {
    if (strncmp(at, ",\"layout", 8) == 0) {  // ,"layout...":"..." (no quotes inside)
      at = strchr(at + 2, '"');                // the key's closing quote
      at = strchr(strchr(at + 1, '"') + 1, '"') + 1;  // past the value
    } else if (strncmp(at, format, strlen(format)) == 0) {
      length += (size_t)sprintf(out + length, "\"format\":\"pt\"");
      at += strlen(format);
    } else {
      out[length++] = *at++;
    }
  }
  while (length > 0 && out[length - 1] == ' ') length--;
  while (length % 8) out[length++] = ' ';
  FILE *f = fopen(to, "wb");
  ck_assert(f != NULL);
  for (int i = 0; i < 8; i++) fputc((int)((uint64_t)length >> (8 * i) & 255), f);
  fwrite(out, 1, length, f);
  fwrite(file + 8 + n, 1, size - 8 - n, f);
  fclose(f);
  ck_assert_msg(strstr(out, "layout") == NULL && strstr(out, "\"format\":\"pt\"") != NULL, "%.*s", (int)length, out);
  free(file), free(header), free(out);
}

START_TEST(checkpoints_say_their_layout_and_old_ones_still_load) {
  char *dir = trained_simple(), *path = path_in(dir, "simple.safetensors"), *old = path_in(dir, "old.safetensors");
  char *file = read_whole_file(path, NULL);
  const char *want[] = {"\"format\":\"aec\"", "\"layout\":\"aec: dense kernels [in, out] (torch.nn.Linear.weight transposed)",
                        "\"layout.encoder.dense_1.kernel\":\"in,out\"", "\"layout.decoder.dense_1.bias\":\"out\""};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(strstr(file + 8, want[i]) != NULL, "no %s in the header:\n%s", want[i], file + 8);
  write_old_checkpoint(path, old);
  must_succeed_in(dir, "./simple encode --checkpoint old.safetensors --data train.csv -o old.npy");
  char *a_path = path_in(dir, "codes.npy"), *b_path = path_in(dir, "old.npy");
  size_t a_size, b_size;
  char *a = read_whole_file(a_path, &a_size), *b = read_whole_file(b_path, &b_size);
  ck_assert_msg(a_size == b_size && memcmp(a, b, a_size) == 0, "the old checkpoint's codes differ");
  free(a), free(b), free(a_path), free(b_path), free(file), free(path), free(old);
  remove_tree(dir);
  free(dir);
}
END_TEST

// A program of the test's own: batches of 7 give the codes batches of 256
// gave; bad calls return -1 with a message; decode(encode(x)) equals reconstruct(x).
static const char api_test[] =
    "#include <stdio.h>\n#include <string.h>\n#include \"simple.h\"\n"
    "static float x[300 * SIMPLE_INPUT_SIZE], a[300 * SIMPLE_CODE_SIZE], b[300 * SIMPLE_CODE_SIZE];\n"
    "static float r1[3 * SIMPLE_RECON_SIZE], r2[3 * SIMPLE_RECON_SIZE];\n"
    "int main(void) {\n"
    "  char err[256] = \"untouched\";\n"
    "  FILE *f = fopen(\"train.csv\", \"r\");\n"
    "  for (int i = 0; i < 300 * SIMPLE_INPUT_SIZE; i++) if (fscanf(f, \" %f ,\", &x[i]) != 1) return 10;\n"
    "  fclose(f);\n"
    "  simple_t *m = simple_open(\"simple.safetensors\", err, sizeof err);\n"
    "  if (!m || err[0]) return 11;\n"
    "  if (simple_encode(m, x, 300, a) != 0) return 12;\n"
    "  if (simple_set_batch(m, 7) != 0 || simple_encode(m, x, 300, b) != 0) return 13;\n"
    "  if (memcmp(a, b, sizeof a) != 0) return 14;\n"
    "  if (simple_encode(m, x, -1, b) != -1) return 15;\n"
    "  printf(\"n=-1: %s\\n\", simple_error(m));\n"
    "  if (simple_set_batch(m, 0) != -1) return 16;\n"
    "  printf(\"batch 0: %s\\n\", simple_error(m));\n"
    "  if (simple_encode(m, NULL, 3, b) != -1) return 17;\n"
    "  printf(\"NULL: %s\\n\", simple_error(m));\n"
    "  if (simple_encode(m, x, 0, NULL) != 0) return 18;\n"
    "  if (simple_decode(m, a, 3, r1) != 0 || simple_reconstruct(m, x, 3, r2) != 0) return 19;\n"
    "  for (int i = 0; i < 3 * SIMPLE_RECON_SIZE; i++) if (r1[i] - r2[i] > 1e-5f || r2[i] - r1[i] > 1e-5f) return 20;\n"
    "  simple_close(m);\n"
    "  simple_t *bad = simple_open(\"garbage.safetensors\", err, sizeof err);\n"
    "  if (bad) return 21;\n"
    "  printf(\"garbage: %s\\n\", err);\n"
    "  bad = simple_open(\"absent.safetensors\", err, sizeof err);\n"
    "  if (bad) return 22;\n"
    "  printf(\"absent: %s\\n\", err);\n"
    "  printf(\"still running\\n\");\n"
    "  return 0;\n"
    "}\n";

START_TEST(errors_come_back_as_values_and_batches_do_not_change_the_codes) {
  char *dir = trained_simple(), *path = path_in(dir, "api.c"), *garbage = path_in(dir, "garbage.safetensors");
  write_file(path, api_test, strlen(api_test));
  write_file(garbage, "\x10\0\0\0\0\0\0\0{\"a\": 1}       ", 24);
  must_succeed_in(dir, "cc " BUILD_LIB_FLAGS " -I" AEC_BUILD_DIR "/include -I. api.c simple.c " AEC_BUILD_DIR
                       "/libaert.a " LINK_LIBS " -o api");
  CommandResult r = run_in(dir, "./api");
  ck_assert_msg(r.status == 0, "api exited %d:\n%s%s", r.status, r.out, r.err);
  ck_assert_str_eq(r.err, "");
  ck_assert_msg(strstr(r.out, "n=-1: model 'simple': encode of -1 samples; give 0 or more\n") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "batch 0: model 'simple': a batch of 0 samples; give 1 or more\n") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "NULL: model 'simple': encode of 3 samples with a NULL array\n") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "garbage: garbage.safetensors: ") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "absent: absent.safetensors: ") != NULL, "%s", r.out);
  ck_assert_msg(strstr(r.out, "still running\n") != NULL, "%s", r.out);
  command_result_free(&r);
  remove_tree(dir);
  free(dir), free(path), free(garbage);
}
END_TEST

// aec --lib --weights: the checkpoint in the C, opened with no file, gives
// encode's codes; a damaged one is an error value at open.
static const char weights_test[] =
    "#include <stdio.h>\n#include \"simple.h\"\n"
    "static float x[300 * SIMPLE_INPUT_SIZE], codes[300 * SIMPLE_CODE_SIZE];\n"
    "int main(void) {\n"
    "  FILE *f = fopen(\"train.csv\", \"r\");\n"
    "  for (int i = 0; i < 300 * SIMPLE_INPUT_SIZE; i++) if (fscanf(f, \" %f ,\", &x[i]) != 1) return 10;\n"
    "  fclose(f);\n"
    "  char err[256];\n"
    "  simple_t *m = simple_open_embedded(err, sizeof err);\n"
    "  if (!m) { printf(\"open: %s\\n\", err); return 1; }\n"
    "  if (simple_encode(m, x, 300, codes) != 0) return 2;\n"
    "  f = fopen(\"embedded.raw\", \"wb\");\n"
    "  fwrite(codes, sizeof codes, 1, f);\n"
    "  fclose(f);\n"
    "  simple_close(m);\n"
    "  return SIMPLE_EMBEDDED_WEIGHTS - 1;\n"
    "}\n";

START_TEST(weights_in_the_library_give_the_same_codes) {
  char *dir = trained_simple(), *path = path_in(dir, "w.c");
  write_file(path, weights_test, strlen(weights_test));
  must_succeed_in(dir, "rm simple.c simple.h && " AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR
                       "/examples/simple.ae --lib --weights simple.safetensors -o simple");
  must_succeed_in(dir, "mv simple.safetensors elsewhere.safetensors && cc " BUILD_LIB_FLAGS " -I" AEC_BUILD_DIR
                       "/include -I. w.c simple.c " AEC_BUILD_DIR "/libaert.a " LINK_LIBS " -o w && ./w");
  char *a_path = path_in(dir, "codes.npy"), *b_path = path_in(dir, "embedded.raw");
  size_t a_size, b_size, a_data;
  char *a = read_whole_file(a_path, &a_size), *b = read_whole_file(b_path, &b_size);
  const char *x = npy_data(a, a_size, &a_data);
  ck_assert_uint_eq(b_size, a_data);
  ck_assert_msg(memcmp(x, b, a_data) == 0, "the embedded weights' codes differ from encode's");
  // A damaged checkpoint compiles, and open says what is wrong.
  char *bad = path_in(dir, "bad.safetensors");
  write_file(bad, "\xff\0\0\0\0\0\0\0{}      ", 16);
  must_succeed_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/simple.ae --lib --weights bad.safetensors -o simple");
  must_succeed_in(dir, "cc " BUILD_LIB_FLAGS " -I" AEC_BUILD_DIR "/include -I. w.c simple.c " AEC_BUILD_DIR "/libaert.a "
                       LINK_LIBS " -o w");
  CommandResult r = run_in(dir, "./w");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.out, "open: bad.safetensors: truncated or not a checkpoint: the header length 255") != NULL, "%s",
                r.out);
  ck_assert_str_eq(r.err, "");
  command_result_free(&r);
  r = run_in(dir, AEC_BUILD_DIR "/aec " AEC_SOURCE_DIR "/examples/simple.ae --weights bad.safetensors");
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "--weights bad.safetensors puts a checkpoint into the library --lib writes: add --lib"), "%s", r.err);
  command_result_free(&r);
  free(a), free(b), free(a_path), free(b_path), free(path), free(bad);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(the_header_names_every_shape_with_the_models_name_as_prefix) {
  char *dir = make_temp_dir("embed-header"), *path = path_in(dir, "my-conv.ae");
  const char *text = "input x: [1, 8, 8]\n"
                     "net encoder = conv(4, 3, relu) -> maxpool(2)\n"
                     "net decoder = upsample(2) -> conv(1, 3, sigmoid)\n"
                     "loss recon = mse(decoder(encoder(x)), x)\n"
                     "train { batch 16 epochs 1 step minimize recon over encoder, decoder with adam() }\n";
  write_file(path, text, strlen(text));
  must_succeed_in(dir, AEC_BUILD_DIR "/aec my-conv.ae --lib");
  char *header_path = path_in(dir, "my-conv.h");
  char *header = read_whole_file(header_path, NULL);
  const char *want[] = {"MY_CONV_INPUT_SIZE = 64,", "MY_CONV_INPUT_C = 1, MY_CONV_INPUT_H = 8, MY_CONV_INPUT_W = 8,",
                        "MY_CONV_CODE_SIZE = 64,", "MY_CONV_CODE_C = 4, MY_CONV_CODE_H = 4, MY_CONV_CODE_W = 4,",
                        "MY_CONV_RECON_SIZE = 64,", "MY_CONV_BATCH = 16,",
                        "my_conv_t *my_conv_open(const char *checkpoint, char *err, size_t err_size);",
                        "int my_conv_score(my_conv_t *model, const float *x, int n, float *scores);",
                        "the mean over its values of (r - x)^2"};
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    ck_assert_msg(strstr(header, want[i]) != NULL, "no '%s' in:\n%s", want[i], header);
  // Both files compile clean, and the C has no main.
  must_succeed_in(dir, "cc " BUILD_LIB_FLAGS " -I" AEC_BUILD_DIR "/include -c my-conv.c -o my-conv.o");
  CommandResult r = run_in(dir, "nm my-conv.o");
  ck_assert_msg(strstr(r.out, " T my_conv_encode\n") != NULL && strstr(r.out, " main\n") == NULL, "%s", r.out);
  command_result_free(&r);
  // A name the #include cannot carry is refused, with what to give instead.
  r = run_in(dir, AEC_BUILD_DIR "/aec my-conv.ae --lib -o 'a b'");
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "--lib -o a b: the C includes the header by its name") != NULL, "%s", r.err);
  ck_assert_msg(strstr(r.err, "like -o my-conv") != NULL, "%s", r.err);
  command_result_free(&r);
  free(header), free(header_path), free(path);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *embed_suite(void) {
  Suite *s = suite_create("embed");
  TCase *c = tcase_create("library");
  tcase_set_timeout(c, 300);
  tcase_add_test(c, the_librarys_codes_equal_encodes_bit_for_bit);
  tcase_add_test(c, errors_come_back_as_values_and_batches_do_not_change_the_codes);
  tcase_add_test(c, the_header_names_every_shape_with_the_models_name_as_prefix);
  tcase_add_test(c, checkpoints_say_their_layout_and_old_ones_still_load);
  tcase_add_test(c, weights_in_the_library_give_the_same_codes);
  suite_add_tcase(s, c);
  return s;
}
