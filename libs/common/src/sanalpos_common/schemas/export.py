"""Write each event's JSON Schema (envelope with typed payload) to a checked-in folder.

Run `python -m sanalpos_common.schemas.export` after changing a contract; a unit test
fails while the checked-in files and the models disagree.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from sanalpos_common.schemas.envelope import Envelope
from sanalpos_common.schemas.events import EVENT_MODELS

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "schemas"


def render_schemas() -> dict[str, str]:
    rendered: dict[str, str] = {}
    for topic, model in sorted(EVENT_MODELS.items()):
        schema: dict[str, Any] = Envelope[model].model_json_schema()  # type: ignore[valid-type]
        schema["title"] = topic
        rendered[f"{topic}.json"] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
    return rendered


def main() -> int:
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in render_schemas().items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(EVENT_MODELS)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
