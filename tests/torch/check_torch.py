#!/usr/bin/env python3
"""Step-by-step agreement of aec's generated programs with PyTorch.

For each model (every examples/*.ae that aec can compile, and the test models
in tests/torch/*.ae), this script

  1. compiles it with aec and reads the program's own description of the model
     (`./model describe`: the forward graph, parameters, losses and steps, as
     JSON) -- there is no hand-written PyTorch code per model: the graph is
     interpreted op by op (OPS below, one function per IR op name);
  2. writes a small data set (Fashion-MNIST's first samples when the input has
     784 elements and the Debian package is there, else uniform noise in
     [0, 1]) sized for ten batches an epoch (three for a model with several
     steps, see GAME_BATCHES), the last one partial;
  3. has the program save its initial weights (`train --epochs 0`) and train
     two epochs (20 batches, or 6) with `--trace` (each batch's samples, each
     step's loss and learning rate, and the fractional epoch that schedules
     follow) and `--dump-random` (the draws of every random node);
  4. replays the same batches in PyTorch from the same initial weights, with
     torch.optim's Adam, AdamW, SGD or RMSprop set as each step says, and compares
     every step's loss (relative difference at most 1e-4) and every weight
     after the last batch (see WEIGHT_TOLERANCE), batchnorm's running
     statistics included (PyTorch's F.batch_norm moves them as it trains).

A model that aec rejects with "... is not supported yet" is skipped (and
named); it is covered as soon as it compiles. The first step or tensor that
disagrees is printed. The last line is "N passed, N failed, N skipped"; the
exit status is 1 when anything failed.

Usage: check_torch.py [--aec build/aec] [--keep DIR] [MODEL.ae ...]
Works with Debian's python3-torch (1.13) and newer PyTorch from PyPI; needs
numpy (a PyTorch dependency) and nothing else.
"""

import argparse
import gzip
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

import described

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EPOCHS = 2                 # compared: two epochs of ten batches
EPOCH_BATCHES = 10
# A model with several steps is an adversarial game: once one player gets the
# upper hand it amplifies the two programs' float rounding (libmvec's expf
# against PyTorch's, sums in another order) batch after batch.
# adversarial_gaussian.ae's losses agree to 1.5e-7 for 6 batches, then drift
# to 1e-4 by batch 10 and 6e-4 by batch 20, and its weights with them. A
# wrong formula shows at once (the mutations of issue 3 failed at batches 1
# to 3), so such models are compared over two epochs of three batches, with
# the same tolerances.
GAME_EPOCH_BATCHES = 3
# A game whose critic takes a gradient penalty amplifies the rounding faster:
# wgan_aae.ae's disc loss differs by 4.7e-10, 6.8e-8, 4.2e-7, 5.6e-7,
# 1.75e-5 and 1.9e-4 relative in batches 1 to 6 (about tenfold a batch, from
# the second derivatives' float32 sums in another order), so it is compared
# over two epochs of two batches.
PENALTY_GAME_EPOCH_BATCHES = 2
LOSS_TOLERANCE = 1e-4      # relative, per step
# Weights after the last step: |aec - torch| <= 1e-3 * (|torch| + scale),
# with scale = 1e-2 * the tensor's largest |torch| value, so that elements
# near zero (biases start at 0) are held to the tensor's own magnitude.
WEIGHT_TOLERANCE = 1e-3
WEIGHT_SCALE = 1e-2
# Adam moves an element by about lr an update whatever its gradient's size, so
# an element whose gradient is float32 rounding noise (a sum that nearly
# cancels) takes a noise-driven walk in both programs. Such an element may
# differ by up to ADAM_NOISE of its largest possible travel (the sum of the
# learning rates of the Adam updates it received); the per-step losses, which
# every update feeds, are still held to LOSS_TOLERANCE. AdamW and RMSprop
# divide the gradient by its running root mean square too (NORMALIZED) and get
# the same allowance. Elements under SGD get none.
ADAM_NOISE = 0.05
NORMALIZED = ("adam", "adamw", "rmsprop")
FASHION_MNIST = "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz"
NOT_SUPPORTED = "is not supported yet"


class Disagreement(Exception):
    pass


# ------------------------------------------------------------ safetensors
def read_safetensors(path):
    """Tensors of a safetensors file as float32 torch tensors, by name."""
    return {name: torch.from_numpy(array) for name, array in described.read_safetensors_arrays(path).items()}


# ------------------------------------------------------------ the ops
# One function per IR op name (compiler/ir/ops.def): f(node, inputs, run) ->
# tensor. Batched values have the batch axis first; scalars are 0-d tensors.
# `run` is the Replay (the batch size, the random draws).
def rows_divisor(node, run, value):
    return run.n if run.batched(node["inputs"][0]) else 1


def bce(node, inputs, run):
    p, t = inputs
    t = t.expand_as(p)
    if not t.requires_grad:  # BCELoss: logs clamped at -100, gradient (p - t) / max(p (1 - p), 1e-12)
        return F.binary_cross_entropy(p, t)
    return -(t * torch.clamp(torch.log(p), min=-100) + (1 - t) * torch.clamp(torch.log(1 - p), min=-100)).mean()


def kl_sparsity(node, inputs, run):
    """Sum over units of KL(rho || the unit's mean activation over the batch)."""
    rho = node["attr"][0]
    mean = torch.clamp(inputs[0].mean(dim=0), 1e-7, 1 - 1e-7)
    return (rho * torch.log(rho / mean) + (1 - rho) * torch.log((1 - rho) / (1 - mean))).sum()


def batchnorm(node, inputs, run):
    """BatchNorm1d/2d in training mode: normalized by the batch's statistics,
    moving the running ones (state tensors, updated in place) as PyTorch does."""
    x, scale, shift, running_mean, running_var = inputs
    return F.batch_norm(x, running_mean, running_var, scale, shift, training=True, momentum=node["attr"][1],
                        eps=node["attr"][0])


def batchnorm_eval(node, inputs, run):
    """The same at inference: the running statistics."""
    x, scale, shift, running_mean, running_var = inputs
    return F.batch_norm(x, running_mean, running_var, scale, shift, training=False, eps=node["attr"][0])


# Convolutional ops (compiler/ops/conv.c, pool.c). Images are NCHW; a conv kernel is
# [out, in, k, k] (Conv2d's), a deconv kernel [in, out, k, k]
# (ConvTranspose2d's); attr is {stride, pad (0 same, 1 valid)} for conv and
# deconv, {k, pad} for maxpool, avgpool and unpool, {k} for upsample. "same" pads as
# Keras: max((out - 1) * stride + k - in, 0) in all, half (rounded down) before.
conv_pads = described.conv_pads


def conv(node, inputs, run):
    x, w, b = inputs
    stride, valid, k = int(node["attr"][0]), node["attr"][1] != 0, w.shape[2]
    oh, ow = node["shape"][1], node["shape"][2]
    pt, pb = conv_pads(x.shape[2], oh, k, stride, valid)
    pl, pr = conv_pads(x.shape[3], ow, k, stride, valid)
    return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride=stride)[:, :, :oh, :ow]


def deconv(node, inputs, run):
    """The data gradient of the conv from the output back to x: conv_transpose2d, cropped."""
    x, w, b = inputs
    stride, valid, k = int(node["attr"][0]), node["attr"][1] != 0, w.shape[2]
    h, wd = node["shape"][1], node["shape"][2]
    pt, _ = conv_pads(h, x.shape[2], k, stride, valid)
    pl, _ = conv_pads(wd, x.shape[3], k, stride, valid)
    full = F.conv_transpose2d(x, w, None, stride=stride)
    full = F.pad(full, (0, max(pl + wd - full.shape[3], 0), 0, max(pt + h - full.shape[2], 0)))
    return full[:, :, pt:pt + h, pl:pl + wd] + b.view(1, -1, 1, 1)


def pool_padded(node, x):
    """x padded with -inf as Keras pads a pooling window (same), and the padding before."""
    k, same = int(node["attr"][0]), node["attr"][1] == 0
    pads = [*described.pool_pads(x.shape[3], k, same), *described.pool_pads(x.shape[2], k, same)]
    return F.pad(x, tuple(pads), value=-math.inf), k, pads[2], pads[0]


def maxpool(node, inputs, run):
    padded, k, _, _ = pool_padded(node, inputs[0])
    return F.max_pool2d(padded, k, k)


def unpool(node, inputs, run):
    """Each value of v back where its window of x (the maxpool's input) was largest."""
    v, x = inputs
    padded, k, pt, pl = pool_padded(node, x)
    _, switches = F.max_pool2d(padded, k, k, return_indices=True)
    out = F.max_unpool2d(v, switches, k, k, output_size=padded.shape[2:])
    return out[:, :, pt:pt + x.shape[2], pl:pl + x.shape[3]]


def avgpool(node, inputs, run):
    """Each window's mean over the pixels inside the image: zero padding, as
    Keras pads a same pooling window, divided by the real pixels' count."""
    x = inputs[0]
    k, same = int(node["attr"][0]), node["attr"][1] == 0
    pads = (*described.pool_pads(x.shape[3], k, same), *described.pool_pads(x.shape[2], k, same))
    sums = F.avg_pool2d(F.pad(x, pads), k, k, divisor_override=1)
    counts = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), k, k, divisor_override=1)
    return sums / counts


OPS = {
    "dense": lambda node, x, run: x[0] @ x[1] + x[2],
    "conv": conv,
    "deconv": deconv,
    "maxpool": maxpool,
    "unpool": unpool,
    "avgpool": avgpool,
    "upsample": lambda node, x, run: x[0].repeat_interleave(int(node["attr"][0]), 2).repeat_interleave(
        int(node["attr"][0]), 3),
    "reshape": lambda node, x, run: x[0].reshape([x[0].shape[0]] + node["shape"]),
    "relu": lambda node, x, run: torch.relu(x[0]),
    "leaky_relu": lambda node, x, run: F.leaky_relu(x[0], node["attr"][0]),
    "sigmoid": lambda node, x, run: torch.sigmoid(x[0]),
    "tanh": lambda node, x, run: torch.tanh(x[0]),
    "softplus": lambda node, x, run: F.softplus(x[0]),
    "elu": lambda node, x, run: F.elu(x[0]),
    "gelu": lambda node, x, run: F.gelu(x[0]),
    "add": lambda node, x, run: broadcast(x)[0] + broadcast(x)[1],
    "sub": lambda node, x, run: broadcast(x)[0] - broadcast(x)[1],
    "mul": lambda node, x, run: broadcast(x)[0] * broadcast(x)[1],
    "div": lambda node, x, run: broadcast(x)[0] / broadcast(x)[1],
    "neg": lambda node, x, run: -x[0],
    "exp": lambda node, x, run: torch.exp(x[0]),
    "log": lambda node, x, run: torch.log(x[0]),
    "sqrt": lambda node, x, run: torch.sqrt(x[0]),
    "square": lambda node, x, run: torch.square(x[0]),
    "abs": lambda node, x, run: torch.abs(x[0]),
    # per sample: [n, 1]; a loss of them is their mean over the batch
    "sum": lambda node, x, run: x[0].reshape(x[0].shape[0], -1).sum(1, keepdim=True),
    "mean": lambda node, x, run: x[0].reshape(x[0].shape[0], -1).mean(1, keepdim=True),
    "sum_all": lambda node, x, run: x[0].sum(),
    "concat": lambda node, x, run: torch.cat([x[0], x[1]], dim=-1),
    "slice": lambda node, x, run: x[0][..., int(node["attr"][0]):int(node["attr"][1])],
    "batch_mean": lambda node, x, run: x[0].mean(),
    # per sample, averaged over the batch; a parameter's plain sum
    "l1": lambda node, x, run: x[0].abs().sum() / rows_divisor(node, run, x[0]),
    "sum_squares": lambda node, x, run: (x[0] * x[0]).sum() / rows_divisor(node, run, x[0]),
    "mse": lambda node, x, run: ((x[0] - x[1]) ** 2).mean(),
    "bce": bce,
    "bce_logits": lambda node, x, run: F.binary_cross_entropy_with_logits(x[0], x[1].expand_as(x[0])),
    "clip": lambda node, x, run: torch.clamp(x[0], node["attr"][0], node["attr"][1]),
    "kl_sparsity": kl_sparsity,
    "batchnorm": batchnorm,
    "batchnorm_eval": batchnorm_eval,
    # tied layers: the description's `transposed` lists the inputs used transposed
    # (the kernel of the dense layer tied to); Replay.evaluate transposes them
    "dense_tied": lambda node, x, run: x[0] @ x[1] + x[2],
}

def broadcast(x):
    """A [n, 1] value per sample against an image [n, c, h, w]: as NumPy, over every element."""
    a, b = x[0], x[1]
    if a.dim() == 2 and a.shape[1] == 1 and b.dim() > 2:
        a = a.reshape([a.shape[0]] + [1] * (b.dim() - 1))
    if b.dim() == 2 and b.shape[1] == 1 and a.dim() > 2:
        b = b.reshape([b.shape[0]] + [1] * (a.dim() - 1))
    return a, b
# ---- schedules (compiler/ops/schedule.c, runtime/core/schedule.c): ramp and
# cosine in a loss are nodes with attr [from, to, epochs] and no input; an
# optimizer's lr may be one too (the step's lr_schedule). Valued at the
# fractional epoch t = epoch index + batch index / batches per epoch,
# written here from the definitions, not from aec's code: the ramp goes
# linearly from `from` to `to` over `epochs` epochs, the cosine is
# CosineAnnealingLR's eta_min + (eta_max - eta_min) * (1 + cos(pi t / T_max)) / 2
# (checked against torch's own scheduler in check_cosine_convention), and both
# hold `to` after.
def schedule_value(kind, start, end, epochs, t):
    t = min(max(t, 0.0), epochs)
    if kind == "ramp":
        return start + (end - start) * t / epochs
    if kind == "cosine":
        return end + (start - end) * (1 + math.cos(math.pi * t / epochs)) / 2
    raise Disagreement(f"no schedule '{kind}'")


def schedule_node(node, inputs, run):
    start, end, epochs = node["attr"]
    return torch.tensor(schedule_value(node["op"], start, end, epochs, run.progress), dtype=torch.float32)


OPS["ramp"] = schedule_node
OPS["cosine"] = schedule_node


def check_cosine_convention(schedule, epoch_batches, batches):
    """The cosine lr, stepped each batch, is torch's CosineAnnealingLR with
    T_max = epochs x batches an epoch, up to T_max (then it holds, where
    torch's would climb again)."""
    t_max = schedule["epochs"] * epoch_batches
    if t_max != int(t_max):
        return
    probe = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=schedule["from"])
    torch_schedule = torch.optim.lr_scheduler.CosineAnnealingLR(probe, T_max=int(t_max), eta_min=schedule["to"])
    for k in range(min(batches, int(t_max) + 1)):
        ours = schedule_value("cosine", schedule["from"], schedule["to"], schedule["epochs"], k / epoch_batches)
        theirs = probe.param_groups[0]["lr"]
        if abs(ours - theirs) > 1e-9 * max(abs(theirs), 1e-12):
            raise Disagreement(f"cosine lr at batch {k}: {ours!r}, torch's CosineAnnealingLR {theirs!r}")
        probe.step()
        torch_schedule.step()


# Random ops (corruption, dropout, priors): f(node, inputs, draws, run) -> tensor,
# where draws maps each draw the description lists for the node ("uniform0",
# "uniform1", "normal") to this batch's values, shaped like the node's output
# -- aec's own draws, from `train --dump-random` (uniform in [0, 1) and N(0, 1)).
RANDOM_OPS = {
    "gaussian_noise": lambda node, x, d, run: x[0] + node["attr"][0] * d["normal"],
    "masking_noise": lambda node, x, d, run: torch.where(d["uniform0"] < node["attr"][0], torch.zeros_like(x[0]), x[0]),
    "salt_pepper": lambda node, x, d, run: torch.where(
        d["uniform0"] < node["attr"][0], (d["uniform1"] >= 0.5).to(x[0].dtype), x[0]),
    # inverted dropout as PyTorch's CPU kernel computes it: the input times a
    # mask of the kept elements divided by 1 - p (aec's attr[1] is not used)
    "dropout": lambda node, x, d, run: x[0] * ((d["uniform0"] >= node["attr"][0]).to(x[0].dtype)
                                               / (1 - node["attr"][0])),
    # priors (compiler/ops/prior.c): one sample a batch row, no input
    # the reparameterization trick, with aec's eps
    "sample_normal": lambda node, x, d, run: x[0] + torch.exp(x[1] * 0.5) * d["normal"],
    "gaussian": lambda node, x, d, run: node["attr"][0] * d["normal"],
    "uniform": lambda node, x, d, run: node["attr"][0] + (node["attr"][1] - node["attr"][0]) * d["uniform0"],
    "mixture": lambda node, x, d, run: mixture_prior(node, d),
}


def mixture_prior(node, d):
    """Row r: component floor(K * uniform0[r, 1]); dims 0 and 1 add std times the
    Box-Muller pair of element [r, 0] (its cosine half is normal[r, 0]); the
    other dims take std * normal."""
    k, std, radius = int(node["attr"][0]), node["attr"][1], node["attr"][2]
    u0, u1, normal = d["uniform0"].double(), d["uniform1"].double(), d["normal"].double()
    c = torch.clamp(torch.floor(u0[:, 1] * k), max=k - 1)
    centre = 2 * math.pi * c / k
    length = torch.sqrt(-2 * torch.log(u0[:, 0] + 2.0 ** -53))
    out = std * normal.clone()
    out[:, 0] = radius * torch.cos(centre) + std * normal[:, 0]
    out[:, 1] = radius * torch.sin(centre) + std * length * torch.sin(2 * math.pi * u1[:, 0])
    return out.to(d["normal"].dtype)


# At inference (eval, encode, ...): batchnorm with its running statistics,
# and corruption, dropout and sampling pass their first input through.
INFERENCE_OPS = {
    "batchnorm": batchnorm_eval,
    **{op: (lambda node, x, run: x[0]) for op in ("gaussian_noise", "masking_noise", "salt_pepper", "dropout",
                                                  "sample_normal")},
}


# ---- derivatives: grad(y, x) and jacobian_norm(y, x) are one node each in the
# description ("derivative": {"of", "y", "x"}; the nodes aec made for them say
# "inside" and are not evaluated here). PyTorch takes them with its own
# double backward: torch.autograd.grad(..., create_graph=True), so that the
# step's loss.backward() differentiates them again.
def derivative(node, y, x):
    if node["derivative"]["of"] == "grad":
        return torch.autograd.grad(y.sum(), x, create_graph=True)[0]
    # every row of the Jacobian, as the definition says: one backward pass
    # for each element of y, batched (vmap) over the elements
    rows = y.reshape(y.shape[0], -1)
    d = rows.shape[1]
    seeds = torch.eye(d, dtype=rows.dtype).unsqueeze(1).expand(d, rows.shape[0], d)
    g = torch.autograd.grad(rows, x, grad_outputs=seeds, is_grads_batched=True, create_graph=True)[0]
    return g.reshape(d, g.shape[1], -1).pow(2).sum((0, 2)).unsqueeze(1)


# ------------------------------------------------------------ the replay
class Replay:
    """Evaluates the described graph in PyTorch for one batch."""

    def __init__(self, description, params, inference=False):
        self.d = description
        self.nodes = {node["id"]: node for node in description["nodes"]}
        self.params = params
        self.n = 0
        self.progress = 0.0  # the fractional epoch of the batch (schedules)
        self.inference = inference  # as eval computes: batchnorm's running statistics, no corruption
        # the x of every derivative: a value that must be part of the autograd graph
        self.wrt = {node["derivative"]["x"] for node in description["nodes"] if "derivative" in node}

    def batched(self, node_id):
        return self.nodes[node_id]["batched"]

    def evaluate(self, node_id, x, draws):
        self.n = x.shape[0]
        memo = {}

        def value(i):
            if i in memo:
                return memo[i]
            node = self.nodes.get(i)
            if node is None:
                raise Disagreement(f"node {i} is not in the description (a backward node used forward?)")
            op = node["op"]
            if "derivative" in node:
                ys, xs = node["derivative"]["y"], node["derivative"]["x"]
                v = derivative(node, value(ys), value(xs))
                memo[i] = v
                return v
            if op == "input":
                v = x.reshape([self.n] + node["shape"])
            elif op == "param":
                v = self.params[node["param"]]
            elif op == "constant":
                v = torch.tensor(node["attr"][0], dtype=torch.float32)
            else:
                inputs = [value(j) for j in node["inputs"]]
                # an input the node uses transposed (a tied layer's kernel, in its owner's layout)
                inputs = [v.t() if k in node.get("transposed", []) else v for k, v in enumerate(inputs)]
                if self.inference and op in INFERENCE_OPS:
                    v = INFERENCE_OPS[op](node, inputs, self)
                elif "random" in node:
                    rule = RANDOM_OPS.get(op)
                    if rule is None:
                        raise Disagreement(f"no PyTorch rule for the random op '{op}' (node {i}, {node['name']}): "
                                           "add one to RANDOM_OPS in tests/torch/check_torch.py")
                    v = rule(node, inputs, draws[i], self)
                else:
                    rule = OPS.get(op)
                    if rule is None:
                        raise Disagreement(f"no PyTorch rule for the op '{op}' (node {i}, {node['name']}): "
                                           "add one to OPS in tests/torch/check_torch.py")
                    v = rule(node, inputs, self)
            if i in self.wrt and not v.requires_grad:  # (the input): a leaf the derivative starts from
                v = v.detach().requires_grad_(True)
            memo[i] = v
            return v

        return value(node_id)


def make_optimizer(step, tensors):
    """torch.optim's optimizer of a step, its settings from the description
    (each optimizer's own, as runtime/aert_optimizers.def names them)."""
    if step["optimizer"] == "adam":
        return torch.optim.Adam(tensors, lr=step["lr"], betas=(step["beta1"], step["beta2"]), eps=step["eps"])
    if step["optimizer"] == "adamw":
        return torch.optim.AdamW(tensors, lr=step["lr"], betas=(step["beta1"], step["beta2"]), eps=step["eps"],
                                 weight_decay=step["weight_decay"])
    if step["optimizer"] == "sgd":
        return torch.optim.SGD(tensors, lr=step["lr"], momentum=step["momentum"])
    if step["optimizer"] == "rmsprop":
        return torch.optim.RMSprop(tensors, lr=step["lr"], alpha=step["alpha"], eps=step["eps"],
                                   momentum=step["momentum"])
    raise Disagreement(f"no PyTorch optimizer for '{step['optimizer']}'")


def load_draws(description, directory, trace):
    """Per batch: {node id: {draw: tensor shaped like the node}}, from --dump-random."""
    per_batch = [dict() for _ in trace]
    for node_id in description["random"]:
        node = next(n for n in description["nodes"] if n["id"] == node_id)
        for draw in node["random"]["draws"]:
            array = np.load(os.path.join(directory, f"{node['name']}.{draw}.npy"))
            row = 0
            for b, record in enumerate(trace):
                rows = len(record["samples"]) if node["batched"] else 1
                chunk = torch.from_numpy(array[row:row + rows].astype(np.float32))
                if not node["batched"]:
                    chunk = chunk[0]
                per_batch[b].setdefault(node_id, {})[draw] = chunk
                row += rows
    return per_batch


def batch_schedules(description, record, model, optimizers):
    """The batch's fractional epoch and each scheduled step's lr, computed here
    and checked against the trace's."""
    per_epoch = epoch_batches(description)
    model.progress = (record["epoch"] - 1) + (record["batch"] - 1) / per_epoch
    if "progress" in record and abs(record["progress"] - model.progress) > 1e-12:
        raise Disagreement(f"epoch {record['epoch']}, batch {record['batch']}: aec's progress {record['progress']!r}, "
                           f"expected {model.progress!r}")
    for s, step in enumerate(description["steps"]):
        schedule = step.get("lr_schedule")
        lr = step["lr"] if schedule is None else schedule_value(schedule["kind"], schedule["from"], schedule["to"],
                                                                schedule["epochs"], model.progress)
        for group in optimizers[s].param_groups:
            group["lr"] = lr
        theirs = record["lr"][s] if "lr" in record else lr
        if abs(theirs - lr) > 1e-12 * max(abs(lr), 1e-30):
            raise Disagreement(f"epoch {record['epoch']}, batch {record['batch']}, step {s}: aec's lr {theirs!r}, "
                               f"expected {lr!r}")


def replay(description, data, trace, draws, init):
    """Trains in PyTorch along the trace; returns the final parameters."""
    state = {p["name"] for p in description["params"] if p.get("state")}  # running statistics: no gradient
    params = {name: t.clone().requires_grad_(name not in state) for name, t in init.items()
              if not name.startswith("optimizer.")}
    model = Replay(description, params)
    steps = description["steps"]
    optimizers = [make_optimizer(s, [params[p] for p in s["params"]]) for s in steps]
    losses = {loss["name"]: loss["node"] for loss in description["losses"]}
    for step in steps:
        if step.get("lr_schedule", {}).get("kind") == "cosine":
            check_cosine_convention(step["lr_schedule"], epoch_batches(description), len(trace))
    max_rel = 0.0
    for b, record in enumerate(trace):
        x = data[record["samples"]]
        batch_schedules(description, record, model, optimizers)
        for s, step in enumerate(steps):
            for p in params.values():
                p.grad = None
            loss = model.evaluate(losses[step["loss"]], x, draws[b])
            ours, theirs = loss.item(), float(record["losses"][s])
            rel = abs(ours - theirs) / max(abs(theirs), 1e-30)
            max_rel = max(max_rel, rel)
            if not rel <= LOSS_TOLERANCE:
                raise Disagreement(f"batch {b + 1} (epoch {record['epoch']}, batch {record['batch']}), step {s} "
                                   f"'{step['loss']}': aec loss {theirs:.9g}, PyTorch {ours:.9g}, "
                                   f"relative difference {rel:.3g} > {LOSS_TOLERANCE:g}")
            loss.backward()
            for name in step["params"]:  # aec updates a parameter the loss does not reach with a zero gradient
                if params[name].grad is None:
                    params[name].grad = torch.zeros_like(params[name])
            optimizers[s].step()
    return {name: p.detach() for name, p in params.items()}, max_rel


def adam_travel(description, trace):
    """Per parameter: the sum over the run of the learning rates of its Adam
    (or other NORMALIZED) updates (the trace's, which follow a step's lr
    schedule)."""
    travel = {}
    for s, step in enumerate(description["steps"]):
        if step["optimizer"] not in NORMALIZED:
            continue
        total = sum(record["lr"][s] if "lr" in record else step["lr"] for record in trace)
        for name in step["params"]:
            travel[name] = travel.get(name, 0.0) + total
    return travel


def compare_weights(final_aec, final_torch, order, travel=None, batches=EPOCHS * EPOCH_BATCHES, init=None):
    """One line a tensor; raises at the first tensor out of tolerance.

    An element that one program never moved (its gradient was exactly 0 at
    every step) may differ by up to its whole travel: a relu critic with a
    linear output (wgan_aae.ae) gives its last hidden layer's bias the
    gradient w * (the codes that reach the unit - the prior samples that do)
    / batch, exactly 0 on a tie, and a sample whose input to the unit is
    within rounding of 0 breaks the tie in one program only (critic.dense_2's
    bias element 510: aec 0 after 4 batches, PyTorch 4.4e-4)."""
    lines = []
    travel = travel or {}
    for name in order:
        a, t = final_aec[name].flatten(), final_torch[name].flatten()
        still = torch.zeros_like(a, dtype=torch.bool)
        if init is not None and name in init:
            start = init[name].flatten()
            still = (a == start) | (t == start)
        if a.shape != t.shape:
            raise Disagreement(f"weight {name}: aec has {a.numel()} elements, PyTorch {t.numel()}")
        diff = (a - t).abs()
        scale = WEIGHT_SCALE * float(t.abs().max()) if t.numel() else 0.0
        rel = diff / (t.abs() + scale + 1e-30)
        noise = ADAM_NOISE * travel.get(name, 0.0)
        within_noise = (rel > WEIGHT_TOLERANCE) & ((diff <= noise) | (still & (diff <= travel.get(name, 0.0))))
        rel = torch.where(within_noise, torch.zeros_like(rel), rel)
        i = int(torch.argmax(rel))
        line = (f"{name}: largest difference {float(diff.max()):.3g}, largest relative {float(rel[i]):.3g} "
                f"at element {i} (aec {float(a[i]):.9g}, PyTorch {float(t[i]):.9g})")
        if int(within_noise.sum()):
            line += f"; {int(within_noise.sum())} of {a.numel()} elements within Adam's noise ({noise:.3g})"
        if not float(rel[i]) <= WEIGHT_TOLERANCE:
            raise Disagreement(f"after batch {batches}, weight {line} > {WEIGHT_TOLERANCE:g}")
        lines.append("    " + line)
    return lines, max(float((final_aec[n] - final_torch[n]).abs().max()) for n in order)


# ------------------------------------------------------------ running aec
def run(command, cwd, what):
    result = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if result.returncode != 0:
        raise Disagreement(f"{what} failed ({result.returncode}): {' '.join(command)}\n{result.stderr.strip()}")
    return result.stdout


# A model whose loss takes a jacobian_norm of a wide value (contractive.ae:
# 1000 code units, each a backward pass here, over 784 inputs) is replayed
# with batches of SMALL_BATCH instead of its own: PyTorch's passes cost the
# batch times the Jacobian's size (20 steps of 128 x 1000 x 784 took
# minutes), and a step's arithmetic per sample does not depend on the batch.
WIDE_JACOBIAN = 64
SMALL_BATCH = 8


def replay_batch(description):
    nodes = {node["id"]: node for node in description["nodes"]}
    wide = any(node.get("derivative", {}).get("of") == "jacobian_norm"
               and math.prod(nodes[node["derivative"]["y"]]["shape"]) > WIDE_JACOBIAN for node in description["nodes"])
    return SMALL_BATCH if wide else description["train"]["batch"]


def epoch_batches(description):
    if len(description["steps"]) == 1:
        return EPOCH_BATCHES
    penalty = any("derivative" in node for node in description["nodes"])
    return PENALTY_GAME_EPOCH_BATCHES if penalty else GAME_EPOCH_BATCHES


def make_data(description, path):
    """A .npy of an epoch's batches (the last one partial) scaled to [0, 1]."""
    batch = replay_batch(description)
    n = (epoch_batches(description) - 1) * batch + (3 * batch + 3) // 4
    shape = description["input"]["shape"]
    size = math.prod(shape)
    if size == 784 and os.path.exists(FASHION_MNIST):
        with gzip.open(FASHION_MNIST, "rb") as f:
            raw = f.read(16 + n * 784)
        x = np.frombuffer(raw[16:], dtype=np.uint8).astype(np.float32) / np.float32(255)
    else:
        x = np.random.default_rng(1).random(n * size, dtype=np.float32)
    x = x.reshape([n] + shape)
    np.save(path, x)
    return torch.from_numpy(x.reshape(n, size).copy())


def check_model(aec, source, work):
    name = os.path.splitext(os.path.basename(source))[0]
    os.makedirs(work, exist_ok=True)
    program = os.path.join(work, name)
    compiled = subprocess.run([aec, source, "-o", program], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if compiled.returncode != 0:
        reason = next((line for line in compiled.stderr.splitlines() if NOT_SUPPORTED in line), None)
        if reason is not None:
            return "skip", reason.strip()
        raise Disagreement(f"aec failed ({compiled.returncode}) on {source}:\n{compiled.stderr.strip()}")
    description = json.loads(run([program, "describe"], work, "describe"))
    data = make_data(description, os.path.join(work, "data.npy"))
    common = ["--data", "data.npy", "--test", "none", "--threads", "2", "--batch", str(replay_batch(description))]
    run([program, "train", "--epochs", "0", "--checkpoint", "init.safetensors"] + common, work, "train --epochs 0")
    batches = EPOCHS * epoch_batches(description)
    run([program, "train", "--epochs", str(EPOCHS), "--checkpoint", "final.safetensors", "--trace",
         "trace.jsonl", "--dump-random", "random"] + common, work, "train")
    with open(os.path.join(work, "trace.jsonl")) as f:
        trace = [json.loads(line) for line in f]
    if len(trace) != batches:
        raise Disagreement(f"the trace has {len(trace)} batches, expected {batches}")
    draws = load_draws(description, os.path.join(work, "random"), trace)
    init = read_safetensors(os.path.join(work, "init.safetensors"))
    final_aec = read_safetensors(os.path.join(work, "final.safetensors"))
    final_torch, max_loss_rel = replay(description, data, trace, draws, init)
    order = [p["name"] for p in description["params"]]
    lines, max_diff = compare_weights(final_aec, final_torch, order, adam_travel(description, trace), batches, init)
    if any(node["op"] == "batchnorm" for node in description["nodes"]):
        lines.append(compare_inference(program, work, description, data, final_torch))
    steps = ", ".join(f"{s['optimizer']}({s['loss']})" for s in description["steps"])
    summary = (f"{batches} batches x {len(description['steps'])} steps [{steps}], largest loss relative difference "
               f"{max_loss_rel:.3g}, largest weight difference {max_diff:.3g}")
    return "pass", summary + "\n" + "\n".join(lines)


def compare_inference(program, work, description, data, final_torch):
    """A model with batchnorm: `eval` of the trained weights on the whole data
    set, every loss against PyTorch's eval mode (the running statistics)."""
    out = run([program, "eval", "--data", "data.npy", "--checkpoint", "final.safetensors", "--threads", "2"], work,
              "eval")
    figures = dict(line.split()[:2] for line in out.splitlines() if len(line.split()) == 2)
    model = Replay(description, final_torch, inference=True)
    worst = 0.0
    with torch.no_grad():
        for loss in description["losses"]:
            ours = model.evaluate(loss["node"], data, {}).item()
            if loss["name"] not in figures:
                raise Disagreement(f"eval printed no '{loss['name']}':\n{out}")
            theirs = float(figures[loss["name"]])
            rel = abs(ours - theirs) / max(abs(theirs), 1e-30)
            worst = max(worst, rel)
            if not rel <= LOSS_TOLERANCE:
                raise Disagreement(f"eval after training, '{loss['name']}': aec {theirs:.9g}, PyTorch's eval mode "
                                   f"{ours:.9g}, relative difference {rel:.3g} > {LOSS_TOLERANCE:g}")
    return f"    eval (running statistics): largest loss relative difference {worst:.3g}"


def default_models():
    models = []
    for directory in ("examples", "tests/torch"):
        path = os.path.join(ROOT, directory)
        models += sorted(os.path.join(path, f) for f in os.listdir(path) if f.endswith(".ae"))
    return models


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--aec", default=os.path.join(ROOT, "build", "aec"))
    parser.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    parser.add_argument("models", nargs="*", help=".ae files (default: examples/*.ae and tests/torch/*.ae)")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    print(f"check_torch: PyTorch {torch.__version__}, numpy {np.__version__}, Python {sys.version.split()[0]}")
    models = args.models or default_models()
    passed = failed = skipped = 0
    with tempfile.TemporaryDirectory(prefix="aec-torch-") as tmp:
        base = args.keep or tmp
        for source in models:
            label = os.path.relpath(source, ROOT)
            work = os.path.join(base, os.path.splitext(os.path.basename(source))[0])
            try:
                status, detail = check_model(os.path.abspath(args.aec), os.path.abspath(source), work)
            except Disagreement as e:
                failed += 1
                print(f"FAIL {label}: {e}", flush=True)
                continue
            if status == "skip":
                skipped += 1
                print(f"skip {label}: not trainable yet ({detail})", flush=True)
            else:
                passed += 1
                print(f"ok   {label}: {detail}", flush=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
