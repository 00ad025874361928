"""The config schema's lists of names are the package's: method, metric and solver names
are written in workflow/schemas/config.schema.yaml for validation, and must stay equal
to gpgan.METHODS, gpgan.metrics.METRICS and gpgan.poisson.SOLVERS."""

from __future__ import annotations

from pathlib import Path

import yaml

import gpgan
from gpgan.metrics import METRICS
from gpgan.poisson import DEFAULT_SOLVER, SOLVERS

SCHEMA = Path(__file__).resolve().parents[1] / "workflow" / "schemas" / "config.schema.yaml"


def _section(name: str) -> dict:
    return yaml.safe_load(SCHEMA.read_text())["properties"][name]["properties"]


def test_method_enum_and_default_are_gpgan_methods():
    methods = _section("blend")["methods"]
    assert methods["items"]["enum"] == list(gpgan.METHODS)
    assert methods["default"] == list(gpgan.METHODS)


def test_metric_enum_and_default_are_gpgan_metrics():
    metrics = _section("evaluate")["metrics"]
    assert metrics["items"]["enum"] == list(METRICS)
    assert metrics["default"] == list(METRICS)


def test_solver_enum_and_default_are_gpgan_solvers():
    solver = _section("blend")["solver"]
    assert solver["enum"] == list(SOLVERS)
    assert solver["default"] == DEFAULT_SOLVER


def test_realism_section_defaults_are_the_judge_defaults():
    """The realism section's judge keys (common.smk JUDGE_KEYS: all but the workflow's
    own) and their defaults are gpgan.realism.JUDGE_DEFAULTS, the mix's kinds are
    gpgan.data.realism.KINDS."""
    from gpgan.data.realism import KINDS
    from gpgan.realism import JUDGE_DEFAULTS

    section = _section("realism")
    workflow_keys = {"enabled", "n_cross", "cross_splits", "n_validation", "use_mask", "device"}
    judge = {k: v for k, v in section.items() if k not in workflow_keys}
    assert set(judge) == set(JUDGE_DEFAULTS)
    for key, spec in judge.items():
        if key == "mix":
            assert list(spec["properties"]) == list(KINDS)
            assert {k: v["default"] for k, v in spec["properties"].items()} == \
                JUDGE_DEFAULTS["mix"]
        else:
            expected = JUDGE_DEFAULTS[key]
            assert spec["default"] == (list(expected) if isinstance(expected, tuple)
                                       else expected), key
    import re

    smk = (SCHEMA.parents[1] / "rules" / "common.smk").read_text()
    listed = re.search(r"JUDGE_KEYS = \[.*?not in \(([^)]*)\)", smk, re.S).group(1)
    assert set(re.findall(r'"([a-z_]+)"', listed)) == workflow_keys
