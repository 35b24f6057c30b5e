// featuremaps.c — the `activations` command: what one layer of a trained
// model responds to, in the manner of Zeiler & Fergus's pictures of a
// convnet's units. (Its values are the layer's outputs, its feature maps; the
// file is not named for the command so as not to be read as the activation
// functions of the compiler's ops.) For a few samples it draws the layer's
// feature maps, each map scaled to its own range; for each channel, the input
// patches that activate it most over the first SEARCH_LIMIT samples of the
// data set, each cropped to the receptive field of the unit where the channel
// peaked (analysis/receptive.c). A dense layer's units are 1 x 1 maps: its
// activations are drawn as bars, and the inputs that activate each unit most
// are whole samples. The layer's outputs come from the generated program's
// layer_output (aert_model).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "analysis.h"
#include "data.h"
#include "draw.h"

enum {
  SEARCH_LIMIT = 5000,  // samples searched for each channel's strongest inputs
  TOP = 4,              // strongest inputs drawn per channel
  MAX_SHOWN = 64,       // channels drawn at most
  DEFAULT_COUNT = 4,    // samples whose maps are drawn
  MAX_COUNT = 32,
};

// The figure's layout, in pixels: a label column, then one column per
// channel after the input's; rows of samples, then TOP rows of patches.
enum {
  MARGIN = 16, LABEL_W = 130, CELL = 64, GAP = 6, TITLE_H = 44, COLHEAD_H = 16, SECTION_H = 44, CAPTION_H = 14,
  MIN_WIDTH = 900,
};

// A layer's output per sample: channels x rows x cols (a flat layer: units x 1 x 1).
typedef struct layer_shape {
  int channels, rows, cols;
  size_t size;
} layer_shape;

// One of a channel's strongest inputs: its peak activation, in which sample and where.
typedef struct peak {
  double value;
  size_t sample;
  int row, col;
} peak;

typedef struct search {
  size_t searched;        // samples searched
  peak *top;              // [channels][TOP], strongest first; value -INFINITY where unfilled
  double *lowest, *highest;  // [channels] over every position and searched sample
  double max, sum;        // over every unit, position and searched sample
} search;

// How a patch is cut from a sample: the displayed image, and per axis either
// the whole extent or a window of the receptive field's largest size.
typedef struct patch_geometry {
  int image_h, image_w;  // the displayed input (channel 0)
  int tile_h, tile_w;
  bool all_rows, all_cols;
} patch_geometry;

// --------------------------------------------------------------- the layer
// "encoder.conv_1, encoder.maxpool_1, ..." of the layers with an output at
// inference (every layer when `all`).
static void layer_names(const aert_model *model, bool all, char *out, size_t size) {
  size_t used = 0;
  out[0] = 0;
  for (int i = 0; i < model->n_layers && used < size; i++)
    if (all || (model->layer_nodes && model->layer_nodes[i] >= 0))
      used += (size_t)snprintf(out + used, size - used, "%s%s", used ? ", " : "", model->layers[i].name);
}

// The layer named `name`, or -1 after a message listing the layers there are.
static int find_layer(const aert_model *model, const char *name) {
  char names[4096];
  int index = -1;
  for (int i = 0; i < model->n_layers; i++)
    if (strcmp(model->layers[i].name, name) == 0) index = i;
  if (index < 0) {
    layer_names(model, true, names, sizeof names);
    aert_error("activations: model '%s' has no layer '%s'; its layers: %s", model->name, name, names);
    return -1;
  }
  if (model->layer_nodes[index] < 0) {
    layer_names(model, false, names, sizeof names);
    aert_error("activations: layer '%s' is first applied to values that do not come from the input alone (a prior's "
               "samples), so it has no activations of a sample; the layers that have: %s", name, names);
    return -1;
  }
  return index;
}

static layer_shape shape_of(const aert_layer *layer) {
  layer_shape s = {.channels = 1, .rows = 1, .cols = 1, .size = 1};
  for (int d = 0; d < layer->rank; d++) s.size *= (size_t)layer->shape[d];
  if (layer->rank == 3) s.channels = layer->shape[0], s.rows = layer->shape[1], s.cols = layer->shape[2];
  else s.channels = (int)s.size;
  return s;
}

// ---------------------------------------------------- the strongest inputs
// Puts a sample's peak into a channel's list when it beats the weakest there.
static void offer_peak(peak *top, peak candidate) {
  if (!(candidate.value > top[TOP - 1].value)) return;
  int at = TOP - 1;
  for (; at > 0 && candidate.value > top[at - 1].value; at--) top[at] = top[at - 1];
  top[at] = candidate;
}

// One batch of layer outputs (n samples from `first`) into the search.
static void search_batch(const layer_shape *shape, const aert_real *out, size_t first, int n, search *s) {
  size_t plane = (size_t)shape->rows * (size_t)shape->cols;
  for (int i = 0; i < n; i++)
    for (int c = 0; c < shape->channels; c++) {
      const aert_real *map = out + (size_t)i * shape->size + (size_t)c * plane;
      size_t best = 0;
      for (size_t p = 0; p < plane; p++) {
        double v = map[p];
        s->sum += v;
        if (v < s->lowest[c]) s->lowest[c] = v;
        if (v > s->highest[c]) s->highest[c] = v;
        if (v > map[best]) best = p;
      }
      if ((double)map[best] > s->max) s->max = map[best];
      offer_peak(s->top + (size_t)c * TOP, (peak){.value = map[best], .sample = first + (size_t)i,
                                                  .row = (int)(best / (size_t)shape->cols), .col = (int)(best % (size_t)shape->cols)});
    }
}

// Runs the layer over the first SEARCH_LIMIT samples, batch by batch; false after a message.
static bool search_strongest(const aert_model *model, aert_ctx *ctx, int layer, const layer_shape *shape,
                             const aert_dataset *data, search *s) {
  s->searched = data->n < SEARCH_LIMIT ? data->n : SEARCH_LIMIT;
  s->top = malloc((size_t)shape->channels * TOP * sizeof *s->top);
  s->lowest = malloc((size_t)shape->channels * sizeof *s->lowest);
  s->highest = malloc((size_t)shape->channels * sizeof *s->highest);
  aert_real *out = aert_alloc_reals((size_t)ctx->capacity, shape->size, "layer outputs");
  if (!s->top || !s->lowest || !s->highest || !out) {
    aert_free(out);
    return aert_error("out of memory for the search over %zu samples", s->searched), false;
  }
  for (size_t i = 0; i < (size_t)shape->channels * TOP; i++) s->top[i] = (peak){.value = -INFINITY};
  for (int c = 0; c < shape->channels; c++) s->lowest[c] = INFINITY, s->highest[c] = -INFINITY;
  s->max = -INFINITY, s->sum = 0;
  for (size_t first = 0; first < s->searched; first += (size_t)ctx->capacity) {
    aert_progress("activations: samples searched", first, s->searched);
    int n = (int)(s->searched - first < (size_t)ctx->capacity ? s->searched - first : (size_t)ctx->capacity);
    model->layer_output(ctx, layer, data->x + first * data->sample_size, n, out);
    search_batch(shape, out, first, n, s);
  }
  aert_progress("activations: samples searched", s->searched, s->searched);
  aert_free(out);
  return true;
}

static void search_free(search *s) { free(s->top), free(s->lowest), free(s->highest); }

// The layer's outputs for samples [0, n) into out (n * shape->size).
static void run_layer(const aert_model *model, aert_ctx *ctx, int layer, const aert_dataset *data, size_t n,
                      size_t size, aert_real *out) {
  for (size_t first = 0; first < n; first += (size_t)ctx->capacity) {
    int m = (int)(n - first < (size_t)ctx->capacity ? n - first : (size_t)ctx->capacity);
    model->layer_output(ctx, layer, data->x + first * data->sample_size, m, out + first * size);
  }
}

// ------------------------------------------------------------------- tiles
// A map scaled to its own range: black its lowest value, white its highest
// (all black when it is constant).
static void normalize_map(const aert_real *map, size_t pixels, aert_real *tile) {
  double lo = INFINITY, hi = -INFINITY;
  for (size_t p = 0; p < pixels; p++) lo = fmin(lo, map[p]), hi = fmax(hi, map[p]);
  for (size_t p = 0; p < pixels; p++) tile[p] = hi > lo ? (aert_real)((map[p] - lo) / (hi - lo)) : 0;
}

static patch_geometry patch_geometry_of(const aert_model *model, const aert_receptive_field *rf) {
  patch_geometry g;
  aert_display_size(model, &g.image_h, &g.image_w);
  g.all_rows = rf->whole || rf->height >= g.image_h;
  g.all_cols = rf->whole || rf->width >= g.image_w;
  g.tile_h = g.all_rows ? g.image_h : rf->height;
  g.tile_w = g.all_cols ? g.image_w : rf->width;
  return g;
}

// The input patch under a peak: its unit's receptive field, from the field's
// first row and column, in a tile of the field's largest size; pixels past
// the image or the unit's own field are NaN (drawn as padding).
static void cut_patch(const aert_dataset *data, const peak *at, const aert_receptive_field *rf,
                      const patch_geometry *g, aert_real *tile) {
  const aert_real *image = data->x + at->sample * data->sample_size;  // channel 0 first
  int row0 = g->all_rows ? 0 : rf->row_lo[at->row], row1 = g->all_rows ? g->image_h - 1 : rf->row_hi[at->row];
  int col0 = g->all_cols ? 0 : rf->col_lo[at->col], col1 = g->all_cols ? g->image_w - 1 : rf->col_hi[at->col];
  for (int r = 0; r < g->tile_h; r++)
    for (int c = 0; c < g->tile_w; c++) {
      int y = row0 + r, x = col0 + c;
      bool inside = y <= row1 && x <= col1 && y >= 0 && x >= 0 && y < g->image_h && x < g->image_w;
      tile[(size_t)r * (size_t)g->tile_w + (size_t)c] = inside ? image[(size_t)y * (size_t)g->image_w + (size_t)x] : (aert_real)NAN;
    }
}

// ------------------------------------------------------------------ figure
typedef struct figure_plan {
  const aert_model *model;
  const aert_layer *layer;
  const layer_shape *shape;
  const aert_dataset *data;
  const search *search;
  const aert_receptive_field *rf;
  patch_geometry patch;
  int count, shown;
  const char *data_name;  // the data set as the user named it
  const aert_real *maps;  // [count][shape->size] the shown samples' outputs
  char title[512], subtitle[512], section[512], section_note[512];
  int width, height;
} figure_plan;

static int column_x(int column) { return MARGIN + LABEL_W + column * (CELL + GAP); }

// The figure's headings: the layer, what the sample rows show, what the patch rows show.
static void write_texts(figure_plan *p) {
  char shape[96], field[160];
  bool maps = p->layer->rank == 3;
  const char *unit = maps ? "channel" : "unit";
  aert_format_shape(shape, sizeof shape, p->layer->rank, p->layer->shape);
  snprintf(p->title, sizeof p->title, "%s: %s = %s, output %s per sample", p->model->name, p->layer->name,
           p->layer->op, shape);
  if (maps)
    snprintf(p->subtitle, sizeof p->subtitle, "feature maps of the first %d samples of %s, each map scaled to its own "
             "range (black: its lowest value, white: its highest)", p->count, p->data_name);
  else
    snprintf(p->subtitle, sizeof p->subtitle, "activations of the first %d samples of %s, one bar a unit, on one "
             "scale for all rows", p->count, p->data_name);
  snprintf(p->section, sizeof p->section, "the %s that activate each %s most, over the first %zu samples of %s",
           maps && !p->rf->whole ? "input patches" : "inputs", unit, p->search->searched, p->data_name);
  if (p->rf->whole) snprintf(field, sizeof field, "each %s sees the whole input", unit);
  else if (p->patch.all_rows && p->patch.all_cols)
    snprintf(field, sizeof field, "whole: the receptive field, %d x %d input pixels, covers the image", p->rf->height,
             p->rf->width);
  else
    snprintf(field, sizeof field, "cropped to the peak unit's receptive field, %d x %d input pixels (pale blue: "
             "outside the image or the field)", p->rf->height, p->rf->width);
  snprintf(p->section_note, sizeof p->section_note, "%s; under each: the activation, #sample", field);
}

static void draw_title(aert_figure *f, const figure_plan *p) {
  aert_figure_text(f, MARGIN, MARGIN + 14, p->title, 15, true, 0);
  aert_figure_text(f, MARGIN, MARGIN + 34, p->subtitle, 12, false, 0);
}

// "input" (when the rows show them), then "ch 3" (or "unit 3") over each shown
// channel's column; a dense layer's sample rows get one heading over their bars instead.
static void draw_column_heads(aert_figure *f, const figure_plan *p, int y, bool inputs, bool bars, double lo,
                              double hi) {
  char text[160];
  if (inputs) aert_figure_text(f, column_x(0) + CELL / 2.0, y + 12, "input", 11, false, 0.5);
  if (bars) {
    snprintf(text, sizeof text, "units 0 to %d, scale %.3g to %.3g", p->shape->channels - 1, lo, hi);
    aert_figure_text(f, column_x(1), y + 12, text, 11, false, 0);
    return;
  }
  for (int c = 0; c < p->shown; c++) {
    snprintf(text, sizeof text, "%s %d", p->layer->rank == 3 ? "ch" : "unit", c);
    aert_figure_text(f, column_x(1 + c) + CELL / 2.0, y + 12, text, 11, false, 0.5);
  }
}

// The label left of a sample row: "sample 3" and its label.
static void draw_sample_label(aert_figure *f, const figure_plan *p, int sample, int y) {
  char text[96];
  snprintf(text, sizeof text, "sample %d", sample);
  aert_figure_text(f, MARGIN, y + CELL / 2.0 - 2, text, 12, true, 0);
  if (!p->data->labels) return;
  int n_names, label = p->data->labels[sample];
  const char *const *names = aert_label_names(p->data, &n_names);
  if (names && label >= 0 && label < n_names) snprintf(text, sizeof text, "%s", names[label]);
  else snprintf(text, sizeof text, "label %d", label);
  aert_figure_text(f, MARGIN, y + CELL / 2.0 + 13, text, 11, false, 0);
}

// Each sample: the input, then its maps (or its units as bars). Returns the y below.
static int draw_sample_rows(aert_figure *f, const figure_plan *p, int y, aert_real *tile) {
  const patch_geometry *g = &p->patch;
  size_t plane = (size_t)p->shape->rows * (size_t)p->shape->cols;
  bool bars = p->layer->rank != 3;
  double lo = 0, hi = 0;  // the bars' shared scale, zero included
  for (size_t i = 0; bars && i < (size_t)p->count * p->shape->size; i++) lo = fmin(lo, p->maps[i]), hi = fmax(hi, p->maps[i]);
  draw_column_heads(f, p, y, true, bars, lo, hi);
  y += COLHEAD_H;
  double *values = bars ? malloc(p->shape->size * sizeof *values) : NULL;
  for (int s = 0; s < p->count; s++, y += CELL + GAP) {
    draw_sample_label(f, p, s, y);
    const aert_real *image = p->data->x + (size_t)s * p->data->sample_size;
    aert_figure_tile(f, column_x(0), y, CELL, CELL, image, g->image_h, g->image_w);
    const aert_real *out = p->maps + (size_t)s * p->shape->size;
    if (bars && values) {
      for (size_t u = 0; u < p->shape->size; u++) values[u] = out[u];
      aert_figure_bars(f, column_x(1), y, p->shown * (CELL + GAP) - GAP, CELL, values, p->shape->channels, lo, hi);
    }
    for (int c = 0; !bars && c < p->shown; c++) {
      normalize_map(out + (size_t)c * plane, plane, tile);
      aert_figure_tile(f, column_x(1 + c), y, CELL, CELL, tile, p->shape->rows, p->shape->cols);
    }
  }
  free(values);
  return y;
}

static void draw_section_title(aert_figure *f, const figure_plan *p, int y) {
  aert_figure_text(f, MARGIN, y + 18, p->section, 13, true, 0);
  aert_figure_text(f, MARGIN, y + 36, p->section_note, 12, false, 0);
}

// In place of a constant channel's inputs: "constant" and its value.
static void draw_constant(aert_figure *f, int x, int y, double value) {
  char text[64];
  snprintf(text, sizeof text, "%.3g", value);
  aert_figure_text(f, x + CELL / 2.0, y + CELL / 2.0, "constant", 10, false, 0.5);
  aert_figure_text(f, x + CELL / 2.0, y + CELL / 2.0 + 13, text, 10, false, 0.5);
}

// TOP rows: each channel's strongest inputs, strongest first, with captions.
static void draw_top_rows(aert_figure *f, const figure_plan *p, int y, aert_real *tile) {
  draw_column_heads(f, p, y, false, false, 0, 0);
  y += COLHEAD_H;
  char text[96];
  for (int k = 0; k < TOP; k++, y += CELL + CAPTION_H + GAP) {
    snprintf(text, sizeof text, "strongest %d", k + 1);
    aert_figure_text(f, MARGIN, y + CELL / 2.0 + 4, text, 12, true, 0);
    for (int c = 0; c < p->shown; c++) {
      const peak *at = &p->search->top[(size_t)c * TOP + (size_t)k];
      if (!(p->search->highest[c] > p->search->lowest[c])) {  // a dead unit: no input stands out
        if (k == 0) draw_constant(f, column_x(1 + c), y, at->value);
        continue;
      }
      if (at->value == -INFINITY) continue;  // fewer samples than TOP
      cut_patch(p->data, at, p->rf, &p->patch, tile);
      aert_figure_tile(f, column_x(1 + c), y, CELL, CELL, tile, p->patch.tile_h, p->patch.tile_w);
      snprintf(text, sizeof text, "%.3g #%zu", at->value, at->sample);
      aert_figure_text(f, column_x(1 + c) + CELL / 2.0, y + CELL + 11, text, 9, false, 0.5);
    }
  }
}

// The page: as wide as the columns, the headings (MIN_WIDTH at least).
static void plan_size(figure_plan *p) {
  double widest = fmax(fmax(aert_text_width(p->title, 15, true), aert_text_width(p->subtitle, 12, false)),
                       fmax(aert_text_width(p->section, 13, true), aert_text_width(p->section_note, 12, false)));
  int columns = 2 * MARGIN + LABEL_W + (1 + p->shown) * (CELL + GAP), text = 2 * MARGIN + (int)ceil(widest);
  p->width = columns > text ? columns : text;
  if (p->width < MIN_WIDTH) p->width = MIN_WIDTH;
  p->height = 2 * MARGIN + TITLE_H + COLHEAD_H + p->count * (CELL + GAP) + SECTION_H + COLHEAD_H +
              TOP * (CELL + CAPTION_H + GAP);
}

static bool draw_figure(const char *path, const figure_plan *p) {
  size_t largest = (size_t)p->shape->rows * (size_t)p->shape->cols;
  size_t patch = (size_t)p->patch.tile_h * (size_t)p->patch.tile_w;
  aert_real *tile = aert_alloc_reals(largest > patch ? largest : patch, 1, "tiles");
  aert_figure *f = tile ? aert_figure_new(p->width, p->height) : NULL;
  if (!f) return aert_free(tile), false;
  draw_title(f, p);
  int y = draw_sample_rows(f, p, MARGIN + TITLE_H, tile);
  draw_section_title(f, p, y);
  draw_top_rows(f, p, y + SECTION_H, tile);
  aert_free(tile);
  return aert_figure_write(f, path) == 0;
}

// ----------------------------------------------------------------- figures
static void print_figures(const aert_layer *layer, const layer_shape *shape, const aert_receptive_field *rf,
                          const patch_geometry *g, const search *s) {
  int constant = 0;
  for (int c = 0; c < shape->channels; c++) constant += !(s->highest[c] > s->lowest[c]);
  double positions = (double)s->searched * (double)shape->size;
  printf("layer %s\nchannels %d\nmap_height %d\nmap_width %d\n", layer->name, shape->channels, shape->rows, shape->cols);
  printf("receptive_field_height %d\nreceptive_field_width %d\n", rf->whole ? g->image_h : rf->height,
         rf->whole ? g->image_w : rf->width);
  printf("samples_searched %zu\nmax_activation %.6g\nmean_activation %.6g\nconstant_channels %d\n", s->searched, s->max,
         positions > 0 ? s->sum / positions : 0.0, constant);
}

// ----------------------------------------------------------------- command
static bool check_arguments(const aert_model *model, const aert_options *options, int *status) {
  char names[4096];
  *status = AERT_EXIT_USAGE;
  if (!options->output) return aert_error("activations needs -o FILE.png"), false;
  if (!options->layer) {
    layer_names(model, false, names, sizeof names);
    return aert_error("activations needs --layer NAME, one of: %s", names), false;
  }
  *status = AERT_EXIT_FAILURE;
  if (!model->layer_output || !model->layer_nodes)
    return aert_error("this program has no layer outputs to draw; regenerate it with this aec"), false;
  return true;
}

// The search, the figure and the figures, for a loaded model and data set.
static int draw_feature_maps(const aert_model *model, const aert_options *options, aert_ctx *ctx, int layer,
                             const aert_dataset *data, const aert_receptive_field *rf) {
  layer_shape shape = shape_of(&model->layers[layer]);
  search found = {0};
  figure_plan plan = {.model = model, .layer = &model->layers[layer], .shape = &shape, .data = data,
                      .search = &found, .rf = rf, .patch = patch_geometry_of(model, rf),
                      .data_name = options->has_data ? options->data : model->default_test};
  plan.count = options->has_count ? options->count : DEFAULT_COUNT;
  if (plan.count > MAX_COUNT) plan.count = MAX_COUNT;
  if ((size_t)plan.count > data->n) plan.count = (int)data->n;
  plan.shown = shape.channels < MAX_SHOWN ? shape.channels : MAX_SHOWN;
  aert_real *maps = aert_alloc_reals((size_t)plan.count, shape.size, "feature maps");
  bool ok = maps && search_strongest(model, ctx, layer, &shape, data, &found);
  if (ok) {
    run_layer(model, ctx, layer, data, (size_t)plan.count, shape.size, maps);
    plan.maps = maps;
    write_texts(&plan);
    plan_size(&plan);
    ok = draw_figure(options->output, &plan);
  }
  if (ok) {
    fprintf(stderr, "%s: wrote %s (%s: the %s of %d samples; the %d strongest inputs of %d of its %d %s, over %zu "
            "samples)\n", aert_program(), options->output, plan.layer->name,
            plan.layer->rank == 3 ? "feature maps" : "activations", plan.count, TOP, plan.shown, shape.channels,
            plan.layer->rank == 3 ? "channels" : "units", found.searched);
    print_figures(plan.layer, &shape, rf, &plan.patch, &found);
  }
  aert_free(maps);
  search_free(&found);
  return ok ? AERT_EXIT_OK : AERT_EXIT_FAILURE;
}

int aert_cmd_feature_maps(const aert_model *model, const aert_options *options) {
  int status, layer;
  if (!check_arguments(model, options, &status) || (layer = find_layer(model, options->layer)) < 0) return status;
  aert_ctx *ctx = aert_open_checkpoint(model, options);
  if (!ctx) return AERT_EXIT_FAILURE;
  aert_dataset *data = aert_load_model_data(model, options->has_data ? options->data : model->default_test);
  aert_receptive_field rf;
  status = AERT_EXIT_FAILURE;
  if (data && data->n == 0) aert_error("%s: no samples", data->path);
  else if (data && !aert_fit_context(model, options, ctx, data->n, data->path)) {}
  else if (data && aert_receptive_field_of(model, model->layer_nodes[layer], &rf)) {
    status = draw_feature_maps(model, options, ctx, layer, data, &rf);
    aert_receptive_field_free(&rf);
  }
  aert_dataset_free(data);
  aert_ctx_free(model, ctx);
  return status;
}
