// anomaly.c — anomaly detection with a trained autoencoder: score (each
// sample's reconstruction error, as CSV or .npy) and detect (a threshold on
// it, given, or fitted on data as a quantile or as mean + k standard
// deviations; the samples above it flagged; with labels and the normal
// classes named, the ROC and precision-recall areas and the precision and
// recall at the threshold, against the distance to the mean image when
// asked; the two groups' histograms drawn with the threshold).
//
// A sample's score is the model's reconstruction loss on that sample alone:
// the first named loss whose value depends on the reconstruction (by the
// model's description; else the first named loss), computed in inference
// mode (eval_losses) on a batch of one, in one thread unless --threads says
// otherwise. The losses are batch means, so the scores' mean is eval's value
// of that loss on the same data.
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "analysis.h"
#include "data.h"
#include "draw.h"

// ------------------------------------------------------------- the scores
static bool json_id(const json_value *v, size_t limit, size_t *out) {
  uint64_t u;
  if (!v || !json_as_u64(v, &u) || u >= limit) return false;
  *out = (size_t)u;
  return true;
}

// The index of the loss that scores samples: the first named loss that reads
// the reconstruction (through any path of the description's forward graph),
// else 0 (a model without a description or a reconstruction).
static int score_loss(const aert_model *model) {
  if (!model->description) return 0;
  char error[128];
  json_value *d = json_parse(model->description, strlen(model->description), error, sizeof error);
  const json_value *nodes = d ? json_get(d, "nodes") : NULL, *losses = d ? json_get(d, "losses") : NULL;
  size_t recon, limit = 0;
  int found = 0;
  if (!nodes || nodes->type != JSON_ARRAY || !losses || losses->type != JSON_ARRAY) goto done;
  for (size_t i = 0; i < nodes->count; i++) {
    uint64_t id;
    if (json_as_u64(json_get(&nodes->items[i], "id"), &id) && id + 1 > limit && id < SIZE_MAX / 2) limit = id + 1;
  }
  bool *reads = calloc(limit + 1, sizeof *reads);
  if (!reads || !json_id(json_get(d, "reconstruction"), limit, &recon)) {
    free(reads);
    goto done;
  }
  reads[recon] = true;
  for (size_t i = 0; i < nodes->count; i++) {  // in topological order
    const json_value *inputs = json_get(&nodes->items[i], "inputs");
    size_t id, in;
    if (!json_id(json_get(&nodes->items[i], "id"), limit, &id) || !inputs || inputs->type != JSON_ARRAY) continue;
    for (size_t k = 0; k < inputs->count; k++)
      if (json_id(&inputs->items[k], limit, &in) && reads[in]) reads[id] = true;
  }
  for (size_t l = 0; l < losses->count && l < (size_t)model->n_losses; l++) {
    size_t node;
    if (json_id(json_get(&losses->items[l], "node"), limit, &node) && reads[node]) {
      found = (int)l;
      break;
    }
  }
  free(reads);
done:
  json_free(d);
  return found;
}

// Each sample's value of loss `loss` in inference mode, one sample a batch;
// the context's batches are one sample (aert_open_checkpoint's). False after a message.
static bool score_samples(const aert_model *model, const aert_options *options, aert_ctx *ctx,
                          const aert_dataset *data, int loss, double *scores) {
  double *losses = calloc((size_t)model->n_losses + 1, sizeof *losses);
  if (!losses || !aert_ctx_set_capacity(model, ctx, 1)) return free(losses), false;
  // One sample is too little work to share: threads only wait on each other
  // (examples/anomaly.ae: 10000 samples in 1.4 s on one thread, 18 s on two).
  int threads = omp_get_max_threads();
  if (!options->has_threads) omp_set_num_threads(1);
  double start = aert_seconds();
  for (size_t i = 0; i < data->n; i++) {
    model->eval_losses(ctx, data->x + i * data->sample_size, 1, losses);
    scores[i] = losses[loss];
  }
  omp_set_num_threads(threads);
  fprintf(stderr, "%s: scored %zu samples of %s by their loss '%s' in %.1f s\n", aert_program(), data->n, data->path,
          model->loss_names[loss], aert_seconds() - start);
  free(losses);
  return true;
}

// The scores of a data set, into a new array; NULL after a message.
static double *score_all(const aert_model *model, const aert_options *options, aert_ctx *ctx,
                         const aert_dataset *data, int loss) {
  double *scores = malloc((data->n ? data->n : 1) * sizeof *scores);
  if (!scores) return aert_error("out of memory for %zu scores", data->n), NULL;
  if (!score_samples(model, options, ctx, data, loss, scores)) return free(scores), NULL;
  return scores;
}

static bool check_model(const aert_model *model, const char *command) {
  if (model->n_losses > 0 && model->eval_losses) return true;
  aert_error("%s: model '%s' has no named loss to score samples with", command, model->name);
  return false;
}

// ------------------------------------------------------------------ score
// scores.npy: float64 [n]; with labels, scores.labels.npy: int32 [n] (as encode writes codes).
static bool write_scores(const char *path, const aert_dataset *data, const double *scores) {
  if (aert_is_npy_path(path)) {
    if (!aert_write_npy(path, "the scores", "<f8", &data->n, 1, scores, sizeof *scores)) return false;
    if (!data->labels) return true;
    char *labels_path = NULL;
    if (asprintf(&labels_path, "%.*s.labels.npy", (int)(strlen(path) - 4), path) < 0) return false;
    bool ok = aert_write_npy(labels_path, "the labels", "<i4", &data->n, 1, data->labels, sizeof(int32_t));
    if (ok) fprintf(stderr, "%s: wrote the labels to %s\n", aert_program(), labels_path);
    free(labels_path);
    return ok;
  }
  aert_output *out = aert_output_begin(path, "the scores");
  if (!out) return false;
  FILE *f = aert_output_stream(out);
  fprintf(f, data->labels ? "label,score\n" : "score\n");
  for (size_t i = 0; i < data->n; i++) {
    if (data->labels) fprintf(f, "%d,", (int)data->labels[i]);
    fprintf(f, "%.9g\n", scores[i]);
  }
  return aert_output_commit(out);
}

int aert_cmd_score(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("score needs -o scores.csv or -o scores.npy"), AERT_EXIT_USAGE;
  if (!check_model(model, "score")) return AERT_EXIT_FAILURE;
  int loss = score_loss(model);
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  double *scores = data ? score_all(model, options, ctx, data, loss) : NULL;
  int status = AERT_EXIT_FAILURE;
  if (scores && write_scores(options->output, data, scores)) {
    double mean, std;
    aert_mean_std(scores, data->n, &mean, &std);
    fprintf(stderr, "%s: wrote %s: %zu scores%s, mean %.6g (eval's %s), std %.6g\n", aert_program(), options->output,
            data->n, data->labels ? " with labels" : "", mean, model->loss_names[loss], std);
    status = AERT_EXIT_OK;
  }
  free(scores);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ----------------------------------------------------------------- detect
typedef struct detect_run {
  const aert_model *model;
  const aert_options *options;
  aert_ctx *ctx;
  int loss;
  bool *normal;            // --normal's classes (member[label]), or NULL
  aert_dataset *data;      // the data searched for anomalies
  double *scores;
  bool *anomalous;         // by label, with --normal and labels; else NULL
  size_t n_anomalous;
  aert_dataset *fit;       // --fit-on's data (normal classes only, when labelled), when loaded
  double threshold;
  char how[256];           // how the threshold was found
} detect_run;

// --fit-on's data (default: the model's training data), cut to the normal classes when it has labels.
static bool load_fit(detect_run *r) {
  const aert_options *o = r->options;
  if (r->fit) return true;
  r->fit = aert_load_model_data(r->model, o->fit_on ? o->fit_on : r->model->default_data);
  if (!r->fit) return false;
  if (!r->normal) return true;
  if (!r->fit->labels) {
    aert_note("%s has no labels: the threshold is fitted on all its samples", r->fit->path);
    return true;
  }
  size_t before = r->fit->n;
  if (!aert_dataset_keep_classes(r->fit, r->normal, "--normal", o->normal)) return false;
  fprintf(stderr, "%s: fitting on the %zu samples of %s in the normal classes %s (of %zu)\n", aert_program(),
          r->fit->n, r->fit->path, o->normal, before);
  return true;
}

static bool find_threshold(detect_run *r) {
  const aert_options *o = r->options;
  if (o->has_threshold) {
    r->threshold = o->threshold;
    snprintf(r->how, sizeof r->how, "given");
    return true;
  }
  if (!load_fit(r)) return false;
  double *fit_scores = score_all(r->model, r->options, r->ctx, r->fit, r->loss);
  if (!fit_scores) return false;
  if (o->has_sigma) {
    double mean, std;
    aert_mean_std(fit_scores, r->fit->n, &mean, &std);
    r->threshold = mean + o->sigma * std;
    snprintf(r->how, sizeof r->how, "mean %.6g + %g x std %.6g of %zu scores of %s", mean, o->sigma, std, r->fit->n,
             r->fit->path);
  } else {
    double q = o->has_quantile ? o->quantile : 0.99;
    r->threshold = aert_quantile(fit_scores, r->fit->n, q);
    snprintf(r->how, sizeof r->how, "quantile %g of %zu scores of %s", q, r->fit->n, r->fit->path);
  }
  free(fit_scores);
  return true;
}

// --baseline mean: each sample's mean squared distance to the mean of the
// --fit-on data (its normal classes), scored and measured as the model is.
static bool baseline_mean(detect_run *r) {
  if (!load_fit(r)) return false;
  size_t size = r->data->sample_size, n = r->data->n;
  double *mean = calloc(size, sizeof *mean), *scores = malloc((n ? n : 1) * sizeof *scores);
  bool ok = mean && scores;
  if (!ok) aert_error("out of memory for the baseline");
  for (size_t i = 0; ok && i < r->fit->n; i++)
    for (size_t j = 0; j < size; j++) mean[j] += r->fit->x[i * size + j];
  for (size_t j = 0; ok && j < size; j++) mean[j] /= (double)r->fit->n;
  for (size_t i = 0; ok && i < n; i++) {
    double sum = 0;
    for (size_t j = 0; j < size; j++) {
      double e = r->data->x[i * size + j] - mean[j];
      sum += e * e;
    }
    scores[i] = sum / (double)size;
  }
  if (ok) {
    printf("baseline_roc_auc %.6f\n", aert_roc_auc(scores, r->anomalous, n));
    printf("baseline_pr_auc %.6f\n", aert_average_precision(scores, r->anomalous, n));
    fprintf(stderr, "%s: baseline: the mean squared distance to the mean of %zu samples of %s\n", aert_program(),
            r->fit->n, r->fit->path);
  }
  free(mean), free(scores);
  return ok;
}

// -o flags.csv: [label,]score,anomaly per sample; flags.npy: uint8 [n].
static bool write_flags(const detect_run *r, const bool *flagged) {
  const char *path = r->options->output;
  size_t n = r->data->n;
  if (aert_is_npy_path(path)) {
    unsigned char *bytes = malloc(n ? n : 1);
    if (!bytes) return aert_error("out of memory for %s", path), false;
    for (size_t i = 0; i < n; i++) bytes[i] = flagged[i];
    bool ok = aert_write_npy(path, "the flags", "|u1", &n, 1, bytes, 1);
    free(bytes);
    return ok;
  }
  aert_output *out = aert_output_begin(path, "the flags");
  if (!out) return false;
  FILE *f = aert_output_stream(out);
  const int32_t *labels = r->data->labels;
  fprintf(f, labels ? "label,score,anomaly\n" : "score,anomaly\n");
  for (size_t i = 0; i < n; i++) {
    if (labels) fprintf(f, "%d,", (int)labels[i]);
    fprintf(f, "%.9g,%d\n", r->scores[i], flagged[i]);
  }
  return aert_output_commit(out);
}

static bool plot_scores(const detect_run *r) {
  size_t n = r->data->n;
  double lo = INFINITY, hi = aert_quantile(r->scores, n, 0.995);
  for (size_t i = 0; i < n; i++) lo = fmin(lo, r->scores[i]);
  if (isfinite(r->threshold)) hi = fmax(hi, r->threshold), lo = fmin(lo, r->threshold);
  hi += 0.03 * (hi - lo);
  char title[256], xlabel[128];
  const char *base = strrchr(r->data->path, '/');
  snprintf(title, sizeof title, "%s: the scores of %zu samples of %s", r->model->name, n, base ? base + 1 : r->data->path);
  snprintf(xlabel, sizeof xlabel, "score: each sample's loss '%s'", r->model->loss_names[r->loss]);
  char normal[96] = "all samples";
  if (r->anomalous) snprintf(normal, sizeof normal, "normal: classes %s", r->options->normal);
  const char *names[2] = {normal, "anomalous: the other classes"};
  if (aert_plot_score_histograms(r->options->plot, r->scores, r->anomalous, n, lo, hi, r->threshold, names, xlabel,
                                 title) != 0)
    return false;
  fprintf(stderr, "%s: wrote %s\n", aert_program(), r->options->plot);
  return true;
}

// The figures and the table of flags against labels.
static void report(const detect_run *r, const bool *flagged) {
  size_t n = r->data->n, count[2][2] = {{0, 0}, {0, 0}};  // [anomalous][flagged]
  for (size_t i = 0; i < n; i++) count[r->anomalous ? r->anomalous[i] : 0][flagged[i]]++;
  fprintf(stderr, "%s: threshold %.6g (%s); %zu of %zu samples flagged\n", aert_program(), r->threshold, r->how,
          count[0][1] + count[1][1], n);
  if (!r->anomalous || r->n_anomalous == 0 || r->n_anomalous == n) {
    printf("threshold %.9g\n", r->threshold);
    return;
  }
  fprintf(stderr, "  %-28s %10s %12s\n", "", "flagged", "not flagged");
  char normal[64];
  snprintf(normal, sizeof normal, "normal (%s)", r->options->normal);
  fprintf(stderr, "  %-28s %10zu %12zu\n", "anomalous (other classes)", count[1][1], count[1][0]);
  fprintf(stderr, "  %-28s %10zu %12zu\n", normal, count[0][1], count[0][0]);
  size_t tp = count[1][1], fp = count[0][1];
  printf("roc_auc %.6f\n", aert_roc_auc(r->scores, r->anomalous, n));
  printf("pr_auc %.6f\n", aert_average_precision(r->scores, r->anomalous, n));
  printf("threshold %.9g\n", r->threshold);
  printf("precision %.6f\n", tp + fp ? (double)tp / (double)(tp + fp) : 0.0);
  printf("recall %.6f\n", (double)tp / (double)r->n_anomalous);
}

static int check_detect_options(const aert_options *o) {
  int ways = o->has_threshold + o->has_quantile + o->has_sigma;
  if (ways > 1) {
    aert_error("detect: give one of --threshold X, --quantile Q and --sigma K");
    return AERT_EXIT_USAGE;
  }
  if (o->has_threshold && o->fit_on) {
    aert_error("detect: --threshold %g is the threshold itself; --fit-on goes with --quantile or --sigma", o->threshold);
    return AERT_EXIT_USAGE;
  }
  if (o->baseline && strcmp(o->baseline, "mean") != 0) {
    aert_error("detect: --baseline takes mean (each sample's distance to the mean --fit-on sample), not '%s'",
               o->baseline);
    return AERT_EXIT_USAGE;
  }
  if (o->baseline && !o->normal) {
    aert_error("detect: --baseline mean is measured against labels: name the normal classes with --normal");
    return AERT_EXIT_USAGE;
  }
  return -1;
}

static bool detect(detect_run *r) {
  const aert_options *o = r->options;
  r->data = aert_load_model_data(r->model, o->has_data ? o->data : r->model->default_test);
  if (!r->data) return false;
  size_t n = r->data->n;
  if (r->normal) {
    if (!r->data->labels) {
      aert_error("%s: --normal %s names classes by label, and this data set has none", r->data->path, o->normal);
      return false;
    }
    if (!(r->anomalous = malloc(n ? n : 1))) return aert_error("out of memory for %zu flags", n), false;
    for (size_t i = 0; i < n; i++) {
      int32_t label = r->data->labels[i];
      r->anomalous[i] = label < 0 || label > AERT_MAX_LABEL || !r->normal[label];
      r->n_anomalous += r->anomalous[i];
    }
    if (r->n_anomalous == 0 || r->n_anomalous == n)
      aert_note("%s: %s sample is in the normal classes %s: no areas to measure", r->data->path,
                r->n_anomalous ? "no" : "every", o->normal);
  }
  if (!(r->scores = score_all(r->model, r->options, r->ctx, r->data, r->loss)) || !find_threshold(r)) return false;
  bool *flagged = malloc(n ? n : 1);
  if (!flagged) return aert_error("out of memory for %zu flags", n), false;
  for (size_t i = 0; i < n; i++) flagged[i] = !(r->scores[i] <= r->threshold);  // NaN is flagged
  report(r, flagged);
  bool ok = (!o->baseline || r->n_anomalous == 0 || r->n_anomalous == n || baseline_mean(r)) &&
            (!o->output || write_flags(r, flagged)) && (!o->plot || plot_scores(r));
  if (ok && o->output) fprintf(stderr, "%s: wrote %s\n", aert_program(), o->output);
  free(flagged);
  return ok;
}

int aert_cmd_detect(const aert_model *model, const aert_options *options) {
  int status = check_detect_options(options);
  if (status >= 0) return status;
  if (!check_model(model, "detect")) return AERT_EXIT_FAILURE;
  detect_run r = {.model = model, .options = options, .loss = score_loss(model)};
  if (options->normal && !(r.normal = aert_parse_classes("--normal", options->normal))) return AERT_EXIT_USAGE;
  r.ctx = aert_open_checkpoint(model, options);
  status = r.ctx && detect(&r) ? AERT_EXIT_OK : AERT_EXIT_FAILURE;
  free(r.normal), free(r.scores), free(r.anomalous);
  aert_dataset_free(r.data);
  aert_dataset_free(r.fit);
  aert_ctx_free(model, r.ctx);
  return status;
}

// ------------------------------------------------------------ train --classes
bool aert_select_classes(const aert_options *options, aert_dataset *data) {
  if (!options->classes) return true;
  bool *member = aert_parse_classes("--classes", options->classes);
  size_t before = data->n;
  bool ok = member && aert_dataset_keep_classes(data, member, "--classes", options->classes);
  if (ok && aert_is_root())  // under mpirun, one line for all the processes
    fprintf(stderr, "%s: --classes %s: %zu of the %zu samples of %s\n", aert_program(), options->classes, data->n,
            before, data->path);
  free(member);
  return ok;
}
