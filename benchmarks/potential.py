"""Interatomic potential: kerase3's Potential against an e3nn (PyTorch) network of the same shape.

    python benchmarks/potential.py [--sizes 192 1008 4000] [--repeat 3]

Periodic fcc copper boxes of about 200, 1,000 and 4,000 atoms, cutoff 5 A, 3 interaction
layers, hidden irreps 32x0e+32x1o+32x2e, lmax 2, float32. Two numbers per size:

- inference: energy and forces (forces by automatic differentiation), atoms per second;
- training step: energy+forces loss, gradient, optimizer update, milliseconds.

The e3nn model is e3nn 0.6's ``gate_points_2101`` convolutions (``nn.models.gate_points_2101``),
fed the same periodic neighbour list, with a per-atom energy readout; kerase3's is
``kerase3.models.Potential`` under XLA. e3nn-jax has no ready potential model; it is not timed.
Each implementation runs in its own process; neighbour lists are built outside the timing.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

CUTOFF, MUL, LMAX, LAYERS = 5.0, 32, 2, 3


def structure(n_target):
    from kerase3.graph import graph_from_arrays

    a = 3.61
    base = a * np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])
    reps = {192: (4, 4, 3), 1008: (6, 6, 7), 4000: (10, 10, 10)}.get(n_target)
    if reps is None:
        k = max(1, round((n_target / 4) ** (1 / 3)))
        reps = (k, k, k)
    grid = np.array([[i, j, k] for i in range(reps[0]) for j in range(reps[1]) for k in range(reps[2])]) * a
    pos = (grid[:, None, :] + base[None]).reshape(-1, 3)
    pos += np.random.default_rng(0).normal(scale=0.05, size=pos.shape)
    cell = np.diag(np.array(reps) * a)
    return graph_from_arrays(pos, [29] * len(pos), CUTOFF, cell, [True] * 3)


def _timeit(fn, repeat):
    fn()
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def run_kerase3(n, repeat):
    import keras
    import tensorflow as tf
    from kerase3.graph import batch_graphs, pad_batch
    from kerase3.models import Potential

    g = structure(n)
    b = batch_graphs([g])
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), 2)
    x = {k: tf.constant(v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    y = {"energy": tf.zeros(2), "forces": tf.zeros((len(b["atomic_numbers"]), 3))}
    model = Potential([29], cutoff=CUTOFF, mul=MUL, lmax=LMAX, layers=LAYERS, number_of_basis=8, radial_neurons=(64,),
                      avg_num_neighbors=len(g["senders"]) / len(g["atomic_numbers"]))
    infer = tf.function(lambda a: model(a), jit_compile=True)
    t_inf = _timeit(lambda: [t.numpy() for t in infer(x).values()], repeat)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
    t_train = _timeit(lambda: model.train_on_batch(x, y), repeat)
    return t_inf, t_train, len(g["atomic_numbers"]), len(g["senders"])


def run_e3nn(n, repeat):
    import torch
    from e3nn import o3
    from e3nn.math import soft_one_hot_linspace
    from e3nn.nn.models.gate_points_2101 import Network, smooth_cutoff

    torch.set_num_threads(os.cpu_count())
    g = structure(n)
    pos0 = torch.tensor(g["positions"], dtype=torch.float32)
    src, dst = torch.tensor(g["senders"], dtype=torch.long), torch.tensor(g["receivers"], dtype=torch.long)
    offset = torch.tensor(g["shifts"] @ g["cell"], dtype=torch.float32)
    nn_avg = len(g["senders"]) / len(g["atomic_numbers"])
    net = Network(irreps_in=None, irreps_hidden=f"{MUL}x0e+{MUL}x1o+{MUL}x2e", irreps_out="1x0e", irreps_node_attr="0e",
                  irreps_edge_attr=o3.Irreps.spherical_harmonics(LMAX), layers=LAYERS, max_radius=CUTOFF,
                  number_of_basis=8, radial_layers=1, radial_neurons=64, num_neighbors=nn_avg, num_nodes=1.0,
                  reduce_output=False)

    def energy_forces(create_graph):
        pos = pos0.clone().requires_grad_(True)
        vec = pos[src] - pos[dst] + offset
        sh = o3.spherical_harmonics(net.irreps_edge_attr, vec, True, normalization="component")
        length = vec.norm(dim=1)
        emb = soft_one_hot_linspace(length, 0.0, CUTOFF, 8, basis="gaussian", cutoff=False).mul(8**0.5)
        attr = smooth_cutoff(length / CUTOFF)[:, None] * sh
        x = pos.new_ones((pos.shape[0], 1))
        z = pos.new_ones((pos.shape[0], 1))
        for lay in net.layers:
            x = lay(x, z, src, dst, attr, emb)
        energy = x.sum()
        (grad,) = torch.autograd.grad(energy, pos, create_graph=create_graph)
        return energy, -grad

    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def infer():
        energy_forces(False)

    def train():
        opt.zero_grad()
        e, f = energy_forces(True)
        loss = e**2 + (f**2).mean()
        loss.backward()
        opt.step()

    return _timeit(infer, repeat), _timeit(train, repeat), len(g["atomic_numbers"]), len(g["senders"])


IMPLS = {"kerase3-tf": (run_kerase3, "tensorflow"), "e3nn": (run_e3nn, "e3nn")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 1008, 4000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--impl", nargs="+", default=list(IMPLS))
    parser.add_argument("--child")
    args = parser.parse_args()
    if args.child:
        for n in args.sizes:
            t_inf, t_train, atoms, edges = IMPLS[args.child][0](n, args.repeat)
            print(json.dumps(dict(impl=args.child, n=n, inf=t_inf, train=t_train, atoms=atoms, edges=edges)), flush=True)
        return
    import importlib.util

    res = {}
    for impl in args.impl:
        if importlib.util.find_spec(IMPLS[impl][1]) is None:
            print(f"# {impl}: not installed, skipped")
            continue
        cmd = [sys.executable, __file__, "--child", impl, "--repeat", str(args.repeat), "--sizes", *map(str, args.sizes)]
        p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        if p.returncode:
            print(f"# {impl} failed:\n{p.stderr[-3000:]}")
        for line in p.stdout.splitlines():
            if line.startswith("{"):
                r = json.loads(line)
                res[(impl, r["n"])] = r
    print("\n| atoms | edges | kerase3 inference atoms/s | e3nn inference atoms/s | inference ratio | kerase3 train step ms | e3nn train step ms | train ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        k, e = res.get(("kerase3-tf", n)), res.get(("e3nn", n))
        ref = k or e
        if ref is None:
            continue
        cells = [str(ref["atoms"]), str(ref["edges"])]
        cells += [f"{k['atoms'] / k['inf']:.0f}" if k else "-", f"{e['atoms'] / e['inf']:.0f}" if e else "-",
                  f"{e['inf'] / k['inf']:.2f}" if k and e else "-"]
        cells += [f"{k['train'] * 1e3:.0f}" if k else "-", f"{e['train'] * 1e3:.0f}" if e else "-",
                  f"{e['train'] / k['train']:.2f}" if k and e else "-"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
