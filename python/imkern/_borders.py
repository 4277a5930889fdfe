"""Border-mode names shared by the public API and the reference."""

from __future__ import annotations

from . import _core

# canonical name -> code of csrc/include/imkern/common.hpp (Border), from the exported enum
BORDER_CODES = {name: int(v) for name, v in _core.Border.__members__.items()}
# unambiguous aliases from SciPy / NumPy / PyTorch
BORDER_ALIASES = {
    "mirror": "reflect101",
    "symmetric": "reflect",
    "nearest": "replicate",
    "circular": "wrap",
    "grid-wrap": "wrap",
}


def parse_border(border) -> str:
    """Canonical border name; anything unknown is a ValueError listing the valid names."""
    if isinstance(border, str):
        name = BORDER_ALIASES.get(border, border)
        if name in BORDER_CODES:
            return name
    valid = ", ".join(repr(b) for b in (*BORDER_CODES, *BORDER_ALIASES))
    raise ValueError(f"border: expected one of {valid}; got {border!r}")
