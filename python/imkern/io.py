"""Image files: read, write, and load a folder of images as a labeled dataset.

Decoding and encoding are Pillow's (no hand-written decoders); imkern adds the array
conventions of the rest of the package (``(H, W)`` / ``(H, W, C)`` uint8 or uint16 NumPy
arrays, RGB order), EXIF orientation, clear errors that name the file, and parallel loading
(Pillow releases the GIL while it decodes, so threads scale).

Pillow is needed (``pip install imkern[io]``); tqdm draws the progress bar of
:func:`load_folder` when it is installed.
"""

from __future__ import annotations

import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import List, Tuple

import numpy as np

from . import _arrays as A
from . import _core, _interop

__all__ = ["imread", "imwrite", "load_folder", "IMAGE_EXTENSIONS"]

_MODES = ("RGB", "L", "RGBA", "unchanged")
# extension -> Pillow format name
_WRITE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".ppm", ".pgm", ".pbm")
_EXIF_ORIENTATION = 0x0112


def _pil():
    try:
        from PIL import Image, ImageOps
    except ImportError:  # pragma: no cover - pillow is a dependency of the io extra
        raise ImportError("imkern.io needs Pillow: pip install pillow (or imkern[io])") from None
    return Image, ImageOps


def _check_mode(mode, allowed=_MODES):
    if not isinstance(mode, str) or mode not in allowed:
        raise ValueError(f"mode: expected one of {', '.join(repr(m) for m in allowed)}; got {mode!r}")
    return mode


def _sixteen_to_u8(a: np.ndarray) -> np.ndarray:
    # 16-bit samples to 8 bits as cv2.imread does (the high byte)
    return (np.clip(a, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)


def _to_array(im, mode: str, path) -> np.ndarray:
    """A decoded Pillow image in the requested mode, as a new NumPy array."""
    m = im.mode
    if m in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        a = np.asarray(im)
        if m == "I" and (a.min(initial=0) < 0 or a.max(initial=0) > 65535):
            if mode == "unchanged":
                return np.array(a, dtype=np.int32)
            raise ValueError(f"imread: {path}: 32-bit integer samples outside the 16-bit range")
        a16 = a.astype(np.uint16)
        if mode == "unchanged":
            return np.ascontiguousarray(a16)
        g = _sixteen_to_u8(a16)
        if mode == "L":
            return g
        rgb = np.repeat(g[:, :, None], 3, axis=2)
        if mode == "RGBA":
            return np.concatenate([rgb, np.full(g.shape + (1,), 255, np.uint8)], axis=2)
        return rgb
    if m == "F":
        if mode == "unchanged":
            return np.array(im, dtype=np.float32)
        raise ValueError(f"imread: {path}: floating-point image; read it with mode='unchanged'")
    if mode == "unchanged":
        if m == "1":
            im = im.convert("L")
        elif m == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        elif m == "PA":
            im = im.convert("RGBA")
        elif m in ("CMYK", "YCbCr", "LAB", "HSV"):
            im = im.convert("RGB")
    elif m != mode:
        im = im.convert(mode)
    return np.array(im)


def imread(path, *, mode="RGB"):
    """Read an image file into a NumPy array (Pillow decodes it).

    Args:
        path: a file name (str or os.PathLike).
        mode: "RGB" -> ``(H, W, 3)`` uint8; "L" -> ``(H, W)`` uint8 gray (Pillow's
            ITU-R 601 luma); "RGBA" -> ``(H, W, 4)`` uint8 (opaque alpha when the file has
            none); "unchanged" -> the file's own samples: uint8 gray / gray+alpha / RGB / RGBA,
            **16-bit gray kept as uint16**, 32-bit float TIFF as float32 (palette images are
            expanded to RGB or RGBA, CMYK converted to RGB). In the 8-bit modes 16-bit samples
            keep their high byte (as cv2.imread).

    The EXIF orientation tag is applied (the array is upright, as a viewer shows it).

    Returns:
        A new C-contiguous array.

    Raises:
        FileNotFoundError: no such file. OSError: not an image, an unsupported format, or a
        corrupt or truncated file; every message names the file. ValueError: a bad ``mode``.

    Example:
        >>> import os, tempfile, numpy as np, imkern
        >>> p = os.path.join(tempfile.mkdtemp(), "a.png")
        >>> imkern.io.imwrite(p, np.full((2, 3, 3), 7, np.uint8))
        >>> imkern.io.imread(p).shape, imkern.io.imread(p, mode="L").shape
        ((2, 3, 3), (2, 3))
    """
    _check_mode(mode)
    Image, ImageOps = _pil()
    try:
        fspath = os.fspath(path)
    except TypeError:
        raise TypeError(f"path: expected a str or os.PathLike, got {type(path).__name__}") from None
    if not os.path.exists(fspath):
        raise FileNotFoundError(2, "imread: no such file", fspath)
    if os.path.isdir(fspath):
        raise IsADirectoryError(21, "imread: is a directory, not an image file", fspath)
    try:
        with Image.open(fspath) as im:
            im.load()
            orientation = im.getexif().get(_EXIF_ORIENTATION, 1) if hasattr(im, "getexif") else 1
            if orientation not in (1, None):
                im = ImageOps.exif_transpose(im)
            return _to_array(im, mode, fspath)
    except Image.UnidentifiedImageError:
        raise OSError(f"imread: {fspath}: not an image file, or a format Pillow cannot read") from None
    except (OSError, SyntaxError, Image.DecompressionBombError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise OSError(f"imread: {fspath}: corrupt or truncated image ({e})") from e


@_interop.accepts_foreign
def imwrite(path, image, *, quality=95):
    """Write an image to a file; the format comes from the extension (Pillow encodes it).

    Formats: PNG, JPEG (``.jpg``/``.jpeg``), TIFF (``.tif``/``.tiff``), BMP, WebP.

    Args:
        path: file name; its extension picks the format.
        image: ``(H, W)`` / ``(H, W, 1)`` gray, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, uint8
            (every format; JPEG and BMP have no alpha; WebP stores gray as RGB, so it reads
            back as ``(H, W, 3)``); ``(H, W)`` uint16 gray (PNG, TIFF: 16 bits
            kept); ``(H, W)`` float32 (TIFF). bool is written as 0/255. A CuPy array is
            copied to the host first; PyTorch tensors and JAX arrays (any DLPack producer) are
            read through a zero-copy view.
        quality: 1-100, for JPEG and (lossy) WebP; ignored by the lossless formats.

    Raises:
        ValueError: unknown extension, bad shape, an image the format cannot hold, bad
        quality. TypeError: unsupported dtype. OSError: the file cannot be written (names it).

    Example:
        >>> import os, tempfile, numpy as np, imkern
        >>> d = tempfile.mkdtemp()
        >>> img = np.arange(12, dtype=np.uint16).reshape(3, 4) * 5000
        >>> imkern.io.imwrite(os.path.join(d, "depth.png"), img)        # 16 bits kept
        >>> back = imkern.io.imread(os.path.join(d, "depth.png"), mode="unchanged")
        >>> back.dtype, bool((back == img).all())
        (dtype('uint16'), True)
    """
    Image, _ = _pil()
    fspath = os.fspath(path)
    ext = os.path.splitext(fspath)[1].lower()
    if ext not in _WRITE_FORMATS:
        raise ValueError(
            f"path: {fspath}: unknown image extension {ext!r}; expected one of {', '.join(sorted(_WRITE_FORMATS))}"
        )
    fmt = _WRITE_FORMATS[ext]
    if A.is_cupy(image):
        image = image.get()
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image: expected a numpy.ndarray or cupy.ndarray, got {type(image).__name__}")
    A.array_kind(image, "image")  # the shared checks: non-native byte order -> TypeError
    q = A.as_int(quality, "quality")
    if not 1 <= q <= 100:
        raise ValueError(f"quality: expected 1..100, got {q}")
    a = image
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise ValueError(f"image: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {tuple(image.shape)}")
    dt = a.dtype
    if dt == np.bool_:
        a = a.astype(np.uint8) * 255
        dt = a.dtype
    a = np.ascontiguousarray(a)
    if dt == np.uint8:
        pil_mode = {2: "L", 3: "RGB", 4: "RGBA"}[a.ndim if a.ndim == 2 else a.shape[2]]
        if pil_mode == "RGBA" and fmt in ("JPEG", "BMP"):
            raise ValueError(
                f"image: {fmt} cannot store an alpha channel (Pillow); drop or blend it "
                "(imkern.color.rgba_to_rgb) first, or write PNG, TIFF or WebP"
            )
        im = Image.fromarray(a)
    elif dt == np.uint16:
        if a.ndim != 2 or fmt not in ("PNG", "TIFF"):
            raise ValueError(
                f"image: 16-bit images can be written as gray PNG or TIFF only (Pillow); got shape "
                f"{tuple(a.shape)} for {fmt}"
            )
        im = Image.fromarray(a)  # mode "I;16"
    elif dt == np.float32:
        if a.ndim != 2 or fmt != "TIFF":
            raise ValueError(f"image: float32 images can be written as gray TIFF only; got {fmt}")
        im = Image.fromarray(a)  # mode "F"
    else:
        raise TypeError(f"image: dtype {dt} cannot be written; expected uint8, uint16 (gray) or float32 (gray TIFF)")
    kwargs = {}
    if fmt in ("JPEG", "WEBP"):
        kwargs["quality"] = q
    try:
        im.save(fspath, format=fmt, **kwargs)
    except OSError as e:
        if e.filename:
            raise
        raise OSError(f"imwrite: {fspath}: cannot write ({e})") from e


def _list_folder(root) -> Tuple[List[str], List[Tuple[str, int]]]:
    fsroot = os.fspath(root)
    if not os.path.exists(fsroot):
        raise FileNotFoundError(2, "load_folder: no such folder", fsroot)
    if not os.path.isdir(fsroot):
        raise NotADirectoryError(20, "load_folder: not a folder", fsroot)
    classes = sorted(e.name for e in os.scandir(fsroot) if e.is_dir() and not e.name.startswith("."))
    if not classes:
        raise ValueError(f"load_folder: {fsroot}: no class subfolders (expected one subfolder per class)")
    items: List[Tuple[str, int]] = []
    for label, name in enumerate(classes):
        folder = os.path.join(fsroot, name)
        files = sorted(
            e.path
            for e in os.scandir(folder)
            if e.is_file() and not e.name.startswith(".") and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise ValueError(f"load_folder: class folder {folder} holds no image files ({', '.join(IMAGE_EXTENSIONS)})")
        items.extend((f, label) for f in files)
    return classes, items


def _resize_fn():
    from . import transform

    return getattr(transform, "resize", None)


def load_folder(root, *, size, mode="RGB", workers=None, progress=True):
    """Load a folder of labeled images: one subfolder per class (``root/cats/*.jpg``,
    ``root/dogs/*.png``, ...), every image decoded and resized to ``size``.

    Files are decoded by :func:`imread` in parallel threads (Pillow releases the GIL) and
    resized by :func:`imkern.transform.resize` ("area" when shrinking both axes, "bilinear"
    otherwise); images already of the target size are kept as they are. A tqdm progress bar
    is shown when tqdm is installed and ``progress`` is true. Unreadable files are skipped
    and reported in one warning (a :class:`UserWarning` naming each file and why); they are
    never fatal.

    Args:
        root: the dataset folder. Classes are its subfolders, sorted by name; label ``i`` is
            ``class_names[i]``. Files with other extensions and hidden files are ignored.
        size: ``(h, w)`` of every image (an int means square).
        mode: "RGB" (C = 3), "RGBA" (C = 4) or "L" (C = 1).
        workers: decoding threads (default: the CPUs this process may use).
        progress: show a progress bar.

    Returns:
        ``(images, labels, class_names)``: ``(N, h, w, C)`` uint8, ``(N,)`` int64, list of str,
        in class order, files sorted by name within a class.

    Raises:
        FileNotFoundError / NotADirectoryError: ``root`` is missing or not a folder.
        ValueError: no class subfolders, a class with no image files, a bad size or mode, or
        no readable image at all.

    Example:
        >>> import os, tempfile, numpy as np, imkern
        >>> root = tempfile.mkdtemp()
        >>> for name in ("cat", "dog"):
        ...     os.mkdir(os.path.join(root, name))
        ...     imkern.io.imwrite(os.path.join(root, name, "0.png"), np.zeros((4, 5, 3), np.uint8))
        >>> x, y, names = imkern.io.load_folder(root, size=(4, 5), progress=False)
        >>> x.shape, y.tolist(), names
        ((2, 4, 5, 3), [0, 1], ['cat', 'dog'])
    """
    h, w = A.as_pair(size, "size")
    if h < 1 or w < 1:
        raise ValueError(f"size: expected positive (h, w), got {(h, w)}")
    _check_mode(mode, ("RGB", "RGBA", "L"))
    if workers is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = A.as_int(workers, "workers")
    if workers < 1:
        raise ValueError(f"workers: expected a positive count, got {workers}")
    _pil()
    classes, items = _list_folder(root)
    channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
    n = len(items)
    images = np.empty((n, h, w, channels), np.uint8)
    ok = np.zeros(n, bool)
    errors: List[Tuple[str, str]] = []
    resize = _resize_fn()

    def work(i):
        path = items[i][0]
        try:
            a = imread(path, mode=mode)
        except (OSError, ValueError) as e:
            return i, f"{type(e).__name__}: {e}"
        if a.ndim == 2:
            a = a[:, :, None]
        if a.shape[:2] != (h, w):
            if resize is None:
                raise NotImplementedError(
                    f"load_folder: {path} is {a.shape[0]}x{a.shape[1]}, not {h}x{w}, and this imkern has no "
                    "imkern.transform.resize"
                )
            interp = "area" if (a.shape[0] >= h and a.shape[1] >= w) else "bilinear"
            resize(a, (h, w), interpolation=interp, out=images[i])
        else:
            images[i] = a
        ok[i] = True
        return i, None

    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=n, desc="load_folder", unit="img")
        except ImportError:
            bar = None
    try:
        if workers == 1:
            results = map(work, range(n))
            for i, err in results:
                if err:
                    errors.append((items[i][0], err))
                if bar is not None:
                    bar.update(1)
        else:
            # The decoding threads are the parallelism: each one's resize runs in that thread
            # (a thread-local limit of 1), not on imkern's pool, whose worker would otherwise
            # compete with them for the CPUs (and spin after each call).
            with ThreadPoolExecutor(
                max_workers=workers, initializer=_core.set_thread_local_num_threads, initargs=(1,)
            ) as pool:
                for i, err in pool.map(work, range(n)):
                    if err:
                        errors.append((items[i][0], err))
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    if errors:
        listing = "\n".join(f"  {p}: {msg}" for p, msg in errors)
        warnings.warn(f"load_folder: skipped {len(errors)} unreadable file(s):\n{listing}", UserWarning, stacklevel=2)
    if not ok.any():
        raise ValueError(f"load_folder: {os.fspath(root)}: none of the {n} image files could be read")
    labels = np.array([lab for _, lab in items], np.int64)
    if not ok.all():
        images, labels = images[ok], labels[ok]
    return images, labels, list(classes)
