"""Cost of the visual reports. Targets: a summary sheet costs <= 0.3 s per photo on the dev CPU;
the gallery of 500 photos opens in < 2 s in headless Chromium.

1. ``shrn run`` (Python API) on real photos with a quick fit (default mesh size: 3 subdivisions,
   ~28k vertices, few iterations): the seconds each sheet added, as recorded in manifest.json (the
   reconstruction in memory, images read back from the output folder, PNG written); the best of
   ``--repeats`` for drawing and writing a sheet whose pieces are in memory (wall and process CPU
   time: the dev machine is shared, CPU time is the steadier figure); then the same sheets redrawn
   from the files alone (``summary_for_folder``: the OBJ is parsed too).
2. 500 fake photo folders (manifest.json, 12 output files, a real summary sheet hard-linked from
   part 1; 5 % failed, 10 % with warnings), ``write_gallery``, then the page opened from file:// in
   headless Chromium: the page's own ``performance.now()`` when its script has run and at the load
   event, and the browser's wall time against a one-card page.

    python benchmarks/report_speed.py [--photos 6] [--cards 500] [--repeats 3] [--json-out FILE]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import clean_photos, commit, shared_data_dir, write_json  # noqa: E402

QUICK_FIT = {"coarse_iterations": 60, "mid_iterations": 4, "fine_iterations": 3, "render_size": 128}


def sheet_speed(photos: list[Path], out: Path, repeats: int) -> dict:
    from shrn_core.pipeline import PipelineOptions, run
    from shrn_core.report.summary import load_inputs, render_sheet, summary_for_folder, write_summary

    reports = run(photos, out, PipelineOptions(device="cpu", reconstruct_options=dict(QUICK_FIT)))
    rows = []
    for report in reports:
        if not report.ok:
            print(f"skip {report.input.name}: {report.error}")
            continue
        manifest = json.loads((report.out_dir / "manifest.json").read_text())
        from_files, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            summary_for_folder(report.out_dir)
            from_files.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        inputs = load_inputs(report.out_dir)  # pieces in memory, as in a run: time drawing + writing
        drawn, drawn_cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            write_summary(report.out_dir / "again.png", inputs)
            drawn.append(time.perf_counter() - t0)
            drawn_cpu.append(time.process_time() - c0)
        height, width = _image_size(report.input)
        rows.append({"photo": report.input.name, "size": f"{width}x{height}",
                     "in_run_s": manifest["summary"]["seconds"], "draw_write_s": min(drawn),
                     "draw_write_cpu_s": min(drawn_cpu), "from_files_s": min(from_files), "from_files_cpu_s": min(cpu)})
        assert render_sheet(inputs).shape[1] == 1600
    in_run = [r["in_run_s"] for r in rows]
    return {"rows": rows, "first_in_run_s": in_run[0], "median_in_run_s": statistics.median(in_run[1:] or in_run),
            "max_in_run_s": max(in_run[1:] or in_run), "median_from_files_s": statistics.median(r["from_files_s"] for r in rows),
            "median_draw_write_s": statistics.median(r["draw_write_s"] for r in rows),
            "median_draw_write_cpu_s": statistics.median(r["draw_write_cpu_s"] for r in rows),
            "sheet": str(reports[0].out_dir / f"{reports[0].out_dir.name}.summary.png")}


def _image_size(path: Path) -> tuple[int, int]:
    from shrn_core.formats.image import read_image

    return read_image(path).shape[:2]


def fake_results(out: Path, count: int, sheet: Path, seed: int = 0) -> None:
    """``count`` photo folders as ``shrn run`` leaves them (contents are placeholders, the summary
    sheet a hard link to a real one)."""
    from shrn_core.formats.manifest import write_manifest

    rng = random.Random(seed)
    kinds = ["face.json", "mask.png", "face_region.png", "inpainted.png", "obj", "mtl", "albedo.png", "coarse.obj",
             "mid.obj", "params.npz", "overlay.png", "shading.png"]
    for index in range(count):
        stem = f"photo_{index:04d}"
        folder = out / stem
        folder.mkdir(parents=True)
        for kind in kinds:
            (folder / f"{stem}.{kind}").write_bytes(b"x" * 64)
        failed = rng.random() < 0.05
        if not failed:
            os.link(sheet, folder / f"{stem}.summary.png")
        stages = [{"name": name, "status": "computed", "seconds": round(rng.uniform(0.05, 9), 3), "backend": backend,
                   "outputs": {}, "info": {}}
                  for name, backend in (("face", None), ("segment", "auto"), ("inpaint", "face"), ("reconstruct", "fit"))]
        write_manifest(folder / "manifest.json", {
            "shrn_version": "0.1.0", "input": f"photos/{stem}.jpg", "ok": not failed,
            "error": f"photos/{stem}.jpg: no face found" if failed else None, "backends": {}, "options": {},
            "stages": stages[:1] if failed else stages,
            "warnings": ["landmark shapes of the views disagree (0.061)"] if rng.random() < 0.1 else []})


def gallery_speed(sheet: Path, cards: int, repeats: int, root: Path) -> dict:
    from shrn_core.report import write_gallery
    from shrn_core.report.browser import find_chromium, run_headless

    big, small = root / "gallery_big", root / "gallery_one"
    fake_results(big, cards, sheet)
    fake_results(small, 1, sheet)
    t0 = time.perf_counter()
    page = write_gallery(big)
    write_s = time.perf_counter() - t0
    write_gallery(small)
    result = {"cards": cards, "write_gallery_s": write_s, "index_html_kB": page.stat().st_size / 1000}
    browser = find_chromium()
    if browser is None:
        result["browser"] = "no Chromium found: page not opened"
        return result
    window = "--window-size=1600,1000"
    run_headless(browser, page, "--dump-dom", window)  # warm the disk cache and the browser binary
    ready, load, wall, wall_one, shot = [], [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        dom = run_headless(browser, page, "--dump-dom", window).stdout
        wall.append(time.perf_counter() - t0)
        body = re.search(r"<body([^>]*)>", dom).group(1)
        ready.append(int(re.search(r'data-ready-ms="(\d+)"', body).group(1)))
        load.append(int(re.search(r'data-load-ms="(\d+)"', body).group(1)))
        assert dom.count("<article") == cards, "not every card is in the page"
        t0 = time.perf_counter()
        run_headless(browser, small / "index.html", "--dump-dom", window)
        wall_one.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        run_headless(browser, page, f"--screenshot={root / 'shot.png'}", window, "--virtual-time-budget=2000")
        shot.append(time.perf_counter() - t0)
    result.update(browser=browser, script_done_ms=statistics.median(ready), load_event_ms=statistics.median(load),
                  browser_wall_s=statistics.median(wall), browser_wall_one_card_s=statistics.median(wall_one),
                  screenshot_wall_s=statistics.median(shot))
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, default=6, help="real photos for the sheet timing")
    parser.add_argument("--cards", type=int, default=500, help="fake photo folders for the gallery timing")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json-out")
    args = parser.parse_args()
    run_commit = commit()
    load_before = os.getloadavg()[0]
    extra = sorted((shared_data_dir() / "faces_extra" / "images").glob("*.jpg"))[:2]  # larger photos (up to 1600 px)
    photos = (clean_photos()[: max(args.photos - len(extra), 1)] + extra)[: args.photos]
    with tempfile.TemporaryDirectory(prefix="shrn-report-speed-") as tmp:
        root = Path(tmp)
        sheets = sheet_speed(photos, root / "run", args.repeats)
        gallery = gallery_speed(Path(sheets.pop("sheet")), args.cards, args.repeats, root)
    print(f"{'photo':40s} {'size':>10s} {'in run s':>9s} {'draw+write s':>13s} {'(cpu s)':>8s} {'from files s':>13s} "
          f"{'(cpu s)':>8s}")
    for row in sheets["rows"]:
        print(f"{row['photo']:40s} {row['size']:>10s} {row['in_run_s']:9.3f} {row['draw_write_s']:13.3f} "
              f"{row['draw_write_cpu_s']:8.3f} {row['from_files_s']:13.3f} {row['from_files_cpu_s']:8.3f}")
    print(f"sheet in a run: first {sheets['first_in_run_s']:.3f} s (warm-up), then median "
          f"{sheets['median_in_run_s']:.3f} s, max {sheets['max_in_run_s']:.3f} s (target <= 0.3 s); "
          f"drawing + writing median {sheets['median_draw_write_s']:.3f} s (cpu {sheets['median_draw_write_cpu_s']:.3f} s); "
          f"from files median {sheets['median_from_files_s']:.3f} s")
    print("gallery:", json.dumps(gallery, indent=1))
    load = {"before": load_before, "after": os.getloadavg()[0]}
    print(f"load average (1 min) before {load['before']:.1f}, after {load['after']:.1f}")
    write_json(args.json_out, {"commit_run": run_commit, "load_average": load,
                               "sheets": sheets, "gallery": gallery})


if __name__ == "__main__":
    main()
