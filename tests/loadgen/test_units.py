"""Durations and rates as scenario files write them, and the compact rendering of seconds."""

from __future__ import annotations

import pytest

from loadgen.units import format_seconds, parse_duration, parse_rate

DURATION_HELP = "a duration such as 500ms, 2s, 1m30s, 1h or a number of seconds"
RATE_HELP = "a rate such as 50/min, 10/s or a number per second"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("250ms", 0.25),
        ("30s", 30.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1.5m", 90.0),
        ("45", 45.0),
        (" 2 m ", 120.0),
        ("0s", 0.0),
        ("1m30s", 90.0),
        ("1h2m3s500ms", 3723.5),
    ],
)
def test_duration_strings(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("number", "seconds"), [(3, 3.0), (2.5, 2.5), (0, 0.0), (0.5, 0.5)])
def test_duration_numbers_are_seconds(number: float, seconds: float) -> None:
    result = parse_duration(number)
    assert result == seconds and type(result) is float


@pytest.mark.parametrize(
    "value", ["2 min", "1d", "-5s", ".5s", "5.s", "", "s", None, [30], True, False, "30s1m", "1m1m", "ms"]
)
def test_duration_refusals_say_what_is_expected(value: object) -> None:
    with pytest.raises(ValueError) as error:
        parse_duration(value)
    assert str(error.value) == DURATION_HELP


def test_negative_duration_number_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        parse_duration(-1)
    assert str(error.value) == "a non-negative duration"
    with pytest.raises(ValueError, match="^a non-negative duration$"):
        parse_duration(-0.001)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [
        ("50/min", 50 / 60),
        ("120/m", 2.0),
        ("3600/h", 1.0),
        ("7200/hour", 2.0),
        ("10/s", 10.0),
        ("10/sec", 10.0),
        ("5/ms", 5000.0),
        ("3000", 3000.0),
        ("1.5/s", 1.5),
        (" 10 / s ", 10.0),
    ],
)
def test_rate_strings_are_per_second(text: str, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second, rel=1e-12)


@pytest.mark.parametrize(("number", "per_second"), [(200, 200.0), (0.5, 0.5), (0, 0.0)])
def test_rate_numbers_are_per_second(number: float, per_second: float) -> None:
    result = parse_rate(number)
    assert result == per_second and type(result) is float


@pytest.mark.parametrize("value", ["10/day", "10 per s", "/s", "-5/s", "", None, {"rate": 1}, True])
def test_rate_refusals_say_what_is_expected(value: object) -> None:
    with pytest.raises(ValueError) as error:
        parse_rate(value)
    assert str(error.value) == RATE_HELP


def test_negative_rate_number_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        parse_rate(-2)
    assert str(error.value) == "a non-negative rate"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0123, "12.3ms"),
        (0.0, "0.0ms"),
        (0.99949, "999.5ms"),
        (1.0, "1.000s"),
        (2.5, "2.500s"),
        (61.23456, "61.235s"),
    ],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
