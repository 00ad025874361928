"""The package's layout rules, read from the source: no module uses another module's
private (underscore) names, and the numeric modules share their helpers through
``gpgan._arrays`` by public name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gpgan"
MODULES = sorted(PACKAGE.rglob("*.py"))


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _is_gpgan(node: ast.ImportFrom) -> bool:
    return node.level > 0 or (node.module or "").split(".")[0] == "gpgan"


def private_uses(source: str) -> list[str]:
    """``from <gpgan module> import _name`` and ``<imported gpgan name>._name`` in
    ``source`` (a private module such as ``gpgan._arrays`` may be imported from, as
    long as the names taken from it are public)."""
    tree = ast.parse(source)
    bound, found = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and _is_gpgan(node):
            for alias in node.names:
                if _private(alias.name):
                    found.append(f"line {node.lineno}: from {'.' * node.level}"
                                 f"{node.module or ''} import {alias.name}")
                bound.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "gpgan":
                    bound.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _private(node.attr):
            root = node.value
            while isinstance(root, ast.Attribute):
                if _private(root.attr):
                    break
                root = root.value
            if isinstance(root, ast.Name) and root.id in bound:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_finds_private_uses():
    src = ("from . import poisson\nfrom .poisson import _chw, solve_level\n"
           "import gpgan.io\nfrom ._arrays import chw\n"
           "x = poisson._bbox(m)\ny = gpgan.io._read(p)\nz = self._cache\n"
           "w = chw(a).__class__\n")
    assert private_uses(src) == ["line 2: from .poisson import _chw",
                                 "line 5: poisson._bbox", "line 6: gpgan.io._read"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_module_uses_another_modules_private_names(path):
    assert private_uses(path.read_text()) == []


def test_numeric_modules_share_helpers_through_arrays():
    """The array/threading helpers have one home: no numeric module defines its own
    channel-first conversion or thread fan-out, and the FFT worker count is set by a
    function, never assigned from outside."""
    helpers = {"chw", "hwc", "bbox", "for_channels", "map_channels", "block_rows",
               "set_fft_workers", "fft_workers", "Workspace"}
    for path in MODULES:
        if path.name == "_arrays.py":
            continue
        tree = ast.parse(path.read_text())
        defined = {n.name for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        assert not defined & helpers, (path.name, defined & helpers)
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    assert not (isinstance(t, ast.Attribute) and "WORKERS" in t.attr), \
                        f"{path.name}:{node.lineno}: assigns {ast.unparse(t)}"


def test_import_and_the_numeric_methods_never_import_torch(tmp_path):
    """`import gpgan` and a blend with a method that needs no network stay free of
    torch (~3 s and ~600 MB of start-up in every CLI call and workflow job)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, gpgan\n"
            "assert 'torch' not in sys.modules, 'import gpgan'\n"
            "from gpgan.batch import blend_test_set\n"
            "r = np.random.default_rng(0)\n"
            "src, dst = r.random((40, 48, 3)), r.random((40, 48, 3))\n"
            "m = np.zeros((40, 48)); m[10:30, 12:36] = 1\n"
            "for method in ('copy-paste', 'poisson', 'mpb', 'laplacian', 'gp'):\n"
            "    gpgan.blend(src, dst, m, method=method)\n"
            "assert 'torch' not in sys.modules, 'a blend'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent)
    assert res.returncode == 0, res.stderr
