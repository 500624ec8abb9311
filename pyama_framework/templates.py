"""The commented config template written by ``pyama config init``."""

CONFIG_TEMPLATE = """\
# pyama run config. Relative paths are relative to this file's folder.
# Validate with: pyama config validate THIS_FILE      Run with: pyama run THIS_FILE
input: data/experiment.nd2          # ND2, CZI, OME-TIFF, TIFF (see: pyama plugins list)
output: out/                         # or s3://bucket/prefix (then storage_options: {endpoint_url: ...}): docs/outputs.md
reader: auto                        # or a reader name; 'pyama plugins doctor FILE' explains the choice
reader_params: {}
pipeline: timelapse                 # or lightsheet (volumes: see docs/lightsheet.md); pyama plugins list
pipeline_params: {}                 # the pipeline's own settings (pyama plugins info lightsheet)
fovs: all                           # or "0-5, 7"
z: {projection: none, plane: 0}     # for files with Z: a plane, or max / mean / sum projection
channels:
  pc: {channel: 0, features: [area, aspect_ratio]}
  fl:                               # intensity_total_unmixed: touching cells' blurred light split between them
    - {channel: 1, features: [intensity_total, intensity_total_unmixed, intensity_mean]}
segmentation: {method: logstd, params: {}}          # pyama plugins info logstd
tracking: {method: lap, params: {}}   # or iou_hungarian (overlap; no drift estimate)
background: {method: tiled_spline, params: {}}
extraction:
  background_weight: 1.0            # intensity = sum(raw - w * background), w in [0, 1]
  min_frames: 30                    # keep cells present in at least this many frames
  border_margin: 50                 # drop cells that come within this many px of an edge
  frame_interval: 10.0              # minutes per frame when the file has no timestamps
  measurement_dilation: 4.0         # fluorescence features: mask grown by this many px (0 = tracked mask)
  psf_sigma: auto                   # intensity_total_unmixed: PSF sigma in px, auto = fitted per frame, 0 = off
cropping: {enabled: true, padding: 5}
caching: {enabled: true}
storage: {codec: lz4, level: 5}             # or zstd (smaller, slower), gzip, none
execution: {executor: local, workers: 2}   # or {executor: dask, address: null, workers: 4}: docs/cluster.md
copy_only: false
"""
