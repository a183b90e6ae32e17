"""The service's import path must not pull in scikit-learn (3.3 s of every start)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fraud.model.lightgbm_import import sklearn_hidden


def test_service_entrypoint_imports_neither_sklearn_nor_scipy_stats() -> None:
    pytest.importorskip("sklearn")  # only meaningful where scikit-learn is installed
    probe = (
        "import sys, fraud.entrypoints.main, fraud.model.inference; "
        "print(sorted(m for m in ('sklearn', 'scipy.stats', 'lightgbm') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "['lightgbm']"


def test_sklearn_is_importable_again_after_the_block() -> None:
    pytest.importorskip("sklearn")
    probe = (
        "import sys\n"
        "from fraud.model.lightgbm_import import sklearn_hidden\n"
        "with sklearn_hidden():\n"
        "    try:\n"
        "        import sklearn\n"
        "        print('imported inside')\n"
        "    except ImportError:\n"
        "        print('hidden inside')\n"
        "import sklearn.metrics\n"
        "print('importable after')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["hidden", "inside", "importable", "after"]


def test_an_already_imported_sklearn_is_left_alone() -> None:
    sklearn = pytest.importorskip("sklearn")
    with sklearn_hidden():
        assert sys.modules["sklearn"] is sklearn
    assert sys.modules["sklearn"] is sklearn
