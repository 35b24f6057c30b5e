// png.c — a folder of PNG images as a data set. `dir/` holds either PNG
// files (no labels) or class sub-folders of PNG files: label i is the i-th
// folder name in byte order, and a note prints the mapping. Files are taken
// in name order, hidden names (a leading dot) skipped. Every image must have
// the first one's size; each becomes [channels, height, width] in [0, 1].
//
// Channels: cairo decodes every PNG to 8-bit RGB (a gray PNG to R = G = B),
// so the channels come from the model: an input of 1 channel (or of
// height * width values) takes gray images, and an image with a pixel whose
// R, G and B differ is an error naming it; an input of 3 channels (or 3 *
// height * width values) takes RGB, a gray image repeated in each. With no
// model to ask, the set is gray when every pixel of every image is. Alpha is
// dropped (the colour as stored, as PIL's convert("RGB") does).
//
// Each file is read as data files are (dataset.c: only a regular file,
// symbolic links followed, never blocking on a FIFO), its size and signature
// checked from its header before cairo decodes it, so a PNG of the wrong size
// costs no decoding.
#define _GNU_SOURCE
#include <cairo.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data.h"

// The most pixels an image may have (cairo itself stops at 32767 a side).
#define PNG_MAX_PIXELS ((size_t)1 << 26)
#define PNG_MAX_FILE_BYTES ((size_t)1 << 28)

static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

static size_t png_limit(const char *path, const unsigned char *head, size_t n, bool *declared) {
  if (n < 8 || memcmp(head, png_signature, 8) != 0) {
    aert_error("%s: not a PNG file (it does not start with PNG's signature); a folder data set holds PNG images, "
               "in class sub-folders or not", path);
    return 0;
  }
  *declared = false;
  return PNG_MAX_FILE_BYTES;
}

// Width and height from the IHDR chunk; false after a message.
static bool png_size(const char *path, const unsigned char *data, size_t size, int *width, int *height) {
  if (size < 24 || memcmp(data + 12, "IHDR", 4) != 0) {
    aert_error("%s: a damaged PNG file: no image header (IHDR) after the signature", path);
    return false;
  }
  uint32_t w = (uint32_t)data[16] << 24 | (uint32_t)data[17] << 16 | (uint32_t)data[18] << 8 | data[19];
  uint32_t h = (uint32_t)data[20] << 24 | (uint32_t)data[21] << 16 | (uint32_t)data[22] << 8 | data[23];
  if (w == 0 || h == 0 || w > 32767 || h > 32767 || (size_t)w * h > PNG_MAX_PIXELS) {
    aert_error("%s: a PNG image of %u x %u pixels is not supported (at most %zu pixels, 32767 a side)", path, w, h,
               PNG_MAX_PIXELS);
    return false;
  }
  *width = (int)w, *height = (int)h;
  return true;
}

typedef struct png_reader {
  const unsigned char *p, *end;
} png_reader;

static cairo_status_t read_bytes(void *closure, unsigned char *out, unsigned int length) {
  png_reader *r = closure;
  if ((size_t)(r->end - r->p) < length) return CAIRO_STATUS_READ_ERROR;
  memcpy(out, r->p, length);
  r->p += length;
  return CAIRO_STATUS_SUCCESS;
}

// The image decoded to ARGB32 or RGB24 (other formats painted onto ARGB32); NULL after a message.
static cairo_surface_t *decode(const char *path, const unsigned char *data, size_t size) {
  png_reader r = {data, data + size};
  cairo_surface_t *s = cairo_image_surface_create_from_png_stream(read_bytes, &r);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    aert_error("%s: cannot decode the PNG image, damaged or of a kind cairo does not read (cairo: %s)", path,
               cairo_status_to_string(cairo_surface_status(s)));
    cairo_surface_destroy(s);
    return NULL;
  }
  cairo_format_t f = cairo_image_surface_get_format(s);
  if (f == CAIRO_FORMAT_ARGB32 || f == CAIRO_FORMAT_RGB24 || f == CAIRO_FORMAT_A8) return s;
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  cairo_surface_t *argb = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
  cairo_t *cr = cairo_create(argb);
  cairo_set_source_surface(cr, s, 0, 0);
  cairo_set_operator(cr, CAIRO_OPERATOR_SOURCE);
  cairo_paint(cr);
  cairo_destroy(cr);
  cairo_surface_destroy(s);
  if (cairo_surface_status(argb) != CAIRO_STATUS_SUCCESS) {
    aert_error("%s: cannot convert the PNG image: %s", path, cairo_status_to_string(cairo_surface_status(argb)));
    cairo_surface_destroy(argb);
    return NULL;
  }
  cairo_surface_flush(argb);
  return argb;
}

// Pixel (x, y) as 8-bit R, G, B.
static void pixel_rgb(cairo_format_t f, const unsigned char *row, int x, unsigned rgb[3]) {
  if (f == CAIRO_FORMAT_A8) {
    rgb[0] = rgb[1] = rgb[2] = row[x];
    return;
  }
  uint32_t p;
  memcpy(&p, row + 4 * (size_t)x, 4);
  unsigned a = f == CAIRO_FORMAT_ARGB32 ? p >> 24 : 255;
  for (int c = 0; c < 3; c++) {
    unsigned v = (p >> (16 - 8 * c)) & 255;
    rgb[c] = a == 255 ? v : a == 0 ? 0 : (v * 255 + a / 2) / a;  // premultiplied: the colour as stored
  }
}

// Converts the decoded image into out: `channels` planes of h * w, or 3 when
// channels is 0 (gray decided later). *color set when a pixel is not gray;
// with channels 1 that is an error naming it.
static bool convert(const char *path, cairo_surface_t *s, int channels, const char *expect_what, aert_real *out,
                    bool *color) {
  cairo_surface_flush(s);
  cairo_format_t f = cairo_image_surface_get_format(s);
  int w = cairo_image_surface_get_width(s), h = cairo_image_surface_get_height(s);
  int stride = cairo_image_surface_get_stride(s);
  const unsigned char *data = cairo_image_surface_get_data(s);
  size_t plane = (size_t)w * (size_t)h;
  for (int y = 0; y < h; y++)
    for (int x = 0; x < w; x++) {
      unsigned rgb[3];
      pixel_rgb(f, data + (size_t)y * (size_t)stride, x, rgb);
      size_t at = (size_t)y * (size_t)w + (size_t)x;
      if (rgb[0] != rgb[1] || rgb[1] != rgb[2]) {
        if (channels == 1) {
          aert_error("%s: a color image (the pixel at row %d, column %d is R %u, G %u, B %u), but %s: one channel, "
                     "gray; convert the images to grayscale, or give the model's input 3 channels",
                     path, y, x, rgb[0], rgb[1], rgb[2], expect_what ? expect_what : "the model's input has");
          return false;
        }
        *color = true;
      }
      if (channels == 1) out[at] = (aert_real)rgb[0] / (aert_real)255;
      else
        for (int c = 0; c < 3; c++) out[(size_t)c * plane + at] = (aert_real)rgb[c] / (aert_real)255;
    }
  return true;
}

static int compare_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// A folder's visible entries, sorted by name (byte order); NULL after a message.
static char **list_folder(const char *dir, int *count) {
  DIR *d = opendir(dir);
  if (!d) {
    aert_error("%s: cannot open the folder: %s", dir, strerror(errno));
    return NULL;
  }
  char **names = NULL;
  int n = 0, capacity = 0;
  bool ok = true;
  for (struct dirent *e; ok && (e = readdir(d));) {
    if (e->d_name[0] == '.') continue;  // ".", "..", hidden files
    if (n == capacity) {
      capacity = capacity ? 2 * capacity : 64;
      char **grown = realloc(names, (size_t)capacity * sizeof *grown);
      if (!grown) {
        ok = false;
        break;
      }
      names = grown;
    }
    if (!(names[n] = strdup(e->d_name))) ok = false;
    else n++;
  }
  closedir(d);
  if (!ok) {
    aert_error("%s: out of memory listing the folder", dir);
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return NULL;
  }
  if (n) qsort(names, (size_t)n, sizeof *names, compare_names);
  *count = n;
  return names ? names : calloc(1, sizeof *names);
}

static void free_names(char **names, int n) {
  for (int i = 0; names && i < n; i++) free(names[i]);
  free(names);
}

static char *join(const char *dir, const char *name) {
  char *path = NULL;
  size_t n = strlen(dir);
  if (asprintf(&path, "%s%s%s", dir, n && dir[n - 1] == '/' ? "" : "/", name) < 0) return NULL;
  return path;
}

static bool is_folder(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

typedef struct image_list {
  char **paths;
  int32_t *labels;
  size_t n, capacity;
} image_list;

static bool add_image(image_list *list, char *path, int32_t label) {
  if (!path) return aert_error("out of memory for the list of images"), false;
  if (list->n == list->capacity) {
    size_t c = list->capacity ? 2 * list->capacity : 256;
    char **p = realloc(list->paths, c * sizeof *p);
    if (p) list->paths = p;
    int32_t *l = realloc(list->labels, c * sizeof *l);
    if (l) list->labels = l;
    if (!p || !l) return aert_error("out of memory for the list of images"), free(path), false;
    list->capacity = c;
  }
  list->paths[list->n] = path;
  list->labels[list->n++] = label;
  return true;
}

// The files of the folder (and of its class folders, with *classes their
// names); false after a message.
static bool collect(const char *dir, image_list *list, char ***classes, int *n_classes) {
  int n = 0;
  char **names = list_folder(dir, &n);
  if (!names) return false;
  int folders = 0;
  bool ok = true;
  for (int i = 0; i < n && ok; i++) {
    char *path = join(dir, names[i]);
    folders += path && is_folder(path);
    free(path);
  }
  if (n == 0) {
    aert_error("%s: the folder holds no PNG images (nor class folders of them)", dir);
    ok = false;
  } else if (folders == 0) {
    for (int i = 0; i < n && ok; i++) ok = add_image(list, join(dir, names[i]), -1);
  } else if (folders < n) {
    for (int i = 0; i < n; i++) {
      char *path = join(dir, names[i]);
      if (path && !is_folder(path)) {
        aert_error("%s: a file beside class folders; a folder data set holds either PNG files or class folders of "
                   "them, so move it into a class folder or out", path);
        free(path);
        break;
      }
      free(path);
    }
    ok = false;
  } else {
    for (int c = 0; c < n && ok; c++) {
      char *sub = join(dir, names[c]);
      int m = 0;
      char **files = sub ? list_folder(sub, &m) : NULL;
      ok = files != NULL;
      if (ok && m == 0) {
        aert_error("%s/: the class folder '%s' holds no PNG images", sub, names[c]);
        ok = false;
      }
      for (int i = 0; i < m && ok; i++) {
        char *path = join(sub, files[i]);
        if (path && is_folder(path)) {
          aert_error("%s: a folder inside the class folder '%s'; a class folder holds PNG files only", path, names[c]);
          free(path);
          ok = false;
        } else {
          ok = add_image(list, path, c);
        }
      }
      free_names(files, m);
      free(sub);
    }
    if (ok) {
      *classes = names, *n_classes = n;
      return true;
    }
  }
  free_names(names, n);
  return ok;
}

// The channels each image gets: the model's, or 0 (decided from the pixels).
// false after a message when the model's input cannot take h x w images.
static bool channels_for(const char *first, int w, int h, const aert_data_expect *e, int *channels) {
  size_t plane = (size_t)w * (size_t)h;
  char what[256];
  snprintf(what, sizeof what, "%s", e->what ? e->what : "");
  if (!e->what) snprintf(what, sizeof what, "the model expects %zu values", e->size);
  if (e->size == 0) return *channels = 0, true;
  if (e->rank == 3) {
    if (e->shape[1] == h && e->shape[2] == w && (e->shape[0] == 1 || e->shape[0] == 3))
      return *channels = e->shape[0], true;
    if (e->shape[0] != 1 && e->shape[0] != 3)
      aert_error("%s: the images are %d x %d pixels (1 or 3 channels), %s: a folder of PNG images gives 1 channel "
                 "(gray) or 3 (RGB)", first, w, h, what);
    else
      aert_error("%s: the image is %d x %d pixels (width x height), %s: height %d, width %d; make every image %d x %d",
                 first, w, h, what, e->shape[1], e->shape[2], e->shape[2], e->shape[1]);
    return false;
  }
  if (e->size == plane) return *channels = 1, true;
  if (e->size == 3 * plane) return *channels = 3, true;
  aert_error("%s: the image is %d x %d pixels (%zu values gray, %zu RGB), %s", first, w, h, plane, 3 * plane, what);
  return false;
}

aert_dataset *aert_load_png_folder(const char *path, const aert_data_expect *expect) {
  aert_data_expect none = {0};
  const aert_data_expect *e = expect ? expect : &none;
  image_list list = {0};
  char **classes = NULL;
  int n_classes = 0, channels = 0, width = 0, height = 0;
  aert_dataset *d = NULL;
  aert_real *x = NULL;
  bool color = false, ok = collect(path, &list, &classes, &n_classes);
  size_t plane = 0, sample = 0;
  for (size_t i = 0; ok && i < list.n; i++) {
    const char *file = list.paths[i];
    unsigned char *bytes = NULL;
    size_t size = 0;
    int w, h;
    ok = aert_read_file(file, png_limit, &bytes, &size) == 0 && png_size(file, bytes, size, &w, &h);
    if (ok && i == 0) {
      width = w, height = h, plane = (size_t)w * (size_t)h;
      ok = channels_for(file, w, h, e, &channels);
      sample = (channels ? (size_t)channels : 3) * plane;
      size_t total;
      if (ok && (!aert_mul_size(list.n, sample, SIZE_MAX / sizeof(aert_real), &total) ||
                 !(x = malloc(total * sizeof *x)))) {
        aert_error("%s: out of memory for %zu images of %zu values", path, list.n, sample);
        ok = false;
      }
    } else if (ok && (w != width || h != height)) {
      aert_error("%s: the image is %d x %d pixels, but %s is %d x %d; every image of a folder data set has the same "
                 "size", file, w, h, list.paths[0], width, height);
      ok = false;
    }
    cairo_surface_t *s = ok ? decode(file, bytes, size) : NULL;
    free(bytes);
    if (ok && !s) ok = false;
    if (ok) ok = convert(file, s, channels, e->what, x + i * sample, &color);
    if (s) cairo_surface_destroy(s);
  }
  if (ok && channels == 0) {  // no model to ask: gray when every pixel is
    channels = color ? 3 : 1;
    if (!color)
      for (size_t i = 0; i < list.n; i++) memmove(x + i * plane, x + i * 3 * plane, plane * sizeof *x);
    sample = (size_t)channels * plane;
  }
  if (ok) {
    size_t shape[3] = {(size_t)channels, (size_t)height, (size_t)width};
    aert_real *fitted = realloc(x, list.n * sample * sizeof *x);
    if (fitted) x = fitted;
    d = aert_dataset_adopt(path, list.n, 3, shape, x);
    x = NULL;
  }
  if (d && classes) {
    d->labels = malloc(list.n * sizeof *d->labels);
    if (!d->labels) {
      aert_error("%s: out of memory for %zu labels", path, list.n);
      aert_dataset_free(d);
      d = NULL;
    } else {
      memcpy(d->labels, list.labels, list.n * sizeof *d->labels);
      d->class_names = classes, d->n_classes = n_classes;
      classes = NULL;
      aert_buf mapping = {0};
      for (int c = 0; c < d->n_classes; c++) aert_buf_printf(&mapping, "%s%d = %s", c ? ", " : "", c, d->class_names[c]);
      aert_note("%s: %d classes from its folders: %s", path, d->n_classes, mapping.failed ? "?" : mapping.data);
      aert_buf_free(&mapping);
    }
  }
  free(x);
  free_names(classes, n_classes);
  for (size_t i = 0; i < list.n; i++) free(list.paths[i]);
  free(list.paths), free(list.labels);
  return d;
}
