"""The ``refnet train`` command (CONTRACT.md)."""

import pytest
import torch

from refnet.cli import main


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


@pytest.mark.parametrize("arguments, fragment", [
    (["train", "--center", "0.5"], "expected X,Y"),
    (["train", "--activation", "gelu"], "invalid choice"),
    (["train", "--epochs", "-1"], "expected a value >= 0, got -1"),
    (["train", "--batch-size", "0"], "expected a value >= 1, got 0"),
    (["train", "--lr", "abc"], "expected a number, got 'abc'"),
])
def test_bad_arguments_get_a_clear_message(arguments, fragment, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(arguments)
    assert exit_info.value.code == 2 and fragment in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message shown without CUDA")
def test_cuda_device_without_cuda_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_diverged_training_exits_with_a_message(tmp_path, capsys):
    status = main(["train", "--lr", "1e30", "--epochs", "3", "--samples", "50",
                   "--out", str(tmp_path)])
    assert status == 1 and "diverged" in capsys.readouterr().err
