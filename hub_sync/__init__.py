"""Everything that crosses the link: storage primitives shared by hub and edge,
signed formats, transports, the edge-side sync client and the county hub."""


def _import_sqlite_utils_lean() -> None:
    """Import sqlite-utils without numpy/pandas.

    sqlite-utils imports numpy and pandas when they happen to be installed, only
    to map their number types to SQL; nothing here passes such values, and numpy
    alone costs ~20 MB resident in every server process of a small appliance.
    The modules are hidden only while sqlite-utils loads; later imports work.
    """
    import sys

    if "sqlite_utils" in sys.modules:
        return
    hidden = [name for name in ("numpy", "pandas") if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import numpy" raise ImportError
    try:
        import sqlite_utils  # noqa: F401
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


_import_sqlite_utils_lean()
