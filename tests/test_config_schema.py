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
