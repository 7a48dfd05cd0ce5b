"""Reading, writing and validating every file shrn produces (see docs/formats.md)."""
from .core import SCHEMA_VERSION, atomic_write, ensure_dir, image_stem, output_path, read_json, write_bytes, write_json
from .image import DEFAULT_MAX_PIXELS, max_pixels, read_gray, read_image, read_image_raw, set_max_pixels, to_rgb8, write_image

__all__ = [
    "SCHEMA_VERSION", "atomic_write", "ensure_dir", "image_stem", "output_path", "read_json", "write_bytes",
    "write_json", "DEFAULT_MAX_PIXELS", "max_pixels", "read_gray", "read_image", "read_image_raw", "set_max_pixels",
    "to_rgb8", "write_image",
]
