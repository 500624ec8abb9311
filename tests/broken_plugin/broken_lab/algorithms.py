"""Implementations of the broken plugin: each breaks one rule (named in its docstring)."""

import numpy as np

from pyama_framework import ImageMetadata, Reader
from pyama_framework.readers import ChannelInfo


def segment_ok(image, *, sigma=1.0):
    """A correct threshold segmenter (labels = connected dark regions)."""
    from skimage.measure import label

    return label(image < image.mean() - image.std()).astype(np.int32)


def segment_inplace(image):
    """Breaks: modifies its input (thresholds in place)."""
    image[image > image.mean()] = 0
    return segment_ok(image)


def segment_float(image):
    """Breaks: returns float labels."""
    return segment_ok(image).astype(np.float64)


def segment_random(image):
    """Breaks: not deterministic (unseeded random threshold)."""
    jitter = np.random.default_rng().normal(0, image.std() / 4)
    from skimage.measure import label

    return label(image < image.mean() - image.std() + jitter).astype(np.int32)


_calls = {"n": 0}


def segment_wrong_shape_later(image):
    """Breaks (only in a run): from the fifth call on, returns a cropped label image."""
    _calls["n"] += 1
    labels = segment_ok(image)
    return labels[1:] if _calls["n"] > 4 else labels


def track_hoarding(label_frames):
    """Breaks: materialises the whole movie before yielding (labels passed through)."""
    frames = [np.asarray(f) for f in label_frames]
    yield from frames


def track_short(label_frames):
    """Breaks: yields one frame less than it was given."""
    previous = None
    for frame in label_frames:
        if previous is not None:
            yield previous
        previous = frame


def background_float64(image, labels):
    """Breaks: returns float64 instead of float32."""
    return np.full(image.shape, float(np.median(image[labels == 0])))


def mean_intensity(mask, image, background):
    """Mean of image - background over the mask (correct)."""
    corrected = image.astype(np.float64) - (0 if background is None else background)
    return float(corrected[mask].mean())


def mean_intensity_frame(cell_frame):
    """Breaks: forgets to subtract the background, so it differs from the per-cell path."""
    values = []
    for i in range(len(cell_frame.cell_ids)):
        mask, image, _ = cell_frame.crops(i)
        values.append(float(image[mask].mean()))
    return np.array(values)


class NpyReader(Reader):
    """Breaks: reads (T, C, H, W) .npy files but lets numpy's errors escape on damaged files."""

    @classmethod
    def check(cls, path):
        return None

    def __init__(self, path):
        self.path = path
        self._data = np.load(path, mmap_mode="r")
        t, c, h, w = self._data.shape
        self.metadata = ImageMetadata(1, t, tuple(ChannelInfo(i, f"c{i}") for i in range(c)), h, w,
                                      str(self._data.dtype))

    def read_frame(self, fov, t, channel, z=0):
        return np.array(self._data[t, channel])


def exponential(t, *, amplitude, rate):
    """amplitude * exp(-rate t)."""
    return amplitude * np.exp(-rate * t)


def exponential_wrong_jacobian(t, *, amplitude, rate):
    """Breaks: the rate column lacks the minus sign."""
    e = np.exp(-rate * t)
    return {"amplitude": e, "rate": amplitude * t * e}
