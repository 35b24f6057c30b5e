// test_owndata.c — bringing your own data: a folder of PNG images (gray or
// RGB, labels from class folders, an error naming the file for each bad
// one), labels beside a .npy (retrieve and probe on NumPy data), pixels
// 0–255 that bce would silently take (an error naming the file and value,
// --scale 255), a .npy of another shape (a warning naming both), and data
// paths in a .ae file relative to the file. The channels-last hint is in
// tests/bad/channels_last*.ae. Every file is written here.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "data.h"
#include "tests.h"

// ------------------------------------------------------------- PNG files
static void put_be32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8), p[3] = (unsigned char)v;
}

static void chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n) {
  unsigned char head[8];
  put_be32(head, n);
  memcpy(head + 4, type, 4);
  fwrite(head, 1, 8, f);
  if (n) fwrite(data, 1, n, f);
  uLong crc = crc32(crc32(0, (const Bytef *)type, 4), data ? data : (const Bytef *)"", n);  // NULL would restart it
  unsigned char tail[4];
  put_be32(tail, (uint32_t)crc);
  fwrite(tail, 1, 4, f);
}

// A PNG of w x h pixels, `channels` bytes each (1 gray, 3 RGB, 4 RGBA), pixel(x, y, c) giving the bytes.
static void write_png(const char *path, int w, int h, int channels, unsigned (*pixel)(int x, int y, int c, int seed),
                      int seed) {
  size_t row = 1 + (size_t)w * (size_t)channels, raw_size = row * (size_t)h;
  unsigned char *raw = malloc(raw_size);
  for (int y = 0; y < h; y++) {
    raw[(size_t)y * row] = 0;
    for (int x = 0; x < w; x++)
      for (int c = 0; c < channels; c++) raw[(size_t)y * row + 1 + (size_t)(x * channels + c)] = (unsigned char)pixel(x, y, c, seed);
  }
  uLongf packed_size = compressBound(raw_size);
  unsigned char *packed = malloc(packed_size);
  ck_assert_int_eq(compress(packed, &packed_size, raw, raw_size), Z_OK);
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  fwrite("\x89PNG\r\n\x1a\n", 1, 8, f);
  unsigned char ihdr[13] = {0};
  put_be32(ihdr, (uint32_t)w), put_be32(ihdr + 4, (uint32_t)h);
  ihdr[8] = 8, ihdr[9] = channels == 1 ? 0 : channels == 3 ? 2 : 6;
  chunk(f, "IHDR", ihdr, 13);
  chunk(f, "IDAT", packed, (uint32_t)packed_size);
  chunk(f, "IEND", NULL, 0);
  ck_assert_int_eq(fclose(f), 0);
  free(raw), free(packed);
}

static unsigned ramp(int x, int y, int c, int seed) { return (unsigned)(10 * x + 40 * y + 80 * c + seed) % 256; }
static unsigned opaque(int x, int y, int c, int seed) { return c == 3 ? 255 : ramp(x, y, c, seed); }
static unsigned gray_as_rgb(int x, int y, int c, int seed) { return ramp(x, y, 0, seed) + 0 * (unsigned)c; }

static char *mkdir_in(const char *dir, const char *name) {
  char *p = path_in(dir, name);
  ck_assert_int_eq(mkdir(p, 0700), 0);
  return p;
}

static void png_in(const char *dir, const char *name, int w, int h, int channels,
                   unsigned (*pixel)(int, int, int, int), int seed) {
  char *p = path_in(dir, name);
  write_png(p, w, h, channels, pixel, seed);
  free(p);
}

// Loads with the model's input `shape` (rank 0: no model), capturing what it printed.
static aert_dataset *load_as(const char *spec, int rank, int c, int h, int w, char **message) {
  aert_data_expect e = {.rank = rank, .shape = {c, h, w}};
  char what[128] = "";
  if (rank) {
    e.size = (size_t)(rank == 3 ? c * h * w : c);
    snprintf(what, sizeof what, "the model's input has %zu", e.size);
    e.what = what;
  }
  stderr_capture cap = stderr_begin();
  aert_dataset *d = aert_dataset_load_expecting(spec, &e);
  *message = stderr_end(&cap);
  return d;
}

static void expect_message(const char *message, const char *text) {
  ck_assert_msg(strstr(message, text) != NULL, "expected\n%s\nin\n%s", text, message);
}

static char *slash(const char *dir) {
  char *p = NULL;
  ck_assert_int_ge(asprintf(&p, "%s/", dir), 0);
  return p;
}

START_TEST(png_folder_with_class_folders) {
  char *dir = make_temp_dir("pngs");
  char *cat = mkdir_in(dir, "cat"), *dog = mkdir_in(dir, "dog");
  png_in(dog, "b.png", 5, 3, 1, ramp, 2);
  png_in(dog, "a.png", 5, 3, 1, ramp, 1);
  png_in(cat, "z.png", 5, 3, 3, gray_as_rgb, 7);  // RGB with R = G = B: gray
  png_in(cat, ".hidden", 1, 1, 1, ramp, 0);        // hidden names are skipped
  char *spec = slash(dir), *message = NULL;
  aert_dataset *d = load_as(spec, 3, 1, 3, 5, &message);
  ck_assert_msg(d != NULL, "%s", message);
  ck_assert_uint_eq(d->n, 3);
  ck_assert_int_eq(d->rank, 3);
  ck_assert_int_eq(d->shape[0], 1);
  ck_assert_int_eq(d->shape[1], 3);
  ck_assert_int_eq(d->shape[2], 5);
  // Class folders in name order (cat 0, dog 1), files in name order within each.
  ck_assert_int_eq(d->labels[0], 0);
  ck_assert_int_eq(d->labels[1], 1);
  ck_assert_int_eq(d->labels[2], 1);
  ck_assert_int_eq(d->n_classes, 2);
  ck_assert_str_eq(d->class_names[1], "dog");
  for (int y = 0; y < 3; y++)
    for (int x = 0; x < 5; x++) {
      ck_assert_float_eq_tol(d->x[y * 5 + x], ramp(x, y, 0, 7) / 255.0, 1e-6);       // cat/z.png
      ck_assert_float_eq_tol(d->x[15 + y * 5 + x], ramp(x, y, 0, 1) / 255.0, 1e-6);  // dog/a.png
      ck_assert_float_eq_tol(d->x[30 + y * 5 + x], ramp(x, y, 0, 2) / 255.0, 1e-6);  // dog/b.png
    }
  char note[4200];
  snprintf(note, sizeof note, "note: %s: 2 classes from its folders: 0 = cat, 1 = dog\n", spec);
  expect_message(message, note);
  aert_dataset_free(d), free(message);

  // For a 3-channel input the same images are RGB, a gray one repeated in each channel.
  d = load_as(spec, 3, 3, 3, 5, &message);
  ck_assert_msg(d != NULL, "%s", message);
  ck_assert_uint_eq(d->sample_size, 45);
  ck_assert_float_eq(d->x[2 * 15 + 7], d->x[7]);
  aert_dataset_free(d), free(message);

  // RGB images without a model: 3 channels, in planes.
  char *rgb = make_temp_dir("rgbpngs");
  png_in(rgb, "1.png", 2, 2, 3, ramp, 0);
  png_in(rgb, "2.png", 2, 2, 4, opaque, 0);  // RGBA: the alpha channel dropped
  char *rgb_spec = slash(rgb);
  d = load_as(rgb_spec, 0, 0, 0, 0, &message);
  ck_assert_msg(d != NULL, "%s", message);
  ck_assert_int_eq(d->shape[0], 3);
  ck_assert_ptr_null(d->labels);
  ck_assert_float_eq_tol(d->x[4 * 2 + 1], ramp(1, 0, 2, 0) / 255.0, 1e-6);  // blue plane, pixel (1, 0)
  aert_dataset_free(d), free(message);
  remove_tree(rgb);
  char *mono = make_temp_dir("graypngs"), *mono_spec = slash(mono);  // gray without a model: 1 channel
  png_in(mono, "1.png", 2, 2, 1, ramp, 0);
  d = load_as(mono_spec, 0, 0, 0, 0, &message);
  ck_assert_msg(d != NULL, "%s", message);
  ck_assert_int_eq(d->shape[0], 1);
  ck_assert_uint_eq(d->sample_size, 4);
  aert_dataset_free(d), free(message);
  remove_tree(mono);
  free(mono), free(mono_spec);
  free(cat), free(dog), free(spec), free(rgb), free(rgb_spec);
  remove_tree(dir);
  free(dir);
}
END_TEST

// One bad folder: the loader refuses it with `text` in its message.
static void expect_refused(const char *spec, int rank, int c, int h, int w, const char *text) {
  char *message = NULL;
  aert_dataset *d = load_as(spec, rank, c, h, w, &message);
  ck_assert_msg(d == NULL, "%s was accepted", spec);
  expect_message(message, text);
  free(message);
}

START_TEST(png_folder_errors_name_the_file) {
  char *dir = make_temp_dir("badpngs"), text[8192];
  char *mixed = mkdir_in(dir, "mixed"), *spec = slash(mixed);
  png_in(mixed, "a.png", 4, 4, 1, ramp, 0);
  png_in(mixed, "b.png", 4, 5, 1, ramp, 0);
  snprintf(text, sizeof text, "error: %sb.png: the image is 4 x 5 pixels, but %sa.png is 4 x 4; every image of a "
           "folder data set has the same size\n", spec, spec);
  expect_refused(spec, 3, 1, 4, 4, text);
  free(spec);

  char *other = mkdir_in(dir, "other"), *notes = path_in(other, "notes.txt");
  png_in(other, "a.png", 4, 4, 1, ramp, 0);
  write_file(notes, "hello\n", 6);
  spec = slash(other);
  snprintf(text, sizeof text, "error: %snotes.txt: not a PNG file (it does not start with PNG's signature); a folder "
           "data set holds PNG images, in class sub-folders or not\n", spec);
  expect_refused(spec, 3, 1, 4, 4, text);
  free(spec);

  char *empty = mkdir_in(dir, "empty");
  spec = slash(empty);
  snprintf(text, sizeof text, "error: %s: the folder holds no PNG images (nor class folders of them)\n", spec);
  expect_refused(spec, 3, 1, 4, 4, text);
  free(spec);

  char *sized = mkdir_in(dir, "sized");
  png_in(sized, "a.png", 32, 32, 1, ramp, 0);
  spec = slash(sized);
  snprintf(text, sizeof text, "error: %sa.png: the image is 32 x 32 pixels (width x height), the model's input has "
           "784: height 28, width 28; make every image 28 x 28\n", spec);
  expect_refused(spec, 3, 1, 28, 28, text);
  snprintf(text, sizeof text, "error: %sa.png: the image is 32 x 32 pixels (1024 values gray, 3072 RGB), the "
           "model's input has 784\n", spec);
  expect_refused(spec, 1, 784, 0, 0, text);
  free(spec);

  char *color = mkdir_in(dir, "color");
  png_in(color, "a.png", 2, 2, 3, ramp, 0);
  spec = slash(color);
  snprintf(text, sizeof text, "error: %sa.png: a color image (the pixel at row 0, column 0 is R 0, G 80, B 160), but "
           "the model's input has 4: one channel, gray; convert the images to grayscale, or give the model's input 3 "
           "channels\n", spec);
  expect_refused(spec, 3, 1, 2, 2, text);
  free(spec);

  // A file beside class folders; a FIFO among the images (never opened blocking).
  char *beside = mkdir_in(dir, "beside"), *sub = mkdir_in(beside, "a");
  png_in(sub, "1.png", 2, 2, 1, ramp, 0);
  png_in(beside, "stray.png", 2, 2, 1, ramp, 0);
  spec = slash(beside);
  expect_refused(spec, 3, 1, 2, 2, "stray.png: a file beside class folders");
  free(spec);
  char *fifo = path_in(sub, "2.png");
  ck_assert_int_eq(mkfifo(fifo, 0600), 0);
  char *subspec = slash(sub);
  expect_refused(subspec, 3, 1, 2, 2, "2.png: is a FIFO (named pipe), not a data file");
  // A folder without the trailing slash is refused as directories are, with the hint.
  snprintf(text, sizeof text, "error: %s: is a directory, not a data file (a folder of PNG images is named with a "
           "trailing slash: %s/)\n", sub, sub);
  expect_refused(sub, 3, 1, 2, 2, text);
  free(mixed), free(other), free(notes), free(empty), free(sized), free(color), free(beside), free(sub), free(fifo);
  free(subspec);
  remove_tree(dir);
  free(dir);
}
END_TEST

// -------------------------------------------------------------- .npy files

START_TEST(npy_labels_beside_the_data) {
  char *dir = make_temp_dir("npylabels");
  float x[6 * 4];
  for (int i = 0; i < 24; i++) x[i] = (float)i / 24;
  int64_t labels[6] = {2, 0, 1, 2, 0, 1};
  int32_t short_labels[5] = {0};
  char *a = path_in(dir, "a.npy"), *al = path_in(dir, "a.labels.npy");
  char *b = path_in(dir, "b.npy"), *bl = path_in(dir, "b.labels.npy"), *c = path_in(dir, "c.npy");
  write_npy(a, "<f4", "(6, 4)", x, sizeof x);
  write_npy(al, "<i8", "(6,)", labels, sizeof labels);
  write_npy(b, "<f4", "(6, 4)", x, sizeof x);
  write_npy(bl, "<i4", "(5,)", short_labels, sizeof short_labels);
  write_npy(c, "<f4", "(6, 4)", x, sizeof x);
  aert_dataset *d = aert_dataset_load(a, 4);
  ck_assert_ptr_nonnull(d);
  ck_assert_ptr_nonnull(d->labels);
  for (int i = 0; i < 6; i++) ck_assert_int_eq(d->labels[i], labels[i]);
  aert_dataset_free(d);
  d = aert_dataset_load(c, 4);  // no labels file: none
  ck_assert_ptr_nonnull(d);
  ck_assert_ptr_null(d->labels);
  aert_dataset_free(d);
  char *message = NULL, text[8192];
  d = load_as(b, 1, 4, 0, 0, &message);
  ck_assert_ptr_null(d);
  snprintf(text, sizeof text, "error: %s: 5 labels for the 6 samples of %s\n", bl, b);
  expect_message(message, text);
  free(message);
  free(a), free(al), free(b), free(bl), free(c);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(npy_of_another_shape_is_said_to_be_reshaped) {
  char *dir = make_temp_dir("npyshape");
  float x[5 * 8 * 8] = {0};
  char *grid = path_in(dir, "grid.npy"), *hwc = path_in(dir, "hwc.npy"), *flat = path_in(dir, "flat.npy");
  write_npy(grid, "<f4", "(5, 8, 8)", x, sizeof x);
  write_npy(hwc, "<f4", "(5, 4, 4, 4)", x, 5 * 64 * sizeof(float));
  write_npy(flat, "<f4", "(5, 64)", x, sizeof x);
  char *message = NULL, text[8192];
  aert_dataset *d = load_as(grid, 1, 64, 0, 0, &message);
  ck_assert_ptr_nonnull(d);
  snprintf(text, sizeof text, "warning: %s: each sample is [8, 8]; it is flattened to the model's input [64]\n", grid);
  expect_message(message, text);
  aert_dataset_free(d), free(message);
  d = load_as(hwc, 3, 4, 4, 4, &message);  // [4, 4, 4] is [4, 4, 4]: nothing to say
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(message, "");
  aert_dataset_free(d), free(message);
  d = load_as(grid, 3, 1, 8, 8, &message);  // [8, 8] as [1, 8, 8]: the same but for an axis of 1
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(message, "");
  aert_dataset_free(d), free(message);
  d = load_as(flat, 3, 1, 8, 8, &message);  // flat data has no shape to contradict
  ck_assert_str_eq(message, "");
  aert_dataset_free(d), free(message);
  d = load_as(grid, 3, 4, 4, 4, &message);
  snprintf(text, sizeof text, "warning: %s: each sample is [8, 8], read as the model's input [4, 4, 4] in C order "
           "(reshaped, not transposed)\n", grid);
  expect_message(message, text);
  aert_dataset_free(d), free(message);
  free(grid), free(hwc), free(flat);
  remove_tree(dir);
  free(dir);
}
END_TEST

// ---------------------------------------------------- through the program
static char *prog;  // ./m: input [16], bce on the input; train.csv in [0, 1)

static const char *bce_model =
    "input x: [16]\n"
    "net encoder = dense(8, relu)\n"
    "net decoder = dense(16, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 8 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.01) }\n";

static void setup_program(void) { prog = make_program_dir("owndata", bce_model, 40, 16); }

static void teardown_program(void) {
  remove_tree(prog);
  free(prog);
}

// A Kaggle-style CSV: a header, a label column, pixels from 0 to 255; the
// largest pixel in *most, the first above 1 (in sample 0) at *first.
static void write_kaggle_csv(const char *path, int rows, int *most, int *first) {
  *most = 0, *first = -1;
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "label");
  for (int j = 1; j <= 16; j++) fprintf(f, ",pixel%d", j);
  fprintf(f, "\n");
  for (int i = 0; i < rows; i++) {
    fprintf(f, "%d", i % 10);
    for (int j = 0; j < 16; j++) {
      int v = (i * 37 + j * 101) % 256;
      fprintf(f, ",%d", v);
      if (v > *most) *most = v;
      if (i == 0 && v > 1 && *first < 0) *first = j;
    }
    fprintf(f, "\n");
  }
  ck_assert_int_eq(fclose(f), 0);
}

START_TEST(pixels_0_to_255_are_an_error_for_bce_and_scale_fixes_them) {
  char *csv = path_in(prog, "kaggle.csv"), text[1024];
  int most, first;
  write_kaggle_csv(csv, 40, &most, &first);
  CommandResult r = run_in(prog, "./m train --data kaggle.csv --epochs 1");
  ck_assert_int_eq(r.status, 1);
  snprintf(text, sizeof text, "m: warning: kaggle.csv: the values are whole numbers up to %d, read as they are (not "
           "scaled to [0, 1]); pixels from 0 to 255 want --scale 255\n", most);
  expect_message(r.err, text);
  snprintf(text, sizeof text, "m: error: kaggle.csv: sample 0, value %d is %d, outside [0, 1]; the model's bce "
           "(m.ae:4) takes the input as its target, which must lie in [0, 1] (pixels from 0 to 255: --scale 255)\n",
           first, first * 101 % 256);
  expect_message(r.err, text);
  ck_assert_msg(!strstr(r.out, "train.recon"), "it trained:\n%s", r.out);
  command_result_free(&r);
  r = run_in(prog, "./m train --data kaggle.csv --scale 255 --epochs 1 --checkpoint m.safetensors");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(!strstr(r.err, "warning"), "%s", r.err);
  double recon = figure(r.out, "train.recon");
  ck_assert_msg(recon > 0 && recon < 1, "train.recon %g", recon);
  command_result_free(&r);
  // eval takes --scale as every command reading data does.
  r = run_in(prog, "./m eval --checkpoint m.safetensors --data kaggle.csv --scale 255");
  ck_assert_msg(r.status == 0, "%s", r.err);
  command_result_free(&r);
  free(csv);
}
END_TEST

START_TEST(retrieve_and_probe_on_npy_with_labels) {
  enum { N = 60 };
  float x[N * 16];
  int32_t labels[N];
  for (int i = 0; i < N; i++) {
    labels[i] = i % 3;
    for (int j = 0; j < 16; j++) x[i * 16 + j] = (float)((j % 3 == labels[i]) ? 0.9 : 0.1) + (float)((i * 7 + j) % 5) / 50;
  }
  char *p = path_in(prog, "x.npy"), *l = path_in(prog, "x.labels.npy");
  write_npy(p, "<f4", "(60, 16)", x, sizeof x);
  write_npy(l, "<i4", "(60,)", labels, sizeof labels);
  must_succeed_in(prog, "./m train --data x.npy --epochs 3 --checkpoint x.safetensors");
  CommandResult r = run_in(prog, "./m retrieve --checkpoint x.safetensors --db x.npy --queries x.npy -k 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double raw = figure(r.out, "raw_precision@5");
  ck_assert_msg(raw > 0.9, "raw precision %g: the labels were not read", raw);
  command_result_free(&r);
  r = run_in(prog, "./m probe --checkpoint x.safetensors --data x.npy --test x.npy --labels-fraction 0.5 --epochs 5");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(isfinite(figure(r.out, "raw_probe_accuracy")), "%s", r.out);
  command_result_free(&r);
  free(p), free(l);
}
END_TEST

// data/test paths in a .ae file are relative to the file, as #include "..." is.
START_TEST(data_paths_are_relative_to_the_ae_file) {
  char *dir = make_temp_dir("aepaths");
  must_succeed_in(dir, "mkdir -p proj/d run");
  char *src = path_in(prog, "train.csv"), *copy = NULL;
  ck_assert_int_ge(asprintf(&copy, "cp %s proj/d/train.csv && cp %s proj/d/test.csv", src, src), 0);
  must_succeed_in(dir, copy);
  char *ae = path_in(dir, "proj/m.ae");
  const char *text = "input x: [16]\n"
                     "net encoder = dense(8, relu)\n"
                     "net decoder = dense(16, sigmoid)\n"
                     "loss recon = bce(decoder(encoder(x)), x)\n"
                     "train { data \"d/train.csv\" test \"d/test.csv\" batch 8 epochs 1 }\n";
  write_file(ae, text, strlen(text));
  must_succeed_in(dir, AEC_BUILD_DIR "/aec proj/m.ae -o m");
  CommandResult r = run_in(dir, "./m train");
  ck_assert_msg(r.status == 0, "%s", r.err);
  expect_message(r.err, "m: training on proj/d/train.csv (40 samples)");
  ck_assert_msg(isfinite(figure(r.out, "test.recon")), "%s", r.out);
  command_result_free(&r);
  // --data on the command line stays relative to the working directory.
  r = run_in(dir, "cd run && ../m train --data d/train.csv");
  ck_assert_int_eq(r.status, 1);
  expect_message(r.err, "m: error: d/train.csv: no such file\n");
  command_result_free(&r);
  // The path reaches the generated C through the writer's escaping.
  must_succeed_in(dir, "mkdir -p 'odd\\dir' && cp proj/m.ae 'odd\\dir/p.ae' && " AEC_BUILD_DIR
                       "/aec 'odd\\dir/p.ae' -o p.c");
  char *c_path = path_in(dir, "p.c"), *c_text = read_whole_file(c_path, NULL);
  expect_message(c_text, ".default_data = \"odd\\\\dir/d/train.csv\",\n");
  free(c_path), free(c_text);
  free(src), free(copy), free(ae);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *owndata_suite(void) {
  Suite *s = suite_create("owndata");
  TCase *units = tcase_create("loaders");
  tcase_set_timeout(units, 60);
  tcase_add_test(units, png_folder_with_class_folders);
  tcase_add_test(units, png_folder_errors_name_the_file);
  tcase_add_test(units, npy_labels_beside_the_data);
  tcase_add_test(units, npy_of_another_shape_is_said_to_be_reshaped);
  suite_add_tcase(s, units);
  TCase *programs = tcase_create("programs");
  tcase_set_timeout(programs, 300);
  tcase_add_unchecked_fixture(programs, setup_program, teardown_program);
  tcase_add_test(programs, pixels_0_to_255_are_an_error_for_bce_and_scale_fixes_them);
  tcase_add_test(programs, retrieve_and_probe_on_npy_with_labels);
  tcase_add_test(programs, data_paths_are_relative_to_the_ae_file);
  suite_add_tcase(s, programs);
  return s;
}
