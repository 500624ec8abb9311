"""The hook API version of this framework, and the check of a plugin's declared range.

A plugin's entry-point module may declare which hook API versions it works with::

    PYAMA_API = ">=1.0,<2"          # a PEP 440 specifier set (packaging.specifiers)

Discovery refuses a module whose range excludes :data:`HOOK_API_VERSION` with a one-line
reason (shown by ``pyama plugins list``, fatal under ``PYAMA_STRICT_PLUGINS=1``). A module
without ``PYAMA_API`` is accepted. Versioning policy (docs/writing-plugins.md): adding a hook
or an optional registration field bumps the minor version; changing or removing a contract
bumps the major version.
"""

from __future__ import annotations

from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

#: Version of the hook API (hookspecs.py + the registration contracts in types.py).
HOOK_API_VERSION = "1.2"

#: Name of the module attribute a plugin sets to declare the API range it supports.
API_ATTRIBUTE = "PYAMA_API"


def incompatibility(module: Any, provided: str = HOOK_API_VERSION) -> str | None:
    """Why the plugin ``module`` cannot be used with hook API ``provided``, or None.

    Parameters
    ----------
    module : module or object
        A loaded ``pyama.plugins`` entry point.
    provided : str
        The hook API version of the running framework.

    Returns
    -------
    str or None
        A one-line reason naming the declared range and the fix, or None when the module
        declares no range or a range containing ``provided``.
    """
    declared = getattr(module, API_ATTRIBUTE, None)
    if declared is None:
        return None
    where = getattr(module, "__name__", type(module).__name__)
    try:
        spec = SpecifierSet(str(declared))
    except InvalidSpecifier:
        return (f"{API_ATTRIBUTE} = {declared!r} in {where} is not a version range; "
                f"write e.g. {API_ATTRIBUTE} = \">=1.0,<2\"")
    if spec.contains(Version(provided), prereleases=True):
        return None
    return (f"needs pyama hook API {spec} ({API_ATTRIBUTE} in {where}) but this pyama-framework "
            f"provides {provided}; install a pyama-framework providing it or a plugin version "
            f"made for API {provided}")
