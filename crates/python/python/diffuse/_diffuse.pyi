"""Type hints of the native module (crates/python/src). Users call the package's functions
(diffuse.sample, diffuse.Mixture...), which check their arguments and call these."""

from typing import Callable, Optional

import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
Progress = Optional[Callable[[str, int, int], object]]
MixtureArrays = tuple[F64, F64, F64]

def schedule_tables(spec: str, steps: int) -> tuple[str, F64, F64]: ...
def forward_process(
    x0: F64, spec: str, steps: int, t: int, seed: int, closed_form: bool
) -> tuple[F64, Optional[F64]]: ...
def data_mixture(spec: str, reference: int, seed: int) -> tuple[MixtureArrays, bool]: ...
def data_sample(spec: str, n: int, seed: int) -> F64: ...
def mixture_new(weights: F64, means: F64, stds: F64) -> MixtureArrays: ...
def mixture_eval(
    weights: F64, means: F64, stds: F64, what: str, x: F64, alpha_bar: float
) -> F64: ...
def mixture_sample(weights: F64, means: F64, stds: F64, n: int, seed: int) -> F64: ...
def mixture_diffused(weights: F64, means: F64, stds: F64, alpha_bar: float) -> MixtureArrays: ...
def distance(what: str, a: F64, b: F64, projections: int, seed: int) -> tuple[float, Optional[float]]: ...
def chains(
    energy: str, proposal: Optional[str], chains: int, steps: int, delta: float, start: float,
    seed: int, progress: Progress,
) -> tuple[F64, str]: ...
def sample_denoiser(
    mixture_arrays: Optional[MixtureArrays], function: Optional[Callable[[F64, float], F64]],
    dim: int, schedule_spec: str, steps: int, options: dict, n: int, batch: int, seed: int,
    progress: Progress,
) -> tuple[F64, int, str]: ...
def undiffuse_data(
    data: str, schedule_spec: str, steps: int, from_: Optional[int], to: int, prior: str,
    start: Optional[list[float]], options: dict, n: int, batch: int, reference: int, seed: int,
    progress: Progress,
) -> tuple[F64, F64, int, str, str]: ...
def log_likelihood_of(
    data: Optional[str], mixture_arrays: Optional[MixtureArrays], x: F64, schedule_spec: str,
    steps: int, probes: int, ode_steps: int, batch: int, reference: int, seed: int,
    progress: Progress,
) -> tuple[F64, int, str]: ...
def train_model(
    data: Optional[str], x: Optional[F64], labels: Optional[list[str]], out: str, options: dict,
    progress: Progress,
) -> tuple[F64, str]: ...

class NativeModel:
    dim: int
    image_shape: Optional[tuple[int, int]]
    classes: list[str]
    reads_prompts: bool
    record: str
    source: str
    def __init__(self, path: str, device: str) -> None: ...
    def sample(
        self, n: Optional[int], options: dict, seed: int, batch: int, label: Optional[str],
        prompt: Optional[str], guidance: Optional[float], clip: bool, prompt_as_is: bool,
        progress: Progress,
    ) -> tuple[F64, list[str], int, str, Optional[tuple[str, str]]]: ...
    def log_likelihood(
        self, x: F64, probes: int, ode_steps: int, batch: int, seed: int, progress: Progress
    ) -> tuple[F64, int, str]: ...

class NativeStableDiffusion:
    default_size: int
    def __init__(self, path: str, device: str) -> None: ...
    def generate(
        self, prompt: str, negative_prompt: str, guidance: float, sampler: Optional[str],
        steps: int, seed: int, n: int, batch: int, height: Optional[int], width: Optional[int],
        progress: Progress,
    ) -> tuple[NDArray[np.uint8], str]: ...
