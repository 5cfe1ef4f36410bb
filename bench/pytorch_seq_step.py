#!/usr/bin/env python3
"""PyTorch's side of bench/seq-step.ts: the step time of models/transformer-lm.ts (pytorch_transformer.TransformerLM)
in fp32 on the CPU, from lpc's initial weights, on the batches bench/seq-step.ts exported (steps_x.i32 / steps_y.i32,
[K, batch, T]), with torch.optim.Adam (meta.json's lr, betas, eps). One untimed step first (the allocator's warm-up),
then --steps timed steps, each forward, backward, optimizer step and loss.item() (the loss read back, as lpc's and
tfjs's steps do). Prints one JSON object: {"seed", "loss0" (the first step's loss, before any update), "ms": [...]}.

  --threads N: torch.set_num_threads(N) (default 1, as bench/pytorch_transformer.py: on a shared machine more
  threads oversubscribe the cores and OpenMP spin-waits; bench/seq-step.ts passes its own --threads).
"""
import argparse
import json
import re
import time

import numpy as np
import torch
import torch.nn.functional as F

from pytorch_common import load, load_init, meta as read_meta
from pytorch_transformer import TransformerLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--first", type=int, default=0, help="the index of the first exported batch this run uses")
    ap.add_argument("--threads", type=int, default=1)
    o = ap.parse_args()
    torch.set_num_threads(o.threads)
    m = read_meta(o.dir)
    T, V, batch = m["T"], m["V"], m["batch"]
    xs = load(o.dir, "steps_x.i32", np.int32, (-1, batch, T)).long()
    ys = load(o.dir, "steps_y.i32", np.int32, (-1, batch, T)).long()
    layers = len({p["name"].split(".")[0] for p in m["params"] if re.fullmatch(r"h\d+", p["name"].split(".")[0])})
    model = TransformerLM(V, T, m["width"], layers, m["heads"])
    load_init(o.dir, m, 0, model.state_dict())
    opt = torch.optim.Adam(model.parameters(), lr=m["lr"], betas=tuple(m["betas"]), eps=m["eps"], foreach=False)
    model.train()

    def step(k):
        k = (o.first + k) % xs.shape[0]
        loss = F.cross_entropy(model(xs[k]).reshape(-1, V), ys[k].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    loss0 = step(0)
    ms = []
    for s in range(o.steps):
        t0 = time.perf_counter()
        step(1 + s)
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"seed": 0, "loss0": loss0, "ms": ms, "threads": o.threads, "torch": torch.__version__}), flush=True)


if __name__ == "__main__":
    main()
