/* The three AlexNets as const layer tables. Parameter names are the PyTorch state_dict names of the
 * matching nn.Sequential layouts (features.N / classifier.N, counting the ReLU, LRN, pool and dropout
 * modules that hold no parameters), so weights can travel to and from PyTorch. */
#include <stdio.h>
#include <string.h>

#include "alexnet/model.h"
#include "runtime/check.h"

/* The test widths: each model's table at 1/NARROW of its channels (every layer, kernel, stride, pad and
 * group as in the model), small enough for an interpreting OpenCL (Oclgrind, tests/test_oclgrind.sh). */
#define NARROW 16

#define LRN_PAPER \
  { 5, 1e-4f, 0.75f, 2.0f }
#define CONV_SLICED(nm, oc, k, s, p, g, ini, std, b, sl) \
  { AN_LAYER_CONV, nm, oc, k, s, p, g, 1, {0, 0, 0, 0}, 0, 0, ini, std, b, sl, 0 }
#define CONV(nm, oc, k, s, p, g, ini, std, b) CONV_SLICED(nm, oc, k, s, p, g, ini, std, b, AN_SLICE_NONE)
#define FC_SLICED(nm, out, relu, ini, std, b, sl, nob) \
  { AN_LAYER_FC, nm, out, 0, 0, 0, 1, relu, {0, 0, 0, 0}, 0, 0, ini, std, b, sl, nob }
#define FC(nm, out, relu, ini, std, b) FC_SLICED(nm, out, relu, ini, std, b, AN_SLICE_NONE, 0)
#define LRN \
  { AN_LAYER_LRN, NULL, 0, 0, 0, 0, 1, 0, LRN_PAPER, 0, 0, AN_INIT_NONE, 0, 0, AN_SLICE_NONE, 0 }
#define MAXPOOL \
  { AN_LAYER_MAXPOOL, NULL, 0, 3, 2, 0, 1, 0, {0, 0, 0, 0}, 0, 0, AN_INIT_NONE, 0, 0, AN_SLICE_NONE, 0 }
#define AVGPOOL6 \
  { AN_LAYER_AVGPOOL, NULL, 0, 0, 0, 0, 1, 0, {0, 0, 0, 0}, 0, 6, AN_INIT_NONE, 0, 0, AN_SLICE_NONE, 0 }
#define DROPOUT \
  { AN_LAYER_DROPOUT, NULL, 0, 0, 0, 0, 1, 0, {0, 0, 0, 0}, 0.5f, 0, AN_INIT_NONE, 0, 0, AN_SLICE_NONE, 0 }
#define GATHER \
  { AN_LAYER_GATHER, NULL, 0, 0, 0, 0, 1, 0, {0, 0, 0, 0}, 0, 0, AN_INIT_NONE, 0, 0, AN_SLICE_NONE, 0 }
#define SUM(nm) \
  { AN_LAYER_SUM, nm, 0, 0, 0, 0, 1, 0, {0, 0, 0, 0}, 0, 0, AN_INIT_NORMAL, 0.01f, 0.0f, AN_SLICE_NONE, 0 }

/* Krizhevsky, Sutskever & Hinton 2012: two columns as groups=2 at conv2, conv4, conv5; weights
 * N(0, 0.01), biases 1 in conv2, conv4, conv5 and the hidden FC layers. */
/* clang-format off */
#define ALEXNET_LAYERS(W)                                                  \
  {                                                                        \
    CONV("features.0", 96 / W, 11, 4, 2, 1, AN_INIT_NORMAL, 0.01f, 0.0f),  \
    LRN,                                                                   \
    MAXPOOL,                                                               \
    CONV("features.4", 256 / W, 5, 1, 2, 2, AN_INIT_NORMAL, 0.01f, 1.0f),  \
    LRN,                                                                   \
    MAXPOOL,                                                               \
    CONV("features.8", 384 / W, 3, 1, 1, 1, AN_INIT_NORMAL, 0.01f, 0.0f),  \
    CONV("features.10", 384 / W, 3, 1, 1, 2, AN_INIT_NORMAL, 0.01f, 1.0f), \
    CONV("features.12", 256 / W, 3, 1, 1, 2, AN_INIT_NORMAL, 0.01f, 1.0f), \
    MAXPOOL,                                                               \
    AVGPOOL6,                                                              \
    DROPOUT,                                                               \
    FC("classifier.1", 4096 / W, 1, AN_INIT_NORMAL, 0.01f, 1.0f),          \
    DROPOUT,                                                               \
    FC("classifier.4", 4096 / W, 1, AN_INIT_NORMAL, 0.01f, 1.0f),          \
    FC("classifier.6", 0, 0, AN_INIT_NORMAL, 0.01f, 0.0f),                 \
  }
/* clang-format on */
static const an_layer_desc alexnet_layers[] = ALEXNET_LAYERS(1);
static const an_layer_desc alexnet_narrow_layers[] = ALEXNET_LAYERS(NARROW);

/* One device's column of alexnet for the two-device split: the paper's GPU k holds conv1 filters
 * [48k, 48k+48), its group of conv2/conv4/conv5, conv3 filters [192k, 192k+192) over all 256 channels,
 * fc6/fc7 neurons [2048k, 2048k+2048) over all inputs, and fc8's weights over its half of fc7 (split-K).
 * The GATHERs are where the GPUs communicate: after pool2 (conv3 sees both columns), after pool5 and
 * after fc6; the SUM adds both partial fc8 products and fc8's bias. Dropout runs on the gathered
 * tensors, so its masks are the single-device model's (their keys take the index of the layer in
 * alexnet_layers, not counting the exchanges). */
/* clang-format off */
#define ALEXNET_COLUMN_LAYERS(W)                                                                 \
  {                                                                                              \
    CONV_SLICED("features.0", 48 / W, 11, 4, 2, 1, AN_INIT_NORMAL, 0.01f, 0.0f, AN_SLICE_ROWS),  \
    LRN,                                                                                         \
    MAXPOOL,                                                                                     \
    CONV_SLICED("features.4", 128 / W, 5, 1, 2, 1, AN_INIT_NORMAL, 0.01f, 1.0f, AN_SLICE_ROWS),  \
    LRN,                                                                                         \
    MAXPOOL,                                                                                     \
    GATHER,                                                                                      \
    CONV_SLICED("features.8", 192 / W, 3, 1, 1, 1, AN_INIT_NORMAL, 0.01f, 0.0f, AN_SLICE_ROWS),  \
    CONV_SLICED("features.10", 192 / W, 3, 1, 1, 1, AN_INIT_NORMAL, 0.01f, 1.0f, AN_SLICE_ROWS), \
    CONV_SLICED("features.12", 128 / W, 3, 1, 1, 1, AN_INIT_NORMAL, 0.01f, 1.0f, AN_SLICE_ROWS), \
    MAXPOOL,                                                                                     \
    AVGPOOL6,                                                                                    \
    GATHER,                                                                                      \
    DROPOUT,                                                                                     \
    FC_SLICED("classifier.1", 2048 / W, 1, AN_INIT_NORMAL, 0.01f, 1.0f, AN_SLICE_ROWS, 0),       \
    GATHER,                                                                                      \
    DROPOUT,                                                                                     \
    FC_SLICED("classifier.4", 2048 / W, 1, AN_INIT_NORMAL, 0.01f, 1.0f, AN_SLICE_ROWS, 0),       \
    FC_SLICED("classifier.6", 0, 0, AN_INIT_NORMAL, 0.01f, 0.0f, AN_SLICE_COLS, 1),              \
    SUM("classifier.6"),                                                                         \
  }
/* clang-format on */
static const an_layer_desc alexnet_column_layers[] = ALEXNET_COLUMN_LAYERS(1);
static const an_layer_desc alexnet_column_narrow_layers[] = ALEXNET_COLUMN_LAYERS(NARROW);

/* One column, as the tutorials' PyTorch model: no LRN, Kaiming (fan_out) conv init, N(0, 0.01) linear. */
/* clang-format off */
#define ALEXNET_HALF_LAYERS(W)                                                     \
  {                                                                                \
    CONV("features.0", 48 / W, 11, 4, 2, 1, AN_INIT_KAIMING_FAN_OUT, 0.0f, 0.0f),  \
    MAXPOOL,                                                                       \
    CONV("features.3", 128 / W, 5, 1, 2, 1, AN_INIT_KAIMING_FAN_OUT, 0.0f, 0.0f),  \
    MAXPOOL,                                                                       \
    CONV("features.6", 192 / W, 3, 1, 1, 1, AN_INIT_KAIMING_FAN_OUT, 0.0f, 0.0f),  \
    CONV("features.8", 192 / W, 3, 1, 1, 1, AN_INIT_KAIMING_FAN_OUT, 0.0f, 0.0f),  \
    CONV("features.10", 128 / W, 3, 1, 1, 1, AN_INIT_KAIMING_FAN_OUT, 0.0f, 0.0f), \
    MAXPOOL,                                                                       \
    AVGPOOL6,                                                                      \
    DROPOUT,                                                                       \
    FC("classifier.1", 2048 / W, 1, AN_INIT_NORMAL, 0.01f, 0.0f),                  \
    DROPOUT,                                                                       \
    FC("classifier.4", 2048 / W, 1, AN_INIT_NORMAL, 0.01f, 0.0f),                  \
    FC("classifier.6", 0, 0, AN_INIT_NORMAL, 0.01f, 0.0f),                         \
  }
/* clang-format on */
static const an_layer_desc alexnet_half_layers[] = ALEXNET_HALF_LAYERS(1);
static const an_layer_desc alexnet_half_narrow_layers[] = ALEXNET_HALF_LAYERS(NARROW);

/* torchvision.models.alexnet: one column of 64-192-384-256-256, adaptive 6×6 pool, PyTorch's default init. */
/* clang-format off */
#define ALEXNET_TV_LAYERS(W)                                                     \
  {                                                                              \
    CONV("features.0", 64 / W, 11, 4, 2, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),  \
    MAXPOOL,                                                                     \
    CONV("features.3", 192 / W, 5, 1, 2, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),  \
    MAXPOOL,                                                                     \
    CONV("features.6", 384 / W, 3, 1, 1, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),  \
    CONV("features.8", 256 / W, 3, 1, 1, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),  \
    CONV("features.10", 256 / W, 3, 1, 1, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f), \
    MAXPOOL,                                                                     \
    AVGPOOL6,                                                                    \
    DROPOUT,                                                                     \
    FC("classifier.1", 4096 / W, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),          \
    DROPOUT,                                                                     \
    FC("classifier.4", 4096 / W, 1, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),          \
    FC("classifier.6", 0, 0, AN_INIT_TORCH_DEFAULT, 0.0f, 0.0f),                 \
  }
/* clang-format on */
static const an_layer_desc alexnet_tv_layers[] = ALEXNET_TV_LAYERS(1);
static const an_layer_desc alexnet_tv_narrow_layers[] = ALEXNET_TV_LAYERS(NARROW);

#define COUNT(a) (int)(sizeof(a) / sizeof((a)[0]))
static const an_model_desc models[] = {
    {"alexnet", "the 2012 paper: 96-256-384-384-256, groups 2 at conv2/4/5, LRN, FC 4096-4096-N", alexnet_layers,
     COUNT(alexnet_layers)},
    {"alexnet-half", "one column: 48-128-192-192-128, no LRN, FC 2048-2048-N", alexnet_half_layers,
     COUNT(alexnet_half_layers)},
    {"alexnet-tv", "torchvision's layout: 64-192-384-256-256, FC 4096-4096-N", alexnet_tv_layers,
     COUNT(alexnet_tv_layers)},
};

/* Found by name but in no list (an_model_at, an_model_names): tests' widths, not models to train */
static const an_model_desc test_widths[] = {
    {"alexnet-narrow", "test width: alexnet at 1/16 of its channels", alexnet_narrow_layers,
     COUNT(alexnet_narrow_layers)},
    {"alexnet-half-narrow", "test width: alexnet-half at 1/16 of its channels", alexnet_half_narrow_layers,
     COUNT(alexnet_half_narrow_layers)},
    {"alexnet-tv-narrow", "test width: alexnet-tv at 1/16 of its channels", alexnet_tv_narrow_layers,
     COUNT(alexnet_tv_narrow_layers)},
};

const an_model_desc *an_model_find(const char *name) {
  for (int i = 0; name && i < COUNT(models); i++)
    if (strcmp(models[i].name, name) == 0) return &models[i];
  for (int i = 0; name && i < COUNT(test_widths); i++)
    if (strcmp(test_widths[i].name, name) == 0) return &test_widths[i];
  return NULL;
}

static const an_model_desc alexnet_column = {"alexnet-column",
                                             "one device's column of alexnet in the two-device split",
                                             alexnet_column_layers, COUNT(alexnet_column_layers)};
static const an_model_desc alexnet_narrow_column = {
    "alexnet-narrow-column", "one device's column of alexnet-narrow in the split", alexnet_column_narrow_layers,
    COUNT(alexnet_column_narrow_layers)};

const an_model_desc *an_model_column(const an_model_desc *model) {
  if (model && model == &models[0]) return &alexnet_column;
  return model && model == &test_widths[0] ? &alexnet_narrow_column : NULL;
}

void an_model_names(char *buf, size_t size) {
  buf[0] = '\0';
  for (int i = 0; i < COUNT(models) && strlen(buf) + 1 < size; i++)
    snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? ", " : "", models[i].name);
}

an_status an_model_lookup(const char *name, const an_model_desc **out) {
  char names[128];
  *out = an_model_find(name);
  if (*out) return AN_OK;
  an_model_names(names, sizeof names);
  return AN_FAIL(AN_ERR_UNKNOWN_MODEL, "unknown model '%s' (the models are %s)", name ? name : "", names);
}

const an_model_desc *an_model_at(int i) { return i >= 0 && i < COUNT(models) ? &models[i] : NULL; }
