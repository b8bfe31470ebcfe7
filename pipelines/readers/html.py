"""HTML -> plain text, by the extractor the corpus build names (`extractor`, EXTRACTORS in pipelines/config.py).

- structural: resiliparse's text of the whole page (no main-content guessing), minus the blocks that the
  page's own markup marks as navigation: HTML5/ARIA landmarks and the class names of the common
  documentation generators and site templates (NAVIGATION). Issue 16: resiliparse's main-content
  heuristics dropped a fifth of the docbook manuals' paragraphs, lists, code and tables.
- main_content: resiliparse's main-content heuristics (the reader's extractor before issue 16).
- trafilatura: trafilatura.extract with its defaults (what FineWeb extracts with), called directly, so no
  time-out makes two runs differ; about 20x slower, and trafilatura must be installed.

All of them keep code blocks' line breaks and indentation; structural also writes one line per table row.
bench/extraction_quality.py measures each against trafilatura (bench/README.md has the figures).
"""

from __future__ import annotations

from collections.abc import Callable

from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.html import HTMLTree

NAVIGATION = (
    # HTML5 and ARIA landmarks of site chrome. A <header> or <aside> inside the document keeps its text
    # (an article's title; Sphinx writes footnotes and topics as <aside>).
    "nav",
    "footer",
    "header:not(main header):not(article header):not([role=main] header)",
    "aside:not(main aside):not(article aside):not([role=main] aside)",
    "[role=navigation]",
    "[role=banner]",
    "[role=contentinfo]",
    "[role=search]",
    "[role=menubar]",
    # Site templates: ids are page singletons, so #sidebar is the site's, never an article's sidebar box.
    "#sidebar",
    "#navigation",
    "#nav",
    "#menu",
    "#footer",
    ".navbar",
    ".breadcrumb",
    ".breadcrumbs",
    ".skip-link",
    # Generated tables of contents: lists of links to the sections and pages (docbook div.toc, Sphinx's
    # contents topic and toctree, asciidoc's and MediaWiki's #toc).
    ".toc",
    "#toc",
    ".topic.contents",
    ".toctree-wrapper",
    # Documentation generators: docbook's prev/next bars, Sphinx's related bars, sidebar and footer,
    # its pilcrow anchors; MediaWiki's panels and edit links.
    ".navheader",
    ".navfooter",
    ".related",
    ".sphinxsidebar",
    ".footer",
    ".headerlink",
    "#mw-navigation",
    "#mw-panel",
    ".mw-editsection",
)
CELL_BLOCKS = "td p, th p, td div, th div"
"""Paragraph wrappers inside table cells, unwrapped so that a row stays one line (code and lists in a cell keep theirs)."""


def structural(html: str) -> str:
    """The page's text without its navigation, one line per paragraph, list item and table row."""
    tree = HTMLTree.parse(html)
    if tree.body is None:
        return ""
    # .values(), not iterating the node list: resiliparse 2.0 rebuilds the whole list for every item taken
    # (quadratic: a kernel page with 10,000 table cells took minutes). Outer wrappers come first, so a
    # <p> inside a <div> inside a cell is a cell's child by the time its turn comes.
    for wrapper in tree.body.query_selector_all(CELL_BLOCKS).values():
        parent = wrapper.parent
        while wrapper.first_child is not None:
            parent.insert_before(wrapper.first_child, wrapper)
        if wrapper.next_sibling is None:
            parent.remove_child(wrapper)
        else:  # the next paragraph of the cell must not run into this one
            parent.replace_child(tree.create_text_node(" "), wrapper)
    return extract_plain_text(
        tree, preserve_formatting=True, main_content=False, list_bullets=True, alt_texts=False, skip_elements=NAVIGATION
    )


def main_content(html: str) -> str:
    """resiliparse's main-content text: drops navigation, headers and footers and, with them, some <ul>
    lists, code blocks and tables inside articles."""
    return extract_plain_text(html, preserve_formatting=True, main_content=True, list_bullets=True, alt_texts=False)


def trafilatura(html: str) -> str:
    """trafilatura.extract's text with its defaults; None (nothing found) becomes ""."""
    from trafilatura import extract

    return extract(html) or ""


EXTRACT: dict[str, Callable[[str], str]] = {"structural": structural, "main_content": main_content, "trafilatura": trafilatura}
"""Each extractor by its name in EXTRACTORS."""


def extractor_named(name: str) -> Callable[[str], str]:
    """The extractor called `name`, its library imported now, so that a missing one fails at once, not page by page."""
    if name not in EXTRACT:
        raise ValueError(f"unknown extractor {name!r}; known: {', '.join(EXTRACT)}")
    if name == "trafilatura":
        try:
            import trafilatura  # noqa: F401
        except ImportError as e:
            raise ImportError("extractor='trafilatura' needs the trafilatura package: pip install 'trafilatura>=1.8,<1.12'") from e
    return EXTRACT[name]
