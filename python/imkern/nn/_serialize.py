"""Model files: :func:`save` writes one ``.npz`` holding the architecture (JSON: each layer's type
and constructor arguments) and the weights (parameters and buffers by their state_dict names);
:func:`load` rebuilds the model from the file alone, without the code that built it.

The file is a plain NumPy archive read with ``allow_pickle=False`` (nothing in it is executed):
``__imkern_model__`` is the JSON header, ``state.<name>`` the arrays.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Optional

import numpy as np

from . import layers as L

__all__ = ["save", "load"]

FORMAT = "imkern.nn.model"
VERSION = 1
_HEADER = "__imkern_model__"


def _spec(m: L.Module) -> dict:
    name = type(m).__name__
    cfg = m._config()
    if L.LAYERS.get(name) is not type(m) or cfg is None:
        raise TypeError(
            f"save: {name} is not an imkern.nn layer, so the file could not rebuild it without its code; "
            "build the model from imkern.nn layers (Sequential, Conv2d, ...), or save only the weights "
            "(save(model, path, architecture=False)) and load them with load(path, model=your_model)"
        )
    spec = {"type": name, "config": cfg}
    if isinstance(m, L.Sequential):
        spec["layers"] = [_spec(layer) for layer in m.layers]
    return spec


def _build(spec) -> L.Module:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ValueError("load: the architecture entry is malformed")
    cls = L.LAYERS.get(spec["type"])
    if cls is None:
        raise ValueError(f"load: unknown layer type {spec['type']!r} (saved by a newer imkern?)")
    if cls is L.Sequential:
        return L.Sequential(*[_build(s) for s in spec.get("layers", [])])
    cfg = dict(spec.get("config", {}))
    if "dtype" in cfg:
        cfg["dtype"] = np.dtype(cfg["dtype"])
    if cls in (L.Conv2d, L.Linear):
        cfg["seed"] = 0  # the weights come from the file: don't consume the global generator
    for k in ("kernel_size", "stride", "padding", "dilation", "output_size"):
        if isinstance(cfg.get(k), list):
            cfg[k] = tuple(cfg[k])
    try:
        return cls(**cfg)
    except (TypeError, ValueError) as e:
        raise ValueError(f"load: cannot rebuild {spec['type']} from {cfg}: {e}") from None


def _host(a) -> np.ndarray:
    return a.get() if L._is_cupy(a) else np.asarray(a)


def save(model: L.Module, path, *, metadata: Optional[dict] = None, architecture: bool = True) -> None:
    """Write ``model`` (its architecture and weights) to ``path`` (one ``.npz`` file, written as named).

    Args:
        model: an :class:`imkern.nn.Module` built from imkern.nn layers (with ``architecture=False``,
            any Module: only the weights are stored).
        path: file name; overwritten if it exists.
        metadata: optional JSON-serializable dict stored with the model (class names, input size,
            normalization, ...); :func:`load` returns it as ``model.metadata``.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from imkern import nn
        >>> m = nn.Sequential(nn.Linear(4, 3, seed=0), nn.ReLU(), nn.Linear(3, 2, seed=1))
        >>> p = os.path.join(tempfile.mkdtemp(), "m.npz")
        >>> nn.save(m, p, metadata={"classes": ["a", "b"]})
        >>> m2 = nn.load(p)
        >>> x = np.ones((1, 4), np.float32)
        >>> bool((m2(x) == m(x)).all()), m2.metadata["classes"]
        (True, ['a', 'b'])
    """
    if not isinstance(model, L.Module):
        raise TypeError(f"model: expected an imkern.nn Module, got {type(model).__name__}")
    header = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": _spec(model) if architecture else None,
        "metadata": metadata or {},
    }
    try:
        from .. import __version__ as v

        header["imkern"] = v
    except ImportError:  # pragma: no cover
        pass
    try:
        text = json.dumps(header)
    except TypeError as e:
        raise TypeError(f"metadata: must be JSON-serializable ({e})") from None
    arrays = {_HEADER: np.array(text)}
    for k, a in model.state_dict().items():
        arrays["state." + k] = _host(a)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds like allow_pickle


def _read(path):
    try:
        with np.load(os.fspath(path), allow_pickle=False) as z:
            if _HEADER not in z.files:
                raise ValueError("no imkern model header (not written by imkern.nn.save)")
            header = json.loads(str(z[_HEADER]))
            state = {k[len("state.") :]: z[k] for k in z.files if k.startswith("state.")}
    except FileNotFoundError:
        raise FileNotFoundError(f"{os.fspath(path)}: no such model file") from None
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, json.JSONDecodeError) as e:
        raise ValueError(f"{os.fspath(path)}: not a valid imkern model file ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{os.fspath(path)}: not an imkern model file (format {header.get('format')!r})")
    if header.get("version", 0) > VERSION:
        raise ValueError(
            f"{os.fspath(path)}: model file version {header['version']} is newer than this imkern "
            f"reads ({VERSION}); upgrade imkern"
        )
    return header, state


def load(path, model: Optional[L.Module] = None, *, device: str = "cpu") -> L.Module:
    """Read a model written by :func:`save`.

    Without ``model``, the model is rebuilt from the architecture in the file. With ``model``,
    the weights are loaded into it after checking that its architecture (and every parameter
    name and shape) matches the file's. The model comes back in eval mode on ``device``, with
    the saved metadata as ``model.metadata``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a corrupt or truncated file, a file that is not an imkern model, or a model
            of another architecture than ``model``.

    Example:
        >>> import os, tempfile
        >>> import numpy as np
        >>> from imkern import nn
        >>> path = os.path.join(tempfile.mkdtemp(), "m.npz")
        >>> nn.save(nn.Sequential(nn.Linear(4, 2, seed=0)), path, metadata={"classes": ["a", "b"]})
        >>> m = nn.load(path)
        >>> m.training, m.metadata["classes"], m(np.ones((1, 4), np.float32)).shape
        (False, ['a', 'b'], (1, 2))
    """
    header, state = _read(path)
    arch = header.get("architecture")
    if model is None:
        if arch is None:
            raise ValueError(
                f"{os.fspath(path)}: the file holds weights only (saved with architecture=False); "
                "pass the model to load them into: load(path, model=...)"
            )
        model = _build(arch)
    else:
        if not isinstance(model, L.Module):
            raise TypeError(f"model: expected an imkern.nn Module, got {type(model).__name__}")
        if arch is not None:
            try:
                mine = _spec(model)
            except TypeError:
                mine = None
            if mine is not None and mine != arch:
                raise ValueError(
                    f"{os.fspath(path)}: the file holds another architecture than this model "
                    f"(file: {_summary(arch)}; model: {_summary(mine)})"
                )
    try:
        model.load_state_dict(state)
    except ValueError as e:
        raise ValueError(f"{os.fspath(path)}: {e}") from None
    model.eval()
    model.to(device)
    model.metadata = header.get("metadata", {})  # type: ignore[attr-defined]  # set on the loaded model only
    return model


def _summary(spec) -> str:
    if spec.get("type") == "Sequential":
        return "Sequential(" + ", ".join(_summary(s) for s in spec.get("layers", [])) + ")"
    cfg = spec.get("config", {})
    short = {
        k: v
        for k, v in cfg.items()
        if k in ("in_channels", "out_channels", "kernel_size", "in_features", "out_features", "num_features", "p")
    }
    return spec["type"] + ("(" + ", ".join(f"{k}={v}" for k, v in short.items()) + ")" if short else "")
