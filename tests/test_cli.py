"""The command line: help, --version, bench --list / no match / no GPU, filter, train, predict,
and the errors a user can fix (missing folder, empty class, unreadable image, another
architecture, nothing overwritten without --force)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import imkern
from imkern.__main__ import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_GPU = bool(imkern.info()["gpus"])


def _env():
    # The child imports the same imkern as this process (an installed one, or python/ in a
    # developer build), never a source tree without its compiled module.
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(os.path.abspath(imkern.__file__))) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_module_alone_prints_help():
    r = subprocess.run([sys.executable, "-m", "imkern"], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0
    for cmd in ("demo", "filter", "train", "predict", "info", "bench"):
        assert cmd in r.stdout


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"imkern {imkern.__version__}"


def test_unknown_argument_is_an_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["info", "--bogus"])
    assert e.value.code == 2


def test_bench_list_and_one_name_format(capsys):
    assert main(["bench", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    pairs = [tuple(ln.split(None, 1)) for ln in lines]
    assert any(n.startswith("train_epoch demo_cnn") for _, n in pairs)
    assert len(set(pairs)) == len(pairs)  # unique per device
    from imkern.bench import NAME_FORMAT, all_cases

    for c in all_cases():
        words = c.name.split(" ")
        assert words[0] not in ("cuda", "cpu"), f"{c.name!r}: the device is a column, not part of the name"
        assert "" not in words, f"{c.name!r}: single spaces between words"
        assert re.match(NAME_FORMAT, c.name), f"{c.name!r} does not follow imkern.bench's name format"


def test_bench_no_match_explains_and_fails(capsys):
    assert main(["bench", "-k", "nomatch-xyz"]) == 1
    err = capsys.readouterr().err
    assert "nomatch-xyz" in err and "--list" in err


@pytest.mark.skipif(HAS_GPU, reason="checks the message without a GPU")
def test_bench_cuda_without_gpu_explains_and_fails(capsys):
    assert main(["bench", "--device", "cuda"]) == 1
    assert "--device cuda" in capsys.readouterr().err


def test_bench_json_and_png(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    from imkern import _bench
    from imkern.bench import Case

    case = Case("scale demo float32 1000", "cpu", lambda: ((lambda: np.ones(1000) * 2), {"numpy": lambda: np.ones(1000)}))
    monkeypatch.setattr("imkern.bench.all_cases", lambda device="all": [case])
    monkeypatch.setattr(_bench, "copy_bandwidth", lambda nbytes=0: 1e9)
    js, png = tmp_path / "b.json", tmp_path / "b.png"
    assert main(["bench", "--quick", "--json", str(js), "--png", str(png)]) == 0
    data = json.loads(js.read_text())
    assert data["results"][0]["case"] == "scale demo float32 1000" and data["results"][0]["peer"] == "numpy"
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["bench", "--quick", "--json", str(js)]) == 1  # no overwrite without --force
    assert "--force" in capsys.readouterr().err


def test_demo_refuses_to_overwrite_and_checks_the_device(tmp_path, capsys):
    pytest.importorskip("matplotlib")  # the demo checks its dependencies first
    (tmp_path / "summary.json").write_text("{}")
    assert main(["demo", "--out", str(tmp_path), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "--force" in err or "lacks" in err
    if not HAS_GPU:
        assert main(["demo", "--out", str(tmp_path / "new"), "--device", "cuda"]) == 1
        err = capsys.readouterr().err
        assert "--device cuda" in err or "lacks" in err
    assert main(["demo", "--out", str(tmp_path / "x"), "--epochs", "0"]) == 1


# ---- commands on image files (need imkern.io and imkern.transform) --------------------------------


def _need_io():
    if not hasattr(imkern, "io") or not hasattr(imkern, "transform"):
        pytest.skip("needs imkern.io and imkern.transform")
    for name in ("resize", "pad", "crop", "flip", "to_tensor"):
        if not hasattr(imkern.transform, name):
            pytest.skip(f"needs imkern.transform.{name}")
    pytest.importorskip("PIL")


def _folder(root, classes=("cross", "ring"), n=12, size=20, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] - size / 2
    for k, c in enumerate(classes):
        os.makedirs(root / c, exist_ok=True)
        for i in range(n):
            if k == 0:
                img = ((np.abs(xx) < 2) | (np.abs(yy) < 2)).astype(float)
            else:
                r = np.hypot(xx, yy)
                img = ((r > size / 4) & (r < size / 3)).astype(float)
            img = np.clip(img * 200 + rng.uniform(0, 55, img.shape), 0, 255).astype(np.uint8)
            imkern.io.imwrite(str(root / c / f"{i}.png"), np.repeat(img[..., None], 3, axis=2))


def test_train_and_predict(tmp_path, capsys):
    _need_io()
    pytest.importorskip("matplotlib")  # train writes its figure
    data = tmp_path / "data"
    _folder(data)
    model = tmp_path / "m.npz"
    args = ["train", str(data), "--out", str(model), "--size", "16", "--epochs", "3", "--batch-size", "8",
            "--no-progress"]
    assert main(args) == 0
    assert model.exists() and (tmp_path / "m.png").exists()
    assert main(args) == 1 and "--force" in capsys.readouterr().err
    imgs = [str(data / "cross" / "0.png"), str(data / "ring" / "1.png")]
    capsys.readouterr()
    assert main(["predict", str(model), *imgs, "--json", "--top", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in out] == imgs
    for r in out:
        assert {p["class"] for p in r["predictions"]} == {"cross", "ring"}
        assert sum(p["probability"] for p in r["predictions"]) == pytest.approx(1.0, abs=1e-6)
    assert main(["predict", str(model), imgs[0]]) == 0
    assert capsys.readouterr().out.startswith(imgs[0] + ": ")


def test_train_and_predict_errors(tmp_path, capsys):
    _need_io()
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "m.npz")]) == 1
    assert "missing" in capsys.readouterr().err
    data = tmp_path / "data"
    _folder(data, n=3)
    os.makedirs(data / "empty")
    assert main(["train", str(data), "--out", str(tmp_path / "m.npz"), "--no-progress"]) == 1
    assert "empty" in capsys.readouterr().err
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    img = str(data / "cross" / "0.png")
    assert main(["predict", str(bad), img]) == 1
    assert "not a valid imkern model file" in capsys.readouterr().err
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    from imkern import nn

    m = nn.Sequential(nn.Flatten(), nn.Linear(16 * 16 * 3, 2, seed=0))
    nn.save(m, tmp_path / "ok.npz", metadata={"classes": ["a", "b"], "size": [16, 16], "mode": "RGB"})
    assert main(["predict", str(tmp_path / "ok.npz"), str(tmp_path / "broken.png")]) == 1
    assert "broken.png" in capsys.readouterr().err


def test_filter_file_folder_glob(tmp_path, capsys):
    _need_io()
    src = tmp_path / "in"
    os.makedirs(src)
    rng = np.random.default_rng(0)
    for i in range(3):
        imkern.io.imwrite(str(src / f"{i}.png"), rng.integers(0, 256, (9, 11, 3), dtype=np.uint8))
    one = tmp_path / "one.png"
    assert main(["filter", str(src / "0.png"), str(one), "--op", "gaussian", "--sigma", "2"]) == 0
    expect = imkern.filters.gaussian(imkern.io.imread(str(src / "0.png"), mode="unchanged"), sigma=2)
    np.testing.assert_array_equal(imkern.io.imread(str(one), mode="unchanged"), expect)
    assert main(["filter", str(src / "0.png"), str(one), "--op", "gaussian", "--sigma", "2"]) == 1
    assert "--force" in capsys.readouterr().err
    assert main(["filter", str(src), str(tmp_path / "out"), "--op", "box", "--size", "3", "--no-progress"]) == 0
    assert sorted(os.listdir(tmp_path / "out")) == ["0.png", "1.png", "2.png"]
    assert main(["filter", str(src / "*.png"), str(tmp_path / "g"), "--op", "gaussian", "--sigma", "1",
                 "--no-progress"]) == 0
    assert len(os.listdir(tmp_path / "g")) == 3
    assert main(["filter", str(src), str(tmp_path / "x"), "--op", "nosuchop"]) == 1
    assert "nosuchop" in capsys.readouterr().err
    assert main(["filter", str(src), str(tmp_path / "x"), "--op", "gaussian", "--sigmaa", "1"]) == 1
    assert "sigmaa" in capsys.readouterr().err
    assert main(["filter", str(tmp_path / "nothing*.png"), str(tmp_path / "x"), "--op", "gaussian",
                 "--sigma", "1"]) == 1
    assert main(["filter", "--list"]) == 0
    assert "gaussian(" in capsys.readouterr().out
