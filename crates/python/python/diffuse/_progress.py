"""Progress of long calls: a callable `progress(what, done, total)`, or a tqdm bar."""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional, Union

Progress = Union[None, bool, Callable[[str, int, int], object]]


class _Bars:
    """tqdm bars, one per stage of a run (a stage is named by `what`)."""

    def __init__(self, tqdm) -> None:
        self.tqdm = tqdm
        self.bar = None
        self.what = None

    def __call__(self, what: str, done: int, total: int) -> None:
        if self.bar is None or what != self.what:
            self.close()
            self.bar = self.tqdm(total=total, desc=what, leave=False)
            self.what = what
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


@contextlib.contextmanager
def reporter(progress: Progress) -> Iterator[Optional[Callable[[str, int, int], object]]]:
    """The callback a run reports to: `progress` itself when it is callable; with None (the
    default) or True, a tqdm bar when tqdm is installed; with False, nothing."""
    if callable(progress):
        yield progress
        return
    if progress is False:
        yield None
        return
    try:
        from tqdm.auto import tqdm
    except ImportError:
        tqdm = None
    if tqdm is None:
        if progress is True:
            raise ImportError("progress=True draws a tqdm bar: pip install tqdm")
        yield None
        return
    bars = _Bars(tqdm)
    try:
        yield bars
    finally:
        bars.close()
