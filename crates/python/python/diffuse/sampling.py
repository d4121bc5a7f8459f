"""Sampling any denoiser with any sampler, undiffusion, chains, likelihoods and metrics."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

import numpy as np

from . import _checks
from . import _diffuse
from ._progress import Progress, reporter
from .mixture import Mixture
from .schedule import Schedule, as_schedule

#: Every sampler by the name ``sampler=`` takes.
SAMPLERS = (
    "ddpm", "ddim", "euler", "euler-ancestral", "heun", "lms", "dpmpp-2m", "dpmpp-3m",
    "dpmpp-3m-diffusers", "unipc", "sde", "ode",
)


@dataclass
class Run:
    """What a sampling call produced besides its samples."""

    #: Denoiser evaluations of one batch.
    nfe: int
    #: The settings the sampler ran with (its grid, steps, budget).
    settings: dict = field(default_factory=dict)
    #: Measures of the samples (undiffuse, chains, likelihoods), as the command line's summary.
    report: dict = field(default_factory=dict)


def _x0_function(f: Callable, dim: int) -> Callable:
    """The user's f(x, sigma) -> x0, its output checked and made float64."""

    def call(x: np.ndarray, sigma: float) -> np.ndarray:
        out = np.asarray(f(x, sigma), dtype=np.float64)
        if out.shape != x.shape:
            raise ValueError(
                f"the denoiser returned shape {out.shape} for x of shape {x.shape}: it must "
                "return its estimate of x0, shaped like x"
            )
        return out

    return call


def sample(
    denoiser: Any,
    sampler: Optional[str] = "dpmpp-2m",
    nfe: Optional[int] = None,
    n: int = 10_000,
    seed: int = 0,
    *,
    grid: Union[None, str, list] = None,
    schedule: Union[None, str, Schedule] = None,
    dim: Optional[int] = None,
    batch: int = 10_000,
    progress: Progress = None,
    info: bool = False,
    **options: Any,
):
    """Draws n samples by running a reverse sampler from N(0, I) down to the data.

    Args:
        denoiser: a :class:`Mixture` (its exact denoiser), a :class:`Model` (trained here), or
            a Python function ``f(x, sigma) -> x0`` in k-diffusion's convention: ``x`` is an
            (m, dim) float64 array ``x0 + sigma * eps`` (the variance-exploding scaling) and the
            function returns its estimate of x0, shaped like x (a PyTorch model fits in a
            lambda: ``lambda x, s: net(torch.from_numpy(x), s).detach().numpy()``).
        sampler: one of :data:`SAMPLERS`.
        nfe: the evaluation budget (default 50; ddpm, sde and ode set their own).
        n: samples. seed: every random number (the same seed, the same samples, whatever
            ``batch``).
        grid: ``karras[:RHO]``, ``exponential``, ``logsnr``, ``uniform``, ``leading``,
            ``trailing``, ``linspace``, ``fitted``, or a list of sigmas.
        schedule: the noise schedule the sampler's levels come from (a Schedule or a spec;
            default linear 1e-4..0.02 over 1000 steps, DDPM's); a Model uses its own.
        dim: the dimension of a Python denoiser's samples.
        batch: samples evaluated together (memory only; the samples do not depend on it).
        progress: a callable ``progress(what, done, total)``, False for none, or None for a
            tqdm bar when tqdm is installed. Ctrl-C stops the call (KeyboardInterrupt).
        info: also return a :class:`Run` (nfe, the sampler's settings).
        options: eta, churn, grid_steps, tol, sigma_max, sigma_min, variance, ends, as the command
            line's options of those names.

    Returns:
        an (n, d) float64 array (and a Run with ``info=True``).
    """
    from .models import Model

    opts = _checks.sampler(sampler, nfe, grid, options)
    n, batch, seed = _checks.count(n, "n"), _checks.count(batch, "batch"), _checks.seed(seed)
    if isinstance(denoiser, Model):
        if schedule is not None:
            raise ValueError("a Model samples on the schedule it was trained with: give no schedule")
        return denoiser.sample(n, seed=seed, batch=batch, progress=progress, info=info, _options=opts)
    s = as_schedule(schedule if schedule is not None else "linear:1e-4:0.02")
    mixture, function = None, None
    if isinstance(denoiser, Mixture):
        mixture, dim = denoiser._arrays(), denoiser.dim
    elif callable(denoiser):
        if dim is None:
            raise ValueError("dim: give the dimension of the samples a Python denoiser makes")
        dim = _checks.count(dim, "dim")
        function = _x0_function(denoiser, dim)
    else:
        raise ValueError(
            f"denoiser must be a Mixture, a Model or a function f(x, sigma) -> x0 (got {type(denoiser).__name__})"
        )
    with reporter(progress) as cb:
        x, used, settings = _diffuse.sample_denoiser(
            mixture, function, dim, s.spec, s.steps, opts, n, batch, seed, cb
        )
    return (x, Run(used, json.loads(settings))) if info else x


@dataclass
class Undiffused:
    """What :func:`undiffuse` produced."""

    #: The samples x_B, (n, d).
    x: np.ndarray
    #: A fresh draw of q_B (data diffused to B in closed form), (n, d).
    reference: np.ndarray
    #: Evaluations of one batch, the sampler's settings and the measures of x_B against q_B.
    run: Run


def undiffuse(
    data: str,
    schedule: str = "linear:1e-4:0.02",
    steps: Optional[int] = None,
    from_: Optional[int] = None,
    to: int = 0,
    prior: str = "diffused",
    start=None,
    sampler: Optional[str] = None,
    nfe: Optional[int] = None,
    n: int = 10_000,
    seed: int = 0,
    *,
    grid: Union[None, str, list] = None,
    batch: int = 10_000,
    reference: int = 2000,
    progress: Progress = None,
    **options: Any,
) -> Undiffused:
    """``diffuse undiffuse``: the reverse process from step A (``from_``, default T) down to B
    (``to``) driven by the exact denoiser of a data spec (seed 000's Undiffuse with the ideal
    GuessZ; seed 004's reverse SDE and ODE). Every argument is the command line's option of the
    same name with the same default (the sampler ddpm), and the same seed gives the same numbers.
    ``prior`` is ``diffused`` (data diffused to A) or ``normal``; ``start`` puts every sample
    at one point. ``steps`` is T: 200 by default, 1000 with ``prior="normal"`` (so that x_T is
    close to N(0, I))."""
    opts = _checks.sampler(sampler, nfe, grid, options)
    if steps is None:
        steps = 1000 if prior == "normal" and start is None else 200
    if start is not None:
        start = [float(v) for v in np.asarray(start, dtype=float).ravel()]
        if not all(np.isfinite(start)):
            raise ValueError("start: every coordinate must be a finite number")
    with reporter(progress) as cb:
        x, ref, used, report, settings = _diffuse.undiffuse_data(
            data, schedule, _checks.count(steps, "steps"), from_, int(to), prior, start, opts,
            _checks.count(n, "n"), _checks.count(batch, "batch"),
            _checks.count(reference, "reference"), _checks.seed(seed), cb,
        )
    return Undiffused(x, ref, Run(used, json.loads(settings), json.loads(report)))


@dataclass
class Chains:
    """Final states of MCMC chains and how they compare with exp(-E) / Z."""

    #: The final state of each chain, (chains,).
    states: np.ndarray
    #: KS test against the stationary law, mean, variance, acceptance...
    report: dict


def langevin(
    energy: str = "quadratic",
    chains: int = 10_000,
    steps: int = 2000,
    delta: float = 0.01,
    start: float = 0.0,
    seed: int = 0,
    progress: Progress = None,
) -> Chains:
    """Overdamped Langevin chains x <- x - delta E'(x) + sqrt(2 delta) z on an energy
    (``quadratic[:K]`` or ``double-well[:A]``), every chain from ``start`` (seed 000); the
    command line's ``diffuse langevin``."""
    return _chains(energy, None, chains, steps, delta, start, seed, progress)


def metropolis(
    energy: str = "quadratic",
    proposal: str = "gaussian:1.0",
    chains: int = 10_000,
    steps: int = 2000,
    start: float = 0.0,
    seed: int = 0,
    progress: Progress = None,
) -> Chains:
    """Metropolis-Hastings chains with a ``gaussian:WIDTH`` or ``langevin:DELTA`` proposal
    (seed 000); the command line's ``diffuse metropolis``."""
    return _chains(energy, proposal, chains, steps, 0.0, start, seed, progress)


def _chains(energy, proposal, chains, steps, delta, start, seed, progress) -> Chains:
    with reporter(progress) as cb:
        states, report = _diffuse.chains(
            energy, proposal, _checks.count(chains, "chains"), _checks.count(steps, "steps"),
            float(delta), float(start), _checks.seed(seed), cb,
        )
    return Chains(states, json.loads(report))


def log_likelihood(
    x,
    density: Any,
    schedule: Union[str, Schedule] = "linear:1e-4:0.02",
    steps: int = 1000,
    *,
    probes: int = 0,
    ode_steps: int = 200,
    batch: int = 2000,
    reference: int = 2000,
    seed: int = 0,
    progress: Progress = None,
    info: bool = False,
):
    """log p(x) in nats of every row of x under a density, by the probability-flow ODE's
    instantaneous change of variables (``diffuse nll``).

    ``density`` is a data spec (its exact denoiser), a :class:`Mixture`, or a :class:`Model`
    (on its own schedule). ``probes`` > 0 estimates the divergence with that many Hutchinson
    probes instead of exactly. With ``info``, also a Run whose report has the mean NLL, its
    standard error, bits per dimension and, when the true density is known, the true value."""
    from .models import Model

    dim = getattr(density, "dim", None)
    x = _checks.points(x, "x", dim)
    args = (int(probes), _checks.count(ode_steps, "ode_steps"), _checks.count(batch, "batch"))
    with reporter(progress) as cb:
        if isinstance(density, Model):
            ll, used, report = density._native.log_likelihood(x, *args, _checks.seed(seed), cb)
        else:
            s = as_schedule(schedule, steps)
            spec, mixture = (density, None) if isinstance(density, str) else (None, None)
            if isinstance(density, Mixture):
                mixture = density._arrays()
            elif spec is None:
                raise ValueError(
                    f"density must be a data spec, a Mixture or a Model (got {type(density).__name__})"
                )
            ll, used, report = _diffuse.log_likelihood_of(
                spec, mixture, x, s.spec, s.steps, *args,
                _checks.count(reference, "reference"), _checks.seed(seed), cb,
            )
    return (ll, Run(used, {}, json.loads(report))) if info else ll


def energy_distance(a, b) -> float:
    """The energy distance between two samples (rows of a and b)."""
    a = _checks.points(a, "a")
    return _diffuse.distance("energy", a, _checks.points(b, "b", a.shape[1]), 1, 0)[0]


def sliced_wasserstein(a, b, projections: int = 256, seed: int = 0) -> float:
    """The sliced 1-Wasserstein distance between two samples over ``projections`` random
    directions (the exact 1-Wasserstein distance in 1-D)."""
    a = _checks.points(a, "a")
    return _diffuse.distance(
        "sliced-wasserstein", a, _checks.points(b, "b", a.shape[1]),
        _checks.count(projections, "projections"), _checks.seed(seed),
    )[0]


def ks_2samp(a, b) -> tuple:
    """The two-sample Kolmogorov-Smirnov statistic and its p-value (1-D samples)."""
    stat, p = _diffuse.distance("ks", _checks.points(a, "a", 1), _checks.points(b, "b", 1), 1, 0)
    return stat, p
