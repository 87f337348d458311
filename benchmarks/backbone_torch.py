#!/usr/bin/python3
"""What a plug-in costs inside a backbone, in PyTorch: the twin of ``bin/plugins backbone``.

Usage::

    /usr/bin/python3 benchmarks/backbone_torch.py [--blocks 3] [--channels 256] [--size 56] [--batch 8]
                                                  [--threads 2] [--runs 5] [--warmup 2] [--reference DIR]

A ResNet stage of bottleneck blocks (conv1x1 -> BN -> ReLU -> conv3x3 -> BN -> ReLU -> conv1x1 -> BN, identity
shortcut, ReLU after the addition; ResNet-50's conv2_x at the defaults), plain, with ``SEBlock`` (reduction 16) and
with ``CBAM`` (reduction 16, 7x7) from ``shared/reference/torch_plugins.py`` on each block's residual branch before
the addition, as in SE-ResNet / CBAM-ResNet. Float32, train mode; the variants are timed interleaved (so a change
in background load hits all of them) and the medians printed: ``fwd`` under ``no_grad``, ``fwd+bwd`` = forward +
``backward`` of a fixed random upstream gradient. Also printed: trainable parameters and nominal MACs of one
forward (``benchmarks/macs.py``'s rules: convolutions, linear layers, matrix products).
"""

import argparse
import ctypes
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from macs import count_macs   # benchmarks/macs.py, beside this script


class Bottleneck(nn.Module):
    def __init__(self, channels, plugin):
        super().__init__()
        mid = channels // 4
        self.conv1 = nn.Conv2d(channels, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels)
        self.plugin = plugin if plugin is not None else nn.Identity()

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)))
        y = self.plugin(self.bn3(self.conv3(y)))
        return F.relu(y + x)


def stage(variant, blocks, channels, tp):
    def plugin():
        if variant == "se":
            return tp.SEBlock(channels, reduction=16)
        if variant == "cbam":
            return tp.CBAM(channels, reduction=16, spatial_kernel=7)
        return None
    return nn.Sequential(*[Bottleneck(channels, plugin()) for _ in range(blocks)]).float().train()


def tune_malloc():
    """As bench_torch.py: keep freed heap memory for reuse (glibc only)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(-4, 0)) and bool(libc.mallopt(-1, 2 ** 31 - 1))


def busy_seconds():
    with open("/proc/stat") as fh:
        f = [int(v) for v in fh.readline().split()[1:]] + [0] * 8
    return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) / os.sysconf("SC_CLK_TCK")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--blocks", type=int, default=3)
    p.add_argument("--channels", type=int, default=256)
    p.add_argument("--size", type=int, default=56)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--variants", default="plain,se,cbam")
    p.add_argument("--reference", default=os.environ.get("REFERENCE", os.path.join(here, "..", "..", "shared", "reference")))
    a = p.parse_args()
    tune_malloc()
    sys.path.insert(0, os.path.abspath(a.reference))
    import torch_plugins as tp
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    variants = a.variants.split(",")
    nets = [stage(v, a.blocks, a.channels, tp) for v in variants]
    x = torch.randn(a.batch, a.channels, a.size, a.size)
    upstream = torch.randn(a.batch, a.channels, a.size, a.size)
    macs = [count_macs(lambda: n(x)) for n in nets]
    fwd = [[] for _ in variants]
    fb = [[] for _ in variants]
    t0, busy0, own0 = time.perf_counter(), busy_seconds(), sum(os.times()[:2])
    for r in range(a.warmup + a.runs):
        for i, net in enumerate(nets):
            s = time.perf_counter()
            with torch.no_grad():
                net(x)
            m = time.perf_counter()
            xg = x.clone().requires_grad_(True)
            net.zero_grad(set_to_none=True)
            net(xg).backward(upstream)
            e = time.perf_counter()
            if r >= a.warmup:
                fwd[i].append((m - s) * 1e3)
                fb[i].append((e - m) * 1e3)
    wall = time.perf_counter() - t0
    bg = max(0.0, 100 * ((busy_seconds() - busy0) - (sum(os.times()[:2]) - own0)) / (wall * len(os.sched_getaffinity(0))))
    print(f"# torch {torch.__version__}, threads {torch.get_num_threads()}")
    print(f"# stage: {a.blocks} bottleneck blocks, {a.channels} channels (bottleneck {a.channels // 4}), input "
          f"{a.batch}x{a.channels}x{a.size}x{a.size}, float32, train mode; medians of {a.runs} rounds after "
          f"{a.warmup} warm-up, variants interleaved; fwd under no_grad, fwd+bwd = forward + backward(upstream)")
    print(f"{'variant':8s} {'params':>12s} {'GMAC':>10s} {'fwd ms':>10s} {'fwd+bwd ms':>11s} {'bg%':>5s}")
    for i, v in enumerate(variants):
        params = sum(q.numel() for q in nets[i].parameters())
        print(f"{v:8s} {params:12d} {macs[i] / 1e9:10.4f} {statistics.median(fwd[i]):10.2f} "
              f"{statistics.median(fb[i]):11.2f} {bg:5.1f}")


if __name__ == "__main__":
    main()
