// draw.h — pictures (runtime/draw/), above core: PNG files through cairo.
// image.c writes grids of grey images (aert_write_image_grid: aert.h) and
// figures of text, tiles and bars; plot.c draws charts.
#ifndef AERT_DRAW_H
#define AERT_DRAW_H

#include "core.h"

// A cairo image surface as a PNG file, through core's safe output (a
// temporary renamed over the file); 0, or -1 after a message with errno's text.
struct _cairo_surface;
int aert_png_save(struct _cairo_surface *surface, const char *path);

// ------------------------------------------------------------------ plot.c
// Charts through cairo; 0, or -1 after a message. A scatter of n points
// (xy[2i], xy[2i+1]) coloured by label (labels may be NULL), with a legend
// naming labels 0..n_names-1 when label_names is given.
int aert_plot_scatter(const char *path, const double *xy, const int32_t *labels, size_t n, const char *xlabel,
                      const char *ylabel, const char *title, const char *const *label_names, int n_names);
// y against x as a line through points; x on a log2 scale when it spans a factor of 16 or more.
int aert_plot_xy(const char *path, const double *x, const double *y, size_t n, const char *xlabel, const char *ylabel,
                 const char *title);
// One histogram per dimension of n samples of `dims` values, small multiples on a shared range.
int aert_plot_histograms(const char *path, const aert_real *values, size_t n, int dims, const char *title);
// The same with each dimension's prior density drawn over its histogram (bars as densities); prior may be NULL.
int aert_plot_histograms_prior(const char *path, const aert_real *values, size_t n, int dims, const char *title,
                               const aert_prior *prior);
// aert_plot_scatter over `n_under` grey points under_xy (prior samples); under_xy may be NULL.
int aert_plot_scatter_over(const char *path, const double *xy, const int32_t *labels, size_t n, const double *under_xy,
                           size_t n_under, const char *xlabel, const char *ylabel, const char *title,
                           const char *const *label_names, int n_names);
// Overlaid histograms of n scores in two groups (group[i]: the second; group
// NULL: all in the first), each drawn as a density of its own samples, over
// [lo, hi] (scores outside fall in the end bins), with a dashed line at the
// threshold (NaN: none) and a legend naming the groups (names[g]).
int aert_plot_score_histograms(const char *path, const double *scores, const bool *group, size_t n, double lo,
                               double hi, double threshold, const char *const names[2], const char *xlabel,
                               const char *title);

// ----------------------------------------------------------------- image.c
// A figure: a white page of width x height pixels drawn through cairo, then
// written as PNG. aert_figure_new and aert_figure_write return NULL / -1
// after a message; aert_figure_write frees the figure.
typedef struct aert_figure aert_figure;
aert_figure *aert_figure_new(int width, int height);
int aert_figure_write(aert_figure *figure, const char *path);
void aert_figure_free(aert_figure *figure);
// Text with its baseline at y; align_x 0 puts its start at x, 0.5 its middle, 1 its end.
// aert_text_width: how wide it is drawn, in pixels.
double aert_text_width(const char *text, double size, bool bold);
void aert_figure_text(aert_figure *figure, double x, double y, const char *text, double size, bool bold, double align_x);
// A grey image (values in [0, 1]; NaN: no pixel, drawn pale blue) fitted into
// the box at (x, y), centred: enlarged by a whole factor (sharp pixels) or
// shrunk to fit, and framed.
void aert_figure_tile(aert_figure *figure, double x, double y, int box_w, int box_h, const aert_real *pixels,
                      int height, int width);
// n values as bars filling the box, on the scale [lo, hi], with the zero line.
void aert_figure_bars(aert_figure *figure, double x, double y, int box_w, int box_h, const double *values, int n,
                      double lo, double hi);

#endif
