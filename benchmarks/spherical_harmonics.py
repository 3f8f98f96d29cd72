"""Spherical harmonics: kerase3 against e3nn (PyTorch) and e3nn-jax, in one run.

    python benchmarks/spherical_harmonics.py [--n 1000000] [--lmax 2 4 8] [--repeat 10]

For lmax in {2, 4, 8} and n float32 vectors, times the forward pass (all degrees
0..lmax, normalize=True, "component") and the forward+backward pass (gradient of
the sum of the harmonics with respect to the vectors), median of --repeat runs
after warm-up. Each implementation runs in its own process:

- kerase3-tf:  Keras TensorFlow backend, tf.function(jit_compile=True) (XLA)
- kerase3-jax: Keras JAX backend, jax.jit
- e3nn:        e3nn 0.6 on PyTorch (its default TorchScript mode)
- e3nn-jax:    e3nn_jax.spherical_harmonics under jax.jit

Peers that are not installed are skipped. Prints a table with each peer's time
divided by kerase3-tf's (a ratio > 1 means kerase3 is faster).
"""

import argparse
import json

from _common import median_time, run_children


def _timeit(fn, repeat):
    return median_time(fn, repeat)


def run_kerase3_tf(n, lmax, repeat):
    import numpy as np
    import tensorflow as tf
    from kerase3.ops import spherical_harmonics

    ls = list(range(lmax + 1))
    x = tf.constant(np.random.default_rng(0).normal(size=(n, 3)).astype("float32"))
    fwd = tf.function(lambda v: spherical_harmonics(ls, v), jit_compile=True)

    @tf.function(jit_compile=True)
    def bwd(v):
        with tf.GradientTape() as tape:
            tape.watch(v)
            s = tf.reduce_sum(spherical_harmonics(ls, v))
        return tape.gradient(s, v)

    # on the CPU an XLA call returns once its result is computed; no host copy is timed
    return _timeit(lambda: fwd(x), repeat), _timeit(lambda: bwd(x), repeat)


def run_kerase3_jax(n, lmax, repeat):
    import jax
    import numpy as np
    from kerase3.ops import spherical_harmonics

    ls = list(range(lmax + 1))
    x = jax.numpy.asarray(np.random.default_rng(0).normal(size=(n, 3)).astype("float32"))
    fwd = jax.jit(lambda v: spherical_harmonics(ls, v))
    bwd = jax.jit(jax.grad(lambda v: spherical_harmonics(ls, v).sum()))
    return _timeit(lambda: fwd(x).block_until_ready(), repeat), _timeit(lambda: bwd(x).block_until_ready(), repeat)


def run_e3nn(n, lmax, repeat):
    import numpy as np
    import torch
    from e3nn import o3

    dev = "cuda" if torch.cuda.is_available() else "cpu"
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    ls = list(range(lmax + 1))
    x = torch.tensor(np.random.default_rng(0).normal(size=(n, 3)).astype("float32"), device=dev)
    sh = o3.SphericalHarmonics(ls, normalize=True, normalization="component")

    def fwd():
        with torch.no_grad():
            sh(x)
        sync()

    def bwd():
        v = x.clone().requires_grad_(True)
        sh(v).sum().backward()
        sync()

    return _timeit(fwd, repeat), _timeit(bwd, repeat)


def run_e3nn_jax(n, lmax, repeat):
    import e3nn_jax as e3nn
    import jax
    import numpy as np

    irreps = e3nn.Irreps.spherical_harmonics(lmax)
    x = jax.numpy.asarray(np.random.default_rng(0).normal(size=(n, 3)).astype("float32"))
    f = lambda v: e3nn.spherical_harmonics(irreps, v, normalize=True, normalization="component").array  # noqa: E731
    fwd = jax.jit(f)
    bwd = jax.jit(jax.grad(lambda v: f(v).sum()))
    return _timeit(lambda: fwd(x).block_until_ready(), repeat), _timeit(lambda: bwd(x).block_until_ready(), repeat)


IMPLS = {
    "kerase3-tf": (run_kerase3_tf, {"KERAS_BACKEND": "tensorflow"}, "tensorflow"),
    "kerase3-jax": (run_kerase3_jax, {"KERAS_BACKEND": "jax"}, "jax"),
    "e3nn": (run_e3nn, {}, "e3nn"),
    "e3nn-jax": (run_e3nn_jax, {}, "e3nn_jax"),
}


def _child(impl, n, lmaxs, repeat):
    fn = IMPLS[impl][0]
    for lmax in lmaxs:
        fwd, bwd = fn(n, lmax, repeat)
        print(json.dumps({"impl": impl, "lmax": lmax, "fwd": fwd, "bwd": bwd}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--lmax", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--impl", nargs="+", default=list(IMPLS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.n, args.lmax, args.repeat)
        return


    results = {}
    impls = {i: IMPLS[i][1:] for i in args.impl}
    child_args = ["--n", str(args.n), "--repeat", str(args.repeat), "--lmax", *map(str, args.lmax)]
    for impl, r in run_children(__file__, impls, child_args):
        results[(impl, r["lmax"])] = r

    print(f"\nspherical harmonics, n = {args.n:,} float32 vectors, median of {args.repeat}, times in ms")
    print("ratio = time / kerase3-tf time (> 1: kerase3-tf is faster)\n")
    impls = [i for i in args.impl if any((i, l) in results for l in args.lmax)]
    header = "| lmax | pass | " + " | ".join(impls) + " | " + " | ".join(f"{i} / kerase3-tf" for i in impls if i != "kerase3-tf") + " |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for lmax in args.lmax:
        for key, name in (("fwd", "forward"), ("bwd", "forward+backward")):
            base = results.get(("kerase3-tf", lmax), {}).get(key)
            cells = [f"{results[(i, lmax)][key] * 1e3:.1f}" if (i, lmax) in results else "-" for i in impls]
            ratios = [
                f"{results[(i, lmax)][key] / base:.2f}" if base and (i, lmax) in results else "-"
                for i in impls
                if i != "kerase3-tf"
            ]
            print(f"| {lmax} | {name} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")


if __name__ == "__main__":
    main()
