"""imkern.io: round trips for every format and mode, against Pillow itself; EXIF orientation,
16-bit, palette images; missing, corrupt, truncated and non-image files; load_folder."""
from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

import imkern
from conftest import random_array
from imkern import io as IO

Image = pytest.importorskip("PIL.Image")

LOSSLESS = [".png", ".tif", ".tiff", ".bmp"]
LOSSY = [".jpg", ".jpeg", ".webp"]


def _smooth(rng, shape):
    """A photo-like image (lossy codecs keep it within a few levels)."""
    h, w = shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 7.0) * np.cos(yy / 5.0)
    img = np.stack([base + 20 * c for c in range(shape[2])], -1) if len(shape) == 3 else base
    return np.clip(img + rng.normal(0, 1, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("ext", LOSSLESS)
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_lossless_round_trip(tmp_path, rng, ext, channels):
    shape = (13, 17) if channels is None else (13, 17, channels)
    x = random_array(rng, shape, np.uint8)
    p = tmp_path / f"a{ext}"
    if ext == ".bmp" and channels == 4:
        with pytest.raises(ValueError, match="alpha"):
            IO.imwrite(p, x)
        return
    IO.imwrite(p, x)
    got = IO.imread(p, mode="unchanged")
    exp = x[..., 0] if channels == 1 else x
    np.testing.assert_array_equal(got, exp)
    # the 8-bit modes agree with Pillow's own conversions
    for mode in ("RGB", "L", "RGBA"):
        with Image.open(p) as im:
            ref = np.asarray(im.convert(mode))
        got = IO.imread(str(p), mode=mode)
        assert got.dtype == np.uint8 and got.flags.c_contiguous
        np.testing.assert_array_equal(got, ref)


@pytest.mark.parametrize("ext", LOSSY)
@pytest.mark.parametrize("channels", [None, 3])
def test_lossy_round_trip(tmp_path, rng, ext, channels):
    x = _smooth(rng, (40, 56) if channels is None else (40, 56, channels))
    p = tmp_path / f"a{ext}"
    IO.imwrite(p, x, quality=95)
    got = IO.imread(p, mode="unchanged")
    if ext == ".webp" and channels is None:
        got = got[..., 0]  # WebP has no gray: it comes back as RGB
    assert got.shape == x.shape and got.dtype == np.uint8
    assert np.abs(got.astype(int) - x).mean() < 3
    small = tmp_path / f"b{ext}"
    IO.imwrite(small, x, quality=10)
    assert os.path.getsize(small) < os.path.getsize(p)  # quality reaches the encoder
    with Image.open(p) as im:
        np.testing.assert_array_equal(IO.imread(p), np.asarray(im.convert("RGB")))


def test_webp_rgba(tmp_path, rng):
    x = _smooth(rng, (32, 32, 4))
    IO.imwrite(tmp_path / "a.webp", x, quality=100)
    got = IO.imread(tmp_path / "a.webp", mode="RGBA")
    assert got.shape == x.shape and np.abs(got.astype(int) - x).mean() < 3


@pytest.mark.parametrize("ext", [".png", ".tif"])
def test_sixteen_bit_kept(tmp_path, rng, ext):
    x = random_array(rng, (9, 11), np.uint16)
    IO.imwrite(tmp_path / f"a{ext}", x)
    got = IO.imread(tmp_path / f"a{ext}", mode="unchanged")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, x)
    np.testing.assert_array_equal(IO.imread(tmp_path / f"a{ext}", mode="L"), (x >> 8).astype(np.uint8))
    rgb = IO.imread(tmp_path / f"a{ext}", mode="RGB")
    assert rgb.shape == (9, 11, 3) and (rgb[..., 1] == x >> 8).all()
    cv2 = pytest.importorskip("cv2")
    np.testing.assert_array_equal(got, cv2.imread(str(tmp_path / f"a{ext}"), cv2.IMREAD_UNCHANGED))


def test_float_tiff(tmp_path, rng):
    x = random_array(rng, (6, 7), np.float32, low=-5, high=5)
    IO.imwrite(tmp_path / "f.tif", x)
    got = IO.imread(tmp_path / "f.tif", mode="unchanged")
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, x)
    with pytest.raises(ValueError, match="unchanged"):
        IO.imread(tmp_path / "f.tif")


def test_bool_and_cupy_like_inputs(tmp_path, rng):
    m = rng.random((5, 6)) < 0.5
    IO.imwrite(tmp_path / "m.png", m)
    np.testing.assert_array_equal(IO.imread(tmp_path / "m.png", mode="L"), m.astype(np.uint8) * 255)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_applied(tmp_path, rng, orientation):
    from PIL import ImageOps

    x = _smooth(rng, (24, 40, 3))
    im = Image.fromarray(x)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = tmp_path / "o.jpg"
    im.save(p, exif=exif, quality=95)
    with Image.open(p) as ref:
        exp = np.asarray(ImageOps.exif_transpose(ref).convert("RGB"))
    got = IO.imread(p)
    np.testing.assert_array_equal(got, exp)
    assert got.shape[:2] == ((40, 24) if orientation >= 5 else (24, 40))


def test_palette_images(tmp_path, rng):
    x = random_array(rng, (8, 9, 3), np.uint8) // 64 * 64
    p = Image.fromarray(x).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as im:
        exp = np.asarray(im.convert("RGB"))
    np.testing.assert_array_equal(IO.imread(tmp_path / "p.png"), exp)
    np.testing.assert_array_equal(IO.imread(tmp_path / "p.png", mode="unchanged"), exp)
    p.info["transparency"] = 0
    p.save(tmp_path / "t.png", transparency=0)
    assert IO.imread(tmp_path / "t.png", mode="unchanged").shape == (8, 9, 4)


def test_real_photograph_round_trip(tmp_path):
    data = pytest.importorskip("skimage.data")
    img = data.astronaut()
    for ext in (".png", ".bmp", ".tif"):
        IO.imwrite(tmp_path / f"a{ext}", img)
        np.testing.assert_array_equal(IO.imread(tmp_path / f"a{ext}"), img)
    IO.imwrite(tmp_path / "a.jpg", img)
    assert np.abs(IO.imread(tmp_path / "a.jpg").astype(int) - img).mean() < 4
    cv2 = pytest.importorskip("cv2")
    np.testing.assert_array_equal(IO.imread(tmp_path / "a.png"), cv2.imread(str(tmp_path / "a.png"))[..., ::-1])


# ---- errors --------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    p = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png"):
        IO.imread(p)
    with pytest.raises(IsADirectoryError, match=str(tmp_path.name)):
        IO.imread(tmp_path)


def test_not_an_image(tmp_path):
    p = tmp_path / "text.jpg"
    p.write_text("hello, not a JPEG")
    with pytest.raises(OSError, match="text.jpg"):
        IO.imread(p)
    q = tmp_path / "empty.png"
    q.write_bytes(b"")
    with pytest.raises(OSError, match="empty.png"):
        IO.imread(q)


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp", ".tif", ".bmp"])
def test_truncated_and_corrupt(tmp_path, rng, ext):
    x = _smooth(rng, (64, 64, 3))
    p = tmp_path / f"a{ext}"
    IO.imwrite(p, x)
    raw = p.read_bytes()
    t = tmp_path / f"truncated{ext}"
    t.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(OSError, match=f"truncated{ext}"):
        IO.imread(t)
    c = tmp_path / f"corrupt{ext}"
    c.write_bytes(raw[:16] + bytes(rng.integers(0, 256, 64, dtype=np.uint8)) + raw[80:][: len(raw) // 3])
    with pytest.raises(OSError, match=f"corrupt{ext}"):
        IO.imread(c)


def test_bad_arguments(tmp_path, rng):
    x = random_array(rng, (4, 5, 3), np.uint8)
    with pytest.raises(ValueError, match="mode"):
        IO.imread(tmp_path / "a.png", mode="BGR")
    with pytest.raises(TypeError, match="path"):
        IO.imread(3.5)
    with pytest.raises(ValueError, match="extension"):
        IO.imwrite(tmp_path / "a.xyz", x)
    with pytest.raises(ValueError, match="alpha"):
        IO.imwrite(tmp_path / "a.jpg", random_array(rng, (4, 5, 4), np.uint8))
    with pytest.raises(ValueError, match="float32"):
        IO.imwrite(tmp_path / "a.png", random_array(rng, (4, 5), np.float32))
    with pytest.raises(ValueError, match="16-bit"):
        IO.imwrite(tmp_path / "a.png", random_array(rng, (4, 5, 3), np.uint16))
    with pytest.raises(ValueError, match="16-bit"):
        IO.imwrite(tmp_path / "a.jpg", random_array(rng, (4, 5), np.uint16))
    with pytest.raises(TypeError, match="dtype"):
        IO.imwrite(tmp_path / "a.png", x.astype(np.int32))
    with pytest.raises(ValueError, match="quality"):
        IO.imwrite(tmp_path / "a.jpg", x, quality=0)
    with pytest.raises(ValueError, match="image"):
        IO.imwrite(tmp_path / "a.png", np.zeros((2, 3, 5), np.uint8))
    with pytest.raises(TypeError, match="image"):
        IO.imwrite(tmp_path / "a.png", x.tolist())
    with pytest.raises(OSError, match="missing_dir"):
        IO.imwrite(tmp_path / "missing_dir" / "a.png", x)


# ---- load_folder ---------------------------------------------------------------------------------
def _dataset(root, rng, classes=("cats", "dogs", "owls"), per=(3, 2, 4), size=(12, 10), ext=".png"):
    imgs = {}
    for name, n in zip(classes, per):
        os.makedirs(root / name)
        for i in range(n):
            x = random_array(rng, size + (3,), np.uint8)
            IO.imwrite(root / name / f"{i:03d}{ext}", x)
            imgs[(name, i)] = x
    return imgs


@pytest.mark.parametrize("workers", [1, 3, None])
def test_load_folder(tmp_path, rng, workers):
    imgs = _dataset(tmp_path, rng)
    (tmp_path / "cats" / "notes.txt").write_text("ignored: not an image extension")
    (tmp_path / ".hidden").mkdir()
    x, y, names = IO.load_folder(tmp_path, size=(12, 10), workers=workers, progress=workers is None)
    assert names == ["cats", "dogs", "owls"]
    assert x.shape == (9, 12, 10, 3) and x.dtype == np.uint8
    assert y.dtype == np.int64 and y.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]
    order = [(n, i) for n, k in (("cats", 3), ("dogs", 2), ("owls", 4)) for i in range(k)]
    for j, key in enumerate(order):
        np.testing.assert_array_equal(x[j], imgs[key])
    g, _, _ = IO.load_folder(tmp_path, size=(12, 10), mode="L", progress=False)
    assert g.shape == (9, 12, 10, 1)
    with Image.open(tmp_path / "dogs" / "001.png") as im:
        np.testing.assert_array_equal(g[4, ..., 0], np.asarray(im.convert("L")))
    a, _, _ = IO.load_folder(tmp_path, size=(12, 10), mode="RGBA", progress=False)
    assert a.shape == (9, 12, 10, 4) and (a[..., 3] == 255).all()


def test_load_folder_skips_unreadable_files(tmp_path, rng):
    _dataset(tmp_path, rng)
    (tmp_path / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "owls" / "zz.jpg").write_text("not a jpeg")
    with pytest.warns(UserWarning, match="skipped 2") as rec:
        x, y, names = IO.load_folder(tmp_path, size=(12, 10), progress=False)
    msg = str(rec[0].message)
    assert "broken.png" in msg and "zz.jpg" in msg
    assert x.shape[0] == 9 and y.tolist() == [0, 0, 0, 1, 1, 2, 2, 2, 2]


def test_load_folder_errors(tmp_path, rng):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        IO.load_folder(tmp_path / "nowhere", size=4)
    f = tmp_path / "file.png"
    f.write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="file.png"):
        IO.load_folder(f, size=4)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no class subfolders"):
        IO.load_folder(empty, size=4)
    (empty / "cats").mkdir()
    (empty / "dogs").mkdir()
    IO.imwrite(empty / "cats" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="dogs"):
        IO.load_folder(empty, size=4)
    IO.imwrite(empty / "dogs" / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="size"):
        IO.load_folder(empty, size=(0, 4))
    with pytest.raises(ValueError, match="mode"):
        IO.load_folder(empty, size=4, mode="unchanged")
    with pytest.raises(ValueError, match="workers"):
        IO.load_folder(empty, size=4, workers=0)
    bad = tmp_path / "bad"
    (bad / "c").mkdir(parents=True)
    (bad / "c" / "x.png").write_text("no")
    with pytest.raises(ValueError, match="none of the 1"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        IO.load_folder(bad, size=4, progress=False)


def test_load_folder_resizes(tmp_path, rng):
    imgs = _dataset(tmp_path, rng, classes=("a", "b"), per=(2, 2), size=(40, 30))
    x, y, _ = IO.load_folder(tmp_path, size=(20, 15), progress=False)
    assert x.shape == (4, 20, 15, 3)
    exp = imkern.transform.resize(imgs[("a", 0)], (20, 15), interpolation="area")
    np.testing.assert_array_equal(x[0], exp)
    x, _, _ = IO.load_folder(tmp_path, size=(50, 31), progress=False)
    np.testing.assert_array_equal(x[3], imkern.transform.resize(imgs[("b", 1)], (50, 31), interpolation="bilinear"))
