#!/usr/bin/python3
"""Writes the fuzzer's seed corpus (tests/fuzz/corpus/): small valid safetensors files and one broken
file per error the parser names. Plain Python (struct, json); rerun after changing it and commit."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def raw(header_bytes, data=b""):
    return struct.pack("<Q", len(header_bytes)) + header_bytes + data


def st(header, data=b"", pad=True):
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * (-len(text) % 8)
    return raw(text, data)


def t(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


F32x6 = struct.pack("<6f", 1.5, -2, 3.25, 0, -0.0, 1e-30)
files = {
    # valid
    "valid_empty.safetensors": st({}),
    "valid_one_f32.safetensors": st({"w": t("F32", [2, 3], 0, 24)}, F32x6),
    "valid_meta.safetensors": st({"__metadata__": {"format": "alexnet-opencl", "format_version": "1", "kind": "weights",
                                                   "model": "alexnet-half", "classes": "10", "input_size": "224"},
                                  "features.0.weight": t("F32", [1, 1, 2, 2], 0, 16),
                                  "features.0.bias": t("F32", [1], 16, 20)}, F32x6[:20]),
    "valid_dtypes.safetensors": st({"a": t("F64", [1], 0, 8), "b": t("I32", [2], 8, 16), "c": t("U8", [3], 16, 19),
                                    "d": t("BF16", [2], 19, 23), "e": t("BOOL", [], 23, 24),
                                    "f": t("F8_E4M3", [0, 5], 24, 24)}, bytes(range(24))),
    "valid_checkpoint.safetensors": st({"__metadata__": {"kind": "checkpoint"}, "w": t("F32", [2], 0, 8),
                                        "momentum.w": t("F32", [2], 8, 16)}, F32x6[:16]),
    "valid_unpadded_gap.safetensors": st({"w": t("F32", [1], 4, 8)}, F32x6[:12], pad=False),
    # broken: one per named error
    "bad_truncated.safetensors": b"\x10\x00\x00\x00\x00",
    "bad_header_past_end.safetensors": struct.pack("<Q", 1000) + b"{}      ",
    "bad_json.safetensors": raw(b'{"w": {"dtype": "F32", '),
    "bad_trailing.safetensors": raw(b"{}  x"),
    "bad_not_object.safetensors": raw(b"[1, 2, 3]"),
    "bad_entry_not_object.safetensors": st({"w": 3}),
    "bad_no_dtype.safetensors": st({"w": {"shape": [1], "data_offsets": [0, 4]}}, b"\0" * 4),
    "bad_dtype.safetensors": st({"w": t("F33", [1], 0, 4)}, b"\0" * 4),
    "bad_shape.safetensors": st({"w": t("F32", [-1, 2.5], 0, 4)}, b"\0" * 4),
    "bad_shape_overflow.safetensors": st({"w": t("F32", [4294967296, 4294967296, 4294967296], 0, 4)}, b"\0" * 4),
    "bad_offsets_pair.safetensors": st({"w": {"dtype": "F32", "shape": [1], "data_offsets": [4]}}, b"\0" * 4),
    "bad_offsets_reversed.safetensors": st({"w": t("F32", [0], 4, 0)}, b"\0" * 4),
    "bad_offsets_outside.safetensors": st({"w": t("F32", [4], 0, 16)}, b"\0" * 8),
    "bad_overlap.safetensors": st({"a": t("F32", [2], 0, 8), "b": t("F32", [2], 4, 12)}, b"\0" * 12),
    "bad_extent.safetensors": st({"w": t("F32", [3], 0, 8)}, b"\0" * 8),
    "bad_duplicate.safetensors": raw(b'{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                     b'"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', b"ab"),
    "bad_meta_value.safetensors": st({"__metadata__": {"epoch": 3}}),
    "bad_deep.safetensors": raw(b"[" * 2000 + b"]" * 2000),
}
os.makedirs(os.path.join(HERE, "corpus"), exist_ok=True)
for name, data in files.items():
    with open(os.path.join(HERE, "corpus", name), "wb") as f:
        f.write(data)
print(f"{len(files)} files in {os.path.join(HERE, 'corpus')}")
