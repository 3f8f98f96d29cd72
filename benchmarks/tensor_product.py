"""Tensor products: kerase3 against e3nn (PyTorch) and e3nn-jax, in one run.

    python benchmarks/tensor_product.py [--dtype float32 float64] [--repeat 10] [--workloads W1 W2 W3]

Workloads (the same instructions and normalisations in every library):

- W1: FullyConnectedTensorProduct("32x0e+32x1o+32x2e", "0e+1o+2e", "32x0e+32x1o+32x2e"),
      shared weights, batch 20,000.
- W2: NequIP's convolution product: "uvu" from "32x0e+32x1o+32x2e" and "0e+1o+2e" to every
      output with l <= 2, per-edge weights, 20,000 edges.
- W3: MACE-large's "uvu" product "128x0e+128x1o+128x2e" x "0e+1o+2e+3o" to the outputs
      0e, 1o, 2e, 3o, per-edge weights, 10,000 edges.

Forward, and forward+backward (gradients with respect to both inputs and the weights,
pulled back from a random cotangent, not ``out.sum()``). Median of --repeat runs after
warm-up. Implementations run in separate processes:

- kerase3-tf:  ``kerase3.ops.tensor_product`` on Keras's TensorFlow backend under
               ``tf.function(jit_compile=True)`` (XLA);
- e3nn:        ``e3nn.o3.TensorProduct`` (e3nn 0.6, TorchScript code generation);
- e3nn-jax:    ``e3nn_jax.legacy.FunctionalTensorProduct`` under ``jax.jit`` (vmapped).

FLOP convention (2 per multiply-add), per sample and path: ``2 * (nnz(C) * P + min(d1, d3) * W)``
with ``nnz(C)`` the non-zeros of the Clebsch-Gordan tensor, ``P`` the channel pairs the path
couples (u*v, or u for "uu" modes) and ``W`` its weights (channel mixing on the cheaper side);
forward+backward counts 3x the forward. The machine's float32 matmul peak is a 4096^3
``tf.matmul`` under XLA measured in the same run.
"""

import argparse
import json

from _common import median_time, run_children

import numpy as np

WORKLOADS = ("W1", "W2", "W3")


def workload(name):
    """(irreps_in1, irreps_in2, irreps_out, instructions, shared_weights, batch)"""
    from kerase3.o3 import Irreps

    if name == "W1":
        i1, i2, io = Irreps("32x0e+32x1o+32x2e"), Irreps("0e+1o+2e"), Irreps("32x0e+32x1o+32x2e")
        instr = [(a, b, c, "uvw", True) for a, (_, r1) in enumerate(i1) for b, (_, r2) in enumerate(i2)
                 for c, (_, ro) in enumerate(io) if ro in r1 * r2]
        return str(i1), str(i2), str(io), instr, True, 20000
    if name == "W2":
        i1, i2, lmax, keep, batch = Irreps("32x0e+32x1o+32x2e"), Irreps("0e+1o+2e"), 2, None, 20000
    else:
        i1, i2, lmax, keep, batch = Irreps("128x0e+128x1o+128x2e"), Irreps("0e+1o+2e+3o"), 3, {"0e", "1o", "2e", "3o"}, 10000
    out, instr = [], []
    for a, (mul, r1) in enumerate(i1):
        for b, (_, r2) in enumerate(i2):
            for ro in r1 * r2:
                if ro.l <= lmax and (keep is None or str(ro) in keep):
                    instr.append((a, b, len(out), "uvu", True))
                    out.append((mul, ro))
    return str(i1), str(i2), str(Irreps(out)), instr, False, batch


def flops_forward(name):
    from kerase3.ops import TensorProductPlan
    from kerase3.ops.plan import cg_terms

    i1, i2, io, instr, shared, batch = workload(name)
    plan = TensorProductPlan(i1, i2, io, instr)
    total = 0
    for ins in plan.instructions:
        (m1, r1), (m2, r2), (_, ro) = plan.irreps_in1[ins.i_in1], plan.irreps_in2[ins.i_in2], plan.irreps_out[ins.i_out]
        pairs = m1 if ins.connection_mode.startswith("uu") else m1 * m2
        w = int(np.prod(ins.path_shape)) if ins.has_weight else 0
        total += 2 * (len(cg_terms(r1.l, r2.l, ro.l)) * pairs + min(r1.dim, ro.dim) * w)
    return total * batch


def _timeit(fn, repeat):
    return median_time(fn, repeat)


def _data(name, dtype, weight_numel):
    from kerase3.o3 import Irreps

    i1, i2, io, _, shared, batch = workload(name)
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(batch, Irreps(i1).dim)).astype(dtype)
    x2 = rng.normal(size=(batch, Irreps(i2).dim)).astype(dtype)
    w = rng.normal(size=(weight_numel,) if shared else (batch, weight_numel)).astype(dtype)
    cot = rng.normal(size=(batch, Irreps(io).dim)).astype(dtype)
    return x1, x2, w, cot


def kerase3_tf_calls(name, dtype):
    """(forward, forward+backward, (x1, x2, w, cotangent)) of kerase3 on TensorFlow under XLA."""
    import tensorflow as tf
    from kerase3.ops import TensorProductPlan, tensor_product

    i1, i2, io, instr, shared, _ = workload(name)
    plan = TensorProductPlan(i1, i2, io, instr)
    data = tuple(tf.constant(a) for a in _data(name, dtype, plan.weight_numel))

    @tf.function(jit_compile=True)
    def forward(a, b, c):
        return tensor_product(plan, a, b, c, shared_weights=shared)

    @tf.function(jit_compile=True)
    def backward(a, b, c, g):
        with tf.GradientTape() as tape:
            tape.watch([a, b, c])
            y = tensor_product(plan, a, b, c, shared_weights=shared)
        return tape.gradient(y, [a, b, c], output_gradients=g)

    return forward, backward, data


def run_kerase3_tf(name, dtype, repeat):
    fwd, bwd, (x1, x2, w, cot) = kerase3_tf_calls(name, dtype)
    return _timeit(lambda: fwd(x1, x2, w), repeat), _timeit(lambda: bwd(x1, x2, w, cot), repeat)


def run_e3nn(name, dtype, repeat):
    import torch
    from e3nn import o3

    torch.set_default_dtype(getattr(torch, dtype))
    i1, i2, io, instr, shared, _ = workload(name)
    tp = o3.TensorProduct(i1, i2, io, instr, shared_weights=shared, internal_weights=False)
    x1, x2, w, cot = (torch.tensor(a) for a in _data(name, dtype, tp.weight_numel))

    def fwd():
        with torch.no_grad():
            tp(x1, x2, w)

    def bwd():
        a, b, c = (t.clone().requires_grad_(True) for t in (x1, x2, w))
        tp(a, b, c).backward(cot)

    return _timeit(fwd, repeat), _timeit(bwd, repeat)


def run_e3nn_jax(name, dtype, repeat):
    import e3nn_jax as e3nn
    import jax
    from e3nn_jax.legacy import FunctionalTensorProduct

    i1, i2, io, instr, shared, _ = workload(name)
    tp = FunctionalTensorProduct(e3nn.Irreps(i1), e3nn.Irreps(i2), e3nn.Irreps(io), instr)
    numel = sum(int(np.prod(ins.path_shape)) for ins in tp.instructions if ins.has_weight)
    x1, x2, w, cot = (jax.numpy.asarray(a) for a in _data(name, dtype, numel))

    def f(w, a, b):
        def one(wi, ai, bi):
            return tp.left_right(wi, e3nn.IrrepsArray(tp.irreps_in1, ai), e3nn.IrrepsArray(tp.irreps_in2, bi)).array
        return jax.vmap(one, in_axes=(None if shared else 0, 0, 0))(w, a, b)

    fwd = jax.jit(f)

    @jax.jit
    def bwd(w, a, b, g):
        _, pull = jax.vjp(f, w, a, b)
        return pull(g)

    return (_timeit(lambda: fwd(w, x1, x2).block_until_ready(), repeat),
            _timeit(lambda: jax.block_until_ready(bwd(w, x1, x2, cot)), repeat))


def matmul_peak(repeat=3):
    import tensorflow as tf

    a = tf.random.normal((4096, 4096))
    f = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
    t = _timeit(lambda: f(a), repeat)
    return 2 * 4096**3 / t / 1e9


IMPLS = {
    "kerase3-tf": (run_kerase3_tf, {"KERAS_BACKEND": "tensorflow"}, "tensorflow"),
    "e3nn": (run_e3nn, {}, "e3nn"),
    "e3nn-jax": (run_e3nn_jax, {"JAX_ENABLE_X64": "1"}, "e3nn_jax"),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", nargs="+", default=["float32", "float64"])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--impl", nargs="+", default=list(IMPLS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        fn = IMPLS[args.child][0]
        if args.child == "kerase3-tf":
            print(json.dumps({"peak": matmul_peak()}), flush=True)
        for dtype in args.dtype:
            for name in args.workloads:
                fwd, bwd = fn(name, dtype, args.repeat)
                print(json.dumps({"impl": args.child, "w": name, "dtype": dtype, "fwd": fwd, "bwd": bwd}), flush=True)
        return


    results, peak = {}, None
    impls = {i: IMPLS[i][1:] for i in args.impl}
    child_args = ["--repeat", str(args.repeat), "--dtype", *args.dtype, "--workloads", *args.workloads]
    for impl, r in run_children(__file__, impls, child_args):
        if "peak" in r:
            peak = r["peak"]
        else:
            results[(impl, r["w"], r["dtype"])] = r

    print(f"\nfloat32 matmul peak (4096^3 tf.matmul, XLA): {peak:.0f} GFLOP/s" if peak else "")
    print("times in ms; GFLOP/s and % of peak for kerase3-tf; ratio = peer time / kerase3-tf time\n")
    peers = [i for i in args.impl if i != "kerase3-tf"]
    print("| workload | dtype | pass | kerase3-tf ms | GFLOP/s | % peak | " + " | ".join(f"{p} ms" for p in peers)
          + " | " + " | ".join(f"{p} / kerase3-tf" for p in peers) + " |")
    print("|" + "---|" * (6 + 2 * len(peers)))
    for dtype in args.dtype:
        for name in args.workloads:
            fl = flops_forward(name)
            for key, label, mult in (("fwd", "forward", 1), ("bwd", "forward+backward", 3)):
                base = results.get(("kerase3-tf", name, dtype), {}).get(key)
                gf = fl * mult / base / 1e9 if base else None
                cells = [f"{base * 1e3:.1f}" if base else "-", f"{gf:.1f}" if gf else "-",
                         f"{100 * gf / peak:.0f}%" if gf and peak else "-"]
                ts = [results.get((p, name, dtype), {}).get(key) for p in peers]
                cells += [f"{t * 1e3:.1f}" if t else "-" for t in ts]
                cells += [f"{t / base:.2f}" if t and base else "-" for t in ts]
                print(f"| {name} | {dtype} | {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
