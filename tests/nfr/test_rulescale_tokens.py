"""The rule rewriter's pieces one by one: durations, the floor, string literals and comments, file output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nfr.rulescale import (
    RuleScaleError,
    _split_strings,
    compress_rule_files,
    default_floor,
    format_duration,
    parse_duration,
    scale_expr,
    scale_rules,
    scale_seconds,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("90s", 90.0),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 31536000.0),
        ("1h30m", 5400.0),
        ("1m1s500ms", 61.5),
        (" 5m ", 300.0),
    ],
)
def test_parse_duration_every_unit(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["5 minutes", "5", "m", "1.5m", "-5m", ""])
def test_parse_duration_refusal_names_the_text(text: str) -> None:
    with pytest.raises(RuleScaleError) as error:
        parse_duration(text)
    assert str(error.value) == f"not a Prometheus duration: {text.strip()!r}"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (30, "30s"),
        (0.25, "250ms"),
        (1.5, "1500ms"),
        (0.0004, "0s"),
        (0.0006, "1ms"),
        (3600, "3600s"),
        (0, "0s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_scale_seconds_divides_floors_and_leaves_short_spans() -> None:
    assert scale_seconds(600, 60, 4) == 10.0
    assert scale_seconds(600, 600, 4) == 4  # 1 s would be below the floor
    assert scale_seconds(4, 2, 4) == 4  # at the floor: unchanged
    assert scale_seconds(5, 2, 4) == 4  # just above: divided, then floored
    assert scale_seconds(3, 60, 4) == 3  # under the floor: unchanged, never raised to it
    assert scale_seconds(120, 1, 4) == 120
    assert scale_seconds(4, 0.5, 4) == 4  # at the floor it is left alone whatever the factor


def test_default_floor_is_four_scrape_intervals_rounded_up() -> None:
    assert default_floor(1) == 4.0
    assert default_floor(2.5) == 10.0
    assert default_floor(0.3) == 2.0  # 1.2 s rounds up to whole seconds
    assert type(default_floor(1)) is float


def test_split_keeps_double_single_and_backtick_literals_whole() -> None:
    assert _split_strings('a{x="[5m]"} + b') == [(False, "a{x="), (True, '"[5m]"'), (False, "} + b")]
    assert _split_strings("f('y') or `z`") == [
        (False, "f("),
        (True, "'y'"),
        (False, ") or "),
        (True, "`z`"),
    ]
    assert _split_strings('"s"') == [(True, '"s"')]
    assert _split_strings("") == []
    assert _split_strings('a{x=""}[5m]') == [(False, "a{x="), (True, '""'), (False, "}[5m]")]
    assert _split_strings("XX_total[5m]") == [(False, "XX_total[5m]")]  # only quotes open a literal


def test_split_honours_escaped_quotes_except_in_backticks() -> None:
    # \" inside a double-quoted string does not end it
    assert _split_strings(r'm{a="x\"[5m]"}[1m]') == [(False, "m{a="), (True, r'"x\"[5m]"'), (False, "}[1m]")]
    # an escaped backslash right before the closing quote does end it
    assert _split_strings(r'm{a="x\\"}[1m]') == [(False, "m{a="), (True, r'"x\\"'), (False, "}[1m]")]
    # in a raw (backtick) string a backslash escapes nothing
    assert _split_strings(r"m{a=`x\`}[1m]") == [(False, "m{a="), (True, r"`x\`"), (False, "}[1m]")]


def test_split_unterminated_literal_runs_to_the_end() -> None:
    assert _split_strings('x[5m] "open [5m]') == [(False, "x[5m] "), (True, '"open [5m]')]
    assert _split_strings('x "a\\') == [(False, "x "), (True, '"a\\')]


def test_split_comments_run_to_the_end_of_the_line() -> None:
    expr = "rate(x[5m]) # over [5m]\n  + rate(y[10m])"
    assert _split_strings(expr) == [
        (False, "rate(x[5m]) "),
        (True, "# over [5m]"),
        (False, "\n  + rate(y[10m])"),
    ]
    assert _split_strings("x # last [1h]") == [(False, "x "), (True, "# last [1h]")]
    # the comment ends at the first newline after it, not at one before it or the last one
    assert _split_strings("a[1m]\nb # c\nd[2m]\ne") == [
        (False, "a[1m]\nb "),
        (True, "# c"),
        (False, "\nd[2m]\ne"),
    ]
    assert _split_strings(r'a{x="\\\""}') == [(False, "a{x="), (True, r'"\\\""'), (False, "}")]
    assert _split_strings("# only") == [(True, "# only")]


def test_comments_and_literals_are_not_rescaled_but_everything_around_them_is() -> None:
    expr = 'sum(rate(x{a="[5m]"}[10m])) # was [10m]\n/ sum(rate(x[10m] offset 1h)) > 0.5'
    assert scale_expr(expr, factor=10, floor=1) == (
        'sum(rate(x{a="[5m]"}[60s])) # was [10m]\n/ sum(rate(x[60s] offset 360s)) > 0.5'
    )


def test_text_before_a_string_literal_is_rescaled() -> None:
    expr = 'rate(x[10m]) and on() label_replace(y, "d", "[10m]", "s", "")'
    assert scale_expr(expr, factor=10, floor=1) == (
        'rate(x[60s]) and on() label_replace(y, "d", "[10m]", "s", "")'
    )


def test_subqueries_offsets_and_spacing() -> None:
    assert scale_expr("max_over_time(x[30m:])", 10, 1) == "max_over_time(x[180s:])"
    assert scale_expr("max_over_time(x[ 30m : 1m ])", 10, 1) == "max_over_time(x[180s:6s])"
    assert scale_expr("x OFFSET 10m", 10, 1) == "x offset 60s"
    assert scale_expr("x offset -10m", 10, 1) == "x offset -60s"
    assert scale_expr("x offset  1h30m", 60, 1) == "x offset 90s"
    assert scale_expr("x[90s]", 60, 1) == "x[1500ms]"
    assert scale_expr("coffset 10m", 10, 1) == "coffset 10m"  # only the keyword, not a suffix
    assert scale_expr("x[5m] > 300", 1, 1) == "x[300s] > 300"  # factor 1: same spans, shortest form


def test_scale_rules_copies_everything_but_spans() -> None:
    doc = {
        "groups": [
            {"name": "a", "interval": "30s", "rules": [{"record": "r", "expr": "rate(x[5m])"}]},
            {"name": "b", "rules": None},
            {"name": "c", "rules": [{"alert": "A", "expr": 1, "for": "10m", "keep_firing_for": "5m"}]},
        ]
    }
    assert scale_rules(doc, factor=10, floor=2) == {
        "groups": [
            {"name": "a", "interval": "3s", "rules": [{"record": "r", "expr": "rate(x[30s])"}]},
            {"name": "b", "rules": []},
            {"name": "c", "rules": [{"alert": "A", "expr": "1", "for": "60s", "keep_firing_for": "5m"}]},
        ]
    }
    assert "interval" not in scale_rules({"groups": [{"name": "g"}]}, 2, 1)["groups"][0]


def test_factor_one_is_accepted_and_below_one_is_refused_with_the_value() -> None:
    doc = {"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "x[5m]", "for": "2m"}]}]}
    assert scale_rules(doc, factor=1, floor=4)["groups"][0]["rules"][0] == {
        "alert": "A",
        "expr": "x[300s]",
        "for": "120s",
    }
    with pytest.raises(RuleScaleError) as error:
        scale_rules(doc, factor=0.99, floor=4)
    assert str(error.value) == "compression factor must be >= 1, got 0.99"


@pytest.mark.parametrize("document", [None, [], {"groups": {}}, {"rules": []}, "groups"])
def test_a_document_without_a_groups_list_is_refused(document: object) -> None:
    with pytest.raises(RuleScaleError) as error:
        scale_rules(document, factor=2, floor=1)  # type: ignore[arg-type]
    assert str(error.value) == "expected a mapping with a 'groups' list"


def test_compress_rule_files_writes_numbered_copies_with_a_header(tmp_path: Path) -> None:
    first = tmp_path / "src" / "a.rules.yml"
    second = tmp_path / "src" / "b.alerts.yml"
    first.parent.mkdir()
    first.write_text("groups:\n- name: a\n  rules:\n  - record: r\n    expr: rate(x[5m])\n")
    second.write_text("groups:\n- name: b\n  rules:\n  - alert: B\n    expr: y[10m] > 1\n    for: 2m\n")
    out = tmp_path / "out" / "nested"
    written = compress_rule_files([first, str(second)], out, factor=60, floor=2.5)
    assert written == [out / "00-a.rules.yml", out / "01-b.alerts.yml"]
    assert written[0].read_text().splitlines()[1:] == [
        "groups:",
        "- name: a",
        "  rules:",
        "  - record: r",
        "    expr: rate(x[5s])",
    ]
    text = written[1].read_text()
    assert text.splitlines()[0] == (
        "# Compressed copy of b.alerts.yml: every for:, range selector and offset divided by 60 "
        "(floor 2500ms). Generated; do not edit."
    )
    assert yaml.safe_load(text) == {
        "groups": [{"name": "b", "rules": [{"alert": "B", "expr": "y[10s] > 1", "for": "2500ms"}]}]
    }
    # keys keep their order (sort_keys=False) and long expressions stay on one line
    assert text.splitlines()[1:] == [
        "groups:",
        "- name: b",
        "  rules:",
        "  - alert: B",
        "    expr: y[10s] > 1",
        "    for: 2500ms",
    ]
    long_expr = " + ".join(["sum(rate(x[5m]))"] * 12)
    first.write_text(
        yaml.safe_dump({"groups": [{"name": "a", "rules": [{"record": "r", "expr": long_expr}]}]})
    )
    (copy,) = compress_rule_files([first], out, factor=1.5, floor=1)
    assert "divided by 1.5 (floor 1s)" in copy.read_text()
    assert "  - expr: " + " + ".join(["sum(rate(x[200s]))"] * 12) + "\n" in copy.read_text()


def test_compress_rule_files_names_the_file_it_cannot_use(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yml"
    with pytest.raises(RuleScaleError) as error:
        compress_rule_files([missing], tmp_path / "out", factor=2, floor=1)
    assert str(error.value).startswith(f"{missing}: cannot read rule file: [Errno 2] No such file")
    assert isinstance(error.value.__cause__, OSError)

    broken = tmp_path / "broken.yml"
    broken.write_text("groups: [\n")
    with pytest.raises(RuleScaleError) as error:
        compress_rule_files([broken], tmp_path / "out", factor=2, floor=1)
    assert str(error.value).startswith(f"{broken}: cannot read rule file: while parsing")

    wrong = tmp_path / "wrong.yml"
    wrong.write_text("rules: []\n")
    with pytest.raises(RuleScaleError) as error:
        compress_rule_files([wrong], tmp_path / "out", factor=2, floor=1)
    assert str(error.value) == f"{wrong}: expected a mapping with a 'groups' list"
    assert isinstance(error.value.__cause__, RuleScaleError)
