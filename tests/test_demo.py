"""``python -m imkern demo``: at least 97% held-out accuracy on scikit-learn's digits, the figure,
model and summary written, the model reloadable, and the same seed giving the same result."""
from __future__ import annotations

import json

import numpy as np
import pytest

from imkern.__main__ import main

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def missing():
    from imkern._cli.demo import missing_ops

    return missing_ops()


def _skip_if_missing(missing):
    if missing:
        pytest.skip("the demo needs " + ", ".join(missing))


def test_demo_end_to_end(tmp_path, missing, capsys):
    _skip_if_missing(missing)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    for stage in ("preprocess", "train", "predict", "images/s", "held-out accuracy"):
        assert stage in text
    s = json.loads((out / "summary.json").read_text())
    assert s["accuracy"] >= 0.97, s["accuracy"]
    assert s["epochs"] == 12 and s["device"] == "cpu" and s["train_seconds"] > 0 and s["images_per_second"] > 0
    assert (out / "demo.png").read_bytes()[:4] == b"\x89PNG"
    from imkern import nn

    model = nn.load(out / "model.npz")
    assert model.metadata["classes"] == [str(i) for i in range(10)]
    # nothing is overwritten without --force
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "--force" in capsys.readouterr().err


def test_demo_same_seed_same_result(tmp_path, missing):
    _skip_if_missing(missing)
    from imkern import nn

    runs = []
    for i in range(2):
        out = tmp_path / f"r{i}"
        assert main(["demo", "--out", str(out), "--epochs", "1", "--seed", "3", "--batch-size", "64",
                     "--no-progress"]) == 0
        runs.append((json.loads((out / "summary.json").read_text()), nn.load(out / "model.npz")))
    (a, ma), (b, mb) = runs
    assert a["accuracy"] == b["accuracy"] and a["batch_size"] == 64
    assert a["history"]["loss"] == b["history"]["loss"]
    for (ka, va), (kb, vb) in zip(ma.state_dict().items(), mb.state_dict().items()):
        assert ka == kb
        np.testing.assert_array_equal(va, vb)
