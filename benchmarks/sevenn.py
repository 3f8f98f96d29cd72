"""kerase3's SevenNet-0 against sevenn's own calculator on the CPU, same checkpoint, one run.

    python benchmarks/sevenn.py --sizes 64 512 2048 [--sevenn-python /path/to/venv-7net/bin/python]

sevenn runs in its own venv (``pip install torch==2.13.0 sevenn``) in a child process; kerase3 in
another (``kerase3.interop.sevenn.load("7net-0")``, no torch). Both evaluate the same rattled
Cu3Au-like fcc cells (25% Au at random) through their ASE calculators, atoms moved a little
before every call (so nothing is cached): energy + forces per second, the first call after
loading (kerase3: trace + XLA compile), one fine-tuning step (Adam, energy + forces loss, the
batch made once), and the child's peak resident memory. Same number of threads for both.
"""

import argparse
import json
import os
import subprocess
import sys

CHILD_COMMON = r'''
import json, resource, sys, time
import numpy as np
from ase.build import bulk

def cell(n):
    reps = {64: (2, 2, 4), 512: (4, 4, 8), 2048: (8, 8, 8)}.get(n)
    if reps is None:
        k = round((n / 4) ** (1 / 3)); reps = (k, k, k)
    a = bulk("Cu", "fcc", a=3.7, cubic=True).repeat(reps)
    rng = np.random.default_rng(0)
    z = a.numbers.copy(); z[rng.choice(len(a), len(a) // 4, replace=False)] = 79
    a.numbers = z
    a.rattle(0.05, seed=1)
    return a

def median(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

def time_calculator(n, calc, load, repeat):
    """Energy + forces of an n-atom cell through an ASE calculator, atoms moved before every call:
    prints the first call and the median of ``repeat``; returns the atoms."""
    atoms = cell(n); atoms.calc = calc
    rng = np.random.default_rng(2)
    def call():
        atoms.positions += rng.normal(0, 1e-3, atoms.positions.shape)
        return atoms.get_forces()
    t = time.perf_counter(); call(); first = time.perf_counter() - t
    energy = float(atoms.get_potential_energy())
    infer = median(call, repeat)
    print(json.dumps(dict(atoms=len(atoms), load=load, first=first, infer=infer, energy=energy, peak_mb=peak_mb())), flush=True)
    return atoms
'''

SEVENN_CHILD = CHILD_COMMON + r'''
import warnings; warnings.filterwarnings("ignore")
import torch
torch.set_num_threads(int(sys.argv[2]))
from sevenn.calculator import SevenNetCalculator
from sevenn.atom_graph_data import AtomGraphData
from sevenn.train.dataload import unlabeled_atoms_to_graph
import sevenn._keys as KEY
sizes, repeat = json.loads(sys.argv[1]), int(sys.argv[3])
t = time.perf_counter()
calc = SevenNetCalculator("7net-0", device="cpu")
load = time.perf_counter() - t
for n in sizes:
    atoms = time_calculator(n, calc, load, repeat)
    model = calc.model
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    base = AtomGraphData.from_numpy_dict(unlabeled_atoms_to_graph(atoms, calc.cutoff, with_shift=False))
    batches = [base.clone() for _ in range(repeat + 1)]
    def step():
        opt.zero_grad()
        data = batches.pop()
        out = model(data)
        loss = (out[KEY.PRED_TOTAL_ENERGY] ** 2).mean() + (out[KEY.PRED_FORCE] ** 2).mean()
        loss.backward(); opt.step()
    step()
    train = median(step, repeat)
    model.eval()
    model.load_state_dict(saved)  # every size starts from the pretrained weights
    print(json.dumps(dict(atoms=len(atoms), train=train, peak_mb=peak_mb())), flush=True)
'''

KERASE3_CHILD = CHILD_COMMON + r'''
import keras
import tensorflow as tf
from kerase3.graph import batch_graphs, graph_from_atoms, pad_batch
from kerase3.interop import sevenn
from kerase3.io.ase import Calculator
sizes, repeat = json.loads(sys.argv[1]), int(sys.argv[3])
t = time.perf_counter()
model = sevenn.load("7net-0")
load = time.perf_counter() - t
for n in sizes:
    atoms = time_calculator(n, Calculator(model), load, repeat)
    g = graph_from_atoms(atoms, model.cutoff, energy=False, forces=False)
    b = pad_batch(batch_graphs([g]), len(atoms) + 1, len(g["senders"]) + 1, 2)
    x = {k: tf.constant(v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    y = {"energy": tf.zeros((2,)), "forces": tf.zeros((len(atoms) + 1, 3))}
    saved = model.get_weights()
    model.compile(optimizer=keras.optimizers.Adam(1e-5), jit_compile=True)
    model.train_on_batch(x, y)
    train = median(lambda: model.train_on_batch(x, y), repeat)
    model.set_weights(saved)  # every size starts from the pretrained weights
    print(json.dumps(dict(atoms=len(atoms), edges=len(g["senders"]), train=train, peak_mb=peak_mb())), flush=True)
'''


def run(python, code, args, env=None):
    proc = subprocess.run([python, "-c", code, json.dumps(args.sizes), str(args.threads), str(args.repeat)],
                          capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {})))
    records = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            r = json.loads(line)
            records.setdefault(r["atoms"], {}).update(r)
    if proc.returncode:  # e.g. killed for memory: what it measured before is kept
        print(f"# a child stopped with code {proc.returncode} after {sorted(records)}: {proc.stderr.strip()[-300:]}")
    return records


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 2048])
    ap.add_argument("--sevenn-python", default=os.environ.get("SEVENN_PYTHON", "/work/venv-7net/bin/python"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if not os.path.exists(args.sevenn_python):
        sys.exit(f"sevenn.py: no sevenn venv at {args.sevenn_python} (pip install torch==2.13.0 sevenn; --sevenn-python)")
    ref = run(args.sevenn_python, SEVENN_CHILD, args)
    ours = run(sys.executable, KERASE3_CHILD, args, dict(KERASE3_COMPILATION_CACHE="0"))
    import keras

    print(f"SevenNet-0: kerase3 {__import__('kerase3').__version__} (Keras {keras.__version__}, {keras.backend.backend()}, "
          f"XLA) vs sevenn (torch, e3nn), both through their ASE calculators, float32, {args.threads} threads")
    first = min(ours)
    print(f"load: sevenn {ref.get(first, {}).get('load', float('nan')):.1f} s, kerase3 {ours[first]['load']:.1f} s")
    print("| atoms | edges | sevenn E+F atoms/s | kerase3 E+F atoms/s | speed-up | sevenn fine-tune step s | kerase3 step s "
          "| speed-up | sevenn first call s | kerase3 first call s | sevenn peak MB | kerase3 peak MB | |dE|/atom eV |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    def fmt(r, key, spec, scale=1.0):
        return format(scale / r[key] if scale != 1.0 else r[key], spec) if key in r else "n/a"

    def ratio(r, o, key):
        return f"{r[key] / o[key]:.2f}x" if key in r and key in o else "n/a"

    for n in sorted(ours):
        r, o = ref.get(n, {}), ours[n]
        de = f"{abs(r['energy'] - o['energy']) / n:.1e}" if "energy" in r else "n/a"
        print(f"| {n} | {o.get('edges', 'n/a')} | {fmt(r, 'infer', '.0f', n)} | {fmt(o, 'infer', '.0f', n)} | "
              f"{ratio(r, o, 'infer')} | {fmt(r, 'train', '.2f')} | {fmt(o, 'train', '.2f')} | {ratio(r, o, 'train')} | "
              f"{fmt(r, 'first', '.1f')} | {fmt(o, 'first', '.1f')} | {fmt(r, 'peak_mb', '.0f')} | {fmt(o, 'peak_mb', '.0f')} | "
              f"{de} |", flush=True)


if __name__ == "__main__":
    main()
