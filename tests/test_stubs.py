"""The type stubs of the compiled module (python/imkern/_core.pyi, written by .ci/stubs) match it.

- Every public name of the built imkern._core is declared in the stubs (any build; the CPU-only
  build has a subset of the CUDA build's names).
- With pybind11-stubgen installed and a CUDA-enabled build, regenerating the stubs gives the
  checked-in file exactly (``.ci/stubs --check``).
- py.typed ships beside them, so type checkers read the package's annotations.
"""
import ast
import os
import subprocess
import sys

import pytest

import imkern
from imkern import _core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKG = os.path.dirname(imkern.__file__)


def _declared(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_stubs_and_py_typed_ship():
    assert os.path.exists(os.path.join(PKG, "_core.pyi"))
    assert os.path.exists(os.path.join(PKG, "py.typed"))


def test_stubs_declare_every_public_name():
    declared = _declared(os.path.join(PKG, "_core.pyi"))
    public = {n for n in dir(_core) if not n.startswith("__")}
    missing = sorted(public - declared)
    assert not missing, f"imkern._core has names its stubs lack (run .ci/stubs): {missing}"


def test_stubs_regenerate_identically():
    pytest.importorskip("pybind11_stubgen")
    if not _core.cuda_built:
        pytest.skip("the stubs describe the CUDA build; this module was built without CUDA")
    if PKG != os.path.join(ROOT, "python", "imkern") and not os.path.exists(os.path.join(ROOT, ".ci", "stubs")):
        pytest.skip("no source tree")
    r = subprocess.run(["bash", os.path.join(ROOT, ".ci", "stubs"), "--check"], capture_output=True, text=True,
                       env=dict(os.environ, PYTHON=sys.executable), timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
