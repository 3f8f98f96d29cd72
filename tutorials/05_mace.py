"""MACE and the NequIP-style Potential on the same data, a learning curve, and a mace-torch model
reproduced in Keras.

Data are made offline with ASE's EMT calculator: snapshots of Langevin dynamics (300-900 K) of a
16-atom fcc copper-gold alloy (a quarter of the sites gold, placed at random per trajectory).
Three models are trained with ``model.fit`` (XLA) for the same number of steps on 10 .. 1,000
training frames and scored on 200 held-out frames:

- ``MACE`` (16x0e + 16x1o, max_ell 2, correlation 3: four-body features per layer, 2 layers),
- ``Potential(lmax=2)`` (NequIP-style, two-body messages with equivariant features),
- ``Potential(lmax=0)`` (invariant: scalars only).

It prints held-out energy and force errors and training times side by side, writes the learning
curve (held-out force MAE against training frames, log-log) to ``tutorials/out/05_learning_curve.png``,
then loads a mace-torch ``ScaleShiftMACE`` from its weights (``tests/reference/mace_torch.npz``, made
by ``tests/reference/make_mace_fixtures.py``) and compares its energies with mace-torch's.

    pip install ase matplotlib
    python tutorials/05_mace.py            # about 12 minutes on 2 CPU cores
    python tutorials/05_mace.py --quick    # one training size, fewer steps
"""

import argparse
import json
import os
import time

import keras
import numpy as np
from ase.build import bulk

from _emt import emt_trajectory

from kerase3.graph import GraphDataset, batch_graphs, make_graphs, pad_batch
from kerase3.models import MACE, Potential

CUTOFF = 4.5
HERE = os.path.dirname(os.path.abspath(__file__))


def trajectory(temperature, n_frames, seed):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 2, 1))
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = "Au"
    atoms.set_chemical_symbols(symbols.tolist())
    return emt_trajectory(atoms, temperature, n_frames, rng, steps=4, fixcm=False)


def models():
    common = dict(species=[29, 79], cutoff=CUTOFF)
    return {
        "MACE": lambda: MACE(hidden_irreps="16x0e + 16x1o", max_ell=2, num_interactions=2, correlation=3, num_bessel=8,
                             radial_mlp=(32, 32), mlp_irreps="16x0e", **common),
        "Potential lmax=2": lambda: Potential(mul=16, lmax=2, num_interactions=2, radial_neurons=(32,), **common),
        "Potential lmax=0": lambda: Potential(mul=16, lmax=0, num_interactions=2, radial_neurons=(32,), **common),
    }


def evaluate(model, graphs):
    b = batch_graphs(graphs)
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]) + 1, len(graphs) + 1)
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    out = model.predict_on_batch(x)
    n_atoms = sum(len(g["atomic_numbers"]) for g in graphs)
    per_atom = np.array([len(g["atomic_numbers"]) for g in graphs])
    e = np.abs(np.asarray(out["energy"])[: len(graphs)] - b["energy"][: len(graphs)]) / per_atom
    f = np.abs(np.asarray(out["forces"])[:n_atoms] - b["forces"][:n_atoms])
    return 1000 * e.mean(), 1000 * f.mean()


def train(make, graphs, steps, batch_size=8):
    keras.utils.set_random_seed(0)
    model = make()
    model.fit_statistics(graphs)
    ds = GraphDataset(graphs, batch_size=min(batch_size, len(graphs)), shuffle=True, seed=0)
    epochs = max(1, int(np.ceil(steps / len(ds))))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, epochs * len(ds))),
                  jit_compile=True)
    t = time.time()
    model.fit(ds.dataset(), epochs=epochs, verbose=0)
    return model, time.time() - t


def reproduce_mace_torch():
    path = os.path.join(HERE, "..", "tests", "reference", "mace_torch.npz")
    if not os.path.exists(path):
        print("(no mace-torch weights here: run tests/reference/make_mace_fixtures.py in a mace-torch venv)")
        return
    from kerase3.graph import graph_from_arrays
    from kerase3.interop import mace

    fix = np.load(path)
    meta = json.loads(str(fix["meta"]))
    print(f"\nmace-torch {meta['mace_version']} models loaded with kerase3.interop.mace.load (float64):")
    print("| model | structure | mace-torch energy eV | kerase3 energy eV | |dE| eV | max |dF| eV/A |")
    print("|---|---|---|---|---|---|")
    for case in meta["models"]:
        model = mace.load({k: fix[v] for k, v in case["state"].items()}, case["config"], dtype="float64")
        for s in case["structures"]:
            cell = fix[s["cell"]] if s["pbc"] else None
            g = graph_from_arrays(fix[s["positions"]], np.array(s["numbers"]), model.cutoff, cell, [True] * 3 if s["pbc"] else None)
            b = batch_graphs([g])
            out = model(pad_batch(b, len(s["numbers"]) + 1, len(b["senders"]) + 1, 2))
            e = float(np.asarray(out["energy"])[0])
            df = np.abs(np.asarray(out["forces"])[: len(s["numbers"])] - fix[s["forces"]]).max()
            print(f"| {case['name']} | {s['name']} | {s['energy']:.6f} | {e:.6f} | {abs(e - s['energy']):.1e} | {df:.1e} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [30] if args.quick else [10, 100, 1000]
    steps = 100 if args.quick else 400
    t0 = time.time()
    n_traj = 12 if not args.quick else 3
    frames = sum((trajectory(300 + 600 * (s % 4) / 3, 100, s) for s in range(n_traj)), [])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frames))
    test = make_graphs([frames[i] for i in order[:200]], CUTOFF)
    pool = [frames[i] for i in order[200:]]
    print(f"data: {len(frames)} EMT frames of {len(frames[0])} atoms (CuAu), {len(test)} held out ({time.time() - t0:.0f} s)")

    results = {name: [] for name in models()}
    for n in sizes:
        graphs = make_graphs(pool[:n], CUTOFF)
        for name, make in models().items():
            model, seconds = train(make, graphs, steps)
            e_mae, f_mae = evaluate(model, test)
            results[name].append((n, e_mae, f_mae, seconds))
            print(f"  {n:5d} frames  {name:18s} energy MAE {e_mae:6.2f} meV/atom  force MAE {f_mae:6.1f} meV/A  "
                  f"({seconds:.0f} s, {steps} steps)", flush=True)

    print(f"\nheld-out errors after {steps} steps (batch 8) on {sizes[-1]} training frames:")
    print("| model | energy MAE meV/atom | force MAE meV/A | training s |")
    print("|---|---|---|---|")
    for name, rows in results.items():
        n, e, f, s = rows[-1]
        print(f"| {name} | {e:.2f} | {f:.1f} | {s:.0f} |")
    if len(sizes) > 1:
        print("\nlearning curve, held-out force MAE meV/A:")
        print("| training frames | " + " | ".join(results) + " |")
        print("|---" * (len(results) + 1) + "|")
        for k, n in enumerate(sizes):
            print(f"| {n} | " + " | ".join(f"{rows[k][2]:.1f}" for rows in results.values()) + " |")
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5, 4))
            for name, rows in results.items():
                ax.loglog([r[0] for r in rows], [r[2] for r in rows], "o-", label=name)
            ax.set_xlabel("training frames")
            ax.set_ylabel("held-out force MAE (meV/A)")
            ax.set_title(f"EMT CuAu, {steps} Adam steps per point")
            ax.legend()
            os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
            png = os.path.join(HERE, "out", "05_learning_curve.png")
            fig.tight_layout()
            fig.savefig(png, dpi=120)
            print(f"wrote {png}")
        except ImportError:
            print("(pip install matplotlib for the PNG)")
    reproduce_mace_torch()
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
