"""Time of `kerase3.export.export_saved_model` for whole models, each in a fresh process.

    python benchmarks/export.py [--cases potential tetris hamiltonian]

What a user waits for between a trained model and a SavedModel for TF Serving: tracing each
signature (energy and forces by automatic differentiation, the in-graph neighbour list) and
writing it. Cases: ``potential``, the default `Potential` (32x0e+32x1o+32x2e, lmax 2, 3 layers,
cutoff 5 A, species H, O, Cu); ``tetris``, the README demo's `GatedConvNetwork`;
``hamiltonian``, `HamiltonianModel` with its defaults on water, def2-SVP. There is no peer: e3nn
and e3nn-jax export nothing TF Serving can load (TorchScript and StableHLO respectively).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

CASES = ["potential", "tetris", "hamiltonian"]


def _model(name):
    if name == "potential":
        from kerase3.models import Potential

        return Potential([1, 8, 29], cutoff=5.0)
    if name == "tetris":
        from kerase3.models import GatedConvNetwork

        return GatedConvNetwork("0e", "0o + 6x0e", mul=8, lmax=2, num_interactions=3, cutoff=1.1, number_of_basis=3,
                                radial_neurons=(16,), avg_num_neighbors=1.5, num_nodes=4.0, pool="sum")
    if name == "hamiltonian":
        from kerase3.io import OrbitalBasis
        from kerase3.models import HamiltonianModel

        return HamiltonianModel(OrbitalBasis({8: [0, 0, 0, 1, 1, 2], 1: [0, 0, 1]}, "pyscf", "def2-svp"), cutoff=4.0)
    raise ValueError(f"unknown case {name!r}; known: {CASES}")


def child(name):
    from kerase3.export import export_saved_model

    model = _model(name)
    model.build()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        export_saved_model(model, os.path.join(tmp, "model"))
        seconds = time.perf_counter() - t
    print(json.dumps({"case": name, "export_s": round(seconds, 2)}))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", nargs="+", default=CASES, choices=CASES)
    p.add_argument("--child")
    args = p.parse_args()
    if args.child:
        child(args.child)
        return
    print("| case | export s |\n|---|---|")
    for name in args.cases:
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
        env.setdefault("KERASE3_COMPILATION_CACHE", "0")
        proc = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            print(f"# {name} failed:\n{proc.stderr[-3000:]}")
            continue
        rec = json.loads([line for line in proc.stdout.splitlines() if line.startswith("{")][-1])
        print(f"| {name} | {rec['export_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
