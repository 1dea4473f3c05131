/* Datasets, preprocessing and augmentation, and the threaded batch loader: image files in, float NCHW
 * batches and int labels out, exactly what an_net_set_batch and an_net_train_step take.
 *
 * One sample's way through:
 *   decode (uint8 HWC, grey or RGB)
 *   -> short side scaled to aug.resize and centre crop resize x resize, 3 channels ("base" image)
 *   -> crop input x input: random in training, centre (or ten crops) in evaluation
 *   -> horizontal flip (training) -> PCA lighting (training) -> x = (p/255 - mean) / std · scale
 *   -> float (3, input, input)
 *
 * Datasets: Fashion-MNIST's IDX files (gzip'd or not), a folder-per-class tree of JPEG/PNG/BMP/GIF
 * images, a pack shard (alexnet pack), or a synthetic set made in memory. A dataset is read-only once
 * open: an_dataset_read may run on several threads at once.
 *
 * Bad images: a file that cannot be read or decoded is a per-sample failure, never a crash. The loader
 * skips it, names the file once through the warning callback (stderr when none is given) and counts it.
 * A missing path, an empty class folder or an empty dataset is an error from the opener, before any
 * training starts. */
#ifndef ALEXNET_DATA_H
#define ALEXNET_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "alexnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Receives one warning line (no trailing newline), e.g. "flowers/roses/x.jpg: skipped: corrupt JPEG".
 * The loader calls it from its worker threads, one call at a time. */
typedef void (*an_warn_fn)(void *ctx, const char *message);

/* ---- images ---- */

/* Decoder limits: a file whose header declares more is rejected before any pixel is allocated. */
#define AN_IMAGE_MAX_SIDE 32768
#define AN_IMAGE_MAX_PIXELS (64u << 20) /* width · height */
#define AN_IMAGE_MAX_FILE_BYTES (512u << 20)

typedef struct an_image {
  int width, height, channels; /* channels: 1 (grey) or 3 (RGB) */
  uint8_t *pixels;             /* (H, W, C), malloc'd; an_image_free releases it */
} an_image;

void an_image_free(an_image *img);

/* Decodes JPEG, PNG, BMP or GIF (first frame) bytes to 3-channel RGB. name is only used in the
 * error message. AN_ERR_IO for anything that is not a whole, decodable image within the limits. */
an_status an_image_decode(const void *bytes, size_t n_bytes, const char *name, an_image *out);
an_status an_image_load(const char *path, an_image *out);

/* Writes img as PNG or BMP, chosen by path's extension (no JPEG: see image.c). */
an_status an_image_write(const char *path, const an_image *img);

/* Scales src so its short side is `side` (antialiased triangle filter when shrinking, bilinear when
 * growing), takes the centre side x side square, and expands grey to RGB: dst is (side, side, 3).
 * dst->pixels must hold side·side·3 bytes (the caller owns it). */
an_status an_image_resize_square(const an_image *src, int side, an_image *dst);

/* ---- datasets ---- */

typedef struct an_dataset an_dataset;

/* Opens by specification:
 *   "fashion-mnist" or "fashion-mnist:train"   the 60000 training images (an_dataset_open_fashion_mnist)
 *   "fashion-mnist:test"                       the 10000 test images
 *   a directory                                folder-per-class tree (an_dataset_open_folder)
 *   a file                                     pack shard (an_dataset_open_pack) */
an_status an_dataset_open(const char *spec, an_dataset **out);

/* dir NULL: $ALEXNET_FASHION_MNIST, else /usr/share/datasets/fashion-mnist (Debian's
 * dataset-fashion-mnist). Reads {train,t10k}-{images-idx3,labels-idx1}-ubyte, with or without .gz. */
an_status an_dataset_open_fashion_mnist(const char *dir, int train, an_dataset **out);

/* An IDX pair (images: ubyte, 3 dims N x H x W; labels: ubyte, N), each gzip'd or not. Class names
 * are "0", "1", …; classes = largest label + 1. */
an_status an_dataset_open_idx(const char *images_path, const char *labels_path, an_dataset **out);
/* The same from bytes in memory (the files' contents, gzip'd or not); name appears in messages. */
an_status an_dataset_open_idx_memory(const void *images, size_t images_bytes, const void *labels,
                                     size_t labels_bytes, const char *name, an_dataset **out);

/* root/<class>/…/<image>: one folder per class, class names and label order from the sorted folder
 * names (byte order, as Python's sorted()), image files found recursively by extension (.jpg .jpeg
 * .png .bmp .gif, any case), hidden entries ignored. Files are only listed here; they
 * are decoded when read. No class folder, or a class folder with no image file, is AN_ERR_ARGUMENT;
 * a missing root AN_ERR_IO. */
an_status an_dataset_open_folder(const char *root, an_dataset **out);

/* A pack shard written by an_pack_write. Labels and class names are read now, images when read. */
an_status an_dataset_open_pack(const char *path, an_dataset **out);

/* Learnable synthetic images: class c is a colour (hue c/classes) under stripes whose angle and
 * frequency depend on c, with a random phase, random brightness and Gaussian pixel noise. Sample i has
 * label i mod classes and depends only on (seed, i). */
typedef struct an_synthetic_config {
  int count, classes, side; /* images, classes (1…64), side in pixels (>= 4) */
  float noise;              /* pixel noise std in [0, 1] units (0.1 is easy, 0.4 hard) */
  uint64_t seed;
} an_synthetic_config;
an_status an_dataset_synthetic(const an_synthetic_config *cfg, an_dataset **out);

/* Holds out val_fraction of every class (at least one image of a class with two or more) with a
 * shuffle seeded by seed; the two views share ds's storage and stay valid after ds is destroyed. */
an_status an_dataset_split(const an_dataset *ds, double val_fraction, uint64_t seed, an_dataset **train,
                           an_dataset **val);

/* AN_ERR_ARGUMENT naming the first difference unless val has train's classes in the same order (a
 * validation folder must have the same class folders as the training folder). */
an_status an_dataset_check_classes(const an_dataset *train, const an_dataset *val);

void an_dataset_destroy(an_dataset *ds);

int an_dataset_count(const an_dataset *ds);
int an_dataset_classes(const an_dataset *ds);
const char *an_dataset_class_name(const an_dataset *ds, int c);
int an_dataset_label(const an_dataset *ds, int i);
int an_dataset_class_count(const an_dataset *ds, int c); /* images of class c */
const char *an_dataset_source(const an_dataset *ds);     /* "fashion-mnist train", a path, … */
/* The native size of sample i when every sample has the same one (IDX, pack, synthetic): returns 1 and
 * sets width/height/channels; 0 for folders, whose files differ. */
int an_dataset_fixed_size(const an_dataset *ds, int *width, int *height, int *channels);

/* Sample i decoded (grey stays 1 channel; folders always give 3). AN_ERR_IO names the file when it
 * cannot be read or decoded. Safe to call from several threads at once. */
an_status an_dataset_read(const an_dataset *ds, int i, an_image *out);
/* What sample i is called in messages: its path, or "<source> #i". */
void an_dataset_sample_name(const an_dataset *ds, int i, char *buf, size_t size);

/* Writes ds as a folder-per-class tree: root/<class>/<i>.<ext>, ext "png" or "bmp" ('/' in a
 * class name becomes '_'). For tests and demos; undecodable samples are an error here. */
an_status an_dataset_export_folder(const an_dataset *ds, const char *root, const char *ext);

/* ---- pack shards ----
 * Little-endian. A 64-byte header (magic "ANPACK01", u32 version 1, count, width, height, channels,
 * classes, names_bytes, reserved, u64 images_offset, labels_offset, 8 reserved bytes), the class
 * names (NUL-terminated, names_bytes in all), images at images_offset (count · H·W·C bytes, HWC), then
 * count u32 labels at labels_offset, which ends the file. */
typedef struct an_pack_report {
  int written, skipped;
} an_pack_report;

/* Writes every readable sample of ds, short side to `side` and centre-cropped to side x side RGB, in
 * ds's order, to path (through path.tmp and a rename, so a crash leaves no half file). Unreadable
 * samples are skipped with a warning (warn NULL: stderr) and counted; none readable is AN_ERR_IO. */
an_status an_pack_write(const an_dataset *ds, const char *path, int side, int threads, an_warn_fn warn,
                        void *warn_ctx, an_pack_report *report);

/* ---- statistics for normalisation and PCA lighting ---- */
typedef struct an_data_stats {
  float mean[3], std[3]; /* per channel, pixel values in [0, 1] */
  float eigval[3];       /* eigenvalues of the 3x3 RGB covariance, descending */
  float eigvec[3][3];    /* eigvec[k] = unit eigenvector of eigval[k] (R, G, B) */
  int images;            /* images the figures come from */
} an_data_stats;

/* Over max_images images drawn without replacement with seed (0 or more than the set: all of them),
 * every pixel of each decoded image weighing the same; unreadable images are skipped with a warning.
 * The result does not depend on threads. */
an_status an_data_stats_compute(const an_dataset *ds, int max_images, uint64_t seed, int threads, an_warn_fn warn,
                                void *warn_ctx, an_data_stats *out);
/* ImageNet's figures, for a model whose checkpoint carries none: torchvision's mean and std, and the
 * eigenvalues and eigenvectors of fb.resnet.torch's Lighting transform. */
an_data_stats an_data_stats_imagenet(void);

/* Eigen-decomposition of a symmetric 3x3 matrix by cyclic Jacobi rotations: eigval descending,
 * eigvec[k] the unit eigenvector of eigval[k] with its largest-magnitude component positive. */
void an_eigen_sym3(const double a[3][3], double eigval[3], double eigvec[3][3]);

/* ---- preprocessing and augmentation ---- */
typedef enum an_norm {
  AN_NORM_NONE,    /* x = p/255 */
  AN_NORM_MEAN,    /* x = p/255 - mean[c]  (the paper's mean subtraction) */
  AN_NORM_MEAN_STD /* x = (p/255 - mean[c]) / std[c] */
} an_norm;

typedef struct an_augment {
  int resize;      /* short side to this, then centre crop resize x resize (256); >= input */
  int input;       /* side of the crops the net takes (224) */
  int random_crop; /* training: crop at a uniform position of the base image; 0: centre */
  int flip;        /* training: mirror with probability 1/2 */
  float pca_std;   /* training: lighting += Σ_k eigvec[k]·α_k·eigval[k], α_k ~ N(0, pca_std); 0 off */
  int ten_crop;    /* evaluation: 4 corners + centre and their mirrors instead of the centre crop */
  an_norm norm;
  float scale; /* multiplies the result: 1, or 255 for raw pixel units */
} an_augment;

/* resize = round(input · 256/224), random crop, flip, PCA 0.1, mean/std, centre-crop evaluation. */
an_augment an_augment_default(int input);
/* The paper: 256, random 224 crops, flip, PCA 0.1, mean subtraction (scale 1: [0, 1] units). */
an_augment an_augment_paper(void);
/* Everything off: resize = input, centre crop, no flip, no lighting, no normalisation. */
an_augment an_augment_none(int input);
an_status an_augment_check(const an_augment *aug);
/* "mean_std", "mean", "none" (the checkpoint metadata's and train --norm's spelling; "mean-std" parses too). */
const char *an_norm_name(an_norm norm);
an_status an_norm_parse(const char *name, an_norm *out);
/* One line naming every training setting of aug ("resize 72, crop random, flip 1, pca 0.1, norm mean_std"):
 * the run's recipe in log.jsonl, and what --resume compares. */
void an_augment_describe(const an_augment *aug, char *buf, size_t n);
/* The evaluation preprocessing at `input` of a checkpoint trained at `file_input` whose metadata give
 * `resize` and `norm` (either NULL or "" when the file does not say: an_augment_default(input)'s). The
 * file's resize is for its own input size: at another input (file_input != input) the default's is
 * used; a file_input below 1 (not recorded) takes the file's resize as meant for `input`. Bad values
 * are AN_ERR_ARGUMENT. */
an_status an_augment_from_meta(int input, int file_input, const char *resize, const char *norm, an_augment *out);
/* Rows a sample becomes: 10 for ten-crop evaluation, else 1. */
int an_augment_crops(const an_augment *aug, int train);

/* The key of sample `index` in `epoch`: every random choice of its augmentation derives from it. */
uint64_t an_sample_key(uint64_t seed, uint64_t epoch, uint64_t index);

/* Top-left corner of crop k (0…9) of ten-crop in a base image of side `base`: 0 top-left, 1
 * top-right, 2 bottom-left, 3 bottom-right, 4 centre (torchvision's TenCrop order); 5…9 are the same
 * positions mirrored. */
void an_ten_crop_origin(int base, int input, int k, int *x, int *y);

/* One sample: img -> an_augment_crops(aug, train) rows of (3, input, input) floats at out. stats may be
 * NULL when aug needs none (no normalisation, no lighting). */
an_status an_preprocess(const an_image *img, const an_augment *aug, const an_data_stats *stats, int train,
                        uint64_t key, float *out /* (crops, 3, input, input) */);

/* ---- the threaded loader ----
 * Workers decode and augment the next batches while the caller uses the one an_loader_next returned
 * (it stays valid until the next call). Training: each epoch is a fresh shuffle seeded by (seed,
 * epoch), only full batches, augmentation keyed by an_sample_key(seed, epoch, index), and an
 * unreadable image replaced by the next readable one in dataset order. Evaluation: dataset order, the
 * last batch padded (index -1, zero image, label 0), an unreadable image's rows zeroed with index -1.
 * Batches depend on the seed only, not on the thread count. */
typedef struct an_loader_config {
  int batch;                   /* samples per batch */
  int threads;                 /* worker threads, >= 1 */
  int prefetch;                /* batches prepared ahead of the caller's (>= 1; 1 is double buffering) */
  int train;                   /* training (above) or evaluation */
  int epochs;                  /* the run's epochs, counted from epoch 0 (not from start_epoch); 0: without end */
  int start_epoch, start_step; /* the first batch produced (resuming a run) */
  /* One MPI rank's share: slice_count 0 gives whole batches; else each an_batch holds only the positions
   * [slice_first, slice_first + slice_count) of the batch of `batch`: the same samples and augmentation. */
  int slice_first, slice_count;
  uint64_t seed;
  an_augment aug;
  an_data_stats stats; /* for normalisation and lighting */
  an_warn_fn warn;     /* NULL: "alexnet: warning: …" on stderr */
  void *warn_ctx;
} an_loader_config;

typedef struct an_batch {
  int epoch, step; /* step within the epoch */
  int samples;     /* positions holding samples: batch, or fewer in evaluation's last batch */
  int crops;       /* rows per sample: 1, or 10 in ten-crop evaluation */
  int rows;        /* batch · crops: the batch size the net is planned for */
  int input;       /* image side */
  float *images;   /* (rows, 3, input, input): sample j's crops are rows j·crops … j·crops + crops-1 */
  int *labels;     /* (rows) */
  int *index;      /* (batch) dataset index of each sample; -1: padding or an unreadable image */
} an_batch;

typedef struct an_loader an_loader;

/* Starts the workers; ds must outlive the loader. A dataset too small for one training batch is
 * AN_ERR_ARGUMENT. */
an_status an_loader_create(const an_dataset *ds, const an_loader_config *cfg, an_loader **out);
/* The next batch; *out is NULL once `epochs` epochs are done. A worker's fatal failure (out of memory,
 * no readable image left) comes back here. */
an_status an_loader_next(an_loader *ld, const an_batch **out);
int an_loader_batches_per_epoch(const an_loader *ld);
int an_loader_skipped(const an_loader *ld); /* distinct unreadable images met so far */
void an_loader_destroy(an_loader *ld);

/* The loader's own speed: images (samples) per second over `batches` batches from a fresh loader
 * with cfg (epochs ignored), startup included, no device involved. */
an_status an_loader_measure(const an_dataset *ds, const an_loader_config *cfg, int batches, double *images_per_s);

#ifdef __cplusplus
}
#endif
#endif
