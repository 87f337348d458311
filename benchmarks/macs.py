#!/usr/bin/python3
"""Nominal multiply-accumulates (MACs) of one forward pass of each bench case, counted on the PyTorch reference.

Usage::

    /usr/bin/python3 benchmarks/macs.py [--reference DIR] [--cases FILE]

Prints ``name module GMAC`` per case of ``bench_cases.json``. Counted, from the shapes of one forward pass of the
reference module (``shared/reference/torch_plugins.py``) on the case's inputs:

* every convolution (``F.conv2d``, which ``nn.Conv2d`` calls): ``out.numel() * in/groups * kH * kW``;
* every ``F.linear``: ``out.numel() * in_features``;
* every ``torch.bmm`` / ``torch.matmul`` / ``torch.mm``: ``m * n * k`` per batch entry;
* torchvision's ``deform_conv2d``: as the convolution it generalises (the bilinear sampling is not counted).

Not counted: BatchNorm, activations, pooling, resizing, element-wise products and sums (as in the usual
"FLOPs = 2 x MACs" of conv-net papers). FLOPs of a forward = 2 x MACs; of forward + backward = 3 x that
(the backward computes input and weight gradients, each as costly as the forward). compare.sh divides these by
both sides' times, so DL4J and PyTorch are credited with the same work. Python is only needed for benchmarks.
"""

import argparse
import json
import os
import sys

import torch
import torch.nn.functional as F


def count_macs(run):
    """MACs of the calls ``run()`` makes (under ``no_grad``), by the rules above."""
    macs = [0]
    saved = {}

    def patch(owner, name, fn):
        original = getattr(owner, name)
        saved[(owner, name)] = original

        def wrapper(*args, **kwargs):
            out = original(*args, **kwargs)
            macs[0] += fn(out, *args, **kwargs)
            return out
        setattr(owner, name, wrapper)

    def conv(out, x, weight, *args, **kwargs):
        return out.numel() * weight[0].numel()

    def linear(out, x, weight, *args, **kwargs):
        return out.numel() * weight.shape[-1]

    def matmul(out, a, b, *args, **kwargs):
        return out.numel() * a.shape[-1]

    patch(F, "conv2d", conv)
    patch(F, "linear", linear)
    for name in ("bmm", "matmul", "mm"):
        patch(torch, name, matmul)
    try:
        import torchvision.ops
        patch(torchvision.ops, "deform_conv2d", lambda out, x, offset, weight, *a, **k: out.numel() * weight[0].numel())
    except ImportError:
        pass
    try:
        with torch.no_grad():
            run()
    finally:
        for (owner, name), original in saved.items():
            setattr(owner, name, original)
    return macs[0]


def count(case, tp):
    module = tp.build_module(case["module"], case.get("args", {})).float().train()
    inputs = [torch.randn(*shape) for shape in case["inputs"]]
    return count_macs(lambda: tp.run_module(module, inputs))


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reference", default=os.environ.get("REFERENCE", os.path.join(here, "..", "..", "shared", "reference")))
    p.add_argument("--cases", default=None)
    a = p.parse_args()
    sys.path.insert(0, os.path.abspath(a.reference))
    import torch_plugins as tp
    torch.manual_seed(0)
    cases = json.load(open(a.cases or os.path.join(a.reference, "bench_cases.json")))
    print("# nominal MACs of one forward (benchmarks/macs.py): convolutions, linear layers, matrix products, "
          "deformable convolutions")
    print(f"{'name':22s} {'module':20s} {'GMAC':>10s}")
    for case in cases:
        print(f"{case['name']:22s} {case['module']:20s} {count(case, tp) / 1e9:10.4f}")


if __name__ == "__main__":
    main()
