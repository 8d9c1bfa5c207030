"""Everything that crosses the link: storage primitives shared by hub and edge,
signed formats, transports, the edge-side sync client and the county hub."""



def _import_without(module: str, optional: tuple[str, ...]) -> None:
    """Import ``module`` while its optional extras ``optional`` look absent.

    sqlite-utils imports numpy and pandas when they happen to be installed, only
    to map their number types to SQL; securesystemslib imports boto3 for its AWS
    KMS signer. Nothing here uses them, they are not our dependencies (a fresh
    install has none of them), and each costs 10-20 MB resident in every server
    process of a small appliance. They are hidden only while ``module`` loads;
    a later ``import numpy`` works as usual.
    """
    import importlib
    import sys

    if module in sys.modules:
        return
    hidden = [name for name in optional if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]  # makes "import numpy" raise ImportError
    try:
        importlib.import_module(module)
    except ImportError:  # the module itself is missing: its importers will say so
        pass
    finally:
        for name in hidden:
            if sys.modules.get(name, False) is None:
                del sys.modules[name]


_import_without("sqlite_utils", ("numpy", "pandas"))
_import_without("securesystemslib.signer", ("boto3", "botocore"))
