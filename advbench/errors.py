"""The one exception type users see.

Anything raised as `AdvbenchError` is printed by the CLI as a single line naming what is wrong
and turned into a non-zero exit; every other exception is a bug and keeps its traceback.
"""


class AdvbenchError(Exception):
    """A problem with the user's input or environment (bad flag, file, plugin or value)."""


class DataError(AdvbenchError):
    """A dataset file is missing, truncated, corrupted or not what it claims to be."""


class ParamError(AdvbenchError):
    """A model or attack parameter is unknown or has an invalid value."""


class PluginError(AdvbenchError):
    """A plugin could not be loaded, registered a duplicate name, or a name is unknown."""


class ModelError(AdvbenchError):
    """A model whose outputs cannot be right (wrong shape, NaN or infinite logits)."""
