"""Train an interatomic potential on copper, then run molecular dynamics with it.

Data are made offline with ASE's EMT calculator: NVT (Langevin) trajectories of a 2x2x2 fcc
copper cell with one vacancy, at 300 K, 600 K and 900 K. A small `Potential` is trained on
energies and forces with ``model.fit`` (XLA), evaluated on held-out frames, and used as an
ASE calculator for a short NVE run whose energy drift is reported.

    pip install ase
    python tutorials/02_potential.py        # a few minutes on 2 CPU cores
"""

import time

import keras
import numpy as np
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
from ase.md.verlet import VelocityVerlet

from _emt import emt_trajectory

from kerase3.graph import GraphDataset, batch_graphs, make_graphs, pad_batch
from kerase3.io.ase import Calculator
from kerase3.models import Potential

CUTOFF = 4.0


def trajectory(temperature, n_frames, seed):
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 2, 2))
    del atoms[0]  # a vacancy
    return emt_trajectory(atoms, temperature, n_frames, seed)


def main():
    keras.utils.set_random_seed(0)
    t0 = time.time()
    frames = sum((trajectory(T, 40, seed) for seed, T in enumerate([300, 600, 900])), [])
    rng = np.random.default_rng(0)
    order = rng.permutation(len(frames))
    train = [frames[i] for i in order[:96]]
    test = [frames[i] for i in order[96:]]
    g_train, g_test = make_graphs(train, CUTOFF), make_graphs(test, CUTOFF)
    print(f"data: {len(train)} training and {len(test)} test frames of {len(frames[0])} atoms ({time.time() - t0:.0f} s)")

    model = Potential([29], cutoff=CUTOFF, mul=16, lmax=1, num_interactions=2, number_of_basis=8, radial_neurons=(32,),
                      forces_weight=20.0)
    stats = model.fit_statistics(g_train)
    print(f"per-species energy shift {stats['energy_shift'][0]:.3f} eV, scale {stats['energy_scale']:.3f}, "
          f"{stats['avg_num_neighbors']:.1f} neighbours per atom")
    ds = GraphDataset(g_train, batch_size=8)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(1e-2, 40 * len(ds))),
                  jit_compile=True)
    t0 = time.time()
    model.fit(ds.dataset(), epochs=40, verbose=0)
    print(f"trained 40 epochs in {time.time() - t0:.0f} s")

    # held-out errors
    b = batch_graphs(g_test)
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), len(g_test) + 1)
    x = {k: (v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    out = model(x)
    n = len(frames[0])
    e_mae = np.mean(np.abs(np.asarray(out["energy"])[: len(g_test)] - b["energy"][: len(g_test)])) / n
    f_mae = np.mean(np.abs(np.asarray(out["forces"])[: len(g_test) * n] - b["forces"][: len(g_test) * n]))
    f_scale = np.mean(np.abs(b["forces"][: len(g_test) * n]))
    print(f"test energy MAE {1000 * e_mae:.1f} meV/atom, force MAE {1000 * f_mae:.0f} meV/A "
          f"(mean |force| {1000 * f_scale:.0f} meV/A)")

    # NVE molecular dynamics with the trained model
    atoms = test[0].copy()
    atoms.calc = Calculator(model)
    MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(1))
    dyn = VelocityVerlet(atoms, 1 * units.fs)
    energies = []
    dyn.attach(lambda: energies.append(atoms.get_total_energy()), interval=10)
    t0 = time.time()
    dyn.run(300)
    drift = (energies[-1] - energies[0]) / len(atoms)
    spread = (max(energies) - min(energies)) / len(atoms)
    print(f"NVE, 300 steps of 1 fs in {time.time() - t0:.0f} s: total-energy drift {1000 * drift:+.2f} meV/atom "
          f"(fluctuation {1000 * spread:.2f} meV/atom)")


if __name__ == "__main__":
    main()
