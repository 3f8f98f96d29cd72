"""Random cases against e3nn itself for the other layers: spherical harmonics (degrees,
parities, normalisations, zero vectors), soft_one_hot_linspace (every basis, cutoff on/off),
soft_unit_step, FullyConnectedNet (through load_weights), NormActivation and BatchNorm
(affine, reduce, normalization, instance; training and running statistics), float64.

Needs torch and e3nn next to kerase3 (not part of the test suite):

    python tests/reference/fuzz_e3nn_layers.py SEED
    KERAS_BACKEND=jax JAX_ENABLE_X64=1 python tests/reference/fuzz_e3nn_layers.py SEED

Where e3nn returns NaN (the Bessel basis at r = 0) kerase3 must be finite and the point is
skipped. Errors raised inside e3nn 0.6 are e3nn's: soft_one_hot_linspace with number=1 and
cutoff=False, NormActivation with normalize=False.
"""
import os, sys, random
os.environ.setdefault("KERAS_BACKEND", "tensorflow"); os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np, torch, keras
from e3nn import o3, nn as enn
from e3nn.math import soft_one_hot_linspace as e_sohl, soft_unit_step as e_sus
from kerase3 import layers, ops as k3
from kerase3.interop.e3nn import load_weights
torch.set_default_dtype(torch.float64)
rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
fails = 0
def check(name, a, b, tol=1e-10):
    global fails
    a = np.asarray(keras.ops.convert_to_numpy(a)); b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    if a.shape == b.shape and not np.all(np.isfinite(b)):
        assert np.all(np.isfinite(a)), name
        m = np.isfinite(b); a, b = a[m], b[m]  # e3nn's NaN (bessel at r = 0): kerase3 is finite there
    if a.shape != b.shape or not np.allclose(a, b, atol=tol, rtol=0, equal_nan=False):
        fails += 1; print("FAIL", name, a.shape, b.shape, np.nanmax(np.abs(a - b)) if a.shape == b.shape else "")
# spherical harmonics
for _ in range(10):
    ls = sorted(rng.sample(range(0, 9), rng.randint(1, 4)))
    p = rng.choice([-1, 1])
    irr = o3.Irreps([(1, (l, p ** l)) for l in ls])
    norm = rng.choice(["component", "norm", "integral"]); nz = rng.random() < 0.5
    v = torch.randn(7, 3); v[0] = 0.0
    if not nz: v = v[1:]
    try:
        ref = o3.spherical_harmonics(irr, v, normalize=nz, normalization=norm)
        got = k3.spherical_harmonics(str(irr), v.numpy(), normalize=nz, normalization=norm)
        check(f"sh {irr} {norm} {nz}", got, ref, 1e-9)
        lay = layers.SphericalHarmonics(str(irr), normalize=nz, normalization=norm, dtype="float64")
        check(f"sh layer {irr}", lay(v.numpy()), ref, 1e-9)
    except Exception as e:
        fails += 1; print("ERROR sh", irr, norm, nz, repr(e)[:200])
# radial
x = torch.linspace(-0.5, 3.0, 57)
for basis in ["gaussian", "cosine", "smooth_finite", "fourier", "bessel"]:
    for cutoff in (True, False):
        for n in (1, 3, 8):
            st, en = rng.choice([(0.0, 2.0), (0.5, 2.5), (-1.0, 1.0)])
            try:
                check(f"sohl {basis} {cutoff} {n} {st} {en}", k3.soft_one_hot_linspace(x.numpy(), st, en, n, basis, cutoff), e_sohl(x, st, en, n, basis, cutoff))
            except Exception as e:
                fails += 1; print("ERROR sohl", basis, cutoff, n, repr(e)[:200])
check("soft_unit_step", k3.soft_unit_step(x.numpy()), e_sus(x))
# fully connected net
ACT = dict(silu=torch.nn.functional.silu, tanh=torch.tanh, relu=torch.relu, sigmoid=torch.sigmoid, softplus=torch.nn.functional.softplus, gelu=torch.nn.functional.gelu)
for _ in range(8):
    hs = [rng.randint(1, 9) for _ in range(rng.randint(2, 5))]
    act = rng.choice(list(ACT) + [None]); vi, vo = rng.choice([1.0, 2.0]), rng.choice([1.0, 0.5]); oa = rng.random() < 0.5
    try:
        net = enn.FullyConnectedNet(hs, ACT.get(act), variance_in=vi, variance_out=vo, out_act=oa)
        k = layers.FullyConnectedNet(hs, act, variance_in=vi, variance_out=vo, out_act=oa, dtype="float64")
        xx = torch.randn(5, hs[0]); k(xx.numpy()); load_weights(k, net.state_dict())
        check(f"fcn {hs} {act} {vi} {vo} {oa}", k(xx.numpy()), net(xx))
    except Exception as e:
        fails += 1; print("ERROR fcn", hs, act, repr(e)[:300])
# norm activation
for _ in range(6):
    irr = o3.Irreps("+".join(f"{rng.randint(0,3)}x{rng.choice(['0e','0o','1o','1e','2e','3o'])}" for _ in range(rng.randint(1, 4))))
    nmz, bias = rng.random() < 0.5, rng.random() < 0.5
    act = rng.choice(["sigmoid", "tanh", "silu"])
    try:
        e = enn.NormActivation(irr, ACT[act], normalize=nmz, bias=bias)
        if bias:
            with torch.no_grad(): e.biases.normal_()
        k = layers.NormActivation(str(irr), act, normalize=nmz, bias=bias, dtype="float64")
        xx = irr.randn(4, -1); xx[0] = 0.0
        k(xx.numpy())
        if bias: k.biases.assign(e.biases.detach().numpy())
        check(f"normact {irr} {act} {nmz} {bias}", k(xx.numpy()), e(xx))
    except Exception as ex:
        fails += 1; print("ERROR normact", irr, repr(ex)[:300])
# batch norm
for _ in range(6):
    irr = o3.Irreps("+".join(f"{rng.randint(1,3)}x{rng.choice(['0e','0o','1o','1e','2e'])}" for _ in range(rng.randint(1, 4))))
    kw = dict(affine=rng.random() < 0.7, reduce=rng.choice(["mean", "max"]), normalization=rng.choice(["component", "norm"]), instance=rng.random() < 0.3, momentum=rng.choice([0.1, 0.5]))
    if kw["affine"]: kw["include_bias"] = rng.random() < 0.7
    try:
        e = enn.BatchNorm(irr, **kw)
        if kw["affine"]:
            with torch.no_grad():
                e.weight.normal_()
                if getattr(e, 'bias', None) is not None and e.bias.numel(): e.bias.normal_()
        k = layers.BatchNorm(str(irr), **kw, dtype="float64")
        xx = irr.randn(5, 3, -1) * 2 + 0.3
        k(xx.numpy(), training=False)
        if kw["affine"]:
            k.weight.assign(e.weight.detach().numpy())
            if kw.get("include_bias", True) and getattr(e, "bias", None) is not None and e.bias.numel(): k.bias.assign(e.bias.detach().numpy())
        e.train(); check(f"bn train {irr} {kw}", k(xx.numpy(), training=True), e(xx))
        if not kw["instance"]:
            e.eval(); check(f"bn eval {irr} {kw}", k(xx.numpy(), training=False), e(xx))
    except Exception as ex:
        fails += 1; print("ERROR bn", irr, kw, repr(ex)[:300])
print("fails", fails)
