"""The built-book check: each defect is caught on a small page, a clean page passes, and (when Chromium is
installed, always in CI) the quick book passes it in a real browser."""

import base64
import json
import os
from pathlib import Path

import pytest

from geohelpers import bookcheck

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()


def page(body: str) -> str:
    return f"<html><head><title>t</title></head><body><main id='main'>{body}</main></body></html>"


CLEAN = page(
    "<h1 id='top'>Results</h1>"
    "<p>At 441 bits per image the best codebook reaches MSE 0.00424, 1.74 times lower.</p>"
    "<p>An equation <span class='math notranslate nohighlight'><mjx-container class='MathJax'>"
    "<mjx-math>x</mjx-math></mjx-container></span>.</p>"
    "<pre>print('\\\\(not math, code\\\\)')</pre>"
    f"<img src='data:image/png;base64,{PNG}'>"
    "<a href='#top'>up</a> <a href='https://example.org/x'>out</a> <a href='mailto:a@b.c'>mail</a>"
)


def test_a_clean_page_passes():
    assert bookcheck.check_html(CLEAN) == []


@pytest.mark.parametrize("body, fragment", [
    ("<pre>&lt;IPython.core.display.Markdown object&gt;</pre><p>&lt;IPython.core.display.Markdown object&gt;</p>",
     "python repr"),
    ("<p>&lt;geohelpers.report.Prose object at 0x7f3a2b1c0d90&gt;</p>", "python repr"),
    ("<pre><span>&lt;</span><span>IPython</span><span>.</span><span>core</span><span>.</span><span>display</span>"
     "<span>.</span><span>Markdown</span> <span>object</span><span>&gt;</span></pre>", "python repr"),
    ("<p>The grid is \\(7\\times 7\\).</p>", "unrendered math: \\("),
    ("<div>\\[p(c) = \\prod_i p(c_i)\\]</div>", "unrendered math: \\["),
    ("<div>$$x^2$$</div>", "unrendered math: $$"),
    ("<p><span class='math'>x</span></p>", "no MathJax output"),
    ("<p>see {glue:text}`executed/06_comparison.ipynb::kmax:d`</p>", "glue: unresolved"),
    ("<div class='system-message'><p>Retrieval error</p></div>", "system message"),
    ("<img src='https://cdn.example.org/x.png'>", "remote image"),
    ("<img src='data:image/png;base64,'>", "empty or undecodable"),
    ("<img>", "without a source"),
    ("<a href='#nowhere'>x</a>", "#nowhere is not an anchor"),
])
def test_each_defect_is_caught(body, fragment):
    defects = bookcheck.check_html(page(body))
    assert any(fragment in d for d in defects), defects


def test_images_and_links_resolve_against_the_build(tmp_path):
    (tmp_path / "_images").mkdir()
    (tmp_path / "_images" / "fig.png").write_bytes(b"\x89PNG" + b"\0" * 8)
    (tmp_path / "_images" / "empty.png").write_bytes(b"")
    other = tmp_path / "other.html"
    other.write_text(page("<h2 id='there'>x</h2>"))
    here = tmp_path / "here.html"
    good = page("<img src='_images/fig.png'><a href='other.html#there'>a</a><a href='other.html'>b</a>")
    assert bookcheck.check_html(good, here) == []
    bad = page("<img src='_images/missing.png'><img src='_images/empty.png'>"
               "<a href='gone.html'>a</a><a href='other.html#elsewhere'>b</a>")
    defects = bookcheck.check_html(bad, here)
    assert any("not in the build" in d for d in defects)
    assert any("empty image file" in d for d in defects)
    assert any("gone.html does not exist" in d for d in defects)
    assert any("no anchor #elsewhere" in d for d in defects)


def test_a_redirect_page_is_read_as_its_target():
    assert bookcheck.redirect_target('<meta http-equiv="Refresh" content="0; url=book/intro.html" />') == "book/intro.html"
    assert bookcheck.redirect_target(CLEAN) is None


def test_book_pages_leave_out_static_files_and_sphinx_indexes(tmp_path):
    for name in ("index.html", "book/results.html", "search.html", "genindex.html", "_static/x.html"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(CLEAN)
    assert [p.relative_to(tmp_path).as_posix() for p in bookcheck.book_pages(tmp_path)] == [
        "book/results.html", "index.html"]


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = bookcheck.find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"),
    reason="no Chromium here (apt-get install chromium); CI installs it and never skips this test")


@needs_chromium
def test_chromium_renders_math_and_catches_raw_latex(tmp_path):
    """The browser half on two tiny pages: MathJax from the installed package renders offline; a page
    that loads no MathJax keeps its raw LaTeX, and the check says so."""
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs Debian's chromium package"
    import importlib.util

    mathjax = Path(importlib.util.find_spec("sphinx-mathjax-offline").origin).parent / "static" / "mathjax"
    good = tmp_path / "good.html"
    good.write_text(f"<html><head><script defer src='{(mathjax / 'tex-chtml.js').as_uri()}'></script></head>"
                    "<body><p><span class='math'>\\(x^2\\)</span></p></body></html>")
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><p><span class='math'>\\(x^2\\)</span></p></body></html>")
    assert bookcheck.check_html(bookcheck.render(good, CHROMIUM), good) == []
    assert any("unrendered math" in d for d in bookcheck.check_html(bookcheck.render(bad, CHROMIUM), bad))


@needs_chromium
def test_a_table_wider_than_its_column_is_caught_in_the_browser(tmp_path):
    """A table too wide for the page's column is a defect (a reader would scroll it sideways); a table
    that fits is not."""
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs Debian's chromium package"
    cells = "".join(f"<th>column_name_{i}</th>" for i in range(40))
    wide, narrow = tmp_path / "wide.html", tmp_path / "narrow.html"
    for path, head in ((wide, cells), (narrow, "<th>a</th><th>b</th>")):
        path.write_text(f"<html><body><main><article style='width: 600px'><table><tr>{head}</tr></table>"
                        "</article></main></body></html>")
    defects = bookcheck.check_html(bookcheck.render(wide, CHROMIUM), wide)
    assert any(d.startswith("wide table:") and "column_name_0" in d for d in defects), defects
    assert bookcheck.check_html(bookcheck.render(narrow, CHROMIUM), narrow) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["narrow.html", "wide.html"]  # the measured copies are gone


@needs_chromium
def test_the_quick_book_passes_in_a_real_browser(tmp_path, monkeypatch):
    """Execute every notebook at the quick profile, build the book with -W, load each page in Chromium.

    All of it happens in a copy of the book's sources under ``tmp_path`` (results too), so the test never
    replaces a book the reader built in the project. Artifacts are the one exception: ``tmp_path/artifacts``
    is the project's store, a cache keyed by identity whose bytes are verified on load, so nbval over the
    notebooks (which pytest runs after ``tests/``) loads what this stage graph built on both cores instead of
    training it again one notebook at a time."""
    assert CHROMIUM is not None, "CI must have Chromium: .ci/run installs Debian's chromium package"
    import shutil

    from geohelpers import notebooks, run, store

    skip = shutil.ignore_patterns("executed", "__pycache__", ".ipynb_checkpoints")
    for name in ("book", "notebooks", "geohelpers"):
        shutil.copytree(ROOT / name, tmp_path / name, ignore=skip)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shared = store.home() / "artifacts"  # where nbval's notebooks store them ($GEOVQ_HOME or the project)
    shared.mkdir(parents=True, exist_ok=True)
    (tmp_path / "artifacts").symlink_to(shared, target_is_directory=True)
    monkeypatch.setenv("GEOVQ_HOME", str(tmp_path))
    monkeypatch.setattr(run, "ROOT", tmp_path)
    for name, path in (("SOURCES", tmp_path / "notebooks"), ("EXECUTED", tmp_path / "book" / "executed"),
                       ("STAMPS", tmp_path / "book" / "executed" / "stamps.json")):
        monkeypatch.setattr(notebooks, name, path)
    run.main(["--profile", "quick"])
    # the stage graph built every artifact on two single-threaded workers; the notebooks then built nothing
    record = json.loads((tmp_path / "results" / "quick" / "run.json").read_text())
    graph = record["stage_graph"]
    assert graph["workers"] == (os.cpu_count() or 1) and not graph["not_run"] and graph["critical_path"]
    assert {s["status"] for s in graph["stages"]} <= {"built", "loaded"}
    assert {s["threads"] for s in graph["stages"]} == {1} and len({s["pid"] for s in graph["stages"]}) == graph["workers"]
    stored = [f for f in (tmp_path / "artifacts" / "quick").rglob("*") if f.is_file() and f.suffix != ".lock"]
    assert stored and max(f.stat().st_mtime for f in stored) <= graph["finished"], \
        [f.name for f in stored if f.stat().st_mtime > graph["finished"]]
    report = bookcheck.check_book(tmp_path / "_build" / "html", CHROMIUM)
    assert len(report) >= 10, f"too few pages rendered: {sorted(report)}"
    bad = {p: d for p, d in report.items() if d}
    assert not bad, "\n".join(f"{p}: {d}" for p, ds in bad.items() for d in ds)
