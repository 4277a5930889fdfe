"""imkern.torch inside torch.compile against the native torch ops (CPU, float32, NCHW; the
filters on NHWC images): each case compiles the same small function twice, once with
imkern.torch's operators and once with torch's, and times the compiled forward. Compiling
needs a C++ toolchain for inductor; where it is missing the case falls back to eager."""

from __future__ import annotations

import numpy as np

from . import Case, optional_import


def _compiled(torch, f):
    try:
        return torch.compile(f)
    except Exception:  # pragma: no cover - no inductor here
        return f


def _case(make):
    def setup():
        torch = optional_import("torch")
        if torch is None:
            raise ImportError("the imkern.torch cases need PyTorch")
        import imkern
        import imkern.torch as itorch

        torch.set_num_threads(imkern.get_num_threads())
        ours, theirs, args = make(torch, itorch)
        fo, ft = _compiled(torch, ours), _compiled(torch, theirs)
        with torch.no_grad():
            fo(*args), ft(*args)  # compile outside the timed calls

        def run(f):
            def g():
                with torch.no_grad():
                    return f(*args)

            return g

        return run(fo), {"torch": run(ft)}

    return setup


def _conv(torch, itorch):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(32, 64, 56, 56, generator=g)
    w = torch.rand(64, 64, 3, 3, generator=g) - 0.5
    b = torch.rand(64, generator=g)
    ours = lambda x: torch.relu(itorch.conv2d(x, w, b, 1, 1))
    theirs = lambda x: torch.relu(torch.nn.functional.conv2d(x, w, b, 1, 1))
    return ours, theirs, (x,)


def _pool(torch, itorch):
    x = torch.rand(32, 64, 112, 112, generator=torch.Generator().manual_seed(0))
    return (lambda x: itorch.max_pool2d(x, 3, 2, 1)), (lambda x: torch.nn.functional.max_pool2d(x, 3, 2, 1)), (x,)


def _gauss(torch, itorch):
    x = torch.rand(8, 3, 512, 512, generator=torch.Generator().manual_seed(0))
    k = np.exp(-0.5 * (np.arange(-6, 7) / 1.5) ** 2)
    k = torch.tensor(k / k.sum(), dtype=torch.float32)
    wy, wx = k.view(1, 1, -1, 1).repeat(3, 1, 1, 1), k.view(1, 1, 1, -1).repeat(3, 1, 1, 1)

    def theirs(x):  # the usual torch Gaussian blur: reflect padding + two depthwise convolutions
        p = torch.nn.functional.pad(x, (6, 6, 6, 6), mode="reflect")
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(p, wy, groups=3), wx, groups=3)

    def ours(x):  # imkern's images are NHWC: the same batch as a channels-last view
        return itorch.gaussian(x.permute(0, 2, 3, 1), 1.5, truncate=4.0).permute(0, 3, 1, 2)

    return ours, theirs, (x.contiguous(memory_format=torch.channels_last),)


CASES = [
    Case(
        "conv2d 3x3 k64 p1 compiled float32 32x64x56x56",
        "cpu",
        _case(_conv),
        flops=2 * 32 * 64 * 56 * 56 * 64 * 9,
        note="imkern.torch.conv2d + relu under torch.compile vs torch",
    ),
    Case(
        "max_pool2d 3x3 s2 p1 compiled float32 32x64x112x112",
        "cpu",
        _case(_pool),
        bytes=4 * 32 * 64 * (112 * 112 + 56 * 56),
        note="under torch.compile vs torch",
    ),
    Case(
        "gaussian s1.5 compiled float32 8x3x512x512",
        "cpu",
        _case(_gauss),
        bytes=2 * 4 * 8 * 3 * 512 * 512,
        note="imkern.torch.gaussian (NHWC view) vs reflect pad + 2 depthwise conv2d, under torch.compile",
    ),
]
