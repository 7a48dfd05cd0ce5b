"""Fuzzing every file shrn reads: the reader table (``readers.READERS``), seeded mutations
(``mutate``), a watched worker process (``worker``) and the driver (``harness``).

Used by ``tests/test_fuzz.py`` (a few hundred cases in CI) and ``benchmarks/fuzz.py`` (``--long``:
thousands, recorded in docs/benchmarks.md). See ``readers.py`` for adding a file type.
"""
