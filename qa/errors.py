"""Every error the package raises on purpose, under one base: :class:`QAError`. Imports nothing from ``qa``.

Each message says what was wrong and what to do; none advises a step that could destroy good data. The
classes also derive from the built-in error they stood for before (``RuntimeError``, ``ValueError``), so code
that caught those still works.
"""

from __future__ import annotations


class QAError(Exception):
    """Base of the package's own errors."""


class IndexUnusable(QAError, RuntimeError):
    """The index cannot be used as it is; the message says what to do."""


class DiskFull(IndexUnusable):
    """The disk under the index is full; nothing was changed, and nothing is damaged."""


class IndexReadOnly(IndexUnusable):
    """The index folder cannot be written (a read-only mount, no permission); it can still be searched."""


class SettingsMismatch(IndexUnusable):
    """The index was built with other settings; mixing vectors would give wrong results."""


class ConfigError(QAError, ValueError):
    """A setting (a ``QA_*`` variable, a flag) that cannot be used; the message names it and the fix."""


class ModelError(QAError, RuntimeError):
    """The configured model could not be loaded."""


class CorpusNotFound(QAError, ValueError):
    """The corpus folder does not exist; syncing would remove every article from the index."""


class MassRemoval(QAError, ValueError):
    """A sync would remove most of the archive at once: more often a wrong or half-mounted folder than intent."""


class FilterError(QAError, ValueError):
    """A filter value that is not usable; the message names the field as the user saw it and the fix."""


class BadRequest(QAError, ValueError):
    """A value from a caller (an API call, a library call) of the wrong type or out of range; the message names
    the parameter and what to give."""
