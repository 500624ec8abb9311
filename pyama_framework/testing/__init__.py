"""Test support shipped with pyama-framework.

For plugin authors (the plugin kit, docs/writing-plugins.md): :mod:`.pytest_plugin` (pytest
fixtures, registered through the ``pytest11`` entry point), :mod:`.conformance` (one
contract suite per plugin kind) and :mod:`.fixture_movie` (the seeded movie with ground
truth behind the fixtures). The other modules generate synthetic scenes and write real
microscopy files for the project's own tests and benchmarks.
"""
