import pickle

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from kerase3.o3 import Irrep, Irreps


# -- parsing and printing ---------------------------------------------------------------------------


def test_parse_and_print():
    irreps = Irreps("16x0e + 8x1o + 2x2e")
    assert str(irreps) == "16x0e+8x1o+2x2e"
    assert [(mul, str(ir)) for mul, ir in irreps] == [(16, "0e"), (8, "1o"), (2, "2e")]
    assert irreps.dim == 16 + 24 + 10
    assert irreps.num_irreps == 26
    assert irreps.lmax == 2
    assert irreps.ls == [0] * 16 + [1] * 8 + [2] * 2
    assert Irreps("0e") == Irreps("1x0e")
    assert Irreps("1y + 2y + 3y") == Irreps("1o+2e+3o")
    assert Irreps("") == Irreps() == Irreps([])
    assert Irreps("  3 x 1o+ 2e ") == "3x1o+1x2e"
    assert Irreps([(2, "1o"), "0e", Irrep(2, 1), (1, (3, -1))]) == "2x1o+0e+2e+3o"
    assert Irreps(Irrep("1e")) == "1e"
    assert Irrep("1y") == Irrep(1, -1) == (1, -1)
    assert repr(Irrep(3, 1)) == "3e"
    assert Irreps("0x1o").dim == 0


@pytest.mark.parametrize("bad", ["3x1q", "1x", "x1e", "-1e", "1.5e", "3x1o+", "3xx1e", "2e2", "abc", "1e*2"])
def test_bad_strings_raise_value_error(bad):
    with pytest.raises(ValueError, match="Received"):
        Irreps(bad)


def test_bad_irrep_arguments():
    with pytest.raises(ValueError, match="l must be a non-negative integer"):
        Irrep(-1, 1)
    with pytest.raises(ValueError, match="parity"):
        Irrep(1, 0)
    with pytest.raises(ValueError, match="parity"):
        Irrep(1, 2)
    with pytest.raises(ValueError):
        Irrep(1.0, 1)
    with pytest.raises(ValueError, match="multiplicity"):
        Irreps([(-2, "1o")])
    with pytest.raises(ValueError):
        Irreps(3.5)


def test_slices_and_container():
    irreps = Irreps("2x0e + 1o + 3x2e")
    assert irreps.slices() == [slice(0, 2), slice(2, 5), slice(5, 20)]
    assert "1o" in irreps and Irrep("1e") not in irreps and "junk" not in irreps
    assert irreps.count("2e") == 3 and irreps.count("3o") == 0
    assert irreps.index("1o") == 1
    assert irreps.index((3, "2e")) == 2
    with pytest.raises(ValueError, match="not in"):
        irreps.index("4e")
    assert irreps[1:] == "1o+3x2e" and isinstance(irreps[1:], Irreps)
    assert irreps[0].mul == 2 and irreps[0].ir == "0e" and irreps[0].dim == 2
    assert irreps.slice_by_mul[1:4] == "1x0e+1x1o+1x2e"


def test_algebra():
    assert Irreps("1o") + "2e" == "1o+2e"
    assert "0e" + Irreps("1o") == "0e+1o"
    assert Irrep("1o") + Irrep("0e") == "1o+0e"
    assert Irreps("1o+0e") * 2 == "1o+0e+1o+0e"  # like e3nn: repeats the list
    assert 3 * Irrep("2e") == "3x2e"
    assert list(Irrep("1o") * Irrep("1o")) == [Irrep("0e"), Irrep("1e"), Irrep("2e")]
    assert list(Irrep("2e") * Irrep("1o")) == ["1o", "2o", "3o"]
    assert Irreps("2x1o") * Irreps("1o + 0e") == "2x0e+2x1o+2x1e+2x2e"
    assert Irreps("1o+1o+0e+0x2e+0e+0e").simplify() == "2x1o+3x0e"
    assert Irreps("1o+0x2e+0e").remove_zero_multiplicities() == "1o+0e"
    assert Irreps.spherical_harmonics(3) == "0e+1o+2e+3o"
    assert Irreps.spherical_harmonics(2, p=1) == "0e+1e+2e"
    assert list(Irrep.iterator(1)) == ["0e", "0o", "1o", "1e"]


def test_filter():
    irreps = Irreps("4x0e + 2x1o + 1e + 3x2e")
    assert irreps.filter(keep="0e + 1o") == "4x0e+2x1o"
    assert irreps.filter(keep=["1e", Irrep("2e")]) == "1e+3x2e"
    assert irreps.filter(drop="1o") == "4x0e+1e+3x2e"
    assert irreps.filter(lmax=1) == "4x0e+2x1o+1e"
    assert irreps.filter(keep=lambda mul_ir: mul_ir.mul > 2) == "4x0e+3x2e"
    assert irreps.filter(drop="0e", lmax=1) == "2x1o+1e"
    with pytest.raises(ValueError, match="not both"):
        irreps.filter(keep="0e", drop="1o")


def test_sort_regroup_match_e3nn(o3_ref):
    for i in range(3):
        irreps = Irreps(str(o3_ref[f"irreps_{i}"]))
        s = irreps.sort()
        assert str(s.irreps) == str(o3_ref[f"irreps_{i}_sorted"])
        assert s.p == tuple(o3_ref[f"irreps_{i}_p"])
        assert s.inv == tuple(o3_ref[f"irreps_{i}_inv"])
        assert str(irreps.regroup()) == str(o3_ref[f"irreps_{i}_regroup"])
        assert str(irreps.simplify()) == str(o3_ref[f"irreps_{i}_simplify"])


def test_hash_pickle_and_empty_lmax():
    assert len({Irreps("1o+0e"), Irreps("1x1o+1x0e"), Irreps("0e")}) == 2
    irreps = Irreps("3x1o+2e")
    assert pickle.loads(pickle.dumps(irreps)) == irreps
    assert pickle.loads(pickle.dumps(Irrep("2o"))) == Irrep("2o")
    with pytest.raises(ValueError, match="empty"):
        Irreps("").lmax


def test_randn():
    irreps = Irreps("2x0e + 3x1o + 2e")
    x = irreps.randn(5, -1, 2, seed=0)
    assert x.shape == (5, irreps.dim, 2)
    y = irreps.randn(7, -1, normalization="norm", seed=0)
    for s, (mul, ir) in zip(irreps.slices(), irreps):
        np.testing.assert_allclose(np.linalg.norm(y[:, s].reshape(7, mul, ir.dim), axis=-1), 1.0, rtol=1e-12)
    with pytest.raises(ValueError, match="-1"):
        irreps.randn(3, 4)
    with pytest.raises(ValueError, match="normalization"):
        irreps.randn(3, -1, normalization="bogus")


# -- property-based tests ----------------------------------------------------------------------------

mul_ir = st.tuples(st.integers(0, 40), st.integers(0, 15), st.sampled_from(["e", "o", "y"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(mul_ir, max_size=6), st.booleans(), st.sampled_from(["+", " + ", "+ "]))
def test_random_valid_strings_round_trip(terms, implicit_one, sep):
    text = sep.join(
        (f"{l}{p}" if (implicit_one and mul == 1) else f"{mul}x{l}{p}") for mul, l, p in terms
    )
    irreps = Irreps(text)
    assert len(irreps) == len(terms)
    for (mul, l, p), (m, ir) in zip(terms, irreps):
        assert m == mul and ir.l == l
        assert ir.p == {"e": 1, "o": -1, "y": (-1) ** l}[p]
    assert Irreps(str(irreps)) == irreps
    assert irreps.dim == sum(mul * (2 * l + 1) for mul, l, _ in terms)
    regrouped = irreps.regroup()
    assert regrouped.dim == irreps.dim
    assert list(regrouped) == sorted(regrouped, key=lambda m: m.ir)
    s = irreps.sort()
    assert [irreps[i] for i in s.inv] == list(s.irreps)
    assert [s.irreps[s.p[i]] for i in range(len(irreps))] == list(irreps)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789xeoy+ -.*,()qX\n", max_size=20) | st.text(max_size=12))
def test_random_junk_raises_only_value_error(text):
    try:
        irreps = Irreps(text)
    except ValueError:
        return
    assert Irreps(str(irreps)) == irreps


@settings(max_examples=100, deadline=None)
@given(st.lists(mul_ir, max_size=4), st.lists(mul_ir, max_size=4))
def test_algebra_properties(a, b):
    ia = Irreps([(m, f"{l}{p}") for m, l, p in a])
    ib = Irreps([(m, f"{l}{p}") for m, l, p in b])
    assert (ia + ib).dim == ia.dim + ib.dim
    assert (ia * 3).dim == 3 * ia.dim
    assert (ia * ib).dim == ia.dim * ib.dim
    assert ia.simplify().dim == ia.dim
    assert ia.filter(lmax=3).dim + ia.filter(keep=lambda m: m.ir.l > 3).dim == ia.dim
