"""What every ``school-edge hub ...`` command module shares: the ``--data`` option, opening
the hub (and closing it, so a command leaves no database connection behind), and how a
time is shown to a technician."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Iterator

import click

HUB_DATA = click.option("--data", "data_dir", type=click.Path(path_type=Path), required=True,
                        help="平台数据目录 Hub data folder")


def open_hub(data_dir: Path):
    """The hub of ``data_dir``, opened (schema brought up to date)."""
    from hub_sync.hub.hub import Hub

    return Hub.open(data_dir)


@contextlib.contextmanager
def opened_hub(data_dir: Path) -> Iterator:
    """The opened hub, its pooled database connections closed afterwards."""
    hub = open_hub(data_dir)
    try:
        yield hub
    finally:
        hub.close()


def when(ts: float | None, never: str = "-", seconds: bool = False) -> str:
    """A time as the technician reads it: local, to the minute (or second); ``never`` for none."""
    return time.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M", time.localtime(ts)) if ts else never
