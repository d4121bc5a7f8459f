"""examples/seeds.py, the notebook of seeds 000 and 004, runs and draws its figures."""

import runpy

import pytest

from conftest import ROOT


def test_the_seeds_notebook_runs(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    runpy.run_path(str(ROOT / "examples" / "seeds.py"), run_name="__main__")
    for name in ["chains", "forward", "undiffuse", "learned", "marginals", "reverse", "likelihood"]:
        assert (tmp_path / "out" / "seeds" / f"{name}.png").stat().st_size > 10_000, name
