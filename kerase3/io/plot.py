"""Pictures of signals on the sphere: a matplotlib PNG, and a plotly HTML figure when plotly is installed.

    from kerase3.io import CartesianTensor, plot_signal
    ct = CartesianTensor("ij=ji")
    plot_signal(ct.from_cartesian(matrix), ct.irreps, "matrix.png")   # the seed's picture
"""

import numpy as np
from keras import ops

from ..o3 import Irreps
from ..ops.s2grid import spherical_harmonics_numpy

__all__ = ["plot_signal", "signal_surface"]


def _l_blocks(irreps):
    irreps = Irreps(irreps)
    blocks, i = [], 0
    for mul, ir in irreps:
        for _ in range(mul):
            blocks.append((ir.l, i))
            i += ir.dim
    return irreps, blocks


def signal_surface(coefficients, irreps=None, res=60):
    """``(points (res, 2 res + 1, 3), values (res, 2 res + 1))``: the signal
    ``f(x) = sum A_l . Y_l(x)`` (orthonormal harmonics) on a closed latitude-longitude mesh.

    Args:
        coefficients: ``(irreps.dim,)``; any irreps (parity does not change the values).
        irreps: default ``0e + 1o + 2e + ...`` of the right dimension.
    """
    x = np.asarray(ops.convert_to_numpy(ops.convert_to_tensor(coefficients)), np.float64).reshape(-1)
    if irreps is None:
        lmax = int(round(np.sqrt(len(x)))) - 1
        if (lmax + 1) ** 2 != len(x):
            raise ValueError(f"plot_signal: {len(x)} coefficients are not (lmax+1)^2; pass irreps. Received: shape {x.shape}")
        irreps = Irreps.spherical_harmonics(lmax)
    irreps, blocks = _l_blocks(irreps)
    if irreps.dim != len(x):
        raise ValueError(f"plot_signal: {len(x)} coefficients for irreps {irreps} (dim {irreps.dim})")
    lmax = max(l for l, _ in blocks)
    beta = np.linspace(0, np.pi, res)
    alpha = np.linspace(0, 2 * np.pi, 2 * res + 1)
    b, a = np.meshgrid(beta, alpha, indexing="ij")
    points = np.stack([np.sin(b) * np.sin(a), np.cos(b), np.sin(b) * np.cos(a)], axis=-1)
    Y = spherical_harmonics_numpy(Irreps.spherical_harmonics(lmax), points.reshape(-1, 3))
    f = np.zeros(len(Y))
    for l, start in blocks:
        f += Y[:, l * l:(l + 1) ** 2] @ x[start:start + 2 * l + 1]
    return points, f.reshape(points.shape[:2])


def plot_signal(coefficients, irreps=None, path="signal.png", radial=True, res=60, html=None, title=None, cmap="RdBu_r"):
    """Draw a signal on the sphere and write it to ``path`` (PNG, matplotlib).

    Args:
        coefficients: ``(irreps.dim,)`` array or tensor.
        irreps: the coefficients' irreps (default ``0e + 1o + 2e + ...``).
        path: PNG file.
        radial: draw the surface ``r = |f(x)|`` (else the unit sphere), coloured by ``f``.
        res: mesh resolution.
        html: optional path of an interactive plotly HTML figure (needs ``pip install plotly``;
            skipped with a message when plotly is missing).
        title: figure title.

    Returns:
        ``path`` (and the HTML path when written, as a tuple).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib import cm, colors

    points, f = signal_surface(coefficients, irreps, res)
    r = np.abs(f)[..., None] if radial else 1.0
    xyz = points * r
    vmax = max(np.abs(f).max(), 1e-12)
    norm = colors.Normalize(-vmax, vmax)
    fig = plt.figure(figsize=(5, 5))
    ax = fig.add_subplot(projection="3d")
    # matplotlib's z is up; our polar axis is y: draw (x, z, y)
    ax.plot_surface(xyz[..., 0], xyz[..., 2], xyz[..., 1], facecolors=matplotlib.colormaps[cmap](norm(f)), rstride=1, cstride=1,
                    linewidth=0, antialiased=False, shade=False)
    lim = np.abs(xyz).max() if radial else 1.0
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim), xlabel="x", ylabel="z", zlabel="y")
    ax.set_box_aspect((1, 1, 1))
    fig.colorbar(cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, shrink=0.6, label="f")
    if title:
        ax.set_title(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    if html is None:
        return path
    try:
        import plotly.graph_objects as go
    except ImportError:
        print("plot_signal: plotly is not installed (pip install plotly); no HTML figure written")
        return path
    surface = go.Surface(x=xyz[..., 0], y=xyz[..., 1], z=xyz[..., 2], surfacecolor=f, colorscale="RdBu", reversescale=True,
                         cmin=-vmax, cmax=vmax)
    go.Figure(surface, layout=dict(title=title, scene=dict(aspectmode="data"))).write_html(html)
    return path, html
