// test_faults.c — faults during training: `kill -9` at random moments while
// checkpointing every batch never leaves a damaged checkpoint, and resuming
// after each kill ends bit for bit where an uninterrupted run ends; a loss
// that turns NaN stops training naming the step, the loss and the last good
// checkpoint; a full disk (a file size limit) is reported.
#define _GNU_SOURCE
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tests.h"

static const char *const model_text =
    "input x: [16]\n"
    "net encoder = dense(8, relu)\n"
    "net decoder = dense(16%s)\n"
    "loss recon = mse(decoder(encoder(x)), x)\n"
    "train { data \"train.csv\" test \"none\" batch 16 epochs 2\n"
    "        step minimize recon over encoder, decoder with %s }\n";

// A directory with m.ae (the decoder's activation `act`, the optimizer `opt`),
// train.csv (n samples) and the program ./m.
static char *prepare(const char *tag, const char *act, const char *opt, int n) {
  char text[1024];
  snprintf(text, sizeof text, model_text, act, opt);
  return make_program_dir(tag, text, n, 16);
}

static bool exists(const char *dir, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  struct stat st;
  return stat(path, &st) == 0;
}

START_TEST(kill_9_never_damages_the_checkpoint) {
  char *dir = prepare("kill9", ", sigmoid", "adam(lr=0.01)", 400);  // 25 batches an epoch, 40 epochs
  CommandResult r = run_command("cd %s && ./m train --epochs 40 --checkpoint straight.safetensors && "
                                "./m eval --checkpoint straight.safetensors --data train.csv", dir);
  ck_assert_msg(r.status == 0, "%s", r.err);
  double straight = figure(r.out, "recon");
  command_result_free(&r);
  ck_assert(isfinite(straight));
  unsigned seed = 7;
  int kills = 0, whole = 0;
  for (int i = 0; i < 50; i++) {
    seed = seed * 1103515245u + 12345u;
    double when = 0.005 + (seed >> 16) % 400 / 1000.0;  // 5 to 405 ms
    bool have = exists(dir, "k.safetensors");
    r = run_command("cd %s && timeout -s KILL %.3f ./m train --epochs 40 --checkpoint k.safetensors --checkpoint-every 1 %s",
                    dir, when, have ? "--resume k.safetensors" : "");
    kills += r.status != 0;
    command_result_free(&r);
    if (!exists(dir, "k.safetensors")) {
      ck_assert_msg(!have, "kill %d (at %.3f s) removed the checkpoint", i, when);
      whole++;
      continue;
    }
    r = run_command("cd %s && ./m eval --checkpoint k.safetensors --data train.csv", dir);
    ck_assert_msg(r.status == 0 && isfinite(figure(r.out, "recon")), "kill %d at %.3f s left a damaged checkpoint: %s", i,
                  when, r.err);
    command_result_free(&r);
    whole++;
  }
  ck_assert_int_eq(whole, 50);
  ck_assert_msg(kills > 0, "no run was killed");
  // Finishing from whatever the kills left ends where the straight run ended.
  r = run_command("cd %s && ./m train --epochs 40 --checkpoint k.safetensors %s && "
                  "./m eval --checkpoint k.safetensors --data train.csv",
                  dir, exists(dir, "k.safetensors") ? "--resume k.safetensors" : "");
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(figure(r.out, "recon") == straight, "resumed after 50 kills: %.9g, straight: %.9g", figure(r.out, "recon"),
                straight);
  command_result_free(&r);
  fprintf(stderr, "faults: 50 of 50 checkpoints whole after kill -9 (%d runs killed)\n", kills);
  remove_tree(dir);
  free(dir);
}
END_TEST

START_TEST(nan_loss_names_step_loss_and_checkpoint) {
  char *dir = prepare("nan", "", "sgd(lr=1e30)", 400);
  CommandResult r = run_command("cd %s && ./m train --checkpoint n.safetensors --checkpoint-every 1", dir);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "error: step 'recon' (batch ") && strstr(r.err, "loss is") &&
                    (strstr(r.err, "nan") || strstr(r.err, "inf")),
                "%s", r.err);
  ck_assert_msg(strstr(r.err, "the last good checkpoint is n.safetensors") || strstr(r.err, "no checkpoint was written yet"),
                "%s", r.err);
  if (strstr(r.err, "the last good checkpoint is")) {
    CommandResult e = run_command("cd %s && ./m eval --checkpoint n.safetensors --data train.csv", dir);
    ck_assert_msg(e.status == 0, "%s", e.err);
    command_result_free(&e);
  }
  command_result_free(&r);
  remove_tree(dir);
  free(dir);
}
END_TEST

// A full disk: writes past a file size limit of 512 bytes fail (EFBIG) as
// they would. /dev/full itself is refused: only regular files are replaced.
START_TEST(full_disk_is_reported) {
  char *dir = prepare("full", ", sigmoid", "adam(lr=0.01)", 64);
  CommandResult r = run_command("cd %s && ./m train --epochs 1 --checkpoint f.safetensors --log /dev/full", dir);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "/dev/full: cannot write the log: it is a character device"), "%s", r.err);
  command_result_free(&r);
  r = run_command("cd %s && ./m train --epochs 1 --checkpoint f.safetensors && "
                  "(trap '' XFSZ; ulimit -f 1; exec ./m train --epochs 1 --checkpoint g.safetensors --log g.csv)", dir);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "g.safetensors: cannot write the checkpoint: File too large"), "%s", r.err);
  command_result_free(&r);
  r = run_command("cd %s && trap '' XFSZ && ulimit -f 1 && exec ./m encode --checkpoint f.safetensors --data train.csv -o c.csv",
                  dir);
  ck_assert_msg(r.status != 0 && strstr(r.err, "c.csv: cannot write the codes: File too large"), "encode to a full disk: %d %s",
                r.status, r.err);
  command_result_free(&r);
  ck_assert(!exists(dir, "c.csv") && !exists(dir, "g.safetensors") && !exists(dir, "g.csv"));
  remove_tree(dir);
  free(dir);
}
END_TEST

Suite *faults_suite(void) {
  Suite *s = suite_create("faults");
  TCase *t = tcase_create("faults");
  tcase_set_timeout(t, 600);
  tcase_add_test(t, kill_9_never_damages_the_checkpoint);
  tcase_add_test(t, nan_loss_names_step_loss_and_checkpoint);
  tcase_add_test(t, full_disk_is_reported);
  suite_add_tcase(s, t);
  return s;
}
