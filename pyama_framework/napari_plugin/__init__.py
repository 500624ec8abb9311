"""The napari plugin (extra ``[napari]``): a reader for results folders, a cell-trace widget
and the demo result as sample data. ``napari.yaml`` is the npe2 manifest; nothing here is
imported until napari calls one of its commands."""
