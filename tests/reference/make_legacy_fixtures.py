"""Fixtures of tests/models/test_legacy.py: models saved by kerase3 0.1 (before the models floor
was redesigned) and their outputs, made by that version.

    git worktree add /tmp/kerase3-0.1 c997360
    PYTHONPATH=/tmp/kerase3-0.1 python tests/reference/make_legacy_fixtures.py

Writes tests/reference/legacy_0_1/{potential,mace,gated,hamiltonian}.keras and outputs.npz.
"""

import os

import numpy as np

import kerase3
from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
from kerase3.io import OrbitalBasis
from kerase3.models import MACE, GatedConvNetwork, HamiltonianModel, Potential

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "legacy_0_1")
WATER = (np.array([[0.0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]), [8, 1, 1])


def batch(extra=None):
    cell = np.array([[3.2, 0.1, 0.0], [0.0, 2.9, 0.2], [0.3, 0.0, 3.1]])
    frac = np.random.default_rng(3).uniform(0, 1, (4, 3))
    gs = [graph_from_arrays(*WATER, 3.0), graph_from_arrays(frac @ cell, [8, 1, 1, 8], 3.0, cell, [True] * 3)]
    for g in gs:
        g.update(extra(len(g["atomic_numbers"])) if extra else {})
    b = batch_graphs(gs)
    return pad_batch(b, len(b["atomic_numbers"]) + 2, len(b["senders"]) + 3, 3)


def main():
    assert not hasattr(kerase3, "FLOORS"), "run this with kerase3 0.1 (see the docstring)"
    os.makedirs(OUT, exist_ok=True)
    basis = OrbitalBasis({8: [0, 0, 1], 1: [0]}, "pyscf")
    models = dict(
        potential=Potential([1, 8], 3.0, mul=4, lmax=2, layers=2, number_of_basis=4, radial_neurons=(8,), avg_num_neighbors=3.5,
                            compute_stress=True, dtype="float64"),
        mace=MACE([1, 8], 3.0, hidden_irreps="4x0e + 4x1o", max_ell=2, radial_mlp=(8,), num_bessel=4, correlation=2,
                  avg_num_neighbors=2.5, atomic_energies=[-1.0, -2.0], scale=1.5, shift=0.1, dtype="float64"),
        gated=GatedConvNetwork("0e + 1o", "1o + 0e", mul=4, lmax=1, layers=2, max_radius=3.0, num_neighbors=2.0,
                               number_of_basis=4, radial_neurons=(8,), dtype="float64"),
        hamiltonian=HamiltonianModel(basis, cutoff=3.0, mul=4, layers=1, number_of_basis=4, radial_neurons=(8,), mul_pair=4,
                                     avg_num_neighbors=2.0, dtype="float64"),
    )
    rng = np.random.default_rng(0)
    outputs = {}
    for name, model in models.items():
        model.build()
        for w in model.weights:
            w.assign(rng.normal(scale=0.5, size=w.shape).astype(w.dtype))
        model.save(os.path.join(OUT, f"{name}.keras"))
        if name == "gated":
            x = batch(lambda n: dict(node_features=np.random.default_rng(n).normal(size=(n, 4))))
        elif name == "hamiltonian":
            x = batch(lambda n: dict(orbital_mask=np.ones(7)))
        else:
            x = batch()
        out = model(x)
        for k, v in (out.items() if isinstance(out, dict) else [("output", out)]):
            outputs[f"{name}/{k}"] = np.asarray(v)
    np.savez(os.path.join(OUT, "outputs.npz"), **outputs)
    print(sorted(outputs))


if __name__ == "__main__":
    main()
