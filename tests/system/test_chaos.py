"""The chaos run (benchmarks/chaos.py), smaller: opt-in, deselected by default.

    python -m pytest -m chaos tests/system/test_chaos.py      # ~3.5 minutes here; GROKVIDEO_CHAOS_JOBS=N for more

It deploys its own stack on the local emulator (``local/stack.py down`` / ``up`` in ``.local/``, so
not while another system run uses it) against its own fake CometAPI, puts 60 jobs (half tracked,
half submitted, every provider outcome) while the fake fails a third of the API calls and cuts a
tenth of the first downloads, kills a poller and a copier while they work, runs 2 and 4 pollers
at once, and checks every invariant of the full run; the stack is stopped at the end.
"""

from __future__ import annotations

import os

import pytest

from benchmarks import chaos

pytestmark = pytest.mark.chaos

JOBS = int(os.environ.get("GROKVIDEO_CHAOS_JOBS", "60"))
SEED = int(os.environ.get("GROKVIDEO_CHAOS_SEED", "7"))


def test_no_job_left_behind_under_chaos() -> None:
    options = chaos.Options(jobs=JOBS, seed=SEED, poller_kills=1, copier_kills=1, deadline=600)
    result = chaos.run(options)
    rows, notes, _ = chaos.check(result)
    chaos.report(result)  # the table, in the test's output (-s, or on failure)
    failed = [f"{row.name}: {row.value} (target {row.target})" for row in rows if row.ok is False]
    assert not failed, "\n".join(failed + notes[:20])
