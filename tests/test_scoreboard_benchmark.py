"""``verification.suite.scoreboard_benchmark`` at a small scale: distinct targets, one timed
scoreboard with this checkout, and its command line (no time is asserted)."""

from pathlib import Path

import pytest

from verification.suite.scoreboard_benchmark import CYCLE, main, make_targets, time_scoreboard

REPO = Path(__file__).resolve().parents[1]


def test_each_target_is_a_copy_in_its_own_folder_taking_the_cycle_in_turn(tmp_path):
    specs = make_targets(tmp_path, len(CYCLE) + 1)
    assert len(set(specs)) == len(specs) == len(CYCLE) + 1
    assert [Path(spec).parent.name for spec in specs[:2]] == ["t01", "t02"]
    assert specs[-1].endswith(f"t{len(CYCLE) + 1:02d}/{CYCLE[0]}"), specs[-1]
    assert all(Path(spec.partition(":")[0]).is_file() for spec in specs)
    assert any(":" in spec for spec in specs), "planted bugs are among the targets"


def test_a_small_scoreboard_is_timed_with_the_given_checkout(tmp_path):
    timing = time_scoreboard(2, jobs=2, repo=REPO, timeout=120, keep=tmp_path / "reports")
    assert len(list((tmp_path / "reports").glob("*/results.json"))) == 2, "a report each"
    assert timing.targets == 2 and timing.run_statuses == {"completed": 2}, timing
    # the second spec of CYCLE has a planted bug
    assert timing.statuses == {"pass": 1, "fail": 1} and timing.exit_status == 1, timing
    assert timing.wall_seconds > 0 and timing.worker_seconds > 0
    summary = timing.summary()
    assert "2 targets, --jobs 2" in summary and "per target" in summary, summary


def test_a_folder_that_is_no_checkout_is_refused(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--targets", "2", "--repo", str(tmp_path)])
    assert exit_info.value.code == 2
    assert ("no verification/cli.py (or refnet/cli.py) there; expected a checkout of refnet"
            in capsys.readouterr().err)
