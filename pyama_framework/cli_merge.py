"""``pyama merge``: registered on the main typer app when :mod:`pyama_framework.cli` imports this module."""

from __future__ import annotations

from .cli import app  # noqa: F401  (commands below register on it)
