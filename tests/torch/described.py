"""What the PyTorch oracle (check_torch.py) and the bench's JAX side
(bench/jax_replay.py) share about a program's checkpoint and description,
without importing either framework: the safetensors reader and the padding
rules of "same" convolutions and pooling windows (Keras's)."""

import json
import struct

import numpy as np


def read_safetensors_arrays(path):
    """Tensors of a safetensors file as float32 numpy arrays, by name."""
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + length])
    base = 8 + length
    dtypes = {"F32": np.float32, "F64": np.float64}
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=dtypes[info["dtype"]])
        tensors[name] = array.reshape(info["shape"]).astype(np.float32)
    return tensors


def conv_pads(size, out, k, stride, valid):
    """(before, after) padding of one axis of a conv: none when valid, else
    max((out - 1) * stride + k - size, 0) in all, half (rounded down) before."""
    if valid:
        return 0, 0
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def pool_pads(size, k, same):
    """(before, after) padding of one axis of a k-wide pooling window: up to
    a multiple of k when same, half (rounded down) before."""
    total = max(-(-size // k) * k - size, 0) if same else 0
    return total // 2, total - total // 2
