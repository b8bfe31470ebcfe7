"""Where the shared real corpus lives: ../shared beside this checkout, or /work/shared (a clone elsewhere)."""

from pathlib import Path

_CANDIDATES = (Path(__file__).resolve().parent.parent.parent / "shared", Path("/work/shared"))
SHARED = next((p for p in _CANDIDATES if p.is_dir()), _CANDIDATES[-1])
DEBIAN_DOCS = SHARED / "corpora" / "debian-docs"
