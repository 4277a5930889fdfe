"""CPU benchmark cases of imkern.transform (resize, warp_affine, flip, rotate90, pad) against the fastest installed
peer: OpenCV, and PyTorch for the antialiased resize (the peers use every core this process
may use, as imkern does)."""

from __future__ import annotations

import numpy as np

from . import Case, optional_import

H4, W4 = 2160, 3840
H1, W1 = 1080, 1920


def _img(shape, dtype=np.uint8):
    rng = np.random.default_rng(0)
    if np.dtype(dtype).kind == "f":
        return rng.random(shape, dtype=dtype)
    return rng.integers(0, np.iinfo(dtype).max + 1, size=shape, dtype=dtype)


def _case(shape, out_shape, imkern_call, cv2_call=None, torch_call=None, dtype=np.uint8):
    def setup():
        import imkern

        x = _img(shape, dtype)
        out = np.empty(out_shape, dtype)
        fn = lambda: imkern_call(imkern, x, out)
        peers = {}
        cv2 = optional_import("cv2")
        if cv2 is not None and cv2_call is not None:
            cv2.setNumThreads(imkern.get_num_threads())
            peers["opencv"] = lambda: cv2_call(cv2, x, out)
        torch = optional_import("torch")
        if torch is not None and torch_call is not None:
            torch.set_num_threads(imkern.get_num_threads())
            t = torch.from_numpy(x).permute(2, 0, 1)[None]  # NCHW view of the HWC image (channels-last)
            peers["torch"] = lambda: torch_call(torch, t)
        return fn, peers

    return setup


_AFFINE = np.array([[0.96, -0.17, 60.5], [0.17, 0.96, -120.25]])
_PERSPECTIVE = np.array([[0.96, -0.17, 60.5], [0.17, 0.96, -120.25], [1e-5, 2e-5, 1.0]])

CASES = [
    Case(
        "resize 1080x1920 bilinear uint8 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H1, W1), out=out),
            lambda cv2, x, out: cv2.resize(x, (W1, H1), dst=out, interpolation=cv2.INTER_LINEAR),
        ),
        bytes=H4 * W4 * 3 + H1 * W1 * 3,
    ),
    Case(
        "resize 2160x3840 bicubic uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H4, W4, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H4, W4), interpolation="bicubic", out=out),
            lambda cv2, x, out: cv2.resize(x, (W4, H4), dst=out, interpolation=cv2.INTER_CUBIC),
        ),
        bytes=H4 * W4 * 3 + H1 * W1 * 3,
    ),
    Case(
        "resize 1080x1920 bilinear float32 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H1, W1), out=out),
            lambda cv2, x, out: cv2.resize(x, (W1, H1), dst=out, interpolation=cv2.INTER_LINEAR),
            dtype=np.float32,
        ),
        bytes=4 * (H4 * W4 * 3 + H1 * W1 * 3),
    ),
    Case(
        "resize 2160x3840 bicubic float32 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H4, W4, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H4, W4), interpolation="bicubic", out=out),
            lambda cv2, x, out: cv2.resize(x, (W4, H4), dst=out, interpolation=cv2.INTER_CUBIC),
            dtype=np.float32,
        ),
        bytes=4 * (H4 * W4 * 3 + H1 * W1 * 3),
    ),
    Case(
        "resize 540x960 bilinear uint8 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (H4 // 4, W4 // 4, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H4 // 4, W4 // 4), out=out),
            lambda cv2, x, out: cv2.resize(x, (W4 // 4, H4 // 4), dst=out, interpolation=cv2.INTER_LINEAR),
        ),
        # the two source rows of every output row (half the image) and the output
        bytes=H4 * W4 * 3 // 2 + (H4 // 4) * (W4 // 4) * 3,
    ),
    Case(
        "resize 1080x1920 area uint8 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (H1, W1), interpolation="area", out=out),
            lambda cv2, x, out: cv2.resize(x, (W1, H1), dst=out, interpolation=cv2.INTER_AREA),
        ),
        bytes=H4 * W4 * 3 + H1 * W1 * 3,
    ),
    Case(
        "resize 720x1280 nearest uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (720, 1280, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (720, 1280), interpolation="nearest", out=out),
            lambda cv2, x, out: cv2.resize(x, (1280, 720), dst=out, interpolation=cv2.INTER_NEAREST),
        ),
        bytes=720 * W1 * 3 + 720 * 1280 * 3,  # the source rows read (every line of each) and the output
    ),
    Case(
        "resize 540x960 bicubic float32 1080x1920",
        "cpu",
        _case(
            (H1, W1),
            (H1 // 2, W1 // 2),
            lambda imkern, x, out: imkern.transform.resize(x, (H1 // 2, W1 // 2), interpolation="bicubic", out=out),
            lambda cv2, x, out: cv2.resize(x, (W1 // 2, H1 // 2), dst=out, interpolation=cv2.INTER_CUBIC),
            dtype=np.float32,
        ),
        bytes=4 * (H1 * W1 + (H1 // 2) * (W1 // 2)),
    ),
    Case(
        "resize 224x224 area uint8 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (224, 224, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (224, 224), interpolation="area", out=out),
            lambda cv2, x, out: cv2.resize(x, (224, 224), dst=out, interpolation=cv2.INTER_AREA),
        ),
        bytes=H4 * W4 * 3,
    ),
    Case(
        "resize 512x512 bilinear antialias uint8 2160x3840x3",
        "cpu",
        _case(
            (H4, W4, 3),
            (512, 512, 3),
            lambda imkern, x, out: imkern.transform.resize(x, (512, 512), antialias=True, out=out),
            None,
            lambda torch, t: torch.nn.functional.interpolate(
                t, size=(512, 512), mode="bilinear", antialias=True, align_corners=False
            ),
        ),
        bytes=H4 * W4 * 3,
    ),
    Case(
        "warp_affine bilinear uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.warp_affine(x, _AFFINE, (H1, W1), out=out),
            lambda cv2, x, out: cv2.warpAffine(x, _AFFINE, (W1, H1), dst=out, flags=cv2.INTER_LINEAR),
        ),
        bytes=2 * H1 * W1 * 3,
    ),
    Case(
        "warp_perspective bilinear uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.warp_perspective(x, _PERSPECTIVE, (H1, W1), out=out),
            lambda cv2, x, out: cv2.warpPerspective(x, _PERSPECTIVE, (W1, H1), dst=out, flags=cv2.INTER_LINEAR),
        ),
        bytes=2 * H1 * W1 * 3,
    ),
    Case(
        "flip horizontal uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H1, W1, 3),
            lambda imkern, x, out: imkern.transform.flip(x, 1, out=out),
            lambda cv2, x, out: cv2.flip(x, 1, dst=out),
        ),
        bytes=2 * H1 * W1 * 3,
    ),
    Case(
        "rotate90 uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (W1, H1, 3),
            lambda imkern, x, out: imkern.transform.rotate90(x, 1, out=out),
            lambda cv2, x, out: cv2.rotate(x, cv2.ROTATE_90_COUNTERCLOCKWISE, dst=out),
        ),
        bytes=2 * H1 * W1 * 3,
    ),
    Case(
        "pad 32 reflect101 uint8 1080x1920x3",
        "cpu",
        _case(
            (H1, W1, 3),
            (H1 + 64, W1 + 64, 3),
            lambda imkern, x, out: imkern.transform.pad(x, 32, border="reflect101", out=out),
            lambda cv2, x, out: cv2.copyMakeBorder(x, 32, 32, 32, 32, cv2.BORDER_REFLECT_101, dst=out),
        ),
        bytes=H1 * W1 * 3 + (H1 + 64) * (W1 + 64) * 3,
    ),
]
