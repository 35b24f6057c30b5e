// image.c — grids of grey images as PNG files through cairo.
#include <cairo.h>
#include <string.h>

#include "aert_internal.h"

#define SCALE 3  // screen pixels per image pixel
#define GAP 2    // white pixels between images and around the grid
#define MAX_SIDE 32767  // cairo's largest image surface

static unsigned char grey_level(aert_real v) {
  if (!(v > 0)) return 0;  // NaN too
  if (v >= 1) return 255;
  return (unsigned char)(v * 255 + (aert_real)0.5);
}

// Paints one image at (x0, y0), each pixel a SCALE x SCALE square.
static void paint_image(unsigned char *surface, int stride, int x0, int y0, const aert_real *image, int height,
                        int width) {
  for (int y = 0; y < height * SCALE; y++) {
    uint32_t *row = (uint32_t *)(surface + (size_t)(y0 + y) * (size_t)stride) + x0;
    for (int x = 0; x < width * SCALE; x++) {
      uint32_t g = grey_level(image[(size_t)(y / SCALE) * (size_t)width + (size_t)(x / SCALE)]);
      row[x] = 0xff000000u | g << 16 | g << 8 | g;
    }
  }
}

int aert_write_image_grid(const char *path, const aert_real *images, int rows, int cols, int height, int width) {
  if (rows < 1 || cols < 1 || height < 1 || width < 1 || (long)cols * (width * SCALE + GAP) + GAP > MAX_SIDE ||
      (long)rows * (height * SCALE + GAP) + GAP > MAX_SIDE) {
    aert_error("%s: cannot draw %d x %d images of %d x %d pixels (at most %d pixels a side)", path, rows, cols, height,
               width, MAX_SIDE);
    return -1;
  }
  int W = cols * (width * SCALE + GAP) + GAP, H = rows * (height * SCALE + GAP) + GAP;
  cairo_surface_t *surface = cairo_image_surface_create(CAIRO_FORMAT_RGB24, W, H);
  cairo_status_t status = cairo_surface_status(surface);
  if (status == CAIRO_STATUS_SUCCESS) {
    cairo_surface_flush(surface);
    unsigned char *data = cairo_image_surface_get_data(surface);
    int stride = cairo_image_surface_get_stride(surface);
    memset(data, 0xff, (size_t)stride * (size_t)H);  // the white background
    for (int r = 0; r < rows; r++)
      for (int c = 0; c < cols; c++)
        paint_image(data, stride, GAP + c * (width * SCALE + GAP), GAP + r * (height * SCALE + GAP),
                    images + ((size_t)r * (size_t)cols + (size_t)c) * (size_t)height * (size_t)width, height, width);
    cairo_surface_mark_dirty(surface);
    status = cairo_surface_write_to_png(surface, path);
  }
  cairo_surface_destroy(surface);
  if (status != CAIRO_STATUS_SUCCESS) {
    aert_error("%s: cannot write the PNG image: %s", path, cairo_status_to_string(status));
    return -1;
  }
  return 0;
}
