"""The stage lines of the long commands (``infogan evaluate``, ``infogan export``)."""

from __future__ import annotations

import io

from training.stages import quiet, stage_printer


def test_a_stage_line_shows_the_seconds_since_the_start_and_is_flushed():
    ticks = iter([100.0, 100.4, 712.6])
    out = io.StringIO()
    say = stage_printer(out, clock=lambda: next(ticks))
    say("MIG: 10,000 samples")
    say("FactorVAE score")
    assert out.getvalue().splitlines() == ["[     0 s] MIG: 10,000 samples", "[   613 s] FactorVAE score"]


def test_the_default_writes_to_stderr_and_quiet_writes_nothing(capsys):
    stage_printer()("loading dsprites")
    quiet("nothing")
    out, err = capsys.readouterr()
    assert out == "" and err.endswith("] loading dsprites\n")
