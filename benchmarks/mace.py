"""kerase3's MACE against mace-torch on the CPU, same weights, same structures, one run.

    python benchmarks/mace.py --sizes 32 256 864 [--mace-python /path/to/venv-mace/bin/python]
    python benchmarks/mace.py --layer --sizes 256 1024      # SymmetricContraction alone

mace-torch runs in its own venv (``pip install torch==2.13.0 mace-torch``), in a child process:
it builds a ``ScaleShiftMACE`` (64x0e + 64x1o, max_ell 3, correlation 3, 2 interactions, r_max 5,
float32), times energy + forces and one training step (Adam, energy + forces loss) on rattled
fcc copper supercells (batches made once, by mace's own data pipeline) and writes its initial
state dict; kerase3 loads those weights with ``kerase3.interop.mace.load`` (energies must
agree) and times the same on the same structures (XLA, exact shapes). Prints atoms/s, step
times and the ratios.
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
from mace import data
from mace.modules import interaction_classes
from mace.modules.models import ScaleShiftMACE
from mace.tools import torch_geometric, utils
torch.set_num_threads(int(sys.argv[4]))
torch.set_default_dtype(torch.float32)
cfg, sizes, out = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3]
torch.manual_seed(0)
kw = dict(cfg)
kw["interaction_cls"] = kw["interaction_cls_first"] = interaction_classes[kw.pop("interaction")]
kw["hidden_irreps"], kw["MLP_irreps"] = o3.Irreps(kw["hidden_irreps"]), o3.Irreps(kw["MLP_irreps"])
kw["gate"], kw["atomic_energies"], kw["num_elements"] = torch.nn.functional.silu, np.array(kw["atomic_energies"]), 1
model = ScaleShiftMACE(**kw)
init = {k: v.clone() for k, v in model.state_dict().items()}
z_table = utils.AtomicNumberTable([29])

def median(fn, n=3):
    fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return float(np.median(ts))

rec = {}
for n in sizes:
    reps = round((n / 4) ** (1 / 3))
    atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((reps, reps, reps))
    atoms.rattle(0.05, seed=1)
    ad = data.AtomicData.from_config(data.config_from_atoms(atoms), z_table=z_table, cutoff=cfg["r_max"])
    batch = next(iter(torch_geometric.dataloader.DataLoader([ad], batch_size=1))).to_dict()
    model.load_state_dict(init)  # every size starts from the same weights
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    e = float(model(dict(batch), compute_force=True)["energy"][0])
    infer = median(lambda: model(dict(batch), compute_force=True)["forces"].sum().item())
    def step():
        opt.zero_grad()
        o = model(dict(batch), training=True, compute_force=True)
        loss = (o["energy"] ** 2).mean() + (o["forces"] ** 2).mean()
        loss.backward(); opt.step()
    train = median(step)
    rec[str(len(atoms))] = dict(energy=e, infer=infer, train=train)
np.savez(out, **{k: v.detach().numpy() for k, v in init.items()})  # the weights before training, for kerase3
print(json.dumps(rec))
'''


LAYER_CHILD = r'''
import json, sys, time, numpy as np, torch
from e3nn import o3
from mace.modules.symmetric_contraction import SymmetricContraction
torch.set_num_threads(int(sys.argv[3]))
n, c = int(sys.argv[1]), int(sys.argv[2])
sc = SymmetricContraction(o3.Irreps(f"{c}x0e+{c}x1o+{c}x2e+{c}x3o"), o3.Irreps(f"{c}x0e+{c}x1o"), 3, num_elements=1,
                          use_reduced_cg=False)
x = torch.randn(n, c, 16, requires_grad=True)
y = torch.ones(n, 1)
def fwd():
    with torch.no_grad():
        sc(x, y).sum().item()
def both():
    x.grad = None
    (sc(x, y) ** 2).sum().backward()
    x.grad.sum().item()
out = {}
for name, fn in (("fwd", fwd), ("both", both)):
    fn()
    ts = []
    for _ in range(5):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    out[name] = float(np.median(ts))
print(json.dumps(out))
'''


def layer_benchmark(args):
    """SymmetricContraction alone: 64 channels of 0e+1o+2e+3o -> 0e+1o, correlation 3."""
    import tensorflow as tf

    from kerase3.layers import SymmetricContraction

    c = 64
    print(f"SymmetricContraction, {c}x(0e+1o+2e+3o) -> {c}x(0e+1o), correlation 3, float32, {args.threads} threads")
    print("| nodes | mace-torch fwd ms | kerase3 fwd ms | speed-up | mace-torch fwd+grad ms | kerase3 fwd+grad ms | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        res = subprocess.run([args.mace_python, "-c", LAYER_CHILD, str(n), str(c), str(args.threads)],
                             env=dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1"), capture_output=True, text=True)
        if res.returncode:
            sys.exit(f"mace.py: the mace-torch child failed:\n{res.stderr[-3000:]}")
        ref = json.loads(res.stdout.strip().splitlines()[-1])
        layer = SymmetricContraction(f"{c}x0e+{c}x1o+{c}x2e+{c}x3o", f"{c}x0e+{c}x1o", 3, 1)
        x = tf.constant(np.random.default_rng(0).normal(size=(n, 16 * c)), tf.float32)
        a = tf.ones((n, 1))
        fwd = tf.function(lambda x: layer(x, a), jit_compile=True)

        @tf.function(jit_compile=True)
        def both(x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(layer(x, a) ** 2)
            return tape.gradient(y, x)

        ours = {}
        for name, fn in (("fwd", fwd), ("both", both)):
            fn(x).numpy()
            ts = []
            for _ in range(5):
                t = time.perf_counter()
                fn(x).numpy()
                ts.append(time.perf_counter() - t)
            ours[name] = float(np.median(ts))
        print(f"| {n} | {ref['fwd'] * 1e3:.1f} | {ours['fwd'] * 1e3:.1f} | {ref['fwd'] / ours['fwd']:.2f}x | "
              f"{ref['both'] * 1e3:.1f} | {ours['both'] * 1e3:.1f} | {ref['both'] / ours['both']:.2f}x |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 256, 864])
    ap.add_argument("--mace-python", default=os.environ.get("MACE_PYTHON", "/work/venv-mace/bin/python"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--layer", action="store_true", help="the SymmetricContraction layer alone (sizes = nodes)")
    args = ap.parse_args()
    os.environ.setdefault("KERASE3_COMPILATION_CACHE", "0")
    if not os.path.exists(args.mace_python):
        sys.exit(f"mace.py: no mace-torch venv at {args.mace_python} (pip install torch==2.13.0 mace-torch; --mace-python)")
    if args.layer:
        return layer_benchmark(args)
    state_path = os.path.join(tempfile.mkdtemp(), "state.npz")
    env = dict(os.environ, TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD="1")
    res = subprocess.run([args.mace_python, "-c", TORCH_CHILD, json.dumps(CONFIG), json.dumps(args.sizes), state_path,
                          str(args.threads)], env=env, capture_output=True, text=True)
    if res.returncode:
        sys.exit(f"mace.py: the mace-torch child failed:\n{res.stderr[-3000:]}")
    torch_rec = json.loads(res.stdout.strip().splitlines()[-1])

    import keras
    import tensorflow as tf
    from ase.build import bulk

    from kerase3.graph import batch_graphs, graph_from_arrays, pad_batch
    from kerase3.interop import mace

    state = dict(np.load(state_path))

    def median(fn, n=3):
        ts = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t)
        return float(np.median(ts))

    print(f"kerase3 {__import__('kerase3').__version__} (Keras {keras.__version__}, {keras.backend.backend()}, XLA) vs "
          f"mace-torch (eager), same weights, float32, {args.threads} threads; inference = energy + forces, "
          f"train = one Adam step on an energy + forces loss")
    print("| atoms | edges | mace-torch infer atoms/s | kerase3 infer atoms/s | speed-up | mace-torch train ms | "
          "kerase3 train ms | speed-up | kerase3 compile s (infer + train) | |dE| eV |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        model = mace.load(state, CONFIG, dtype="float32")
        reps = round((n / 4) ** (1 / 3))
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True).repeat((reps, reps, reps))
        atoms.rattle(0.05, seed=1)
        g = graph_from_arrays(atoms.positions, atoms.numbers, model.cutoff, atoms.cell.array, [True] * 3,
                              energy=0.0, forces=np.zeros((len(atoms), 3)))
        b = pad_batch(batch_graphs([g]), len(atoms) + 1, len(g["senders"]) + 1, 2)
        x = {k: tf.constant(v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()
             if k not in ("energy", "forces")}
        y = {"energy": tf.constant(b["energy"].astype("float32")), "forces": tf.constant(b["forces"].astype("float32"))}
        infer_fn = tf.function(lambda x: model(x), jit_compile=True)
        t = time.perf_counter()
        e = float(infer_fn(x)["energy"][0])
        compile_s = time.perf_counter() - t
        infer = median(lambda: infer_fn(x)["forces"].numpy())
        model.compile(optimizer=keras.optimizers.Adam(1e-4), jit_compile=True)
        t = time.perf_counter()
        model.train_on_batch(x, y)
        compile_s += time.perf_counter() - t
        train = median(lambda: model.train_on_batch(x, y))
        ref = torch_rec[str(len(atoms))]
        na = len(atoms)
        print(f"| {na} | {len(g['senders'])} | {na / ref['infer']:.0f} | {na / infer:.0f} | {ref['infer'] / infer:.2f}x | "
              f"{ref['train'] * 1e3:.0f} | {train * 1e3:.0f} | {ref['train'] / train:.2f}x | {compile_s:.0f} | "
              f"{abs(e - ref['energy']):.1e} |", flush=True)


if __name__ == "__main__":
    main()
