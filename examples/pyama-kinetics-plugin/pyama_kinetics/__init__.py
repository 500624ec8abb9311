"""Example lab plugin: a fitting model for ``pyama fit``."""
