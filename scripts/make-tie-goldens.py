#!/usr/bin/env python3
"""Golden cases whose inputs have exact ties (run like scripts/make-goldens.sh: Debian's python3-torch).

make_goldens.py draws standard-normal inputs, where two equal maxima never occur. After a ReLU they do: a pixel
whose channels are all 0 has C equal channel maxima, and quantised activations repeat their maximum over the
pixels. PyTorch sends the gradient of ``torch.max(x, dim)`` and ``adaptive_max_pool2d`` to one element (the first),
so these cases pin that behaviour down for the plug-ins with max reductions (CBAM).

    /usr/bin/python3 scripts/make-tie-goldens.py [REFERENCE_DIR]
"""
import os
import sys

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
ref = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "..", "..", "shared", "reference")
sys.path.insert(0, ref)
import make_goldens as mg  # noqa: E402

CASES = [
    {"name": "cbam_ties_c16_r4_k3", "module": "CBAM", "seed": 907,
     "args": {"channels": 16, "reduction": 4, "spatial_kernel": 3}, "inputs": [[2, 16, 6, 5]]},
]

_default_rng = np.random.default_rng


class _TiedInputRng:
    """The generator make_case uses, except that the input it draws is ReLU'd, quantised to 0.5 and has a 2x3 block
    of pixels that are 0 in every channel."""

    def __init__(self, seed, input_shape):
        self._rng = _default_rng(seed)
        self._input_shape = tuple(input_shape)

    def standard_normal(self, shape):
        v = self._rng.standard_normal(shape)
        if tuple(shape) == self._input_shape:
            v = np.maximum(np.round(v * 2) / 2, 0.0)
            v[:, :, 1:3, 1:4] = 0.0
        return v

    def __getattr__(self, name):
        return getattr(self._rng, name)


def main():
    torch.set_default_dtype(torch.float64)
    out = os.path.join(here, "..", "modules", "plugins", "src", "test", "resources", "goldens")
    for case in CASES:
        np.random.default_rng = lambda seed, c=case: _TiedInputRng(seed, c["inputs"][0])
        try:
            path, shape = mg.make_case(case, out)
        finally:
            np.random.default_rng = _default_rng
        print(f"{case['name']:<32s} {case['module']:<20s} out={shape}  {os.path.getsize(path) / 1024:8.1f} KiB")


if __name__ == "__main__":
    main()
