"""The C++ API without Python: build and install the library with CMake, then build the
example in examples/cpp/ against the installed package (find_package(imkern), imkern::core)
and run it (a Gaussian blur and a conv2d forward pass, each checked against a plain loop).

The library is built CPU-only and, on x86-64, for the baseline ISA only (a third of the
compile time; IMKERN_CPP_TEST_ISAS=all builds every variant) in build/cpp-api-test/ of the
source tree, reused between runs (incremental; ccache when installed). The install prefix and
the example's build are fresh temporary folders every run. Skipped without cmake or a C++
compiler, and inside cibuildwheel's per-wheel test runs (the wheel does not ship the C++
package; CI builds it once, in .ci/run).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed"),
    pytest.mark.skipif(
        not (os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")),
        reason="no C++ compiler",
    ),
    pytest.mark.skipif(not (ROOT / "examples" / "cpp" / "CMakeLists.txt").exists(), reason="source tree not found"),
    pytest.mark.skipif(os.environ.get("CIBUILDWHEEL") == "1", reason="per-wheel test run (no C++ package in the wheel)"),
    pytest.mark.skipif(sys.platform == "win32", reason="the test drives single-config generators"),
]


def _run(cmd, cwd=None, env=None, timeout=1800):
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} failed ({r.returncode}):\n{r.stdout[-6000:]}\n{r.stderr[-6000:]}")
    return r


def _generator_args():
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def _env():
    env = dict(os.environ)
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    # The Python tests may run with a capped ISA; the example itself needs no cap.
    env.pop("IMKERN_CPU_ISA", None)
    if shutil.which("ccache"):
        # Same settings as .ci/dev-build: one cache for every checkout (paths relative to it).
        env.setdefault("CCACHE_BASEDIR", str(ROOT))
        env.setdefault("CCACHE_NOHASHDIR", "1")
    return env


@pytest.fixture(scope="module")
def installed_prefix(tmp_path_factory):
    env = _env()
    build = Path(os.environ.get("IMKERN_CPP_TEST_BUILD_DIR", ROOT / "build" / "cpp-api-test"))
    prefix = tmp_path_factory.mktemp("imkern-prefix")
    launcher = ["-DCMAKE_CXX_COMPILER_LAUNCHER=ccache"] if shutil.which("ccache") else []
    if build.exists() and not (build / "CMakeCache.txt").exists():
        shutil.rmtree(build)
    _run(["cmake", "-S", ROOT, "-B", build, *_generator_args(), "-DCMAKE_BUILD_TYPE=Release",
          "-DIMKERN_PYTHON=OFF", "-DIMKERN_CUDA=OFF", "-DIMKERN_INSTALL_LIBRARY=ON",
          f"-DIMKERN_CPU_ISAS={os.environ.get('IMKERN_CPP_TEST_ISAS', 'baseline')}", *launcher], env=env)
    _run(["cmake", "--build", build], env=env)
    _run(["cmake", "--install", build, "--prefix", prefix], env=env)
    return prefix


def test_install_layout(installed_prefix):
    p = installed_prefix
    libs = list(p.glob("lib*/libimkern.a")) + list(p.glob("lib*/imkern.lib"))
    assert libs, sorted(str(f.relative_to(p)) for f in p.rglob("*"))
    cmake_dir = libs[0].parent / "cmake" / "imkern"
    for f in ("imkernConfig.cmake", "imkernConfigVersion.cmake", "imkernTargets.cmake"):
        assert (cmake_dir / f).is_file(), f
    for h in ("common.hpp", "dispatch.hpp", "filters.hpp", "nn.hpp", "parallel.hpp", "version.hpp"):
        assert (p / "include" / "imkern" / h).is_file(), h
    # The public headers stand alone: no pybind11, no Python, no CUDA runtime headers.
    for h in (p / "include" / "imkern").glob("*.hpp"):
        text = h.read_text()
        assert "pybind11/" not in text and "Python.h" not in text, h.name
    # Nothing of the Python package is installed by the C++ build.
    assert not list(p.rglob("_core*"))


def test_example_builds_against_installed_package(installed_prefix, tmp_path):
    env = _env()
    build = tmp_path / "example"
    _run(["cmake", "-S", ROOT / "examples" / "cpp", "-B", build, *_generator_args(),
          "-DCMAKE_BUILD_TYPE=Release", f"-DCMAKE_PREFIX_PATH={installed_prefix}"], env=env)
    _run(["cmake", "--build", build], env=env)
    exe = build / "imkern_example"
    r = _run([exe], env=env, timeout=300)
    out = r.stdout
    assert "gaussian blur" in out and "conv2d" in out, out
    assert "MISMATCH" not in out, out
    assert out.count(": ok") == 2, out


def test_find_package_version_check(installed_prefix, tmp_path):
    """A project asking for an incompatible version is refused by imkernConfigVersion.cmake."""
    src = tmp_path / "wants_v99"
    src.mkdir()
    (src / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.24)\nproject(v LANGUAGES CXX)\n"
        "find_package(imkern 99 CONFIG QUIET)\n"
        "if(imkern_FOUND)\n  message(FATAL_ERROR \"imkern 99 accepted\")\nendif()\n"
    )
    _run(["cmake", "-S", src, "-B", tmp_path / "b", f"-DCMAKE_PREFIX_PATH={installed_prefix}"], env=_env())
