"""Our filters decide like datatrove's, the reference implementation, on a sample of a real corpus.

About 2,000 documents spread over ../shared/corpora/debian-docs (every 42nd), compared by
bench/filter_agreement.py's code; run that script for the whole corpus and the disagreements' causes.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from tests.shared_data import DEBIAN_DOCS

ROOT = Path(__file__).resolve().parents[3]
BENCH = ROOT / "bench" / "filter_agreement.py"
CORPUS = DEBIAN_DOCS


@pytest.fixture(scope="module")
def agreements():
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus {CORPUS} is absent (it lives beside the repository, in shared/)")
    try:
        import datatrove.utils.text  # noqa: F401  (needs spaCy and regex too)
    except ImportError as error:
        pytest.skip(f"datatrove's filters cannot be imported ({error}); install the dev extras")
    spec = importlib.util.spec_from_file_location("filter_agreement", BENCH)
    bench = sys.modules["filter_agreement"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.compare(bench.read_corpus(every=42, corpus=CORPUS), bench.Datatrove(), examples=0)


@pytest.mark.parametrize("name", ["gopher_quality", "gopher_repetition", "c4", "fineweb", "pii"])
def test_same_decision_on_99_percent_of_documents(agreements, name):
    agreement = agreements[name]
    assert agreement.documents > 1500
    assert agreement.percent >= 99, f"{name}: {agreement.percent:.2f}%, {agreement.disagreements.most_common(5)}"


@pytest.mark.parametrize("name", ["c4", "pii"])
def test_same_text_for_99_percent_of_kept_documents(agreements, name):
    agreement = agreements[name]
    assert agreement.texts_identical >= 0.99 * agreement.texts_compared
