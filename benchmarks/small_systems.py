"""Small systems as molecular dynamics sees them: calls per second of energy + forces at 32, 108
and 256 atoms, through the consumers users drive, against e3nn-jax and mace-torch in the same run.

    python benchmarks/small_systems.py [--sizes 32 108 256] [--calls 40] [--impl ...]
                                       [--mace-python /path/to/venv-mace/bin/python]

Cells: fcc copper (a = 3.61 A, rattled by 0.05 A); every call moves the atoms by 0.01 A (a
step of a trajectory), so neighbour lists and padding are part of the time, as in MD. Each
implementation runs in its own process; the number is the median of ``--calls`` steady calls after
the first (compilation and warm-up excluded), float32, all cores.

- ``potential-ase``: the default `Potential` of ``benchmarks/potential.py`` (32x0e+32x1o+32x2e,
  lmax 2, 3 layers, cutoff 5 A) through `kerase3.io.ase.Calculator`;
- ``potential-lammps``: the same model driving LAMMPS: ``fix external``
  (`kerase3.io.lammps.LammpsPotential`, one rank) and ``pair_style kerase3`` (the C++ plugin,
  `kerase3.io.lammps.export_for_lammps`, one rank, ``xla yes``), MD steps per second of NVE
  from 300 K (LAMMPS's loop time);
- ``mace-ase``: `MACE` with ``benchmarks/mace.py``'s configuration (64x0e+64x1o, max_ell 3,
  correlation 3, 2 layers, r_max 5) through `kerase3.io.ase.Calculator`;
- ``e3nn-jax``: ``benchmarks/potential.py``'s e3nn-jax model of the same architecture as
  ``potential-ase``, its ``jax.jit`` energy + forces called with moved positions on the first
  call's neighbour list (its neighbour search is not in its time: a lower bound for it);
- ``mace-torch``: mace-torch's own ``MACECalculator`` (same configuration, random weights) in its
  venv (``--mace-python``).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from _common import run_children

MACE_CHILD = r'''
import json, sys, time, tempfile, os, numpy as np, torch
from ase.build import bulk
from e3nn import o3
from mace.calculators import MACECalculator
from mace.modules import interaction_classes
from mace.modules.models import ScaleShiftMACE
torch.set_num_threads(os.cpu_count())
torch.set_default_dtype(torch.float32)
cfg, sizes, calls = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
torch.manual_seed(0)
kw = dict(cfg)
kw["interaction_cls"] = kw["interaction_cls_first"] = interaction_classes[kw.pop("interaction")]
kw["hidden_irreps"], kw["MLP_irreps"] = o3.Irreps(kw["hidden_irreps"]), o3.Irreps(kw["MLP_irreps"])
kw["gate"], kw["atomic_energies"], kw["num_elements"] = torch.nn.functional.silu, np.array(kw["atomic_energies"]), 1
path = os.path.join(tempfile.mkdtemp(), "mace.model")
torch.save(ScaleShiftMACE(**kw), path)
calc = MACECalculator(model_paths=path, device="cpu", default_dtype="float32")
for n in sizes:
    k = round((n / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((k, k, k))
    atoms.rattle(0.05, seed=0)
    atoms.calc = calc
    rng = np.random.default_rng(0)
    t = time.perf_counter(); atoms.get_forces(); first = time.perf_counter() - t
    ts = []
    for _ in range(calls):
        atoms.positions += rng.normal(scale=0.01, size=atoms.positions.shape)
        t = time.perf_counter(); atoms.get_forces(); ts.append(time.perf_counter() - t)
    print(json.dumps(dict(impl="mace-torch", atoms=len(atoms), call_s=float(np.median(ts)), first_s=first)), flush=True)
'''


def cell(n):
    from ase.build import bulk

    k = round((n / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((k, k, k))
    atoms.rattle(0.05, seed=0)
    return atoms


def _steady(call, atoms, calls):
    """``(median seconds of a call after moving the atoms, seconds of the first call)``."""
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    call(atoms)
    first = time.perf_counter() - t
    ts = []
    for _ in range(calls):
        atoms.positions = atoms.positions + rng.normal(scale=0.01, size=atoms.positions.shape)
        t = time.perf_counter()
        call(atoms)
        ts.append(time.perf_counter() - t)
    return statistics.median(ts), first


def _default_potential():
    from potential import CUTOFF, LAYERS, LMAX, MUL

    from kerase3.models import Potential

    return Potential([29], cutoff=CUTOFF, mul=MUL, lmax=LMAX, num_interactions=LAYERS, number_of_basis=8,
                     radial_neurons=(64,), avg_num_neighbors=40.0)


def _calculator_child(model, sizes, calls, impl):
    from kerase3.io.ase import Calculator

    calc = Calculator(model)

    def call(atoms):
        atoms.calc = calc
        calc.reset()
        atoms.get_forces()

    for n in sizes:
        atoms = cell(n)
        s, first = _steady(call, atoms, calls)
        print(json.dumps(dict(impl=impl, atoms=len(atoms), call_s=s, first_s=first)), flush=True)


def run_potential_ase(sizes, calls):
    _calculator_child(_default_potential(), sizes, calls, "potential-ase")


def run_mace_ase(sizes, calls):
    from mace import CONFIG

    from kerase3.models import MACE

    kw = dict(CONFIG)
    model = MACE([29], cutoff=kw["r_max"], num_bessel=kw["num_bessel"], num_polynomial_cutoff=kw["num_polynomial_cutoff"],
                 max_ell=kw["max_ell"], num_interactions=kw["num_interactions"], hidden_irreps=kw["hidden_irreps"],
                 mlp_irreps=kw["MLP_irreps"], correlation=kw["correlation"], radial_mlp=kw["radial_MLP"],
                 avg_num_neighbors=kw["avg_num_neighbors"], atomic_energies=kw["atomic_energies"])
    _calculator_child(model, sizes, calls, "mace-ase")


def run_potential_lammps(sizes, calls):
    from ase.io import write

    from kerase3.io.lammps import LammpsPotential, build_plugin, export_for_lammps, make_lammps, mpirun_lmp

    model = _default_potential()
    model.build()
    work = tempfile.mkdtemp()
    export_for_lammps(model, os.path.join(work, "model"))
    plugin = build_plugin()
    for n in sizes:
        atoms = cell(n)
        data = os.path.join(work, f"box{n}.data")
        write(data, atoms, format="lammps-data", masses=True, specorder=["Cu"], atom_style="atomic")
        setup = (f"units metal\natom_style atomic\nboundary p p p\nread_data {data}\n"
                 f"velocity all create 300 1 mom yes rot yes\ntimestep 0.001\nfix nve all nve\n")
        # fix external: the Python driver
        lmp = make_lammps()
        lmp.commands_string(setup.replace("fix nve", f"pair_style zero {model.cutoff}\npair_coeff * *\nfix nve"))
        lp = LammpsPotential(model, ["Cu"]).attach(lmp)
        lmp.command("run 5")
        t = time.perf_counter()
        lmp.command(f"run {calls}")
        ext = (time.perf_counter() - t) / calls
        lmp.close()
        # pair_style kerase3, xla yes: LAMMPS's own executable
        script = os.path.join(work, f"in{n}.lmp")
        with open(script, "w") as f:
            f.write(setup.replace("fix nve", f"plugin load {plugin}\npair_style kerase3 {os.path.join(work, 'model')} "
                                             f"threads {os.cpu_count()} xla yes\npair_coeff * * Cu\nfix nve")
                    + f"thermo {calls}\nrun 5\nrun {calls}\n")
        proc = mpirun_lmp(script, ranks=1, cwd=work)
        if proc.returncode:
            raise RuntimeError(f"lmp failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        loop = _loop_time(proc.stdout)
        print(json.dumps(dict(impl="potential-lammps", atoms=len(atoms), call_s=ext, pair_s=loop / calls,
                              searches=lp.evaluator.neighbors.searches if hasattr(lp.evaluator, "neighbors") else None)),
              flush=True)


def _loop_time(log):
    import re

    times = re.findall(r"Loop time of ([0-9.eE+-]+) on (\d+) procs for (\d+) steps", log)
    return float(times[-1][0]) if times else float("nan")


def run_e3nn_jax(sizes, calls):
    import jax

    from potential import e3nn_jax_potential

    for n in sizes:
        params, infer, _, pos0, g = e3nn_jax_potential(n)
        rng = np.random.default_rng(0)
        t = time.perf_counter()
        jax.block_until_ready(infer(params, pos0))
        first = time.perf_counter() - t
        ts = []
        pos = np.asarray(pos0)
        for _ in range(calls):
            pos = pos + rng.normal(scale=0.01, size=pos.shape).astype(np.float32)
            t = time.perf_counter()
            e, f = infer(params, pos)
            np.asarray(f)
            ts.append(time.perf_counter() - t)
        print(json.dumps(dict(impl="e3nn-jax", atoms=len(pos), call_s=statistics.median(ts), first_s=first)), flush=True)


IMPLS = {"potential-ase": (run_potential_ase, "tensorflow"), "potential-lammps": (run_potential_lammps, "lammps"),
         "mace-ase": (run_mace_ase, "tensorflow"), "e3nn-jax": (run_e3nn_jax, "e3nn_jax")}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 108, 256])
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--impl", nargs="+", default=list(IMPLS) + ["mace-torch"])
    ap.add_argument("--mace-python", default=os.environ.get("MACE_PYTHON", "/work/venv-mace/bin/python"))
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        IMPLS[args.child][0](args.sizes, args.calls)
        return
    rec = {}
    ours = {k: (dict(KERASE3_COMPILATION_CACHE=os.environ.get("KERASE3_COMPILATION_CACHE", "0")), v[1])
            for k, v in IMPLS.items() if k in args.impl}
    for impl, r in run_children(__file__, ours, ["--sizes", *map(str, args.sizes), "--calls", str(args.calls)]):
        rec[(impl, r["atoms"])] = r
    if "mace-torch" in args.impl and os.path.exists(args.mace_python):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from mace import CONFIG

        env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
        res = subprocess.run([args.mace_python, "-c", MACE_CHILD, json.dumps(CONFIG), json.dumps(args.sizes),
                              str(args.calls)], env=env, capture_output=True, text=True, cwd=tempfile.mkdtemp())
        if res.returncode:
            print(f"# mace-torch failed:\n{res.stderr[-3000:]}")
        for line in res.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                rec[("mace-torch", r["atoms"])] = r
    print(f"Energy + forces per call (ms) and atoms/s, {os.cpu_count()} cores, float32; steady calls with moving atoms")
    print("| atoms | Potential, ASE calculator | fix external | pair_style kerase3 (xla yes) | e3nn-jax (model only) | "
          "kerase3 / e3nn-jax | MACE, ASE calculator | mace-torch, its calculator | kerase3 / mace-torch |")
    print("|---|---|---|---|---|---|---|---|---|")

    def cellfmt(r, key="call_s"):
        if r is None or key not in r:
            return "-"
        return f"{1e3 * r[key]:.1f} ms ({r['atoms'] / r[key]:.0f}/s)"

    for n in sorted({a for _, a in rec}):
        pa, pl, ej = rec.get(("potential-ase", n)), rec.get(("potential-lammps", n)), rec.get(("e3nn-jax", n))
        ma, mt = rec.get(("mace-ase", n)), rec.get(("mace-torch", n))
        r1 = f"{ej['call_s'] / pa['call_s']:.1f}x" if pa and ej else "-"
        r2 = f"{mt['call_s'] / ma['call_s']:.2f}x" if ma and mt else "-"
        print(f"| {n} | {cellfmt(pa)} | {cellfmt(pl)} | {cellfmt(pl, 'pair_s')} | {cellfmt(ej)} | {r1} | {cellfmt(ma)} | "
              f"{cellfmt(mt)} | {r2} |")
    firsts = {k: v.get("first_s") for k, v in rec.items() if v.get("first_s") is not None}
    print("first call s: " + ", ".join(f"{k[0]} {k[1]}: {v:.1f}" for k, v in sorted(firsts.items())))


if __name__ == "__main__":
    main()
