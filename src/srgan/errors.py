"""The project's error types.

Anything a user can cause (a bad image, a wrong path, missing weights, a bad config) raises a
subclass of :class:`SrganError`. The CLI prints its message as one line and exits non-zero;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class SrganError(Exception):
    """An error the user can fix; its message is one clear line."""


class ImageError(SrganError):
    """An image file that cannot be used (missing, not an image, corrupt, too large, ...)."""


class ImageTooLarge(ImageError):
    """An image declaring more pixels than the limit (refused before decoding)."""


class ConfigError(SrganError):
    """A configuration file or override that is invalid."""


class WeightsError(SrganError):
    """Model or VGG weights that cannot be found or loaded."""


class DatasetError(SrganError):
    """A dataset folder that cannot be used as asked."""


class UpscaleOutOfMemory(SrganError):
    """A tile did not fit in memory; the message suggests a smaller ``--tile``."""


class CheckpointError(SrganError):
    """A training checkpoint that cannot be written or read (or is refused as unsafe)."""
