"""Merge the per-FOV traces of one or several runs into per-sample tables (``pyama merge``).

A samples file (YAML) names the results folders and assigns FOVs to samples::

    results: [day1, day2]            # one folder or a list, relative to this file
    samples:
      - name: control
        fovs: {day1: "0-3", day2: "0-1"}   # per results folder (its folder name)
        condition: untreated         # any further key is free metadata
      - name: drug
        fovs: {day1: "4-7"}

With one results folder, ``fovs`` is pyama-core's form (``"0-5, 7"``, a list, or ``all``),
so pyama-core's samples files (which lack ``results:``) work with ``--results DIR``. With
several folders the same FOV index usually exists in each, so ``fovs`` names the folder;
every output row carries a ``results`` column (the folder name) beside ``fov``, and a cell
is identified by (``results``, ``fov``, ``cell``).

Nothing is written until every input has been read and checked; the files are then
written to temporary names and renamed, so a failed merge leaves no partial output.
"""

from .samples import MergePlan, ResultsFolder, SampleSpec, SamplesFile, load_samples, open_results, plan_merge
from .traces import (FEATURE_COLUMN, LONG_COLUMNS, MergeError, header_lines, read_header, read_traces,
                     to_long)
from .write import LONG_NAME, Merged, merge, output_files, write_merged

__all__ = ["FEATURE_COLUMN", "LONG_COLUMNS", "LONG_NAME", "MergeError", "MergePlan", "Merged", "ResultsFolder",
           "SampleSpec", "SamplesFile", "header_lines", "load_samples", "merge", "open_results", "output_files",
           "plan_merge", "read_header", "read_traces", "to_long", "write_merged"]
