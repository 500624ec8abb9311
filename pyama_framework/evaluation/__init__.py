"""Evaluation against ground truth and export to the Cell Tracking Challenge format.

Python API (used by ``pyama evaluate``, ``pyama export ctc`` and the benchmarks)::

    from pyama_framework.evaluation import score, load_truth, open_run, export_ctc

    scores = score(found_labels, truth, found_tracks=None, found_traces=None)   # -> dict

See docs/evaluation.md for every measure and rule.
"""

from .ctc_export import export_ctc, mask_name, write_ctc_result, write_ctc_truth
from .metrics import score
from .results import RunFov, open_run
from .truth import CtcTruth, EvaluationError, StackTruth, Truth, TruthFrame, load_truth

__all__ = ["CtcTruth", "EvaluationError", "RunFov", "StackTruth", "Truth", "TruthFrame", "export_ctc",
           "load_truth", "mask_name", "open_run", "score", "write_ctc_result",
           "write_ctc_truth"]
