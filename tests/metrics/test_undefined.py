"""The undefined-metric convention: ``-`` for people, empty in CSV, ``null`` in JSON."""

from __future__ import annotations

import json

from ssdcli.metrics.undefined import is_undefined, metric_csv, metric_json, metric_text


def test_each_form() -> None:
    nan = float("nan")
    assert is_undefined(nan) and is_undefined(None) and not is_undefined(0.0)
    assert (metric_text(nan), metric_text(0.12345)) == ("-", "0.1235")
    assert (metric_csv(nan), metric_csv(0.5), metric_csv(7)) == ("", "0.5", "7")
    assert json.dumps({"aps": metric_json(nan), "ap": metric_json(0.5)}) == (
        '{"aps": null, "ap": 0.5}'
    )


def test_eval_table_shows_a_dash() -> None:
    from ssdcli.cli.evaluate import _cell

    assert _cell(float("nan")) == "-"
