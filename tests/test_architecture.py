"""The floors of the package: public seams between subpackages, imports only downwards."""

import ast
import os
import sys


ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kerase3")
import kerase3

# lower floors first; a module may import from its own floor or any floor listed before it
FLOORS = kerase3.FLOORS
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def _modules():
    for folder, _, files in os.walk(ROOT):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(folder, f)
                rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
                if rel[-1] == "__init__":
                    rel = rel[:-1]
                yield path, rel


def _imports(path, module):
    """Absolute dotted names of everything a module imports (``from X import a`` gives ``X.a``)."""
    is_pkg = path.endswith("__init__.py")
    package = module if is_pkg else module[:-1]
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name.split(".")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = base + (node.module.split(".") if node.module else [])
            else:
                target = node.module.split(".")
            for a in node.names:
                yield node.lineno, target + [a.name]


def _violations():
    out = []
    for path, module in _modules():
        top = module[1] if len(module) > 1 else None
        for line, target in _imports(path, module):
            if target[0] != "kerase3" or len(target) < 2:
                continue
            other = target[1]
            where = f"{'.'.join(module)}:{line} imports {'.'.join(target)}"
            # a private module or name of another subpackage
            private = [p for p in target[2:] if p.startswith("_") and not p.startswith("__")]
            if other != top and private:
                out.append(("private", where))
            if top in FLOOR and other in FLOOR and FLOOR[other] > FLOOR[top]:
                out.append(("upward", where))
    return out


def test_no_module_imports_another_packages_private_module():
    bad = [w for kind, w in _violations() if kind == "private"]
    assert not bad, "imports of another package's private modules or names:\n" + "\n".join(bad)


def test_imports_only_go_down():
    bad = [w for kind, w in _violations() if kind == "upward"]
    assert not bad, "imports from a higher floor:\n" + "\n".join(bad)


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    # the checks can fail: a fake module reaching into ops' private plan module is reported
    pkg = tmp_path / "kerase3"
    (pkg / "layers").mkdir(parents=True)
    (pkg / "layers" / "bad.py").write_text("from ..ops._coupled import something\nfrom ..models import Potential\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", str(pkg))
    kinds = sorted(kind for kind, _ in _violations())
    assert kinds == ["private", "upward"]


def test_lower_floors_do_not_import_tensorflow():
    import subprocess

    code = ("import sys, os; os.environ['KERAS_BACKEND'] = 'jax'; import kerase3.ops, kerase3.layers, kerase3.heads, "
            "kerase3.models; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_importing_kerase3_has_no_side_effects(tmp_path):
    """No environment variable set, no file or folder written, by importing every subpackage."""
    import subprocess

    # the libraries kerase3 uses first (TensorFlow sets variables of its own when imported)
    code = ("import os, sys, numpy, scipy, keras, tensorflow, matplotlib; before = dict(os.environ); import kerase3, kerase3.backend, kerase3.o3, kerase3.ops, "
            "kerase3.graph, kerase3.layers, kerase3.heads, kerase3.models, kerase3.io, kerase3.export, kerase3.interop, "
            "kerase3.testing; changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k)); "
            "print(changed)")
    env = {k: v for k, v in os.environ.items() if k not in ("TF_XLA_FLAGS", "KERASE3_COMPILATION_CACHE")}
    env.update(HOME=str(tmp_path), XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=os.path.dirname(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"
    written = [p for p in tmp_path.rglob("*") if "kerase3" in str(p.relative_to(tmp_path))]
    assert not written, written


def test_one_statement_of_the_floors():
    """Every subpackage is on a floor, and the package docstring and README state the same floors."""
    packages = {n[:-3] if n.endswith(".py") else n for n in os.listdir(ROOT)
                if not n.startswith("_") and (n.endswith(".py") or os.path.isdir(os.path.join(ROOT, n, "")) and
                                              os.path.exists(os.path.join(ROOT, n, "__init__.py")))}
    assert packages == set(FLOOR), packages ^ set(FLOOR)
    line = kerase3.floors_text()
    assert line in kerase3.__doc__
    with open(os.path.join(os.path.dirname(ROOT), "README.md"), encoding="utf-8") as fh:
        assert line in fh.read()


def test_no_duplicate_tutorial_numbers():
    folder = os.path.join(os.path.dirname(ROOT), "tutorials")
    numbers = [f.split("_")[0] for f in os.listdir(folder) if f[:2].isdigit() and f.endswith(".py")]
    assert len(numbers) == len(set(numbers)), sorted(numbers)


def test_batch_keys_are_spelled_in_one_module():
    """The batch's keys appear as string literals only in kerase3/graph/keys.py (everyone else names
    them through it)."""
    from kerase3.graph import keys

    names = {v for k, v in vars(keys).items() if k.isupper() and isinstance(v, str)}
    found = {}
    for path, module in _modules():
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        hits = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and n.value in names}
        if hits:
            found[".".join(module)] = sorted(hits)
    assert list(found) == ["kerase3.graph.keys"], found


def test_models_go_through_their_base_constructor():
    """No model calls ``keras.Model.__init__`` (or another base's) directly, skipping its own base."""
    bad = []
    for path, module in _modules():
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
        if "Model.__init__(self" in text or "Model.get_config(self" in text:
            bad.append(".".join(module))
    assert not bad, bad
