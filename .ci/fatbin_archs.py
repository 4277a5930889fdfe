"""Check that a CUDA build of imkern._core holds a kernel image for every architecture it claims.

Reads the .nv_fatbin section (dumped with objcopy; no CUDA tools needed) and walks its fat
binaries, one per translation unit: each must carry SASS (ELF) for every --sm given and PTX
for --ptx. A wheel that lacks some returns garbage or fails on those GPUs (CV-CUDA#296).

    python .ci/fatbin_archs.py _core.so --sm 80 86 89 90 --ptx 90
Exit 0: every unit complete; 1: something missing (listed); 2: no CUDA kernels in the file.
"""
from __future__ import annotations

import argparse
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

FATBIN_MAGIC = 0xBA55ED50
KIND_PTX, KIND_ELF = 1, 2


def units(blob: bytes):
    """Yield (elf_archs, ptx_archs) per fat binary in the section."""
    off = 0
    while off + 16 <= len(blob):
        magic, _ver, hsz, fsz = struct.unpack_from("<IHHQ", blob, off)
        if magic != FATBIN_MAGIC:
            off += 8  # fat binaries are 8-byte aligned in the section
            continue
        p, end = off + hsz, off + hsz + fsz
        elf, ptx = set(), set()
        while p + 32 <= end:
            kind, _v, eh, psz = struct.unpack_from("<HHIQ", blob, p)
            arch = struct.unpack_from("<I", blob, p + 28)[0]
            (elf if kind == KIND_ELF else ptx if kind == KIND_PTX else set()).add(arch)
            p += eh + psz
        yield elf, ptx
        off = end


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("so")
    ap.add_argument("--sm", nargs="+", type=int, default=[80, 86, 89, 90])
    ap.add_argument("--ptx", nargs="*", type=int, default=[90])
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "fatbin"
        r = subprocess.run(["objcopy", f"--dump-section=.nv_fatbin={out}", a.so, str(Path(d) / "copy")],
                           capture_output=True, text=True)
        if r.returncode != 0 or not out.exists():
            print(f"{a.so}: no .nv_fatbin section (a CPU-only build)")
            return 2
        blob = out.read_bytes()
    found = list(units(blob))
    if not found:
        print(f"{a.so}: .nv_fatbin holds no fat binary")
        return 1
    bad = 0
    for i, (elf, ptx) in enumerate(found):
        miss = sorted(set(a.sm) - elf), sorted(set(a.ptx) - ptx)
        if miss[0] or miss[1]:
            bad += 1
            print(f"unit {i}: missing SASS {miss[0]} PTX {miss[1]} (has SASS {sorted(elf)}, PTX {sorted(ptx)})")
    print(f"{a.so}: {len(found)} CUDA units, SASS sm_{'/'.join(map(str, a.sm))} + PTX "
          f"compute_{'/'.join(map(str, a.ptx))} in {len(found) - bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
