"""How far `simulate` has got, in virtual seconds, as its callback is told: from one part
run here (pass by pass) and from parts run in processes of their own (each child's count
read from shared memory while the parent waits). Either way it only goes forward and ends at
its total, and the simulation is the same with or without anyone watching."""

from __future__ import annotations

from pathlib import Path

import pytest

from cadence.flows.simulate import simulate
from tests.integration.test_differential import open_ledger
from tests.support.workloads import workload


@pytest.mark.parametrize("parts", [1, 3])
def test_progress_goes_forward_to_its_total(parts: int, tmp_path: Path) -> None:
    w = workload(5, customers=10, days=5)
    app = open_ledger(w, tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}")
    told: list[tuple[int, int | None]] = []
    try:
        watched = simulate(
            app.store,
            app.settings,
            app.rules(),
            w.start,
            w.end,
            parts=parts,
            progress=lambda done, total: told.append((done, total)),
        )
        unwatched = simulate(app.store, app.settings, app.rules(), w.start, w.end, parts=parts)
    finally:
        app.close()
    span = int((w.end - w.start).total_seconds())
    totals = {total for _, total in told}
    assert totals == {span * parts}
    done = [d for d, _ in told]
    assert done == sorted(done)
    assert done[0] == 0 and done[-1] == span * parts
    if parts == 1:
        # one report a pass, at the pass's own moment
        assert len(done) >= watched.passes
    assert watched.emails == unwatched.emails
    assert watched.decisions == unwatched.decisions
