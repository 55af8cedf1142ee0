"""benchmarks/_server.py: a server with nothing to serve is said at once, not after the ready timeout."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks._server import server  # noqa: E402


def test_a_server_with_no_model_fails_at_once(tmp_path):
    (tmp_path / "broken").mkdir()  # a folder without a manifest: reported, nothing served
    with pytest.raises(RuntimeError, match=r"no model to serve \(broken: broken: manifest.json is missing"):
        with server(tmp_path, ready_timeout=60, DEVICE="cpu"):
            pass
    # (the old wait ran out its 60 s and said "server not ready after 60s")
