"""Progress bars for long embedding runs (tqdm on stderr).

Library calls never draw a bar unless asked; the ``glean`` command line asks for one
when stderr is a terminal. ``enabled``:

- ``None`` (auto): a bar only when the output stream is a TTY (not in pipes, logs, CI);
- ``True``: always (forced, even when not a TTY);
- ``False``: never.

A disabled bar is a no-op object with the same ``update``/``close`` interface, so
callers do not need to branch.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, TextIO

ProgressCallback = Callable[[int], None]


class NullBar:
    """Does nothing; stands in for a disabled bar."""

    n = 0

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        return None

    def close(self) -> None:
        return None

    def __enter__(self) -> "NullBar":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except Exception:
        return False


def should_show(enabled: bool | None, file: TextIO | None = None) -> bool:
    if enabled is None:
        return _is_tty(file if file is not None else sys.stderr)
    return bool(enabled)


def progress_bar(
    total: int | None,
    desc: str | None = None,
    *,
    unit: str = "doc",
    enabled: bool | None = None,
    file: TextIO | None = None,
) -> Any:
    """A tqdm bar on ``file`` (default: the current ``sys.stderr``), or a :class:`NullBar`.

    ``enabled=None`` shows it only when ``file`` is a TTY; ``True`` forces it.
    """
    stream = file if file is not None else sys.stderr
    if not should_show(enabled, stream):
        return NullBar()
    from tqdm import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        dynamic_ncols=True,
        mininterval=0.2,
        smoothing=0.1,
        leave=True,
    )
