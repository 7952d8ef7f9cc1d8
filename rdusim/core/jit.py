"""numba's ``njit`` for every kernel of the project, with an on-disk cache that never uses a bad entry.

numba caches compiled kernels (``cache=True``) in ``__pycache__`` next to each module (or
``NUMBA_CACHE_DIR``, see :mod:`rdusim`). numba itself raises when an index (``.nbi``) or data (``.nbc``)
file is truncated or corrupt (an unpickling error at the kernel's first call). Here such an entry is a
cache miss: the bad file is deleted, the kernel compiled again and the entry rewritten. Kernels import
``njit`` and ``register_jitable`` from this module, never from numba directly. Where no cache folder can
be written at all (numba: "no locator available"), a kernel is compiled without a cache instead.
"""
from __future__ import annotations

import contextlib
import os

import numba
from numba import njit as _numba_njit
from numba.core import caching
from numba.extending import register_jitable

__all__ = ["njit", "register_jitable", "use_threads"]


def use_threads(threads: int) -> None:
    """Let numba's parallel loops use a pipeline job's ``threads`` (Snakemake's ``threads:``), at most
    numba's own thread count and at least one."""
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))


def njit(*args, **kwargs):
    """``numba.njit``; with ``cache=True`` where numba finds no writable cache folder, the same kernel
    without a cache (compiled in each process) instead of numba's error at import."""
    if len(args) == 1 and callable(args[0]) and not kwargs:
        return _numba_njit(args[0])
    decorate = _numba_njit(*args, **kwargs)
    if not kwargs.get("cache"):
        return decorate

    def apply(fn):
        try:
            return decorate(fn)
        except RuntimeError as exc:
            if "cannot cache" not in str(exc):
                raise
            return _numba_njit(*args, **{**kwargs, "cache": False})(fn)
    return apply


_load_index = caching.IndexDataCacheFile._load_index
_load_data = caching.IndexDataCacheFile._load_data
_load_overload = caching.Cache.load_overload


def _discard(path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _safe_load_index(self):
    """The cache index, or {} (and the file deleted) when it cannot be read back."""
    try:
        return _load_index(self)
    except Exception:  # truncated, corrupt or foreign: start a fresh index
        _discard(self._index_path)
        return {}


def _safe_load_data(self, name):
    """A cached kernel, or None (a miss; the file deleted) when its data file cannot be read back."""
    try:
        return _load_data(self, name)
    except Exception:
        _discard(self._data_path(name))
        return None


def _safe_load_overload(self, sig, target_context):
    """A cached overload, or None (recompile) when the entry cannot be rebuilt."""
    try:
        return _load_overload(self, sig, target_context)
    except Exception:
        return None


if not getattr(caching, "_rdusim_guarded", False):
    caching.IndexDataCacheFile._load_index = _safe_load_index
    caching.IndexDataCacheFile._load_data = _safe_load_data
    caching.Cache.load_overload = _safe_load_overload
    caching._rdusim_guarded = True
