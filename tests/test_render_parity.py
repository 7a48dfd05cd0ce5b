"""Torch rasterizer vs nvdiffrast, and torch on CUDA vs torch on the CPU. Runs only on a machine with
CUDA (and nvdiffrast for the parity test); skipped elsewhere."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from shrn_core.render import create_context, interpolate, nvdiffrast_module, rasterize, texture

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from render_scene import SCENES  # noqa: E402

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.fixture(scope="module")
def scene():
    pos, tri, colours = SCENES["surface35k"](256, 2, "cuda")
    return pos, tri, colours


@cuda
@pytest.mark.skipif(nvdiffrast_module() is None, reason="needs nvdiffrast")
def test_torch_backend_matches_nvdiffrast(scene):
    pos, tri, colours = scene
    out = {}
    for backend in ("torch", "nvdiffrast"):
        ctx = create_context(backend, "cuda")
        p = pos.clone().requires_grad_(True)
        rast, _ = rasterize(ctx, p, tri, (256, 256))
        image, _ = interpolate(colours, rast, tri, backend=backend)
        image.square().sum().backward()
        out[backend] = (rast.detach(), image.detach(), p.grad)
    (rt, it, gt), (rn, inv, gn) = out["torch"], out["nvdiffrast"]
    covered = (rt[..., 3] > 0) | (rn[..., 3] > 0)
    same_id = (rt[..., 3] == rn[..., 3]) & covered
    same_depth = ((rt[..., 2] - rn[..., 2]).abs() < 1e-5) & covered
    assert same_id.sum() / covered.sum() > 0.999
    assert (same_id | same_depth).sum() / covered.sum() > 0.999
    assert (it - inv)[same_id].abs().max() < 1e-4
    # position gradients agree in direction (pixels that differ in id change them slightly)
    cosine = torch.nn.functional.cosine_similarity(gt.flatten(), gn.flatten(), dim=0)
    assert cosine > 0.99
    tex = torch.rand(1, 64, 64, 3, device="cuda")
    uv = torch.rand(2, 32, 32, 2, device="cuda") * 1.4 - 0.2
    for mode in ("wrap", "clamp", "zero"):
        a = texture(tex, uv, boundary_mode=mode, backend="torch")
        b = texture(tex, uv, boundary_mode=mode, backend="nvdiffrast")
        assert (a - b).abs().max() < 1e-4, mode


@cuda
def test_torch_backend_on_cuda_matches_cpu(scene):
    pos, tri, colours = scene
    ctx_gpu, ctx_cpu = create_context("torch", "cuda"), create_context("torch", "cpu")
    rast_gpu, _ = rasterize(ctx_gpu, pos, tri, (256, 256))
    rast_cpu, _ = rasterize(ctx_cpu, pos.cpu(), tri.cpu(), (256, 256))
    assert torch.equal(rast_gpu[..., 3].cpu(), rast_cpu[..., 3])
    torch.testing.assert_close(rast_gpu.cpu(), rast_cpu, atol=1e-5, rtol=1e-5)
