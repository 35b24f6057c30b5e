#!/usr/bin/env python3
"""adversarial_gaussian.ae written by hand in PyTorch, as a user would, to ask
whether its learning rates can give codes that match the prior at all.

Independent of aec: nn.Linear's own initialisation, torch.randn for the prior,
z recomputed by the encoder in each step. Trains on Fashion-MNIST's 60000
training images (batch 128, shuffled each epoch), then prints for the 10000
test images each code dimension's mean and standard deviation and the energy
distance 2E|X-Y| - E|X-X'| - E|Y-Y'| to as many N(0, I) samples -- the figures
`./model prior-match` prints.

Usage: aae_torch.py [--epochs 30] [--seed 1] [--lr RECON,DISC,GEN] [--threads 2]
The default rates are the example's: 0.001 for all three steps (0.0002 for the
critic and the generator until 2026-12: the critic won).
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


def mlp(sizes, last):
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        layers.append(nn.ReLU() if i < len(sizes) - 2 else last)
    return nn.Sequential(*layers)


def energy_distance(x, y):
    return 2 * torch.cdist(x, y).mean() - torch.cdist(x, x).mean() - torch.cdist(y, y).mean()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--lr", default="0.001,0.001,0.001")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    lr_recon, lr_disc, lr_gen = (float(v) for v in args.lr.split(","))
    train, test = read_images("train-images-idx3-ubyte.gz"), read_images("t10k-images-idx3-ubyte.gz")

    encoder = mlp([784, 512, 512, 2], nn.Identity())
    decoder = mlp([2, 512, 512, 784], nn.Sigmoid())
    critic = mlp([2, 512, 512, 1], nn.Sigmoid())
    opt_recon = torch.optim.Adam(list(encoder.parameters()) + list(decoder.parameters()), lr=lr_recon)
    opt_disc = torch.optim.Adam(critic.parameters(), lr=lr_disc)
    opt_gen = torch.optim.Adam(encoder.parameters(), lr=lr_gen)
    ones, zeros = torch.ones(128, 1), torch.zeros(128, 1)

    for epoch in range(1, args.epochs + 1):
        order = torch.randperm(len(train))
        sums = np.zeros(3)
        batches = 0
        for start in range(0, len(train), 128):
            x = train[order[start:start + 128]]
            n = len(x)
            opt_recon.zero_grad()
            recon = F.binary_cross_entropy(decoder(encoder(x)), x)
            recon.backward()
            opt_recon.step()

            opt_disc.zero_grad()
            prior = torch.randn(n, 2)
            disc = F.binary_cross_entropy(critic(prior), ones[:n]) + \
                F.binary_cross_entropy(critic(encoder(x).detach()), zeros[:n])
            disc.backward()
            opt_disc.step()

            opt_gen.zero_grad()
            gen = F.binary_cross_entropy(critic(encoder(x)), ones[:n])
            gen.backward()
            opt_gen.step()
            sums += [recon.item(), disc.item(), gen.item()]
            batches += 1
        with torch.no_grad():
            z = encoder(test)
        mean, std = z.mean(0), z.std(0, unbiased=False)
        print(f"epoch {epoch} recon {sums[0] / batches:.4f} disc {sums[1] / batches:.4f} gen {sums[2] / batches:.4f} "
              f"code_mean {mean[0]:.3f} {mean[1]:.3f} code_std {std[0]:.3f} {std[1]:.3f}", flush=True)
    with torch.no_grad():
        z = encoder(test).double()
        prior = torch.randn(len(z), 2, dtype=torch.float64)
        for i in range(2):
            print(f"code_mean.{i} {z[:, i].mean():.4f}")
            print(f"code_std.{i} {z[:, i].std(unbiased=False):.4f}")
        print(f"distance {energy_distance(z, prior):.5f}")


if __name__ == "__main__":
    main()
