"""Turning what a user passes into what the native module reads, with one-line errors."""

from __future__ import annotations

from typing import Any, Optional

import numpy as np


def points(x: Any, name: str = "x", dim: Optional[int] = None) -> np.ndarray:
    """`x` as a float64 array of shape (n, d): n points of dimension d.

    A 1-D array is read as n points of dimension 1 when the dimension is 1 or not known. Any
    layout is accepted (a transposed or strided view is read as it looks). A NaN or an infinity
    is refused, naming its row and column.
    """
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: expected an array of numbers ({e})") from None
    if a.ndim == 1 and dim in (None, 1):
        a = a.reshape(-1, 1)
    if a.ndim != 2:
        want = f"(n, {dim})" if dim is not None else "(n, d)"
        raise ValueError(f"{name}: expected a 2-D array of shape {want}, got shape {a.shape}")
    if dim is not None and a.shape[1] != dim:
        raise ValueError(f"{name}: expected {dim} columns, got shape {a.shape}")
    if a.shape[0] == 0:
        raise ValueError(f"{name}: has no rows")
    bad = ~np.isfinite(a)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(
            f"{name}: row {i}, column {j} is {a[i, j]}: every value must be a finite number"
        )
    return a


def vector(x: Any, name: str) -> np.ndarray:
    """`x` as a finite float64 1-D array."""
    a = points(x, name, dim=1)
    return np.ascontiguousarray(a[:, 0])


def count(v: Any, name: str) -> int:
    """A positive whole number."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive whole number (got {v!r})")
    return int(v)


def seed(v: Any) -> int:
    """A seed: a whole number in [0, 2**64)."""
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= v < 2**64:
        raise ValueError(f"seed must be a whole number in [0, 2**64) (got {v!r})")
    return int(v)


SAMPLER_OPTIONS = (
    "eta", "churn", "grid_steps", "tol", "sigma_max", "sigma_min", "variance", "ends"
)


def sampler(
    name: Optional[str], nfe: Optional[int], grid: Optional[str], options: dict
) -> dict:
    """The sampler settings the native module reads, with the command line's defaults."""
    unknown = sorted(set(options) - set(SAMPLER_OPTIONS))
    if unknown:
        raise TypeError(
            f"unknown sampler option {unknown[0]!r} (expected one of {', '.join(SAMPLER_OPTIONS)})"
        )
    if nfe is not None:
        nfe = count(nfe, "nfe")
    if grid is not None and not isinstance(grid, str):
        # A list of levels: a given grid, as the command line's sigmas:S1,S2,...
        grid = "sigmas:" + ",".join(repr(float(s)) for s in np.asarray(grid, dtype=float).ravel())
    return {
        "sampler": name,
        "nfe": nfe,
        "grid": grid,
        "eta": options.get("eta"),
        "churn": float(options.get("churn", 0.0)),
        "grid_steps": options.get("grid_steps"),
        "tol": float(options.get("tol", 1e-5)),
        "sigma_max": options.get("sigma_max"),
        "sigma_min": options.get("sigma_min"),
        "variance": options.get("variance", "posterior"),
        "ends": options.get("ends"),
    }
