"""Build configuration: IMKERN_CUDA=ON without a CUDA compiler is a clear configure error;
AUTO without one configures a CPU-only build. Needs cmake (skipped without it)."""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _cmake():
    exe = shutil.which("cmake")
    if exe is None or not (ROOT / "CMakeLists.txt").exists():
        pytest.skip("needs cmake and the source tree")
    return exe


def _configure(tmp_path, *defs, env_extra=None):
    env = dict(os.environ)
    env["CUDACXX"] = "/nonexistent/nvcc"  # hide any CUDA compiler
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not (pathlib.Path(p) / "nvcc").exists())
    env.update(env_extra or {})
    args = [_cmake(), "-S", str(ROOT), "-B", str(tmp_path / "b"), *defs]
    try:
        import pybind11

        args.append(f"-Dpybind11_DIR={pybind11.get_cmake_dir()}")
    except ImportError:
        pass
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)


def test_cuda_on_without_nvcc_fails_clearly(tmp_path):
    r = _configure(tmp_path, "-DIMKERN_CUDA=ON")
    assert r.returncode != 0
    assert "IMKERN_CUDA=ON but no CUDA compiler" in (r.stdout + r.stderr)


def test_cuda_auto_without_nvcc_configures_cpu_only(tmp_path):
    pytest.importorskip("pybind11")
    r = _configure(tmp_path, "-DIMKERN_CUDA=AUTO")
    assert r.returncode == 0, r.stderr
    assert "imkern: CUDA kernels OFF" in r.stdout
