"""mamrl: learned packet routing in wide-area networks."""

from mamrl.numba_cache import refresh_numba_caches

__version__ = "0.1.0"

# Before any compiled module is imported: numba would not notice a changed kernel constant.
refresh_numba_caches()
