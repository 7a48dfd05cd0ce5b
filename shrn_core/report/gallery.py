"""``<out>/index.html``: a static page with one card per photo of a ``shrn run`` output folder.

No server and no network: CSS and the filter script are inline, every link is relative, so the page
works opened from the file system (``file://``) and inside a copied or archived results folder.
Cards come from the ``<out>/<stem>/manifest.json`` files, so photos of earlier runs and of other
shards of the same folder appear too; failed photos come first.
"""
from __future__ import annotations

import html
import json
import logging
import os
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional
from urllib.parse import quote

from ..formats.core import write_bytes
from .summary import stage_time

log = logging.getLogger("shrn.report")

INDEX_NAME = "index.html"
EAGER_THUMBNAILS = 12  # cards whose thumbnails load with the page; the rest load as they scroll near


@dataclass
class Card:
    """What the page shows for one photo."""

    folder: str  # the photo's folder name inside the results folder
    stem: str
    status: str  # "ok", "failed" or "unreadable" (manifest.json missing fields or not JSON)
    resumed: bool = False
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    stages: list[tuple[str, str]] = field(default_factory=list)  # (label, time or status)
    files: list[tuple[str, int]] = field(default_factory=list)  # (file name, bytes)
    summary: Optional[tuple[str, int, int]] = None  # (file name, width, height)
    input_href: Optional[str] = None  # link to the photo, relative to the page
    input_name: str = ""


def write_gallery(out_dir: str | Path, title: Optional[str] = None) -> Path:
    """Write (or refresh) ``<out_dir>/index.html`` from the photo folders in ``out_dir``."""
    out_dir = Path(out_dir)
    cards = collect_cards(out_dir)
    return write_bytes(out_dir / INDEX_NAME, render_page(cards, title or out_dir.resolve().name).encode("utf-8"))


def collect_cards(out_dir: str | Path) -> list[Card]:
    """One card per ``<out_dir>/<folder>/manifest.json``: failures first, then by name."""
    out_dir = Path(out_dir)
    cards = []
    try:
        entries = sorted(os.scandir(out_dir), key=lambda e: e.name)
    except OSError:
        return []
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith(".") and os.path.isfile(os.path.join(entry.path, "manifest.json")):
            cards.append(_card(out_dir, Path(entry.path)))
    cards.sort(key=lambda c: (c.status == "ok", c.folder))
    return cards


def _card(out_dir: Path, folder: Path) -> Card:
    files = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.is_file() and not entry.name.startswith("."):
            files.append((entry.name, entry.stat().st_size))
    manifest = _read_manifest(folder / "manifest.json")
    stem = _stem(manifest, folder)
    card = Card(folder=folder.name, stem=stem, status="unreadable", files=_ordered(files, stem))
    summary = f"{stem}.summary.png"
    if any(name == summary for name, _ in files):
        width, height = _png_size(folder / summary)
        card.summary = (summary, width, height)
    if manifest is None:
        card.error = "manifest.json is not a readable shrn manifest"
        return card
    card.status = "ok" if manifest.get("ok") else "failed"
    card.error = str(manifest.get("error") or "")
    card.warnings = [str(w) for w in manifest.get("warnings") or []]
    stages = [s for s in manifest.get("stages") or [] if isinstance(s, dict)]
    card.stages = [(f"{s.get('name')} {s['backend']}" if s.get("backend") else str(s.get("name")), stage_time(s))
                   for s in stages]
    card.resumed = card.status == "ok" and bool(stages) and all(s.get("status") != "computed" for s in stages)
    source = manifest.get("input")
    if source:
        card.input_name = Path(source).name
        if Path(source).is_file():
            card.input_href = _href(os.path.relpath(Path(source).resolve(), out_dir.resolve()))
    return card


def _read_manifest(path: Path) -> Optional[dict]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(document, dict) or document.get("format") != "shrn.manifest":
        return None
    return document


def _stem(manifest: Optional[dict], folder: Path) -> str:
    from ..formats.core import image_stem

    if manifest and manifest.get("input"):
        return image_stem(manifest["input"])
    return folder.name


def _ordered(files: list[tuple[str, int]], stem: str) -> list[tuple[str, int]]:
    """The summary and the mesh first, manifest.json last, the rest by name."""
    first = {f"{stem}.summary.png": 0, f"{stem}.obj": 1}
    return sorted(files, key=lambda f: (first.get(f[0], 3 if f[0] == "manifest.json" else 2), f[0]))


def _png_size(path: Path) -> tuple[int, int]:
    try:
        with open(path, "rb") as handle:
            header = handle.read(24)
        if header[:8] == b"\x89PNG\r\n\x1a\n":
            return struct.unpack(">II", header[16:24])
    except OSError:
        pass
    return 1600, 900


def _href(relative: str) -> str:
    return quote(relative.replace(os.sep, "/"))


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return ""


# ---------------------------------------------------------------- HTML


def render_page(cards: list[Card], title: str) -> str:
    failed = sum(c.status != "ok" for c in cards)
    warned = sum(bool(c.warnings) for c in cards)
    counts = f"{len(cards)} photo{'' if len(cards) == 1 else 's'} · {failed} failed · {warned} with warnings"
    body = "\n".join(_card_html(c, eager=i < EAGER_THUMBNAILS) for i, c in enumerate(cards)) or '<p class="empty">No photo folders with a manifest.json here yet.</p>'
    return _PAGE.format(title=html.escape(title), counts=html.escape(counts),
                        generated=html.escape(time.strftime("%Y-%m-%d %H:%M:%S")), cards=body, script=_SCRIPT,
                        style=_STYLE)


def _card_html(card: Card, eager: bool = False) -> str:
    e = html.escape
    folder = _href(card.folder)
    status = "resumed" if card.resumed else card.status
    search = " ".join([card.stem, card.folder, card.status, status, card.error, card.input_name, *card.warnings,
                       *(label for label, _ in card.stages)]).lower()
    group = "ok" if card.status == "ok" else "failed"  # the status filter's groups
    parts = [f'<article class="card {e(card.status)}" data-status="{group}" '
             f'data-warn="{1 if card.warnings else 0}" data-search="{e(search)}">']
    if card.summary:
        name, width, height = card.summary
        src = f"{folder}/{_href(name)}"
        # data-src: the script loads a thumbnail when its card nears the viewport (Chromium fetched
        # all 500 of a test page from file:// despite loading="lazy", 2 s instead of 0.2 s). The
        # first screenful loads plainly, so it shows even before (or without) the script.
        source = "src" if eager else "data-src"
        parts.append(f'<a class="thumb" href="{src}"><img {source}="{src}" decoding="async" '
                     f'width="{width}" height="{height}" alt="summary sheet of {e(card.stem)}"></a>')
    else:
        parts.append('<div class="thumb none">no summary sheet</div>')
    parts.append(f'<h2><span class="name">{e(card.stem)}</span> <span class="badge {e(status)}">{e(status)}</span></h2>')
    if card.error:
        parts.append(f'<p class="error">{e(card.error)}</p>')
    if card.warnings:
        parts.append('<ul class="warnings">' + "".join(f"<li>{e(w)}</li>" for w in card.warnings) + "</ul>")
    if card.stages:
        parts.append('<p class="times">' + " · ".join(f"<span>{e(label)} <b>{e(value)}</b></span>"
                                                    for label, value in card.stages) + "</p>")
    links = [f'<a class="file" href="{folder}/{_href(name)}" title="{_size(size)}">{e(name)}</a>'
             for name, size in card.files]
    if card.input_href:
        links.insert(0, f'<a class="file input" href="{card.input_href}">photo: {e(card.input_name)}</a>')
    parts.append('<p class="files">' + " ".join(links) + "</p>")
    parts.append("</article>")
    return "".join(parts)


_STYLE = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c1c1e;background:#f4f4f5}
header{position:sticky;top:0;z-index:1;background:#fff;border-bottom:1px solid #ddd;padding:10px 16px;display:flex;
flex-wrap:wrap;gap:8px 16px;align-items:center}
header h1{font-size:18px;margin:0}
header .counts,header .generated{color:#666}
header input{flex:1 1 240px;max-width:420px;padding:6px 10px;font-size:14px;border:1px solid #bbb;border-radius:6px}
header select{padding:5px;font-size:14px}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px;padding:14px 16px;align-items:start}
.card{content-visibility:auto;contain-intrinsic-size:auto 640px;background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px;min-width:0}
.card.failed,.card.unreadable{border-color:#d33;box-shadow:0 0 0 1px #d33 inset}
.thumb img{display:block;width:100%;height:auto;border-radius:4px;background:#eee}
.thumb.none{display:flex;align-items:center;justify-content:center;height:120px;background:#eee;color:#777;border-radius:4px}
h2{font-size:16px;margin:8px 0 4px;word-break:break-all}
.badge{font-size:12px;padding:1px 7px;border-radius:10px;background:#e4f3e8;color:#1e7a3c;vertical-align:middle}
.badge.failed,.badge.unreadable{background:#fbe3e3;color:#b01e1e}
.badge.resumed{background:#e6eefb;color:#2450a0}
.error{color:#b01e1e;margin:4px 0;word-break:break-word}
.warnings{color:#9a5a00;margin:4px 0;padding-left:18px}
.times{color:#555;margin:4px 0}
.times b{font-weight:600;color:#222}
.files{margin:6px 0 0;display:flex;flex-wrap:wrap;gap:4px}
.files a{font-size:12px;padding:1px 6px;border:1px solid #ccd;border-radius:4px;color:#2450a0;text-decoration:none;
word-break:break-all}
.files a:hover{background:#eef}
.files a.input{border-color:#9b9}
.empty{padding:20px;color:#666}
"""

_SCRIPT = """
(function () {
  var cards = Array.prototype.slice.call(document.querySelectorAll('article.card'));
  var box = document.getElementById('filter'), status = document.getElementById('status');
  var shown = document.getElementById('shown');
  function apply() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), want = status.value, count = 0;
    cards.forEach(function (card) {
      var keep = (want === 'all' || card.dataset.status === want || (want === 'warnings' && card.dataset.warn === '1'))
        && words.every(function (w) { return card.dataset.search.indexOf(w) >= 0; });
      card.hidden = !keep;
      if (keep) count++;
    });
    shown.textContent = count + ' shown';
    var state = (box.value ? 'q=' + encodeURIComponent(box.value) : '') + (want !== 'all' ? (box.value ? '&' : '') + 'status=' + want : '');
    if (history.replaceState) history.replaceState(null, '', state ? '#' + state : location.pathname);
  }
  location.hash.replace(/^#/, '').split('&').forEach(function (pair) {  // #q=word&status=failed
    var kv = pair.split('='), value = decodeURIComponent(kv[1] || '');
    if (kv[0] === 'q') box.value = value;
    if (kv[0] === 'status' && status.querySelector('option[value="' + value + '"]')) status.value = value;
  });
  function show(img) { img.src = img.getAttribute('data-src'); img.removeAttribute('data-src'); }
  var thumbs = Array.prototype.slice.call(document.querySelectorAll('img[data-src]'));
  if ('IntersectionObserver' in window) {
    var watcher = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) { show(entry.target); watcher.unobserve(entry.target); }
      });
    }, {rootMargin: '800px 0px'});
    thumbs.forEach(function (img) { watcher.observe(img); });
  } else {
    thumbs.forEach(show);
  }
  box.addEventListener('input', apply);
  status.addEventListener('change', apply);
  if (box.value || status.value !== 'all') apply(); else shown.textContent = cards.length + ' shown';
  document.body.dataset.ready = '1';
  document.body.dataset.readyMs = Math.round(performance.now());  // read by benchmarks/report_speed.py
  window.addEventListener('load', function () { document.body.dataset.loadMs = Math.round(performance.now()); });
})();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="shrn">
<title>shrn results: {title}</title>
<style>{style}</style>
</head>
<body>
<header>
<h1>shrn results: {title}</h1>
<span class="counts">{counts}</span>
<input id="filter" type="search" placeholder="filter: name, error, warning, backend..." aria-label="filter" autofocus>
<select id="status" aria-label="status">
<option value="all">all</option><option value="failed">failed</option><option value="warnings">with warnings</option><option value="ok">ok</option>
</select>
<span id="shown" class="counts"></span>
<span class="generated">written {generated}</span>
</header>
<main>
{cards}
</main>
<script>{script}</script>
</body>
</html>
"""
