"""Helper of benchmarks/eval_now_official.py, run in a separate venv (numpy<2, scipy, trimesh, rtree,
chumpy): the official NoW ``scan2mesh_computations.compute_errors``, imported unmodified from a
checkout of github.com/soubhiksanyal/now_evaluation, with stand-ins for the libraries that do not
install here -- psbody.mesh.Mesh (a numpy container with keep_vertices), sbody's ScanToMesh
(unsigned scan-to-surface distance from trimesh.proximity.closest_point, with the analytic Jacobian
w_j * unit(closest - scan) on the closest triangle's vertices) and smpl_webuser's Rodrigues (scipy
rotation, central-difference Jacobian). chumpy and its dogleg minimiser are the real package.

    python eval_now_official_runner.py OFFICIAL_DIR PRED.obj SCAN.obj SCAN_LMK.txt OUT.json
"""
import sys, types, json, time
import numpy as np
for name, value in dict(bool=bool, int=int, float=float, complex=complex, object=object, unicode=str, str=str).items():
    setattr(np, name, value)
import inspect
if not hasattr(inspect, "getargspec"):
    inspect.getargspec = inspect.getfullargspec
import chumpy as ch
import scipy.sparse as sp
import trimesh
from scipy.spatial.transform import Rotation


class Mesh:
    def __init__(self, v=None, f=None, filename=None):
        self.v = np.asarray(v, dtype=np.float64)
        self.f = np.asarray(f, dtype=np.int64) if f is not None else np.zeros((0, 3), np.int64)

    def keep_vertices(self, ids):
        keep = np.zeros(len(self.v), bool)
        keep[ids] = True
        remap = np.cumsum(keep) - 1
        self.f = remap[self.f[keep[self.f].all(axis=1)]] if len(self.f) else self.f
        self.v = self.v[keep]

    def write_obj(self, path):
        pass


class ScanToMesh(ch.Ch):
    """Unsigned distance of each scan vertex to the closest point of the mesh surface."""
    dterms = ("mesh_verts",)
    terms = ("scan", "mesh_faces", "scan_sampler", "signed", "normalize")
    term_order = ["scan", "mesh_verts", "mesh_faces", "scan_sampler", "signed", "normalize"]

    def _closest(self):
        verts = np.asarray(self.mesh_verts.r).reshape(-1, 3)
        mesh = trimesh.Trimesh(verts, self.mesh_faces, process=False)
        closest, dist, tri = trimesh.proximity.closest_point(mesh, self.scan.v)
        return verts, closest, dist, tri

    def compute_r(self):
        _, _, dist, _ = self._closest()
        return dist

    def compute_dr_wrt(self, wrt):
        if wrt is not self.mesh_verts:
            return None
        verts, closest, dist, tri = self._closest()
        faces = self.mesh_faces[tri]
        bary = trimesh.triangles.points_to_barycentric(verts[faces], closest)
        direction = (closest - self.scan.v) / np.maximum(dist, 1e-12)[:, None]
        n = len(dist)
        rows = np.repeat(np.arange(n), 9)
        cols = (faces[:, :, None] * 3 + np.arange(3)[None, None, :]).reshape(n, 9).ravel()
        vals = (bary[:, :, None] * direction[:, None, :]).reshape(n, 9).ravel()
        return sp.csc_matrix((vals, (rows, cols)), shape=(n, verts.size))


class Rodrigues(ch.Ch):
    dterms = ("rt",)

    def compute_r(self):
        return Rotation.from_rotvec(np.array(self.rt.r, dtype=float).ravel()).as_matrix()

    def compute_dr_wrt(self, wrt):
        if wrt is not self.rt:
            return None
        r0 = np.array(self.rt.r, dtype=float).ravel()
        jac = np.zeros((9, 3))
        for k in range(3):
            step = np.zeros(3)
            step[k] = 1e-7
            jac[:, k] = (Rotation.from_rotvec(r0 + step).as_matrix() - Rotation.from_rotvec(r0 - step).as_matrix()).ravel() / 2e-7
        return jac


def stub(name, **attrs):
    module = types.ModuleType(name)
    module.__dict__.update(attrs)
    sys.modules[name] = module


stub("psbody")
stub("psbody.mesh", Mesh=Mesh)
stub("psbody.mesh.meshviewer", MeshViewer=object)
stub("sbody")
stub("sbody.alignment")
stub("sbody.alignment.objectives", sample_from_mesh=lambda scan, sample_type="vertices": None)
stub("sbody.mesh_distance", ScanToMesh=ScanToMesh)
stub("smpl_webuser")
stub("smpl_webuser.posemapper", Rodrigues=Rodrigues)
sys.path.insert(0, sys.argv[1])
import scan2mesh_computations as official  # noqa: E402


def read_obj(path):
    v, f = [], []
    for line in open(path):
        if line.startswith("v "):
            v.append([float(x) for x in line.split()[1:4]])
        elif line.startswith("f "):
            f.append([int(x.split("/")[0]) - 1 for x in line.split()[1:4]])
    return np.array(v), np.array(f, dtype=np.int64).reshape(-1, 3)


if __name__ == "__main__":
    pred_path, scan_path, scan_lmk_path, out_json = sys.argv[2:6]
    pred_v, pred_f = read_obj(pred_path)
    scan_v, scan_f = read_obj(scan_path)
    scan_lmk = np.loadtxt(scan_lmk_path)
    pred_lmk = pred_v[[33, 133, 362, 263, 2, 61, 291]]  # NOW7_MEDIAPIPE
    start = time.time()
    distances = np.asarray(official.compute_errors(scan_v, scan_f, scan_lmk, pred_v, pred_f, pred_lmk))
    elapsed = time.time() - start
    result = {"median": float(np.median(distances)), "mean": float(distances.mean()), "std": float(distances.std()),
              "count": int(distances.size), "seconds": elapsed}
    json.dump(result, open(out_json, "w"), indent=1)
    print(json.dumps(result))
