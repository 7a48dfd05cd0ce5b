"""The ``hrn`` reconstruct backend: the official HRN / MV-HRN networks on shrn's face analysis and
occlusion masks, returning the same ``Reconstruction`` as the ``fit`` backend."""
from __future__ import annotations

import time
from typing import Any, Optional, Sequence

import cv2
import torch

from ...device import resolve_device
from ...errors import InputError
from ..types import LEVELS, Reconstruction
from .assets import resolve_assets
from .bfm import DECIMETRE_TO_MM, UV_SIZE, BFMModel, load_bfm_arrays
from .checkpoint import load_hrn_weights
from .model import HRNInputs, HRNModel, HRNState
from .mvhrn import fit_multi_view
from .networks import HRNNetworks
from .outputs import (check_finite, dense_mesh, fill_albedo, landmark_vertex_ids, parametric_mesh, photo_albedo,
                      view_result)
from .views import PreparedView, prepare_view

HD_SIZE = 512


class HRNBackend:
    """Load once, reconstruct many: ``HRNBackend(assets=DIR).reconstruct([image], [mask], [face])``.

    ``images``: paths or HxWx3 uint8 RGB arrays; ``masks``: HxW uint8 occlusion masks (255 =
    occluded) or None; ``faces``: ``Face`` or ``FaceAnalysis`` of each image. Options (dict):
    ``multi_view`` (fit all images jointly with MV-HRN, else they must be one image),
    ``mv_iterations`` (50), ``levels``, ``progress``, ``renders`` (True: overlays), ``image_paths``, ``texture`` ("photo":
    the photo divided by the fitted shading where the face is visible, HRN's de-retouched albedo
    elsewhere; "albedo": HRN's de-retouched albedo everywhere it is seen).
    """

    name = "hrn"

    def __init__(self, assets: Any = None, device: str | torch.device = "auto", render_backend: str = "auto",
                 uv_size: int = UV_SIZE, hd_size: int = HD_SIZE, retouch_size: int = 512,
                 texture_size: Optional[int] = None, model: Optional[HRNModel] = None, **_ignored):
        self.device = resolve_device(device)
        self.hd_size = hd_size
        self.texture_size = int(texture_size) if texture_size else None
        if model is None:
            paths = resolve_assets(assets)
            bfm = BFMModel(load_bfm_arrays(paths), uv_size)
            nets = load_hrn_weights(HRNNetworks(), paths.hrn, paths.de_retouching)
            model = HRNModel(bfm, nets, render_backend, retouch_size)
        self.model = model.to(self.device).eval()

    # -- public API ----------------------------------------------------------------------------
    def reconstruct(self, images: Sequence, masks: Optional[Sequence] = None, faces: Optional[Sequence] = None,
                    options: Optional[dict] = None) -> Reconstruction:
        options = dict(options or {})
        if options.get("multi_view") and len(images) > 1:
            return self.reconstruct_multi_view(images, masks, faces, options)
        if len(images) != 1:
            raise InputError(f"the hrn backend reconstructs one photo per call ({len(images)} given); "
                             "use multi-view for several photos of one person")
        return self.reconstruct_batch(images, masks, faces, options)[0]

    @torch.no_grad()
    def reconstruct_batch(self, images: Sequence, masks: Optional[Sequence] = None, faces: Optional[Sequence] = None,
                          options: Optional[dict] = None) -> list[Reconstruction]:
        """Independent single-view reconstructions of several photos in one batched forward pass."""
        options = dict(options or {})
        start = time.perf_counter()
        views = self._prepare(images, masks, faces, options)
        inputs = self._inputs(views)
        t_prep = time.perf_counter()
        _report(options, f"hrn: networks on {len(views)} photo(s)")
        state = self.model(inputs)
        check_finite(state, ", ".join(view.image_path for view in views))
        t_net = time.perf_counter()
        results = []
        for i, view in enumerate(views):
            result = self._reconstruction(state, [i], [view], inputs, options)
            result.info["timings"] = {"preprocess_s": (t_prep - start) / len(views), "network_s": (t_net - t_prep) / len(views)}
            results.append(result)
        end = time.perf_counter()
        for result in results:
            result.info["timings"]["outputs_s"] = (end - t_net) / len(views)
        return results

    def reconstruct_multi_view(self, images: Sequence, masks: Optional[Sequence], faces: Optional[Sequence],
                               options: dict) -> Reconstruction:
        start = time.perf_counter()
        views = self._prepare(images, masks, faces, options)
        inputs = self._inputs(views)
        with torch.no_grad():
            base = self.model(inputs)
        check_finite(base, "multi-view input")
        t_net = time.perf_counter()
        _report(options, f"hrn: MV-HRN fitting of {len(views)} views")
        fit = fit_multi_view(self.model, inputs, base, iterations=int(options.get("mv_iterations", 50)))
        check_finite(fit.state, "multi-view fit")
        t_fit = time.perf_counter()
        result = self._reconstruction(fit.state, list(range(len(views))), views, inputs, options)
        result.info.update(mv_loss_history=fit.history, reference_view=0,
                           timings={"network_s": t_net - start, "fit_s": t_fit - t_net,
                                    "outputs_s": time.perf_counter() - t_fit})
        return result

    # -- helpers -------------------------------------------------------------------------------
    def _prepare(self, images, masks, faces, options) -> list[PreparedView]:
        n = len(images)
        if n == 0:
            raise InputError("no images given to the hrn backend")
        masks = list(masks) if masks is not None else [None] * n
        faces = list(faces) if faces is not None else [None] * n
        paths = list(options.get("image_paths") or [None] * n)
        if not (len(masks) == len(faces) == len(paths) == n):
            raise InputError(f"{n} images but {len(masks)} masks, {len(faces)} faces and {len(paths)} paths")
        lm3d = self.model.bfm.lm3d_5
        return [prepare_view(images[i], masks[i], faces[i], lm3d, self.hd_size, i, paths[i]) for i in range(n)]

    def _inputs(self, views: list[PreparedView]) -> HRNInputs:
        stack = lambda name: torch.stack([getattr(v, name) for v in views]).to(self.device)  # noqa: E731
        return HRNInputs(image=stack("image"), image_hd=stack("image_hd"), face_mask=stack("face_mask"),
                         landmarks=stack("landmarks_crop"))

    @torch.no_grad()
    def _reconstruction(self, state: HRNState, indices: list[int], views: list[PreparedView], inputs: HRNInputs,
                        options: dict) -> Reconstruction:
        """One Reconstruction from batch items ``indices`` (one per view; the first is the reference
        whose expression defines the meshes; texture and displacement fuse all views by visibility)."""
        model, ref = self.model, indices[0]
        weight = state.valid_mask[indices]  # (N, 1, S, S)
        total = weight.sum(0)
        covered = (total > 1e-3).float()
        displacement = (state.displacement[indices] * weight).sum(0) / total.clamp(min=1e-3) * covered
        if options.get("texture", "photo") == "photo":
            observed = [photo_albedo(model, state, i, inputs.image_hd) for i in indices]
            fusion = torch.stack([w for _, _, w in observed]).sum(0)
            texture = sum(a * w for a, _, w in observed) / fusion.clamp(min=1e-6)
            tex_weight = torch.stack([v for _, v, _ in observed]).amax(0)
        else:  # HRN's de-retouched albedo wherever the photo shows the face
            tex_weight = total
            texture = (state.albedo[indices] * weight).sum(0) / total.clamp(min=1e-3)
        level = options.get("levels") or "fine"
        if level not in LEVELS:
            raise InputError(f"unknown level {level!r}; choose one of: {', '.join(LEVELS)}")
        stop = LEVELS.index(level)
        levels = {"coarse": parametric_mesh(model, state.shape_coarse[ref])}
        if stop >= 1:
            levels["mid"] = parametric_mesh(model, state.shape_mid[ref])
        if stop >= 2:
            levels["fine"] = dense_mesh(model, state.shape_mid[ref], displacement)
        renders = bool(options.get("renders", True))
        view_results = [view_result(model, state, i, view, renders) for i, view in zip(indices, views)]
        coeffs = {k: v[ref].detach().cpu().numpy() for k, v in state.coeffs.items()}
        # shrn's UV maps put texel row 0 at v = 0 (the writers flip them for image files)
        albedo = fill_albedo(texture, state.albedo[ref], tex_weight.clamp(max=1.0))[::-1].copy()
        if self.texture_size and self.texture_size != albedo.shape[0]:
            size = (self.texture_size, self.texture_size)
            albedo = cv2.resize(albedo, size, interpolation=cv2.INTER_AREA if size[0] < albedo.shape[0] else cv2.INTER_LINEAR)
        displacement_mm = (displacement[0] * DECIMETRE_TO_MM).cpu().numpy().astype("float32")[::-1].copy()
        return Reconstruction(
            levels=levels, albedo=albedo, views=view_results, backend="hrn",
            landmark_vertex_ids=landmark_vertex_ids(model, list(levels)[-1]), displacement=displacement_mm if stop >= 2 else None,
            info={"coefficients": {k: v.tolist() for k, v in coeffs.items()}, "units": "mm",
                  "uv_size": model.bfm.uv.size})


def _report(options: dict, message: str) -> None:
    progress = options.get("progress")
    if callable(progress):
        progress(message)
