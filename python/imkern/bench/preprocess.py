"""CPU benchmark cases of the preprocessing ops (color, to_tensor, io) against their usual
peers: OpenCV for color conversions, the NumPy expression and PyTorch for to_tensor, a plain
Pillow loop for load_folder. Every side allocates its output per call, as a caller without
``out=`` does, and uses the thread count imkern uses."""

from __future__ import annotations

import os
import tempfile
from typing import Dict

import numpy as np

from . import Case, optional_import

H, W = 2160, 3840
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def _cv2():
    cv2 = optional_import("cv2")
    if cv2 is not None:
        import imkern

        cv2.setNumThreads(imkern.get_num_threads())
    return cv2


def _color_setup(fn_name, cv_code, dtype=np.uint8):
    def setup():
        import imkern

        x: np.ndarray = np.random.default_rng(0).integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        if dtype == np.float32:
            x = x.astype(np.float32) / np.float32(255)  # [0, 1] RGB for both (cv2's HSV H in degrees)
        if fn_name == "hsv_to_rgb":
            x[..., 0] %= 180  # valid uint8 hues (OpenCV's H in [0, 180))
        fn = getattr(imkern.color, fn_name)
        peers = {}
        cv2 = _cv2()
        if cv2 is not None:
            code = getattr(cv2, cv_code)
            peers["opencv"] = lambda: cv2.cvtColor(x, code)
        return (lambda: fn(x)), peers

    return setup


def _to_tensor_setup(n=64, h=224, w=224):
    def setup():
        import imkern

        x = np.random.default_rng(0).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)
        m, s = np.array(MEAN, np.float32), np.array(STD, np.float32)
        peers = {"numpy": lambda: np.ascontiguousarray(((x.astype(np.float32) / 255 - m) / s).transpose(0, 3, 1, 2))}
        torch = optional_import("torch")
        if torch is not None:
            torch.set_num_threads(imkern.get_num_threads())
            xt = torch.from_numpy(x)
            mt, st = torch.tensor(m).view(1, 3, 1, 1), torch.tensor(s).view(1, 3, 1, 1)

            def peer():
                with torch.no_grad():
                    return xt.permute(0, 3, 1, 2).float().div_(255).sub_(mt).div_(st).contiguous()

            peers["torch"] = peer
        return (lambda: imkern.transform.to_tensor(x, mean=MEAN, std=STD)), peers

    return setup


_FOLDER: Dict[str, str] = {}


def _jpeg_folder(n=500, size=(240, 320)):
    """n photo-like JPEGs (h, w = size) in 5 class folders (made once per process)."""
    if "root" in _FOLDER:
        return _FOLDER["root"]
    from PIL import Image

    root = tempfile.mkdtemp(prefix="imkern-bench-jpegs-")
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0 : size[0], 0 : size[1]]
    for i in range(n):
        d = os.path.join(root, f"class{i % 5}")
        os.makedirs(d, exist_ok=True)
        f = rng.uniform(3, 12, 3)
        img = np.stack([128 + 100 * np.sin(xx / f[c] + i) * np.cos(yy / f[(c + 1) % 3]) for c in range(3)], -1)
        img = np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(os.path.join(d, f"{i:04d}.jpg"), quality=90)
    _FOLDER["root"] = root
    return root


def _load_folder_setup(n=500, size=(224, 224)):
    """Decode 320x240 JPEGs and shrink them to ``size`` (imkern: area; Pillow: its box filter,
    the same average for this factor)."""

    def setup():
        import imkern

        root = _jpeg_folder(n)
        peers = {}
        Image = optional_import("PIL.Image")
        if Image is not None:
            files = sorted(os.path.join(dp, f) for dp, _, fs in os.walk(root) for f in fs if f.endswith(".jpg"))

            def pillow_loop():
                imgs = []
                for p in files:
                    with Image.open(p) as im:
                        imgs.append(np.asarray(im.convert("RGB").resize(size[::-1], Image.Resampling.BOX)))
                return np.stack(imgs)

            peers["pillow"] = pillow_loop
        return (lambda: imkern.io.load_folder(root, size=size, progress=False)), peers

    return setup


CASES = [
    Case("rgb_to_gray uint8 2160x3840x3", "cpu", _color_setup("rgb_to_gray", "COLOR_RGB2GRAY"), bytes=4 * H * W),
    Case("rgb_to_hsv uint8 2160x3840x3", "cpu", _color_setup("rgb_to_hsv", "COLOR_RGB2HSV"), bytes=6 * H * W),
    Case("hsv_to_rgb uint8 2160x3840x3", "cpu", _color_setup("hsv_to_rgb", "COLOR_HSV2RGB"), bytes=6 * H * W),
    Case("rgb_to_lab uint8 2160x3840x3", "cpu", _color_setup("rgb_to_lab", "COLOR_RGB2Lab"), bytes=6 * H * W),
    Case(
        "rgb_to_hsv float32 2160x3840x3",
        "cpu",
        _color_setup("rgb_to_hsv", "COLOR_RGB2HSV", np.float32),
        bytes=24 * H * W,
    ),
    Case(
        "rgb_to_lab float32 2160x3840x3",
        "cpu",
        _color_setup("rgb_to_lab", "COLOR_RGB2Lab", np.float32),
        bytes=24 * H * W,
    ),
    Case(
        "to_tensor imagenet_mean_std uint8 64x224x224x3", "cpu", _to_tensor_setup(), bytes=64 * 224 * 224 * 3 * (1 + 4)
    ),
    Case("load_folder jpeg uint8 500x224x224x3", "cpu", _load_folder_setup(), note="decode-bound; threads"),
]
