"""diffuse: diffusion models in Rust, from Langevin dynamics to Stable Diffusion, with NumPy
arrays in and out and the same numbers as the ``diffuse`` command for the same seed.

>>> import diffuse
>>> m = diffuse.Mixture(means=[[-2.0], [2.0]], stds=[0.5, 0.5], weights=[0.5, 0.5])
>>> x = diffuse.sample(m, sampler="dpmpp-2m", nfe=10, n=1000, seed=0, progress=False)
>>> x.shape
(1000, 1)
"""

from .mixture import Mixture, data
from .models import Model, StableDiffusion, load, train
from .sampling import (
    SAMPLERS,
    Chains,
    Run,
    Undiffused,
    energy_distance,
    ks_2samp,
    langevin,
    log_likelihood,
    metropolis,
    sample,
    sliced_wasserstein,
    undiffuse,
)
from .schedule import Schedule, forward

__all__ = [
    "SAMPLERS", "Chains", "Mixture", "Model", "Run", "Schedule", "StableDiffusion",
    "Undiffused", "data", "energy_distance", "forward", "ks_2samp", "langevin", "load",
    "log_likelihood", "metropolis", "sample", "sliced_wasserstein", "train", "undiffuse",
]
