"""The whole chain (face -> segment -> inpaint -> reconstruct) over images and folders.

``run(inputs, out, options)`` makes one output folder per input holding every intermediate and a
``manifest.json``; reruns reuse fresh intermediates, so a hand-edited mask is picked up and a
finished input is skipped; ``shard=(i, n)`` processes a deterministic 1/n of the inputs.
"""
from .api import run
from .engines import Engines
from .options import STAGES, ItemReport, PipelineOptions, StageRecord
from .plan import parse_shard, select_shard, shard_of
from .runner import run_one

__all__ = ["run", "run_one", "Engines", "STAGES", "ItemReport", "PipelineOptions", "StageRecord", "parse_shard",
           "select_shard", "shard_of"]
