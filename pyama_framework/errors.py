"""Exceptions the CLI turns into one-line messages and a non-zero exit."""


class PyamaError(Exception):
    """A problem the user can fix; the message names the problem and the fix."""


class ConfigError(PyamaError):
    """The config (or a plugin's params in it) is invalid."""


class PluginError(PyamaError):
    """A plugin is unknown, ambiguous, or failed to load."""


class OutputError(PyamaError):
    """The output folder cannot be used for this run."""


class ExecutorError(PyamaError):
    """The executor cannot run (e.g. its dask scheduler cannot be reached)."""
