"""The default plugins of pyama-framework.

Each subpackage is a light registration module (parameter models and hook implementations)
exposed through the ``pyama.plugins`` entry-point group, exactly as a lab's plugin would be.
The algorithms live in sibling modules that are imported only when a plugin runs.
"""
