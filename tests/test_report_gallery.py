"""index.html: cards, order, links and escaping from hand-made result folders; then the page in a
real headless Chromium from file:// (skipped where no Chromium is installed)."""
from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pytest

from shrn_core.formats.image import read_image, write_image
from shrn_core.formats.manifest import write_manifest
from shrn_core.report.browser import find_chromium, run_headless
from shrn_core.report.gallery import EAGER_THUMBNAILS, write_gallery

MAGENTA = (255, 0, 255)


def stage(name, status="computed", seconds=0.5, backend=None):
    return {"name": name, "status": status, "seconds": seconds, "backend": backend, "outputs": {}, "info": {}}


def photo_folder(out: Path, photos: Path, stem: str, ok=True, error=None, warnings=(), summary=True, stages=None):
    folder = out / stem
    folder.mkdir(parents=True)
    photo = write_image(photos / f"{stem}.png", np.zeros((8, 8, 3), np.uint8))
    for kind, ext in (("mask", "png"), ("", "obj"), ("params", "npz")):
        (folder / (f"{stem}.{kind}.{ext}" if kind else f"{stem}.{ext}")).write_bytes(b"x" * 10)
    if summary:
        write_image(folder / f"{stem}.summary.png", np.full((90, 160, 3), MAGENTA, np.uint8))
    (folder / f".{stem}.obj.123.tmp").write_bytes(b"half written")
    write_manifest(folder / "manifest.json", {
        "shrn_version": "0", "input": str(photo), "ok": ok, "error": error, "backends": {}, "options": {},
        "stages": stages if stages is not None else [stage("face"), stage("segment", backend="auto")],
        "warnings": list(warnings)})
    return folder


@pytest.fixture()
def results(tmp_path):
    out, photos = tmp_path / "results", tmp_path / "photos"
    photos.mkdir()
    photo_folder(out, photos, "anna", warnings=["low light"])
    photo_folder(out, photos, "b&o <x> 1")
    photo_folder(out, photos, "émile", stages=[stage("face", "reused", 0), stage("segment", "reused", 0)])
    photo_folder(out, photos, "carl", ok=False, error="carl.png: no face found <script>alert(1)</script>",
                 summary=False, stages=[])
    broken = out / "dora"
    broken.mkdir()
    (broken / "manifest.json").write_text("{ not json")
    (out / "zed").mkdir()  # no manifest: not a photo folder
    (out / "zed" / "zed.obj").write_bytes(b"x")
    return out


class Cards(HTMLParser):
    """Articles with their classes, data attributes, text and links."""

    def __init__(self):
        super().__init__()
        self.cards, self.scripts, self.body = [], 0, {}
        self._text = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "article":
            self.cards.append({"attrs": attrs, "links": [], "images": [], "text": ""})
        elif tag == "script":
            self.scripts += 1
        elif tag == "body":
            self.body = attrs
        elif self.cards and tag == "a":
            self.cards[-1]["links"].append(attrs["href"])
        elif self.cards and tag == "img":
            self.cards[-1]["images"].append(attrs.get("src") or attrs.get("data-src"))

    def handle_data(self, data):
        if self.cards:
            self.cards[-1]["text"] += data


def parse(text: str) -> Cards:
    parser = Cards()
    parser.feed(text)
    return parser


def test_cards_failures_first_links_resolve_and_text_is_escaped(results):
    page = write_gallery(results)
    assert page == results / "index.html"
    text = page.read_text(encoding="utf-8")
    parsed = parse(text)
    names = [c["attrs"]["data-search"].split()[0] for c in parsed.cards]
    assert names == ["carl", "dora", "anna", "b&o", "émile"]  # failed and unreadable first, then by name
    assert [c["attrs"]["data-status"] for c in parsed.cards] == ["failed", "failed", "ok", "ok", "ok"]
    assert parsed.scripts == 1 and "<script>alert" not in text and "&lt;script&gt;alert(1)" in text
    assert "http:" not in text and "https:" not in text  # nothing fetched from the network
    for card in parsed.cards:
        folder_name = {"carl": "carl", "dora": "dora", "anna": "anna", "b&o": "b&o <x> 1", "émile": "émile"}[
            card["attrs"]["data-search"].split()[0]]
        folder = results / folder_name
        targets = {(results / unquote(href)).resolve() for href in card["links"]}
        assert all(t.is_file() for t in targets), card["links"]
        listed = {p.resolve() for p in folder.iterdir() if not p.name.startswith(".")}
        assert listed <= targets  # every output and manifest.json is linked
        assert not any(".tmp" in href for href in card["links"])
    anna = parsed.cards[2]
    assert anna["images"] == ["anna/anna.summary.png"] and anna["attrs"]["data-warn"] == "1"
    assert (results / "../photos/anna.png").resolve() in {(results / unquote(h)).resolve() for h in anna["links"]}
    assert "low light" in anna["text"] and "segment auto" in anna["text"] and "0.50 s" in anna["text"]
    assert "resumed" in parsed.cards[4]["text"] and "no face found" in parsed.cards[0]["text"]
    assert "not a readable shrn manifest" in parsed.cards[1]["text"]
    assert "5 photos · 2 failed · 1 with warnings" in text


def test_empty_folder_gets_a_page(tmp_path):
    page = write_gallery(tmp_path)
    assert parse(page.read_text(encoding="utf-8")).cards == [] and "No photo folders" in page.read_text(encoding="utf-8")


def test_first_screenful_of_thumbnails_loads_without_the_script(tmp_path):
    out, photos = tmp_path / "results", tmp_path / "photos"
    photos.mkdir()
    for i in range(EAGER_THUMBNAILS + 3):
        photo_folder(out, photos, f"p{i:02d}")
    text = write_gallery(out).read_text(encoding="utf-8")
    plain = [f'src="p{i:02d}/p{i:02d}.summary.png"' for i in range(EAGER_THUMBNAILS)]
    lazy = [f'data-src="p{i:02d}/p{i:02d}.summary.png"' for i in range(EAGER_THUMBNAILS, EAGER_THUMBNAILS + 3)]
    assert all(f"<img {a}" in text for a in plain) and all(f"<img {a}" in text for a in lazy)


BROWSER = find_chromium()
needs_browser = pytest.mark.skipif(BROWSER is None, reason="no Chromium/Chrome on PATH (Debian: apt-get install "
                                                           "chromium; or set SHRN_CHROMIUM)")


@needs_browser
def test_page_in_headless_chromium(results, tmp_path):
    page = write_gallery(results)
    url = page.resolve().as_uri()

    dom = run_headless(BROWSER, url, "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    parsed = parse(dom.stdout)
    assert parsed.body.get("data-ready") == "1"  # the script ran from file://
    assert len(parsed.cards) == 5 and not any("hidden" in c["attrs"] for c in parsed.cards)
    assert '<span id="shown" class="counts">5 shown</span>' in dom.stdout

    # the filter box and the status menu, driven through the page's URL fragment
    for fragment, visible in (("#q=%C3%A9mile", ["émile"]), ("#q=auto&status=failed", [])):
        parsed = parse(run_headless(BROWSER, url + fragment, "--dump-dom").stdout)
        shown = [c["attrs"]["data-search"].split()[0] for c in parsed.cards if "hidden" not in c["attrs"]]
        assert shown == visible, fragment

    shot = tmp_path / "gallery.png"  # kept in the test's tmp_path
    result = run_headless(BROWSER, url + "#status=failed", f"--screenshot={shot}", "--window-size=1400,1000", "--virtual-time-budget=3000")
    assert result.returncode == 0 and shot.is_file(), result.stderr[-2000:]
    image = read_image(shot)
    assert image.shape[:2] == (1000, 1400)
    # the failed cards' red borders; with the status menu at "failed" no thumbnail (magenta) shows
    red = (image[..., 0] > 180) & (image[..., 1] < 80) & (image[..., 2] < 80)
    magenta = (image[..., 0] > 230) & (image[..., 1] < 30) & (image[..., 2] > 230)
    assert red[:400, :500].sum() > 100 and magenta.sum() == 0
    shot = tmp_path / "all.png"
    run_headless(BROWSER, url, f"--screenshot={shot}", "--window-size=1400,1000", "--virtual-time-budget=3000")
    image = read_image(shot)
    magenta = (image[..., 0] > 230) & (image[..., 1] < 30) & (image[..., 2] > 230)
    assert magenta.sum() > 5000  # the thumbnails were loaded through their relative links
