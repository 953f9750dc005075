#!/usr/bin/env python3
"""Independent PyTorch reference of ffstream's default FF and bp algorithms.

Needs python3-torch and python3-numpy from Debian (apt-get install
python3-torch). It re-implements the README's reference algorithm with
autograd so fftrain's numbers can be checked against a second
implementation:

    python3 tools/reference/ff_torch.py --mode ff --layers 2 --hidden 500 \
        --batch 1000 --lr 0.01 --epochs 30

ffprofile runs it for its torch-ff and torch-bp modes, one process per
cell, with fftrain's flags and --json FILE --quiet; the JSON (written
atomically) holds the configuration, test_accuracy, train_seconds,
eval_seconds and peak_rss_bytes.

Random streams differ from fftrain's, so compare accuracies, not weights.
"""
import argparse
import gzip
import json
import os
import platform
import resource
import struct
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F


def load_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_idx(data_dir, name):
    """The file of name (train-images-idx3-ubyte...) under the spellings
    fftrain accepts: raw or .gz, '-' or '.' before idx."""
    dotted = name.replace("-idx", ".idx")
    for candidate in (name + ".gz", name, dotted + ".gz", dotted):
        path = os.path.join(data_dir, candidate)
        if os.path.isfile(path):
            return path
    sys.exit(f"ff_torch.py: {data_dir}: no {name}[.gz] file found (expected MNIST-format "
             "IDX files; apt-get install dataset-fashion-mnist, or pass --data DIR)")


def load(data_dir, split, limit):
    x = load_idx(find_idx(data_dir, f"{split}-images-idx3-ubyte")).astype(np.float32) / 255.0
    y = load_idx(find_idx(data_dir, f"{split}-labels-idx1-ubyte")).astype(np.int64)
    if limit:
        x, y = x[:limit], y[:limit]
    return torch.from_numpy(x.reshape(len(x), -1).copy()), torch.from_numpy(y.copy())


def embed(x, labels, mode):
    if mode == "concat":
        return torch.cat([x, F.one_hot(labels, 10).float()], 1)
    out = x.clone()
    out[:, :10] = 0
    out[torch.arange(len(x)), labels] = x.max(1).values
    return out


class Body(torch.nn.Module):
    """L2 norm + Linear + ReLU."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.linear = torch.nn.Linear(n_in, n_out)

    def forward(self, x):
        return F.relu(self.linear(x / (x.norm(dim=1, keepdim=True) + 1e-8)))


def goodness(y, kind):
    return y.pow(2).mean(1) if kind == "mean" else y.pow(2).sum(1)


def train_ff(a, xtr, ytr, xte, yte):
    g = torch.Generator().manual_seed(a.seed)
    n, m = len(xtr), a.batch // 2
    neg = (ytr + 1 + torch.randint(0, 9, (n,), generator=g)) % 10
    pos_in, neg_in = embed(xtr, ytr, a.label), embed(xtr, neg, a.label)
    layers, width = [], pos_in.shape[1]
    t0 = time.time()
    for k in range(a.layers):
        layer = Body(width, a.hidden)
        opt = torch.optim.Adam(layer.parameters(), lr=a.lr)
        nb = (n + m - 1) // m
        for epoch in range(a.epochs):
            total = 0.0
            for b in torch.randperm(nb, generator=g).tolist():
                sl = slice(b * m, min(n, (b + 1) * m))
                y = layer(torch.cat([pos_in[sl], neg_in[sl]]))
                gd = goodness(y, a.goodness)
                half = sl.stop - sl.start
                loss = F.softplus(-(gd[:half] - a.theta)).mean() + F.softplus(gd[half:] - a.theta).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
            if not a.quiet:
                print(f"layer {k + 1} epoch {epoch + 1} loss {total / nb:.4f}", flush=True)
        with torch.no_grad():
            pos_in, neg_in = layer(pos_in), layer(neg_in)
        layers.append(layer)
        width = a.hidden
    train_s = time.time() - t0
    with torch.no_grad():
        scores = torch.zeros(len(xte), 10)
        for c in range(10):
            h = embed(xte, torch.full((len(xte),), c, dtype=torch.long), a.label)
            for k, layer in enumerate(layers):
                h = layer(h)
                if k > 0 or len(layers) == 1:
                    scores[:, c] += goodness(h, a.goodness) - a.theta
        acc = (scores.argmax(1) == yte).float().mean().item()
    return acc, train_s


def train_bp(a, xtr, ytr, xte, yte):
    g = torch.Generator().manual_seed(a.seed)
    width, mods = xtr.shape[1], []
    for _ in range(a.layers):
        mods.append(Body(width, a.hidden))
        width = a.hidden
    net = torch.nn.Sequential(*mods, torch.nn.Linear(width, 10))
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n, b = len(xtr), a.batch
    nb = (n + b - 1) // b
    t0 = time.time()
    for epoch in range(a.epochs):
        total = 0.0
        for i in torch.randperm(nb, generator=g).tolist():
            sl = slice(i * b, min(n, (i + 1) * b))
            loss = F.cross_entropy(net(xtr[sl]), ytr[sl])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
        if not a.quiet:
            print(f"epoch {epoch + 1} loss {total / nb:.4f}", flush=True)
    train_s = time.time() - t0
    with torch.no_grad():
        acc = (net(xte).argmax(1) == yte).float().mean().item()
    return acc, train_s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mode", choices=["ff", "bp"], default="ff")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--hidden", type=int, default=500)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--theta", type=float, default=2.0)
    p.add_argument("--goodness", choices=["mean", "sum"], default="mean")
    p.add_argument("--label", choices=["concat", "overlay"], default="concat")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--train-limit", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", help="write the result as JSON to FILE (atomically)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    a = p.parse_args()
    for name in ("layers", "hidden", "epochs", "batch", "threads"):
        if getattr(a, name) < 1:
            p.error(f"--{name}: {getattr(a, name)} is out of range, expected at least 1")
    if not (0 < a.lr <= 10):
        p.error(f"--lr: {a.lr} is out of range, expected a number in (0, 10]")
    if a.mode == "ff" and a.batch % 2:
        p.error(f"--batch: {a.batch} is odd, FF needs an even count (half positive, half negative)")
    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    xtr, ytr = load(a.data, "train", a.train_limit)
    xte, yte = load(a.data, "t10k", a.test_limit)
    mean, std = xtr.mean(), xtr.std(unbiased=False)
    xtr, xte = (xtr - mean) / std, (xte - mean) / std
    perm = torch.randperm(len(xtr), generator=torch.Generator().manual_seed(a.seed))
    xtr, ytr = xtr[perm], ytr[perm]
    t0 = time.time()
    acc, secs = (train_ff if a.mode == "ff" else train_bp)(a, xtr, ytr, xte, yte)
    eval_s = max(0.0, time.time() - t0 - secs)
    if not a.quiet:
        print(f"test accuracy {100 * acc:.2f}% train {secs:.1f} s")
    if a.json:
        write_json(a, {
            "mode": "torch-" + a.mode, "layers": a.layers, "hidden": a.hidden,
            "epochs": a.epochs, "batch": a.batch, "lr": a.lr, "theta": a.theta,
            "goodness": a.goodness, "label": a.label, "seed": str(a.seed),
            "train_limit": a.train_limit, "test_limit": a.test_limit, "threads": a.threads,
            "data": a.data, "train_samples": len(xtr), "test_samples": len(xte),
            "test_accuracy": acc, "train_seconds": secs, "eval_seconds": eval_s,
            # Linux reports ru_maxrss in KiB.
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            "torch_version": torch.__version__, "python_version": platform.python_version(),
        })


def write_json(a, result):
    """The result beside its final name, then renamed over it: a reader
    never sees half a file."""
    folder = os.path.dirname(os.path.abspath(a.json))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(a.json) + ".tmp.", dir=folder)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, a.json)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    main()
