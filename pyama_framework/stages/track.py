"""Stage 3: link per-frame labels into cell identities with the configured tracker.

Besides the tracked label stack, the stage writes the FOV's lineage, ``tracks.csv``: one row
per track with its first and last frame and its parent (the mother of a division, 0 when
none), the meaning of the Cell Tracking Challenge's ``res_track.txt``.
"""

from __future__ import annotations

from pathlib import Path
from contextlib import closing

import numpy as np

from ..store import atomic_write_text
from ..types import TrackedFrame
from .context import Cancelled, FovContext, StageError, label_image_and_ids, seg_labeled_name, seg_tracked_name
from .frames import FrameWriter, read_ahead
from .levels import LevelWriter

STAGE = "track"
TRACKS_FILENAME = "tracks.csv"
TRACKS_COLUMNS = ("cell", "first_frame", "last_frame", "parent")


def tracks_path(ctx: FovContext) -> Path:
    return ctx.store.root / TRACKS_FILENAME


class Lineage:
    """First and last frame of every track, and the parents trackers report, built frame by frame."""

    def __init__(self) -> None:
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.parent: dict[int, int] = {}

    def add(self, t: int, cells: np.ndarray, parents: dict[int, int], who: str) -> None:
        """Note the tracks present in frame ``t`` (``cells``, IDs > 0) and their parents."""
        for cell in cells.tolist():
            self.first.setdefault(cell, t)
            self.last[cell] = t
        for daughter, mother in parents.items():
            daughter, mother = int(daughter), int(mother)
            if self.first.get(daughter) != t:
                raise StageError(f"{who} gave a parent to track {daughter} in frame {t}, where it does not start")
            if mother not in self.last or self.last[mother] >= t:
                raise StageError(f"{who} gave track {daughter} the parent {mother}, which is not a track "
                                 f"that ended before frame {t}")
            self.parent[daughter] = mother

    def to_csv(self) -> str:
        rows = [",".join(TRACKS_COLUMNS)]
        rows += [f"{c},{self.first[c]},{self.last[c]},{self.parent.get(c, 0)}" for c in sorted(self.first)]
        return "\n".join(rows) + "\n"


def run(ctx: FovContext) -> dict:
    selected = ctx.resolved.tracker
    track = selected.registration.load()
    who = f"tracker '{selected.registration.name}'"
    labeled = ctx.store.frames(seg_labeled_name(ctx))
    out = ctx.store.create_stack(seg_tracked_name(ctx), labeled.shape, np.uint16)
    tracks_path(ctx).unlink(missing_ok=True)
    lineage = Lineage()

    frames = read_ahead(labeled.__getitem__, ctx.n_frames)  # streamed: the tracker never holds the stack

    written, top = 0, 0
    level = LevelWriter(ctx, seg_tracked_name(ctx), out.shape, out.dtype, labels=True)
    try:
        with FrameWriter(level.storing(out)) as writer, closing(frames):
            for t, item in enumerate(track(frames, **selected.kwargs())):
                if t >= ctx.n_frames:
                    raise StageError(f"{who} yielded more frames than it was given ({ctx.n_frames})")
                given, parents = (item.labels, dict(item.parents)) if isinstance(item, TrackedFrame) else (item, {})
                tracked, cells = label_image_and_ids(given, ctx.frame_shape, who)
                lineage.add(t, cells, parents, who)
                # stored later, on the writer's thread: a copy, in case the tracker reuses its array
                writer.put(t, tracked.copy() if tracked is given else tracked)
                top = max(top, int(cells[-1]) if cells.size else 0)
                written = t + 1
                ctx.tick(STAGE, written, ctx.n_frames)
    except (StageError, Cancelled):
        raise
    except Exception as exc:
        raise StageError(f"{who} failed: {type(exc).__name__}: {exc}") from exc
    finally:
        if written != ctx.n_frames:
            level.close()  # failed or interrupted: no level, no scratch file left behind
    if written != ctx.n_frames:
        raise StageError(f"{who} yielded {written} frames for {ctx.n_frames} inputs")
    out.attrs["max_label"] = top  # lets a viewing level scale labels without a second pass
    level.finish_behind(top)
    atomic_write_text(tracks_path(ctx), lineage.to_csv())
    return {"tracks": len(lineage.first), "divisions": len(lineage.parent)}
