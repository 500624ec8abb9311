"""The example plugin keeps pyama's contracts (the kit's conformance suites) and segments
the fixture movie's cells."""

import numpy as np

from pyama_framework.testing.conformance import check_feature, check_segmenter

from pyama_otsu.plugin import pyama_features, pyama_segmenters


def test_otsu_keeps_the_segmenter_contract(tmp_path):
    (registration,) = pyama_segmenters()
    check_segmenter(registration, tmp_path=tmp_path)


def test_major_axis_keeps_the_feature_contract(tmp_path):
    (registration,) = pyama_features()
    check_feature(registration, tmp_path=tmp_path)


def test_otsu_finds_about_as_many_cells_as_the_ground_truth(pyama_movie):
    from pyama_otsu.algorithms import segment_otsu

    image, truth = pyama_movie.phase[0, 0], pyama_movie.labels[0, 0]
    found = segment_otsu(image, sigma=1.0, dark_cells=True, min_size=30)
    n_true = len(np.unique(truth)) - 1
    assert abs((len(np.unique(found)) - 1) - n_true) <= max(1, n_true // 3)
