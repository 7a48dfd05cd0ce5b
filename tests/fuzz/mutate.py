"""Broken variants of a valid file: ``MUTATIONS[name](data, rng) -> bytes``.

Every mutation is deterministic given ``rng`` (a ``random.Random``), so a case is reproduced from
(reader, mutation, seed) alone. Structure-aware mutations (JSON, YAML, npy/npz, torch checkpoints,
text meshes, image headers) fall back to a byte-level change when the input is not of their kind,
so every mutation applies to every file.
"""
from __future__ import annotations

import io
import json
import random
import struct
import zipfile
import zlib
from typing import Callable

import numpy as np

Mutation = Callable[[bytes, random.Random], bytes]
MUTATIONS: dict[str, Mutation] = {}

MAGICS = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"GIF89a", b"BM", b"II*\x00", b"RIFF\x00\x00\x00\x00WEBP",
          b"PK\x03\x04", b"\x93NUMPY", b"ply\n", b"solid ", b"{", b"\x80\x02", b"%PDF-1.4", b"\x7fELF")
HUGE = 60000  # a side that makes 3.6 gigapixels


def mutation(*families: str):
    def register(func: Mutation) -> Mutation:
        MUTATIONS[func.__name__] = func
        for family in families:
            FAMILIES.setdefault(family, []).append(func.__name__)
        return func
    return register


FAMILIES: dict[str, list[str]] = {}


# ---------------------------------------------------------------- bytes (every file)

@mutation("bytes")
def truncate(data: bytes, rng: random.Random) -> bytes:
    return data[: rng.randrange(0, max(len(data), 1))]


@mutation("bytes")
def bit_flips(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\x01"
    out = bytearray(data)
    # bias towards the header, where a flip changes the most
    for _ in range(rng.choice((1, 2, 4, 16))):
        limit = len(out) if rng.random() < 0.5 else min(len(out), 512)
        index = rng.randrange(limit)
        out[index] ^= 1 << rng.randrange(8)
    return bytes(out)


@mutation("bytes")
def random_bytes_run(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return bytes(rng.randrange(256) for _ in range(16))
    out = bytearray(data)
    start = rng.randrange(len(out))
    length = min(len(out) - start, rng.choice((1, 4, 64, 1024)))
    out[start:start + length] = bytes(rng.randrange(256) for _ in range(length))
    return bytes(out)


@mutation("bytes")
def zero_run(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return b"\0"
    start = rng.randrange(len(data))
    length = min(len(data) - start, rng.choice((8, 256, 4096)))
    return data[:start] + b"\0" * length + data[start + length:]


@mutation("bytes")
def insert_bytes(data: bytes, rng: random.Random) -> bytes:
    at = rng.randrange(len(data) + 1)
    return data[:at] + bytes(rng.randrange(256) for _ in range(rng.choice((1, 3, 100)))) + data[at:]


@mutation("bytes")
def duplicate_run(data: bytes, rng: random.Random) -> bytes:
    if not data:
        return data + data
    start = rng.randrange(len(data))
    run = data[start:start + rng.choice((16, 256, 8192))]
    return data[:start] + run * rng.choice((2, 10)) + data[start:]


@mutation("bytes")
def wrong_magic(data: bytes, rng: random.Random) -> bytes:
    magic = rng.choice(MAGICS)
    return magic + data[len(magic):]


@mutation("bytes")
def empty_or_tiny(data: bytes, rng: random.Random) -> bytes:
    return rng.choice((b"", b"\n", b" ", b"\0", data[:1], data[:8]))


@mutation("bytes")
def text_garbage(data: bytes, rng: random.Random) -> bytes:
    return rng.choice(("hello", "\ufeff{}", "é" * 1000, "\x00\x01\x02", "<html></html>", "nan", "[]" * 50)).encode(
        "utf-8", "surrogatepass")


# ---------------------------------------------------------------- image headers

@mutation("image")
def huge_declared_size(data: bytes, rng: random.Random) -> bytes:
    """Rewrite the header's width/height to a huge size (PNG with a valid CRC, JPEG SOF, BMP, TIFF, WebP)."""
    width, height = rng.choice(((HUGE, HUGE), (HUGE, 1), (1, HUGE), (20000, 20000), (2 ** 31 - 1, 2 ** 31 - 1)))
    if data.startswith(b"\x89PNG") and len(data) >= 33:
        body = struct.pack(">II", min(width, 2 ** 31 - 1), min(height, 2 ** 31 - 1)) + data[24:29]
        return data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF) + data[33:]
    if data.startswith(b"\xff\xd8"):
        for marker in (b"\xff\xc0", b"\xff\xc2", b"\xff\xc1"):
            at = data.find(marker)
            if at > 0:
                return data[:at + 5] + struct.pack(">HH", min(height, 65535), min(width, 65535)) + data[at + 9:]
    if data.startswith(b"BM") and len(data) >= 26:
        return data[:18] + struct.pack("<ii", min(width, 2 ** 31 - 1), min(height, 2 ** 31 - 1)) + data[26:]
    if data.startswith(b"RIFF") and data[12:16] == b"VP8 " and len(data) >= 30:
        return data[:26] + struct.pack("<HH", min(width, 16383), min(height, 16383)) + data[30:]
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data, width, height)
    return bit_flips(data, rng)


def _tiff_size(data: bytes, width: int, height: int) -> bytes:
    order = "<" if data[:2] == b"II" else ">"
    out = bytearray(data)
    (ifd,) = struct.unpack(order + "I", data[4:8])
    if ifd + 2 > len(data):
        return bytes(out)
    (count,) = struct.unpack(order + "H", data[ifd:ifd + 2])
    for k in range(count):
        at = ifd + 2 + 12 * k
        if at + 12 > len(data):
            break
        tag, kind = struct.unpack(order + "HH", data[at:at + 4])
        if tag in (256, 257):
            value = min(width if tag == 256 else height, 65535 if kind == 3 else 2 ** 32 - 1)
            out[at + 8:at + 12] = struct.pack(order + ("HH" if kind == 3 else "I"), *((value, 0) if kind == 3 else (value,)))
    return bytes(out)


@mutation("image")
def zero_declared_size(data: bytes, rng: random.Random) -> bytes:
    if data.startswith(b"\x89PNG") and len(data) >= 33:
        body = struct.pack(">II", 0, rng.choice((0, 5))) + data[24:29]
        return data[:16] + body + struct.pack(">I", zlib.crc32(b"IHDR" + body) & 0xFFFFFFFF) + data[33:]
    return huge_declared_size(data, rng)


@mutation("image")
def png_chunk_length_lie(data: bytes, rng: random.Random) -> bytes:
    """A chunk (IDAT or the first one after IHDR) claiming to be 2 GB long."""
    if not data.startswith(b"\x89PNG"):
        return truncate(data, rng)
    at = data.find(b"IDAT") - 4
    if at < 0:
        at = 33
    return data[:at] + struct.pack(">I", rng.choice((0x7FFFFFFF, 0xFFFFFFFF, 10 ** 8))) + data[at + 4:]


@mutation("image")
def odd_image(data: bytes, rng: random.Random) -> bytes:
    """A valid but unusual image: 1x1, 2-channel, 1-pixel-high, alpha-only, float."""
    import cv2

    kind = rng.randrange(5)
    if kind == 0:
        array = np.zeros((1, 1, 3), np.uint8)
    elif kind == 1:
        array = np.full((1, 4000, 3), 128, np.uint8)
    elif kind == 2:
        array = np.zeros((7, 5, 4), np.uint16)
    elif kind == 3:
        array = np.zeros((6, 6, 2), np.uint8)
        return _png_gray_alpha(array)
    else:
        ok, encoded = cv2.imencode(".tiff", np.random.default_rng(rng.randrange(1000)).random((9, 8, 3), np.float32))
        return encoded.tobytes()
    ok, encoded = cv2.imencode(".png", array)
    return encoded.tobytes()


def _png_gray_alpha(array: np.ndarray) -> bytes:
    height, width = array.shape[:2]
    raw = b"".join(b"\0" + array[y].tobytes() for y in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 4, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# ---------------------------------------------------------------- JSON

def _json(data: bytes):
    try:
        return json.loads(data)
    except ValueError:
        return None


def _paths(doc, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, doc
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:50]):
            yield from _paths(value, prefix + (index,))


def _set(doc, path, value):
    if not path:
        return value
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


def _json_edit(data: bytes, rng: random.Random, edit) -> bytes:
    doc = _json(data)
    if doc is None:
        return bit_flips(data, rng)
    paths = [p for p, _ in _paths(doc)]
    path = rng.choice(paths[1:] or paths)
    out = edit(doc, path, rng)
    return out if isinstance(out, bytes) else json.dumps(out).encode()


@mutation("json")
def json_drop_key(data: bytes, rng: random.Random) -> bytes:
    def edit(doc, path, rng):
        dicts = [p for p, v in _paths(doc) if isinstance(v, dict) and v]
        if not dicts:
            return doc
        where = rng.choice(dicts)
        target = doc
        for key in where:
            target = target[key]
        del target[rng.choice(list(target))]
        return doc
    return _json_edit(data, rng, edit)


@mutation("json")
def json_wrong_type(data: bytes, rng: random.Random) -> bytes:
    replacements = (None, True, 0, -1, 1.5, "", "x", [], {}, [[]], {"a": 1}, 10 ** 30, -(10 ** 30))
    return _json_edit(data, rng, lambda doc, path, r: _set(doc, path, r.choice(replacements)))


@mutation("json")
def json_non_finite(data: bytes, rng: random.Random) -> bytes:
    def edit(doc, path, r):
        numbers = [p for p, v in _paths(doc) if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if not numbers:
            return doc
        for where in r.sample(numbers, min(len(numbers), r.choice((1, 5)))):
            _set(doc, where, r.choice((float("nan"), float("inf"), -float("inf"), 1e308 * 10)))
        return json.dumps(doc, allow_nan=True).encode()
    return _json_edit(data, rng, edit)


@mutation("json")
def json_huge_number(data: bytes, rng: random.Random) -> bytes:
    def edit(doc, path, r):
        text = json.dumps(_set(doc, path, "@@")).encode()
        return text.replace(b'"@@"', r.choice((b"9" * 5000, b"1e999999", b"-0.0e-99999", b"123456789" * 3)), 1)
    return _json_edit(data, rng, edit)


@mutation("json")
def json_deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((1000, 100000))
    open_, close = rng.choice((("[", "]"), ('{"a":', "}")))
    nested = (open_ * depth + "1" + close * depth).encode()
    if rng.random() < 0.5:
        return nested
    return _json_edit(data, rng, lambda doc, path, r: json.dumps(_set(doc, path, "@@")).encode().replace(b'"@@"', nested, 1))


@mutation("json")
def json_empty_or_short_list(data: bytes, rng: random.Random) -> bytes:
    def edit(doc, path, r):
        lists = [p for p, v in _paths(doc) if isinstance(v, list)]
        if not lists:
            return doc
        where = r.choice(lists)
        target = doc
        for key in where:
            target = target[key]
        return _set(doc, where, r.choice(([], target[:-1], target[: len(target) // 2], target + target[:1])))
    return _json_edit(data, rng, edit)


@mutation("json")
def json_unicode(data: bytes, rng: random.Random) -> bytes:
    def edit(doc, path, r):
        text = r.choice(("\u202e\u0000évil", "🙂" * 100, "\ud800", "a\nb", "../../etc/passwd", "C:\\x"))
        return json.dumps(_set(doc, path, text)).encode("utf-8", "surrogatepass")
    return _json_edit(data, rng, edit)


@mutation("json")
def json_top_level(data: bytes, rng: random.Random) -> bytes:
    return rng.choice((b"[]", b"null", b"0", b'"shrn.face"', b"[{}]", b"{}", b'{"format": "shrn.face"}'))


# ---------------------------------------------------------------- YAML

@mutation("yaml")
def yaml_deep_nesting(data: bytes, rng: random.Random) -> bytes:
    depth = rng.choice((200, 5000, 50000))
    return rng.choice((b"[" * depth + b"]" * depth, b"a: " + b"{b: " * depth + b"1" + b"}" * depth))


@mutation("yaml")
def yaml_alias_bomb(data: bytes, rng: random.Random) -> bytes:
    lines = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]']
    for level in range(1, rng.choice((6, 9))):
        prev = chr(ord("a") + level - 1)
        name = chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 10) + "]")
    key = rng.choice(("run", "face", "option", "quiet"))
    lines.append(f"{key}: *{chr(ord('a') + len(lines) - 1)}")
    return "\n".join(lines).encode()


@mutation("yaml")
def yaml_python_tag(data: bytes, rng: random.Random) -> bytes:
    return rng.choice((b"out: !!python/object/apply:os.system ['touch PWNED']\n",
                       b"!!python/object/new:os.system [echo PWNED]\n",
                       b"quiet: !!python/name:os.system\n", b"face: !!binary AAAA\n", b"quiet: !custom x\n"))


@mutation("yaml")
def yaml_wrong_values(data: bytes, rng: random.Random) -> bytes:
    key = rng.choice(("face", "quiet", "out", "max_pixels", "max-pixels", "verbose", "json_out", "no_hands", "device",
                      "inputs", "config", "1", "~", "null"))
    value = rng.choice(("[1, 2]", "{a: 1}", "-1", "0", "1e400", ".nan", "''", "'\\u0000'", "9" * 500, "~",
                        "[[[[]]]]", "2001-01-01", "yes"))
    section = rng.choice(("", "face:\n  ", "run:\n  "))
    return f"{section}{key}: {value}\n".encode()


@mutation("yaml")
def yaml_not_mapping(data: bytes, rng: random.Random) -> bytes:
    return rng.choice((b"- a\n- b\n", b"just text\n", b"42\n", b"face: [1]\n", b"face: 3\n", b"? [a, b]\n: c\n",
                       b"{[1]: 2}\n", b"\t- tab\n", b"a: b: c\n", b"%YAML 9.9\n---\n"))


# ---------------------------------------------------------------- numpy .npy / .npz

def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_header_lie(shape: tuple, dtype: str = "<f4") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 64


def _weird_array(rng: random.Random, like: np.ndarray | None) -> np.ndarray:
    like = np.zeros((3, 3), np.float32) if like is None else like
    kind = rng.randrange(9)
    if kind == 0:
        return np.array([{"evil": 1}, None], dtype=object)  # needs pickle
    if kind == 1:
        return np.zeros((0,) + like.shape[1:], like.dtype)
    if kind == 2:
        return np.full(like.shape, np.nan, np.float32) if like.size else np.array([np.nan])
    if kind == 3:
        return np.full(like.shape, np.inf, np.float64) if like.size else np.array([np.inf])
    if kind == 4:
        return like.reshape(-1)[:max(like.size - 1, 0)]
    if kind == 5:
        return np.array("text")
    if kind == 6:
        return like.astype(np.complex64) if like.dtype.kind in "fiu" else np.zeros(3, np.complex64)
    if kind == 7:
        return np.zeros((2, 2, 2, 2), np.int8)
    return np.array([b"\xff\xfe"], dtype="S2")


@mutation("npy")
def npy_weird_array(data: bytes, rng: random.Random) -> bytes:
    try:
        like = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:
        like = None
    if isinstance(like, np.lib.npyio.NpzFile) or like is None:
        return bit_flips(data, rng)
    return _npy_bytes(_weird_array(rng, like))


@mutation("npy")
def npy_header_lie(data: bytes, rng: random.Random) -> bytes:
    shape = rng.choice(((10 ** 6, 10 ** 6), (2 ** 40,), (-1, 3), (0, 3), (10 ** 10, 3)))
    dtype = rng.choice(("<f4", "<f8", "|O", "<U1000000", "<i8", "V8"))
    return _npy_header_lie(shape, dtype)


def _npz_members(data: bytes) -> dict[str, bytes] | None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except Exception:
        return None


def _npz_bytes(members: dict[str, bytes], compress: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as archive:
        for name, body in members.items():
            archive.writestr(name, body)
    return buffer.getvalue()


@mutation("npz")
def npz_member_change(data: bytes, rng: random.Random) -> bytes:
    members = _npz_members(data)
    if not members:
        return bit_flips(data, rng)
    name = rng.choice(sorted(members))
    action = rng.randrange(4)
    if action == 0:
        del members[name]
    elif action == 1:
        try:
            like = np.load(io.BytesIO(members[name]), allow_pickle=False)
        except Exception:
            like = None
        members[name] = _npy_bytes(_weird_array(rng, like))
    elif action == 2:
        members[name] = _npy_header_lie(rng.choice(((10 ** 6, 10 ** 6), (2 ** 40,), (10 ** 9, 3))),
                                        rng.choice(("<f4", "|O", "<U100000")))
    else:
        members[rng.choice(("extra.npy", "format.npy", "../escape.npy", "ü.npy"))] = _npy_bytes(np.arange(3))
    return _npz_bytes(members, compress=rng.random() < 0.5)


@mutation("npz")
def npz_zip_bomb(data: bytes, rng: random.Random) -> bytes:
    """A member whose declared array is huge and compresses to almost nothing."""
    members = _npz_members(data) or {"a.npy": b""}
    name = rng.choice(sorted(members))
    body = _npy_header_lie((rng.choice((10 ** 8, 2 * 10 ** 8)),), "<f8")
    members[name] = body[:-64] + b"\0" * rng.choice((10 ** 6, 4 * 10 ** 6))
    return _npz_bytes(members, compress=True)


# ---------------------------------------------------------------- torch checkpoints

@mutation("torch")
def torch_malicious_pickle(data: bytes, rng: random.Random) -> bytes:
    """A checkpoint whose pickle would run a shell command when unpickled without weights_only."""
    import torch

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("touch PWNED",))

    payload = rng.choice(({"state_dict": Evil()}, Evil(), {"model": {"w": Evil()}}))
    buffer = io.BytesIO()
    torch.save(payload, buffer, _use_new_zipfile_serialization=rng.random() < 0.8)
    return buffer.getvalue()


@mutation("torch")
def torch_structure_change(data: bytes, rng: random.Random) -> bytes:
    """The checkpoint re-saved with one entry removed, reshaped, NaN-filled, retyped or wrapped oddly."""
    import torch

    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:
        return bit_flips(data, rng)
    tensors = _tensor_paths(state)
    action = rng.randrange(7)
    if action == 0 or not tensors:
        state = rng.choice(([], "text", torch.zeros(3), None, 5, {}, {"state_dict": {}}, {"a": [1, 2, {"b": "c"}]}))
    else:
        where = rng.choice(tensors)
        tensor = _get(state, where)
        if action == 1:
            _delete(state, where)
        elif action == 2:
            _put(state, where, tensor.reshape(-1)[: max(tensor.numel() - 1, 0)].clone())
        elif action == 3:
            _put(state, where, torch.full_like(tensor, float("nan")) if tensor.is_floating_point() else tensor.double())
        elif action == 4:
            _put(state, where, tensor.to(rng.choice((torch.int64, torch.float16, torch.complex64, torch.bool))))
        elif action == 5:
            _put(state, where, rng.choice(("str", 3, None, [1, 2], torch.zeros(0))))
        else:
            _put(state, where, torch.zeros(tuple([2] * 6)))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _tensor_paths(state, prefix=()) -> list[tuple]:
    import torch

    if isinstance(state, torch.Tensor):
        return [prefix]
    if isinstance(state, dict):
        return [p for key, value in state.items() for p in _tensor_paths(value, prefix + (key,))]
    return []


def _get(state, path):
    for key in path:
        state = state[key]
    return state


def _put(state, path, value):
    _get(state, path[:-1])[path[-1]] = value


def _delete(state, path):
    del _get(state, path[:-1])[path[-1]]


# ---------------------------------------------------------------- text meshes and landmark text

@mutation("text")
def text_number_swap(data: bytes, rng: random.Random) -> bytes:
    """Replace numbers with nan/inf/huge/negative indices/garbage tokens."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return bit_flips(data, rng)
    candidates = [i for i, line in enumerate(lines) if any(ch.isdigit() for ch in line)]
    if not candidates:
        return bit_flips(data, rng)
    for index in rng.sample(candidates, min(len(candidates), rng.choice((1, 3, 20)))):
        tokens = lines[index].split(" ")
        numeric = [k for k, t in enumerate(tokens) if any(ch.isdigit() for ch in t)]
        if numeric:
            k = rng.choice(numeric)
            tokens[k] = rng.choice(("nan", "inf", "-inf", "1e400", "-0", "0", "-99999999", "99999999999999999999",
                                    "2147483648", "x", "", "1/2/3/4", "//", "0x10", "1,5", "١٢"))
        lines[index] = " ".join(tokens)
    return "\n".join(lines).encode("utf-8")


@mutation("text")
def text_line_change(data: bytes, rng: random.Random) -> bytes:
    """Drop tokens from a line, duplicate lines, or add odd lines (too many/few values, long lines)."""
    try:
        lines = data.decode("utf-8").split("\n")
    except UnicodeDecodeError:
        return bit_flips(data, rng)
    index = rng.randrange(len(lines))
    action = rng.randrange(4)
    if action == 0:
        lines[index] = " ".join(lines[index].split(" ")[:-1])
    elif action == 1:
        lines[index] = lines[index] + " 7 8 9 10"
    elif action == 2:
        lines.insert(index, rng.choice(("f 1", "f 1 2", "v 1", "vt", "f 0 0 0", "f -1000000 1 2", "v " + "1 " * 100000,
                                        "element vertex 99999999999", "end_header", "\x00\x00", "🙂 1 2 3")))
    else:
        lines = lines[:index]
    return "\n".join(lines).encode("utf-8")


@mutation("text")
def text_count_lie(data: bytes, rng: random.Random) -> bytes:
    """PLY ``element vertex N`` / binary STL triangle count declaring a huge number."""
    if data.startswith(b"ply"):
        head, sep, rest = data.partition(b"end_header")
        lines = head.split(b"\n")
        for i, line in enumerate(lines):
            if line.startswith(b"element"):
                parts = line.split(b" ")
                parts[-1] = str(rng.choice((10 ** 12, 2 ** 31, 2 ** 32 + 1, -5, 10 ** 8))).encode()
                lines[i] = b" ".join(parts)
                if rng.random() < 0.5:
                    break
        return b"\n".join(lines) + sep + rest
    if len(data) >= 84 and not data.startswith(b"solid"):
        return data[:80] + struct.pack("<I", rng.choice((2 ** 32 - 1, 10 ** 9, 0))) + data[84:]
    return text_line_change(data, rng)


# ---------------------------------------------------------------- XML (MeshLab .pp)

@mutation("xml")
def xml_entities(data: bytes, rng: random.Random) -> bytes:
    """Entity expansion ("billion laughs"), an external entity, or deep element nesting."""
    kind = rng.randrange(3)
    if kind == 0:
        lines = ['<!DOCTYPE PickedPoints [<!ENTITY a "aaaaaaaaaa">']
        for level in range(1, 10):
            lines.append(f'<!ENTITY {chr(97 + level)} "' + f"&{chr(96 + level)};" * 10 + '">')
        return ("\n".join(lines) + ']>\n<PickedPoints><point x="&j;" y="0" z="0"/></PickedPoints>').encode()
    if kind == 1:
        return (b'<!DOCTYPE PickedPoints [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                b'<PickedPoints><point x="&x;" y="0" z="0"/></PickedPoints>')
    depth = rng.choice((1000, 100000))
    return b"<PickedPoints>" + b"<a>" * depth + b"</a>" * depth + b"</PickedPoints>"


# ---------------------------------------------------------------- applying

def mutate(data: bytes, name: str, seed: int) -> bytes:
    return MUTATIONS[name](data, random.Random(seed))
