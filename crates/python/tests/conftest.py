"""Shared helpers of the Python suite (run by .ci/run after `pip install ./crates/python`)."""

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def cli():
    """The `diffuse` command built from this checkout: $DIFFUSE_BIN, else target/{debug,release},
    else the one on PATH."""
    candidates = [os.environ.get("DIFFUSE_BIN")]
    candidates += [str(ROOT / "target" / p / "diffuse") for p in ("debug", "release")]
    candidates.append(shutil.which("diffuse"))
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    pytest.skip("no diffuse command built (cargo build -p diffuse-cli, or set DIFFUSE_BIN)")
