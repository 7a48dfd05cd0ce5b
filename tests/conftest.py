"""Shared fixtures: the real photos in ../shared/data (read in place, never copied into the repo)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    env = os.environ.get("SHRN_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"shared test data not found at {path}")
        pytest.skip(f"shared test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def hrn_photo(shared_data) -> Path:
    """A 1024x1024-ish frontal studio portrait."""
    return shared_data / "faces_hrn" / "single_view_image__00016.png"


@pytest.fixture(scope="session")
def two_face_photo(shared_data) -> Path:
    return shared_data / "faces_3ddfa" / "trump_hillary.jpg"


@pytest.fixture(scope="session")
def clean_photos(shared_data) -> list[Path]:
    """All unoccluded photos (faces_hrn, faces_deca, faces_3ddfa)."""
    files = []
    for folder in ("faces_hrn", "faces_deca", "faces_3ddfa"):
        files += sorted((shared_data / folder).iterdir())
    return files
