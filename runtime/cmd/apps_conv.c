// apps_conv.c — pictures of convolutional models: `filters` for a first conv
// layer draws each filter's k x k weights, one tile per (filter, input
// channel), a row of tiles per filter when there are several channels.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "aert_internal.h"

int aert_draw_conv_filters(const aert_model *model, const aert_options *options, const aert_param *kernel) {
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
