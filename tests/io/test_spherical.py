import numpy as np
import pytest
from keras import ops

from kerase3 import o3
from kerase3.io import CartesianTensor, SphericalTensor, plot_signal
from kerase3.ops.s2grid import from_s2grid, s2_grid, to_s2grid

TETRAHEDRON = np.array([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]]) / np.sqrt(3)


def np_(x):
    return np.asarray(ops.convert_to_numpy(x))


def match(found, expected, atol):
    for v in expected:
        assert np.min(np.linalg.norm(found - v, axis=1)) < atol, (v, found)


def test_find_peaks_recovers_the_directions_of_with_peaks_at():
    st = SphericalTensor(6)
    rng = np.random.default_rng(0)
    for dirs in (TETRAHEDRON, TETRAHEDRON @ o3.rand_matrix(seed=rng).T, np.array([[0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])):
        c = st.with_peaks_at(2.0 * dirs)
        v, f = st.find_peaks(c, min_value=1.0)
        assert len(v) == len(dirs)
        match(v, dirs, 1e-5)
        np.testing.assert_allclose(f, 2.0, atol=1e-6)
        # the signal has the requested values there
        np.testing.assert_allclose(np_(st.signal_xyz(c, dirs)), 2.0, atol=1e-10)
    # a point cloud around a centre (methane's hydrogens around its carbon)
    center = np.array([1.0, -2.0, 0.5])
    c = st.with_peaks_at(center + 1.09 * TETRAHEDRON, center=center)
    v, _ = st.find_peaks(c, min_value=0.5)
    assert len(v) == 4
    match(v, TETRAHEDRON, 1e-5)


def test_grid_transforms_invert_each_other_up_to_the_band_limit():
    irreps = o3.Irreps.spherical_harmonics(5)
    x = np.random.default_rng(1).normal(size=(3, irreps.dim))
    for res_beta, res_alpha in ((6, 11), (10, 21)):
        grid = to_s2grid(x, irreps, res_beta, res_alpha)
        assert tuple(grid.shape) == (3, res_beta, res_alpha)
        np.testing.assert_allclose(np_(from_s2grid(grid, irreps)), x, atol=1e-12)
    # below the band limit the quadrature is no longer exact
    assert np.abs(np_(from_s2grid(to_s2grid(x, irreps, 4, 11), irreps)) - x).max() > 1e-3
    _, w = s2_grid(7, 13)
    assert w.sum() == pytest.approx(4 * np.pi)


def test_rotation_norms_and_diracs():
    st = SphericalTensor(4)
    rng = np.random.default_rng(2)
    c = st.sum_of_diracs(TETRAHEDRON, np.ones(4))
    for sign in (1, -1):
        R = sign * o3.rand_matrix(seed=rng)
        rotated = np_(st.rotate(c, R))
        points = rng.normal(size=(6, 3))
        # f'(R x) = f(x): for p_val = 1, p_arg = -1 also under inversion
        np.testing.assert_allclose(np_(st.signal_xyz(rotated, points @ R.T)), np_(st.signal_xyz(c, points)), atol=1e-12)
        np.testing.assert_allclose(np_(st.norms(rotated)), np_(st.norms(c)), atol=1e-12)
    assert np_(st.norms(c)).shape == (5,)
    assert st.irreps == o3.Irreps("0e+1o+2e+3o+4e") and SphericalTensor(2, p_val=-1, p_arg=1).irreps == o3.Irreps("0o+1o+2o")
    with pytest.raises(ValueError, match="find_peaks"):
        st.find_peaks(np.zeros(3))
    with pytest.raises(ValueError, match="with_peaks_at"):
        SphericalTensor(2, p_val=-1).with_peaks_at(TETRAHEDRON)


def test_plot_signal_writes_a_png(tmp_path, capsys):
    ct = CartesianTensor("ij=ji")
    M = np.diag([1.0, -0.5, 0.2])
    path = plot_signal(ct.from_cartesian(M), ct.irreps, tmp_path / "matrix.png")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    try:
        import plotly  # noqa: F401

        out = plot_signal(np.ones(9), None, tmp_path / "s.png", html=tmp_path / "s.html")
        assert (tmp_path / "s.html").stat().st_size > 1000 and out[1] == tmp_path / "s.html"
    except ImportError:
        assert plot_signal(np.ones(9), None, tmp_path / "s.png", html=tmp_path / "s.html") == tmp_path / "s.png"
        assert "plotly is not installed" in capsys.readouterr().out
    with pytest.raises(ValueError, match="plot_signal"):
        plot_signal(np.ones(7), None, tmp_path / "x.png")
