"""benchmarks/middleware_cost.py: every middleware variant is measured through the real route table."""

from __future__ import annotations

import pytest

from benchmarks import middleware_cost


def test_prints_every_variant_and_the_chain_ratio(capsys):
    assert middleware_cost.main(["--requests", "20", "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if line and not line.startswith("chain")}
    assert set(rows) == {"stub", "HeadAsGet", "BodyLimitMiddleware", "IsolationHeaders", "MetricsMiddleware", "all"}
    assert all(float(r[-2]) > 0 for r in rows.values())  # us/request, each measured
    assert "chain/stub ratio:" in out
    # the stub answered as the app's own /generate route (the metrics label it by its template, not "unmatched")
    assert [r.path for r in middleware_cost.GENERATE_ROUTE] == ["/generate"]


def test_bad_counts_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        middleware_cost.main(["--rounds", "0"])
    assert exc.value.code == 2 and "--rounds must be at least 1" in capsys.readouterr().err
