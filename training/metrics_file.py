"""Reading a run's ``metrics.jsonl`` (one JSON object per line, appended by the training loop). Imports neither
torch nor the rest of the package, so scripts that only tabulate runs (scripts/seed_study.py) stay light."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METRICS_FILE = "metrics.jsonl"
# metrics.jsonl's field naming the label-free restart a row belongs to (absent: the main run)
RESTART_ROW_KEY = "candidate"


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The file's rows. A line that is not a JSON object is skipped: the last one of a run killed mid-write is torn
    (the loop's resume drops it the same way, training/run_dir.trim_metrics)."""
    rows = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line) if line.strip() else None
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
