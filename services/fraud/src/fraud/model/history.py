"""The platform's own labeled history as training data (`train --data history`).

Placeholder until the fraud service stores fraud reports with the features of the payment
they label: reading it needs that table (see docs/fraud-model.md, "Training on history").
"""

from __future__ import annotations

from fraud.model.dataset import Labeled


class HistoryUnavailable(RuntimeError):
    pass


def read_history(limit: int | None = None) -> Labeled:
    raise HistoryUnavailable(
        "training from the platform's labeled history needs the fraud reports table "
        "(not in this database yet): pass a labeled CSV with --data"
    )
