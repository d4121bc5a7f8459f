"""Mixtures of Gaussians and of point masses: data whose denoiser is known exactly."""

from __future__ import annotations

import numpy as np

from . import _checks
from . import _diffuse


class Mixture:
    """sum_c w_c N(mu_c, s_c^2 I); a component with s_c = 0 is a point mass.

    ``means`` is (k, d), or (k,) for a 1-D mixture; ``stds`` one width per component (or one
    for all); ``weights`` sum to 1 (default: equal).

    Its exact denoiser E[x_0 | x_t] drives any sampler (``diffuse.sample(mixture, ...)``), as
    seed 004's Gaussian denoising and seed 000's ideal ``GuessZ``.

    >>> m = Mixture(means=[[-2.0], [2.0]], stds=[0.5, 0.5], weights=[0.3, 0.7])
    >>> m.dim
    1
    """

    def __init__(self, means, stds, weights=None) -> None:
        means = _checks.points(means, "means")
        k = means.shape[0]
        stds = np.full(k, float(stds)) if np.ndim(stds) == 0 else _checks.vector(stds, "stds")
        weights = np.full(k, 1.0 / k) if weights is None else _checks.vector(weights, "weights")
        if len(stds) != k or len(weights) != k:
            raise ValueError(
                f"a mixture of {k} components needs {k} stds and {k} weights "
                f"(got {len(stds)} and {len(weights)})"
            )
        # The native side checks the rest (positive weights, non-negative widths).
        self.weights, self.means, self.stds = _diffuse.mixture_new(weights, means, stds)
        self.analytic = True

    @classmethod
    def deltas(cls, values) -> "Mixture":
        """Equal point masses at the given 1-D values (seed 000's data)."""
        v = _checks.vector(values, "values")
        return cls(v.reshape(-1, 1), np.zeros(len(v)))

    @classmethod
    def points(cls, x) -> "Mixture":
        """The empirical distribution of the rows of x: equal point masses."""
        x = _checks.points(x, "x")
        return cls(x, np.zeros(len(x)))

    @classmethod
    def data(cls, spec: str, reference: int = 2000, seed: int = 0) -> "Mixture":
        """The mixture whose exact denoiser stands for a data spec (the ``--data`` grammar):
        the spec's own mixture (``gmm:...``, ``deltas:...``), or for a toy set (``spiral``,
        ``moons``...) the empirical law of ``reference`` of its points drawn with ``seed``, as
        ``diffuse undiffuse`` does."""
        (w, m, s), analytic = _diffuse.data_mixture(spec, _checks.count(reference, "reference"), _checks.seed(seed))
        out = cls.__new__(cls)
        out.weights, out.means, out.stds, out.analytic = w, m, s, analytic
        return out

    @property
    def dim(self) -> int:
        """The dimension d."""
        return self.means.shape[1]

    def _arrays(self):
        return self.weights, self.means, self.stds

    def sample(self, n: int, seed: int = 0) -> np.ndarray:
        """n samples, (n, d)."""
        return _diffuse.mixture_sample(*self._arrays(), _checks.count(n, "n"), _checks.seed(seed))

    def log_density(self, x) -> np.ndarray:
        """log q(x) of every row of x, (n,)."""
        return _diffuse.mixture_eval(*self._arrays(), "log_density", _checks.points(x, "x", self.dim), 1.0)

    def score(self, x) -> np.ndarray:
        """grad_x log q(x) of every row of x, (n, d)."""
        return _diffuse.mixture_eval(*self._arrays(), "score", _checks.points(x, "x", self.dim), 1.0)

    def denoise(self, x, alpha_bar: float) -> np.ndarray:
        """E[x_0 | x_t = x] for x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps (Tweedie)."""
        return _diffuse.mixture_eval(
            *self._arrays(), "denoise", _checks.points(x, "x", self.dim), float(alpha_bar)
        )

    def diffused(self, alpha_bar: float) -> "Mixture":
        """q_t in closed form: the mixture after the forward process to ``alpha_bar``."""
        out = Mixture.__new__(Mixture)
        out.weights, out.means, out.stds = _diffuse.mixture_diffused(*self._arrays(), float(alpha_bar))
        out.analytic = True
        return out

    def __repr__(self) -> str:
        return f"Mixture({len(self.weights)} components in {self.dim} dimensions)"


def data(spec: str, n: int = 10_000, seed: int = 0) -> np.ndarray:
    """n samples of a data spec (``spiral``, ``moons``, ``gmm:...``, a CSV file...), (n, d), as
    the command line draws its data."""
    return _diffuse.data_sample(spec, _checks.count(n, "n"), _checks.seed(seed))


