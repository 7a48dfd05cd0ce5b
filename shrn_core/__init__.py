"""shrn: occlusion-robust 3D face reconstruction (SegmentationHRN made practical)."""
__version__ = "0.1.0"
