"""Import lightgbm without its scikit-learn integration.

lightgbm imports scikit-learn, and through it scipy.stats, whenever scikit-learn is
installed, only to offer sklearn-style estimators that fraud never uses (it trains and
predicts with `lightgbm.train` and `Booster`). In an environment that has scikit-learn (the
project's development one: `fraud.model.evaluate` needs it) that import was 3.3 s of the
service's 8.8 s start (`python -X importtime`), on the path of every restart.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sklearn_hidden() -> Iterator[None]:
    """While open, `import sklearn` fails, unless it has been imported already (then
    lightgbm simply finds it)."""
    if "sklearn" in sys.modules:
        yield
        return
    sys.modules["sklearn"] = None  # type: ignore[assignment]  # makes the import raise
    try:
        yield
    finally:
        del sys.modules["sklearn"]
