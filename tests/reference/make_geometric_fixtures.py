"""Make e3nn reference fixtures for kerase3's reduced tensor products and Cartesian tensors.

Run by hand in a separate environment (the test suite never imports torch):

    python -m venv /tmp/ref && /tmp/ref/bin/pip install torch==2.13.0 e3nn==0.6.0 numpy
    /tmp/ref/bin/python tests/reference/make_geometric_fixtures.py

Writes tests/reference/geometric_e3nn.npz: for each case the formula and index irreps (JSON),
e3nn's irreps_out and change_of_basis, and for Cartesian tensors a random tensor with e3nn's
``from_cartesian`` of it and ``to_cartesian`` of random features, all float64.
"""

import json
import os

import numpy as np
import torch
from e3nn import io, o3

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
out = {}

RTP = [
    ("ij=ji", dict(i="1o")),
    ("ij=-ji", dict(i="1o")),
    ("ijk=jik", dict(i="1o", k="1o")),
    ("ijk=jki=kij", dict(i="1o")),
    ("ijkl=jikl=klij", dict(i="1o")),
    ("ijkl=jikl=ikjl=ijlk", dict(i="1e")),
    ("ij", dict(i="1o", j="0e+1e")),
    ("ijk=jik", dict(i="0e+1o", k="2e")),
    ("ij=ji", dict(i="2x0e+1o")),
]
for n, (formula, irreps) in enumerate(RTP):
    rtp = o3.ReducedTensorProducts(formula, **irreps)
    out[f"rtp{n}/config"] = np.array(json.dumps(dict(formula=formula, irreps=irreps)))
    out[f"rtp{n}/irreps_out"] = np.array(str(rtp.irreps_out))
    out[f"rtp{n}/change_of_basis"] = rtp.change_of_basis.numpy()

CARTESIAN = ["i", "ij", "ij=ji", "ij=-ji", "ijk=jik", "ijk=ikj", "ijk=jki=kij", "ijkl=jikl=klij", "ijkl=jikl=ijlk"]
for n, formula in enumerate(CARTESIAN):
    ct = io.CartesianTensor(formula)
    rank = len(ct.indices)
    t = torch.randn((4,) + (3,) * rank)
    x = torch.randn(4, ct.dim)
    out[f"ct{n}/formula"] = np.array(formula)
    out[f"ct{n}/irreps"] = np.array(str(o3.Irreps(ct)))
    out[f"ct{n}/tensor"] = t.numpy()
    out[f"ct{n}/from_cartesian"] = ct.from_cartesian(t).numpy()
    out[f"ct{n}/features"] = x.numpy()
    out[f"ct{n}/to_cartesian"] = ct.to_cartesian(x).numpy()

np.savez_compressed(os.path.join(os.path.dirname(os.path.abspath(__file__)), "geometric_e3nn.npz"), **out)
print(f"wrote {len(out)} arrays")
