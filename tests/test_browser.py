"""The browser check itself: it must tell a chart that rendered from one that failed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dvc_render.vega import VegaRenderer

from tests import browser


def test_a_broken_chart_is_caught(tmp_path: Path) -> None:
    why = browser.missing()
    if why and not os.environ.get("REQUIRE_BROWSER"):
        pytest.skip(why)
    good = {
        "data": {"values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]},
        "mark": "line",
        "encoding": {"x": {"field": "x", "type": "quantitative"}, "y": {"field": "y", "type": "quantitative"}},
    }
    broken = {**good, "mark": "no-such-mark"}  # fails to embed
    no_field = {
        **good,
        "encoding": {**good["encoding"], "y": {"field": "missing", "type": "quantitative"}},
    }  # draws nothing
    specs = (good, broken, no_field)
    divs = "".join(VegaRenderer.DIV.format(id=f"plot{i}", partial=json.dumps(spec)) for i, spec in enumerate(specs))
    page = tmp_path / "index.html"
    page.write_text(f"<html><head>{VegaRenderer.SCRIPTS}</head><body>{divs}</body></html>")
    result = browser.render(page)
    assert (result.charts, result.rendered) == (3, 2)
    assert any(problem.startswith("error: ") for problem in result.problems), result.problems
    assert any('Infinite extent for field "missing"' in problem for problem in result.problems), result.problems
