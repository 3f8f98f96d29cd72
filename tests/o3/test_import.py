import subprocess
import sys


def test_o3_does_not_import_keras_or_tensorflow():
    code = (
        "import sys, kerase3.o3 as o3; o3.wigner_3j(2, 2, 2); o3.Irreps('1o').D_from_matrix(o3.rand_matrix());"
        "print(','.join(m for m in ('keras', 'tensorflow', 'jax', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
