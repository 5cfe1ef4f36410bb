#!/usr/bin/env python3
"""PyTorch's side of bench/pytorch-lenet5.ts: the default MNIST recipe (LeNet-5, SGD lr 0.05, momentum 0.9,
weight decay 5e-4, batch 64, cross-entropy) in PyTorch itself, on the split bench/pytorch-lenet5.ts exported.

  --mode lpc:   start from lpc's initial weights and visit the training images in lpc's order (per seed and epoch),
                so the loss curve can be compared step by step with lpc's;
  --mode torch: PyTorch's own default initialisation and shuffling from torch.manual_seed(seed).

Prints one JSON object per seed: {"mode", "seed", "accuracy": [% per epoch], "losses": [the first --losses steps]}.
Needs torch (Debian: apt-get install python3-torch, which is PyTorch 1.13) and numpy.
"""
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_common import load, load_init, load_orders, parse_args


class LeNet5(nn.Module):
    """models/lenet5.ts: parameter names are lpc's state names."""

    def __init__(self):
        super().__init__()
        self.conv0 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv1 = nn.Conv2d(6, 16, 5)
        self.linear0 = nn.Linear(16 * 5 * 5, 120)
        self.linear1 = nn.Linear(120, 84)
        self.linear2 = nn.Linear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv0(x)), 2)
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.relu(self.linear0(x.flatten(1)))
        x = F.relu(self.linear1(x))
        return self.linear2(x)


def main():
    o, meta = parse_args("--epochs", 5, 50)
    tx = load(o.dir, "train_x.f32", np.float32, (-1, 1, 28, 28))
    ty = load(o.dir, "train_y.i32", np.int32).long()
    vx = load(o.dir, "test_x.f32", np.float32, (-1, 1, 28, 28))
    vy = load(o.dir, "test_y.i32", np.int32).long()
    n, batch = tx.shape[0], meta["batch"]
    for seed in map(int, o.seeds.split(",")):
        torch.manual_seed(seed)
        model = LeNet5()
        if o.mode == "lpc":
            load_init(o.dir, meta, seed, model.state_dict())
            order = load_orders(o.dir, seed, n)
        opt = torch.optim.SGD(model.parameters(), lr=meta["lr"], momentum=meta["momentum"], weight_decay=meta["wd"])
        gen = torch.Generator().manual_seed(seed)
        losses, acc = [], []
        for epoch in range(o.epochs):
            idx = order[epoch] if o.mode == "lpc" else torch.randperm(n, generator=gen)
            model.train()
            for s in range(n // batch):  # the last partial batch is dropped, as lpc does
                b = idx[s * batch:(s + 1) * batch]
                loss = F.cross_entropy(model(tx[b]), ty[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if len(losses) < o.losses:
                    losses.append(loss.item())
            model.eval()
            with torch.no_grad():
                acc.append((model(vx).argmax(1) == vy).float().mean().item() * 100)
        print(json.dumps({"mode": o.mode, "seed": seed, "accuracy": acc, "losses": losses}), flush=True)


if __name__ == "__main__":
    main()
