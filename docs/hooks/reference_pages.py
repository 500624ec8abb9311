"""mkdocs hook: the config and plugin reference pages, generated from the code at build time.

The pages exist only in the built site (``reference/config.md``, ``reference/plugins.md``);
their text comes from :mod:`pyama_framework.reference`, so they list exactly what the
installed code accepts and registers.
"""

from __future__ import annotations

from mkdocs.structure.files import File, Files


def on_files(files: Files, config) -> Files:
    from pyama_framework.reference import config_reference, plugin_reference
    from pyama_framework.registry import discover

    pages = {"reference/config.md": config_reference(),
             "reference/plugins.md": plugin_reference(discover(strict=False))}
    for path, content in pages.items():
        files.append(File.generated(config, path, content=content))
    return files
