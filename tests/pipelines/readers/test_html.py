"""HTML -> text: what each extractor keeps and drops, on hand-made pages shaped like the shared crawl's."""

from __future__ import annotations

import sys

import pytest

from common.config import ConfigError
from pipelines.config import EXTRACTORS, CorpusBuildConfig
from pipelines.readers.html import EXTRACT, extractor_named, structural

CODE = """def parse(path):
    with open(path) as f:
\tfor line in f:
            yield line.rstrip()

    return None"""

# A Sphinx page: its related bar and sidebar (role=navigation), a highlighted code block, a footnote aside.
SPHINX = f"""<html><head><title>t</title><script>var menu = "script text";</script></head><body>
<div class="related" role="navigation"><ul><li><a href="/">index</a></li><li><a href="n.html">next</a> |</li></ul></div>
<div class="document"><div class="body" role="main"><section id="s">
<h1>Reading files<a class="headerlink" href="#s">¶</a></h1>
<p>The function below yields the lines of a file, one at a time.</p>
<div class="highlight-python"><div class="highlight"><pre><span></span><span class="k">def</span> {CODE[4:]}</pre></div></div>
<aside class="footnote brackets"><p>A footnote belongs to the document.</p></aside>
</section></div></div>
<div class="sphinxsidebar" role="navigation"><h3>Previous topic</h3><p><a href="p.html">Writing files</a></p></div>
<div class="footer">Copyright 2001-2026, Python Software Foundation.</div></body></html>"""

# A docbook chapter: prev/next bars, its generated table of contents, a nested list and a table whose cells hold paragraphs.
DOCBOOK = """<html><body>
<div class="navheader"><table summary="Navigation header"><tr><th colspan="3">Chapter 4. Accounts</th></tr>
<tr><td><a accesskey="p" href="ch03.html">Prev</a></td><td></td><td><a accesskey="n" href="ch05.html">Next</a></td></tr></table></div>
<div class="chapter"><h1 class="title">Chapter 4. Accounts</h1>
<div class="toc"><p><strong>Table of Contents</strong></p><dl class="toc"><dt><a href="#a">4.1. Passwords in the shadow file</a></dt></dl></div>
<p>Each account has the following entries.</p>
<ul><li>Login name<ul><li>at most 32 characters<ol><li>lower case first</li></ol></li><li>unique on the system</li></ul></li><li>User home directory</li></ul>
<table><tr><th><p>file</p></th><th><p>permission</p></th></tr>
<tr><td><p>/etc/passwd</p></td><td><div class="cell"><p>-rw-r--r--</p><p>world readable</p></div></td></tr>
<tr><td>/etc/shadow</td><td>-rw-r-----</td></tr></table></div>
<div class="navfooter"><table summary="Navigation footer"><tr><td>Chapter 3. Boot </td><td><a href="index.html">Home</a></td><td> Chapter 5. Network</td></tr></table></div>
</body></html>"""

# An HTML5 site: banner and menu, an article with its own header, a sidebar and a footer outside it.
SITE = """<html><body><header><a href="/">Example Site</a><nav><ul><li><a href="/blog">Blog</a></li><li><a href="/about">About us</a></li></ul></nav></header>
<div class="breadcrumbs"><a href="/">Home</a> / <a href="/blog">Blog</a></div>
<main><article><header><h1>Why tables matter</h1></header><p>Tables and code are what documentation is made of.</p></article></main>
<aside><h2>Popular posts</h2><ul><li>Ten tips</li></ul></aside>
<footer><p>Follow us on social media.</p></footer></body></html>"""


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_a_code_block_keeps_its_line_breaks_and_indentation():
    text = structural(SPHINX)
    assert CODE in text
    assert "The function below yields the lines of a file" in text


def test_navigation_bars_sidebars_and_footers_stay_out():
    for page, boilerplate in (
        (SPHINX, ("index", "next |", "Previous topic", "Writing files", "Copyright", "¶", "script text")),
        (DOCBOOK, ("Prev", "Next", "Home", "Chapter 3. Boot", "Chapter 5. Network", "Table of Contents", "Passwords in the shadow")),
        (SITE, ("Example Site", "Blog", "About us", "Popular posts", "Ten tips", "social media")),
    ):
        text = structural(page)
        assert [word for word in boilerplate if word in text] == []


def test_the_document_keeps_its_title_and_footnotes():
    assert "Reading files" in structural(SPHINX) and "A footnote belongs to the document." in structural(SPHINX)
    assert lines(structural(DOCBOOK))[0] == "Chapter 4. Accounts"  # the chapter's title, not the navheader's copy
    assert lines(structural(SITE)) == ["Why tables matter", "Tables and code are what documentation is made of."]


def test_a_nested_list_is_one_line_per_item_indented_by_depth():
    text = structural(DOCBOOK)
    items = [line for line in text.splitlines() if "•" in line or "1." in line]
    assert [item.strip() for item in items] == [
        "• Login name",
        "• at most 32 characters",
        "1. lower case first",
        "• unique on the system",
        "• User home directory",
    ]
    depth = [len(item) - len(item.lstrip()) for item in items]
    assert depth[0] < depth[1] < depth[2] and depth[1] == depth[3] and depth[0] == depth[4]


def test_a_table_is_one_line_per_row_with_its_cells_in_order():
    rows = [line.split() for line in structural(DOCBOOK).splitlines() if "\t" in line]
    assert rows == [["file", "permission"], ["/etc/passwd", "-rw-r--r--", "world", "readable"], ["/etc/shadow", "-rw-r-----"]]


@pytest.mark.parametrize("name", ["structural", "main_content"])
def test_a_page_whose_content_is_one_long_pre_keeps_all_of_it(name):
    listing = "\n".join(f"{'    ' * (n % 4)}line {n}: value = compute({n}, {n * 7 % 13})" for n in range(3000))
    page = f"<html><body><nav><a href='/'>Home</a></nav><h1>config.log</h1><pre>{listing}</pre><footer>Generated</footer></body></html>"
    assert listing in EXTRACT[name](page)


def test_every_configured_extractor_exists_and_the_default_is_structural():
    assert tuple(EXTRACT) == EXTRACTORS and CorpusBuildConfig().extractor == "structural"
    with pytest.raises(ConfigError, match="extractor must be one of structural, main_content, trafilatura"):
        CorpusBuildConfig(extractor="readability")
    with pytest.raises(ValueError, match="unknown extractor 'readability'; known: structural"):
        extractor_named("readability")


def test_trafilatura_missing_is_one_clear_error_before_any_page(monkeypatch):
    monkeypatch.setitem(sys.modules, "trafilatura", None)  # import trafilatura now raises ImportError
    with pytest.raises(ImportError, match=r"extractor='trafilatura' needs the trafilatura package"):
        extractor_named("trafilatura")


def test_trafilatura_extracts_the_article():
    pytest.importorskip("trafilatura")
    assert "Tables and code are what documentation is made of." in extractor_named("trafilatura")(SITE)


@pytest.mark.parametrize("name", EXTRACTORS)
def test_extraction_is_the_same_every_time(name):
    if name == "trafilatura":
        pytest.importorskip("trafilatura")
    for page in (SPHINX, DOCBOOK, SITE):
        assert EXTRACT[name](page) == EXTRACT[name](page)
