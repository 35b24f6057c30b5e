// test_generative.c — the commands for generative models in generated
// programs: decode (codes from encode's CSV to a PNG grid or a .npy array),
// sample (codes from the model's prior), interpolate (a strip between two
// samples' codes), manifold (a 2-d code's grid at the prior's quantiles),
// and eval's parts of a loss that is a sum; a variational model's encode
// (the mean) and encode --sample; their bad input (no --codes,
// codes of the wrong width, --from out of range, manifold on a 3-d code,
// sample without a prior, decode past a skip connection); `code` and
// `reconstruction` named inside a functional net's body.
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

#define AEC AEC_BUILD_DIR "/aec"

// An adversarial autoencoder with a 2-d code matched to gaussian([2]); its
// input [16] is drawn as 4 x 4 tiles (14 x 14 pixels each with the gap).
static const char *const model_text =
    "input x: [16]\n"
    "net encoder = dense(8, relu) -> dense(2)\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "net critic = dense(8, relu) -> dense(1, sigmoid)\n"
    "z = encoder(x)\n"
    "prior = gaussian([2])\n"
    "loss recon = bce(decoder(z), x) + 0.001 * l2(encoder, decoder)\n"
    "loss disc = bce(critic(prior), 1) + bce(critic(z), 0)\n"
    "loss gen = bce(critic(z), 1)\n"
    "loss mixed = 2 * mse(decoder(z), x) - 0.5 * mean(z) / 4\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 2\n"
    "  step minimize recon over encoder, decoder with adam(lr=0.01)\n"
    "  step minimize disc over critic with adam(lr=0.01)\n"
    "  step minimize gen over encoder with adam(lr=0.01) }\n";

// A plain autoencoder with a 3-d code: no prior, no manifold.
static const char *const plain_text =
    "input x: [16]\n"
    "net encoder = dense(8, relu) -> dense(3)\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 1 }\n";

// `code` named in a net's body, and a skip connection from the input past it.
static const char *const skip_text =
    "input x: [16]\n"
    "net autoencoder(v) {\n"
    "  h = dense(v, 8, relu)\n"
    "  code = dense(h, 2)\n"
    "  return dense(dense(code, 16) + v, 16, sigmoid)\n"
    "}\n"
    "loss recon = bce(autoencoder(x), x)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 1 }\n";

// `code` and `reconstruction` named in a net's body, no net called encoder.
static const char *const body_text =
    "input x: [16]\n"
    "net autoencoder(v) {\n"
    "  h = dense(v, 8, relu)\n"
    "  code = dense(h, 2)\n"
    "  reconstruction = dense(code, 16, sigmoid)\n"
    "  return reconstruction\n"
    "}\n"
    "loss recon = bce(autoencoder(x), x) + 0.01 * l2(autoencoder)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 1 }\n";

// A denoising autoencoder: clip stays at inference, so the reconstruction is
// decoder(encoder(clip(x, 0, 1))) while the code is encoder(x); decode finds
// the code's computation in it.
static const char *const denoise_text =
    "input x: [16]\n"
    "noisy = clip(gaussian_noise(x, 0.3), 0, 1)\n"
    "net encoder = dense(8, relu) -> dense(3)\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "loss recon = bce(decoder(encoder(noisy)), x)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 1 }\n";

// A variational autoencoder: two results, sample_normal, kl_normal.
static const char *const vae_text =
    "input x: [16]\n"
    "net encoder(v) {\n"
    "  h = dense(v, 8, relu)\n"
    "  return dense(h, 2), dense(h, 2)\n"
    "}\n"
    "net decoder = dense(8, relu) -> dense(16, sigmoid)\n"
    "mean, logvar = encoder(x)\n"
    "code = sample_normal(mean, logvar)\n"
    "loss elbo = 16 * bce(decoder(code), x) + kl_normal(mean, logvar)\n"
    "train { data \"train.csv\" test \"train.csv\" batch 16 epochs 2 }\n";

enum { N = 200, SIZE = 16 };
#define TILE (4 * aert_image_scale(4, 4) + 2)  // a 4 x 4 image scaled up, and the gap

static char *dir;  // m (the adversarial model, trained: k.safetensors), p, s and b with theirs

static void write_model(const char *name, const char *text) {
  char *path = path_in(dir, name);
  write_file(path, text, strlen(text));
  free(path);
}

static void setup(void) {
  dir = make_program_dir("generative", model_text, N, SIZE);
  write_model("p.ae", plain_text);
  write_model("s.ae", skip_text);
  write_model("b.ae", body_text);
  write_model("n.ae", denoise_text);
  write_model("v.ae", vae_text);
  must_succeed_in(dir, "./m train --checkpoint k.safetensors > /dev/null");
  must_succeed_in(dir, AEC " p.ae -o p && ./p train --checkpoint p.safetensors > /dev/null");
  must_succeed_in(dir, AEC " s.ae -o s && ./s train --checkpoint s.safetensors > /dev/null");
  must_succeed_in(dir, AEC " b.ae -o b && ./b train --checkpoint b.safetensors > /dev/null");
  must_succeed_in(dir, AEC " n.ae -o n && ./n train --checkpoint n.safetensors > /dev/null");
  must_succeed_in(dir, AEC " v.ae -o v && ./v train --checkpoint v.safetensors > /dev/null");
  must_succeed_in(dir, "./m encode --checkpoint k.safetensors --data train.csv -o codes.csv 2> /dev/null");
}

static void teardown(void) {
  remove_tree(dir);
  free(dir);
}

// ---------------------------------------------------------------- helpers
static void expect_png(const char *name, int width, int height) {
  char *path = path_in(dir, name);
  int w = 0, h = 0;
  ck_assert_msg(read_png_size(path, &w, &h), "%s is not a PNG file", name);
  ck_assert_msg(w == width && h == height, "%s is %d x %d pixels, want %d x %d", name, w, h, width, height);
  free(path);
}

// A float32 .npy file: its shape (rank and dims) and values, checked against
// its size; the values malloc'd.
static float *read_npy(const char *name, int *rank, size_t dims[4]) {
  char *path = path_in(dir, name);
  size_t size;
  char *bytes = read_whole_file(path, &size);
  free(path);
  ck_assert_msg(size > 10 && memcmp(bytes, "\x93NUMPY\x01\x00", 8) == 0, "%s is no .npy file", name);
  size_t header = 10 + (size_t)(unsigned char)bytes[8] + 256 * (size_t)(unsigned char)bytes[9];
  ck_assert_msg(strstr(bytes + 10, "'descr': '<f4'") != NULL, "%s is not float32", name);
  const char *shape = strstr(bytes + 10, "'shape': (");
  ck_assert(shape != NULL);
  shape += strlen("'shape': (");
  *rank = 0;
  size_t total = 1;
  while (*shape >= '0' && *shape <= '9' && *rank < 4) {
    char *end;
    dims[*rank] = strtoul(shape, &end, 10);
    total *= dims[(*rank)++];
    shape = end;
    while (*shape == ',' || *shape == ' ') shape++;
  }
  ck_assert_msg(size == header + total * 4, "%s: %zu bytes, want %zu", name, size, header + total * 4);
  float *values = malloc(total * sizeof *values + 1);
  memcpy(values, bytes + header, total * sizeof *values);
  free(bytes);
  return values;
}

static void expect_rows_equal(const float *a, size_t row_a, const float *b, size_t row_b, const char *what) {
  for (size_t i = 0; i < SIZE; i++)
    ck_assert_msg(fabsf(a[row_a * SIZE + i] - b[row_b * SIZE + i]) < 1e-5, "%s: element %zu: %g against %g", what, i,
                  (double)a[row_a * SIZE + i], (double)b[row_b * SIZE + i]);
}

static CommandResult expect_failure(const char *command, int status, const char *a, const char *b) {
  CommandResult r = run_in(dir, command);
  ck_assert_msg(r.status == status, "%s: exit %d, want %d\n%s", command, r.status, status, r.err);
  ck_assert_msg(strstr(r.err, a) && (!b || strstr(r.err, b)), "%s: the message lacks '%s'%s%s:\n%s", command, a,
                b ? " or " : "", b ? b : "", r.err);
  ck_assert_msg(r.out[0] == 0, "%s: standard output is for figures only:\n%s", command, r.out);
  return r;
}

// ------------------------------------------------------------------ tests
START_TEST(decode_draws_codes_as_a_grid_and_an_array) {
  must_succeed_in(dir, "./m decode --checkpoint k.safetensors --codes codes.csv -o d.png");
  int cols = 15, rows = 14;  // 200 tiles: ceil(sqrt(200)) columns
  expect_png("d.png", cols * TILE + 2, rows * TILE + 2);
  must_succeed_in(dir, "./m decode --checkpoint k.safetensors --codes codes.csv -n 5 -o d.npy");
  int rank;
  size_t dims[4];
  float *decoded = read_npy("d.npy", &rank, dims);
  ck_assert_msg(rank == 2 && dims[0] == 5 && dims[1] == SIZE, "d.npy has rank %d", rank);
  for (size_t i = 0; i < 5 * SIZE; i++) ck_assert(decoded[i] > 0 && decoded[i] < 1);  // a sigmoid's
  // interpolate from sample 0 to sample 1 in two steps decodes their codes: decode's rows 0 and 1.
  must_succeed_in(dir, "./m interpolate --checkpoint k.safetensors --data train.csv --from 0 --to 1 --steps 2 -o i.npy");
  float *ends = read_npy("i.npy", &rank, dims);
  ck_assert(rank == 2 && dims[0] == 2 && dims[1] == SIZE);
  expect_rows_equal(ends, 0, decoded, 0, "sample 0");
  expect_rows_equal(ends, 1, decoded, 1, "sample 1");
  free(ends);
  free(decoded);
  // The codes as .npy too: the first rows of encode's array, decoded alike.
  must_succeed_in(dir, "./m encode --checkpoint k.safetensors --data train.csv -o codes.npy 2> /dev/null"
                       " && ./m decode --checkpoint k.safetensors --codes codes.npy -n 3 -o d3.npy");
  float *again = read_npy("d3.npy", &rank, dims), *first = read_npy("d.npy", &rank, dims);
  expect_rows_equal(again, 2, first, 2, "codes.npy against codes.csv");
  free(again), free(first);
}
END_TEST

// A denoising model decodes too, and decoding its codes gives what interpolate's ends give.
START_TEST(a_denoising_model_decodes) {
  must_succeed_in(dir, "./n encode --checkpoint n.safetensors --data train.csv -o n.csv 2> /dev/null && "
                       "./n decode --checkpoint n.safetensors --codes n.csv -n 4 -o n.npy && "
                       "./n interpolate --checkpoint n.safetensors --data train.csv --from 0 --to 3 --steps 2 -o ni.npy");
  int rank;
  size_t dims[4];
  float *decoded = read_npy("n.npy", &rank, dims), *ends = read_npy("ni.npy", &rank, dims);
  expect_rows_equal(ends, 0, decoded, 0, "sample 0");
  expect_rows_equal(ends, 1, decoded, 3, "sample 3");
  free(decoded), free(ends);
  CommandResult r = run_command("cd %s && %s n.ae -o n.c && sed -n '/^static void decode/,/^}/p' n.c", dir, AEC);
  ck_assert_msg(r.status == 0 && strstr(r.out, "decoder_dense_1") && !strstr(r.out, "clip") && !strstr(r.out, "encoder"),
                "decode runs the decoder alone:\n%s", r.out);
  command_result_free(&r);
}
END_TEST

START_TEST(sample_draws_from_the_prior_by_seed) {
  CommandResult r = run_in(dir, "./m sample --checkpoint k.safetensors -n 10 -o s.png");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, "gaussian([2], std=1)") != NULL, "sample names its prior:\n%s", r.err);
  command_result_free(&r);
  expect_png("s.png", 4 * TILE + 2, 3 * TILE + 2);  // 10 tiles: 4 columns, 3 rows
  must_succeed_in(dir, "./m sample --checkpoint k.safetensors -n 6 --seed 3 -o a.npy && "
                       "./m sample --checkpoint k.safetensors -n 6 --seed 3 -o b.npy && "
                       "./m sample --checkpoint k.safetensors -n 6 --seed 4 -o c.npy");
  int rank;
  size_t dims[4];
  float *a = read_npy("a.npy", &rank, dims), *b = read_npy("b.npy", &rank, dims), *c = read_npy("c.npy", &rank, dims);
  ck_assert(rank == 2 && dims[0] == 6 && dims[1] == SIZE);
  ck_assert_msg(memcmp(a, b, 6 * SIZE * sizeof *a) == 0, "the same seed draws the same samples");
  ck_assert_msg(memcmp(a, c, 6 * SIZE * sizeof *a) != 0, "another seed draws other samples");
  free(a), free(b), free(c);
}
END_TEST

START_TEST(interpolate_draws_one_strip) {
  must_succeed_in(dir, "./m interpolate --checkpoint k.safetensors --data train.csv --from 3 --to 7 --steps 7 -o i.png");
  expect_png("i.png", 7 * TILE + 2, TILE + 2);
  must_succeed_in(dir, "./m interpolate --checkpoint k.safetensors --data train.csv --from 3 --to 3 -o same.npy");
  int rank;
  size_t dims[4];
  float *same = read_npy("same.npy", &rank, dims);
  ck_assert(rank == 2 && dims[0] == 10 && dims[1] == SIZE);  // --steps defaults to 10
  for (size_t k = 1; k < 10; k++) expect_rows_equal(same, k, same, 0, "a line from a code to itself");
  free(same);
  // train's --steps is still train's (the two options share a name).
  must_succeed_in(dir, "./m train --steps recon --epochs 1 --checkpoint t.safetensors > /dev/null 2>&1");
  expect_failure("./m interpolate --checkpoint k.safetensors --data train.csv --from 0 --to 1 --steps recon -o x.png", 2,
                 "--steps needs an integer of at least 2", NULL);
}
END_TEST

START_TEST(manifold_decodes_the_prior_quantiles) {
  must_succeed_in(dir, "./m manifold --checkpoint k.safetensors -n 5 -o mf.png");
  expect_png("mf.png", 5 * TILE + 2, 5 * TILE + 2);
  must_succeed_in(dir, "./m manifold --checkpoint k.safetensors -n 5 -o mf.npy");
  // Tile (row 0, column 0) is z = (q(0.1), q(0.9)), the centre (row 2, column 2) z = (0, 0): N(0, 1)'s quantiles.
  char *path = path_in(dir, "corner.csv");
  const char *codes = "-1.2815515655446004,1.2815515655446004\n0,0\n";
  write_file(path, codes, strlen(codes));
  free(path);
  must_succeed_in(dir, "./m decode --checkpoint k.safetensors --codes corner.csv -o corner.npy");
  int rank;
  size_t dims[4];
  float *grid = read_npy("mf.npy", &rank, dims), *corner = read_npy("corner.npy", &rank, dims);
  expect_rows_equal(grid, 0, corner, 0, "the top left tile");
  expect_rows_equal(grid, 2 * 5 + 2, corner, 1, "the centre tile");
  free(grid), free(corner);
}
END_TEST

START_TEST(eval_prints_the_parts_of_each_sum) {
  CommandResult r = run_in(dir, "./m eval --checkpoint k.safetensors --data train.csv");
  ck_assert_msg(r.status == 0, "%s", r.err);
  double recon = figure(r.out, "recon"), bce = figure(r.out, "recon.bce"), l2 = figure(r.out, "recon.l2");
  ck_assert_msg(isfinite(bce) && isfinite(l2) && fabs(bce + l2 - recon) < 1e-6 * fabs(recon),
                "recon %g = recon.bce %g + recon.l2 %g:\n%s", recon, bce, l2, r.out);
  ck_assert_msg(l2 > 0 && l2 < 0.1 * bce, "recon.l2 %g includes its factor 0.001", l2);
  double disc = figure(r.out, "disc"), first = figure(r.out, "disc.bce"), second = figure(r.out, "disc.bce_2");
  ck_assert_msg(fabs(first + second - disc) < 1e-6 * fabs(disc), "disc %g = %g + %g", disc, first, second);
  double mixed = figure(r.out, "mixed"), mse = figure(r.out, "mixed.mse"), mean = figure(r.out, "mixed.mean");
  ck_assert_msg(fabs(mse + mean - mixed) < 1e-6 * (fabs(mixed) + 1e-3), "mixed %g = %g + %g (signs and factors)", mixed,
                mse, mean);
  ck_assert_msg(isnan(figure(r.out, "gen.bce")), "a loss of one term has no parts:\n%s", r.out);
  // Each part follows its loss.
  const char *at_recon = strstr(r.out, "recon "), *at_part = strstr(r.out, "recon.bce "), *at_disc = strstr(r.out, "disc ");
  ck_assert(at_recon && at_part && at_disc && at_recon < at_part && at_part < at_disc);
  command_result_free(&r);
  // --seed keys the prior's samples the critic's loss draws: the same seed the same figures, another another.
  CommandResult a = run_in(dir, "./m eval --checkpoint k.safetensors --data train.csv --seed 5");
  CommandResult b = run_in(dir, "./m eval --checkpoint k.safetensors --data train.csv --seed 5 --batch 7");
  CommandResult c = run_in(dir, "./m eval --checkpoint k.safetensors --data train.csv --seed 6");
  ck_assert_msg(a.status == 0 && b.status == 0 && c.status == 0, "%s%s%s", a.err, b.err, c.err);
  ck_assert_double_eq_tol(figure(a.out, "disc"), figure(b.out, "disc"), 1e-6);
  ck_assert_msg(figure(a.out, "disc") != figure(c.out, "disc"), "--seed 5 and 6 drew the same prior samples");
  ck_assert_double_eq(figure(a.out, "recon"), figure(c.out, "recon"));  // draws nothing
  command_result_free(&a), command_result_free(&b), command_result_free(&c);
}
END_TEST

START_TEST(names_in_a_net_body_are_seen) {
  // b has no net `encoder`: its code is the `code` of autoencoder's body, its reconstruction the body's.
  CommandResult r = run_in(dir, "./b encode --checkpoint b.safetensors --data train.csv -o b.csv");
  ck_assert_msg(r.status == 0 && strstr(r.err, "200 codes of 2 values"), "%s", r.err);
  command_result_free(&r);
  must_succeed_in(dir, "./b decode --checkpoint b.safetensors --codes b.csv -n 4 -o b.png");
  expect_png("b.png", 2 * TILE + 2, 2 * TILE + 2);
  r = run_in(dir, "./b eval --checkpoint b.safetensors --data train.csv");
  ck_assert_msg(r.status == 0 && isfinite(figure(r.out, "recon.bce")) && isfinite(figure(r.out, "recon.l2")), "%s", r.out);
  command_result_free(&r);
  r = run_in(dir, "./s encode --checkpoint s.safetensors --data train.csv -o s.csv");
  ck_assert_msg(r.status == 0 && strstr(r.err, "200 codes of 2 values"), "%s", r.err);
  command_result_free(&r);
}
END_TEST

// A variational code: encode gives the mean (the same every run), encode
// --sample draws around it by seed, sample draws N(0, 1) codes, and eval's
// parts are the reconstruction and the KL term.
START_TEST(a_variational_model_encodes_the_mean_or_draws) {
  must_succeed_in(dir, "./v encode --checkpoint v.safetensors --data train.csv -o m1.csv 2> /dev/null");
  must_succeed_in(dir, "./v encode --checkpoint v.safetensors --data train.csv -o m2.csv --batch 7 2> /dev/null");
  must_succeed_in(dir, "./v encode --checkpoint v.safetensors --data train.csv -o s1.csv --sample 2> /dev/null");
  must_succeed_in(dir, "./v encode --checkpoint v.safetensors --data train.csv -o s1b.csv --sample --batch 7 2> /dev/null");
  must_succeed_in(dir, "./v encode --checkpoint v.safetensors --data train.csv -o s2.csv --sample --seed 2 2> /dev/null");
  CommandResult r = run_in(dir, "cmp -s m1.csv m2.csv && echo means-equal; cmp -s s1.csv s1b.csv && echo draws-equal; "
                                "cmp -s s1.csv s2.csv || echo seeds-differ; cmp -s m1.csv s1.csv || echo drawn");
  ck_assert_str_eq(r.out, "means-equal\ndraws-equal\nseeds-differ\ndrawn\n");
  command_result_free(&r);
  must_succeed_in(dir, "./v sample --checkpoint v.safetensors -n 4 -o v.png 2> /dev/null");
  expect_png("v.png", 2 * TILE + 2, 2 * TILE + 2);
  r = run_in(dir, "./v eval --checkpoint v.safetensors --data train.csv");
  double elbo = figure(r.out, "elbo"), bce = figure(r.out, "elbo.bce"), kl = figure(r.out, "elbo.kl_normal");
  ck_assert_msg(r.status == 0 && kl >= 0 && fabs(bce + kl - elbo) < 1e-5 * elbo, "elbo %g = %g + %g:\n%s", elbo, bce,
                kl, r.out);
  command_result_free(&r);
  r = expect_failure("./m encode --checkpoint k.safetensors --data train.csv -o x.csv --sample", 2,
                     "encode --sample draws a variational code", "leave --sample out");
  command_result_free(&r);
}
END_TEST

START_TEST(bad_input_is_named) {
  CommandResult r = expect_failure("./m decode --checkpoint k.safetensors -o x.png", 2, "decode needs --codes FILE", "[n, 2]");
  command_result_free(&r);
  char *path = path_in(dir, "wide.csv");
  write_file(path, "0.1,0.2,0.3,0.4\n", 16);
  free(path);
  r = expect_failure("./m decode --checkpoint k.safetensors --codes wide.csv -o x.png", 1, "4 values",
                     "the model's code has 2");
  command_result_free(&r);
  path = path_in(dir, "three.csv");
  write_file(path, "0.1,0.2,0.3\n", 12);
  free(path);
  r = expect_failure("./m decode --checkpoint k.safetensors --codes three.csv -o x.png", 1, "a row of 3 values",
                     "then 2 values");
  command_result_free(&r);
  r = expect_failure("./m interpolate --checkpoint k.safetensors --data train.csv --from 200 --to 1 -o x.png", 1,
                     "--from 200 is out of range", "200 samples (0 to 199)");
  command_result_free(&r);
  r = expect_failure("./m interpolate --checkpoint k.safetensors --data train.csv --to 1 -o x.png", 2,
                     "needs --from I and --to J", NULL);
  command_result_free(&r);
  r = expect_failure("./p manifold --checkpoint p.safetensors -o x.png", 1, "a code of 3 values", "2-d code");
  command_result_free(&r);
  r = expect_failure("./p sample --checkpoint p.safetensors -o x.png", 1, "no prior over its codes", "decode --codes");
  command_result_free(&r);
  r = expect_failure("./s decode --checkpoint s.safetensors --codes codes.csv -o x.png", 1, "cannot decode a code alone",
                     "reads the input 'x' other than through the code (a skip connection)");
  command_result_free(&r);
  // No checkpoint, or another model's: one clear error each.
  static const char *const commands[] = {"decode --codes codes.csv", "sample", "interpolate --from 0 --to 1 --data train.csv",
                                         "manifold"};
  for (size_t i = 0; i < sizeof commands / sizeof *commands; i++) {
    char command[256];
    snprintf(command, sizeof command, "./m %s -o x.png", commands[i]);
    r = expect_failure(command, 2, "needs --checkpoint", NULL);
    command_result_free(&r);
    snprintf(command, sizeof command, "./m %s --checkpoint p.safetensors -o x.png", commands[i]);
    r = expect_failure(command, 1, "p.safetensors", NULL);
    command_result_free(&r);
  }
  // Nothing was written by the failures.
  path = path_in(dir, "x.png");
  ck_assert(!path_exists(path));
  free(path);
}
END_TEST

START_TEST(help_names_the_options) {
  static const char *const wanted[][2] = {
      {"decode", "--codes FILE"}, {"sample", "--seed N"}, {"interpolate", "codes on the line"},
      {"manifold", "-n, --count N"}, {"train", "run only these steps"}};
  for (size_t i = 0; i < sizeof wanted / sizeof *wanted; i++) {
    char command[128];
    snprintf(command, sizeof command, "./m %s --help", wanted[i][0]);
    CommandResult r = run_in(dir, command);
    ck_assert_msg(r.status == 0 && strstr(r.out, wanted[i][1]), "%s lacks '%s':\n%s", command, wanted[i][1], r.out);
    command_result_free(&r);
  }
}
END_TEST

Suite *generative_suite(void) {
  Suite *s = suite_create("generative");
  TCase *t = tcase_create("generative");
  tcase_set_timeout(t, 300);
  tcase_add_unchecked_fixture(t, setup, teardown);
  tcase_add_test(t, decode_draws_codes_as_a_grid_and_an_array);
  tcase_add_test(t, a_denoising_model_decodes);
  tcase_add_test(t, sample_draws_from_the_prior_by_seed);
  tcase_add_test(t, interpolate_draws_one_strip);
  tcase_add_test(t, manifold_decodes_the_prior_quantiles);
  tcase_add_test(t, eval_prints_the_parts_of_each_sum);
  tcase_add_test(t, names_in_a_net_body_are_seen);
  tcase_add_test(t, a_variational_model_encodes_the_mean_or_draws);
  tcase_add_test(t, bad_input_is_named);
  tcase_add_test(t, help_names_the_options);
  suite_add_tcase(s, t);
  return s;
}
