"""The ``refnet train`` command (CONTRACT.md)."""

import json
import shlex

import pytest
import torch

from verification.cli import main


def test_train_command_prints_errors_and_writes_both_figures(tmp_path, capsys):
    status = main(["train", "--epochs", "2", "--samples", "200", "--out", str(tmp_path / "run"),
                   "--center", "0.5,0.5", "--activation", "tanh"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "epoch   2  loss" in printed, printed
    assert "train error:" in printed and "of 200)" in printed and "test error:" in printed
    for name in ("loss_curve.png", "test_classification.png"):
        image = (tmp_path / "run" / name).read_bytes()
        assert image.startswith(b"\x89PNG"), f"{name} is not a PNG"
    assert not list((tmp_path / "run").glob(".*.tmp")), "no temporary files left behind"


def test_train_command_is_deterministic(tmp_path, capsys):
    arguments = ["train", "--epochs", "1", "--samples", "100", "--out", str(tmp_path),
                 "--device", "cpu"]
    main(arguments)
    first = capsys.readouterr().out
    main(arguments)
    assert capsys.readouterr().out == first, "same seed, same printed run"


def test_a_seed_at_either_end_of_torchs_range_is_accepted():
    from verification.cli import _build_parser

    for seed in (-2 ** 63, 2 ** 64 - 1):
        assert _build_parser().parse_args(["train", "--seed", str(seed)]).seed == seed


@pytest.mark.parametrize("arguments, fragment", [
    (["train", "--center", "0.5"], "expected X,Y"),
    (["train", "--activation", "gelu"], "invalid choice"),
    (["train", "--epochs", "-1"], "expected a value >= 0, got -1"),
    (["train", "--batch-size", "0"], "expected a value >= 1, got 0"),
    (["train", "--lr", "abc"], "expected a number, got 'abc'"),
    (["train", "--seed", "1180591620717411303424"], "expected a seed from -2**63 to 2**64 - 1"),
    (["train", "--lr", "inf"], "argument --lr: expected a finite number, got inf"),
    (["train", "--lr", "0"], "argument --lr: expected a value > 0, got 0"),
    (["train", "--device", "tpu"], "argument --device: expected cpu, cuda or cuda:N, got 'tpu'"),
    (["train", "--device", "meta"], "expected cpu, cuda or cuda:N, got 'meta'"),
    (["train", "--center", "nan,nan"], "expected finite X,Y"),
    (["conform", "refnet", "--timeout", "inf"], "expected a finite number, got inf"),
    (["conform", "refnet", "--timeout", "0"], "argument --timeout: expected a value >= 0.001"),
    (["conform", "refnet", "--jobs", "0"], "argument --jobs: expected a value >= 1, got 0"),
    (["conform", "refnet", "--jobs", "1.5"], "argument --jobs: expected a number, got '1.5'"),
])
def test_bad_arguments_get_a_clear_message(arguments, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err


@pytest.mark.parametrize("command, runner", [("conform", "verification.conform.run_conform"),
                                             ("verify", "verification.verify.run_verification")])
def test_the_recorded_command_can_be_pasted_back(command, runner, tmp_path, monkeypatch):
    """The reports' command line is shell-quoted: a path with a space and ``$(`` in it comes
    back as one argument, and nothing in it would run."""
    out = str(tmp_path / "a folder" / "$(touch pwned)")
    argv = [command, *(["/x/my adapter.py"] if command == "conform" else []), "--out", out]
    recorded = []
    monkeypatch.setattr(runner, lambda options: recorded.append(options.command) or 0)
    assert main(argv) == 0
    assert shlex.split(recorded[0]) == ["refnet", *argv], recorded


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_device_without_cuda_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_diverged_training_exits_with_a_message(tmp_path, capsys):
    status = main(["train", "--lr", "1e30", "--epochs", "3", "--samples", "50",
                   "--out", str(tmp_path)])
    assert status == 1 and "diverged" in capsys.readouterr().err


def test_learning_rate_beyond_float32_is_refused_before_training(tmp_path, capsys):
    """1e308 is finite but no float32 step can take it: refused when SGD is built, before
    any epoch (a huge lr that fits, such as 1e30, diverges and says so: the test above)."""
    status = main(["train", "--lr", "1e308", "--epochs", "3", "--samples", "50",
                   "--out", str(tmp_path)])
    captured = capsys.readouterr()
    assert status == 2, captured.err
    assert "refnet train: error: SGD: lr 1e+308" in captured.err
    assert "beyond the largest torch.float32" in captured.err
    assert "epoch" not in captured.out, "no training before the error"


@pytest.mark.parametrize("out", ["file", "file/inside"])
def test_output_that_cannot_be_a_folder_is_refused_before_training(tmp_path, capsys, out):
    (tmp_path / "file").write_text("not a folder")
    status = main(["train", "--epochs", "3", "--samples", "50", "--out", str(tmp_path / out)])
    captured = capsys.readouterr()
    assert status == 2 and "refnet train: error: --out" in captured.err, captured.err
    assert ("is an existing file; expected a folder" if out == "file"
            else "cannot create the folder") in captured.err
    assert "epoch" not in captured.out, "no training before the error"


def _baseline(path, **extra):
    path.write_text(json.dumps({
        "schema_version": 1, "status": "pass", "environment": {},
        "checks": [{"id": "fd/Linear/weight", "status": "pass"}], "mutation": {},
        "reproduction": {"configs": []}, "benchmarks": [], **extra}))
    return str(path)


@pytest.mark.parametrize("command, extra, fragment", [
    ("verify", {"checks": [{"status": "pass"}]}, "checks[0] has id=None"),
    ("conform", {"checks": [{"status": "pass"}], "target": {}}, "checks[0] has id=None"),
    ("verify", {"target": {"name": "handout"}},
     "was written by refnet conform with one target; expected a results.json of refnet verify"),
    ("conform", {}, "was written by refnet verify; expected a results.json of refnet conform"),
])
def test_unusable_baseline_is_refused_before_the_run(tmp_path, capsys, command, extra,
                                                     fragment):
    arguments = ["verify", "--quick"] if command == "verify" else ["conform", "refnet"]
    status = main([*arguments, "--baseline", _baseline(tmp_path / "baseline.json", **extra),
                   "--out", str(tmp_path / "out")])
    assert status == 2
    err = capsys.readouterr().err
    assert f"refnet {command}: error: baseline" in err and fragment in err, err
    assert not list((tmp_path / "out").iterdir()), "nothing ran, nothing was written"
