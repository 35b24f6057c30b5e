// cli.c — aert_main: the generated program's command line. Parses the
// command and its options, then runs the command (cmd/: a file for each
// family of commands). Usage errors exit with status 2, other failures with 1.
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd.h"

typedef enum option_id {
  OPT_DATA, OPT_TEST, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_SEED, OPT_THREADS, OPT_CHECKPOINT,
  OPT_RESUME, OPT_LOG, OPT_OUTPUT, OPT_COUNT, OPT_SAMPLES, OPT_TRACE, OPT_DUMP_RANDOM,
  OPT_PLOT, OPT_NOISE, OPT_DB, OPT_QUERIES, OPT_K, OPT_BINARY, OPT_COSINE, OPT_LABELS_FRACTION, OPT_DIM, OPT_CSV, OPT_PROFILE, OPT_STEPS, OPT_BASELINE, OPT_CHECKPOINT_EVERY, OPT_LAYER,
  OPT_CODES, OPT_FROM, OPT_TO, OPT_INTERP_STEPS, OPT_SAMPLE, OPT_INIT, OPT_SCALE,
  OPT_VALIDATION, OPT_PATIENCE, OPT_BATCHES,
  OPT_CLASSES, OPT_THRESHOLD, OPT_FIT_ON, OPT_QUANTILE, OPT_SIGMA, OPT_NORMAL, OPT_BASELINE_MEAN, OPT_SCORE_PLOT, N_OPTIONS
} option_id;

typedef struct option_spec {
  const char *name;      // "--data"
  const char *alias;     // "-o", or NULL
  const char *metavar;   // NULL: a flag, which takes no value
  const char *help;
} option_spec;

static const option_spec option_specs[N_OPTIONS] = {
    [OPT_DATA] = {"--data", NULL, "FILE", "data set: fashion-mnist:train|test, .idx[.gz], .csv or .npy"},
    [OPT_TEST] = {"--test", NULL, "FILE", "test set evaluated at each epoch's end"},
    [OPT_EPOCHS] = {"--epochs", NULL, "N", "total epochs (a resumed run continues up to N; 0 saves the initial parameters)"},
    [OPT_BATCH] = {"--batch", NULL, "N", "samples a batch"},
    [OPT_LR] = {"--lr", NULL, "X", "learning rate of every step, or LOSS=X,... of named steps (overrides the model's; a constant, even where the model gives a schedule)"},
    [OPT_SEED] = {"--seed", NULL, "N", "run seed: initialisation, shuffling, noise"},
    [OPT_INIT] = {"--init", NULL, "glorot|pytorch", "initial parameters: glorot (Keras's, the default: Glorot-uniform kernels, zero biases) or pytorch (nn.Linear's and nn.Conv2d's: every weight and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)))"},
    [OPT_THREADS] = {"--threads", NULL, "N", "OpenMP threads (default: all cores)"},
    [OPT_CHECKPOINT] = {"--checkpoint", NULL, "FILE", "checkpoint (.safetensors)"},
    [OPT_RESUME] = {"--resume", NULL, "FILE", "continue training from this checkpoint"},
    [OPT_LOG] = {"--log", NULL, "FILE", "append per-epoch losses to this CSV file"},
    [OPT_OUTPUT] = {"--output", "-o", "FILE", "output file"},
    [OPT_COUNT] = {"--count", "-n", "N", "number of samples (the default is on the usage line)"},
    [OPT_SAMPLES] = {"--samples", NULL, "K", "elements checked per parameter tensor (default 20)"},
    [OPT_TRACE] = {"--trace", NULL, "FILE", "write each batch's sample indices and step losses (JSON lines)"},
    [OPT_DUMP_RANDOM] = {"--dump-random", NULL, "DIR", "write each random node's draws, batch by batch, as .npy"},
    [OPT_PLOT] = {"--plot", NULL, "FILE", "also draw the codes as a 2-D scatter coloured by label (PNG)"},
    [OPT_NOISE] = {"--noise", NULL, "SPEC", "gaussian:STD, masking:P or salt_pepper:P instead of the model's corruption"},
    [OPT_DB] = {"--db", NULL, "FILE", "the database searched (default: the training set)"},
    [OPT_QUERIES] = {"--queries", NULL, "FILE", "the queries (default: the test set)"},
    [OPT_K] = {"-k", NULL, "N", "neighbours retrieved per query (default 10)"},
    [OPT_BINARY] = {"--binary", NULL, NULL, "codes thresholded at 0.5, Hamming distance (semantic hashing)"},
    [OPT_COSINE] = {"--cosine", NULL, NULL, "cosine distance instead of Euclidean, for codes and raw inputs alike"},
    [OPT_LABELS_FRACTION] = {"--labels-fraction", NULL, "X", "the fraction of the training set with labels (default 0.1)"},
    [OPT_DIM] = {"--dim", NULL, "D", "principal components kept"},
    [OPT_CSV] = {"--csv", NULL, "FILE", "a CSV file with a header line: x, then y"},
    [OPT_PROFILE] = {"--profile", NULL, NULL, "time every generated kernel; a table on stderr, totals on stdout"},
    [OPT_STEPS] = {"--steps", NULL, "LIST", "run only these steps, by loss name, comma-separated (default: every step)"},
    [OPT_BASELINE] = {"--baseline", NULL, "CKPT", "also measure this checkpoint (a plain autoencoder's) the same way"},
    [OPT_CHECKPOINT_EVERY] = {"--checkpoint-every", NULL, "N", "also save the checkpoint every N batches (--resume continues from that batch)"},
    [OPT_LAYER] = {"--layer", NULL, "NAME", "a layer as `summary` names it (encoder.conv_1)"},
    [OPT_CODES] = {"--codes", NULL, "FILE", "codes: a .csv as `encode -o codes.csv` writes it, or a .npy [n, code size]"},
    [OPT_FROM] = {"--from", NULL, "I", "the first sample's index in the data (from 0)"},
    [OPT_TO] = {"--to", NULL, "J", "the last sample's index in the data (from 0)"},
    // interpolate's --steps: another option of the same name as train's; each command finds its own
    [OPT_INTERP_STEPS] = {"--steps", NULL, "N", "codes on the line, both ends included (default 10)"},
    [OPT_SCALE] = {"--scale", NULL, "X", "divide every value of the data sets read by X (--scale 255: pixels 0-255 to [0, 1])"},
    [OPT_CLASSES] = {"--classes", NULL, "LIST", "train only on the samples with these labels, like 0-7,9 (the test set too)"},
    [OPT_THRESHOLD] = {"--threshold", NULL, "X", "flag the samples whose score is above X"},
    [OPT_FIT_ON] = {"--fit-on", NULL, "FILE", "the data --quantile and --sigma fit the threshold on, its --normal classes when labelled (default: the model's training data)"},
    [OPT_QUANTILE] = {"--quantile", NULL, "Q", "the threshold: the Q-quantile of the --fit-on scores (the default, 0.99)"},
    [OPT_SIGMA] = {"--sigma", NULL, "K", "the threshold: the mean of the --fit-on scores plus K standard deviations"},
    [OPT_NORMAL] = {"--normal", NULL, "LIST", "the normal classes, like 0-7,9: the other labels are anomalies (roc_auc, pr_auc, precision, recall)"},
    // detect's --baseline: another option of the same name as prior-match's
    [OPT_BASELINE_MEAN] = {"--baseline", NULL, "mean", "also score each sample by its squared distance to the mean --fit-on sample (baseline_roc_auc, baseline_pr_auc)"},
    // detect's --plot: another option of the same name as encode's
    [OPT_SCORE_PLOT] = {"--plot", NULL, "FILE", "draw the scores' histograms (normal and anomalous overlaid) with the threshold (PNG)"},
    [OPT_SAMPLE] = {"--sample", NULL, NULL, "a variational code: draw it (mean + exp(logvar / 2) * N(0, 1), from --seed) instead of giving the mean"},
    [OPT_VALIDATION] = {"--validation", NULL, "X|FILE", "hold out the fraction X of the training data (a fixed split, from the model's seed), or evaluate FILE; val.<loss> at each epoch's end"},
    [OPT_PATIENCE] = {"--patience", NULL, "N", "stop after N epochs without a better validation loss (the first step's); the best epoch's parameters go to CHECKPOINT.best.safetensors"},
    [OPT_BATCHES] = {"--batches", NULL, "N", "at most N batches an epoch (a quick trial)"},
};

#define BIT(o) (1ull << (o))  // N_OPTIONS <= 64
_Static_assert(N_OPTIONS <= 64, "command_spec.options holds 64 options");

typedef struct command_spec {
  const char *name;
  int (*run)(const aert_model *, const aert_options *);
  uint64_t options;  // BIT(option_id) of those it takes
  const char *usage;
  const char *help;
} command_spec;

static const command_spec commands[] = {
    {"train", aert_cmd_train,
     BIT(OPT_DATA) | BIT(OPT_TEST) | BIT(OPT_EPOCHS) | BIT(OPT_BATCH) | BIT(OPT_LR) | BIT(OPT_SEED) |
         BIT(OPT_THREADS) | BIT(OPT_CHECKPOINT) | BIT(OPT_RESUME) | BIT(OPT_LOG) | BIT(OPT_TRACE) |
         BIT(OPT_DUMP_RANDOM) | BIT(OPT_PROFILE) | BIT(OPT_STEPS) | BIT(OPT_CHECKPOINT_EVERY) | BIT(OPT_INIT) |
         BIT(OPT_VALIDATION) | BIT(OPT_PATIENCE) | BIT(OPT_BATCHES) | BIT(OPT_CLASSES),
     "[--data F] [--test F] [--validation 0.1|F [--patience N]] [--epochs N] [--batches N] [--batch N] [--lr X] "
     "[--seed N] [--init glorot|pytorch] [--threads N] [--checkpoint out.safetensors] [--resume ckpt] "
     "[--log train.csv] [--trace F] [--dump-random DIR] [--profile] [--steps recon,...] [--checkpoint-every N] "
     "[--classes 0-7,9]",
     "train the model, saving a checkpoint at each epoch's end"},
    {"eval", aert_cmd_eval, BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_BATCH) | BIT(OPT_THREADS) | BIT(OPT_SEED),
     "--checkpoint C [--data F] [--seed N]",
     "print every named loss on a data set (default: the test set); --seed keys what a loss draws (a prior's "
     "samples), else the training run's seed"},
    {"summary", aert_cmd_summary, 0, "", "print the layers, output shapes, parameters and FLOPs"},
    {"describe", aert_cmd_describe, 0, "", "print the model as JSON: its forward graph, losses and steps"},
    {"reconstruct", aert_cmd_reconstruct,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] -o grid.png [--count N]", "draw originals over their reconstructions"},
    {"encode", aert_cmd_encode,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_OUTPUT) | BIT(OPT_BATCH) | BIT(OPT_THREADS) | BIT(OPT_PLOT) |
         BIT(OPT_SAMPLE) | BIT(OPT_SEED),
     "--checkpoint C [--data F] -o codes.csv|codes.npy [--plot codes.png] [--sample [--seed N]]",
     "write each sample's code (label first when known); a variational code is its mean unless --sample draws it"},
    {"denoise", aert_cmd_denoise,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_NOISE) | BIT(OPT_SEED) |
         BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] -o grid.png [--count N] [--noise SPEC] [--seed N]",
     "corrupt images as in training (or by --noise), reconstruct them, and draw noisy / denoised / clean rows"},
    {"retrieve", aert_cmd_retrieve,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DB) | BIT(OPT_QUERIES) | BIT(OPT_K) | BIT(OPT_BINARY) | BIT(OPT_COSINE) | BIT(OPT_COUNT) |
         BIT(OPT_BATCH) | BIT(OPT_THREADS) | BIT(OPT_OUTPUT),
     "--checkpoint C [--db F] [--queries F] [-k 10] [--binary | --cosine] [--count N queries] [-o neighbours.npy]",
     "find each query's nearest codes; precision@k by label, against the same search on raw inputs"},
    {"filters", aert_cmd_filters, BIT(OPT_CHECKPOINT) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT),
     "--checkpoint C -o filters.png [--count N units, default all]", "draw each first-layer unit's incoming weights as a tile"},
    {"activations", aert_cmd_feature_maps,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_LAYER) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_BATCH) |
         BIT(OPT_THREADS),
     "--checkpoint C [--data F] --layer NAME [--count N samples, default 4] -o maps.png",
     "draw a layer's feature maps for the first N samples, and the input patches (each cropped to the unit's "
     "receptive field) that activate each channel most over the first 5000 samples of the data (default: the test "
     "set); a dense layer's units as bars, with their strongest whole inputs"},
    {"decode", aert_cmd_decode,
     BIT(OPT_CHECKPOINT) | BIT(OPT_CODES) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C --codes codes.csv|codes.npy -o grid.png|out.npy [-n N codes, default all]",
     "decode codes (as encode writes them) into samples: a grid of images, or a .npy array [n, sample shape]"},
    {"sample", aert_cmd_sample,
     BIT(OPT_CHECKPOINT) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_SEED) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C -o grid.png|out.npy [-n N samples, default 64] [--seed N]",
     "draw codes from the model's prior (N(0, 1) for a sample_normal code, else the prior its critic matches) and "
     "decode them"},
    {"interpolate", aert_cmd_interpolate,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_FROM) | BIT(OPT_TO) | BIT(OPT_INTERP_STEPS) | BIT(OPT_OUTPUT) |
         BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] --from I --to J [--steps 10] -o strip.png|out.npy",
     "encode samples I and J, and decode codes evenly spaced on the line between theirs: one strip"},
    {"manifold", aert_cmd_manifold,
     BIT(OPT_CHECKPOINT) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C -o manifold.png|out.npy [-n 20 codes a side]",
     "for a 2-d code: decode an n x n grid of codes at the prior's quantiles (i + 0.5) / n in each dimension"},
    {"histogram", aert_cmd_histogram,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_OUTPUT) | BIT(OPT_COUNT) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] -o hist.png [--count N dimensions]",
     "draw the distribution of each code dimension; print the codes' mean and spread"},
    {"probe", aert_cmd_probe,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_TEST) | BIT(OPT_LABELS_FRACTION) | BIT(OPT_EPOCHS) |
         BIT(OPT_SEED) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] [--test F] [--labels-fraction 0.1] [--epochs 30] [--seed N]",
     "train a softmax classifier on the codes of a labelled fraction, and the same on raw inputs; test accuracy"},
    {"pca", aert_cmd_pca,
     BIT(OPT_DIM) | BIT(OPT_DATA) | BIT(OPT_TEST) | BIT(OPT_CHECKPOINT) | BIT(OPT_BATCH) | BIT(OPT_THREADS),
     "--dim D [--data F] [--test F] [--checkpoint C]",
     "the test reconstruction MSE of a D-component PCA fitted on the data, and the autoencoder's with --checkpoint"},
    {"plot-xy", aert_cmd_plot_xy, BIT(OPT_CSV) | BIT(OPT_OUTPUT), "--csv F -o plot.png",
     "draw the second column of a CSV file against the first (needs no model)"},
    {"prior-match", aert_cmd_prior_match,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_BASELINE) | BIT(OPT_COUNT) | BIT(OPT_SEED) | BIT(OPT_BATCH) |
         BIT(OPT_THREADS),
     "--checkpoint C [--data F] [--baseline CKPT] [--count N] [--seed N]",
     "how well the codes match the prior: each dimension's mean and std against the prior's, and the energy "
     "distance between codes and as many prior samples"},
    {"score", aert_cmd_score, BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_OUTPUT) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] -o scores.csv|scores.npy",
     "write each sample's reconstruction error: its value of the first loss that reads the reconstruction "
     "(label first when known)"},
    {"detect", aert_cmd_detect,
     BIT(OPT_CHECKPOINT) | BIT(OPT_DATA) | BIT(OPT_THRESHOLD) | BIT(OPT_FIT_ON) | BIT(OPT_QUANTILE) | BIT(OPT_SIGMA) |
         BIT(OPT_NORMAL) | BIT(OPT_BASELINE_MEAN) | BIT(OPT_OUTPUT) | BIT(OPT_SCORE_PLOT) | BIT(OPT_THREADS),
     "--checkpoint C [--data F] [--threshold X | [--fit-on F] --quantile 0.99 | [--fit-on F] --sigma 3] "
     "[--normal 0,1,...] [--baseline mean] [-o flags.csv] [--plot hist.png]",
     "flag the samples whose score (as score computes it) is above a threshold; with --normal, the ROC and "
     "precision-recall areas and the precision and recall at the threshold"},
    {"gradcheck", aert_cmd_gradcheck,
     BIT(OPT_DATA) | BIT(OPT_BATCH) | BIT(OPT_SEED) | BIT(OPT_SAMPLES) | BIT(OPT_THREADS),
     "[--data F] [--batch N] [--seed N] [--samples K]",
     "compare gradients with finite differences (a developer check)"},
    {"time-kernels", aert_cmd_time_kernels,
     BIT(OPT_DATA) | BIT(OPT_BATCH) | BIT(OPT_SEED) | BIT(OPT_COUNT) | BIT(OPT_THREADS),
     "[--data F] [--batch N] [--seed N] [--count R repeats, default 20]",
     "time every step's kernels on one batch, repeated without an update; the products' best and median rate "
     "(a developer check, as make bench times OpenBLAS)"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof *commands)

static void print_usage(FILE *out, const aert_model *model) {
  fprintf(out, "usage: %s COMMAND [OPTIONS]\n\n%s: an autoencoder compiled by aec from %s\n\ncommands:\n",
          aert_program(), model->name, model->source_file ? model->source_file : "?");
  for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].help);
  fprintf(out, "\n'%s COMMAND --help' lists a command's options.\n", aert_program());
}

// The options a command takes: its own, and --scale where it reads a data set.
static uint64_t options_of(const command_spec *c) {
  return c->options | (c->options & (BIT(OPT_DATA) | BIT(OPT_TEST) | BIT(OPT_DB) | BIT(OPT_QUERIES)) ? BIT(OPT_SCALE) : 0);
}

static void print_command_help(FILE *out, const command_spec *c) {
  fprintf(out, "usage: %s %s %s\n\n%s\n", aert_program(), c->name, c->usage, c->help);
  if (c->options) fprintf(out, "\noptions:\n");
  for (int o = 0; o < N_OPTIONS; o++) {
    if (!(options_of(c) & BIT(o))) continue;
    const option_spec *s = &option_specs[o];
    char flag[64];
    snprintf(flag, sizeof flag, "%s%s%s%s%s", s->alias ? s->alias : "", s->alias ? ", " : "", s->name,
             s->metavar ? " " : "", s->metavar ? s->metavar : "");
    fprintf(out, "  %-22s %s\n", flag, s->help);
  }
  fprintf(out, "  %-22s %s\n", "-h, --help", "show this help");
}

static bool parse_int(const char *option, const char *text, int min, int *out) {
  char *end;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (!*text || *end || errno || v < min || v > INT32_MAX) {
    aert_error("%s needs an integer of at least %d, not '%s'", option, min, text);
    return false;
  }
  *out = (int)v;
  return true;
}

static bool parse_u64(const char *option, const char *text, uint64_t *out) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 10);
  if (!*text || *end || errno || text[0] == '-') {
    aert_error("%s needs a non-negative integer, not '%s'", option, text);
    return false;
  }
  *out = v;
  return true;
}

static bool parse_real(const char *option, const char *text, double *out) {
  char *end;
  errno = 0;
  double v = strtod(text, &end);
  if (!*text || *end || errno || !isfinite(v)) {
    aert_error("%s needs a number, not '%s'", option, text);
    return false;
  }
  *out = v;
  return true;
}

// Stores one option's value in `o`; false after a message.
static bool set_option(aert_options *o, option_id id, const char *name, const char *value) {
  switch (id) {
  case OPT_DATA: o->data = value, o->has_data = true; return true;
  case OPT_TEST: o->test = value, o->has_test = true; return true;
  case OPT_CHECKPOINT: o->checkpoint = value; return true;
  case OPT_RESUME: o->resume = value; return true;
  case OPT_LOG: o->log = value; return true;
  case OPT_OUTPUT: o->output = value; return true;
  case OPT_TRACE: o->trace = value; return true;
  case OPT_DUMP_RANDOM: o->dump_random = value; return true;
  case OPT_PLOT: o->plot = value; return true;
  case OPT_NOISE: o->noise = value; return true;
  case OPT_DB: o->db = value; return true;
  case OPT_QUERIES: o->queries = value; return true;
  case OPT_CSV: o->csv = value; return true;
  case OPT_BINARY: o->binary = true; return true;
  case OPT_COSINE: o->cosine = true; return true;
  case OPT_SAMPLE: o->sample = true; return true;
  case OPT_PROFILE: o->profile = true; return true;
  case OPT_STEPS: o->steps = value; return true;
  case OPT_CHECKPOINT_EVERY: return parse_int(name, value, 1, &o->checkpoint_every);
  case OPT_BASELINE: o->baseline = value; return true;
  case OPT_BASELINE_MEAN: o->baseline = value; return true;
  case OPT_SCORE_PLOT: o->plot = value; return true;
  case OPT_CLASSES: o->classes = value; return true;
  case OPT_FIT_ON: o->fit_on = value; return true;
  case OPT_NORMAL: o->normal = value; return true;
  case OPT_THRESHOLD: return o->has_threshold = parse_real(name, value, &o->threshold);
  case OPT_SIGMA: return o->has_sigma = aert_parse_positive(name, value, &o->sigma);
  case OPT_QUANTILE:
    if (!aert_parse_positive(name, value, &o->quantile) || o->quantile > 1) {
      if (o->quantile > 1) aert_error("%s needs a fraction in (0, 1], like 0.99, not '%s'", name, value);
      return false;
    }
    return o->has_quantile = true;
  case OPT_LAYER: o->layer = value; return true;
  case OPT_CODES: o->codes = value; return true;
  case OPT_FROM: return o->has_from = parse_int(name, value, 0, &o->from);
  case OPT_TO: return o->has_to = parse_int(name, value, 0, &o->to);
  case OPT_INTERP_STEPS: return o->has_interp_steps = parse_int(name, value, 2, &o->interp_steps);
  case OPT_K: return o->has_k = parse_int(name, value, 1, &o->k);
  case OPT_DIM: return o->has_dim = parse_int(name, value, 1, &o->dim);
  case OPT_LABELS_FRACTION: return o->has_labels_fraction = aert_parse_positive(name, value, &o->labels_fraction);
  case OPT_EPOCHS: return o->has_epochs = parse_int(name, value, 0, &o->epochs);
  case OPT_BATCH: return o->has_batch = parse_int(name, value, 1, &o->batch);
  case OPT_THREADS: return o->has_threads = parse_int(name, value, 1, &o->threads);
  case OPT_COUNT: return o->has_count = parse_int(name, value, 1, &o->count);
  case OPT_SAMPLES: return o->has_samples = parse_int(name, value, 1, &o->samples);
  case OPT_LR: o->lr_spec = value; return o->has_lr = true;  // checked against the model's steps by train
  case OPT_SEED: return o->has_seed = parse_u64(name, value, &o->seed);
  case OPT_SCALE: return o->has_scale = aert_parse_positive(name, value, &o->scale);
  case OPT_INIT:
    if (strcmp(value, "glorot") == 0 || strcmp(value, "pytorch") == 0) return o->init_pytorch = value[0] == 'p', true;
    aert_error("%s takes glorot or pytorch, not '%s'", name, value);
    return false;
  case OPT_VALIDATION: o->validation = value; return true;  // a fraction or a file: train tells them apart
  case OPT_PATIENCE: return o->has_patience = parse_int(name, value, 1, &o->patience);
  case OPT_BATCHES: return o->has_batches = parse_int(name, value, 1, &o->batches);
  case N_OPTIONS: break;
  }
  return false;
}

// The option the command takes by that name (two options may share a name:
// train's and interpolate's --steps, prior-match's and detect's --baseline,
// encode's and detect's --plot), else any, else -1.
static int find_option(const char *arg, size_t length, uint64_t takes) {
  for (int o = 0; o < N_OPTIONS; o++) {
    const option_spec *s = &option_specs[o];
    if (!(takes & BIT(o))) continue;
    if ((strlen(s->name) == length && strncmp(arg, s->name, length) == 0) ||
        (s->alias && strlen(s->alias) == length && strncmp(arg, s->alias, length) == 0))
      return o;
  }
  for (int o = 0; o < N_OPTIONS; o++) {
    const option_spec *s = &option_specs[o];
    if ((strlen(s->name) == length && strncmp(arg, s->name, length) == 0) ||
        (s->alias && strlen(s->alias) == length && strncmp(arg, s->alias, length) == 0))
      return o;
  }
  return -1;
}

// Parses argv[2..] for command c. Returns -1 to go on, else an exit status.
static int parse_options(const command_spec *c, int argc, char **argv, aert_options *o) {
  for (int i = 2; i < argc; i++) {
    const char *arg = argv[i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      print_command_help(stdout, c);
      return AERT_EXIT_OK;
    }
    if (arg[0] != '-' || arg[1] == 0) {
      aert_error("%s: unexpected argument '%s' (see '%s %s --help')", c->name, arg, aert_program(), c->name);
      return AERT_EXIT_USAGE;
    }
    const char *eq = strchr(arg, '=');
    size_t length = eq && arg[1] == '-' ? (size_t)(eq - arg) : strlen(arg);
    int id = find_option(arg, length, options_of(c));
    if (id < 0 || !(options_of(c) & BIT(id))) {
      aert_error("%s: unknown option '%.*s' (see '%s %s --help')", c->name, (int)length, arg, aert_program(), c->name);
      return AERT_EXIT_USAGE;
    }
    const char *value = eq && arg[1] == '-' ? eq + 1 : NULL;
    if (!option_specs[id].metavar) {  // a flag
      if (value) {
        aert_error("%s: option %s takes no value", c->name, option_specs[id].name);
        return AERT_EXIT_USAGE;
      }
      set_option(o, (option_id)id, option_specs[id].name, NULL);
      continue;
    }
    if (!value) {
      if (i + 1 >= argc) {
        aert_error("%s: option %s needs a value (%s)", c->name, option_specs[id].name, option_specs[id].metavar);
        return AERT_EXIT_USAGE;
      }
      value = argv[++i];
    }
    if (!set_option(o, (option_id)id, option_specs[id].name, value)) return AERT_EXIT_USAGE;
  }
  return -1;
}

// --lr names the model's steps, so it is checked once the model is known.
static bool check_lr(const aert_model *model, const char *spec) {
  double *lr = calloc((size_t)model->n_steps + 1, sizeof *lr);
  bool ok = lr && aert_override_lr(model, spec, lr, NULL);
  free(lr);
  return ok;
}

// A command that reads a checkpoint, given none, reads the one train writes
// by default (PROGRAM.safetensors) when it is here, and says so; else the
// message says how to get one. pca's is optional, train's is what it writes.
static bool default_checkpoint(const command_spec *c, aert_options *o, char **path) {
  if (o->checkpoint || !(c->options & BIT(OPT_CHECKPOINT)) || strcmp(c->name, "train") == 0 ||
      strcmp(c->name, "pca") == 0)
    return true;
  struct stat st;
  if (asprintf(path, "%s.safetensors", aert_program()) < 0) return *path = NULL, false;
  if (stat(*path, &st) == 0 && S_ISREG(st.st_mode)) {
    aert_note("reading %s, the checkpoint train writes by default (--checkpoint F reads another)", *path);
    o->checkpoint = *path;
    return true;
  }
  aert_error("%s needs --checkpoint FILE: a checkpoint train wrote (by default %s, which is not here)", c->name, *path);
  return false;
}

static int run_command_line(const aert_model *model, int argc, char **argv) {
  if (!model || model->abi_version != AERT_ABI_VERSION) {
    aert_error("this program was generated for libaert ABI %d, the runtime is ABI %d; regenerate it with aec",
               model ? model->abi_version : -1, AERT_ABI_VERSION);
    return AERT_EXIT_FAILURE;
  }
  if (argc < 2) {
    print_usage(stderr, model);
    return AERT_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
    print_usage(stdout, model);
    return AERT_EXIT_OK;
  }
  for (int i = 0; i < N_COMMANDS; i++) {
    if (strcmp(argv[1], commands[i].name) != 0) continue;
    aert_options options = {.command = commands[i].name};
    int status = parse_options(&commands[i], argc, argv, &options);
    if (status >= 0) return status;
    if (options.has_lr && !check_lr(model, options.lr_spec)) return AERT_EXIT_USAGE;
    char *trained = NULL;
    if (!default_checkpoint(&commands[i], &options, &trained)) return AERT_EXIT_USAGE;
    aert_data_scale = options.has_scale ? options.scale : 0;
    if (!aert_reserve_stacks(model)) return AERT_EXIT_FAILURE;
    // -o and --plot can be written (a temporary made and removed beside each) before any work.
    if ((options.output && !aert_output_check(options.output, "the output")) ||
        (options.plot && !aert_output_check(options.plot, "the plot")))
      return AERT_EXIT_FAILURE;
    aert_catch_signals(false);  // SIGINT, SIGTERM: the files being written are removed (train defers them)
    status = commands[i].run(model, &options);
    fflush(stdout);
    free(trained);
    return status;
  }
  aert_error("unknown command '%s' (see '%s --help')", argv[1], aert_program());
  return AERT_EXIT_USAGE;
}

int aert_main(const aert_model *model, int argc, char **argv) { return aert_main_with(model, argc, argv, NULL); }

// Under mpirun every process runs main. train goes on in all of them, each
// on its share of every batch, and only process 0 prints figures and writes
// files (the others' stdout goes to /dev/null); any other command runs in
// process 0 alone.
int aert_main_with(const aert_model *model, int argc, char **argv, aert_comm_opener *open) {
  aert_set_program(argc > 0 ? argv[0] : NULL);
  aert_comm *comm = open ? open(&argc, &argv) : NULL;
  if (open && !comm) return AERT_EXIT_FAILURE;
  if (comm && comm->size > 1) {
    if (argc < 2 || strcmp(argv[1], "train") != 0) {
      if (comm->rank != 0) {
        comm->finish(comm, AERT_EXIT_OK);
        return AERT_EXIT_OK;
      }
    } else {
      aert_set_world(comm);
      if (comm->rank != 0 && !freopen("/dev/null", "w", stdout)) {
        aert_error("process %d: cannot send its standard output to /dev/null", comm->rank);
        comm->finish(comm, AERT_EXIT_FAILURE);
        return AERT_EXIT_FAILURE;
      }
    }
  }
  int status = run_command_line(model, argc, argv);
  fflush(stdout);
  aert_set_world(NULL);
  if (comm) comm->finish(comm, status);
  return status;
}
