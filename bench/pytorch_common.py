"""Shared by the Python sides of the PyTorch comparisons (bench/pytorch_lenet5.py, bench/pytorch_transformer.py):
reading the raw little-endian arrays bench/pytorch-common.ts exports into --dir (meta.json, init_<seed>.f32,
order_<seed>.u32, <split>_x.f32 / <split>_y.i32)."""
import argparse
import json

import numpy as np
import torch


def load(d, name, dtype, shape=None):
    a = np.fromfile(f"{d}/{name}", dtype=dtype)
    if a.dtype == np.uint32:
        a = a.astype(np.int64)  # torch has no uint32 tensors
    return torch.from_numpy(a.reshape(shape) if shape else a)


def meta(d):
    return json.load(open(f"{d}/meta.json"))


def load_init(d, m, seed, state_dict):
    """Copies lpc's initial parameters of `seed` into a state dict whose names are lpc's state names."""
    flat = load(d, f"init_{seed}.f32", np.float32)
    for p in m["params"]:
        state_dict[p["name"]].copy_(flat[p["offset"]:p["offset"] + p["size"]].reshape(p["shape"]))


def load_orders(d, seed, n):
    """lpc's sample orders, one row per epoch."""
    return load(d, f"order_{seed}.u32", np.uint32).reshape(-1, n)


def parse_args(length_flag, length_default, losses_default):
    """The comparison's flags (--dir, --mode, --seeds, its run length, --losses) and the export's meta; one torch
    thread, deterministic, so the machine's other core stays free."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--mode", choices=["lpc", "torch"], required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument(length_flag, type=int, default=length_default)
    ap.add_argument("--losses", type=int, default=losses_default)
    o = ap.parse_args()
    torch.set_num_threads(1)
    return o, meta(o.dir)
