"""kerase3's MACE against mace-torch on the CPU, same weights, same structures, one run.

    python benchmarks/mace.py --sizes 32 256 1024 [--mace-python /path/to/venv-mace/bin/python]

mace-torch runs in its own venv (``pip install torch==2.13.0 mace-torch``), in a child process:
it builds a ``ScaleShiftMACE`` (64x0e + 64x1o, max_ell 3, correlation 3, 2 interactions, r_max 5,
float32), times energy + forces through its ASE calculator on fcc copper supercells and writes
its state dict; kerase3 loads those weights with ``kerase3.interop.mace.load`` (energies must
agree), then times its own ASE calculator (XLA, one program per size) on the same structures.
Prints atoms/s of both and the ratio.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

CONFIG = dict(r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3, num_interactions=2, hidden_irreps="64x0e+64x1o",
              MLP_irreps="16x0e", correlation=3, radial_MLP=[64, 64, 64], use_reduced_cg=False, avg_num_neighbors=40.0,
              atomic_numbers=[29], atomic_energies=[-3.0], atomic_inter_scale=1.0, atomic_inter_shift=0.0,
              interaction="RealAgnosticResidualInteractionBlock", gate="silu")

TORCH_CHILD = r'''
import json, sys, time, numpy as np, torch
from ase.build import bulk
from e3nn import o3
from mace.calculators import MACECalculator
from mace.modules import interaction_classes
from mace.modules.models import ScaleShiftMACE
torch.set_num_threads(int(sys.argv[4]))
cfg, sizes, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
kw = dict(cfg)
kw["interaction_cls"] = kw["interaction_cls_first"] = interaction_classes[kw.pop("interaction")]
kw["hidden_irreps"], kw["MLP_irreps"] = o3.Irreps(kw["hidden_irreps"]), o3.Irreps(kw["MLP_irreps"])
kw["gate"], kw["atomic_energies"], kw["num_elements"] = torch.nn.functional.silu, np.array(kw["atomic_energies"]), 1
model = ScaleShiftMACE(**kw)
calc = MACECalculator(models=model, device="cpu", default_dtype="float32")
rec = {}
for n in sizes:
    reps = round((n / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((reps, reps, reps))
    atoms.rattle(0.05, seed=1)
    atoms.calc = calc
    e = atoms.get_potential_energy()
    times = []
    for _ in range(3):
        atoms.positions[0, 0] += 1e-4
        t = time.perf_counter(); atoms.get_forces(); times.append(time.perf_counter() - t)
    rec[str(len(atoms))] = dict(energy=float(e), s=float(np.median(times)))
np.savez(out, **{k: v.detach().numpy() for k, v in model.state_dict().items()})
print(json.dumps(rec))
'''


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 256, 1024])
    ap.add_argument("--mace-python", default=os.environ.get("MACE_PYTHON", "/work/venv-mace/bin/python"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    os.environ.setdefault("KERASE3_COMPILATION_CACHE", "0")
    if not os.path.exists(args.mace_python):
        sys.exit(f"mace.py: no mace-torch venv at {args.mace_python} (pip install torch==2.13.0 mace-torch; --mace-python)")
    state_path = os.path.join(tempfile.mkdtemp(), "state.npz")
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    res = subprocess.run([args.mace_python, "-c", TORCH_CHILD, json.dumps(CONFIG), json.dumps(args.sizes), state_path,
                          str(args.threads)], env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"mace.py: the mace-torch child failed:\n{res.stderr[-3000:]}")
    torch_rec = json.loads(res.stdout.strip().splitlines()[-1])

    import keras
    from ase.build import bulk

    from kerase3.interop import mace
    from kerase3.io.ase import Calculator

    state = dict(np.load(state_path))
    model = mace.load(state, CONFIG, dtype="float32")
    calc = Calculator(model)
    print(f"kerase3 {__import__('kerase3').__version__} (Keras {keras.__version__}, {keras.backend.backend()}) vs "
          f"mace-torch, same weights, energy + forces, float32, {args.threads} threads")
    print("| atoms | mace-torch atoms/s | kerase3 atoms/s | speed-up | kerase3 first call s | |dE| eV |")
    print("|---|---|---|---|---|---|")
    for n in args.sizes:
        reps = round((n / 4) ** (1 / 3))
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((reps, reps, reps))
        atoms.rattle(0.05, seed=1)
        atoms.calc = calc
        t = time.perf_counter()
        e = atoms.get_potential_energy()
        first = time.perf_counter() - t
        times = []
        for _ in range(3):
            atoms.positions[0, 0] += 1e-4
            t = time.perf_counter()
            atoms.get_forces()
            times.append(time.perf_counter() - t)
        ref = torch_rec[str(len(atoms))]
        ours = float(np.median(times))
        print(f"| {len(atoms)} | {len(atoms) / ref['s']:.0f} | {len(atoms) / ours:.0f} | {ref['s'] / ours:.2f}x | "
              f"{first:.1f} | {abs(e - ref['energy']):.1e} |")


if __name__ == "__main__":
    main()
