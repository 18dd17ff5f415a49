"""The built book as a reader sees it: every HTML page loaded in headless Chromium, its DOM checked.

``jupyter-book build -W`` catches Sphinx warnings, not what a reader sees. This module loads each page of
``_build/html`` in a real browser (Debian's ``chromium``, headless, ``--dump-dom`` after a virtual time
budget, so MathJax and the theme's scripts have run) and reads the resulting DOM for the defects below.
:func:`check_html` is the pure part (a DOM string in, defects out) and is unit-tested on small pages;
:func:`check_book` adds the browser and the files around each page.

Defects, one line each, prefixed with the page:

``python repr``
    text such as ``<IPython.core.display.Markdown object>`` or ``<Foo object at 0x7f...>``, in prose or
    in a code block: an object was pasted instead of its content.
``unrendered math``
    ``\\(``, ``\\[`` or ``$$`` left in the text, or math nodes with no MathJax output (``mjx-container``).
``image``
    an ``<img>`` whose source is remote (nothing loads offline), missing, empty, or an empty ``data:`` URI.
``broken link``
    an internal ``<a href>`` to a file that is not in the build, or to an anchor that the target page
    does not have.
``glue``
    a glue reference that did not resolve: raw ``{glue:...}`` text or a docutils system message.
``wide table``
    a table wider than the page's text column at a 1280-pixel-wide window (measured in the browser by a
    script :func:`render` adds to a copy of the page): the reader would have to scroll it sideways.

Run it on a built book: ``python -m geohelpers.bookcheck _build/html`` (exit 1 when a defect is found).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

#: Text that only a pasted Python object produces.
REPR_PATTERNS = (
    re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>"),
    re.compile(r"object at 0x[0-9a-fA-F]{6,}"),
    re.compile(r"<IPython\.core\.display\.\w+ object>"),
    re.compile(r"display\.Markdown object"),
)
#: TeX delimiters that MathJax replaces when it runs.
MATH_DELIMITERS = ("\\(", "\\[", "$$")
#: Elements whose text is code, not prose (a backslash-paren in a code cell is no defect).
CODE_TAGS = {"pre", "code", "script", "style", "textarea"}
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--allow-file-access-from-files", "--window-size=1280,1000")
#: Added to a copy of each page: after load, every table wider than the article that holds it is written,
#: with its first header cells, into ``<body data-wide-tables="...">`` for :func:`check_html` to read.
MEASURE_TABLES = """<script>
window.addEventListener("load", function () {
  var wide = [];
  document.querySelectorAll("table").forEach(function (t) {
    var column = t.closest("article") || t.closest("main");
    if (!column || t.closest("nav, aside, header, footer")) return;
    var over = t.getBoundingClientRect().width - column.getBoundingClientRect().width;
    if (over > 1) {
      var heads = Array.from(t.querySelectorAll("th")).slice(0, 4).map(function (h) { return h.textContent.trim(); });
      wide.push(Math.round(over) + " px too wide (" + heads.join(" | ") + ")");
    }
  });
  document.body.setAttribute("data-wide-tables", JSON.stringify(wide));
});
</script>"""


@dataclass
class PageDOM:
    """What the checks need from one DOM: prose text, images, links, anchors, and the math nodes."""

    text: list[str] = field(default_factory=list)       # prose: outside code, scripts and MathJax output
    all_text: list[str] = field(default_factory=list)   # every text node but scripts and styles
    images: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)
    math_nodes: int = 0          # elements of class "math" (what Sphinx emits for each equation)
    mathjax_outputs: int = 0     # <mjx-container> elements (what MathJax wrote)
    system_messages: int = 0     # docutils' "System Message" boxes
    wide_tables: list[str] = field(default_factory=list)  # tables wider than their column (MEASURE_TABLES)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.dom = PageDOM()
        self._code_depth = 0
        self._mjx_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if "id" in a:
            self.dom.ids.add(a["id"])
        if "name" in a and tag == "a":
            self.dom.ids.add(a["name"])
        if tag in CODE_TAGS:
            self._code_depth += 1
        if tag == "mjx-container":
            self.dom.mathjax_outputs += 1
            self._mjx_depth += 1
        if "math" in classes:
            self.dom.math_nodes += 1
        if "system-message" in classes:
            self.dom.system_messages += 1
        if tag == "body" and a.get("data-wide-tables"):
            self.dom.wide_tables = json.loads(a["data-wide-tables"])
        if tag == "img":
            self.dom.images.append(a.get("src", ""))
        if tag == "a" and "href" in a:
            self.dom.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag in CODE_TAGS and self._code_depth:
            self._code_depth -= 1
        if tag == "mjx-container" and self._mjx_depth:
            self._mjx_depth -= 1

    def handle_data(self, data: str) -> None:
        if self.lasttag not in ("script", "style"):
            self.dom.all_text.append(data)
        if not self._code_depth and not self._mjx_depth:
            self.dom.text.append(data)


def parse(html: str) -> PageDOM:
    """The parts of a DOM (as Chromium dumps it) that the checks read."""
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector.dom


def _image_defect(src: str, page: Path | None) -> str | None:
    if not src:
        return "an <img> without a source"
    parts = urlsplit(src)
    if parts.scheme == "data":
        payload = src.split(",", 1)[1] if "," in src else ""
        try:
            ok = len(base64.b64decode(payload, validate=False)) > 0 if ";base64" in src[:64] else bool(payload)
        except (binascii.Error, ValueError):
            ok = False
        return None if ok else f"an empty or undecodable data: image ({src[:40]}...)"
    if parts.scheme in ("http", "https") or src.startswith("//"):
        return f"a remote image, which does not load offline: {src}"
    if page is None:
        return None
    target = (page.parent / unquote(parts.path)).resolve()
    if not target.is_file():
        return f"an image that is not in the build: {src}"
    if target.stat().st_size == 0:
        return f"an empty image file: {src}"
    return None


def check_html(html: str, page: Path | None = None, ids_of: dict[Path, set[str]] | None = None) -> list[str]:
    """Defects of one page's DOM (see the module docstring); ``[]`` for a clean page.

    ``page`` is the page's file (to resolve its images and links; without it only same-page anchors and
    remote or data images are checked). ``ids_of`` maps other pages of the build to their element ids,
    for links with an anchor into them.
    """
    dom = parse(html)
    text, all_text = "".join(dom.text), "".join(dom.all_text)
    defects = []
    for pattern in REPR_PATTERNS:  # in code blocks too: a pasted object shows as a highlighted code block
        m = pattern.search(all_text)
        if m:
            defects.append(f"python repr: {m.group(0)!r} in the text")
            break
    left = [d for d in MATH_DELIMITERS if d in text]
    if left:
        defects.append(f"unrendered math: {', '.join(left)} left in the text")
    elif dom.math_nodes and not dom.mathjax_outputs:
        defects.append(f"unrendered math: {dom.math_nodes} math element(s) and no MathJax output")
    m = re.search(r"\{glue(:\w+)?\}`?[^ ]*", text)
    if m:
        defects.append(f"glue: unresolved reference {m.group(0)!r}")
    if dom.system_messages:
        defects.append(f"glue: {dom.system_messages} docutils system message(s) on the page")
    defects += [f"wide table: {w}" for w in dom.wide_tables]
    for src in dom.images:
        problem = _image_defect(src, page)
        if problem:
            defects.append(f"image: {problem}")
    for href in dom.links:
        problem = _link_defect(href, page, dom.ids, ids_of or {})
        if problem:
            defects.append(f"broken link: {problem}")
    return defects


def _link_defect(href: str, page: Path | None, own_ids: set[str], ids_of: dict[Path, set[str]]) -> str | None:
    parts = urlsplit(href)
    if parts.scheme or href.startswith("//") or href.startswith("javascript:"):
        return None  # external, mailto:, or a script action: not the book's to check offline
    fragment = unquote(parts.fragment)
    if not parts.path:
        if fragment and fragment not in own_ids:
            return f"#{fragment} is not an anchor of this page"
        return None
    if page is None:
        return None
    target = (page.parent / unquote(parts.path)).resolve()
    if target.is_dir():
        target = target / "index.html"
    if not target.exists():
        return f"{href} does not exist in the build"
    if fragment and target.suffix == ".html":
        ids = ids_of.get(target)
        if ids is None:
            ids = parse(target.read_text(errors="replace")).ids
            ids_of[target] = ids
        if fragment not in ids:
            return f"{href}: no anchor #{fragment} in {target.name}"
    return None


def find_chromium() -> str | None:
    """The Chromium executable (``$CHROMIUM``, then ``chromium`` / ``chromium-browser`` on the PATH)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def render(page: Path, chromium: str, budget_ms: int = 5000, timeout_s: float = 60.0) -> str:
    """The DOM of ``page`` after its scripts ran, from headless Chromium (no network is used), with the
    tables too wide for their column recorded by :data:`MEASURE_TABLES` (run on a copy of the page beside
    it, so that its relative links and assets resolve alike)."""
    html = page.read_text(errors="replace")
    html = html.replace("</body>", MEASURE_TABLES + "</body>", 1) if "</body>" in html else html + MEASURE_TABLES
    copy = page.with_name(f".bookcheck-{os.getpid()}-{page.name}")
    copy.write_text(html)
    try:
        with tempfile.TemporaryDirectory() as profile:
            cmd = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
                   "--dump-dom", copy.resolve().as_uri()]
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    finally:
        copy.unlink(missing_ok=True)
    if out.returncode or "<html" not in out.stdout:
        raise RuntimeError(f"chromium could not load {page} (exit {out.returncode}): {out.stderr[-500:]}")
    return out.stdout


def book_pages(html_dir: Path) -> list[Path]:
    """The book's own pages (not Sphinx's search and index pages, not the theme's static files)."""
    skip = {"search.html", "genindex.html", "py-modindex.html"}
    return sorted(p for p in html_dir.rglob("*.html")
                  if p.name not in skip and not any(part.startswith("_") for part in p.relative_to(html_dir).parts))


def check_book(html_dir: Path | str, chromium: str | None = None) -> dict[str, list[str]]:
    """Every page of a built book, rendered by Chromium and checked: page (relative path) -> defects."""
    html_dir = Path(html_dir)
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: install Debian's 'chromium' package or set $CHROMIUM")
    pages = book_pages(html_dir)
    if not pages:
        raise FileNotFoundError(f"no HTML pages under {html_dir}: build the book first")
    ids_of: dict[Path, set[str]] = {}
    report = {}
    for p in pages:
        target = redirect_target(p.read_text(errors="replace"))
        if target is not None:  # a redirect page (the book's index.html): its target is checked on its own
            ok = (p.parent / unquote(urlsplit(target).path)).is_file()
            report[p.relative_to(html_dir).as_posix()] = [] if ok else [f"broken link: redirect to {target}, "
                                                                       "which is not in the build"]
            continue
        report[p.relative_to(html_dir).as_posix()] = check_html(render(p, chromium), p, ids_of)
    return report


def redirect_target(html: str) -> str | None:
    """The URL of a ``<meta http-equiv="refresh" content="0; url=...">`` page, else ``None``."""
    m = re.search(r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]+content=["'][^"']*url=([^"'>]+)""", html, re.I)
    return m.group(1).strip() if m else None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    html_dir = Path(argv[0] if argv else "_build/html")
    report = check_book(html_dir)
    bad = {page: d for page, d in report.items() if d}
    for page, defects in report.items():
        print(f"{'FAIL' if defects else 'ok  '} {page}")
        for d in defects:
            print(f"       {d}")
    print(f"{len(report) - len(bad)} of {len(report)} pages clean")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
