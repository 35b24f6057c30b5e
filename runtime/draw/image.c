// image.c — grids of grey images as PNG files through cairo, and figures:
// pages of text, grey tiles and bar strips (the `activations` command).
#include <cairo.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "draw.h"

#define MIN_TILE 42  // screen pixels a side a grid gives an image, at least
#define GAP 2    // white pixels between images and around the grid
#define MAX_SIDE 32767  // cairo's largest image surface

// ------------------------------------------------------------- PNG files
typedef struct png_sink {
  FILE *f;
  int error;  // errno of the first failed write
} png_sink;

static cairo_status_t write_png_bytes(void *closure, const unsigned char *data, unsigned int length) {
  png_sink *sink = closure;
  if (fwrite(data, 1, length, sink->f) == length) return CAIRO_STATUS_SUCCESS;
  if (!sink->error) sink->error = errno ? errno : EIO;
  return CAIRO_STATUS_WRITE_ERROR;
}

int aert_png_save(cairo_surface_t *surface, const char *path) {
  cairo_status_t status = cairo_surface_status(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    aert_error("%s: cannot draw the PNG image: %s", path, cairo_status_to_string(status));
    return -1;
  }
  aert_output *out = aert_output_begin(path, "the PNG image");
  if (!out) return -1;
  png_sink sink = {aert_output_stream(out), 0};
  status = cairo_surface_write_to_png_stream(surface, write_png_bytes, &sink);
  if (status != CAIRO_STATUS_SUCCESS) {
    aert_error("%s: cannot write the PNG image: %s", path,
               sink.error ? strerror(sink.error) : cairo_status_to_string(status));
    aert_output_abandon(out);
    return -1;
  }
  return aert_output_commit(out) ? 0 : -1;
}

static unsigned char grey_level(aert_real v) {
  if (!(v > 0)) return 0;  // NaN too
  if (v >= 1) return 255;
  return (unsigned char)(v * 255 + (aert_real)0.5);
}

int aert_image_scale(int height, int width) {
  int side = height > width ? height : width, scale = side > 0 ? (MIN_TILE + side - 1) / side : 1;
  return scale < 3 ? 3 : scale > 16 ? 16 : scale;
}

// Paints one image at (x0, y0), each pixel a scale x scale square (aert_image_scale).
static void paint_image(unsigned char *surface, int stride, int x0, int y0, const aert_real *image, int height,
                        int width, const int scale) {
  for (int y = 0; y < height * scale; y++) {
    uint32_t *row = (uint32_t *)(surface + (size_t)(y0 + y) * (size_t)stride) + x0;
    for (int x = 0; x < width * scale; x++) {
      uint32_t g = grey_level(image[(size_t)(y / scale) * (size_t)width + (size_t)(x / scale)]);
      row[x] = 0xff000000u | g << 16 | g << 8 | g;
    }
  }
}

int aert_write_image_grid(const char *path, const aert_real *images, int rows, int cols, int height, int width) {
  const int scale = aert_image_scale(height, width);
  if (rows < 1 || cols < 1 || height < 1 || width < 1 || (long)cols * (width * scale + GAP) + GAP > MAX_SIDE ||
      (long)rows * (height * scale + GAP) + GAP > MAX_SIDE) {
    aert_error("%s: cannot draw %d x %d images of %d x %d pixels (at most %d pixels a side)", path, rows, cols, height,
               width, MAX_SIDE);
    return -1;
  }
  int W = cols * (width * scale + GAP) + GAP, H = rows * (height * scale + GAP) + GAP;
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  if (cairo_surface_status(surface) == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(surface);
    unsigned char *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    memset(data, 0xff, (size_t)stride * (size_t)H);  // the white background
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++)
        paint_image(data, stride, GAP + c * (width * scale + GAP), GAP + r * (height * scale + GAP),
                    images + ((size_t)r * (size_t)cols + (size_t)c) * (size_t)height * (size_t)width, height, width,
                    scale);
    cairo_surface_mark_dirty(surface);
  }
  int rc = aert_png_save(surface, path);
  cairo_surface_destroy(surface);
  return rc;
}

// ------------------------------------------------------------------ figures
// A page of text, grey tiles and bar strips (activations draws with it).
struct aert_figure {
  cairo_surface_t *surface;
  cairo_t *cr;
};

aert_figure *aert_figure_new(int width, int height) {
  if (width < 1 || height < 1 || width > MAX_SIDE || height > MAX_SIDE) {
    aert_error("a figure of %d x %d pixels does not fit in one image (at most %d a side)", width, height, MAX_SIDE);
    return NULL;
  }
  aert_figure *f = calloc(1, sizeof *f);
  if (!f) return aert_error("out of memory for a figure"), NULL;
  f->surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  f->cr = cairo_create(f->surface);
  cairo_set_source_rgb(f->cr, 1, 1, 1);
  cairo_paint(f->cr);
  cairo_select_font_face(f->cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  return f;
}

void aert_figure_free(aert_figure *f) {
  if (!f) return;
  cairo_destroy(f->cr);
  cairo_surface_destroy(f->surface);
  free(f);
}

void aert_figure_text(aert_figure *f, double x, double y, const char *text, double size, bool bold, double align_x) {
  cairo_t *cr = f->cr;
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text, &ext);
  cairo_set_source_rgb(cr, 0, 0, 0);
  cairo_move_to(cr, x - ext.x_advance * align_x, y);
  cairo_show_text(cr, text);
}

double aert_text_width(const char *text, double size, bool bold) {
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 1);
  cairo_t *cr = cairo_create(surface);
  cairo_select_font_face(cr, "sans-serif", CAIRO_FONT_SLANT_NORMAL, bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, size);
  cairo_text_extents_t ext;
  cairo_text_extents(cr, text, &ext);
  cairo_destroy(cr);
  cairo_surface_destroy(surface);
  return ext.x_advance;
}

// A grey image as a cairo surface, one pixel per value; NaN: pale blue.
static cairo_surface_t *grey_surface(const aert_real *pixels, int height, int width) {
  cairo_surface_t *s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, width, height);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) return s;
  cairo_surface_flush(s);
  unsigned char *data = cairo_image_surface_get_data(s);
  int stride = cairo_image_surface_get_stride(s);
  for (int y = 0; y < height; y++) {
    uint32_t *row = (uint32_t *)(data + (size_t)y * (size_t)stride);
    for (int x = 0; x < width; x++) {
      aert_real v = pixels[(size_t)y * (size_t)width + (size_t)x];
      uint32_t g = grey_level(v);
      row[x] = isnan(v) ? 0xffcddbf2u : 0xff000000u | g << 16 | g << 8 | g;
    }
  }
  cairo_surface_mark_dirty(s);
  return s;
}

void aert_figure_tile(aert_figure *f, double x, double y, int box_w, int box_h, const aert_real *pixels, int height,
                      int width) {
  double scale = fmin((double)box_w / width, (double)box_h / height);
  if (scale >= 1) scale = floor(scale);  // whole pixels when enlarging
  double w = width * scale, h = height * scale, x0 = floor(x + (box_w - w) / 2), y0 = floor(y + (box_h - h) / 2);
  cairo_surface_t *image = grey_surface(pixels, height, width);
  cairo_t *cr = f->cr;
  cairo_save(cr);
  cairo_translate(cr, x0, y0);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, image, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), scale >= 1 ? CAIRO_FILTER_NEAREST : CAIRO_FILTER_GOOD);
  cairo_paint(cr);
  cairo_restore(cr);
  cairo_surface_destroy(image);
  cairo_set_source_rgb(cr, 0.55, 0.55, 0.55);  // a frame, so black tiles stand out from each other
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, x0 - 0.5, y0 - 0.5, w + 1, h + 1);
  cairo_stroke(cr);
}

void aert_figure_bars(aert_figure *f, double x, double y, int box_w, int box_h, const double *values, int n, double lo,
                      double hi) {
  cairo_t *cr = f->cr;
  cairo_set_source_rgb(cr, 0.95, 0.95, 0.95);
  cairo_rectangle(cr, x, y, box_w, box_h);
  cairo_fill(cr);
  if (!(hi > lo)) hi = lo + 1;
  double zero = y + box_h * (hi - fmax(fmin(0, hi), lo)) / (hi - lo), step = (double)box_w / (n > 0 ? n : 1);
  cairo_set_source_rgb(cr, 0.122, 0.467, 0.706);
  for (int i = 0; i < n; i++) {
    double v = isfinite(values[i]) ? fmax(fmin(values[i], hi), lo) : 0, top = y + box_h * (hi - v) / (hi - lo);
    cairo_rectangle(cr, x + i * step, fmin(top, zero), fmax(step - (step > 3 ? 1 : 0), 0.5), fabs(zero - top));
  }
  cairo_fill(cr);
  cairo_set_source_rgb(cr, 0.3, 0.3, 0.3);
  cairo_set_line_width(cr, 1);
  cairo_move_to(cr, x, floor(zero) + 0.5), cairo_line_to(cr, x + box_w, floor(zero) + 0.5);
  cairo_stroke(cr);
}

int aert_figure_write(aert_figure *f, const char *path) {
  cairo_status_t status = cairo_status(f->cr);
  int rc = -1;
  if (status != CAIRO_STATUS_SUCCESS) aert_error("%s: cannot draw the PNG image: %s", path, cairo_status_to_string(status));
  else rc = aert_png_save(f->surface, path);
  aert_figure_free(f);
  return rc;
}
