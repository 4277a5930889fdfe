"""The documentation runs and builds.

- The examples in the public docstrings run and give what they show (doctest). Every module of
  the package is collected, so a new op's examples run without editing this file; the modules
  in HAVE_EXAMPLES must keep at least one.
- Every public function and class (the ``__all__`` of the public modules) has a docstring with
  an example; every oracle in imkern.reference has a docstring.
- The ``python`` blocks of the Markdown pages under docs/ (the tutorial, the border-mode page,
  ...) run, in order, in a temporary folder: what the pages show is what the code does.
- The Sphinx site builds with warnings as errors (when Sphinx, furo and MyST are installed:
  ``pip install ".[docs]"``; skipped otherwise).
"""
import doctest
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import subprocess
import sys

import pytest

import imkern

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")

SKIP = ("imkern.bench", "imkern.__main__")
OPTIONAL = {"imkern.torch": "torch", "imkern.dask": "dask.array", "imkern.jax": "jax"}
HAVE_EXAMPLES = {"imkern.filters._linear", "imkern.nn._conv2d", "imkern.nn._linear", "imkern.nn._pool2d",
                 "imkern.nn._activations", "imkern.nn._softmax", "imkern.nn._cross_entropy",
                 "imkern.nn._batch_norm", "imkern.nn._dropout", "imkern.nn.layers",
                 "imkern.color", "imkern.transform._basic", "imkern.transform._tensor", "imkern.io",
                 "imkern._runtime", "imkern.optim", "imkern.data", "imkern.nn._fit", "imkern.reference"}
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(imkern.__path__, "imkern.")
    if not m.name.startswith(SKIP)
)
# The modules whose public names make the API reference (docs/api/index.rst lists the same).
PUBLIC = ["imkern", "imkern.filters", "imkern.color", "imkern.transform", "imkern.io", "imkern.data", "imkern.nn",
          "imkern.nn.functional", "imkern.optim"]
REFERENCE = ["imkern.reference.filters", "imkern.reference.color", "imkern.reference.transform",
             "imkern.reference.nn"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    for prefix, dep in OPTIONAL.items():  # framework modules: skipped without their framework
        if name == prefix or name.startswith(prefix + "."):
            pytest.importorskip(dep)
    mod = importlib.import_module(name)
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    if name in HAVE_EXAMPLES:
        assert result.attempted > 0, f"{name} has no examples"


def test_listed_modules_exist():
    assert HAVE_EXAMPLES <= set(MODULES)


def _public(modname):
    mod = importlib.import_module(modname)
    names = getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]
    for n in names:
        obj = getattr(mod, n)
        if inspect.isfunction(obj) or inspect.isclass(obj) or inspect.isbuiltin(obj):
            yield n, obj


@pytest.mark.parametrize("modname", PUBLIC)
def test_public_api_has_examples(modname):
    missing = [n for n, obj in _public(modname) if ">>>" not in (inspect.getdoc(obj) or "")]
    assert not missing, f"{modname}: public names without a docstring example: {missing}"


@pytest.mark.parametrize("modname", PUBLIC)
def test_public_methods_documented(modname):
    missing = []
    for n, cls in _public(modname):
        if not inspect.isclass(cls):
            continue
        for m, f in vars(cls).items():
            if not m.startswith("_") and callable(f) and not inspect.getdoc(getattr(cls, m)):
                missing.append(f"{n}.{m}")
    assert not missing, f"{modname}: public methods without a docstring: {missing}"


@pytest.mark.parametrize("modname", REFERENCE)
def test_reference_documented(modname):
    missing = [n for n, obj in _public(modname) if not inspect.getdoc(obj)]
    assert not missing, f"{modname}: oracles without a docstring: {missing}"


def _python_blocks(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


PAGES = sorted(f for f in os.listdir(DOCS) if f.endswith(".md") and _python_blocks(os.path.join(DOCS, f)))
NEEDS = {"borders.md": ["scipy"]}


def test_pages_found():
    assert {"tutorial.md", "borders.md"} <= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_code_runs(page, tmp_path, monkeypatch, capsys):
    for mod in NEEDS.get(page, []):
        pytest.importorskip(mod)
    if page == "tutorial.md":
        pytest.importorskip("PIL")
    monkeypatch.chdir(tmp_path)
    ns = {"__name__": f"docs_{page[:-3]}"}
    for i, block in enumerate(_python_blocks(os.path.join(DOCS, page))):
        exec(compile(block, f"{page} (python block {i + 1})", "exec"), ns)


def _sphinx_ready():
    for mod in ("sphinx", "furo", "myst_parser", "matplotlib"):
        try:
            importlib.import_module(mod)
        except ImportError:
            return mod
    return None


@pytest.mark.timeout(600)
def test_sphinx_build_without_warnings(tmp_path):
    missing = _sphinx_ready()
    if missing:
        pytest.skip(f"the docs need {missing} (pip install '.[docs]')")
    # Build a copy: autosummary writes its stub pages into the source folder.
    src = tmp_path / "docs"
    shutil.copytree(DOCS, src, ignore=shutil.ignore_patterns("_build", "_generated", "generated"))
    (tmp_path / "benchmarks").mkdir()
    shutil.copy(os.path.join(ROOT, "benchmarks", "RESULTS.md"), tmp_path / "benchmarks")
    env = dict(os.environ)
    # The imkern under test: the one this process imported (a source tree or an installed wheel).
    env["PYTHONPATH"] = os.pathsep.join([os.path.dirname(os.path.dirname(imkern.__file__)),
                                         env.get("PYTHONPATH", "")])
    out = tmp_path / "html"
    r = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html", str(src), str(out)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, f"sphinx-build failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
    for page in ("index", "tutorial", "borders", "performance", "design", "status", "api/index",
                 "api/generated/imkern.filters.gaussian", "api/generated/imkern.nn.Conv2d"):
        assert (out / f"{page}.html").exists(), page
    assert (out / "_images" / "bench_cpu.png").exists()


def test_api_index_lists_the_public_modules():
    with open(os.path.join(DOCS, "api", "index.rst"), encoding="utf-8") as f:
        listed = set(re.findall(r"^   (imkern[\w.]*)$", f.read(), re.M))
    assert listed == set(PUBLIC) | set(REFERENCE) | {"imkern.reference"}


def test_performance_figure_has_a_table():
    """The performance page's chart is drawn from benchmarks/RESULTS.md's newest bench table."""
    sys.path.insert(0, DOCS)
    try:
        import _perfplot
    finally:
        sys.path.remove(DOCS)
    with open(_perfplot.RESULTS, encoding="utf-8") as f:
        rows = _perfplot.newest_table(f.read())
    assert rows and all(r["ratio"] > 0 and r["peer"] for r in rows)
