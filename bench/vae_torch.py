#!/usr/bin/env python3
"""examples/vae.ae (and beta_vae.ae) written by hand in PyTorch, as a user
would, to judge aec's VAE against an independent implementation.

Independent of aec: nn.Linear's own initialisation, torch.randn for eps.
Trains on Fashion-MNIST's 60000 training images (batch 128, shuffled each
epoch, Adam at 0.001), with the loss per sample 784 * BCE(decoder(z), x) +
beta * KL(N(mean, exp(logvar)) || N(0, 1)), averaged over the batch. The test
loss is computed as aec's `eval` computes it: deterministically, decoding the
mean (sample_normal is the mean at inference). Prints the test loss and its
two parts (the reconstruction part 784 * BCE and the KL part, unweighted)
after every epoch.

Usage: vae_torch.py [--epochs 30] [--seed 1] [--beta 1] [--warmup 0] [--threads 2] [--init torch|glorot]
--init glorot initialises as aec (and Keras) do: Glorot-uniform kernels,
zero biases; the default is nn.Linear's own.
--warmup E ramps beta from 0 over E epochs, valued per batch from the
fractional epoch, as aec's ramp(0, beta, E) (beta_vae.ae: --beta 4 --warmup 10).
"""

import argparse
import gzip

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist/"


def read_images(name):
    with gzip.open(DATA + name) as f:
        raw = f.read()
    return torch.from_numpy(np.frombuffer(raw, dtype=np.uint8, offset=16).astype(np.float32) / 255).reshape(-1, 784)


class Encoder(nn.Module):
    def __init__(self, code):
        super().__init__()
        self.hidden = nn.Linear(784, 512)
        self.mean = nn.Linear(512, code)
        self.logvar = nn.Linear(512, code)

    def forward(self, x):
        h = torch.relu(self.hidden(x))
        return self.mean(h), self.logvar(h)


def parts(decoder, x, mean, logvar, z):
    recon = 784 * F.binary_cross_entropy(decoder(z), x, reduction="none").mean(1)
    kl = -0.5 * (1 + logvar - mean * mean - logvar.exp()).sum(1)
    return recon, kl


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--warmup", type=float, default=0.0)
    parser.add_argument("--code", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--init", choices=["torch", "glorot"], default="torch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train, test = read_images("train-images-idx3-ubyte.gz"), read_images("t10k-images-idx3-ubyte.gz")
    encoder = Encoder(args.code)
    decoder = nn.Sequential(nn.Linear(args.code, 512), nn.ReLU(), nn.Linear(512, 784), nn.Sigmoid())
    if args.init == "glorot":
        for layer in [m for m in list(encoder.modules()) + list(decoder.modules()) if isinstance(m, nn.Linear)]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
    optimizer = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=0.001)
    batches = (len(train) + 127) // 128
    for epoch in range(args.epochs):
        order = torch.randperm(len(train))
        for b, start in enumerate(range(0, len(train), 128)):
            t = epoch + b / batches
            beta = args.beta * min(t / args.warmup, 1.0) if args.warmup > 0 else args.beta
            x = train[order[start:start + 128]]
            mean, logvar = encoder(x)
            z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)
            recon, kl = parts(decoder, x, mean, logvar, z)
            loss = (recon + beta * kl).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        t = epoch + 1
        beta = args.beta * min(t / args.warmup, 1.0) if args.warmup > 0 else args.beta
        with torch.no_grad():
            mean, logvar = encoder(test)
            recon, kl = parts(decoder, test, mean, logvar, mean)
        print(f"epoch {epoch + 1} test.elbo {(recon + beta * kl).mean():.4f} recon {recon.mean():.4f} "
              f"kl {kl.mean():.4f}", flush=True)


if __name__ == "__main__":
    main()
