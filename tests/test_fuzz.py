"""Fuzzing every file shrn reads: broken variants must give a documented error, never a crash.

Each case takes a valid example of one file type (``tests/fuzz/examples.py``), breaks it (truncation
at a random offset, bit flips, wrong magic, huge declared sizes, wrong types and shapes, NaN/inf,
empty arrays, deep nesting, pickles, ... see ``tests/fuzz/mutate.py``) and reads it through the
Python API or the command that reads it (in-process via Typer's CliRunner; a few as real
processes). It must be accepted with a valid result, or refused with the reader's documented error
class / exit code and one line naming the file; no traceback, no file left behind (temporary files
included), within 10 s and 1 GB of extra resident memory, in a worker process whose address space
is capped. Seeded: a failure names (reader, mutation, seed), reproduced with
``python -m benchmarks.fuzz --reader NAME --seed S``.

Adding a file type: append one ``Reader(...)`` to ``READERS`` in ``tests/fuzz/readers.py`` (a
builder writing a valid example, the Python reader, the invariants of an accepted result, the
errors it may raise, optionally the command that reads it and its exit codes, and the mutation
families that apply); this test and ``benchmarks/fuzz.py`` pick it up.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from fuzz.harness import describe, failures, make_cases, run_cases, run_subprocess_case, summarise
from fuzz.mutate import mutate
from fuzz.readers import BY_NAME, READERS, available
from shrn_core.errors import FormatError, InputError, WeightsError

CI_CASES = 240


@pytest.fixture(scope="module")
def fuzz_results(shared_data, tmp_path_factory):
    cases = make_cases(CI_CASES, seed=0)
    return run_cases(cases, tmp_path_factory.mktemp("fuzz"))


def test_every_reader_refuses_broken_files_cleanly(fuzz_results):
    bad = failures(fuzz_results)
    assert not bad, f"{len(bad)} of {len(fuzz_results)} fuzz cases failed:\n" + "\n".join(map(describe, bad[:20]))


def test_every_reader_was_fuzzed_through_api_and_command(fuzz_results):
    table = summarise(fuzz_results)
    expected = {reader.name for reader in READERS if available(reader)}
    assert set(table) == expected
    for reader in READERS:
        if reader.name not in table:
            continue
        row = table[reader.name]
        assert row["cases"] >= 8 and row["refused"] >= 3, (reader.name, row)
        if reader.cli:
            assert row["cli"] >= 1, (reader.name, row)
    assert sum(row["cases"] for row in table.values()) >= CI_CASES
    # every checkpoint loader met a pickle that would run code, and refused it
    pickled = {r["reader"] for r in fuzz_results if r["mutation"] == "torch_malicious_pickle" and r["outcome"] == "refused"}
    assert pickled == {r.name for r in READERS if "torch" in r.families and available(r)}


def test_mutations_are_reproducible():
    data = bytes(range(256)) * 20
    for name in ("truncate", "bit_flips", "random_bytes_run", "insert_bytes", "huge_declared_size"):
        assert mutate(data, name, 7) == mutate(data, name, 7)
    assert mutate(data, "bit_flips", 7) != data


# ---------------------------------------------------------------- real processes

@pytest.mark.parametrize("reader, mutation, code", [
    ("image.png8", "huge_declared_size", 2),
    ("image.jpeg_exif", "truncate", None),
    ("config.yaml", "yaml_python_tag", 2),
])
def test_commands_as_real_processes(shared_data, tmp_path, reader, mutation, code):
    entry = BY_NAME[reader]
    if not available(entry):
        pytest.skip(f"{reader} needs {entry.needs}")
    seed = 3 if mutation != "huge_declared_size" else 0  # seed 0: a header declaring 20000 x 20000
    result = run_subprocess_case(entry, mutation, seed, tmp_path)
    assert not result["problems"], (result["problems"], result.get("stderr"))
    if code is not None:
        assert result["exit_code"] == code, result["stderr"]
    assert result["peak_mb"] < 2048
    assert not (tmp_path / "PWNED").exists()


def test_malicious_checkpoint_is_refused_by_the_command(tmp_path, hrn_photo, monkeypatch):
    from typer.testing import CliRunner

    from shrn_cli.app import app

    monkeypatch.chdir(tmp_path)
    checkpoint = _torch_pickle(tmp_path / "evil.pth", {"state_dict": _Evil()})
    result = CliRunner().invoke(app, ["segment", str(hrn_photo), "--backend", "deeplabv3", "--weights", str(checkpoint),
                                      "--out", str(tmp_path / "out")], env={"SHRN_NATIVE_LOGS": "1", "COLUMNS": "300"})
    assert result.exit_code == 4
    assert result.stderr.strip().splitlines() == [
        f"error: {checkpoint}: cannot load checkpoint: it holds Python objects other than tensors, which shrn never "
        "unpickles (loaded with weights_only=True)"]
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "out").exists()


# ---------------------------------------------------------------- pixel limit

def _png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def test_pixel_limit_is_checked_from_the_header_before_decoding(tmp_path):
    import resource

    from shrn_core.formats.image import DEFAULT_MAX_PIXELS, read_image, read_image_raw

    assert DEFAULT_MAX_PIXELS == 100_000_000
    path = _png_header_only(tmp_path / "bomb.png", 60000, 60000)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(InputError, match=r"60000x60000 \(3600.0 megapixels\), above the limit of 100 megapixels"):
        read_image(path)
    # a raised limit lets the header through, and the truncated pixels are then reported
    with pytest.raises(InputError, match="not a readable image"):
        read_image_raw(_png_header_only(tmp_path / "big.png", 12000, 10000), max_pixels=200_000_000)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200_000  # KB: nothing was decoded


def test_max_pixels_option_and_setting(tmp_path, hrn_photo):
    from typer.testing import CliRunner

    from shrn_cli.app import app
    from shrn_core.formats.image import max_pixels, read_image, set_max_pixels

    runner = CliRunner()
    env = {"SHRN_NATIVE_LOGS": "1", "COLUMNS": "200"}
    small = runner.invoke(app, ["face", str(hrn_photo), "--out", str(tmp_path), "--max-pixels", "1000"], env=env)
    assert small.exit_code == 2 and "above the limit of 0.001 megapixels" in small.stderr
    assert not list(tmp_path.iterdir())
    bad = runner.invoke(app, ["face", str(hrn_photo), "--max-pixels", "0"], env=env)
    assert bad.exit_code == 2 and "--max-pixels must be a positive" in bad.stderr
    assert max_pixels() == 100_000_000  # every command starts from the default
    try:
        set_max_pixels(10 ** 6)
        with pytest.raises(InputError, match="above the limit of 1 megapixels"):
            read_image(hrn_photo)
    finally:
        set_max_pixels(None)
    assert read_image(hrn_photo).ndim == 3
    with pytest.raises(InputError):
        set_max_pixels("many")


# ---------------------------------------------------------------- pickles are never run

class _Evil:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def _torch_pickle(path: Path, payload) -> Path:
    import torch

    torch.save(payload, path)
    return path


def _npy_with_objects() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.array([_Evil()], dtype=object), allow_pickle=True)
    return buffer.getvalue()


def test_malicious_pickles_are_refused_everywhere(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from shrn_core.formats.mesh import read_params
    from shrn_core.formats.mesh_io import read_landmarks
    from shrn_core.formats.metrics import read_errors
    from shrn_core.reconstruct.hrn.checkpoint import read_checkpoint

    checkpoint = _torch_pickle(tmp_path / "evil.pth", {"state_dict": _Evil()})
    refused = []
    from shrn_core.segment.deeplab import load_state_dict

    with pytest.raises(WeightsError, match="holds Python objects other than tensors") as err:
        load_state_dict(checkpoint)
    refused.append(err.value)
    with pytest.raises(WeightsError, match="holds Python objects other than tensors") as err:
        read_checkpoint(checkpoint)
    refused.append(err.value)

    (tmp_path / "evil.npy").write_bytes(_npy_with_objects())
    with pytest.raises(FormatError, match="pickles are refused") as err:
        read_errors(tmp_path / "evil.npy")
    refused.append(err.value)
    with pytest.raises(InputError, match="pickles are refused") as err:
        read_landmarks(tmp_path / "evil.npy")
    refused.append(err.value)
    np.savez(tmp_path / "evil.npz", format=np.array("shrn.params"), K=np.array([_Evil()], dtype=object))
    with pytest.raises(FormatError, match="pickles are refused") as err:
        read_params(tmp_path / "evil.npz")
    refused.append(err.value)
    for error in refused:
        assert "\n" not in str(error) and "evil." in str(error)
    assert not (tmp_path / "PWNED").exists()


def test_config_values_are_checked_like_command_line_values(tmp_path, hrn_photo):
    from typer.testing import CliRunner

    from shrn_cli.app import app

    runner = CliRunner()
    env = {"SHRN_NATIVE_LOGS": "1", "COLUMNS": "200"}
    cases = {"face:\n  face_index: abc\n": "option 'face_index'",
             "face:\n  no_hands: [1, 2]\n": "takes one value",
             "max_pixels: {a: 1}\n": "must be a value or a list of values",
             "out: !!python/object/apply:os.system ['touch PWNED']\n": "not valid YAML",
             "[" * 5000 + "]" * 5000: "YAML"}
    for text, message in cases.items():
        config = tmp_path / "config.yaml"
        config.write_text(text)
        result = runner.invoke(app, ["face", str(hrn_photo), "--config", str(config), "--out", str(tmp_path / "o")], env=env)
        assert result.exit_code == 2 and message in result.stderr, (text[:40], result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() and not Path("PWNED").exists()
    # a list where the command line repeats an option is fine
    from shrn_core.config import load_config

    config.write_text("run:\n  option: [reconstruct.render_size=96]\n")
    assert load_config(config, "run") == {"option": ["reconstruct.render_size=96"]}


def test_odd_file_names_and_symlink_loops_give_one_line(tmp_path):
    from typer.testing import CliRunner

    from shrn_cli.app import app

    runner = CliRunner()
    env = {"SHRN_NATIVE_LOGS": "1", "COLUMNS": "300"}
    names = ["bad\nname.png", "émoji🙂.png", "-dash.png", "sp ace.jpg", "\u202eevil.png"]
    for name in names:
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n broken")
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    for path in [*(tmp_path / n for n in names), loop]:
        result = runner.invoke(app, ["face", "--out", str(tmp_path / "out"), "--", str(path)], env=env)
        assert result.exit_code == 2, (path.name, result.stderr, result.exception)
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error:"), result.stderr
    assert not (tmp_path / "out").exists()
