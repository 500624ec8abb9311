"""pytest plugin shipped with pyama-framework (entry point ``pytest11: pyama``).

Installing pyama-framework gives every plugin repository these fixtures:

``pyama_movie``
    A small seeded synthetic movie with ground truth (:class:`FixtureMovie`: 2 FOVs,
    6 frames, 128 x 128, phase + one fluorescence channel, true labels and background).
``pyama_ome_tiff``, ``pyama_nd2``, ``pyama_czi``
    That movie written as a file of each format (CZI needs pylibCZIrw; skipped without it).
``pyama_write_movie``
    ``pyama_write_movie(path, file_format)`` writes the movie anywhere, in any format.
``pyama_run_config``
    ``pyama_run_config(**sections)``: a run config (dict) for the OME-TIFF movie, output in
    the test's tmp folder; sections replace or update the defaults.
``run_pipeline``
    ``run_pipeline(config)`` runs it through the pipeline behind ``pyama run`` and returns
    the traces of every FOV (a DataFrame with a ``fov`` column).

The conformance suites are plain functions in :mod:`pyama_framework.testing.conformance`.
This module imports nothing heavy: pytest loads it in every session of the environment.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def pyama_movie():
    """The fixture movie (seeded; the same pixels and ground truth every session; read-only)."""
    from pyama_framework.testing.fixture_movie import fixture_movie

    return fixture_movie()


@pytest.fixture(scope="session")
def pyama_write_movie(pyama_movie, tmp_path_factory):
    """``pyama_write_movie(path=None, file_format="ome-tiff")``: write the fixture movie."""
    from pyama_framework.testing.fixture_movie import FORMATS, write_movie

    def write(path=None, file_format: str = "ome-tiff"):
        if file_format == "czi":
            pytest.importorskip("pylibCZIrw", reason="writing CZI needs pylibCZIrw (pip install pylibCZIrw)")
        if path is None:
            path = tmp_path_factory.mktemp("pyama-movie") / f"movie{FORMATS[file_format]}"
        return write_movie(pyama_movie, path, file_format)

    return write


@pytest.fixture(scope="session")
def pyama_ome_tiff(pyama_write_movie):
    """The fixture movie as a 2-FOV OME-TIFF."""
    return pyama_write_movie(file_format="ome-tiff")


@pytest.fixture(scope="session")
def pyama_nd2(pyama_write_movie):
    """The fixture movie as a 2-position ND2 file."""
    return pyama_write_movie(file_format="nd2")


@pytest.fixture(scope="session")
def pyama_czi(pyama_write_movie):
    """The fixture movie as a 2-scene CZI file."""
    return pyama_write_movie(file_format="czi")


@pytest.fixture
def pyama_run_config(pyama_ome_tiff, tmp_path):
    """``pyama_run_config(**sections)``: a run config for the OME-TIFF fixture movie."""
    from pyama_framework.testing.conformance import fixture_config

    def make(**sections):
        return fixture_config(sections.pop("input", pyama_ome_tiff), sections.pop("output", tmp_path / "out"),
                              **sections)

    return make


@pytest.fixture(scope="session")
def run_pipeline():
    """``run_pipeline(config, registry=None)``: run a config, return all FOVs' traces."""
    from pyama_framework.testing.conformance import run_pipeline as run

    return run
