"""napari widget: the trace of the cell under the cursor, or selected in the tracked labels.

It follows every tracked-labels layer the pyama reader opened (they carry the results folder
and FOV in their metadata): hovering over a cell, or picking one with the labels layer's
label selector, plots that cell's trace of the chosen feature against time, with a marker at
the frame on display.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtWidgets import QComboBox, QLabel, QVBoxLayout, QWidget

from .tracks import feature_names


class TraceWidget(QWidget):
    """Plot the trace of one cell of a pyama result opened in napari."""

    def __init__(self, napari_viewer: Any) -> None:
        super().__init__()
        self.viewer = napari_viewer
        self.layer: Any = None          # the tracked labels layer of the cell shown
        self.cell: int | None = None    # the cell shown (its label value)
        self._traces: dict[tuple[str, int], pd.DataFrame] = {}
        self._followed: set[int] = set()

        self.feature = QComboBox()
        self.feature.currentTextChanged.connect(lambda _: self._redraw())
        self.status = QLabel("Hover over a cell, or select one in the tracked labels layer.")
        self.status.setWordWrap(True)
        self.figure = Figure(figsize=(4, 3), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.axes = self.figure.add_subplot()
        self.line = self.axes.plot([], [], marker=".")[0]
        self.marker = self.axes.axvline(0, color="0.5", linestyle=":", visible=False)

        layout = QVBoxLayout(self)
        layout.addWidget(self.feature)
        layout.addWidget(self.status)
        layout.addWidget(self.canvas)

        self.viewer.layers.events.inserted.connect(lambda _=None: self._follow_layers())
        self.viewer.mouse_move_callbacks.append(self._on_mouse_move)
        self.viewer.dims.events.current_step.connect(lambda _=None: self._move_marker())
        self._follow_layers()

    # ------------------------------------------------------------------ layers
    def tracked_layers(self) -> list[Any]:
        return [layer for layer in self.viewer.layers
                if layer.metadata.get("pyama", {}).get("role") == "tracked"]

    def _follow_layers(self) -> None:
        for layer in self.tracked_layers():
            if id(layer) in self._followed:
                continue
            self._followed.add(id(layer))
            layer.events.selected_label.connect(
                lambda event, layer=layer: self.show_cell(layer, int(layer.selected_label)))
            if self.layer is None:
                self.layer = layer
                self._fill_features(layer)

    def traces_of(self, layer: Any) -> pd.DataFrame:
        """The traces of the layer's FOV (read once per FOV)."""
        from .. import open_results

        where = layer.metadata["pyama"]
        key = (where["results"], int(where["fov"]))
        if key not in self._traces:
            self._traces[key] = open_results(where["results"], partial=True).traces(key[1])
        return self._traces[key]

    def _fill_features(self, layer: Any) -> None:
        names = feature_names(self.traces_of(layer))
        self.feature.blockSignals(True)
        self.feature.clear()
        self.feature.addItems(names)
        preferred = [n for n in names if n.startswith("intensity_total")]
        if preferred:
            self.feature.setCurrentText(preferred[0])
        self.feature.blockSignals(False)

    # ------------------------------------------------------------------ events
    def _on_mouse_move(self, viewer: Any, event: Any) -> None:
        for layer in self.tracked_layers():
            if not layer.visible:
                continue
            value = layer.get_value(event.position, view_direction=event.view_direction,
                                    dims_displayed=event.dims_displayed, world=True)
            if value is not None and int(value) > 0:
                if layer is not self.layer or int(value) != self.cell:
                    self.show_cell(layer, int(value))
                return

    def show_cell(self, layer: Any, cell: int) -> None:
        """Plot ``cell`` of ``layer``'s FOV (0 clears the plot)."""
        if layer is not self.layer:
            self.layer = layer
            self._fill_features(layer)
        self.cell = cell if cell > 0 else None
        self._redraw()

    def _redraw(self) -> None:
        feature = self.feature.currentText()
        rows = pd.DataFrame()
        if self.layer is not None and self.cell is not None and feature:
            traces = self.traces_of(self.layer)
            rows = traces[traces["cell"] == self.cell].sort_values("frame")
        fov = self.layer.metadata["pyama"]["fov"] if self.layer is not None else None
        if self.cell is None:
            self.status.setText("Hover over a cell, or select one in the tracked labels layer.")
        elif rows.empty:
            self.status.setText(f"FOV {fov}, cell {self.cell}: not in the traces "
                                "(removed by the min_frames or border_margin filter)")
        else:
            self.status.setText(f"FOV {fov}, cell {self.cell}: {len(rows)} frames")
        self.line.set_data(rows["time"].to_numpy() if not rows.empty else [],
                           rows[feature].to_numpy() if not rows.empty else [])
        self.axes.set_xlabel("time (min)")
        self.axes.set_ylabel(feature)
        self.axes.set_title(f"cell {self.cell}" if self.cell is not None else "")
        self.axes.relim()
        self.axes.autoscale_view()
        self._move_marker(draw=False)
        self.canvas.draw_idle()

    def _move_marker(self, draw: bool = True) -> None:
        """A dotted line at the time of the frame on display."""
        if self.layer is None:
            return
        frame = int(self.viewer.dims.current_step[0])
        traces = self.traces_of(self.layer)
        times = traces.loc[traces["frame"] == frame, "time"]
        visible = not times.empty and self.cell is not None
        if visible:
            self.marker.set_xdata([float(times.iloc[0])] * 2)
        self.marker.set_visible(visible)
        if draw:
            self.canvas.draw_idle()

