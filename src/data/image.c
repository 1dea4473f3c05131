/* Images: decoding through stb_image with the size checked before any pixel is allocated, writing
 * PNG and BMP through stb_image_write (not its JPEG encoder: it shifts signed ints out of range, which
 * UBSan builds abort on), and the antialiased short-side resize + centre crop every sample goes
 * through. The only translation unit that compiles stb_image (static, so nothing clashes with a
 * libstb linked elsewhere). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "data/data_internal.h"

#if defined(__GNUC__)
/* file-wide: this stb_image declares stbi_set_unpremultiply_on_load_thread static and never defines
 * it, which GCC reports at the end of the translation unit */
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#endif
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
/* no PNM: this stb_image reads 16-bit PNM past its buffer when converting channels (found by
 * tests/fuzz_data/fuzz_image) */
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_MAX_DIMENSIONS (1 << 20) /* a backstop: an_image_decode's own limit is checked first */
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

void an_image_free(an_image *img) {
  if (!img) return;
  free(img->pixels);
  img->pixels = NULL;
  img->width = img->height = img->channels = 0;
}

/* stb_image decodes a JPEG cut short without complaint (the missing data reads as zeros). A whole one
 * has an end-of-image marker after its last start-of-scan: entropy-coded data stuffs every 0xFF with
 * 0x00, so neither marker can occur inside a scan, and an EXIF thumbnail's markers come earlier. */
static int jpeg_truncated(const uint8_t *b, size_t n) {
  if (n < 4 || b[0] != 0xFF || b[1] != 0xD8) return 0;
  size_t last_sos = 0, last_eoi = 0;
  for (size_t i = 2; i + 1 < n; i++) {
    if (b[i] != 0xFF) continue;
    if (b[i + 1] == 0xDA) last_sos = i;
    else if (b[i + 1] == 0xD9) last_eoi = i;
  }
  return last_eoi == 0 || last_eoi < last_sos;
}

/* A PNG whose first IDAT chunk is empty makes stb_image memcpy to a NULL buffer (0 bytes: harmless in
 * practice, undefined behaviour all the same, and fatal in UBSan builds). Legal but never written by
 * real encoders, so refused. */
static int png_empty_idat(const uint8_t *b, size_t n) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (n < 8 || memcmp(b, signature, 8) != 0) return 0;
  for (size_t at = 8; at + 8 <= n;) {
    const uint32_t len = (uint32_t)b[at] << 24 | (uint32_t)b[at + 1] << 16 | (uint32_t)b[at + 2] << 8 | b[at + 3];
    if (!memcmp(b + at + 4, "IDAT", 4)) return len == 0;
    if (!memcmp(b + at + 4, "IEND", 4) || len > n - at - 8) return 0;
    at += 12 + (size_t)len;
  }
  return 0;
}

/* A JPEG Huffman table (DHT segment) whose 16 code counts add up to more than 256 makes stb_image 2.27
 * write past its 257-entry size table before it checks the sum (found by our fuzzer under UBSan). The
 * segments are walked as stb_image walks them (fill bytes, lengths, entropy-coded data after a scan,
 * bytes past the end reading as 0), so a table inside an APP or ICC payload is never mistaken for one. */
static int dht_overflows(const uint8_t *b, size_t n, size_t at, long left) {
  while (left > 0 && at < n) {
    at++; /* table class and id */
    size_t sum = 0;
    for (int k = 0; k < 16; k++, at++) sum += at < n ? b[at] : 0;
    if (sum > 256) return 1;
    at += sum;
    left -= 17 + (long)sum;
  }
  return 0;
}

static int jpeg_bad_huffman(const uint8_t *b, size_t n) {
  size_t i = 0;
  if (n < 2 || b[0] != 0xFF) return 0;
  while (i < n && b[i] == 0xFF) i++;
  if (i >= n || b[i] != 0xD8) return 0; /* not a JPEG: stb_image's test is the same */
  i++;
  while (i < n) {
    if (b[i] != 0xFF) { /* entropy-coded data (or garbage) until the next marker */
      i++;
      continue;
    }
    while (i < n && b[i] == 0xFF) i++;
    if (i >= n) break;
    const uint8_t m = b[i++];
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) continue; /* stuffing, TEM, RSTn, SOI */
    if (m == 0xD9) break;                                             /* end of image */
    const long len = i + 1 < n ? ((long)b[i] << 8 | b[i + 1]) : 0;
    if (m == 0xC4 && dht_overflows(b, n, i + 2, len - 2)) return 1;
    i += len >= 2 ? (size_t)len : 2;
  }
  return 0;
}

an_status an_image_decode(const void *bytes, size_t n_bytes, const char *name, an_image *out) {
  memset(out, 0, sizeof *out);
  if (!name) name = "image";
  if (n_bytes == 0) return AN_FAIL(AN_ERR_IO, "%s: empty file (0 bytes)", name);
  if (n_bytes > AN_IMAGE_MAX_FILE_BYTES)
    return AN_FAIL(AN_ERR_IO, "%s: %zu bytes, over the %u-byte limit for one image", name, n_bytes,
                   AN_IMAGE_MAX_FILE_BYTES);
  /* before stb_image sees the bytes at all: even its header parser builds the Huffman tables */
  if (jpeg_bad_huffman(bytes, n_bytes))
    return AN_FAIL(AN_ERR_IO, "%s: corrupt JPEG (a Huffman table with more than 256 codes)", name);
  int w = 0, h = 0, comp = 0;
  /* The header alone first: a file declaring 100000x100000 pixels is refused without allocating. */
  if (!stbi_info_from_memory(bytes, (int)n_bytes, &w, &h, &comp)) {
    const char *why = stbi_failure_reason();
    if (why && !strcmp(why, "too large"))
      return AN_FAIL(AN_ERR_IO, "%s: declares a side over the limit of %d pixels", name, AN_IMAGE_MAX_SIDE);
    return AN_FAIL(AN_ERR_IO, "%s: not a readable JPEG/PNG/BMP/GIF image (%s)", name, why ? why : "?");
  }
  if (w <= 0 || h <= 0 || w > AN_IMAGE_MAX_SIDE || h > AN_IMAGE_MAX_SIDE ||
      (uint64_t)w * (uint64_t)h > AN_IMAGE_MAX_PIXELS)
    return AN_FAIL(AN_ERR_IO, "%s: declares %dx%d pixels, over the limit (side %d, %u pixels)", name, w, h,
                   AN_IMAGE_MAX_SIDE, AN_IMAGE_MAX_PIXELS);
  if (png_empty_idat(bytes, n_bytes)) return AN_FAIL(AN_ERR_IO, "%s: PNG with an empty IDAT chunk", name);
  if (jpeg_truncated(bytes, n_bytes))
    return AN_FAIL(AN_ERR_IO, "%s: truncated JPEG (no end-of-image marker after the last scan)", name);
  int w2 = 0, h2 = 0;
  uint8_t *pixels = stbi_load_from_memory(bytes, (int)n_bytes, &w2, &h2, &comp, 3); /* (H, W, 3) */
  if (!pixels) return AN_FAIL(AN_ERR_IO, "%s: corrupt or truncated image (%s)", name, stbi_failure_reason());
  if (w2 != w || h2 != h) { /* a decoder that disagrees with its own header: do not trust the buffer */
    stbi_image_free(pixels);
    return AN_FAIL(AN_ERR_IO, "%s: header says %dx%d, decoder gave %dx%d", name, w, h, w2, h2);
  }
  out->width = w;
  out->height = h;
  out->channels = 3;
  out->pixels = pixels; /* stb_image allocates with malloc: an_image_free's free() matches */
  return AN_OK;
}

/* Reads a whole file (at most AN_IMAGE_MAX_FILE_BYTES) into a malloc'd buffer. */
static an_status read_file(const char *path, uint8_t **bytes, size_t *n_bytes) {
  *bytes = NULL;
  *n_bytes = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return AN_FAIL(AN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
  an_status status = AN_OK;
  uint8_t *buf = NULL;
  long size = -1;
  if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
  if (size < 0 || fseek(f, 0, SEEK_SET) != 0) {
    status = AN_FAIL(AN_ERR_IO, "%s: cannot seek: %s", path, strerror(errno));
    goto cleanup;
  }
  if ((unsigned long)size > AN_IMAGE_MAX_FILE_BYTES) {
    status = AN_FAIL(AN_ERR_IO, "%s: %ld bytes, over the %u-byte limit for one image", path, size,
                     AN_IMAGE_MAX_FILE_BYTES);
    goto cleanup;
  }
  buf = malloc(size ? (size_t)size : 1);
  if (!buf) {
    status = AN_FAIL(AN_ERR_HOST_ALLOC, "%s: out of host memory for %ld bytes", path, size);
    goto cleanup;
  }
  if (size && fread(buf, 1, (size_t)size, f) != (size_t)size) {
    status = AN_FAIL(AN_ERR_IO, "%s: read failed: %s", path, ferror(f) ? strerror(errno) : "file shrank");
    goto cleanup;
  }
  *bytes = buf;
  *n_bytes = (size_t)size;
  buf = NULL;
cleanup:
  free(buf);
  fclose(f);
  return status;
}

an_status an_image_load(const char *path, an_image *out) {
  memset(out, 0, sizeof *out);
  uint8_t *bytes;
  size_t n;
  an_status status = read_file(path, &bytes, &n);
  if (status != AN_OK) return status;
  status = an_image_decode(bytes, n, path, out);
  free(bytes);
  return status;
}

an_status an_image_write(const char *path, const an_image *img) {
  if (!img || !img->pixels || img->width <= 0 || img->height <= 0 || (img->channels != 1 && img->channels != 3))
    return AN_FAIL(AN_ERR_ARGUMENT, "%s: no image to write", path);
  const char *dot = strrchr(path, '.');
  const char *ext = dot ? dot + 1 : "";
  int ok;
  if (!strcasecmp(ext, "png"))
    ok = stbi_write_png(path, img->width, img->height, img->channels, img->pixels, img->width * img->channels);
  else if (!strcasecmp(ext, "bmp")) ok = stbi_write_bmp(path, img->width, img->height, img->channels, img->pixels);
  else return AN_FAIL(AN_ERR_ARGUMENT, "%s: cannot write '%s' images (png or bmp)", path, ext);
  if (!ok) return AN_FAIL(AN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
  return AN_OK;
}

/* ---- resize ----
 * Separable resampling with a triangle filter whose support widens with the shrink factor (PIL's
 * antialiased bilinear): no aliasing when a 4000-pixel photo becomes 256, plain bilinear when growing. */

static void axis_free(axis_weights *a) {
  free(a->first);
  free(a->taps);
  free(a->weight);
  memset(a, 0, sizeof *a);
}

void an_resize_cache_free(resize_cache *c) {
  axis_free(&c->x);
  axis_free(&c->y);
  free(c->rows);
  memset(c, 0, sizeof *c);
}

/* Output pixel o of `out` covers resized coordinate o + offset; resized = in · scale. Kept when the
 * geometry is the previous call's (every image of a fixed-size dataset). */
static an_status axis_plan(int in, int out, double scale, int offset, axis_weights *a) {
  if (a->first && a->in == in && a->out == out && a->scale == scale && a->offset == offset) return AN_OK;
  axis_free(a);
  const double support = scale < 1.0 ? 1.0 / scale : 1.0; /* in source pixels */
  a->max_taps = (int)ceil(2.0 * support) + 2;
  a->first = malloc(sizeof(int) * (size_t)out);
  a->taps = malloc(sizeof(int) * (size_t)out);
  a->weight = malloc(sizeof(float) * (size_t)out * (size_t)a->max_taps);
  if (!a->first || !a->taps || !a->weight) {
    axis_free(a);
    return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for resize weights (%d taps)",
                   (int)ceil(2.0 * support) + 2);
  }
  for (int o = 0; o < out; o++) {
    const double centre = (o + offset + 0.5) / scale; /* in source coordinates */
    int lo = (int)floor(centre - support), hi = (int)ceil(centre + support);
    if (lo < 0) lo = 0;
    if (hi > in - 1) hi = in - 1;
    if (hi - lo + 1 > a->max_taps) hi = lo + a->max_taps - 1;
    float *wt = a->weight + (size_t)o * a->max_taps;
    double total = 0;
    for (int j = lo; j <= hi; j++) {
      double t = fabs(j + 0.5 - centre) / support;
      double v = t < 1.0 ? 1.0 - t : 0.0;
      wt[j - lo] = (float)v;
      total += v;
    }
    if (total <= 0) { /* the centre sits outside the image by rounding: take the nearest pixel */
      int j = (int)floor(centre);
      lo = j < 0 ? 0 : (j > in - 1 ? in - 1 : j);
      hi = lo;
      wt[0] = 1.0f;
      total = 1.0;
    }
    while (hi > lo && wt[hi - lo] == 0) hi--; /* zero-weight taps at the ends cost time, add nothing */
    int skip = 0;
    while (lo + skip < hi && wt[skip] == 0) skip++;
    for (int j = 0; j <= hi - lo - skip; j++) wt[j] = (float)(wt[j + skip] / total);
    a->first[o] = lo + skip;
    a->taps[o] = hi - lo - skip + 1;
  }
  a->in = in;
  a->out = out;
  a->scale = scale;
  a->offset = offset;
  return AN_OK;
}

/* Horizontal pass of source rows [y_lo, y_hi) into rows (y_hi - y_lo, side, C); C a constant after
 * inlining, so each channel count gets its own loop. */
static inline void resize_rows(const an_image *src, const axis_weights *ax, int side, int y_lo, int y_hi,
                               float *rows, const int C) {
  const int w = src->width;
  for (int y = y_lo; y < y_hi; y++) {
    const uint8_t *in_row = src->pixels + (size_t)y * w * C;
    float *row = rows + (size_t)(y - y_lo) * side * C;
    for (int x = 0; x < side; x++) {
      const float *wt = ax->weight + (size_t)x * ax->max_taps;
      const uint8_t *p = in_row + (size_t)ax->first[x] * C;
      float acc[3] = {0, 0, 0};
      for (int t = 0; t < ax->taps[x]; t++)
        for (int ch = 0; ch < C; ch++) acc[ch] += wt[t] * p[t * C + ch];
      for (int ch = 0; ch < C; ch++) row[x * C + ch] = acc[ch];
    }
  }
}

/* Vertical pass: output row y from `taps` consecutive rows of the horizontal pass, grey to RGB. */
static inline void resize_column(const float *restrict base, size_t row_floats, const float *restrict wt, int taps,
                                 uint8_t *restrict o, const int C) {
  for (size_t i = 0; i < row_floats; i++) {
    float v = 0;
    for (int t = 0; t < taps; t++) v += wt[t] * base[(size_t)t * row_floats + i];
    v = v < 0 ? 0 : (v > 255 ? 255 : v);
    const uint8_t u = (uint8_t)(v + 0.5f);
    if (C == 3) o[i] = u;
    else o[3 * i] = o[3 * i + 1] = o[3 * i + 2] = u;
  }
}

an_status an_resize_square_cached(const an_image *src, int side, an_image *dst, resize_cache *cache) {
  if (!src || !src->pixels || src->width <= 0 || src->height <= 0 || (src->channels != 1 && src->channels != 3) ||
      side <= 0 || !dst || !dst->pixels)
    return AN_FAIL(AN_ERR_ARGUMENT, "resize: invalid image or side %d", side);
  const int w = src->width, h = src->height, c = src->channels;
  dst->width = dst->height = side;
  dst->channels = 3;
  uint8_t *out = dst->pixels;   /* (side, side, 3) */
  if (w == side && h == side) { /* already the base size: copy, grey to RGB */
    const size_t n = (size_t)side * side;
    if (c == 3) memcpy(out, src->pixels, n * 3);
    else
      for (size_t i = 0; i < n; i++) out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = src->pixels[i];
    return AN_OK;
  }
  /* short side to `side`, the long one in proportion, then the centred side x side window */
  const double s = (double)side / (w < h ? w : h);
  int rw = (int)lround(w * s), rh = (int)lround(h * s);
  if (rw < side) rw = side;
  if (rh < side) rh = side;
  an_status status = axis_plan(w, side, (double)rw / w, (rw - side) / 2, &cache->x);
  if (status == AN_OK) status = axis_plan(h, side, (double)rh / h, (rh - side) / 2, &cache->y);
  if (status != AN_OK) return status;
  const axis_weights *ax = &cache->x, *ay = &cache->y;
  /* only the source rows the vertical pass reads */
  const int y_lo = ay->first[0], y_hi = ay->first[side - 1] + ay->taps[side - 1];
  const size_t row_floats = (size_t)side * c, need = (size_t)(y_hi - y_lo) * row_floats;
  if (cache->rows_floats < need) {
    free(cache->rows);
    cache->rows_floats = 0;
    if (!(cache->rows = malloc(sizeof(float) * need))) /* (y_hi - y_lo, side, c) */
      return AN_FAIL(AN_ERR_HOST_ALLOC, "resize: out of host memory for %d rows", y_hi - y_lo);
    cache->rows_floats = need;
  }
  if (c == 3) resize_rows(src, ax, side, y_lo, y_hi, cache->rows, 3);
  else resize_rows(src, ax, side, y_lo, y_hi, cache->rows, 1);
  for (int y = 0; y < side; y++) {
    const float *wt = ay->weight + (size_t)y * ay->max_taps;
    const float *base = cache->rows + (size_t)(ay->first[y] - y_lo) * row_floats;
    uint8_t *o = out + (size_t)y * side * 3;
    if (c == 3) resize_column(base, row_floats, wt, ay->taps[y], o, 3);
    else resize_column(base, row_floats, wt, ay->taps[y], o, 1);
  }
  return AN_OK;
}

an_status an_image_resize_square(const an_image *src, int side, an_image *dst) {
  resize_cache cache = {0};
  an_status status = an_resize_square_cached(src, side, dst, &cache);
  an_resize_cache_free(&cache);
  return status;
}
