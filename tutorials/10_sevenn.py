"""A pretrained universal potential in Keras: SevenNet-0 out of the box, then fine-tuned.

SevenNet-0 (89 elements, trained on the Materials Project's PBE relaxations) is loaded from the
``sevenn`` wheel without torch (``kerase3.interop.sevenn.load("7net-0")``; the wheel is fetched
with ``pip download --no-deps`` into kerase3's cache when sevenn is not installed). It is an
ordinary kerase3 ``Potential``:

1. Out of the box, through ``kerase3.io.ase.Calculator``: a copper cell relaxed (positions and
   cell), an equation of state of fcc copper, 200 fs of NVE molecular dynamics (energy drift).
2. Fine-tuned on another level of theory made offline: ASE's EMT for a 16-atom copper-gold
   alloy (Langevin frames, 300-900 K). On 10 / 30 / 100 / 300 training frames, for the same
   number of Adam steps, scored on 100 held-out frames:

   - "7net-0 shifts only": the pretrained model with its per-element energies refitted to EMT's
     reference by least squares (``refit_energy_shifts``), no training;
   - "7net-0 fine-tuned": that model, every weight trained with a small learning rate
     (``with_species([29, 79])`` first: a 2-element embedding, the same numbers);
   - "7net-0 readout only": the interaction layers frozen (``model.encoder.trainable = False``);
   - "from scratch": the same architecture from random weights (``fit_statistics`` first).

It prints the tables and writes the learning curve to ``tutorials/out/10_learning_curve.png``.

    pip install ase matplotlib
    python tutorials/10_sevenn.py            # about 20 minutes on 2 CPU cores
    python tutorials/10_sevenn.py --quick    # 10 and 30 frames, fewer steps
"""

import argparse
import os
import time

import keras
import numpy as np
from ase import units
from ase.build import bulk
from ase.eos import EquationOfState
from ase.filters import FrechetCellFilter
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet
from ase.optimize import BFGS

from _emt import emt_trajectory

from kerase3.graph import GraphDataset, make_graphs
from kerase3.interop import sevenn
from kerase3.io.ase import Calculator
from kerase3.models import Potential

HERE = os.path.dirname(os.path.abspath(__file__))
SPECIES = [29, 79]


def pretrained(**kwargs):
    try:
        return sevenn.load("7net-0", **kwargs)
    except ValueError:  # neither sevenn installed nor its wheel in the cache
        sevenn.download()
        return sevenn.load("7net-0", **kwargs)


def out_of_the_box(model):
    calc = Calculator(model)
    print("1. SevenNet-0 out of the box (kerase3.io.ase.Calculator)")
    atoms = bulk("Cu", "fcc", a=3.50, cubic=True)
    atoms.rattle(0.05, seed=0)
    atoms.calc = calc
    t = time.time()
    opt = BFGS(FrechetCellFilter(atoms), logfile=None)
    opt.run(fmax=0.005, steps=200)
    a = np.cbrt(atoms.get_volume())
    print(f"   relaxed Cu (cell and positions, {opt.nsteps} BFGS steps, {time.time() - t:.1f} s): a = {a:.4f} A, "
          f"max force {np.abs(atoms.get_forces()).max():.1e} eV/A, max stress "
          f"{np.abs(atoms.get_stress()).max() / units.GPa:.3f} GPa")
    volumes, energies = [], []
    for x in np.linspace(0.94, 1.06, 9):
        cell = bulk("Cu", "fcc", a=a * x)
        cell.calc = calc
        volumes.append(cell.get_volume())
        energies.append(cell.get_potential_energy())
    v0, e0, b = EquationOfState(volumes, energies).fit()
    print(f"   equation of state (9 cells, Birch-Murnaghan): a0 = {np.cbrt(4 * v0):.4f} A, B = {b / units.GPa:.0f} GPa, "
          f"E0 = {e0:.4f} eV/atom")
    md = bulk("Cu", "fcc", a=a, cubic=True).repeat((2, 2, 2))
    md.calc = calc
    MaxwellBoltzmannDistribution(md, temperature_K=600, rng=np.random.default_rng(0))
    dyn = VelocityVerlet(md, 2 * units.fs)
    etot = []
    dyn.attach(lambda: etot.append(md.get_potential_energy() + md.get_kinetic_energy()), interval=5)
    t = time.time()
    dyn.run(100)
    print(f"   NVE, 32 atoms, 100 x 2 fs from 600 K ({time.time() - t:.1f} s, {100 / (time.time() - t):.1f} steps/s): "
          f"total energy drift {1000 * (etot[-1] - etot[0]) / len(md):+.3f} meV/atom, "
          f"fluctuation {1000 * np.std(etot) / len(md):.3f} meV/atom, T = {md.get_temperature():.0f} K")


def trajectory(temperature, n_frames, seed):
    rng = np.random.default_rng(seed)
    atoms = bulk("Cu", "fcc", a=3.75, cubic=True).repeat((2, 2, 1))
    symbols = np.array(atoms.get_chemical_symbols())
    symbols[rng.choice(len(atoms), len(atoms) // 4, replace=False)] = "Au"
    atoms.set_chemical_symbols(symbols.tolist())
    return emt_trajectory(atoms, temperature, n_frames, rng, steps=4, fixcm=False)


def evaluate(model, graphs, chunk=20):
    e_err, f_err = [], []
    for i in range(0, len(graphs), chunk):
        part = graphs[i:i + chunk]
        energies = model.predict_energies(part)
        e_err += [abs(e - g["energy"]) / len(g["atomic_numbers"]) for e, g in zip(energies, part)]
        from kerase3.graph import batch_graphs

        out = model(batch_graphs(part))
        f_err.append(np.abs(np.asarray(out["forces"]) - np.concatenate([g["forces"] for g in part])).ravel())
    return 1000 * float(np.mean(e_err)), 1000 * float(np.mean(np.concatenate(f_err)))


def variants(base_state):
    """name -> (make model for the training graphs, peak learning rate)."""
    def pretrained_copy(graphs, freeze=False):
        model = sevenn.load(base_state, compute_stress=False).with_species(SPECIES)
        model.refit_energy_shifts(graphs)
        model.encoder.trainable = not freeze
        return model

    def scratch(graphs):
        keras.utils.set_random_seed(0)
        opts = sevenn.model_options(base_state[1], base_state[0])
        opts["species"] = SPECIES
        model = Potential(**opts)
        model.fit_statistics(graphs)
        return model

    return {
        "7net-0 fine-tuned": (lambda g: pretrained_copy(g), 2e-4),
        "7net-0 readout only": (lambda g: pretrained_copy(g, freeze=True), 5e-4),
        "from scratch": (scratch, 2e-3),
    }


def train(model, graphs, lr, steps, batch_size=4):
    ds = GraphDataset(graphs, batch_size=min(batch_size, len(graphs)), shuffle=True, seed=0)
    epochs = max(1, int(np.ceil(steps / len(ds))))
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, epochs * len(ds))),
                  jit_compile=True)
    t = time.time()
    model.fit(ds.dataset(), epochs=epochs, verbose=0)
    return time.time() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = [10, 30] if args.quick else [10, 30, 100, 300]
    steps = 30 if args.quick else 100
    t0 = time.time()
    model = pretrained()
    print(f"SevenNet-0 loaded without torch in {time.time() - t0:.1f} s: {len(model.species)} elements, "
          f"{model.count_params():,} weights, cutoff {model.cutoff} A\n")
    out_of_the_box(model)

    t = time.time()
    frames = sum((trajectory(300 + 600 * (s % 4) / 3, 50, s) for s in range(8)), [])
    order = np.random.default_rng(0).permutation(len(frames))
    test = make_graphs([frames[i] for i in order[:100]], model.cutoff, progress=False)
    pool = [frames[i] for i in order[100:]]
    print(f"\n2. Fine-tuning on EMT: {len(frames)} frames of {len(frames[0])} atoms (Cu12Au4), "
          f"{len(test)} held out ({time.time() - t:.0f} s)")
    base_state = sevenn.read("7net-0")
    results = {"7net-0 shifts only": []}
    results.update({name: [] for name in variants(base_state)})
    for n in sizes:
        graphs = make_graphs(pool[:n], model.cutoff, progress=False)
        zero_shot = sevenn.load(base_state, compute_stress=False).with_species(SPECIES)
        zero_shot.refit_energy_shifts(graphs)
        e_mae, f_mae = evaluate(zero_shot, test)
        results["7net-0 shifts only"].append((n, e_mae, f_mae, 0.0))
        print(f"  {n:4d} frames  {'7net-0 shifts only':20s} energy MAE {e_mae:7.2f} meV/atom  force MAE {f_mae:6.1f} meV/A")
        for name, (make, lr) in variants(base_state).items():
            m = make(graphs)
            seconds = train(m, graphs, lr, steps)
            e_mae, f_mae = evaluate(m, test)
            results[name].append((n, e_mae, f_mae, seconds))
            print(f"  {n:4d} frames  {name:20s} energy MAE {e_mae:7.2f} meV/atom  force MAE {f_mae:6.1f} meV/A  "
                  f"({seconds:.0f} s, {steps} steps)", flush=True)

    print(f"\nlearning curve on {len(test)} held-out EMT frames ({steps} Adam steps of 4 frames per point); "
          "energy MAE meV/atom / force MAE meV/A:")
    print("| training frames | " + " | ".join(results) + " |")
    print("|---" * (len(results) + 1) + "|")
    for k, n in enumerate(sizes):
        print(f"| {n} | " + " | ".join(f"{rows[k][1]:.1f} / {rows[k][2]:.0f}" for rows in results.values()) + " |")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
        for name, rows in results.items():
            for ax, col in zip(axes, (1, 2)):
                ax.loglog([r[0] for r in rows], [r[col] for r in rows], "o-", label=name)
        axes[0].set_ylabel("held-out energy MAE (meV/atom)")
        axes[1].set_ylabel("held-out force MAE (meV/A)")
        for ax in axes:
            ax.set_xlabel("training frames (EMT, Cu12Au4)")
        axes[1].legend(fontsize=8)
        fig.suptitle(f"SevenNet-0 fine-tuned vs the same model from scratch, {steps} steps per point")
        os.makedirs(os.path.join(HERE, "out"), exist_ok=True)
        png = os.path.join(HERE, "out", "10_learning_curve.png")
        fig.tight_layout()
        fig.savefig(png, dpi=110)
        print(f"wrote {png}")
    except ImportError:
        print("(pip install matplotlib for the PNG)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
