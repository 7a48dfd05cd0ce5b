"""shrn synth: faces of known shape -- known answers for geometry, camera, masks, files, determinism."""
from __future__ import annotations

import numpy as np
import pytest

eos = pytest.importorskip("eos", reason="the Surrey model needs eos-py (pip install 'shrn[synth]')")

from shrn_core.synth import Generator, SynthOptions, load_bank, procedural_bank, save_bank, write_sample  # noqa: E402
from shrn_core.synth.files import read_ground_truth  # noqa: E402


@pytest.fixture(scope="session")
def sfm_dir(shared_data):
    return shared_data / "sfm"


@pytest.fixture(scope="session")
def ict_file(shared_data):
    return shared_data / "ict_facekit" / "ict_face_model.npz"


@pytest.fixture(scope="session")
def small_bank():
    return procedural_bank(seed=3, count=2)


@pytest.fixture(scope="session")
def photo_bank(shared_data, tmp_path_factory):
    """A bank from three photos of faces_extra (the only photos synth may take appearance from)."""
    from shrn_core.synth import build_bank

    photos = sorted((shared_data / "faces_extra" / "images").glob("*.jpg"))[20:22]
    bank = build_bank(photos)
    path = save_bank(bank, tmp_path_factory.mktemp("bank") / "bank.npz")
    return load_bank(path)


def options(sfm_dir, ict_file, **changes):
    base = dict(model="sfm", sfm=sfm_dir, ict=ict_file, size=(96, 96), batch_size=4, device="cpu")
    base.update(changes)
    return SynthOptions(**base)


def test_facemesh_copy_matches_the_face_package():
    from shrn_core.face.landmark_sets import LANDMARKS_68
    from shrn_core.face.topology import load_topology
    from shrn_core.synth import facemesh

    assert np.array_equal(facemesh.LANDMARKS_68, LANDMARKS_68)
    ours, theirs = facemesh.load_topology(), load_topology()
    assert np.array_equal(ours.triangles, theirs.triangles) and np.allclose(ours.mean_shape, theirs.mean_shape)


def test_models_landmarks_follow_the_now_order(sfm_dir, ict_file, tmp_path):
    from shrn_core.synth.models import export_sfm_arrays, load_ict, load_sfm

    for model in (load_sfm(sfm_dir), load_ict(ict_file)):
        lm = model.mean[model.now7]
        # subject's right (x < 0) before left, eyes above nose above mouth, outer corners outside inner ones
        assert lm[0, 0] < lm[1, 0] < 0 < lm[2, 0] < lm[3, 0]
        assert lm[5, 0] < 0 < lm[6, 0]
        assert lm[[0, 1, 2, 3], 1].min() > lm[4, 1] > lm[[5, 6], 1].max()
        iod = np.linalg.norm(lm[3] - lm[0])
        assert 80 < iod < 110, f"{model.name}: outer eye distance {iod:.1f} mm is not in mm"
    sfm = load_sfm(sfm_dir)
    arrays = load_sfm(export_sfm_arrays(sfm_dir, tmp_path / "sfm.npz"))
    coefficients = np.random.default_rng(0).standard_normal(63)
    assert np.allclose(arrays.vertices(coefficients, [0, 0, 0, 1, 0, 0]), sfm.vertices(coefficients, [0, 0, 0, 1, 0, 0]))


def test_mediapipe_finds_the_rendered_face_where_the_camera_puts_it(sfm_dir, ict_file, photo_bank):
    """Known answer: the ground-truth landmarks projected with the sample's camera are where an
    independent detector (mediapipe) finds them on the render."""
    from shrn_core.evaluate.landmarks import NOW7_MEDIAPIPE
    from shrn_core.face import analyze_image

    generator = Generator(options(sfm_dir, ict_file, size=(256, 256), yaw_max=20, pitch_max=10, occluders=(),
                                  photo_effects=False), photo_bank)
    for sample in generator.samples(2, seed=11):
        expected = sample.camera.project(sample.landmarks7)
        found = analyze_image(sample.image, hands=False).face.landmarks[NOW7_MEDIAPIPE, :2]
        error = np.linalg.norm(found - expected, axis=1) / np.linalg.norm(expected[3] - expected[0])
        assert error.mean() < 0.06 and error.max() < 0.12, error


def _ray_cast(vertices_cam: np.ndarray, triangles: np.ndarray, K: np.ndarray, pixels: np.ndarray):
    """Independent visibility: nearest triangle hit (index, -1 = none) and its distance along the ray
    through each pixel centre (pixels: (N, 2) column, row)."""
    xs, ys = pixels[:, 0] + 0.5, pixels[:, 1] + 0.5
    rays = np.stack([(xs - K[0, 2]) / K[0, 0], -(ys - K[1, 2]) / K[1, 1], -np.ones_like(xs)], -1)
    a, b, c = (vertices_cam[triangles[:, k]] for k in range(3))
    e1, e2 = b - a, c - a
    best_t = np.full(len(rays), np.inf)
    best = np.full(len(rays), -1)
    for start in range(0, len(triangles), 2048):
        sl = slice(start, start + 2048)
        p = np.cross(rays[:, None, :], e2[None, sl])
        det = (e1[None, sl] * p).sum(-1)
        inv = 1 / np.where(np.abs(det) < 1e-12, np.nan, det)
        s = -a[None, sl]
        u = (s * p).sum(-1) * inv
        q = np.cross(s, e1[None, sl])
        v = (rays[:, None, :] * q).sum(-1) * inv
        t = (e2[None, sl] * q).sum(-1) * inv
        t = np.where((u >= 0) & (v >= 0) & (u + v <= 1) & (t > 0), t, np.inf)
        nearest = t.argmin(1)
        hit_t = t[np.arange(len(rays)), nearest]
        closer = hit_t < best_t
        best_t = np.where(closer, hit_t, best_t)
        best = np.where(closer, nearest + start, best)
    return best, best_t


@pytest.mark.parametrize("kind", ["hand", "cloth_mask"])
def test_mask_is_exact_visibility(sfm_dir, ict_file, small_bank, kind):
    """Known answer: the mask equals an independent ray cast: an occluder nearer than the person, and
    the person's nearest surface there is the face (surface, eyes or mouth cavity)."""
    from shrn_core.synth.person import FACE, INTERIOR

    size = 40
    generator = Generator(options(sfm_dir, ict_file, size=(size, size), occluders=(kind,), photo_effects=False,
                                  yaw_max=30), small_bank)
    params = [generator.params(5, 0)]
    sample, prepared = generator.render(params)[0], generator._prepare(params)[0]
    camera = prepared["camera"]
    to_cam = lambda v: v @ camera.R.T + camera.t  # noqa: E731
    meshes = [m for m in prepared["meshes"] if m.counts_as_occluder]
    vertices = np.concatenate([m.vertices for m in meshes])
    offsets = np.cumsum([0] + [len(m.vertices) for m in meshes])[:-1]
    triangles = np.concatenate([m.triangles + o for m, o in zip(meshes, offsets)])
    pixels = np.stack(np.meshgrid(np.arange(size), np.arange(size)), -1).reshape(-1, 2)
    occ_hit, occ_t = _ray_cast(to_cam(vertices), triangles, camera.K, pixels)
    rays = occ_hit >= 0  # the person only matters behind the occluder
    person_hit, person_t = _ray_cast(to_cam(prepared["person"]), generator.rig.triangles, camera.K, pixels[rays])
    face = (person_hit >= 0) & np.isin(generator.rig.triangle_part[np.maximum(person_hit, 0)], (FACE, INTERIOR))
    expected = np.zeros(size * size, bool)
    expected[rays] = face & (occ_t[rays] < person_t)
    got = (sample.mask > 0).reshape(-1)
    disagreement = np.logical_xor(got, expected).sum()
    assert expected.sum() > 10 and disagreement <= max(2, 0.03 * expected.sum()), (disagreement, expected.sum())
    assert abs(sample.coverage - got.sum() / (sample.face_region > 0).sum()) < 1e-9


def test_same_seed_same_bytes_whatever_the_batch(sfm_dir, ict_file, small_bank):
    first = list(Generator(options(sfm_dir, ict_file, size=(64, 64), batch_size=1), small_bank).samples(2, seed=7))
    again = list(Generator(options(sfm_dir, ict_file, size=(64, 64), batch_size=2), small_bank).samples(2, seed=7))
    other = Generator(options(sfm_dir, ict_file, size=(64, 64)), small_bank).params(8, 0)
    for a, b in zip(first, again):
        assert a.image.tobytes() == b.image.tobytes() and a.occluded.tobytes() == b.occluded.tobytes()
        assert a.mask.tobytes() == b.mask.tobytes() and np.array_equal(a.vertices, b.vertices)
        assert a.params.to_json() == b.params.to_json()
    assert not np.array_equal(first[0].params.identity, other.identity)
    # the twins share everything but the occluder
    for sample in first:
        assert sample.occluder is not None and (sample.mask > 0).any()
        differs = np.abs(sample.image.astype(int) - sample.occluded.astype(int)).max(-1) > 0
        assert differs[sample.mask > 0].mean() > 0.9


def test_files_read_back_and_eval_against_itself_is_zero(sfm_dir, ict_file, small_bank, tmp_path):
    from shrn_core.evaluate import evaluate

    sample = next(iter(Generator(options(sfm_dir, ict_file, occluders=("glasses", "cup")), small_bank).samples(1, seed=3)))
    written = write_sample(sample, tmp_path, small_bank)
    assert len(written) == 10
    clean, occluded = read_ground_truth(tmp_path, sample.id), read_ground_truth(tmp_path, f"{sample.id}_occ")
    assert np.array_equal(clean.image, sample.image) and np.array_equal(occluded.image, sample.occluded)
    assert not clean.mask.any() and np.array_equal(occluded.mask, sample.mask)
    assert np.allclose(clean.vertices, sample.vertices, atol=1e-4) and np.array_equal(clean.triangles, sample.triangles)
    assert np.allclose(clean.landmarks7, sample.landmarks7, atol=1e-4)
    assert occluded.meta["occluder"]["kind"] in ("glasses", "cup") and clean.meta["occluder"] is None
    assert occluded.meta["twin"] == sample.id and clean.meta["params"]["seed"] == 3
    # the 2D landmarks in the JSON are the 3D ones through the JSON camera
    camera = clean.meta["camera"]
    cam = clean.landmarks7 @ np.array(camera["R"]).T + np.array(camera["t"])
    K = np.array(camera["K"])
    pixels = np.stack([K[0, 0] * cam[:, 0] / -cam[:, 2] + K[0, 2], K[1, 1] * -cam[:, 1] / -cam[:, 2] + K[1, 2]], 1)
    assert np.allclose(pixels, clean.meta["landmarks7"]["image_px"], atol=0.01)
    result = evaluate(tmp_path / f"{sample.id}.gt.obj", tmp_path / f"{sample.id}_occ.gt.obj")
    assert result.stats.median < 1e-6 and result.stats.mean < 1e-6


def test_ict_model_and_pasted_occluders(sfm_dir, ict_file, small_bank, shared_data):
    generator = Generator(options(sfm_dir, ict_file, model="ict", occluders=("pasted",),
                                  pasted_dir=shared_data / "occluded_webfaceocc"), small_bank)
    sample = generator.render([generator.params(1, 0)])[0]
    assert sample.model == "ict" and sample.occluder["kind"] == "pasted"
    assert ((sample.mask > 0) <= (sample.face_region > 0)).all() and sample.coverage > 0.02
    assert len(sample.vertices) == 6706  # the narrow face area is the ground-truth surface


def test_tensor_batches_for_training(sfm_dir, ict_file, small_bank):
    import torch

    generator = Generator(options(sfm_dir, ict_file, size=(48, 128)), small_bank)
    batch = generator.tensors(seed=2, indices=[4, 5])
    assert batch.images.shape == (2, 3, 48, 48) and batch.masks.shape == (2, 1, 48, 48)
    assert batch.images.dtype == torch.float32 and 0 <= float(batch.images.min()) and float(batch.images.max()) <= 1
    assert set(torch.unique(batch.masks).tolist()) <= {0.0, 1.0} and float(batch.masks.sum()) > 0
    assert bool((batch.masks <= batch.face_regions).all())


def test_bank_files_are_validated(tmp_path, small_bank):
    from shrn_core.errors import FormatError, InputError

    path = save_bank(small_bank, tmp_path / "bank.npz")
    again = load_bank(path)
    assert np.array_equal(again.albedo, small_bank.albedo) and again.sources == small_bank.sources
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FormatError):
        load_bank(tmp_path / "bad.npz")
    with pytest.raises(InputError):
        load_bank(tmp_path / "missing.npz")


def test_generation_needs_no_opencv_mediapipe_scipy_or_eos(sfm_dir, ict_file, small_bank, tmp_path):
    """What a bare GPU machine has: torch and numpy. With the Surrey arrays and a bank file the
    generator runs with OpenCV, mediapipe, scipy, trimesh and eos-py all unimportable."""
    import subprocess
    import sys

    from shrn_core.synth.models import export_sfm_arrays

    arrays = export_sfm_arrays(sfm_dir, tmp_path / "sfm.npz")
    bank = save_bank(small_bank, tmp_path / "bank.npz")
    script = f"""
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('cv2', 'mediapipe', 'scipy', 'trimesh', 'rtree', 'eos', 'diffusers'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
from shrn_core.synth import Generator, SynthOptions, load_bank
generator = Generator(SynthOptions(sfm={str(arrays)!r}, ict={str(ict_file)!r}, size=(48, 48), device='cpu'),
                      load_bank({str(bank)!r}))
batch = generator.tensors(seed=1, indices=[0, 1])
print(tuple(batch.images.shape), batch.params[0].occluder['kind'])
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("(2, 3, 48, 48) ")
