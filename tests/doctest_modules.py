"""Run the ``Example:`` sections of kerase3's modules; the modules are found, not listed."""

import doctest
import importlib
import os

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "kerase3")


def modules_with_examples(*packages, exclude=()):
    """Dotted names of every module under ``packages`` (e.g. ``"kerase3.layers"``, or a module
    itself) whose source holds an example (``>>>``), minus those under ``exclude``."""
    found = []
    for folder, _, files in os.walk(ROOT):
        for f in sorted(files):
            if not f.endswith(".py"):
                continue
            path = os.path.join(folder, f)
            rel = os.path.relpath(path, os.path.dirname(ROOT))[:-3].split(os.sep)
            name = ".".join(rel[:-1] if rel[-1] == "__init__" else rel)
            inside = any(name == p or name.startswith(p + ".") for p in packages)
            outside = any(name == p or name.startswith(p + ".") for p in exclude)
            if inside and not outside:
                with open(path, encoding="utf-8") as fh:
                    if ">>> " in fh.read():
                        found.append(name)
    return sorted(found)


def run_doctests(module_name):
    """``(attempted, failed)`` of the module's doctests, with ``np`` available as in the examples."""
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, extraglobs={"np": np}, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    return result.attempted, result.failed
