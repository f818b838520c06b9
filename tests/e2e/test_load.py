"""Load with live policy changes, short form of ``bench/load.py``: every answer is right.

The acme app runs under gunicorn (2 gthread workers) on a fresh PostgreSQL database with the
LISTEN/NOTIFY watcher; locust sends the request mix for 10 s while ``flask guard`` toggles a rule
every half second. The oracle judges each answer against the policy states that may have been
in force (see ``bench/load_oracle.py``). The oracle itself is tested first, without services.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from bench import load_oracle as oracle
from bench.load import SEED, Settings, run_load

INITIAL = oracle.parse_rows(SEED.read_text(encoding="utf-8"))
CAROL_REPORTS = next(
    index
    for index, probe in enumerate(oracle.PROBES)
    if probe.user == "carol" and probe.path == "/reports"
)
OK = '{"stores": 2, "units": 17, "day": "2024-01-01"}'
DENIED = '{"error": "forbidden", "message": "access denied", "status": 403}'


def carol_loses_reports() -> oracle.Timeline:
    """Seed policy, then ``g, carol, auditor`` removed by a commit in (10.0, 10.01]."""
    timeline = oracle.Timeline([[INITIAL]])
    timeline.advance(INITIAL - {("g", "carol", "auditor")}, 1, 10.0, 10.01)
    return timeline


def verdicts(*answers: tuple[float, float, int, str]) -> oracle.Verdicts:
    records = [
        (CAROL_REPORTS, sent, received, status, body) for sent, received, status, body in answers
    ]
    return oracle.judge(records, carol_loses_reports(), bound=0.1, outer=1.0)


def test_the_oracle_decides_the_acme_policy_by_hand() -> None:
    expected = {
        (probe.method, probe.path, probe.user): oracle.expected_status(INITIAL, probe)
        for probe in oracle.PROBES
    }
    assert expected["GET", "/", None] == 200
    assert expected["GET", "/whoami", None] == 401
    assert expected["GET", "/store", "alice"] == 200
    assert expected["GET", "/store", "carol"] == 403
    assert expected["POST", "/store/1", "alice"] == 200
    assert expected["POST", "/store/2", "alice"] == 403
    assert expected["GET", "/reports", "carol"] == 200
    assert expected["GET", "/reports", "bob"] == 403
    # a grant through a role of a role: employee -> /reports
    granted = INITIAL | {("p", "employee", "/reports", "GET")}
    assert oracle.expected_status(granted, oracle.Probe("GET", "/reports", "bob")) == 200


def test_answers_clear_of_a_change_must_match_the_state_in_force() -> None:
    result = verdicts((9.0, 9.1, 200, OK), (11.0, 11.1, 403, DENIED))
    assert (result.unambiguous, result.window, result.late, result.wrong) == (2, 0, 0, 0)
    result = verdicts((9.0, 9.1, 403, DENIED), (10.6, 10.7, 200, OK))
    assert result.wrong == 1  # denied before the commit
    assert result.late == 1  # allowed 0.6 s after it: beyond the 100 ms bound, within 1 s
    assert result.staleness == pytest.approx(0.59)
    assert verdicts((12.0, 12.1, 200, OK)).wrong == 1  # beyond the product's 1 s promise


def test_answers_overlapping_a_change_may_give_either_state() -> None:
    result = verdicts(
        (9.99, 10.02, 403, DENIED),  # served across the commit: the new state
        (10.05, 10.06, 200, OK),  # 40 ms after the commit: the old one, within the bound
    )
    assert (result.window, result.window_old, result.wrong) == (2, 1, 0)
    assert result.staleness == pytest.approx(0.04)


def test_a_right_status_with_a_wrong_body_is_wrong() -> None:
    result = verdicts((9.0, 9.1, 200, '{"user": "carol"}'), (9.0, 9.1, 200, "<html>"))
    assert result.wrong == 2 and len(result.examples) == 2


def test_commits_the_version_reads_skipped_allow_every_order() -> None:
    timeline = oracle.Timeline([[INITIAL]])
    both = {("g", "carol", "auditor"), ("g", "dave", "employee")}
    timeline.advance(INITIAL ^ both, 2, 5.0, 5.002)
    assert len(timeline.states) == 3 and len(timeline.states[1]) == 2
    assert set(timeline.states[1]) == {INITIAL ^ {row} for row in both}
    with pytest.raises(ValueError, match="3 commits changed 2 rows"):
        timeline.advance(INITIAL, 3, 6.0, 6.002)


@pytest.mark.services
def test_every_answer_under_load_matches_the_policy_in_force(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(seconds=10, workers=2, threads=4, users=8, period=0.5, in_flight=3)
    report = run_load(settings, postgres_url, postgres_url, tmp_path)
    summary = "\n".join(report.lines())
    result = report.verdicts
    assert result.wrong == 0, summary
    assert report.server_errors == 0 and result.transport == 0, summary
    assert report.server_tracebacks == 0 and not report.failures, summary
    assert report.answers >= 200 and report.changes >= 2, summary
    # The changes were seen: some probe got both an allow and a deny, every one of them right.
    assert any({200, 403} <= statuses for statuses in result.flips.values()), summary
