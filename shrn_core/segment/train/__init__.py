"""Training of the ``learned`` segment backend's network on procedurally occluded clean photos.

Modules: ``pack`` (aligned training faces in one file, built with face analysis), ``shapes`` /
``textures`` / ``occluders`` (procedural occluders in torch), ``augment`` (geometric sampling and
photometric augmentation), ``data`` (batch sources), ``loop`` (the time-budgeted, resumable training
loop), ``preview`` (contact sheets). Command line: ``python -m shrn_core.segment.train --help``.
Only torch, numpy and OpenCV are needed to train (no mediapipe), so it runs on a bare GPU machine.
"""
