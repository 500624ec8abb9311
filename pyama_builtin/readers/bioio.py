"""Reader that delegates to bioio and whatever bioio reader plugins are installed.

Install with the ``[bioio]`` extra plus the bioio plugin for the format (``bioio-nd2``,
``bioio-czi``, ``bioio-lif``, ``bioio-ome-tiff``, ...). It claims no file suffix, so the
built-in readers stay the default; choose it with ``reader: bioio`` in the config. A FOV is a
bioio scene; frames are read one at a time through bioio's lazy (dask) arrays.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pyama_framework.readers import ImageMetadata, Reader, describe_exception, file_error

from ._common import channel_layout

try:
    import bioio
    from bioio.plugins import get_plugins
except ImportError:  # the optional extra is not installed
    bioio = None

_INSTALL = "install it with: pip install 'pyama-framework[bioio]' and the bioio plugin for the format"


class BioioReader(Reader):
    """Read any file an installed bioio plugin supports, frame by frame.

    Parameters
    ----------
    path : Path
        The image file.
    plugin : str, optional
        Name of the bioio plugin to use (e.g. ``"bioio-nd2"``); bioio chooses by default.
    split_rgb : bool
        Read the red, green and blue samples of an RGB file as separate channels.
    """

    library = f"bioio {bioio.__version__}" if bioio is not None else "bioio (not installed)"

    @classmethod
    def check(cls, path: Path) -> str | None:
        if bioio is None:
            return f"bioio is not installed; {_INSTALL}"
        try:
            bioio.BioImage.determine_plugin(str(path))
        except Exception as exc:
            return f"no installed bioio plugin supports it ({describe_exception(exc)})"
        return None

    def __init__(self, path: Path, plugin: str | None = None, split_rgb: bool = False) -> None:
        self.path = Path(path)
        if bioio is None:
            raise file_error(self.path, "reader 'bioio' needs the bioio package", _INSTALL)
        reader_class = self._plugin_reader(plugin)
        try:
            self._image = bioio.BioImage(str(self.path), reader=reader_class)
            scenes = list(self._image.scenes)
            self._scene_shapes = []
            for scene in scenes:
                self._image.set_scene(scene)
                self._scene_shapes.append((dict(self._image.dims.items()), self._image.dtype))
            self._image.set_scene(scenes[0])
            names = [str(n) for n in (self._image.channel_names or [])]
            pixel_size = self._image.physical_pixel_sizes.X
        except Exception as exc:
            raise file_error(self.path, f"bioio cannot open it ({describe_exception(exc)})",
                             "check that the right bioio plugin is installed, or try another reader") from None

        sizes, dtype = self._scene_shapes[0]
        if any(shape != self._scene_shapes[0] for shape in self._scene_shapes):
            raise file_error(self.path, f"scenes differ in shape or type ({self._scene_shapes})",
                             "every FOV must have the same frame shape")
        self._scenes = scenes
        self._rgb = sizes.get("S", 1) > 1
        if len(names) != sizes.get("C", 1):
            names = [f"Channel {i}" for i in range(sizes.get("C", 1))]
        channels, self._sources = channel_layout(self.path, names, sizes.get("S", 1), split_rgb)
        self.metadata = ImageMetadata(
            n_fovs=len(scenes),
            n_frames=sizes.get("T", 1),
            n_z=sizes.get("Z", 1),
            channels=channels,
            height=sizes["Y"],
            width=sizes["X"],
            dtype=str(np.dtype(dtype)),
            pixel_size_um=float(pixel_size) if pixel_size and math.isfinite(pixel_size) else None,
            extra={"plugin": type(self._image.reader).__module__.split(".")[0], "scenes": scenes},
        )

    def _plugin_reader(self, plugin: str | None):
        """The reader class of the bioio plugin called ``plugin`` (None: let bioio choose)."""
        if plugin is None:
            return None
        installed = {entry.entrypoint.name.replace("_", "-"): entry
                     for entries in get_plugins(use_cache=True).values() for entry in entries}
        if plugin.replace("_", "-") not in installed:
            raise file_error(self.path, f"bioio plugin '{plugin}' is not installed "
                             f"(installed: {', '.join(sorted(installed)) or 'none'})",
                             "pip install it or drop 'plugin' from reader_params")
        return installed[plugin.replace("_", "-")].metadata.get_reader()

    def read_frame(self, fov: int, t: int, channel: int, z: int = 0) -> np.ndarray:
        """Return frame ``(fov, t, z)`` of ``channel`` as a new (H, W) array."""
        self.check_indices(fov, t, channel, z)
        plane, sample = self._sources[channel]
        if self._image.current_scene != self._scenes[fov]:
            self._image.set_scene(self._scenes[fov])
        order = "YXS" if self._rgb else "YX"
        try:
            lazy = self._image.get_image_dask_data(order, T=t, C=plane, Z=z)
            frame = np.asarray(lazy.compute())
        except Exception as exc:  # a truncated or damaged file fails here, inside the library
            raise file_error(self.path, f"frame {t} of FOV {fov}, channel {channel}, Z {z} cannot be read "
                                        f"({describe_exception(exc)})", "the file may be truncated; copy it again") from exc
        return np.ascontiguousarray(frame[..., sample] if self._rgb else frame)

    def close(self) -> None:
        close = getattr(self._image, "close", None) or getattr(self._image.reader, "close", None)
        if close is not None:
            close()
