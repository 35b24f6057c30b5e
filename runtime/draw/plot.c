// plot.c — charts as PNG files through cairo: a scatter of 2-D points
// coloured by label (encode --plot), a line chart of y against x (plot-xy,
// examples/sweep.sh), and small-multiple histograms (histogram).
#include <cairo.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"

// Matplotlib's tab10 palette, the colours of labels 0..9 (then repeating).
static const double palette[10][3] = {
    {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
    {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498},
    {0.737, 0.741, 0.133}, {0.090, 0.745, 0.812}};

typedef struct axes {
  double x0, y0, w, h;          // the plotting area on the surface
  double xlo, xhi, ylo, yhi;    // the data range it shows
  bool log_x;                   // x drawn on a log2 scale
} axes;

// Positions are computed from halves, so that a range as wide as the
// doubles (-1e308 to 1e308) does not overflow to infinity.
static double fraction(double v, double lo, double hi) { return (v / 2 - lo / 2) / (hi / 2 - lo / 2); }

static double map_x(const axes *a, double x) {
  double t = a->log_x ? (log2(x) - log2(a->xlo)) / (log2(a->xhi) - log2(a->xlo)) : fraction(x, a->xlo, a->xhi);
  return a->x0 + t * a->w;
}
static double map_y(const axes *a, double y) { return a->y0 + a->h - fraction(y, a->ylo, a->yhi) * a->h; }

// A "nice" tick step (1, 2 or 5 times a power of ten) giving about 5 ticks.
static double tick_step(double lo, double hi) {
  double raw = (hi / 2 - lo / 2) / 2.5, power = pow(10, floor(log10(raw))), f = raw / power;
  return (f < 1.5 ? 1 : f < 3.5 ? 2 : f < 7.5 ? 5 : 10) * power;
}

// The ticks of [lo, hi] by `step`: the first in *first and how many; 0 when
// they cannot be counted (a step below the values' precision, or none fits).
enum { MAX_TICKS = 50 };
static int count_ticks(double lo, double hi, double step, double *first) {
  double k0 = ceil(lo / step), k1 = floor(hi / step);
  if (!isfinite(k0) || !isfinite(k1) || !(k1 >= k0) || k1 - k0 >= MAX_TICKS) return 0;
  if (k0 + 1 == k0 || k0 * step + step == k0 * step) return 0;  // the step is below the values' ulp
  *first = k0;
  return (int)(k1 - k0) + 1;
}

// Widens [lo, hi] a little (and away from a zero width) so points sit inside:
// at least a millionth of the values' size wide, so that a step between ticks
// is well above their precision, and within the finite doubles.
static void pad_range(double *lo, double *hi) {
  double size = fmax(fabs(*lo), fabs(*hi)), least = fmax(1e-6 * size, 1e-300);
  if (!(*hi > *lo)) *lo -= fmax(0.5, least), *hi += fmax(0.5, least);
  else if (*hi / 2 - *lo / 2 < least / 2) {
    double mid = *lo / 2 + *hi / 2;
    *lo = mid - least / 2, *hi = mid + least / 2;
  }
  double pad = 0.04 * (*hi / 2 - *lo / 2) * 2;
  *lo = fmax(*lo - pad, -DBL_MAX), *hi = fmin(*hi + pad, DBL_MAX);
}

static void text_at(cairo_t *cr, double x, double y, const char *text, double align_x, double align_y) {
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text, &ext);
  cairo_move_to(cr, x - ext.width * align_x - ext.x_bearing, y - ext.height * align_y - ext.y_bearing);
  cairo_show_text(cr, text);
}

static void format_tick(char *out, size_t size, double v, double step) {
  if (fabs(v) < step * 1e-6) v = 0;
  if (fabs(v) >= 1e4 || (fabs(v) < 1e-3 && v != 0)) snprintf(out, size, "%.2g", v);
  else {
    int decimals = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
    snprintf(out, size, "%.*f", decimals, v);
  }
}

// The frame, ticks, tick labels, axis labels and title around a.
static void draw_axes(cairo_t *cr, const axes *a, const char *xlabel, const char *ylabel, const char *title) {
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, a->x0, a->y0, a->w, a->h);
  cairo_stroke(cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, 12);
  char label[64];
  if (a->log_x) {
    for (double v = exp2(ceil(log2(a->xlo) - 1e-9)); v <= a->xhi * (1 + 1e-9) && v < INFINITY; v *= 2) {
      double x = map_x(a, v);
      cairo_move_to(cr, x, a->y0 + a->h), cairo_line_to(cr, x, a->y0 + a->h + 5), cairo_stroke(cr);
      snprintf(label, sizeof label, "%g", v);
      text_at(cr, x, a->y0 + a->h + 8, label, 0.5, 0);
    }
  } else {
    double step = tick_step(a->xlo, a->xhi), first = 0;
    for (int i = 0, n = count_ticks(a->xlo, a->xhi, step, &first); i < n; i++) {
      double v = (first + i) * step, x = map_x(a, v);
      cairo_move_to(cr, x, a->y0 + a->h), cairo_line_to(cr, x, a->y0 + a->h + 5), cairo_stroke(cr);
      format_tick(label, sizeof label, v, step);
      text_at(cr, x, a->y0 + a->h + 8, label, 0.5, 0);
    }
  }
  double step = tick_step(a->ylo, a->yhi), first = 0;
  for (int i = 0, n = count_ticks(a->ylo, a->yhi, step, &first); i < n; i++) {
    double v = (first + i) * step, y = map_y(a, v);
    cairo_move_to(cr, a->x0 - 5, y), cairo_line_to(cr, a->x0, y), cairo_stroke(cr);
    format_tick(label, sizeof label, v, step);
    text_at(cr, a->x0 - 8, y, label, 1, 0.5);
  }
  cairo_set_font_size(cr, 13);
  if (xlabel) text_at(cr, a->x0 + a->w / 2, a->y0 + a->h + 28, xlabel, 0.5, 0);
  if (ylabel) {
    cairo_save(cr);
    cairo_translate(cr, a->x0 - 58, a->y0 + a->h / 2);
    cairo_rotate(cr, -M_PI / 2);
    text_at(cr, 0, 0, ylabel, 0.5, 0.5);
    cairo_restore(cr);
  }
  if (title) {  // centred over the axes, smaller when it would not fit the picture, and never cut off
    double width = cairo_image_surface_get_width(cairo_get_target(cr)), size = 15;
    cairo_text_extents_t ext;
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, title, &ext);
    if (ext.x_advance > width - 16) size = fmax(8, size * (width - 16) / ext.x_advance);
    cairo_set_font_size(cr, size);
    cairo_text_extents(cr, title, &ext);
    double centre = fmin(fmax(a->x0 + a->w / 2, 8 + ext.width / 2), width - 8 - ext.width / 2);
    text_at(cr, centre, a->y0 - 14, title, 0.5, 1);
  }
}

static cairo_surface_t *white_surface(int width, int height, cairo_t **cr) {
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  *cr = cairo_create(surface);
  cairo_set_source_rgb(*cr, 1, 1, 1);
  cairo_paint(*cr);
  return surface;
}

static int finish_png(const char *path, cairo_surface_t *surface, cairo_t *cr) {
  cairo_status_t status = cairo_status(cr);
  cairo_destroy(cr);
  int rc = -1;
  if (status != CAIRO_STATUS_SUCCESS) aert_error("%s: cannot draw the PNG image: %s", path, cairo_status_to_string(status));
  else rc = aert_png_save(surface, path);
  cairo_surface_destroy(surface);
  return rc;
}

int aert_plot_scatter(const char *path, const double *xy, const int32_t *labels, size_t n, const char *xlabel,
                      const char *ylabel, const char *title, const char *const *label_names, int n_names) {
  return aert_plot_scatter_over(path, xy, labels, n, NULL, 0, xlabel, ylabel, title, label_names, n_names);
}

int aert_plot_scatter_over(const char *path, const double *xy, const int32_t *labels, size_t n, const double *under_xy,
                           size_t n_under, const char *xlabel, const char *ylabel, const char *title,
                           const char *const *label_names, int n_names) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  int32_t max_label = -1;
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1])) continue;
    xlo = fmin(xlo, xy[2 * i]), xhi = fmax(xhi, xy[2 * i]);
    ylo = fmin(ylo, xy[2 * i + 1]), yhi = fmax(yhi, xy[2 * i + 1]);
    if (labels && labels[i] > max_label) max_label = labels[i];
  }
  for (size_t i = 0; under_xy && i < n_under; i++) {
    if (!isfinite(under_xy[2 * i]) || !isfinite(under_xy[2 * i + 1])) continue;
    xlo = fmin(xlo, under_xy[2 * i]), xhi = fmax(xhi, under_xy[2 * i]);
    ylo = fmin(ylo, under_xy[2 * i + 1]), yhi = fmax(yhi, under_xy[2 * i + 1]);
  }
  if (!(xhi >= xlo)) xlo = 0, xhi = 1, ylo = 0, yhi = 1;  // nothing finite to show
  pad_range(&xlo, &xhi), pad_range(&ylo, &yhi);
  bool legend = labels && max_label >= 0 && max_label < 100;
  int width = legend ? 860 : 720, height = 720;
  cairo_t *cr;
  cairo_surface_t *surface = white_surface(width, height, &cr);
  axes a = {.x0 = 80, .y0 = 50, .w = 600, .h = 600, .xlo = xlo, .xhi = xhi, .ylo = ylo, .yhi = yhi};
  cairo_save(cr);
  cairo_rectangle(cr, a.x0, a.y0, a.w, a.h);
  cairo_clip(cr);
  double radius = n > 20000 ? 1.2 : n > 2000 ? 1.8 : 3;
  cairo_set_source_rgba(cr, 0.55, 0.55, 0.55, 0.35);  // the prior's samples, under the codes
  for (size_t i = 0; under_xy && i < n_under; i++) {
    if (!isfinite(under_xy[2 * i]) || !isfinite(under_xy[2 * i + 1])) continue;
    cairo_arc(cr, map_x(&a, under_xy[2 * i]), map_y(&a, under_xy[2 * i + 1]), radius, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  for (size_t i = 0; i < n; i++) {
    if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1])) continue;
    const double *c = palette[labels && labels[i] >= 0 ? labels[i] % 10 : 0];
    cairo_set_source_rgba(cr, c[0], c[1], c[2], 0.6);
    cairo_arc(cr, map_x(&a, xy[2 * i]), map_y(&a, xy[2 * i + 1]), radius, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  cairo_restore(cr);
  draw_axes(cr, &a, xlabel, ylabel, title);
  if (legend) {
    cairo_set_font_size(cr, 12);
    for (int32_t l = 0; l <= max_label; l++) {
      double y = a.y0 + 10 + 20 * l;
      const double *c = palette[l % 10];
      cairo_set_source_rgb(cr, c[0], c[1], c[2]);
      cairo_arc(cr, a.x0 + a.w + 22, y, 5, 0, 2 * M_PI);
      cairo_fill(cr);
      cairo_set_source_rgb(cr, 0, 0, 0);
      char name[64];
      if (label_names && l < n_names) snprintf(name, sizeof name, "%d %s", l, label_names[l]);
      else snprintf(name, sizeof name, "%d", l);
      text_at(cr, a.x0 + a.w + 34, y, name, 0, 0.5);
    }
  }
  return finish_png(path, surface, cr);
}

int aert_plot_xy(const char *path, const double *x, const double *y, size_t n, const char *xlabel, const char *ylabel,
                 const char *title) {
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (size_t i = 0; i < n; i++) {
    xlo = fmin(xlo, x[i]), xhi = fmax(xhi, x[i]);
    ylo = fmin(ylo, y[i]), yhi = fmax(yhi, y[i]);
  }
  if (n == 0) xlo = 0, xhi = 1, ylo = 0, yhi = 1;
  // Sizes spread over powers of two (code sizes 2..128) read best on a log scale.
  bool log_x = xlo > 0 && xhi / xlo >= 16;
  if (log_x) xlo /= 1.15, xhi = fmin(xhi * 1.15, DBL_MAX);
  else pad_range(&xlo, &xhi);
  pad_range(&ylo, &yhi);
  cairo_t *cr;
  cairo_surface_t *surface = white_surface(760, 520, &cr);
  axes a = {.x0 = 90, .y0 = 50, .w = 640, .h = 400, .xlo = xlo, .xhi = xhi, .ylo = ylo, .yhi = yhi, .log_x = log_x};
  const double *c = palette[0];
  cairo_set_source_rgb(cr, c[0], c[1], c[2]);
  cairo_set_line_width(cr, 2);
  for (size_t i = 0; i < n; i++) {
    if (i == 0) cairo_move_to(cr, map_x(&a, x[i]), map_y(&a, y[i]));
    else cairo_line_to(cr, map_x(&a, x[i]), map_y(&a, y[i]));
  }
  cairo_stroke(cr);
  for (size_t i = 0; i < n; i++) {
    cairo_arc(cr, map_x(&a, x[i]), map_y(&a, y[i]), 4, 0, 2 * M_PI);
    cairo_fill(cr);
  }
  draw_axes(cr, &a, xlabel, ylabel, title);
  return finish_png(path, surface, cr);
}

int aert_plot_histograms(const char *path, const aert_real *values, size_t n, int dims, const char *title) {
  return aert_plot_histograms_prior(path, values, n, dims, title, NULL);
}

int aert_plot_histograms_prior(const char *path, const aert_real *values, size_t n, int dims, const char *title,
                               const aert_prior *prior) {
  enum { BINS = 40, PANEL_W = 150, PANEL_H = 90, GAP_X = 14, GAP_Y = 30, MARGIN = 30, TOP = 60 };
  double lo = INFINITY, hi = -INFINITY;
  for (size_t i = 0; i < n * (size_t)dims; i++)
    if (isfinite(values[i])) lo = fmin(lo, values[i]), hi = fmax(hi, values[i]);
  for (int d = 0; prior && d < dims && d < prior->dim; d++) {  // the prior's bulk is in view too
    double mean, std;
    aert_prior_moments(prior, d, &mean, &std);
    lo = fmin(lo, mean - 3.5 * std), hi = fmax(hi, mean + 3.5 * std);
  }
  if (!(hi >= lo)) lo = 0, hi = 1;
  if (!(hi / 2 - lo / 2 > 0)) pad_range(&lo, &hi);
  int cols = (int)ceil(sqrt((double)dims * 1.5));
  if (cols > dims) cols = dims;
  if (cols < 1) cols = 1;
  int rows = (dims + cols - 1) / cols;
  int panels = 2 * MARGIN + cols * PANEL_W + (cols - 1) * GAP_X, height = TOP + MARGIN + rows * (PANEL_H + GAP_Y);
  int width = panels < 820 ? 820 : panels;  // room for the title lines; the panels centred
  double left = (width - panels) / 2.0;
  if (width > 32767 || height > 32767) {
    aert_error("%s: %d histograms do not fit in one image", path, dims);
    return -1;
  }
  size_t *counts = calloc(BINS, sizeof *counts);
  if (!counts) return aert_error("out of memory for histograms"), -1;
  cairo_t *cr;
  cairo_surface_t *surface = white_surface(width, height, &cr);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_set_font_size(cr, 15);
  if (title) text_at(cr, width / 2.0, 12, title, 0.5, 0);
  char range[256];  // the text below and the prior's, whole
  char prior_text[128] = "";
  if (prior) aert_prior_format(prior, prior_text, sizeof prior_text);
  if (prior)
    snprintf(range, sizeof range, "each panel: one code dimension over [%.3g, %.3g], %d bins as a density; line: the prior %s",
             lo, hi, BINS, prior_text);
  else
    snprintf(range, sizeof range, "each panel: one code dimension over [%.3g, %.3g], %d bins, bar height relative", lo,
             hi, BINS);
  cairo_set_font_size(cr, 12);
  text_at(cr, width / 2.0, 36, range, 0.5, 0);
  for (int d = 0; d < dims; d++) {
    memset(counts, 0, BINS * sizeof *counts);
    size_t most = 1;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
      double v = values[i * (size_t)dims + (size_t)d];
      if (!isfinite(v)) continue;
      sum += v;
      double t = fraction(v, lo, hi) * BINS;
      int b = t >= BINS ? BINS - 1 : t > 0 ? (int)t : 0;
      if (b >= BINS) b = BINS - 1;
      if (b < 0) b = 0;
      if (++counts[b] > most) most = counts[b];
    }
    double x0 = left + MARGIN + (d % cols) * (PANEL_W + GAP_X), y0 = TOP + (d / cols) * (PANEL_H + GAP_Y) + 16;
    cairo_set_source_rgb(cr, 0.94, 0.94, 0.94);
    cairo_rectangle(cr, x0, y0, PANEL_W, PANEL_H);
    cairo_fill(cr);
    const double *c = palette[0];
    cairo_set_source_rgb(cr, c[0], c[1], c[2]);
    // With a prior, bars and curve share a density scale: the taller of the two fills the panel.
    bool curve = prior && d < prior->dim && n > 0;
    double width = (hi - lo) / BINS, top = curve ? (double)most / ((double)n * width) : (double)most;
    for (int k = 0; curve && k <= 200; k++) top = fmax(top, aert_prior_density(prior, d, lo + (hi - lo) * k / 200));
    for (int b = 0; b < BINS; b++) {
      double value = curve ? (double)counts[b] / ((double)n * width) : (double)counts[b];
      double h = value / top * (PANEL_H - 4);
      cairo_rectangle(cr, x0 + b * (double)PANEL_W / BINS, y0 + PANEL_H - h, (double)PANEL_W / BINS - 0.5, h);
    }
    cairo_fill(cr);
    if (curve) {
      cairo_set_source_rgb(cr, 0.85, 0.1, 0.1);
      cairo_set_line_width(cr, 1.5);
      for (int k = 0; k <= 200; k++) {
        double x = lo + (hi - lo) * k / 200, h = aert_prior_density(prior, d, x) / top * (PANEL_H - 4);
        if (k == 0) cairo_move_to(cr, x0 + PANEL_W * k / 200.0, y0 + PANEL_H - h);
        else cairo_line_to(cr, x0 + PANEL_W * k / 200.0, y0 + PANEL_H - h);
      }
      cairo_stroke(cr);
    }
    cairo_set_source_rgb(cr, 0, 0, 0);
    char label[64];
    snprintf(label, sizeof label, "z%d  mean %.3g", d, n ? sum / (double)n : 0.0);
    cairo_set_font_size(cr, 11);
    text_at(cr, x0, y0 - 3, label, 0, 1);
  }
  free(counts);
  return finish_png(path, surface, cr);
}

int aert_plot_score_histograms(const char *path, const double *scores, const bool *group, size_t n, double lo,
                               double hi, double threshold, const char *const names[2], const char *xlabel,
                               const char *title) {
  enum { BINS = 60 };
  if (!(hi > lo)) pad_range(&lo, &hi);
  size_t counts[2][BINS] = {{0}}, total[2] = {0, 0}, above = 0;
  for (size_t i = 0; i < n; i++) {
    int g = group && group[i];
    double t = isnan(scores[i]) ? BINS : fraction(scores[i], lo, hi) * BINS;
    int b = t >= BINS ? BINS - 1 : t > 0 ? (int)t : 0;
    above += t > BINS;
    counts[g][b]++, total[g]++;
  }
  // Each group's bars as a density of its own samples: a small group is as tall as a large one.
  double top = 0, width = (hi - lo) / BINS;
  for (int g = 0; g < 2; g++)
    for (int b = 0; b < BINS && total[g]; b++) top = fmax(top, (double)counts[g][b] / ((double)total[g] * width));
  if (!(top > 0)) top = 1;
  cairo_t *cr;
  cairo_surface_t *surface = white_surface(820, 520, &cr);
  axes a = {.x0 = 90, .y0 = 60, .w = 680, .h = 390, .xlo = lo, .xhi = hi, .ylo = 0, .yhi = top * 1.08};
  static const double colour[2][3] = {{0.122, 0.467, 0.706}, {0.839, 0.153, 0.157}};
  for (int g = 0; g < 2; g++) {
    if (!total[g]) continue;
    cairo_set_source_rgba(cr, colour[g][0], colour[g][1], colour[g][2], 0.5);
    for (int b = 0; b < BINS; b++) {
      double density = (double)counts[g][b] / ((double)total[g] * width), x = map_x(&a, lo + b * width);
      double y = map_y(&a, density);
      cairo_rectangle(cr, x, y, a.w / BINS, a.y0 + a.h - y);
    }
    cairo_fill(cr);
  }
  draw_axes(cr, &a, xlabel, "density", title);
  // The legend in a white box at the top right; the threshold's label below it where the line runs through it.
  cairo_set_font_size(cr, 12);
  double legend_w = 0, legend_bottom = a.y0;
  char entry[2][128];
  int rows = 0;
  for (int g = 0; g < 2; g++) {
    snprintf(entry[g], sizeof entry[g], "%s (%zu)", names[g] ? names[g] : "", total[g]);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, entry[g], &ext);
    if (total[g]) legend_w = fmax(legend_w, ext.x_advance + 36), rows++;
  }
  double legend_x = a.x0 + a.w - legend_w - 8;
  if (rows) {
    legend_bottom = a.y0 + 12 + 18 * rows;
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_rectangle(cr, legend_x, a.y0 + 6, legend_w, legend_bottom - a.y0 - 6);
    cairo_fill_preserve(cr);
    cairo_set_source_rgb(cr, 0.6, 0.6, 0.6);
    cairo_set_line_width(cr, 1);
    cairo_stroke(cr);
  }
  for (int g = 0, row = 0; g < 2; g++) {
    if (!total[g]) continue;
    double y = a.y0 + 18 + 18 * row++;
    cairo_set_source_rgba(cr, colour[g][0], colour[g][1], colour[g][2], 0.5);
    cairo_rectangle(cr, legend_x + 8, y - 6, 14, 12);
    cairo_fill(cr);
    cairo_set_source_rgb(cr, 0, 0, 0);
    text_at(cr, legend_x + 28, y, entry[g], 0, 0.5);
  }
  if (isfinite(threshold) && threshold >= lo && threshold <= hi) {
    char text[64];
    snprintf(text, sizeof text, "threshold %.4g", threshold);
    cairo_text_extents_t ext;
    cairo_text_extents(cr, text, &ext);
    double x = map_x(&a, threshold), y0 = a.y0;
    bool left = x > a.x0 + a.w - ext.x_advance - 10;  // near the right edge, the label goes on the line's left
    double text_lo = left ? x - ext.x_advance - 4 : x, text_hi = left ? x : x + ext.x_advance + 4;
    if (rows && text_hi >= legend_x - 4 && text_lo <= legend_x + legend_w + 4) y0 = legend_bottom + 2;
    cairo_set_source_rgb(cr, 0, 0, 0);
    cairo_set_line_width(cr, 1.5);
    cairo_set_dash(cr, (const double[]){6, 4}, 2, 0);
    cairo_move_to(cr, x, y0), cairo_line_to(cr, x, a.y0 + a.h), cairo_stroke(cr);
    cairo_set_dash(cr, NULL, 0, 0);
    text_at(cr, left ? x - 4 : x + 4, y0 + 6, text, left ? 1 : 0, 0);
  }
  if (above) {
    char text[96];
    snprintf(text, sizeof text, "the last bin also holds the %zu scores above %.4g", above, hi);
    text_at(cr, a.x0 + a.w, a.y0 + a.h + 46, text, 1, 0);
  }
  return finish_png(path, surface, cr);
}
