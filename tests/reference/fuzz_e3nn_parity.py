"""Random cases against e3nn itself: TensorProduct (every mode, zero multiplicities,
normalisations, variances, path weights, shared and per-sample weights; outputs and, on
TensorFlow, gradients), its subclasses and Linear, float64, 1e-10.

Needs torch and e3nn next to kerase3 (not part of the test suite):

    python tests/reference/fuzz_e3nn_parity.py SEED CASES
    KERAS_BACKEND=jax JAX_ENABLE_X64=1 python tests/reference/fuzz_e3nn_parity.py SEED CASES

Prints FAIL/ERROR lines and the number of failures. Errors raised inside e3nn (torch
``RuntimeError``: e3nn's Linear fails on some zero-width or bias-only layouts) are e3nn's.
"""
import os, sys, random, traceback
os.environ["KERAS_BACKEND"] = os.environ.get("KERAS_BACKEND", "tensorflow")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, torch
from e3nn import o3
import keras
from kerase3 import layers
from kerase3.interop.e3nn import load_weights
torch.set_default_dtype(torch.float64)
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
IRS = ["0e", "0o", "1o", "1e", "2e", "2o", "3o"]
def rand_irreps(n=None, allow0=True, maxmul=3):
    n = n or rng.randint(1, 4)
    return "+".join(f"{rng.randint(0 if allow0 else 1, maxmul)}x{rng.choice(IRS)}" for _ in range(n))
fails = 0
def check(name, y, ref, tol=1e-10):
    global fails
    err = np.abs(np.asarray(y) - ref.detach().numpy()).max() if ref.numel() else 0.0
    if not err <= tol:
        fails += 1
        print("FAIL", name, err)
N = int(sys.argv[2]) if len(sys.argv) > 2 else 50
for case in range(N):
    try:
        i1, i2 = o3.Irreps(rand_irreps()), o3.Irreps(rand_irreps())
        mode = rng.choice(["uvw", "uvu", "uvv", "uuw", "uuu", "uvuv", "uvu<v", "u<vw"])
        if mode in ("uuw", "uuu", "uvu<v", "u<vw"):
            m = rng.randint(1, 3)
            i2 = o3.Irreps([(m, ir) for _, ir in i2]); i1 = o3.Irreps([(m, ir) for _, ir in i1])
        out, instr = [], []
        for a, (m1, r1) in enumerate(i1):
            for b, (m2, r2) in enumerate(i2):
                for ro in r1 * r2:
                    if rng.random() < 0.5: continue
                    mo = {"uvw": rng.randint(0, 3), "uvu": m1, "uvv": m2, "uuw": rng.randint(1, 3), "uuu": m1,
                          "uvuv": m1 * m2, "uvu<v": m1 * (m1 - 1) // 2, "u<vw": rng.randint(1, 3)}[mode]
                    hw = True if mode in ("uvw", "u<vw") else rng.random() < 0.7
                    if mode == "uuw" and not hw: mo = 1
                    ins = (a, b, len(out), mode, hw) + ((rng.choice([0.5, 2.0]),) if rng.random() < 0.2 else ())
                    instr.append(ins); out.append((mo, ro))
        if not instr: continue
        io = o3.Irreps(out)
        kw = dict(irrep_normalization=rng.choice(["component", "norm", "none"]), path_normalization=rng.choice(["element", "path", "none"]))
        if rng.random() < 0.3:
            kw.update(in1_var=[rng.choice([0.5, 1.0, 2.0]) for _ in i1], in2_var=[rng.choice([0.5, 1.0]) for _ in i2], out_var=[rng.choice([1.0, 3.0]) for _ in io])
        shared = rng.random() < 0.5
        tp = o3.TensorProduct(i1, i2, io, instr, shared_weights=shared, internal_weights=shared, **kw)
        B = rng.choice([1, 3, 4])
        x1, x2 = i1.randn(B, -1), i2.randn(B, -1)
        k = layers.TensorProduct(str(i1), str(i2), str(io), instr, shared_weights=shared, dtype="float64", **kw)
        if shared:
            y = tp(x1, x2); k(x1.numpy(), x2.numpy()); load_weights(k, tp.weight); yk = k(x1.numpy(), x2.numpy())
        else:
            w = torch.randn(B, tp.weight_numel); y = tp(x1, x2, w); yk = k(x1.numpy(), x2.numpy(), w.numpy())
        check(f"tp{case} {mode} {i1}|{i2}|{io} {kw} shared={shared}", keras.ops.convert_to_numpy(yk), y)
        if os.environ["KERAS_BACKEND"] == "tensorflow" and y.numel():
            import tensorflow as tf
            g = torch.randn_like(y)
            xt1, xt2 = x1.clone().requires_grad_(True), x2.clone().requires_grad_(True)
            wt = (tp.weight if shared else w.clone().requires_grad_(True))
            yt = tp(xt1, xt2) if shared else tp(xt1, xt2, wt)
            if not yt.requires_grad: raise StopIteration
            gr = torch.autograd.grad(yt, [xt1, xt2, wt] if wt.numel() else [xt1, xt2], g, allow_unused=True)
            a, b = tf.constant(x1.numpy()), tf.constant(x2.numpy())
            c = k.weight if shared and k.weight_numel else (None if shared else tf.constant(w.numpy()))
            with tf.GradientTape() as tape:
                tape.watch([a, b] + ([c] if c is not None and not shared else []))
                yy = k(a, b) if shared else k(a, b, c)
            srcs = [a, b] + ([c] if c is not None and wt.numel() else [])
            gk = tape.gradient(yy, srcs, output_gradients=tf.constant(g.numpy()))
            for name, src, u, v in zip(("x1", "x2", "w"), srcs, gk, gr):
                u = np.zeros(src.shape) if u is None else keras.ops.convert_to_numpy(u)
                if v is None:
                    if np.abs(u).max() == 0:
                        continue
                    v = torch.zeros(1)
                check(f"grad {name} tp{case} {mode}", u, v)
    except StopIteration:
        pass
    except Exception as e:
        fails += 1
        print("ERROR", case, mode, str(i1), str(i2), str(io), instr, shared, str(e).splitlines()[-1][:200] if str(e) else repr(e))
# subclasses
for case in range(N // 2):
    try:
        i1, i2 = o3.Irreps(rand_irreps()), o3.Irreps(rand_irreps())
        which = rng.choice(["fctp", "ftp", "etp", "tsq", "tsq_out"])
        kwn = dict(irrep_normalization=rng.choice(["component", "norm"]))
        filt = dict(filter_ir_out=rng.sample(IRS, 3)) if rng.random() < 0.4 else {}
        if which == "fctp":
            io = o3.Irreps(rand_irreps())
            t = o3.FullyConnectedTensorProduct(i1, i2, io, **kwn); kk = layers.FullyConnectedTensorProduct(str(i1), str(i2), str(io), dtype="float64", **kwn); xs = (i1, i2)
        elif which == "ftp":
            t = o3.FullTensorProduct(i1, i2, **kwn, **filt); kk = layers.FullTensorProduct(str(i1), str(i2), dtype="float64", **kwn, **filt); xs = (i1, i2)
        elif which == "etp":
            i2 = o3.Irreps([(m, rng.choice(IRS)) for m, _ in i1])
            t = o3.ElementwiseTensorProduct(i1, i2, **kwn, **filt); kk = layers.ElementwiseTensorProduct(str(i1), str(i2), dtype="float64", **kwn, **filt); xs = (i1, i2)
        elif which == "tsq":
            t = o3.TensorSquare(i1, **kwn, **filt); kk = layers.TensorSquare(str(i1), dtype="float64", **kwn, **filt); xs = (i1,)
        else:
            io = o3.Irreps(rand_irreps())
            t = o3.TensorSquare(i1, irreps_out=io, **kwn); kk = layers.TensorSquare(str(i1), str(io), dtype="float64", **kwn); xs = (i1,)
        B = 3
        xt = [ir.randn(B, -1) for ir in xs]
        y = t(*xt)
        kk(*[x.numpy() for x in xt])
        if t.weight_numel: load_weights(kk, t.weight)
        yk = kk(*[x.numpy() for x in xt])
        assert str(kk.plan.irreps_out) == str(t.irreps_out), (str(kk.plan.irreps_out), str(t.irreps_out))
        check(f"{which}{case} {xs} {kwn}", keras.ops.convert_to_numpy(yk), y)
    except Exception as e:
        fails += 1
        print("ERROR", which, case, xs, repr(e)[:300])
# linear
for case in range(N // 2):
    try:
        ii, oo = o3.Irreps(rand_irreps()), o3.Irreps(rand_irreps())
        bias = rng.random() < 0.5
        pn = rng.choice(["element", "path"])
        lin = o3.Linear(ii, oo, biases=bias, path_normalization=pn)
        if bias: torch.nn.init.normal_(lin.bias) if lin.bias.numel() else None
        kl = layers.Linear(str(ii), str(oo), biases=bias, path_normalization=pn, dtype="float64")
        x = ii.randn(4, -1)
        y = lin(x); kl(x.numpy()); load_weights(kl, lin.weight, bias=lin.bias if bias else None)
        check(f"lin{case} {ii}->{oo} bias={bias} {pn}", keras.ops.convert_to_numpy(kl(x.numpy())), y)
    except Exception as e:
        fails += 1
        print("ERROR lin", case, str(ii), str(oo), bias, pn, str(e)[:600])
print("fails", fails)
