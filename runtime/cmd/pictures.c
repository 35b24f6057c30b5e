// pictures.c — the commands that draw what a trained model holds: filters
// (the first layer's weights, a tile per unit, or per filter and channel of a
// first conv layer) and histogram (each code dimension's distribution); and
// plot-xy, a chart of a CSV file that needs no model (examples/sweep.sh).
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "draw.h"

// ----------------------------------------------------------------- filters
// `filters` for a first conv layer (kernel [filters, in, k, k]): each
// filter's k x k weights, one tile per (filter, input channel), a row of
// tiles per filter when there are several channels.
static int draw_conv_filters(const aert_model *model, const aert_options *options, const aert_param *kernel) {
  int filters = kernel->shape[0], channels = kernel->shape[1], k = kernel->shape[2];
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  int count = options->has_count && options->count < filters ? options->count : filters;
  // One filter a tile row when it has several channels; a square grid otherwise.
  int cols = channels > 1 ? channels : (int)ceil(sqrt((double)count));
  int rows = channels > 1 ? count : (count + cols - 1) / cols;
  size_t pixels = (size_t)k * (size_t)k;
  aert_real *tiles = aert_alloc_reals((size_t)rows * (size_t)cols, pixels, "filter tiles");
  int status = AERT_EXIT_FAILURE;
  if (tiles) {
    const aert_real *w = ctx->params + kernel->offset;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols * pixels; i++) tiles[i] = 1;  // unused tiles: white
    for (int f = 0; f < count; f++) {
      // Each filter zero at mid grey, scaled by its own largest magnitude.
      const aert_real *wf = w + (size_t)f * (size_t)channels * pixels;
      double peak = 1e-30;
      for (size_t p = 0; p < (size_t)channels * pixels; p++) peak = fmax(peak, fabs((double)wf[p]));
      for (int c = 0; c < channels; c++)
        for (size_t p = 0; p < pixels; p++)
          tiles[((size_t)f * (size_t)channels + (size_t)c) * pixels + p] =
              (aert_real)(0.5 + 0.5 * wf[(size_t)c * pixels + p] / peak);
    }
    if (aert_write_image_grid(options->output, tiles, rows, cols, k, k) == 0) {
      fprintf(stderr, "%s: wrote %s (%d of the %d filters of %s, %d channel%s each; grey is 0, white positive, black negative)\n",
              aert_program(), options->output, count, filters, kernel->name, channels, channels == 1 ? "" : "s");
      status = AERT_EXIT_OK;
    }
  }
  aert_free(tiles);
  aert_ctx_free(model, ctx);
  return status;
}

int aert_cmd_filters(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("filters needs -o FILE.png"), AERT_EXIT_USAGE;
  const aert_param *kernel = NULL;
  for (int i = 0; model->first_kernel && i < model->n_params; i++)
    if (strcmp(model->params[i].name, model->first_kernel) == 0) kernel = &model->params[i];
  if (kernel && kernel->rank == 4) return draw_conv_filters(model, options, kernel);
  if (!kernel || kernel->rank != 2) {
    aert_error("model '%s' has no dense or conv layer applied to its input, so no filters to draw", model->name);
    return AERT_EXIT_FAILURE;
  }
  int height, width;
  aert_display_size(model, &height, &width);
  int in = kernel->shape[0], units = kernel->shape[1];
  size_t pixels = (size_t)height * (size_t)width;
  if ((size_t)in < pixels) height = 1, width = in, pixels = (size_t)in;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  int count = options->has_count ? options->count : units;
  if (count > units) count = units;
  int cols = (int)ceil(sqrt((double)count)), rows = (count + cols - 1) / cols;
  aert_real *tiles = aert_alloc_reals((size_t)rows * (size_t)cols, pixels, "filter tiles");
  int status = AERT_EXIT_FAILURE;
  if (tiles) {
    const aert_real *w = ctx->params + kernel->offset;
    for (size_t i = 0; i < (size_t)rows * (size_t)cols * pixels; i++) tiles[i] = 1;  // unused tiles: white
    for (int u = 0; u < count; u++) {
      // Each unit's incoming weights (its kernel column), zero at mid grey,
      // scaled by its own largest magnitude.
      double peak = 1e-30;
      for (size_t p = 0; p < pixels; p++) peak = fmax(peak, fabs((double)w[p * (size_t)units + (size_t)u]));
      for (size_t p = 0; p < pixels; p++)
        tiles[(size_t)u * pixels + p] = (aert_real)(0.5 + 0.5 * w[p * (size_t)units + (size_t)u] / peak);
    }
    if (aert_write_image_grid(options->output, tiles, rows, cols, height, width) == 0) {
      fprintf(stderr, "%s: wrote %s (%d of the %d units of %s; grey is 0, white positive, black negative)\n",
              aert_program(), options->output, count, units, kernel->name);
      status = AERT_EXIT_OK;
    }
  }
  aert_free(tiles);
  aert_ctx_free(model, ctx);
  return status;
}

// --------------------------------------------------------------- histogram
int aert_cmd_histogram(const aert_model *model, const aert_options *options) {
  if (!options->output) return aert_error("histogram needs -o FILE.png"), AERT_EXIT_USAGE;
  if (!aert_need_code(model)) return AERT_EXIT_FAILURE;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  aert_real *codes =
      data && aert_fit_context(model, options, ctx, data->n, data->path) ? aert_encode_all(model, ctx, data) : NULL;
  aert_real *shown = NULL;
  int status = AERT_EXIT_FAILURE;
  if (codes) {
    int dims = model->code_size, count = options->has_count && options->count < dims ? options->count : dims;
    double sum = 0, squares = 0;
    size_t total = data->n * (size_t)dims;
    for (size_t i = 0; i < total; i++) sum += codes[i], squares += (double)codes[i] * codes[i];
    double mean = total ? sum / (double)total : 0;
    printf("code_mean %.6g\ncode_std %.6g\n", mean, total ? sqrt(fmax(squares / (double)total - mean * mean, 0)) : 0.0);
    shown = aert_alloc_reals(data->n, (size_t)count, "histogram values");
    if (shown) {
      for (size_t i = 0; i < data->n; i++)
        memcpy(shown + i * (size_t)count, codes + i * (size_t)dims, (size_t)count * sizeof *shown);
      char title[256];
      snprintf(title, sizeof title, "%s: the distribution of each code dimension over %zu samples%s", model->name,
               data->n, count < dims ? " (the first dimensions)" : "");
      const aert_prior *prior = model->prior.kind != AERT_PRIOR_NONE && model->prior.dim == dims ? &model->prior : NULL;
      if (aert_plot_histograms_prior(options->output, shown, data->n, count, title, prior) == 0) {
        fprintf(stderr, "%s: wrote %s (%d of %d code dimensions)\n", aert_program(), options->output, count, dims);
        status = AERT_EXIT_OK;
      }
    }
  }
  aert_free(codes), aert_free(shown);
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}

// ----------------------------------------------------------------- plot-xy
// A CSV with a header line; the first column is x, the second y.
int aert_cmd_plot_xy(const aert_model *model, const aert_options *options) {
  (void)model;
  if (!options->csv) return aert_error("plot-xy needs --csv FILE"), AERT_EXIT_USAGE;
  if (!options->output) return aert_error("plot-xy needs -o FILE.png"), AERT_EXIT_USAGE;
  FILE *f = aert_fopen_input(options->csv, "CSV file", NULL);
  if (!f) return AERT_EXIT_FAILURE;
  char *line = NULL, xname[64] = "x", yname[64] = "y";
  size_t cap = 0, n = 0, room = 0;
  double *x = NULL, *y = NULL;
  int status = AERT_EXIT_FAILURE, number = 0;
  bool first = true;
  ssize_t length;
  while ((length = getline(&line, &cap, f)) > 0) {
    number++;
    size_t nul = strlen(line);
    if (nul < (size_t)length) {
      aert_error("%s:%d:%zu: a NUL byte (a CSV file is text)", options->csv, number, nul + 1);
      goto done;
    }
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0]) continue;
    char *end, *comma = strchr(line, ',');
    double a = strtod(line, &end);
    while (*end == ' ' || *end == '\t') end++;
    bool a_number = end != line && (*end == ',' || *end == 0);
    double b = comma ? strtod(comma + 1, &end) : NAN;
    while (comma && (*end == ' ' || *end == '\t')) end++;
    bool b_number = comma && end != comma + 1 && (*end == ',' || *end == 0);
    // The header rule of data files (docs/commands.md): a first row without a number.
    if (first && !a_number && !b_number) {
      first = false;
      if (comma) snprintf(xname, sizeof xname, "%.*s", (int)(comma - line), line), snprintf(yname, sizeof yname, "%.*s", (int)strcspn(comma + 1, ","), comma + 1);
      continue;
    }
    first = false;
    if (!a_number || !b_number || !isfinite(a) || !isfinite(b)) {
      aert_error("%s:%d: expected two finite numbers, 'x,y'", options->csv, number);
      goto done;
    }
    if (n == room) {
      room = room ? 2 * room : 64;
      double *grown_x = realloc(x, room * sizeof *x);
      if (grown_x) x = grown_x;
      double *grown_y = realloc(y, room * sizeof *y);
      if (grown_y) y = grown_y;
      if (!grown_x || !grown_y) {
        aert_error("%s: out of memory at line %d", options->csv, number);
        goto done;
      }
    }
    x[n] = a, y[n] = b, n++;
  }
  if (n == 0) {
    aert_error("%s: no rows to plot", options->csv);
    goto done;
  }
  char title[160];
  snprintf(title, sizeof title, "%s against %s", yname, xname);
  if (aert_plot_xy(options->output, x, y, n, xname, yname, title) == 0) {
    fprintf(stderr, "%s: wrote %s (%zu points)\n", aert_program(), options->output, n);
    status = AERT_EXIT_OK;
  }
done:
  fclose(f);
  free(line), free(x), free(y);
  return status;
}
