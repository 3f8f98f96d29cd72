"""Print the Wigner 3j triples whose sign in e3nn 0.4.4 (the version mace-torch pins) is the
opposite of e3nn 0.6's (kerase3's): kerase3.o3._product_basis.E3NN_04_FLIPS.

    TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 /tmp/venv-mace/bin/python tests/reference/e3nn_044_wigner_signs.py /tmp/w3j.npz
    python tests/reference/e3nn_044_wigner_signs.py /tmp/w3j.npz   # in kerase3's venv: compares, prints
"""
import sys

import numpy as np

LMAX = 10
path = sys.argv[1]
try:
    import torch
    from e3nn import o3, __version__
    assert __version__ == "0.4.4", __version__
    torch.set_default_dtype(torch.float64)
    np.savez(path, **{f"{a}_{b}_{c}": o3.wigner_3j(a, b, c).numpy() for a in range(LMAX + 1) for b in range(LMAX + 1)
                      for c in range(abs(a - b), min(a + b, LMAX) + 1) if (a + b + c) % 2})
except ImportError:
    from kerase3.o3 import wigner_3j
    d = np.load(path)
    flips = []
    for k in d.files:
        a, b, c = map(int, k.split("_"))
        ours = wigner_3j(a, b, c)
        if np.abs(ours + d[k]).max() < 1e-10:
            flips.append((a, b, c))
        else:
            assert np.abs(ours - d[k]).max() < 1e-10, k
    print(sorted(flips))
