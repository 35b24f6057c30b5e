// test_stack.c — kernels keep their panels and padded planes on the threads'
// stacks (runtime/core/stack.c): a convolution whose planes outgrow the usual
// 8 MiB stack trains, its program having raised the limits itself; where the
// user's OMP_STACKSIZE or a hard limit leaves too little, the program says
// what to change and exits 1 instead of overflowing a stack. A loss kernel's
// partial sums, one for every 14 x 32 block of the batch's outputs, are on
// the heap: a large batch does not overflow the main thread's stack.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests.h"

// 64 channels of 192 x 192 padded: 9.6 MB of planes in the decoder's
// convolution, in each thread.
static const char *const wide_conv =
    "input x: [1, 192, 192]\n"
    "net encoder = conv(64, 3, relu) -> maxpool(2)\n"
    "net decoder = upsample(2) -> conv(1, 3, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 2 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.001) }\n";

// A 784 x 500 weight (1.5 MiB): its products go by chunks and strips, 1 MiB of
// panels a thread.
static const char *const wide_dense =
    "input x: [784]\n"
    "net encoder = dense(500, relu)\n"
    "net decoder = dense(784, sigmoid)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 16 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.001) }\n";

START_TEST(a_convolution_larger_than_the_default_stack_trains) {
  char *dir = make_program_dir("stack-conv", wide_conv, 4, 192 * 192);
  // 8 MiB for the main thread and, through it, for OpenMP's threads: less
  // than the planes need, so both must be raised for this to finish.
  CommandResult r = run_command("cd %s && ulimit -S -s 8192 && unset OMP_STACKSIZE GOMP_STACKSIZE && "
                                "./m train --checkpoint m.safetensors --threads 2",
                                dir);
  ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
  ck_assert_msg(isfinite(figure(r.out, "samples_per_s")), "%s", r.out);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(a_small_omp_stacksize_is_reported) {
  const char *const models[] = {wide_conv, wide_dense};
  const int sizes[] = {192 * 192, 784};
  for (int i = 0; i < 2; i++) {
    char *dir = make_program_dir("stack-omp", models[i], 16, sizes[i]);
    CommandResult r = run_command("cd %s && OMP_STACKSIZE=256K ./m train --checkpoint m.safetensors --threads 2", dir);
    ck_assert_msg(r.status == 1, "model %d: status %d (139 is a stack overflow): %s", i, r.status, r.err);
    ck_assert_msg(strstr(r.err, "OMP_STACKSIZE=256K gives OpenMP's threads") && strstr(r.err, "set OMP_STACKSIZE="),
                  "model %d: %s", i, r.err);
    command_result_free(&r);
    // Where it names enough, the same program trains.
    r = run_command("cd %s && OMP_STACKSIZE=32M ./m train --checkpoint m.safetensors --threads 2", dir);
    ck_assert_msg(r.status == 0, "model %d: status %d: %s", i, r.status, r.err);
    command_result_free(&r);
    remove_tree(dir);
    free(dir);
  }
}
END_TEST

START_TEST(a_hard_stack_limit_is_reported) {
  char *dir = make_program_dir("stack-hard", wide_conv, 4, 192 * 192);
  CommandResult r = run_command("cd %s && ulimit -S -s 4096 && ulimit -H -s 4096 && ./m train --checkpoint m.safetensors",
                                dir);
  ck_assert_msg(r.status == 1, "status %d (139 is a stack overflow): %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "the main thread has") && strstr(r.err, "ulimit -Hs"), "%s", r.err);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// 60000 samples of 1024 in one batch: the fused BCE kernel's 137,000 blocks
// take 1.1 MB of partial sums, more than a 1 MiB stack holds, where the
// kernels' own arrays need half of that.
static const char *const wide_batch =
    "input x: [1024]\n"
    "net encoder = dense(16, relu)\n"
    "net decoder = dense(1024, sigmoid)\n"
    "loss recon = bce(decoder(encoder(x)), x)\n"
    "train { data \"train-images-idx3-ubyte.gz\" test \"none\" batch 60000 epochs 1\n"
    "        step minimize recon over encoder, decoder with adam(lr=0.001) }\n";

START_TEST(a_large_batch_keeps_its_loss_sums_off_the_stack) {
  char *dir = make_program_dir("stack-batch", wide_batch, 1, 1024), path[4096];
  // 60000 images of 32 x 32 in a repeating pattern, which gzip makes small.
  enum { SAMPLES = 60000, SIDE = 32 };
  const size_t bytes = (size_t)SAMPLES * SIDE * SIDE;
  unsigned char *pixels = malloc(bytes);
  ck_assert(pixels != NULL);
  for (size_t i = 0; i < bytes; i++) pixels[i] = (unsigned char)(i * 37 % 251);
  snprintf(path, sizeof path, "%s/train-images-idx3-ubyte.gz", dir);
  write_idx(path, 0x803, (const uint32_t[]){SAMPLES, SIDE, SIDE}, 3, pixels, bytes, true);
  free(pixels);
  CommandResult r = run_command("cd %s && ulimit -s 1024 && ./m train --checkpoint m.safetensors --threads 2", dir);
  ck_assert_msg(r.status == 0, "status %d (139 is a stack overflow): %s", r.status, r.err);
  const double loss = figure(r.out, "train.recon");
  ck_assert_msg(isfinite(loss) && loss > 0.5 && loss < 1, "BCE of the first step %g: %s", loss, r.out);
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *stack_suite(void) {
  Suite *s = suite_create("stack");
  TCase *t = tcase_create("stack");
  tcase_set_timeout(t, 300);
  tcase_add_test(t, a_convolution_larger_than_the_default_stack_trains);
  tcase_add_test(t, a_small_omp_stacksize_is_reported);
  tcase_add_test(t, a_hard_stack_limit_is_reported);
  tcase_add_test(t, a_large_batch_keeps_its_loss_sums_off_the_stack);
  suite_add_tcase(s, t);
  return s;
}
