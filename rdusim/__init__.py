"""rdusim: a performance model of Composition-of-Experts serving on the SambaNova SN40L RDU.

Layers, bottom up: :mod:`rdusim.core.graph` (operator-graph vocabulary shared by everything),
:mod:`benchmarks` (workload graphs), the SN40L model in :mod:`rdusim` and GPU baselines in
:mod:`baselines`, then the CoE model, the CLI and the pandas API on top.

Importing the package makes sure numba's on-disk cache of compiled kernels has somewhere to go before
numba is imported: next to the package when it can be written (numba's default), else numba's user-wide
cache folder, else a folder under the system's temporary directory (``NUMBA_CACHE_DIR``), so a read-only
install with a read-only home still runs (compiling once per temporary folder).
"""
import os as _os
import tempfile as _tempfile

__version__ = "0.1.0"


def _can_write(folder: str) -> bool:
    """True when a file can be created in ``folder`` (made if missing); a read-only mount fails even as root."""
    try:
        _os.makedirs(folder, exist_ok=True)
        fd, name = _tempfile.mkstemp(dir=folder, prefix=".rdusim-write-test-")
        _os.close(fd)
        _os.unlink(name)
        return True
    except OSError:
        return False


def _numba_cache_fallback() -> None:
    if _os.environ.get("NUMBA_CACHE_DIR"):
        return
    here = _os.path.dirname(_os.path.abspath(__file__))
    if _can_write(_os.path.join(here, "__pycache__")):
        return
    home_cache = _os.environ.get("XDG_CACHE_HOME") or _os.path.join(_os.path.expanduser("~"), ".cache")
    if _can_write(_os.path.join(home_cache, "numba")):
        return
    _os.environ["NUMBA_CACHE_DIR"] = _os.path.join(_tempfile.gettempdir(), f"rdusim-numba-{_os.getuid() if hasattr(_os, 'getuid') else 'user'}")


_numba_cache_fallback()
