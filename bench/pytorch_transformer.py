#!/usr/bin/env python3
"""PyTorch's side of bench/pytorch-transformer.ts: models/transformer-lm.ts (GPT-style pre-LN decoder, separate
q/k/v, exact GELU, untied head, no dropout) trained on the sotu:chars windows bench/pytorch-transformer.ts exported,
with lpc's recipe (Adam or AdamW from meta.json, constant lr, next-token cross-entropy averaged over the batch's
tokens), for --steps steps of the first epoch; then the mean token loss on the first meta["val"] validation windows.

  --mode lpc:   start from lpc's initial weights and visit the training windows in lpc's order, so the loss curve
                can be compared step by step with lpc's;
  --mode torch: PyTorch's own default initialisation (nn.Linear, nn.Embedding, nn.LayerNorm) and shuffling from
                torch.manual_seed(seed).

Prints one JSON object per seed: {"mode", "seed", "losses": [the first --losses steps], "val_loss"}.
"""
import json
import math
import re

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pytorch_common import load, load_init, load_orders, parse_args


class TransformerLM(nn.Module):
    """Parameter names are lpc's state names (tok, pos, h<i>.ln0/attn0.{q,k,v,proj}/ln1/linear0/linear1, ln_f, head)."""

    def __init__(self, V, T, D, layers, heads):
        super().__init__()
        self.D, self.H = D, heads
        self.tok, self.pos = nn.Embedding(V, D), nn.Embedding(T, D)
        for i in range(layers):
            attn = nn.ModuleDict({k: nn.Linear(D, D) for k in ("q", "k", "v", "proj")})
            setattr(self, f"h{i}", nn.ModuleDict({"ln0": nn.LayerNorm(D), "attn0": attn, "ln1": nn.LayerNorm(D),
                                                  "linear0": nn.Linear(D, 4 * D), "linear1": nn.Linear(4 * D, D)}))
        self.layers = layers
        self.ln_f, self.head = nn.LayerNorm(D), nn.Linear(D, V)

    def attention(self, a, x):
        N, T, D = x.shape
        heads = lambda t: t.reshape(N, T, self.H, D // self.H).permute(0, 2, 1, 3)
        q, k, v = heads(a["q"](x)), heads(a["k"](x)), heads(a["v"](x))
        s = torch.matmul(q, k.transpose(-1, -2)) * (1 / math.sqrt(D // self.H))
        s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
        y = torch.matmul(torch.softmax(s, -1), v).permute(0, 2, 1, 3).reshape(N, T, D)
        return a["proj"](y)

    def forward(self, x):
        h = self.tok(x) + self.pos.weight[None, :x.shape[1]]
        for i in range(self.layers):
            b = getattr(self, f"h{i}")
            h = h + self.attention(b["attn0"], b["ln0"](h))
            h = h + b["linear1"](F.gelu(b["linear0"](b["ln1"](h))))
        return self.head(self.ln_f(h))


def main():
    o, meta = parse_args("--steps", 20, 20)
    T, V, batch = meta["T"], meta["V"], meta["batch"]
    tx = load(o.dir, "train_x.f32", np.float32, (-1, T)).long()  # token ids are stored exactly in f32
    ty = load(o.dir, "train_y.i32", np.int32, (-1, T)).long()
    vx = load(o.dir, "test_x.f32", np.float32, (-1, T)).long()[:meta["val"]]
    vy = load(o.dir, "test_y.i32", np.int32, (-1, T)).long()[:meta["val"]]
    n = tx.shape[0]
    layers = len({p["name"].split(".")[0] for p in meta["params"] if re.fullmatch(r"h\d+", p["name"].split(".")[0])})
    for seed in map(int, o.seeds.split(",")):
        torch.manual_seed(seed)
        model = TransformerLM(V, T, meta["width"], layers, meta["heads"])
        if o.mode == "lpc":
            load_init(o.dir, meta, seed, model.state_dict())
            idx = load_orders(o.dir, seed, n)[0]
        else:
            idx = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        Opt = torch.optim.AdamW if meta["kind"] == "adamw" else torch.optim.Adam
        opt = Opt(model.parameters(), lr=meta["lr"], betas=tuple(meta["betas"]), eps=meta["eps"],
                  weight_decay=meta["wd"], foreach=False)
        losses = []
        model.train()
        for s in range(o.steps):
            b = idx[s * batch:(s + 1) * batch]
            loss = F.cross_entropy(model(tx[b]).reshape(-1, V), ty[b].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            if len(losses) < o.losses:
                losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            val = sum(F.cross_entropy(model(vx[i:i + batch]).reshape(-1, V), vy[i:i + batch].reshape(-1), reduction="sum").item()
                      for i in range(0, vx.shape[0], batch)) / (vx.shape[0] * T)
        print(json.dumps({"mode": o.mode, "seed": seed, "losses": losses, "val_loss": val}), flush=True)


if __name__ == "__main__":
    main()
