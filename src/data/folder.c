/* Folder-per-class datasets (flower_photos, ImageNet's train/): root/<class>/…/<file>. Lists class
 * folders and image files in sorted order, so labels and sample indices are the same on every machine;
 * decoding waits until a sample is read. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data/data_internal.h"
#include "runtime/grow.h"

#define FOLDER_MAX_DEPTH 16 /* inside a class folder; also stops symlink loops */

typedef struct str_list {
  char **v;
  int n, cap;
} str_list;

static void list_free(str_list *l) {
  for (int i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
}

static an_status list_push(str_list *l, const char *s) {
  if (l->n == l->cap && l->cap > (1 << 29)) return AN_FAIL(AN_ERR_ARGUMENT, "more than %d files", l->cap);
  char **v = an_grow(l->v, l->n, &l->cap, sizeof *v);
  if (!v) return AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory listing %d files", l->n);
  l->v = v;
  if (!(l->v[l->n] = an_data_strdup(s))) return AN_ERR_HOST_ALLOC;
  l->n++;
  return AN_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *name) {
  static const char *const exts[] = {"jpg", "jpeg", "png", "bmp", "gif"};
  const char *dot = strrchr(name, '.');
  if (!dot) return 0;
  for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++)
    if (!strcasecmp(dot + 1, exts[i])) return 1;
  return 0;
}

/* Sorted names of dir's entries (hidden ones left out) that are directories (want_dirs) or not. */
static an_status list_dir(const char *dir, int want_dirs, str_list *out, str_list *other) {
  DIR *d = opendir(dir);
  if (!d) return AN_FAIL(AN_ERR_IO, "%s: cannot open the directory: %s", dir, strerror(errno));
  an_status status = AN_OK;
  char path[4096];
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= sizeof path) {
      status = AN_FAIL(AN_ERR_IO, "%s/%s: path too long", dir, e->d_name);
      break;
    }
    struct stat st;
    if (stat(path, &st) != 0) continue; /* a dangling link: not a sample */
    const int is_dir = S_ISDIR(st.st_mode) != 0;
    if (is_dir == want_dirs) status = list_push(out, e->d_name);
    else if (other) status = list_push(other, e->d_name);
    if (status != AN_OK) break;
  }
  closedir(d);
  if (status != AN_OK) return status;
  if (out->n > 1) qsort(out->v, (size_t)out->n, sizeof *out->v, cmp_str);
  if (other && other->n > 1) qsort(other->v, (size_t)other->n, sizeof *other->v, cmp_str);
  return AN_OK;
}

/* Appends every image file under dir (sorted: files of a folder, then its subfolders in order). */
static an_status collect_images(const char *dir, int depth, str_list *files) {
  if (depth > FOLDER_MAX_DEPTH) return AN_OK;
  str_list subdirs = {0}, names = {0};
  an_status status = list_dir(dir, 1, &subdirs, &names);
  char path[4096];
  for (int i = 0; status == AN_OK && i < names.n; i++) {
    if (!is_image_name(names.v[i])) continue;
    snprintf(path, sizeof path, "%s/%s", dir, names.v[i]);
    status = list_push(files, path);
  }
  for (int i = 0; status == AN_OK && i < subdirs.n; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, subdirs.v[i]);
    status = collect_images(path, depth + 1, files);
  }
  list_free(&subdirs);
  list_free(&names);
  return status;
}

an_status an_dataset_open_folder(const char *root, an_dataset **out) {
  *out = NULL;
  if (!root || !*root) return AN_FAIL(AN_ERR_ARGUMENT, "no dataset folder given");
  struct stat st;
  if (stat(root, &st) != 0) return AN_FAIL(AN_ERR_IO, "%s: %s", root, strerror(errno));
  if (!S_ISDIR(st.st_mode)) return AN_FAIL(AN_ERR_ARGUMENT, "%s: not a directory", root);
  str_list classes = {0}, files = {0};
  int *labels = NULL; /* (files) */
  int cap_labels = 0;
  an_store *s = NULL;
  an_status status = list_dir(root, 1, &classes, NULL);
  if (status != AN_OK) goto cleanup;
  if (classes.n == 0) {
    status = AN_FAIL(AN_ERR_ARGUMENT, "%s: no class folders; the layout is %s/<class>/<image>.jpg", root, root);
    goto cleanup;
  }
  for (int c = 0; c < classes.n; c++) {
    const int before = files.n;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root, classes.v[c]);
    if ((status = collect_images(path, 0, &files)) != AN_OK) goto cleanup;
    if (files.n == before) {
      status = AN_FAIL(AN_ERR_ARGUMENT, "%s: class '%s' has no image files (.jpg .jpeg .png .bmp .gif)", path,
                       classes.v[c]);
      goto cleanup;
    }
    for (int i = before; i < files.n; i++) {
      int *grown = an_grow(labels, i, &cap_labels, sizeof *labels);
      if (!grown) {
        status = AN_FAIL(AN_ERR_HOST_ALLOC, "out of host memory for %d labels", files.n);
        goto cleanup;
      }
      labels = grown;
      labels[i] = c;
    }
  }
  if (!(s = an_store_new(STORE_FILES, root))) {
    status = AN_ERR_HOST_ALLOC;
    goto cleanup;
  }
  if ((status = an_store_set_classes(s, classes.n, (const char *const *)classes.v)) != AN_OK) goto cleanup;
  s->n = files.n;
  s->paths = files.v; /* taken over */
  s->labels = labels;
  files = (str_list){0};
  labels = NULL;
  status = an_dataset_from_store(s, NULL, s->n, out);
cleanup:
  an_store_release(s);
  list_free(&classes);
  list_free(&files);
  free(labels);
  return status;
}
