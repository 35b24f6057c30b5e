#!/usr/bin/env python3
"""aec checkpoints read into hand-written PyTorch modules (docs/checkpoints.md).

Builds examples/deep.ae and examples/conv.ae with aec, trains each briefly on
a small data set, loads the checkpoint with aec_checkpoint.py (the snippet
docs/checkpoints.md shows) into torch.nn modules written here by hand with
load_state_dict(strict=True), and compares their codes with the program's
`encode` and their decoder's output with the program's `decode`, within float
rounding. Also loads a copy of each checkpoint without the layout metadata
(as aec wrote them before) and expects the same tensors.

Usage: check_checkpoints.py [--aec build/aec] [--keep DIR]
"""
import argparse, json, os, struct, subprocess, sys, tempfile
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def documented_loader():
    """load_aec, from the snippet in docs/checkpoints.md (its first python block) run as it is,
    which must be tests/torch/aec_checkpoint.py word for word."""
    doc = open(os.path.join(ROOT, "docs", "checkpoints.md")).read()
    snippet = doc.split("```python\n", 1)[1].split("```", 1)[0]
    copy = open(os.path.join(ROOT, "tests", "torch", "aec_checkpoint.py")).read()
    if snippet != copy:
        sys.exit("docs/checkpoints.md's snippet and tests/torch/aec_checkpoint.py differ: make them the same")
    namespace = {}
    exec(compile(snippet, "docs/checkpoints.md", "exec"), namespace)
    return namespace["load_aec"]


load_aec_checkpoint = documented_loader()
TOLERANCE = 1e-4  # absolute, on values in [0, 1]-ish: float rounding of different summation orders


class Deep(nn.Module):  # examples/deep.ae
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleDict({"dense_1": nn.Linear(784, 128), "dense_2": nn.Linear(128, 64),
                                      "dense_3": nn.Linear(64, 32)})
        self.decoder = nn.ModuleDict({"dense_1": nn.Linear(32, 64), "dense_2": nn.Linear(64, 128),
                                      "dense_3": nn.Linear(128, 784)})

    def encode(self, x):
        for layer in self.encoder.values():
            x = F.relu(layer(x))
        return x

    def decode(self, z):
        e = self.decoder
        return torch.sigmoid(e.dense_3(F.relu(e.dense_2(F.relu(e.dense_1(z))))))


class Conv(nn.Module):  # examples/conv.ae; pad=same is padding 1 for k = 3
    def __init__(self):
        super().__init__()
        self.encoder = nn.ModuleDict({"conv_1": nn.Conv2d(1, 16, 3, padding=1), "conv_2": nn.Conv2d(16, 8, 3, padding=1),
                                      "conv_3": nn.Conv2d(8, 8, 3, padding=1)})
        self.decoder = nn.ModuleDict({"conv_1": nn.Conv2d(8, 8, 3, padding=1), "conv_2": nn.Conv2d(8, 8, 3, padding=1),
                                      "conv_3": nn.Conv2d(8, 16, 3), "conv_4": nn.Conv2d(16, 1, 3, padding=1)})

    def encode(self, x):
        e = self.encoder
        x = F.max_pool2d(F.relu(e.conv_1(x)), 2)
        x = F.max_pool2d(F.relu(e.conv_2(x)), 2)
        return F.max_pool2d(F.relu(e.conv_3(x)), 2, ceil_mode=True)  # maxpool(2, pad=same): 7 -> 4

    def decode(self, z):
        d = self.decoder
        z = F.interpolate(F.relu(d.conv_1(z)), scale_factor=2, mode="nearest")
        z = F.interpolate(F.relu(d.conv_2(z)), scale_factor=2, mode="nearest")
        z = F.interpolate(F.relu(d.conv_3(z)), scale_factor=2, mode="nearest")
        return torch.sigmoid(d.conv_4(z))


def run(command, cwd):
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        sys.exit(f"`{' '.join(command)}` failed:\n{result.stderr}")
    return result


def without_layout(path, out):
    """The checkpoint as aec wrote it before the layout metadata: format pt, no layout keys."""
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    meta = header["__metadata__"]
    header["__metadata__"] = {k: v for k, v in meta.items() if not k.startswith("layout")}
    header["__metadata__"]["format"] = "pt"
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    open(out, "wb").write(struct.pack("<Q", len(text)) + text + raw[8 + n:])


def check(name, module, shape, aec, tmp):
    source = os.path.join(ROOT, "examples", name + ".ae")
    run([aec, source, "-o", name], tmp)
    run([f"./{name}", "train", "--data", "samples.csv", "--test", "samples.csv", "--epochs", "1", "--batches", "3",
         "--checkpoint", f"{name}.safetensors"], tmp)
    run([f"./{name}", "encode", "--checkpoint", f"{name}.safetensors", "--data", "samples.csv", "-o", "codes.npy"], tmp)
    run([f"./{name}", "decode", "--checkpoint", f"{name}.safetensors", "--codes", "codes.npy", "-o", "decoded.npy"], tmp)
    state = load_aec_checkpoint(os.path.join(tmp, f"{name}.safetensors"))
    module.load_state_dict(state, strict=True)  # fails on any name or shape that differs
    x = torch.from_numpy(np.loadtxt(os.path.join(tmp, "samples.csv"), delimiter=",", dtype=np.float32))
    codes = np.load(os.path.join(tmp, "codes.npy"))
    decoded = np.load(os.path.join(tmp, "decoded.npy"))
    with torch.no_grad():
        ours = module.encode(x.reshape((-1,) + shape)).reshape(len(x), -1).numpy()
        back = module.decode(torch.from_numpy(codes).reshape((-1,) + tuple(module.code_shape))).reshape(decoded.shape).numpy()
    code_error = float(np.abs(ours - codes).max())
    decode_error = float(np.abs(back - decoded).max())
    old = os.path.join(tmp, f"{name}.old.safetensors")
    without_layout(os.path.join(tmp, f"{name}.safetensors"), old)
    same_old = all(torch.equal(a, b) for a, b in zip(state.values(), load_aec_checkpoint(old).values()))
    run([f"./{name}", "encode", "--checkpoint", old, "--data", "samples.csv", "-o", "old.npy"], tmp)  # aec reads it too
    same_old = same_old and np.array_equal(np.load(os.path.join(tmp, "old.npy")), codes)
    ok = code_error <= TOLERANCE and decode_error <= TOLERANCE and same_old and codes.shape == ours.shape
    print(f"{name}: {len(state)} tensors into torch.nn modules (load_state_dict, strict); "
          f"codes {codes.shape} max |torch - encode| {code_error:.2e}, decoded max |torch - decode| {decode_error:.2e}; "
          f"one without the layout metadata loads the same here and in ./{name}: {same_old} -> {'ok' if ok else 'FAILED'}")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aec", default=os.path.join(ROOT, "build", "aec"))
    parser.add_argument("--keep", help="work in this directory and keep it")
    args = parser.parse_args()
    aec = os.path.abspath(args.aec)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory(prefix="aec-ckpt-") as scratch:
        tmp = args.keep or scratch
        os.makedirs(tmp, exist_ok=True)
        rng = np.random.default_rng(7)
        np.savetxt(os.path.join(tmp, "samples.csv"), rng.random((64, 784)), fmt="%.4f", delimiter=",")
        deep, conv = Deep(), Conv()
        deep.code_shape, conv.code_shape = (32,), (8, 4, 4)
        results = [check("deep", deep, (784,), aec, tmp), check("conv", conv, (1, 28, 28), aec, tmp)]
    print(f"{sum(results)} passed, {len(results) - sum(results)} failed")
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
