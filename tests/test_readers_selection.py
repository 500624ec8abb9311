"""Reader selection, the feasibility report, and every kind of bad input, per format."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from _reader_files import movie, write_czi, write_nd2_movie, write_ome_series, write_plain_stack
from pyama_framework.errors import ConfigError
from pyama_framework.readers import ReaderError, feasibility_report, open_reader, select_reader
from pyama_framework.registry import Registry, discover
from pyama_framework.types import ProvidedRegistration, ReaderRegistration

WRITERS = {
    "m.nd2": write_nd2_movie,
    "m.czi": write_czi,
    "m.ome.tif": write_ome_series,
    "m.tif": write_plain_stack,
}
EXPECTED_READER = {"m.nd2": "nd2", "m.czi": "czi", "m.ome.tif": "tiff", "m.tif": "tiff"}


@pytest.fixture(scope="module")
def registry() -> Registry:
    return discover()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("formats")
    data = movie(n_fov=2, n_t=3)
    return {name: writer(folder / name, data) for name, writer in WRITERS.items()}


def one_line_error(exc_info, path: Path) -> str:
    message = str(exc_info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message, message
    return message


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_auto_selection_by_suffix_and_content(registry, files, name):
    assert select_reader(files[name], registry).name == EXPECTED_READER[name]


def test_most_specific_suffix_wins_and_explicit_reader_is_used(registry, files, tmp_path):
    # A second reader claiming only '.tif' loses to the one claiming '.ome.tif' ...
    tiff = registry.get("reader", "tiff")
    generic = ReaderRegistration(name="generic_tif", summary="x", implementation=tiff.implementation,
                                 params=tiff.params, suffixes=(".tif",))
    more = with_readers(registry, generic)
    assert select_reader(files["m.ome.tif"], more).name == "tiff"
    # ... ties at the same suffix are an error naming both candidates ...
    with pytest.raises(ReaderError, match=r"several readers accept this file \(generic_tif, tiff\)"):
        select_reader(files["m.tif"], more)
    # ... and an explicit reader wins over the suffix rules.
    assert select_reader(files["m.tif"], more, "generic_tif").name == "generic_tif"
    with pytest.raises(ReaderError, match=r"reader 'nd2' cannot open it: not an ND2 file"):
        select_reader(files["m.tif"], registry, "nd2")


def with_readers(registry: Registry, *extra: ReaderRegistration) -> Registry:
    entries = {kind: dict(by_name) for kind, by_name in registry.entries.items()}
    for reg in extra:
        entries["reader"][reg.name] = [ProvidedRegistration(reg, "test", "0")]
    return Registry(entries=entries)


def test_feasibility_report_gives_every_readers_verdict(registry, files):
    verdicts = {v.name: v for v in feasibility_report(files["m.ome.tif"], registry)}
    assert verdicts["tiff"].accepted and verdicts["tiff"].reason == "suffix and content check pass"
    assert not verdicts["nd2"].accepted and "suffix not claimed" in verdicts["nd2"].reason
    assert not verdicts["bioio"].accepted  # claims no suffix: says whether naming it would work
    if importlib.util.find_spec("bioio_ome_tiff"):
        assert "set 'reader: bioio'" in verdicts["bioio"].reason
    elif not importlib.util.find_spec("bioio"):
        assert "bioio is not installed" in verdicts["bioio"].reason
    wrong = {v.name: v for v in feasibility_report(files["m.nd2"], registry)}
    assert wrong["nd2"].accepted


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_missing_directory_empty_and_foreign_content(registry, tmp_path, name):
    missing = tmp_path / name
    with pytest.raises(ReaderError, match="file not found") as info:
        select_reader(missing, registry)
    one_line_error(info, missing)

    folder = tmp_path / "folder" / name
    folder.mkdir(parents=True)
    with pytest.raises(ReaderError, match="is a directory") as info:
        select_reader(folder, registry)
    one_line_error(info, folder)

    empty = tmp_path / "empty" / name
    empty.parent.mkdir()
    empty.write_bytes(b"")
    with pytest.raises(ReaderError, match="file is empty") as info:
        select_reader(empty, registry)
    one_line_error(info, empty)

    foreign = tmp_path / "foreign" / name
    foreign.parent.mkdir()
    foreign.write_bytes(b"PK\x03\x04 this is a zip archive, not an image" * 10)
    with pytest.raises(ReaderError, match=r"no reader can open this file \(.*not an? (ND2|CZI|TIFF) file") as info:
        select_reader(foreign, registry)
    one_line_error(info, foreign)


@pytest.mark.parametrize("fraction", [0.5, 0.97])
@pytest.mark.parametrize("name", sorted(WRITERS))
def test_truncated_files_fail_at_open(registry, files, tmp_path, name, fraction):
    content = files[name].read_bytes()
    cut = tmp_path / name
    cut.write_bytes(content[: int(len(content) * fraction)])
    reader = select_reader(cut, registry)  # the header is intact, so the suffix's reader is chosen
    with pytest.raises(ReaderError, match="truncated") as info:
        open_reader(cut, reader, {"axes": "PTZCYX", "sizes": {"P": 2, "T": 3, "Z": 1}} if name == "m.tif" else {})
    one_line_error(info, cut)


@pytest.mark.parametrize("name", sorted(WRITERS))
def test_opened_files_have_the_right_shape_and_refuse_foreign_indices(registry, files, name):
    params = {"axes": "PTCYX", "sizes": {"P": 2, "C": 2}} if name == "m.tif" else {}
    with open_reader(files[name], select_reader(files[name], registry), params) as reader:
        meta = reader.metadata
        assert (meta.n_fovs, meta.n_frames, meta.n_channels, meta.height, meta.width) == (2, 3, 2, 24, 32)
        for args, what in (((2, 0, 0), "FOV"), ((0, 3, 0), "frame"), ((0, 0, 2), "channel"), ((0, 0, 0, 1), "Z plane")):
            with pytest.raises(ReaderError, match=f"{what} index") as info:
                reader.read_frame(*args)
            one_line_error(info, files[name])


def test_invalid_reader_params_are_a_config_error(registry, files):
    with pytest.raises(ConfigError, match="reader_params for reader 'tiff': axes"):
        open_reader(files["m.tif"], registry.get("reader", "tiff"), {"axes": "XY"})
    with pytest.raises(ConfigError, match="unknown_option"):
        open_reader(files["m.nd2"], registry.get("reader", "nd2"), {"unknown_option": 1})


def test_plugins_doctor_shows_every_verdict_and_the_choice(files):
    from conftest import pyama

    result = pyama("plugins", "doctor", str(files["m.nd2"]))
    assert result.returncode == 0, result.stderr
    for name in ("nd2", "czi", "tiff", "bioio"):
        assert name in result.stdout
    assert "chosen reader: nd2" in result.stdout
    refused = pyama("plugins", "doctor", str(files["m.nd2"].with_name("nope.nd2")))
    assert refused.returncode != 0 and "file not found" in refused.stderr
