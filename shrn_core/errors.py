"""Error types with stable exit codes; the CLI prints ``str(err)`` as one line and exits with ``err.exit_code``.

Exit codes (documented in README):
  0 ok · 1 some inputs of a batch failed · 2 bad input (missing/corrupt file, bad option)
  3 face problem (no face, face index out of range) · 4 missing or wrong weights/assets
  5 invalid intermediate file · 6 output not writable · 7 numerical failure (NaN/inf)
"""
from __future__ import annotations


class ShrnError(Exception):
    exit_code = 1

    def __init__(self, message: str, path: object | None = None):
        self.path = str(path) if path is not None else None
        text = f"{self.path}: {message}" if self.path else str(message)
        # one line, as the CLI promises, whatever a file (or its name) held
        super().__init__(text.replace("\r\n", " ").replace("\n", " ").replace("\r", " "))


class InputError(ShrnError):
    exit_code = 2


class FaceError(ShrnError):
    exit_code = 3


class WeightsError(ShrnError):
    exit_code = 4


class FormatError(ShrnError):
    exit_code = 5


class OutputError(ShrnError):
    exit_code = 6


class NumericalError(ShrnError):
    exit_code = 7
