"""``verification.arguments.number``: the one number type of ``refnet``'s options and of the
pytest plugin's ``--conform-timeout``."""

import argparse

import pytest

from verification.arguments import number


@pytest.mark.parametrize("parse, text, value", [
    (number(), "2.5", 2.5), (number(int, minimum=0), "0", 0), (number(above=0), "1e-9", 1e-9),
    (number(minimum=1e-3), "0.001", 1e-3), (number(above=0, unit="seconds"), "30", 30.0),
])
def test_accepted_numbers_come_back_converted(parse, text, value):
    assert parse(text) == value and type(parse(text)) is type(value)


@pytest.mark.parametrize("parse, text, message", [
    (number(), "abc", "expected a number, got 'abc'"),
    (number(int), "1.5", "expected a number, got '1.5'"),
    (number(), "nan", "expected a finite number, got nan"),
    (number(above=0), "-inf", "expected a finite number, got -inf"),
    (number(above=0), "0", "expected a value > 0, got 0"),
    (number(int, minimum=1), "0", "expected a value >= 1, got 0"),
    (number(minimum=1e-3), "1e-4", "expected a value >= 0.001, got 1e-4"),
    (number(above=0, unit="seconds"), "abc", "expected a finite number of seconds > 0, got 'abc'"),
    (number(above=0, unit="seconds"), "inf", "expected a finite number of seconds > 0, got inf"),
    (number(above=0, unit="seconds"), "-5", "expected a finite number of seconds > 0, got -5"),
])
def test_refused_numbers_say_what_was_expected(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError) as refusal:
        parse(text)
    assert str(refusal.value) == message
