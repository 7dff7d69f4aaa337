"""Progress bars that appear only where a person watches them.

On a terminal, :func:`progress_bar` is a tqdm bar; when the output goes to a file or a pipe
(``srgan upscale DIR > log``, CI, a background job) it is a silent stand-in with the same
methods, so logs get the commands' own one-line messages instead of carriage-return redraws.
"""

from __future__ import annotations

import sys
from typing import Any


class _SilentBar:
    """The tqdm methods the project calls, doing nothing."""

    def __init__(self, total: float | None = None, initial: float = 0, **_: Any) -> None:
        self.total, self.n = total, initial

    def update(self, n: float = 1) -> None:
        self.n += n

    def set_postfix(self, *_: Any, **__: Any) -> None:
        pass

    def set_description(self, *_: Any, **__: Any) -> None:
        pass

    def reset(self, total: float | None = None) -> None:
        self.total, self.n = total, 0

    def close(self) -> None:
        pass

    def __enter__(self) -> _SilentBar:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


def on_terminal(stream: Any = None) -> bool:
    """Whether ``stream`` (default: stderr, where tqdm draws) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(total: float | None = None, enabled: bool = True, **kwargs: Any):
    """A tqdm bar when ``enabled`` and stderr is a terminal, else a silent stand-in."""
    if not (enabled and on_terminal()):
        return _SilentBar(total=total, **kwargs)
    from tqdm import tqdm

    return tqdm(total=total, dynamic_ncols=True, **kwargs)
