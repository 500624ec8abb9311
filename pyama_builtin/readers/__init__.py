"""Built-in readers: Nikon ND2, Zeiss CZI, (OME-)TIFF and, with the ``[bioio]`` extra, bioio.

A light registration module: parameter models and the ``pyama_readers`` hook. The readers
themselves live in the sibling modules and import their libraries only when a file is opened.

Selection: ``.nd2`` -> ``nd2``, ``.czi`` -> ``czi``, ``.ome.tif(f)`` / ``.tif(f)`` -> ``tiff``;
``bioio`` claims no suffix and is used when the config says ``reader: bioio``.
Light-sheet volumes: ``.klb`` -> ``klb``, ``.stack`` -> ``isoview_stack``; both also open a
``TMxxxxx/`` folder (or the folder of many), each view (camera x channel) being one channel.

RGB files: pyama needs one grayscale image per channel, so an RGB file is an error unless
``reader_params: {split_rgb: true}``, which reads red, green and blue as separate channels
(channel ``3 * c + s`` is sample ``s`` of the file's channel ``c``).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from pyama_framework import ReaderRegistration, hookimpl
from pyama_framework.readers import FOLDER_SUFFIX
from pyama_framework.types import PluginParams

_SPLIT_RGB = ("Read an RGB file's red, green and blue samples as separate channels "
              "(channel 3*c+s is sample s of channel c); without it an RGB file is an error")


class ND2Params(PluginParams):
    """Parameters of the ``nd2`` reader."""

    split_rgb: bool = Field(False, description=_SPLIT_RGB)


class CziParams(PluginParams):
    """Parameters of the ``czi`` reader."""

    split_rgb: bool = Field(False, description=_SPLIT_RGB)


class TiffParams(PluginParams):
    """Parameters of the ``tiff`` reader (OME-TIFF and plain multi-page TIFF)."""

    axes: str | None = Field(
        None, min_length=2, max_length=7, pattern=r"^[PTCZ]{0,4}YXS?$",
        description=("Axis order of the image data, outermost first, ending in YX (YXS for RGB): "
                     "P = position/FOV, T = time, C = channel, Z = plane, e.g. 'TCYX'. Only needed "
                     "when the file does not record its axes (plain page stacks); replaces the "
                     "recorded axes when given"),
    )
    sizes: dict[Literal["P", "T", "C", "Z"], Annotated[int, Field(ge=1, le=10_000_000)]] = Field(
        default_factory=dict, max_length=4,
        description=("Sizes of the axes named in 'axes' when the file records no shape (a plain "
                     "sequence of pages), e.g. {C: 2}; one axis may be left out and is inferred "
                     "from the page count"),
    )
    split_rgb: bool = Field(False, description=_SPLIT_RGB)

    @field_validator("axes")
    @classmethod
    def _axes_unique(cls, axes: str | None) -> str | None:
        if axes is not None and len(set(axes)) != len(axes):
            raise ValueError(f"axes {axes!r} names an axis twice")
        return axes


class BioioParams(PluginParams):
    """Parameters of the ``bioio`` reader."""

    plugin: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$",
        description=("Installed bioio reader plugin to use (e.g. 'bioio-nd2'); by default bioio "
                     "picks one from the file"),
    )
    split_rgb: bool = Field(False, description=_SPLIT_RGB)


_VIEWS = ("Read only these {} (default: every one found); an index the data does not have "
          "is an error")


class KlbParams(PluginParams):
    """Parameters of the ``klb`` reader."""

    cameras: list[Annotated[int, Field(ge=0)]] | None = Field(None, description=_VIEWS.format("cameras"))
    channels: list[Annotated[int, Field(ge=0)]] | None = Field(None, description=_VIEWS.format("channels"))
    decoder: Literal["auto", "python", "pyklb"] = Field(
        "auto", description="Block decoder: 'auto' uses pyklb when installed, else the numpy/bz2 decoder")
    threads: int = Field(0, ge=0, le=64, description="Decompression threads (0: number of CPUs, at most 8)")


class IsoviewStackParams(PluginParams):
    """Parameters of the ``isoview_stack`` reader."""

    cameras: list[Annotated[int, Field(ge=0)]] | None = Field(None, description=_VIEWS.format("cameras"))
    channels: list[Annotated[int, Field(ge=0)]] | None = Field(None, description=_VIEWS.format("channels"))


@hookimpl
def pyama_readers():
    yield ReaderRegistration(
        name="nd2",
        summary="Nikon ND2 (nd2 library): positions, time, Z, channels; frames read lazily",
        implementation="pyama_builtin.readers.nd2:ND2Reader",
        params=ND2Params,
        suffixes=(".nd2",),
    )
    yield ReaderRegistration(
        name="czi",
        summary="Zeiss CZI (czifile): scenes, time, Z, channels; read subblock by subblock",
        implementation="pyama_builtin.readers.czi:CziReader",
        params=CziParams,
        suffixes=(".czi",),
    )
    yield ReaderRegistration(
        name="tiff",
        summary="OME-TIFF (positions as series or a P axis) and multi-page TIFF stacks (tifffile)",
        implementation="pyama_builtin.readers.tiff:TiffReader",
        params=TiffParams,
        suffixes=(".ome.tif", ".ome.tiff", ".tif", ".tiff"),
    )
    yield ReaderRegistration(
        name="bioio",
        summary="Any format an installed bioio reader plugin supports (extra [bioio]); select by name",
        implementation="pyama_builtin.readers.bioio:BioioReader",
        params=BioioParams,
    )
    yield ReaderRegistration(
        name="klb",
        summary="KLB light-sheet volumes (file or TM folder tree); Z slabs decoded block by block",
        implementation="pyama_builtin.readers.klb:KlbReader",
        params=KlbParams,
        suffixes=(".klb", FOLDER_SUFFIX),
    )
    yield ReaderRegistration(
        name="isoview_stack",
        summary="IsoView raw .stack volumes + channel XML (file or TM folder tree); read plane by plane",
        implementation="pyama_builtin.readers.isoview_stack:IsoviewStackReader",
        params=IsoviewStackParams,
        suffixes=(".stack", FOLDER_SUFFIX),
    )
