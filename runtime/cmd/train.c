// train.c — the train command: epochs of shuffled batches, every step of
// the model on each batch, the test losses and a checkpoint at each epoch's
// end, progress on stderr and figures on stdout.
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd.h"
#include "ckpt.h"
#include "data.h"

typedef struct train_run {
  const aert_model *model;
  const aert_options *options;
  aert_ctx *ctx;
  aert_dataset *train, *test;
  aert_dataset *validation;  // --validation: held out of the training data, or a file
  double *val_losses;        // [n_losses]
  int monitor;               // the loss --patience watches: the first step's
  int patience;              // 0: train every epoch
  aert_progress_state best;  // the best validation loss so far (best.best_epoch 0: none yet)
  char *best_path;           // where the best epoch's parameters go: CHECKPOINT.best.safetensors
  int epochs, batch, first_epoch;
  size_t first_batch;  // --resume from a mid-epoch checkpoint (--checkpoint-every): batches of first_epoch done
  size_t batches_per_epoch;
  char *checkpoint;
  const char *last_saved;  // the last good checkpoint, for the message when a loss turns NaN
  uint32_t *order;
  aert_real *xb;
  double *step_loss;    // [n_steps] sums of loss * n this epoch
  double *test_losses;  // [n_losses]
  double *batch_loss;   // [n_steps] each step's loss on the current batch, for --trace
  bool *run_step;       // [n_steps] the steps --steps selects (all by default)
  bool *lr_given;       // [n_steps] the steps whose rate --lr sets: their lr schedule, if any, does not apply
  aert_trace *trace;    // --trace, --dump-random
  double *profile[3];   // --profile: the kernel timing arrays, lent to ctx during training steps only
  size_t epoch_samples;
  aert_buf log;  // --log: the whole CSV, written anew (through a temporary) at each epoch's end
  bool tty;
  double train_seconds;  // all epochs, evaluation excluded
  size_t samples_trained;
  double first_batch_seconds;  // the run's first batch, which touches fresh memory
  size_t first_batch_samples;
  double last_draw, epoch_start, batch_time;
  int stopped;  // SIGINT or SIGTERM stopped training (its number)
  int last_epoch;  // the epochs the checkpoint holds
  bool parallel;  // several processes: each step's gradients summed over them (parallel.c)
  aert_cores cores;  // fewer threads while other programs want the cores (cores.c)
} train_run;

// -------------------------------------------------------------- progress
static void format_eta(char *out, size_t size, double seconds) {
  long s = seconds > 0 && seconds < 1e8 ? lround(seconds) : 0;
  if (s >= 3600) snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else snprintf(out, size, "%ld:%02ld", s / 60, s % 60);
}

// The live line on a terminal, redrawn at most ten times a second.
static void draw_progress(train_run *r, int epoch, size_t batch, bool force) {
  double now = aert_now();
  if (!r->tty || (!force && now - r->last_draw < 0.1)) return;
  r->last_draw = now;
  char line[512], eta[32];
  int n = snprintf(line, sizeof line, "\repoch %d/%d  batch %zu/%zu ", epoch + 1, r->epochs, batch,
                   r->batches_per_epoch);
  for (int s = 0; s < r->model->n_steps && n < (int)sizeof line; s++)
    if (r->run_step[s]) n += snprintf(line + n, sizeof line - (size_t)n, " %s %.4f", r->model->steps[s].loss,
                  r->epoch_samples ? r->step_loss[s] / (double)r->epoch_samples : 0.0);
  double elapsed = r->batch_time;
  double rate = elapsed > 0 ? (double)r->epoch_samples / elapsed : 0;
  size_t done = (size_t)(epoch - r->first_epoch) * r->batches_per_epoch + batch;
  size_t total = (size_t)(r->epochs - r->first_epoch) * r->batches_per_epoch;
  format_eta(eta, sizeof eta, done ? (r->train_seconds + elapsed) / (double)done * (double)(total - done) : 0);
  if (n < (int)sizeof line) snprintf(line + n, sizeof line - (size_t)n, "  %.0f samples/s  ETA %s\033[K", rate, eta);
  fputs(line, stderr);
  fflush(stderr);
}

static void end_progress_line(train_run *r) {
  if (r->tty && r->last_draw > 0) fputs("\r\033[K", stderr);
  r->last_draw = 0;
}

// One line a epoch on stderr: train and test losses, speed and time.
static void print_epoch_line(train_run *r, int epoch, double seconds, double train_seconds) {
  end_progress_line(r);
  if (!aert_is_root()) return;
  fprintf(stderr, "epoch %d/%d ", epoch + 1, r->epochs);
  for (int s = 0; s < r->model->n_steps; s++)
    if (r->run_step[s]) fprintf(stderr, " train %s %.4f", r->model->steps[s].loss, r->step_loss[s] / (double)r->epoch_samples);
  for (int l = 0; r->test && l < r->model->n_losses; l++)
    fprintf(stderr, "  test %s %.4f", r->model->loss_names[l], r->test_losses[l]);
  for (int l = 0; r->validation && l < r->model->n_losses; l++)
    fprintf(stderr, "  val %s %.4f%s", r->model->loss_names[l], r->val_losses[l],
            l == r->monitor && r->best.best_epoch == epoch + 1 ? " (best)" : "");
  fprintf(stderr, "  %.0f samples/s  %.1f s\n", (double)r->epoch_samples / train_seconds, seconds);
  fflush(stderr);
}

// ------------------------------------------------------------------ setup
// --log: the rows of a log being resumed are kept and the new ones follow.
static bool open_log(train_run *r, bool resuming) {
  const char *path = r->options->log;
  if (!path || !aert_is_root()) return true;
  if (resuming) {
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    for (size_t n; f && (n = fread(chunk, 1, sizeof chunk, f)) > 0;) aert_buf_printf(&r->log, "%.*s", (int)n, chunk);
    if (f && ferror(f)) aert_error("%s: cannot read the log: %s", path, strerror(errno)), r->log.failed = true;
    if (f) fclose(f);
    if (r->log.length > 0 && r->log.data[r->log.length - 1] != '\n') aert_buf_printf(&r->log, "\n");
  }
  if (r->log.length > 0) return !r->log.failed;
  aert_buf_printf(&r->log, "epoch");
  for (int s = 0; s < r->model->n_steps; s++)
    if (r->run_step[s]) aert_buf_printf(&r->log, ",train.%s", r->model->steps[s].loss);
  for (int l = 0; r->test && l < r->model->n_losses; l++) aert_buf_printf(&r->log, ",test.%s", r->model->loss_names[l]);
  for (int l = 0; r->validation && l < r->model->n_losses; l++)
    aert_buf_printf(&r->log, ",val.%s", r->model->loss_names[l]);
  aert_buf_printf(&r->log, ",seconds\n");
  return !r->log.failed;
}

static bool write_log_row(train_run *r, int epoch, double seconds) {
  if (!r->options->log || !aert_is_root()) return true;
  aert_buf_printf(&r->log, "%d", epoch + 1);
  for (int s = 0; s < r->model->n_steps; s++)
    if (r->run_step[s]) aert_buf_printf(&r->log, ",%.9g", r->step_loss[s] / (double)r->epoch_samples);
  for (int l = 0; r->test && l < r->model->n_losses; l++) aert_buf_printf(&r->log, ",%.9g", r->test_losses[l]);
  for (int l = 0; r->validation && l < r->model->n_losses; l++) aert_buf_printf(&r->log, ",%.9g", r->val_losses[l]);
  aert_buf_printf(&r->log, ",%.3f\n", seconds);
  if (r->log.failed) return aert_error("%s: out of memory for the log", r->options->log), false;
  return aert_output_write_all(r->options->log, "the log", r->log.data, r->log.length);
}

// Every file train writes can be written, before any work: the checkpoint,
// the log and the trace (a temporary made and removed beside each).
static bool check_outputs(const train_run *r) {
  const aert_options *o = r->options;
  if (!aert_is_root()) return true;  // process 0 writes them
  return aert_output_check(r->checkpoint, "the checkpoint") && (!o->log || aert_output_check(o->log, "the log")) &&
         (!o->trace || aert_output_check(o->trace, "the trace")) &&
         (!r->best_path || aert_output_check(r->best_path, "the best checkpoint"));
}

// --validation and --patience (or the train block's): the loss watched, and
// the best checkpoint's name beside the checkpoint's ("m.safetensors" ->
// "m.best.safetensors").
static bool configure_validation(train_run *r) {
  const aert_model *m = r->model;
  const aert_options *o = r->options;
  const char *spec = o->validation ? o->validation : m->default_validation;
  r->patience = o->has_patience ? o->patience : m->default_patience;
  if (!spec || !*spec) {
    if (r->patience > 0)
      aert_error("--patience stops when the validation loss stops improving: give --validation 0.1 (a fraction of "
                 "the training data held out) or --validation FILE");
    return r->patience <= 0;
  }
  for (int l = 0; l < m->n_losses; l++)
    if (strcmp(m->loss_names[l], m->steps[0].loss) == 0) r->monitor = l;
  const char *name = r->checkpoint, *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
  int stem = dot && (!slash || dot > slash) && dot != name && dot[-1] != '/' ? (int)(dot - name) : (int)strlen(name);
  if (asprintf(&r->best_path, "%.*s.best%s", stem, name, name + stem) < 0) r->best_path = NULL;
  if (r->best_path && stem == (int)strlen(name)) {  // no extension: "m" -> "m.best.safetensors"
    free(r->best_path);
    if (asprintf(&r->best_path, "%s.best.safetensors", name) < 0) r->best_path = NULL;
  }
  return r->best_path != NULL;
}

// Settings from the options, falling back on the model's train block.
static bool configure(train_run *r) {
  const aert_model *m = r->model;
  const aert_options *o = r->options;
  r->run_step = calloc((size_t)m->n_steps + 1, sizeof *r->run_step);
  r->lr_given = calloc((size_t)m->n_steps + 1, sizeof *r->lr_given);
  if (!r->run_step || !r->lr_given || !aert_select_steps(m, o->steps, r->run_step)) return false;
  r->epochs = o->has_epochs ? o->epochs : m->default_epochs;
  r->batch = o->has_batch ? o->batch : m->default_batch;
  if (r->epochs < 0 || r->batch < 1) {
    aert_error("train needs --epochs of at least 0 and --batch of at least 1 (the model gives %d and %d)", r->epochs,
               r->batch);
    return false;
  }
  if (o->checkpoint) r->checkpoint = strdup(o->checkpoint);
  else if (asprintf(&r->checkpoint, "%s.safetensors", aert_program()) < 0) r->checkpoint = NULL;
  if (!r->checkpoint) return false;
  return configure_validation(r);
}

// The context, and the resumed checkpoint's progress when --resume.
static bool prepare_context(train_run *r) {
  const aert_options *o = r->options;
  r->ctx = aert_ctx_create(r->model, 1, o->has_seed ? o->seed : r->model->default_seed);  // sized in load_data
  if (!r->ctx) return false;
  aert_apply_threads(o, r->ctx);
  if (o->init_pytorch && o->resume) {
    aert_error("--init chooses the initial parameters, and --resume continues from %s's; give one of them", o->resume);
    return false;
  }
  if (o->init_pytorch) aert_init_params_pytorch(r->model, r->ctx);
  if (o->resume) {
    aert_progress_state state = {.epoch = 0, .batch_counter = 0, .epoch_batch = 0};
    if (aert_checkpoint_load_ex(o->resume, r->model, r->ctx, &state, true) != 0) return false;
    if (o->has_seed) r->ctx->seed = o->seed;
    r->first_epoch = (int)state.epoch;
    r->ctx->batch_counter = state.batch_counter;
    r->first_batch = (size_t)state.epoch_batch;
    r->last_saved = o->resume;
    char watched[sizeof state.best_loss];
    snprintf(watched, sizeof watched, "val.%s", r->model->loss_names[r->monitor]);
    if (r->best_path && state.best_epoch > 0 && strcmp(state.best_loss, watched) == 0) r->best = state;  // patience goes on
  }
  return !o->has_lr || aert_override_lr(r->model, o->lr_spec, r->ctx->lr, r->lr_given);
}

// A fraction in (0, 1) holds out that much of the training data, chosen by
// the model's seed (not --seed, so that runs with different seeds validate on
// the same samples); anything else names a file.
static bool load_validation(train_run *r) {
  const char *spec = r->options->validation ? r->options->validation : r->model->default_validation;
  char *end;
  double fraction = strtod(spec, &end);
  if (end == spec || *end) {
    r->validation = aert_load_model_data(r->model, spec);
    return r->validation != NULL && aert_select_classes(r->options, r->validation);
  }
  if (!(fraction > 0 && fraction < 1)) {
    aert_error("--validation %s: a fraction of the training data is between 0 and 1, such as 0.1 (a file named %s "
               "is ./%s)", spec, spec, spec);
    return false;
  }
  r->validation = aert_dataset_split(r->train, fraction, r->model->default_seed);
  if (r->validation && aert_is_root())
    fprintf(stderr, "%s: validating on %zu samples held out of %s (%g, fixed by the model's seed)\n", aert_program(),
            r->validation->n, r->train->path, fraction);
  return r->validation != NULL;
}

static bool load_data(train_run *r) {
  const aert_options *o = r->options;
  const char *test = o->has_test ? o->test : r->model->default_test;
  r->train = aert_load_model_data(r->model, o->has_data ? o->data : r->model->default_data);
  if (!r->train || !aert_select_classes(o, r->train)) return false;
  if (test && *test && strcmp(test, "none") != 0) {
    r->test = aert_load_model_data(r->model, test);
    if (!r->test || !aert_select_classes(o, r->test)) return false;
  }
  if (r->best_path && !load_validation(r)) return false;
  // Batches of no more samples than the data has; the test set is evaluated
  // in batches as large as the asked size where it has more samples.
  int asked = r->batch, capacity;
  r->batch = capacity = aert_fit_batch(o, asked, r->train->n, r->train->path);
  if (r->test && r->test->n > (size_t)capacity) capacity = r->test->n < (size_t)asked ? (int)r->test->n : asked;
  if (!aert_ctx_set_capacity(r->model, r->ctx, capacity)) return false;
  r->batches_per_epoch = (r->train->n + (size_t)r->batch - 1) / (size_t)r->batch;
  if (o->has_batches && (size_t)o->batches < r->batches_per_epoch) r->batches_per_epoch = (size_t)o->batches;
  if (r->first_batch >= r->batches_per_epoch) {
    aert_error("%s was saved after batch %zu of epoch %d, but an epoch of %s has %zu batches of %d (train with the same data and --batch)",
               o->resume, r->first_batch, r->first_epoch + 1, r->train->path, r->batches_per_epoch, r->batch);
    return false;
  }
  r->order = malloc(r->train->n * sizeof *r->order);
  r->xb = aert_alloc_reals((size_t)r->batch, r->train->sample_size, "batch");
  r->step_loss = calloc((size_t)r->model->n_steps + 1, sizeof *r->step_loss);
  r->test_losses = calloc((size_t)r->model->n_losses + 1, sizeof *r->test_losses);
  r->val_losses = calloc((size_t)r->model->n_losses + 1, sizeof *r->val_losses);
  r->batch_loss = calloc((size_t)r->model->n_steps + 1, sizeof *r->batch_loss);
  if (!r->order || !r->xb || !r->step_loss || !r->test_losses || !r->val_losses || !r->batch_loss) {
    aert_error("out of memory for training buffers");
    return false;
  }
  return true;
}

// ---------------------------------------------------------------- training
// Where training stands before batch b of `epoch` (b may be batches_per_epoch:
// the epoch's end), which schedules are valued at and checkpoints record; and
// each scheduled step's learning rate there, unless --lr gave the step one.
static void set_progress(train_run *r, int epoch, size_t b) {
  r->ctx->progress = epoch + (double)b / (double)(r->batches_per_epoch ? r->batches_per_epoch : 1);
  const aert_schedule *lr = r->model->lr_schedules;
  for (int s = 0; lr && s < r->model->n_steps; s++)
    if (!r->lr_given[s]) r->ctx->lr[s] = aert_schedule_value(lr[s], r->ctx->progress);
}

// Every step on one batch. False (after the message) when a loss is not finite.
// n: the whole batch's rows; count: this process's share, in r->xb.
static bool train_batch(train_run *r, int epoch, size_t b, int n, int count) {
  const aert_model *m = r->model;
  r->ctx->kernel_seconds = r->profile[0], r->ctx->kernel_calls = r->profile[1], r->ctx->kernel_samples = r->profile[2];
  bool in_order = true;  // every earlier step ran on this batch: a step may read what they left (aert_ctx.batch_step)
  set_progress(r, epoch, b);
  for (int s = 0; s < m->n_steps; s++) {
    if (!r->run_step[s]) {
      in_order = false;
      continue;
    }
    r->ctx->batch_step = in_order ? s : -1;
    if (r->parallel) aert_parallel_step(count);
    double loss = count > 0 ? m->loss_and_grad(r->ctx, s, r->xb, count) : 0;
    r->ctx->batch_step = -1;
    if (r->parallel) loss = aert_parallel_reduce(r->ctx, s, loss, n);
    if (!isfinite(loss)) {
      end_progress_line(r);
      if (r->last_saved)
        aert_error("step '%s' (batch %zu of epoch %d): loss is %g; the last good checkpoint is %s", m->steps[s].loss,
                   b + 1, epoch + 1, loss, r->last_saved);
      else
        aert_error("step '%s' (batch %zu of epoch %d): loss is %g; no checkpoint was written yet", m->steps[s].loss,
                   b + 1, epoch + 1, loss);
      return false;
    }
    m->apply_update(r->ctx, s);
    r->step_loss[s] += loss * n;
    r->batch_loss[s] = loss;
  }
  r->ctx->kernel_seconds = r->ctx->kernel_calls = r->ctx->kernel_samples = NULL;
  if (!aert_trace_batch(r->trace, m, r->ctx, epoch, b, r->order + b * (size_t)r->batch, n, r->batch_loss))
    return false;
  r->ctx->batch_counter++;
  return true;
}

// "the checkpoint K holds 3 epochs and 5 batches (continue with --resume K)"
static void describe_checkpoint(const train_run *r, const aert_progress_state *state, char *out, size_t size) {
  char batches[64] = "";
  if (state->epoch_batch) snprintf(batches, sizeof batches, " and %llu batches", (unsigned long long)state->epoch_batch);
  snprintf(out, size, "the checkpoint %s holds %lld epochs%s (continue with --resume %s)", r->checkpoint,
           (long long)state->epoch, batches, r->checkpoint);
}

// The checkpoint, and what a second signal's exit says about it.
static bool save_checkpoint(train_run *r, aert_progress_state *state) {
  state->best_epoch = r->best.best_epoch, state->best_value = r->best.best_value;
  memcpy(state->best_loss, r->best.best_loss, sizeof state->best_loss);
  if (aert_is_root() && aert_checkpoint_save(r->checkpoint, r->model, r->ctx, state) != 0) return false;
  r->last_saved = r->checkpoint;
  char note[8400];
  describe_checkpoint(r, state, note, sizeof note);
  aert_signal_note(note);
  return true;
}

// SIGINT or SIGTERM arrived: where the checkpoint on disk stands, on stderr.
static void say_stopped(train_run *r, const aert_progress_state *state) {
  end_progress_line(r);
  r->stopped = aert_stop_signal() ? aert_stop_signal() : SIGTERM;  // another process may have had the signal
  if (!aert_is_root()) return;
  char note[8400];
  describe_checkpoint(r, state, note, sizeof note);
  fprintf(stderr, "%s: stopped by %s: %s\n", aert_program(), aert_signal_name(r->stopped), note);
  fflush(stderr);
}

// Stopping before batch b of `epoch`: the checkpoint of all before it.
static bool save_stopped(train_run *r, int epoch, size_t b) {
  end_progress_line(r);
  aert_progress_state state = {.epoch = epoch, .batch_counter = r->ctx->batch_counter, .epoch_batch = b};
  set_progress(r, epoch, b);
  if (!save_checkpoint(r, &state)) return false;
  say_stopped(r, &state);
  return false;
}

static bool train_epoch(train_run *r, int epoch) {
  size_t N = r->train->n;
  aert_shuffle(r->order, N, r->ctx->seed, (uint64_t)epoch);
  if (r->batches_per_epoch * (size_t)r->batch < N) N = r->batches_per_epoch * (size_t)r->batch;  // --batches
  memset(r->step_loss, 0, (size_t)r->model->n_steps * sizeof *r->step_loss);
  r->epoch_samples = 0;
  r->batch_time = 0;
  for (size_t b = epoch == r->first_epoch ? r->first_batch : 0; b < r->batches_per_epoch; b++) {
    if (aert_agree_stop()) return save_stopped(r, epoch, b);
    size_t first = b * (size_t)r->batch;
    int n = (int)(N - first < (size_t)r->batch ? N - first : (size_t)r->batch);
    size_t row0, count;
    aert_share((size_t)n, &row0, &count);
    r->ctx->row0 = row0;
    double start = aert_now();
    aert_gather(r->train, r->order, first + row0, (int)count, r->xb);
    if (!train_batch(r, epoch, b, n, (int)count)) return false;
    double seconds = aert_now() - start;
    if (r->samples_trained + r->epoch_samples == 0) r->first_batch_seconds = seconds, r->first_batch_samples = (size_t)n;
    r->batch_time += seconds;
    r->epoch_samples += (size_t)n;
    draw_progress(r, epoch, b + 1, false);
    aert_cores_after_batch(&r->cores, n, seconds);
    int every = r->options->checkpoint_every;
    if (every > 0 && (b + 1) % (size_t)every == 0 && b + 1 < r->batches_per_epoch) {
      aert_progress_state state = {.epoch = epoch, .batch_counter = r->ctx->batch_counter, .epoch_batch = b + 1};
      set_progress(r, epoch, b + 1);
      if (!save_checkpoint(r, &state)) return false;
    }
  }
  r->train_seconds += r->batch_time;
  r->samples_trained += r->epoch_samples;
  return true;
}

// The validation losses at the end of `epoch`; a better one than any before
// writes the best checkpoint.
static bool validate(train_run *r, int epoch) {
  if (!aert_evaluate(r->model, r->ctx, r->validation, r->val_losses)) return false;
  double value = r->val_losses[r->monitor];
  if (r->best.best_epoch > 0 && !(value < r->best.best_value)) return true;
  r->best.best_epoch = epoch + 1, r->best.best_value = value;
  snprintf(r->best.best_loss, sizeof r->best.best_loss, "val.%s", r->model->loss_names[r->monitor]);
  aert_progress_state state = r->best;
  state.epoch = epoch + 1, state.batch_counter = r->ctx->batch_counter, state.epoch_batch = 0;
  return !aert_is_root() || aert_checkpoint_save(r->best_path, r->model, r->ctx, &state) == 0;
}

// Early stopping: true when --patience epochs have passed without a better
// validation loss (after saying so on stderr and `stopped_early N` on stdout).
static bool out_of_patience(const train_run *r, int epoch) {
  if (r->patience <= 0 || epoch + 1 - r->best.best_epoch < r->patience) return false;
  printf("stopped_early %d\n", epoch + 1);
  fflush(stdout);
  if (aert_is_root())
    fprintf(stderr, "%s: stopping after epoch %d: %s has not improved for %d epochs\n", aert_program(), epoch + 1,
            r->best.best_loss, r->patience);
  return true;
}

// Test losses, figures, checkpoint and log at the end of an epoch.
static bool finish_epoch(train_run *r, int epoch) {
  const aert_model *m = r->model;
  end_progress_line(r);  // stdout may be the same terminal
  set_progress(r, epoch, r->batches_per_epoch);  // the test losses' schedules at the epoch's end
  if (r->test && !aert_evaluate(m, r->ctx, r->test, r->test_losses)) return false;
  if (r->validation && !validate(r, epoch)) return false;
  aert_progress_state state = {.epoch = epoch + 1, .batch_counter = r->ctx->batch_counter, .epoch_batch = 0};
  if (!save_checkpoint(r, &state)) return false;  // before stdout says the epoch is done
  printf("epoch %d\n", epoch + 1);
  for (int s = 0; s < m->n_steps; s++)
    if (r->run_step[s]) printf("train.%s %.9g\n", m->steps[s].loss, r->step_loss[s] / (double)r->epoch_samples);
  for (int l = 0; r->test && l < m->n_losses; l++) printf("test.%s %.9g\n", m->loss_names[l], r->test_losses[l]);
  for (int l = 0; r->validation && l < m->n_losses; l++) printf("val.%s %.9g\n", m->loss_names[l], r->val_losses[l]);
  fflush(stdout);
  double seconds = aert_now() - r->epoch_start;
  print_epoch_line(r, epoch, seconds, r->batch_time > 0 ? r->batch_time : 1e-9);
  return write_log_row(r, epoch, seconds);
}

static void free_run(train_run *r) {
  for (int i = 0; i < 3; i++) free(r->profile[i]);
  aert_ctx_free(r->model, r->ctx);
  aert_dataset_free(r->train);
  aert_dataset_free(r->test);
  free(r->order);
  aert_free(r->xb);
  free(r->step_loss);
  free(r->test_losses);
  free(r->val_losses);
  aert_dataset_free(r->validation);
  free(r->best_path);
  free(r->batch_loss);
  free(r->run_step);
  free(r->lr_given);
  aert_trace_close(r->trace, false);
  if (r->parallel) aert_parallel_end();
  free(r->checkpoint);
  aert_buf_free(&r->log);
}

int aert_cmd_train(const aert_model *model, const aert_options *options) {
  train_run r = {.model = model, .options = options, .tty = isatty(2) != 0 && aert_is_root()};
  int status = AERT_EXIT_FAILURE;
  aert_catch_signals(true);  // the first SIGINT or SIGTERM stops at the next batch, with a checkpoint
  if (!configure(&r) || !check_outputs(&r) || !prepare_context(&r)) goto done;
  if (r.checkpoint) {  // what a second signal says before the first save (then save_checkpoint's note)
    char note[8400];
    snprintf(note, sizeof note, "this run has not written the checkpoint %s yet", r.checkpoint);
    aert_signal_note(note);
  }
  if (r.first_epoch >= r.epochs && options->resume) {
    aert_note("%s has trained %d epochs already; nothing to do (ask for more with --epochs)", options->resume,
              r.first_epoch);
    status = AERT_EXIT_OK;
    goto done;
  }
  if (r.epochs == 0) {  // --epochs 0: the initialised parameters only
    aert_progress_state state = {.epoch = 0, .batch_counter = 0, .epoch_batch = 0};
    if (aert_is_root() && aert_checkpoint_save(r.checkpoint, model, r.ctx, &state) != 0) goto done;
    if (aert_is_root()) fprintf(stderr, "%s: wrote the initial parameters to %s (0 epochs)\n", aert_program(), r.checkpoint);
    status = AERT_EXIT_OK;
    goto done;
  }
  if (!load_data(&r) || !open_log(&r, options->resume != NULL)) goto done;
  if (aert_world()->size > 1 && options->dump_random) {
    aert_error("--dump-random writes one process's draws; run it without mpirun");
    goto done;
  }
  r.trace = aert_is_root() ? aert_trace_open(model, options) : NULL;
  if (!r.trace && aert_is_root() && (options->trace || options->dump_random)) goto done;
  if (aert_world()->size > 1 && !(r.parallel = aert_parallel_begin(model, r.ctx))) goto done;
  if (options->profile) {
    if (!aert_profile_start(model, r.ctx)) goto done;
    r.profile[0] = r.ctx->kernel_seconds, r.profile[1] = r.ctx->kernel_calls, r.profile[2] = r.ctx->kernel_samples;
    r.ctx->kernel_seconds = r.ctx->kernel_calls = r.ctx->kernel_samples = NULL;
  }
  char processes[48] = "";
  if (r.parallel) snprintf(processes, sizeof processes, "%d processes of ", aert_world()->size);
  if (aert_is_root())
    fprintf(stderr, "%s: training on %s (%zu samples), %s%d thread%s, batch %d, epochs %d to %d\n", aert_program(),
            r.train->path, r.train->n, processes, r.ctx->threads, r.ctx->threads == 1 ? "" : "s", r.batch,
            r.first_epoch + 1, r.epochs);
  aert_cores_start(&r.cores);
  for (int epoch = r.first_epoch; epoch < r.epochs; epoch++) {
    r.epoch_start = aert_now();
    if (!train_epoch(&r, epoch) || !finish_epoch(&r, epoch)) goto done;
    r.last_epoch = epoch + 1;
    if (out_of_patience(&r, epoch)) break;
    if (aert_agree_stop() && epoch + 1 < r.epochs) {  // during the epoch's end: its checkpoint is on disk
      aert_progress_state state = {.epoch = epoch + 1, .batch_counter = r.ctx->batch_counter, .epoch_batch = 0};
      say_stopped(&r, &state);
      goto done;
    }
  }
  aert_cores_end(&r.cores);
  if (aert_is_root())
    fprintf(stderr, "%s: the checkpoint %s holds %d epochs (other commands read it by default, or give --checkpoint %s)\n",
            aert_program(), r.checkpoint, r.last_epoch, r.checkpoint);
  if (r.best.best_epoch > 0) {
    printf("best_epoch %lld\n", (long long)r.best.best_epoch);
    if (aert_is_root())
      fprintf(stderr, "%s: the best epoch was %lld (%s %.6g); its parameters are in %s\n", aert_program(),
              (long long)r.best.best_epoch, r.best.best_loss, r.best.best_value, r.best_path);
  }
  bool traced = aert_trace_close(r.trace, true);
  r.trace = NULL;
  if (!traced) goto done;
  printf("samples_per_s %.6g\n", (double)r.samples_trained / (r.train_seconds > 0 ? r.train_seconds : 1e-9));
  // The same without the first batch, whose page faults and cold caches a
  // short benchmark would otherwise charge to the kernels.
  double warm_seconds = r.train_seconds - r.first_batch_seconds;
  if (r.samples_trained > r.first_batch_samples && warm_seconds > 0)
    printf("warm_samples_per_s %.6g\n", (double)(r.samples_trained - r.first_batch_samples) / warm_seconds);
  printf("fewest_threads %d\n", r.cores.fewest);
  if (options->profile) {
    r.ctx->kernel_seconds = r.profile[0], r.ctx->kernel_calls = r.profile[1], r.ctx->kernel_samples = r.profile[2];
    r.profile[0] = r.profile[1] = r.profile[2] = NULL;
    aert_profile_report(model, r.ctx);
  }
  status = AERT_EXIT_OK;
done:
  free_run(&r);
  return r.stopped ? 128 + r.stopped : status;
}

// The step minimizing the loss named by the `length` characters at `name`;
// -1 after a message naming `option` and the model's steps.
static int find_step(const aert_model *model, const char *name, size_t length, const char *option) {
  for (int s = 0; s < model->n_steps; s++)
    if (strlen(model->steps[s].loss) == length && strncmp(model->steps[s].loss, name, length) == 0) return s;
  char known[512] = "";
  for (int s = 0, used = 0; s < model->n_steps && used < (int)sizeof known; s++)
    used += snprintf(known + used, sizeof known - (size_t)used, "%s%s", s ? ", " : "", model->steps[s].loss);
  aert_error("%s: the model has no step minimizing '%.*s' (its steps minimize %s)", option, (int)length, name, known);
  return -1;
}

bool aert_select_steps(const aert_model *model, const char *list, bool *run) {
  for (int s = 0; s < model->n_steps; s++) run[s] = list == NULL;
  if (!list) return true;
  bool any = false;
  for (const char *at = list; *at;) {
    size_t length = strcspn(at, ",");
    int s = find_step(model, at, length, "--steps");
    if (s < 0) return false;
    run[s] = any = true;
    at += length;
    if (*at == ',') at++;
  }
  if (!any) aert_error("--steps: name at least one step");
  return any;
}

bool aert_override_lr(const aert_model *model, const char *spec, double *lr, bool *given) {
  if (!strchr(spec, '=')) {
    double every;
    if (!aert_parse_positive("--lr", spec, &every)) return false;
    for (int s = 0; s < model->n_steps; s++) lr[s] = every;
    for (int s = 0; given && s < model->n_steps; s++) given[s] = true;
    return true;
  }
  for (const char *at = spec; *at;) {
    size_t length = strcspn(at, ","), name_length = strcspn(at, "=");
    if (name_length >= length) {
      aert_error("--lr: '%.*s' is not LOSS=RATE (give one rate for every step, or LOSS=RATE,...)", (int)length, at);
      return false;
    }
    int s = find_step(model, at, name_length, "--lr");
    char rate[64];
    snprintf(rate, sizeof rate, "%.*s", (int)(length - name_length - 1), at + name_length + 1);
    if (s < 0 || !aert_parse_positive("--lr", rate, &lr[s])) return false;
    if (given) given[s] = true;
    at += length;
    if (*at == ',') at++;
  }
  return true;
}
