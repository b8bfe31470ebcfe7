"""HTML extraction quality and speed (issue 16): our extractors beside trafilatura's, on the shared WARC.

    .venv/bin/python bench/extraction_quality.py [--per-site N] [--extractors a,b,...]

Every response of ../shared/corpora/debian-docs/web-00000.warc.gz (or the first N pages of each site),
grouped by page family: docbook (debian.org manuals), Sphinx (docs.python.org), Sphinx with the Read the
Docs theme (kernel.org), asciidoc (git-scm.com). Per extractor and family:

- recall per element type: the share of the words inside the page's <p>, <li>, <pre> and <td> that reach
  the extracted text. Words inside script, style and the boilerplate below do not count.
- boilerplate share: extracted words found only in site chrome (nav, header, footer, ARIA navigation,
  banner, contentinfo and search landmarks, and the families' own bars: docbook's navheader/navfooter,
  Sphinx's related bars, sidebar and footer, Read the Docs' side and top nav, asciidoc's #footer), and,
  apart, only in generated tables of contents (docbook div.toc, Sphinx's contents topic and toctree,
  asciidoc's #toc), which are lists of links too but sit inside the document. A third share needs no
  markup: words found only in text that recurs on at least half of the family's pages (its frame; its
  floor is content the docs repeat, such as Python's "Part of the Stable ABI").
- against the source texts (second ground truth): where docs-*.jsonl.zst holds the page's source (kernel
  reStructuredText, Python docs, git's asciidoc), the share of the source's words found in the extraction
  and of the extraction's words found in the source, as bags of words. Neither reaches 1 (the sources'
  markup never reaches a page; kernel-doc API sections are generated from C): compare extractors.
- pages/s per core (CPU time of this process, the faster of two runs); determinism: both give the same bytes.

A word "reaches" the extraction when one of the three-word windows around it in the page's text, in
document order, occurs in the extraction (words are \\w+ runs, case-folded; list bullets are removed
first). The markers are the pages' own markup, written here per family, apart from the structural
extractor's selector list (pipelines/readers/html.py), but both name the same classes for these sites: its
recall and chrome share are near-perfect by construction here. The source texts and the template share do
not depend on the markers. About an hour, nearly all of it trafilatura's.
"""

from __future__ import annotations

import argparse
import bisect
import hashlib
import itertools
import re
import sys
import time
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path

import lxml.html
from fastwarc.warc import ArchiveIterator, WarcRecordType
import numpy as np
from resiliparse.extract.html2text import extract_plain_text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CORPUS = ROOT.parent / "shared" / "corpora" / "debian-docs"

from bench.filter_agreement import read_corpus  # noqa: E402
from pipelines.readers.html import EXTRACT  # noqa: E402
from pipelines.readers.warc import decode_body  # noqa: E402

FAMILIES = {"www.debian.org": "docbook", "docs.python.org": "sphinx", "www.kernel.org": "sphinx-rtd", "git-scm.com": "asciidoc"}
TYPES = ("p", "li", "pre", "td")
CHROME, TOC, TEMPLATE = 1 << 4, 1 << 5, 1 << 6  # label bits beside the TYPES' bits 0-3
INVISIBLE = {"script", "style", "noscript", "template", "head", "title"}
BLOCKS = {"address", "article", "aside", "blockquote", "body", "br", "caption", "dd", "div", "dl", "dt", "figcaption", "figure", "footer",
          "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody",
          "td", "tfoot", "th", "thead", "tr", "ul"}  # a word ends at their edges
CHROME_TAGS = {"nav", "header", "footer"}
CHROME_ROLES = {"navigation", "banner", "contentinfo", "search"}
CHROME_CLASSES = {"navheader", "navfooter", "related", "sphinxsidebar", "footer", "mobile-nav", "wy-nav-side", "wy-nav-top", "rst-footer-buttons"}
CHROME_IDS = {"footer"}
TOC_CLASSES, TOC_IDS = {"toc", "toctree-wrapper"}, {"toc", "toctitle"}
WORD = re.compile(r"\w+")
BULLET = re.compile(r"^[ \t]*(?:[•◦▪‣*+-]|\d+[.)])[ \t]+", re.M)
N = 3


def trafilatura_with(html: str, **options) -> str:
    from trafilatura import extract

    return extract(html, **options) or ""


def resiliparse_whole_page(html: str) -> str:
    return extract_plain_text(html, preserve_formatting=True, main_content=False, list_bullets=True, alt_texts=False)


EXTRACTORS = {
    "structural": EXTRACT["structural"],  # ours: the whole page minus its navigation blocks
    "main_content": EXTRACT["main_content"],  # resiliparse's main-content heuristics (the reader's before issue 16)
    "whole_page": resiliparse_whole_page,  # resiliparse, nothing removed
    "trafilatura": EXTRACT["trafilatura"],  # trafilatura.extract, defaults
    "trafilatura_precision": partial(trafilatura_with, favor_precision=True),  # datatrove's (so FineWeb's) setting
    "trafilatura_no_fallback": partial(trafilatura_with, no_fallback=True),  # its fast path: no readability/jusText
    "trafilatura_recall": partial(trafilatura_with, favor_recall=True),
}


def read_pages(per_site: int | None) -> list[tuple[str, str, str]]:
    """(family, url, html) of the WARC's responses, decoded as the corpus reader decodes them."""
    pages, taken = [], Counter()
    for record in ArchiveIterator(str(CORPUS / "web-00000.warc.gz"), parse_http=True):
        if record.record_type != WarcRecordType.response:
            continue
        url = record.headers.get("WARC-Target-URI")
        family = FAMILIES[url.split("/")[2]]
        if per_site is None or taken[family] < per_site:
            taken[family] += 1
            pages.append((family, url, decode_body(record.reader.read(), record.http_charset)))
    return pages


def marker(element) -> int:
    classes, role = set((element.get("class") or "").split()), element.get("role")
    if element.tag in CHROME_TAGS or role in CHROME_ROLES or classes & CHROME_CLASSES or element.get("id") in CHROME_IDS:
        return CHROME
    if classes & TOC_CLASSES or element.get("id") in TOC_IDS or {"topic", "contents"} <= classes:
        return TOC
    return 0


def labelled_words(html: str) -> tuple[list[str], list[int]]:
    """The page's visible words in document order, each with the label bits of where it starts (TYPES it
    is inside, CHROME, TOC). Inline elements do not split words ("h<sub>7</sub>" is one, as rendered)."""
    root = lxml.html.document_fromstring(re.sub(r"^\s*<\?xml[^>]*\?>", "", html))
    pieces: list[str] = []  # the page's text runs in document order, with their labels
    piece_labels: list[int] = []

    def walk(element, label: int) -> None:
        if not isinstance(element.tag, str) or element.tag in INVISIBLE:  # comments, scripts
            return
        if element.tag in TYPES:
            label |= 1 << TYPES.index(element.tag)
        if not label & CHROME:
            label |= marker(element)
        edge = " " if element.tag in BLOCKS else ""
        pieces.extend((edge, element.text or ""))
        piece_labels.extend((label, label))
        for child in element:
            walk(child, label)
            pieces.append(child.tail or "")  # a child's tail is its parent's text
            piece_labels.append(label)
        pieces.append(edge)
        piece_labels.append(label)

    walk(root, 0)
    starts = list(itertools.accumulate((len(piece) for piece in pieces), initial=0))
    matches = list(WORD.finditer("".join(pieces)))
    return [m.group().casefold() for m in matches], [piece_labels[bisect.bisect_right(starts, m.start()) - 1] for m in matches]


VOCABULARY: dict[str, int] = {}
UNKNOWN = 1 << 40  # the id of an extracted word no page holds
MIX = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9], dtype=np.uint64)


class Page:
    """One page's ground truth: its words as vocabulary ids, their labels, its source text's words."""

    def __init__(self, family: str, url: str, html: str, source: str | None):
        self.family, self.url = family, url
        words, labels = labelled_words(html)
        self.ids = np.array([VOCABULARY.setdefault(w, len(VOCABULARY)) for w in words], dtype=np.uint64)
        self.labels = np.array(labels, dtype=np.uint8)
        self.source = Counter(WORD.findall(source.casefold())) if source else None


def window_keys(ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit hash per window of n consecutive ids (position-dependent odd multipliers, xor)."""
    keys = np.zeros(max(len(ids) - n + 1, 0), dtype=np.uint64)
    for offset in range(n):
        keys ^= ids[offset : len(ids) - n + 1 + offset] * MIX[offset]
    return keys


def mark_templates(pages: list[Page], share: float = 0.5, min_pages: int = 10) -> None:
    """Label TEMPLATE the words whose every window occurs on at least `share` of their family's pages:
    a site's repeated frame, found from the pages' text alone, as a check on the markup-based markers."""
    for family in {page.family for page in pages}:
        members = [page for page in pages if page.family == family and len(page.ids) >= N]
        if len(members) < min_pages:
            continue
        keys, counts = np.unique(np.concatenate([np.unique(window_keys(p.ids, N)) for p in members]), return_counts=True)
        frequent = keys[counts >= share * len(members)]
        for page in members:
            rare = ~np.isin(window_keys(page.ids, N), frequent)
            page.labels[~spread(rare, N, len(page.ids))] |= TEMPLATE


def spread(window_hits: np.ndarray, n: int, length: int) -> np.ndarray:
    """Words covered by at least one hit window."""
    covered = np.zeros(length, dtype=bool)
    for offset in range(n):
        covered[offset : offset + len(window_hits)] |= window_hits
    return covered


def score(page: Page, text: str) -> Counter:
    """Counts of one extraction of `page`: per type, words found and total; extracted words by where they come from."""
    out_words = WORD.findall(BULLET.sub("", text).casefold())
    out = np.array([VOCABULARY.get(w, UNKNOWN) for w in out_words], dtype=np.uint64)
    content = (page.labels & (CHROME | TOC)) == 0
    counts = Counter(words=len(out))
    n = min(N, len(page.ids), len(out))
    found = np.zeros(len(page.ids), dtype=bool)
    origin = {kind: np.zeros(len(out), dtype=bool) for kind in ("content", "chrome", "toc", "template", "unique")}
    if n:
        page_keys, out_keys = window_keys(page.ids, n), window_keys(out, n)
        found = spread(np.isin(page_keys, out_keys), n, len(page.ids))
        for offset in range(n):  # an extracted word comes from the page word at the same offset of a matching window
            labels = page.labels[offset : offset + len(page_keys)]
            kinds = {"content": (labels & (CHROME | TOC)) == 0, "chrome": (labels & CHROME) != 0, "toc": (labels & TOC) != 0,
                     "template": (labels & TEMPLATE) != 0, "unique": (labels & TEMPLATE) == 0}
            for kind, where in kinds.items():
                origin[kind][offset : offset + len(out_keys)] |= np.isin(out_keys, page_keys[where])
    for bit, name in enumerate(TYPES):
        inside = content & ((page.labels >> bit) & 1).astype(bool)
        counts[f"{name}_total"] += int(inside.sum())
        counts[f"{name}_found"] += int((inside & found).sum())
    counts["chrome"] = int((origin["chrome"] & ~origin["content"]).sum())
    counts["toc"] = int((origin["toc"] & ~origin["content"] & ~origin["chrome"]).sum())
    counts["template"] = int((origin["template"] & ~origin["unique"]).sum())
    if page.source is not None:
        common = sum((page.source & Counter(out_words)).values())
        counts.update(source_pages=1, source_words=sum(page.source.values()), source_common=common, source_out=len(out))
    return counts


def source_texts() -> dict[str, str]:
    """URL of the page each source text renders -> the source text, for the three packages that have pages."""
    url_of = {
        "linux-doc-html-sources": lambda path: "https://www.kernel.org/doc/html/v6.1/" + path.removeprefix("html/_sources/").removesuffix(".rst.txt") + ".html",
        "python3.11-doc": lambda path: "https://docs.python.org/3.11/" + path.removesuffix(".rst.txt") + ".html",
        "git-doc": lambda path: "https://git-scm.com/docs/" + path.removesuffix(".txt") + ".html",
    }
    return {url_of[d["source"]](d["path"]): d["text"] for d in read_corpus() if d["source"] in url_of}


def run(extract, pages: list[tuple[str, str, str]]) -> tuple[float, list[str], int]:
    """(CPU seconds, texts, pages that raised) of one pass over the pages."""
    texts, failures = [], 0
    started = time.process_time()
    for _, _, html in pages:
        try:
            texts.append(extract(html))
        except Exception:  # noqa: BLE001 — a page an extractor rejects counts as extracting nothing
            texts.append("")
            failures += 1
    return time.process_time() - started, texts, failures


def ratio(counts: Counter, found: str, total: str) -> str:
    return f"{counts[found] / counts[total]:.3f}" if counts[total] else "-"


def quality_row(name: str, counts: Counter) -> str:
    cells = [ratio(counts, f"{t}_found", f"{t}_total") for t in TYPES]
    cells += [f"{100 * counts[kind] / max(counts['words'], 1):.2f}" for kind in ("chrome", "toc", "template")]
    cells += [ratio(counts, "source_common", "source_words"), ratio(counts, "source_common", "source_out")]
    return f"| {name} | " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-site", type=int, help="only the first N pages of each family (default: all)")
    parser.add_argument("--extractors", default=",".join(EXTRACTORS), help=f"comma-separated, of: {', '.join(EXTRACTORS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.extractors.split(",")]
    if unknown := [name for name in chosen if name not in EXTRACTORS]:
        parser.error(f"unknown extractor {', '.join(unknown)}; known: {', '.join(EXTRACTORS)}")
    started = time.perf_counter()
    raw_pages, sources = read_pages(args.per_site), source_texts()
    pages = [Page(family, url, html, sources.get(url)) for family, url, html in raw_pages]
    mark_templates(pages)
    families = Counter(page.family for page in pages)
    print(f"# {len(pages)} pages ({', '.join(f'{f} {n}' for f, n in families.items())}), "
          f"{sum(p.source is not None for p in pages)} with a source text; ground truth in {time.perf_counter() - started:.0f} s")
    speed, totals = {}, defaultdict(dict)
    for name in chosen:
        (first, texts, failures), (second, again, _) = run(EXTRACTORS[name], raw_pages), run(EXTRACTORS[name], raw_pages)
        differing = sum(a != b for a, b in zip(texts, again))
        digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:12]
        speed[name] = (len(pages) / min(first, second), differing, failures, digest)
        scores = [score(page, text) for page, text in zip(pages, texts)]
        for family in (*families, "all"):
            totals[family][name] = sum((s for p, s in zip(pages, scores) if family in ("all", p.family)), Counter())
        print(f"# {name}: {first:.1f} s and {second:.1f} s CPU, {differing} pages differ between the runs;",
              quality_row(name, totals["all"][name]), flush=True)
    reference = next((speed[n][0] for n in chosen if n == "trafilatura"), None)
    print("\n| extractor | pages/s per core | vs trafilatura | deterministic | failed pages | output sha256 |\n" + "|---" * 6 + "|")
    for name, (rate, differing, failures, digest) in speed.items():
        versus = f"{rate / reference:.1f}x" if reference else "-"
        print(f"| {name} | {rate:.1f} | {versus} | {'yes' if not differing else f'no ({differing} pages)'} | {failures} | {digest} |")
    for family, by_name in totals.items():
        print(f"\n{family} ({families[family] if family != 'all' else len(pages)} pages):\n")
        print("| extractor | " + " | ".join(f"<{t}> recall" for t in TYPES) + " | chrome % | toc % | template % | source recall | source precision |\n"
              + "|---" * (len(TYPES) + 6) + "|")
        for name, counts in by_name.items():
            print(quality_row(name, counts))


if __name__ == "__main__":
    main()
