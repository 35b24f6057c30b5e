// cmd.h — the commands (runtime/cmd/), above every other layer but the
// command line (cli/), which parses an aert_options and runs one of them. A
// file for each family of commands: train.c (with trace.c), evaluate.c,
// coding.c, generate.c, retrieve.c, pictures.c, featuremaps.c, anomaly.c, info.c, devcheck.c; what
// they share is in common.c.
#ifndef AERT_CMD_H
#define AERT_CMD_H

#include "core.h"

typedef struct aert_options {
  const char *command;
  const char *data, *test, *checkpoint, *resume, *log, *output, *trace, *dump_random;
  bool profile;  // train --profile
  const char *steps;     // train --steps recon,disc: the steps to run (by loss name); NULL: all
  const char *baseline;  // prior-match --baseline CKPT
  const char *layer;     // activations --layer NAME
  int checkpoint_every;  // train --checkpoint-every N batches (0: only at each epoch's end)
  bool init_pytorch;     // train --init pytorch: nn.Linear's and nn.Conv2d's initialisation
  const char *validation;  // train --validation: a fraction of the training data held out, or a file
  int patience, batches;   // train --patience N (early stopping), --batches N (at most N an epoch)
  bool has_patience, has_batches;
  int epochs, batch, threads, count, samples;
  const char *lr_spec;  // train --lr: X for every step, or LOSS=X,... for named steps
  uint64_t seed;
  bool has_data, has_test, has_epochs, has_batch, has_lr, has_seed, has_threads, has_count, has_samples;
  // What users do with a trained model: encode --plot, denoise --noise,
  // retrieve --db/--queries/-k/--binary/--cosine, probe --labels-fraction,
  // pca --dim, plot-xy --csv.
  const char *plot, *noise, *db, *queries, *csv;
  int k, dim;
  double labels_fraction;
  bool binary, cosine, has_k, has_dim, has_labels_fraction;
  bool sample;  // encode --sample: draw a variational code instead of its mean
  // The generative commands: decode --codes, interpolate --from/--to/--steps.
  const char *codes;
  int from, to, interp_steps;
  bool has_from, has_to, has_interp_steps;
  double scale;  // --scale X: the data sets' values divided by X
  bool has_scale;
  // Anomaly detection: train --classes, detect --threshold/--fit-on/--quantile/--sigma/--normal
  // (and --baseline mean, in `baseline`).
  const char *classes, *fit_on, *normal;
  double threshold, quantile, sigma;
  bool has_threshold, has_quantile, has_sigma;
} aert_options;

// ---------------------------------------------------------- the commands
int aert_cmd_train(const aert_model *model, const aert_options *options);                // train.c
int aert_cmd_eval(const aert_model *model, const aert_options *options);                 // evaluate.c
int aert_cmd_probe(const aert_model *model, const aert_options *options);
int aert_cmd_pca(const aert_model *model, const aert_options *options);
// prior-match: the codes' moments against the prior's and the energy
// distance between codes and prior samples (and a baseline checkpoint's).
int aert_cmd_prior_match(const aert_model *model, const aert_options *options);
int aert_cmd_reconstruct(const aert_model *model, const aert_options *options);          // coding.c
int aert_cmd_encode(const aert_model *model, const aert_options *options);
int aert_cmd_denoise(const aert_model *model, const aert_options *options);
int aert_cmd_retrieve(const aert_model *model, const aert_options *options);             // retrieve.c
int aert_cmd_filters(const aert_model *model, const aert_options *options);              // pictures.c
int aert_cmd_histogram(const aert_model *model, const aert_options *options);
int aert_cmd_plot_xy(const aert_model *model, const aert_options *options);
// activations (featuremaps.c): a layer's feature maps for a few samples, and
// the input patches (receptive fields) that activate each of its channels most.
int aert_cmd_feature_maps(const aert_model *model, const aert_options *options);
// decode, sample, interpolate, manifold (generate.c): codes through the model's decode function.
int aert_cmd_decode(const aert_model *model, const aert_options *options);               // generate.c
int aert_cmd_sample(const aert_model *model, const aert_options *options);
int aert_cmd_interpolate(const aert_model *model, const aert_options *options);
int aert_cmd_manifold(const aert_model *model, const aert_options *options);
int aert_cmd_summary(const aert_model *model, const aert_options *options);              // info.c
int aert_cmd_describe(const aert_model *model, const aert_options *options);
// score and detect (anomaly.c): each sample's reconstruction loss, and a threshold on it.
int aert_cmd_score(const aert_model *model, const aert_options *options);                // anomaly.c
int aert_cmd_detect(const aert_model *model, const aert_options *options);
// train --classes LIST (anomaly.c): keeps the samples whose label is in the
// list, saying how many; true without --classes; false after a message.
bool aert_select_classes(const aert_options *options, aert_dataset *data);
int aert_cmd_gradcheck(const aert_model *model, const aert_options *options);            // devcheck.c
int aert_cmd_time_kernels(const aert_model *model, const aert_options *options);

// ----------------------------------------------------------------- train.c
// The steps `train --steps LIST` selects into run[model->n_steps]; false after a message.
bool aert_select_steps(const aert_model *model, const char *list, bool *run);
// train --lr: spec is one rate for every step or LOSS=RATE,...; sets lr[step]
// and, when `given` is not NULL, given[step] for the steps it names (their
// rate stays, whatever schedule the model gives); false after a message.
bool aert_override_lr(const aert_model *model, const char *spec, double *lr, bool *given);

// ----------------------------------------------------------------- trace.c
// train --trace FILE: one JSON line a batch (epoch, batch, batch_counter,
// each step's loss, the sample indices); train --dump-random DIR: each random
// node's draws as DIR/<node>.<draw>.npy. NULL when neither was asked for, or
// after a message (check options first to tell the two apart).
typedef struct aert_trace aert_trace;
aert_trace *aert_trace_open(const aert_model *model, const aert_options *options);
// After every step of a batch ran, before ctx->batch_counter moves on.
bool aert_trace_batch(aert_trace *trace, const aert_model *model, const aert_ctx *ctx, int epoch, size_t batch,
                      const uint32_t *samples, int n, const double *losses);
// keep: the files are renamed into place (false after a message); else removed.
bool aert_trace_close(aert_trace *trace, bool keep);

// -------------------------------------------------------------- parallel.c
// This process's share of n rows (a batch, a test set): `count` from `first`.
void aert_share(size_t n, size_t *first, size_t *count);
// Several processes: before training (false after a message); before each
// step's loss_and_grad on this process's `count` rows; after it (loss: the
// mean over them), which makes the step's gradients those of the mean over
// the whole batch of n rows in every process and returns the loss over it.
// AEC_MPI_OVERLAP=1 starts each gradient's sum as the backward pass
// announces it (aert_ctx.grad_ready).
bool aert_parallel_begin(const aert_model *model, aert_ctx *ctx);
void aert_parallel_end(void);
void aert_parallel_step(int count);
double aert_parallel_reduce(aert_ctx *ctx, int step, double loss, int n);

// ----------------------------------------------------------------- cores.c
// Training's threads while other programs want the cores: fewer when the main
// thread waits in the run queue and they train faster, all again when they
// train about as fast (cores.c).
typedef struct {
  int most;            // the threads the run may use (--threads, OMP_NUM_THREADS or the cores)
  int threads;         // the threads it uses now
  int fewest;          // the fewest it has kept
  int before;          // the threads of the window before
  bool on;             // false: fixed (no AEC_SHARE_CORES=1, a single thread, no schedstat)
  bool trying;         // this window tries another count
  double window_start; // seconds
  long long window_wait;  // the main thread's run-queue nanoseconds at window_start
  double window_samples, window_seconds;  // trained in this window, and the batches' time
  double rate;         // samples a second of the window before
  int windows;         // windows so far
  double next_try, retry;
} aert_cores;
// The threads to try after a window in which the main thread spent the
// fraction `waiting` of the wall time runnable but not running.
int aert_cores_choose(int threads, double waiting);
// True when AEC_SHARE_CORES=1; else the threads stay as set.
bool aert_cores_adapt(void);
void aert_cores_start(aert_cores *c);  // after aert_apply_threads
// After each batch: `samples` trained in `seconds`.
void aert_cores_after_batch(aert_cores *c, int samples, double seconds);
// One window's end at `now` (seconds), when the main thread had spent
// wait_ns in the run queue since aert_cores_start, and the window's batches
// are in window_samples and window_seconds: the threads to use next.
int aert_cores_observe(aert_cores *c, double now, long long wait_ns);
void aert_cores_end(aert_cores *c);  // the threads back to `most`

// ---------------------------------------------------------------- common.c
// The data set a command works on, checked against the model's input.
// Every value of it divided by aert_data_scale when that is set (--scale X).
aert_dataset *aert_load_model_data(const aert_model *model, const char *spec);
// The same, without the bce check (aert_check_bce_targets) when the model
// does not read the data (pca without --checkpoint).
aert_dataset *aert_load_data_for(const aert_model *model, const char *spec, bool model_reads);
extern double aert_data_scale;
// datacheck.c: false after a message naming the file, the sample and the
// value when the model's bce takes the input as its target and a value of
// the data set lies outside [0, 1].
bool aert_check_bce_targets(const aert_model *model, const aert_dataset *data);
// The threads setting (and subnormals flushed to zero in every thread).
void aert_apply_threads(const aert_options *options, aert_ctx *ctx);
// The test losses of a data set (means weighted by batch size) into losses[model->n_losses].
bool aert_evaluate(const aert_model *model, aert_ctx *ctx, const aert_dataset *data, double *losses);
// A context for a trained model: the checkpoint loaded, threads set, batches
// of one sample until aert_fit_context sizes them for the data. NULL after a
// message.
aert_ctx *aert_open_checkpoint(const aert_model *model, const aert_options *options);
// `batch`, or `rows` when the data set (`path`) has fewer samples: a larger
// batch would only cost memory. The first time --batch is cut, a note says so.
int aert_fit_batch(const aert_options *options, int batch, size_t rows, const char *path);
// The context's batches made --batch (or the model's) samples, no more than
// `rows`; false after a message.
bool aert_fit_context(const aert_model *model, const aert_options *options, aert_ctx *ctx, size_t rows,
                      const char *path);
// Copies samples order[first .. first+n) (or first.. when order is NULL) into batch.
void aert_gather(const aert_dataset *data, const uint32_t *order, size_t first, int n, aert_real *batch);
// The developer checks' batch (gradcheck, time-kernels): the data set from
// --data (default: the model's training data), a context for `batch` samples
// seeded by --seed, the threads set, and its first n = min(batch, samples)
// samples gathered into x. False after a message; close it either way.
typedef struct aert_first_batch {
  aert_dataset *data;
  aert_ctx *ctx;
  aert_real *x;
  int n;
} aert_first_batch;
bool aert_first_batch_open(const aert_model *model, const aert_options *options, int batch, aert_first_batch *b);
void aert_first_batch_close(const aert_model *model, aert_first_batch *b);
// The displayed height and width of a sample: channel 0 of [c, h, w], else a
// square when the size is one, else one row.
void aert_display_size(const aert_model *model, int *height, int *width);
// fn over samples [0, n) of x (each `in_size` values) in batches of the
// context's capacity; out gets n * out_size. Before each batch b,
// ctx->batch_counter = b, so random draws (corrupt) differ from batch to batch.
bool aert_run_batches(aert_ctx *ctx, const aert_real *x, size_t in_size, size_t n,
                      void (*fn)(aert_ctx *, const aert_real *, int, aert_real *), size_t out_size, aert_real *out);
// The codes of a whole data set; NULL after a message.
aert_real *aert_encode_all(const aert_model *model, aert_ctx *ctx, const aert_dataset *data);
// True when the model has a code; false after a message saying it has none.
bool aert_need_code(const aert_model *model);
// Whether an output path names a NumPy file (ends in .npy).
bool aert_is_npy_path(const char *path);
// A .npy file (format 1.0, little-endian `descr` such as "<f4") of `rank`
// dimensions, written safely (aert_output_begin, `what` naming it); false
// after a message.
bool aert_write_npy(const char *path, const char *what, const char *descr, const size_t *shape, int rank,
                    const void *data, size_t item);
// A positive finite number in text, or false after a message naming the option.
bool aert_parse_positive(const char *option, const char *text, double *out);

#endif
