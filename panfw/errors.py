"""Errors a user can cause: the CLI prints them without a traceback and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in a recipe, a file, a name or an argument; the message says what would be accepted."""


class RecipeError(UserError):
    """An invalid recipe: names the file, the key path, the bad value and what is accepted."""


class RegistryError(UserError):
    """An unknown or duplicate name, or an unknown option, in one of the registries."""


class DuplicateNameError(RegistryError):
    """A name registered twice in one registry: ``kind``, ``name`` and both plugins are attributes."""

    def __init__(self, kind: str, name: str, first: str, second: str, message: str) -> None:
        super().__init__(message)
        self.kind, self.name, self.first, self.second = kind, name, first, second


class DataError(UserError):
    """A data file or sample that cannot be used: names the file, the key and the sample."""


class PluginError(Exception):
    """A plugin failed to import or register (fatal only under PANFW_STRICT_PLUGINS=1)."""
