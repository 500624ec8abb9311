"""Light-sheet preprocessing (IsoView's clusterPT step) as the ``lightsheet`` pipeline.

- :mod:`.params`: the ``pipeline_params`` section (pydantic only; imported at discovery);
- :mod:`.corrections`, :mod:`.foreground`, :mod:`.projections`: pure array functions;
- :mod:`.volume_store`: the ``lightsheet.zarr`` layout and shard-aligned writing;
- :mod:`.stages`: the stage table (calibrate -> correct -> diagnostics), streamed in Z slabs;
- :mod:`.diagnostics`: PNG figures; :mod:`.results`: ``open_lightsheet_results``.
"""
