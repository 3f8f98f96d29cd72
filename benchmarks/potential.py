"""Interatomic potential: kerase3's Potential against an e3nn (PyTorch) network of the same shape.

    python benchmarks/potential.py [--sizes 192 1008 4000] [--repeat 3]

Periodic fcc copper boxes of about 200, 1,000 and 4,000 atoms, cutoff 5 A, 3 interaction
layers, hidden irreps 32x0e+32x1o+32x2e, lmax 2, float32. Two numbers per size:

- inference: energy and forces (forces by automatic differentiation), atoms per second;
- training step: energy+forces loss, gradient, optimizer update, milliseconds.

The e3nn model is e3nn 0.6's ``gate_points_2101`` convolutions (``nn.models.gate_points_2101``),
fed the same periodic neighbour list, with a per-atom energy readout; kerase3's is
``kerase3.models.Potential`` under XLA. e3nn-jax ships no potential model: the benchmark writes
the same architecture with its functional pieces (``FunctionalLinear``,
``legacy.FunctionalTensorProduct`` vmapped over edges, ``gate``, ``spherical_harmonics``;
``jax.jit``; a plain SGD update as optax is not a dependency).
Each implementation, size and mode (inference, training) runs in its own process, which also
reports its peak resident memory; neighbour lists are built outside the timing.
"""

import argparse
import json
import os

from _common import median_time, run_children

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
    return median_time(fn, repeat, warmup=1)


def kerase3_potential(n):
    """The default ``Potential`` (as in the module docstring) and one padded batch ``(x, y)`` of ``n`` atoms."""
    from keras import ops
    from kerase3.graph import batch_graphs, pad_batch
    from kerase3.models import Potential

    g = structure(n)
    b = batch_graphs([g])
    b = pad_batch(b, len(b["atomic_numbers"]) + 1, len(b["senders"]), 2)
    x = {k: ops.convert_to_tensor(v.astype("float32") if v.dtype.kind == "f" else v) for k, v in b.items()}
    y = {"energy": ops.zeros(2), "forces": ops.zeros((len(b["atomic_numbers"]), 3))}
    model = Potential([29], cutoff=CUTOFF, mul=MUL, lmax=LMAX, num_interactions=LAYERS, number_of_basis=8, radial_neurons=(64,),
                      avg_num_neighbors=len(g["senders"]) / len(g["atomic_numbers"]))
    return model, x, y, g


def peak_rss_gb():
    """Peak resident memory of this process so far (GB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def run_kerase3(n, repeat, mode):
    import keras
    import tensorflow as tf

    model, x, y, g = kerase3_potential(n)
    if mode == "infer":
        infer = tf.function(lambda a: model(a), jit_compile=True)
        t = _timeit(lambda: [t.numpy() for t in infer(x).values()], repeat)
    else:
        model.compile(optimizer=keras.optimizers.Adam(1e-3), jit_compile=True)
        t = _timeit(lambda: model.train_on_batch(x, y), repeat)
    return t, len(g["atomic_numbers"]), len(g["senders"])


def run_e3nn(n, repeat, mode):
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

    return _timeit(infer if mode == "infer" else train, repeat), len(g["atomic_numbers"]), len(g["senders"])


def e3nn_jax_potential(n):
    """The same architecture written with e3nn-jax's functional pieces (it ships no model):
    ``(params, infer, train, pos0, graph)`` with ``infer`` and ``train`` jitted."""
    import math

    import e3nn_jax as e3nn
    import jax
    import jax.numpy as jnp
    from e3nn_jax.legacy import FunctionalTensorProduct

    g = structure(n)
    pos0 = jnp.asarray(g["positions"], jnp.float32)
    src, dst = jnp.asarray(g["senders"]), jnp.asarray(g["receivers"])
    offset = jnp.asarray(g["shifts"] @ g["cell"], jnp.float32)
    n_atoms, avg = len(g["positions"]), len(g["senders"]) / len(g["positions"])
    sh_irreps = e3nn.Irreps.spherical_harmonics(LMAX)
    hidden = e3nn.Irreps(f"{MUL}x0e+{MUL}x1o+{MUL}x2e")
    gate_in = e3nn.Irreps(f"{3 * MUL}x0e+{MUL}x1o+{MUL}x2e")  # scalars, gates for 1o and 2e, gated
    keys = iter(jax.random.split(jax.random.PRNGKey(0), 64))

    def linear(i, o):
        lin = e3nn.FunctionalLinear(e3nn.Irreps(i), e3nn.Irreps(o))
        return lin, [jax.random.normal(next(keys), ins.path_shape) for ins in lin.instructions]

    params, fns = {}, {}
    fns["embed"], params["embed"] = linear("0e", f"{MUL}x0e")
    irreps = e3nn.Irreps(f"{MUL}x0e")
    for l in range(LAYERS):
        mid, instr = [], []
        for i, (mul, ir1) in enumerate(irreps):
            for j, (_, ir2) in enumerate(sh_irreps):
                for ir in ir1 * ir2:
                    if ir in gate_in:
                        instr.append((i, j, len(mid), "uvu", True))
                        mid.append((mul, ir))
        tp = FunctionalTensorProduct(irreps, sh_irreps, e3nn.Irreps(mid), instr)
        numel = sum(math.prod(ins.path_shape) for ins in tp.instructions)
        fns[f"lin1_{l}"], params[f"lin1_{l}"] = linear(irreps, irreps)
        fns[f"lin2_{l}"], params[f"lin2_{l}"] = linear(e3nn.Irreps(mid), gate_in)
        fns[f"sc_{l}"], params[f"sc_{l}"] = linear(irreps, gate_in)
        fns[f"tp_{l}"] = tp
        params[f"mlp_{l}"] = [jax.random.normal(next(keys), (8, 64)), jax.random.normal(next(keys), (64, numel))]
        irreps = hidden
    fns["out1"], params["out1"] = linear(hidden, f"{MUL // 2}x0e")
    fns["out2"], params["out2"] = linear(f"{MUL // 2}x0e", "0e")

    def apply(name, p, x):
        return jax.vmap(lambda v: fns[name](p, v))(x)

    def energy(params, pos):
        vec = pos[src] - pos[dst] + offset
        r = jnp.linalg.norm(vec, axis=1)
        sh = e3nn.spherical_harmonics(sh_irreps, vec, normalize=True, normalization="component")
        freq = jnp.arange(1, 9) * jnp.pi
        xr = r / CUTOFF
        env = 1 - 28 * xr**6 + 48 * xr**7 - 21 * xr**8
        radial = (2 / CUTOFF) * jnp.sin(freq * r[:, None] / CUTOFF) / r[:, None] * env[:, None]
        x = apply("embed", params["embed"], e3nn.IrrepsArray("0e", jnp.ones((n_atoms, 1))))
        for l in range(LAYERS):
            h = apply(f"lin1_{l}", params[f"lin1_{l}"], x)
            w1, w2 = params[f"mlp_{l}"]
            w = jax.nn.silu(radial @ w1 / math.sqrt(8)) @ w2 / 8.0
            tp = fns[f"tp_{l}"]
            msg = jax.vmap(lambda wi, a, b: tp.left_right(wi, a, b))(w, h[src], sh)
            agg = e3nn.IrrepsArray(msg.irreps, jax.ops.segment_sum(msg.array, dst, n_atoms) / math.sqrt(avg))
            out = apply(f"lin2_{l}", params[f"lin2_{l}"], agg) + apply(f"sc_{l}", params[f"sc_{l}"], x)
            x = e3nn.gate(out, even_act=jax.nn.silu, even_gate_act=jax.nn.sigmoid)
        e = apply("out2", params["out2"], e3nn.IrrepsArray(f"{MUL // 2}x0e", jax.nn.silu(apply("out1", params["out1"], x).array)))
        return e.array.sum()

    infer = jax.jit(lambda p, x: jax.value_and_grad(energy, argnums=1)(p, x))

    def loss(p, x):
        e, grad = jax.value_and_grad(energy, argnums=1)(p, x)
        return e**2 + jnp.mean(grad**2)

    @jax.jit
    def train(p, x):
        grads = jax.grad(loss)(p, x)
        return jax.tree_util.tree_map(lambda a, b: a - 1e-3 * b, p, grads)

    return params, infer, train, pos0, g


def run_e3nn_jax(n, repeat, mode):
    import jax

    params, infer, train, pos0, g = e3nn_jax_potential(n)
    fn = infer if mode == "infer" else train
    return _timeit(lambda: jax.block_until_ready(fn(params, pos0)), repeat), len(g["positions"]), len(g["senders"])


IMPLS = {"kerase3-tf": (run_kerase3, "tensorflow"), "e3nn": (run_e3nn, "e3nn"), "e3nn-jax": (run_e3nn_jax, "e3nn_jax")}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 1008, 4000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--impl", nargs="+", default=list(IMPLS))
    parser.add_argument("--child")
    parser.add_argument("--mode", choices=["infer", "train"])
    args = parser.parse_args()
    if args.child:
        t, atoms, edges = IMPLS[args.child][0](args.sizes[0], args.repeat, args.mode)
        print(json.dumps(dict(impl=args.child, n=args.sizes[0], mode=args.mode, t=t, atoms=atoms, edges=edges,
                              rss=peak_rss_gb())), flush=True)
        return

    res = {}
    for n in args.sizes:
        for mode in ("infer", "train"):
            impls = {i: ({}, IMPLS[i][1]) for i in args.impl}
            for impl, r in run_children(__file__, impls, ["--repeat", str(args.repeat), "--sizes", str(n), "--mode", mode]):
                res[(impl, n, mode)] = r
    names = [i for i in IMPLS if i in args.impl]
    peers = [p for p in names if p != "kerase3-tf"]
    for mode, unit in (("infer", "inference (energy + forces)"), ("train", "training step")):
        print(f"\n{unit}: atoms/s" if mode == "infer" else f"\n{unit}: ms", "and peak RSS of the process (GB)\n")
        print("| atoms | edges | " + " | ".join(f"{i} {'atoms/s' if mode == 'infer' else 'ms'}" for i in names)
              + " | " + " | ".join(f"{p} / kerase3 time" for p in peers) + " | " + " | ".join(f"{i} GB" for i in names) + " |")
        print("|" + "---|" * (2 + 2 * len(names) + len(peers)))
        for n in args.sizes:
            rs = [res.get((i, n, mode)) for i in names]
            ref = next((r for r in rs if r), None)
            if ref is None:
                continue
            k = res.get(("kerase3-tf", n, mode))
            cells = [str(ref["atoms"]), str(ref["edges"])]
            cells += [("-" if r is None else f"{r['atoms'] / r['t']:.0f}" if mode == "infer" else f"{r['t'] * 1e3:.0f}") for r in rs]
            cells += [f"{res[(p, n, mode)]['t'] / k['t']:.2f}" if k and (p, n, mode) in res else "-" for p in peers]
            cells += ["-" if r is None else f"{r['rss']:.2f}" for r in rs]
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
