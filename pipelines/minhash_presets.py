"""The MinHash-LSH settings by name: what a signature is made of, and the presets FineWeb and NeMo use.

No heavy imports: the fuzzy dedup's config (read by an Airflow DAG at parse time) takes its preset
names from PRESETS.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.config import ConfigError


@dataclass(frozen=True)
class MinHashParams:
    """What a signature is made of; two corpora are comparable only under equal params."""

    shingle: str
    """"word": n consecutive words; "char": n consecutive characters (spaces included)."""
    ngram: int
    """Tokens per shingle."""
    bands: int
    """LSH bands: a pair is a candidate when any band of its two signatures is equal."""
    rows: int
    """Signature values per band."""
    seed: int = 1
    """Seed of the permutations' parameters; signatures from different seeds do not compare."""

    @property
    def num_hashes(self) -> int:
        return self.bands * self.rows


def fineweb() -> MinHashParams:
    """FineWeb's setting (Penedo et al. 2024, section 3.3.3; datatrove's MinhashConfig defaults):
    5-word shingles, 14 bands of 8 = 112 hashes. Candidate probability 0.92 at Jaccard 0.8, 0.30 at 0.7."""
    return MinHashParams(shingle="word", ngram=5, bands=14, rows=8)


def nemo() -> MinHashParams:
    """NeMo Curator's fuzzy dedup defaults: 24-character shingles, 20 bands of 13 = 260 hashes.
    A steeper S-curve around 0.79: candidate probability 0.68 at Jaccard 0.8, 0.99 at 0.9."""
    return MinHashParams(shingle="char", ngram=24, bands=20, rows=13)


PRESETS = {"fineweb": fineweb, "nemo": nemo}


def resolve_params(
    preset: str, *, shingle: str | None, ngram: int | None, bands: int | None, rows: int | None, seed: int
) -> MinHashParams:
    """The params of a named preset, or of preset "custom" with every knob given.

    A knob given beside a named preset must equal the preset's value (a config.json written by a run
    reads back); anything else is a ConfigError that says to use preset=custom.
    """
    knobs = {"shingle": shingle, "ngram": ngram, "bands": bands, "rows": rows}
    if preset == "custom":
        missing = [name for name, value in knobs.items() if value is None]
        if missing:
            raise ConfigError(f"preset=custom needs {', '.join(missing)} set")
        return MinHashParams(**knobs, seed=seed)  # type: ignore[arg-type]
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join([*PRESETS, 'custom'])}")
    base = PRESETS[preset]()
    for name, value in knobs.items():
        if value is not None and value != getattr(base, name):
            raise ConfigError(
                f"{name}={value!r} differs from preset {preset!r} ({name}={getattr(base, name)!r}); "
                f"set preset=custom to choose {name} yourself"
            )
    return MinHashParams(shingle=base.shingle, ngram=base.ngram, bands=base.bands, rows=base.rows, seed=seed)
