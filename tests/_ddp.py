"""Run a DistributedDataParallel worker script as a gloo process group on this host."""

import os
import socket
import subprocess
import sys

import pytest


def run_ddp(tmp_path, source, *, world=2, suffix=".npy", timeout=240):
    """Write ``source`` to a script and run it as ``world`` processes with the arguments
    ``rank world port out`` (``out`` a path ending in ``suffix`` where the rank writes its
    result); fail with every rank's output unless all exit 0. Returns the ``out`` paths."""
    torch = pytest.importorskip("torch")
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed unavailable")
    script = tmp_path / "ddp_worker.py"
    script.write_text(source)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(sys.path))
    outs = [tmp_path / f"rank{r}{suffix}" for r in range(world)]
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(r), str(world), port, str(outs[r])],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for r in range(world)
    ]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=timeout)[0].decode(errors="replace"))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail("DDP workers timed out")
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    return outs
