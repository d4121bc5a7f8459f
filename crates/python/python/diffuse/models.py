"""Models trained here (and the ones shipped with diffuse), and Stable Diffusion folders."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Optional, Union

import numpy as np

from . import _checks
from . import _diffuse
from ._progress import Progress, reporter

PathLike = Union[str, "os.PathLike[str]"]


class Model:
    """A trained denoiser: a folder written by ``diffuse train`` (or :func:`train`), or a model
    shipped with diffuse by name (``"fashion-mnist"``).

    Attributes:
        dim: the dimension of a sample. image_shape: (height, width) of an image model's
            samples, else None. classes: the class names it can be asked for.
        record: its config.json as a dict (architecture, schedule, data, standardisation).
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        #: The folder it was loaded from, or the shipped model's name.
        self.path = os.fspath(native.source)

    @classmethod
    def load(cls, path: PathLike, device: str = "auto") -> "Model":
        """Loads a model folder, or a shipped model by name, on ``device`` (``"auto"``: the
        best this build has, a GPU when built with the wgpu or cuda feature; ``"cpu"``,
        ``"wgpu"``, ``"cuda:1"``, ... as ``--device``); it samples there."""
        return cls(_diffuse.NativeModel(os.fspath(path), str(device)))

    @property
    def dim(self) -> int:
        return self._native.dim

    @property
    def image_shape(self) -> Optional[tuple]:
        return self._native.image_shape

    @property
    def classes(self) -> list:
        return self._native.classes

    @property
    def record(self) -> dict:
        return json.loads(self._native.record)

    def sample(
        self,
        n: Optional[int] = None,
        sampler: Optional[str] = None,
        nfe: Optional[int] = None,
        seed: int = 0,
        *,
        label: Optional[str] = None,
        prompt: Optional[str] = None,
        guidance: Optional[float] = None,
        grid: Union[None, str, list] = None,
        clip: bool = True,
        prompt_as_is: bool = False,
        batch: int = 10_000,
        progress: Progress = None,
        info: bool = False,
        _options: Optional[dict] = None,
        **options: Any,
    ):
        """Samples of the model, as ``diffuse sample --model``: the same defaults (an image
        model: 20 images by DPM-Solver++(2M) in 20 evaluations, guidance 3 when asked for
        something; a toy model: 10,000 points by DDPM) and, for the same seed, the same numbers.

        ``label`` asks for a class (``"all"``: every class in turn, n each), ``prompt`` for a
        sentence (prompt models) or a class name; ``guidance`` is the classifier-free weight.
        A model trained on captions reads a prompt as its nearest caption (by a vote over each
        class's captions; ``report["prompt_read_as"]`` with ``info``); ``prompt_as_is`` gives
        it the prompt's own embedding instead.

        Returns an (n, d) array in the data's units; for an image model, (n, height, width)
        pixels in [-1, 1]. With ``info``, also a Run with the evaluations, the sampler's
        settings and, when classes were asked for, ``report["labels"]``.
        """
        opts = _options if _options is not None else _checks.sampler(sampler, nfe, grid, options)
        if n is not None:
            n = _checks.count(n, "n")
        if guidance is not None:
            guidance = float(guidance)
        with reporter(progress) as cb:
            x, labels, used, settings, read_as = self._native.sample(
                n, opts, _checks.seed(seed), _checks.count(batch, "batch"), label, prompt,
                guidance, bool(clip), bool(prompt_as_is), cb,
            )
        shape = self.image_shape
        if shape is not None:
            x = x.reshape(-1, *shape)
        if not info:
            return x
        from .sampling import Run

        report = {"labels": labels} if labels else {}
        if read_as is not None:
            report["prompt_read_as"], report["prompt_read_as_class"] = read_as
        return x, Run(used, json.loads(settings), report)

    def log_likelihood(self, x, **kwargs: Any):
        """log p(x) of every row of x under the model (see :func:`diffuse.log_likelihood`)."""
        from .sampling import log_likelihood

        return log_likelihood(x, self, **kwargs)

    def __repr__(self) -> str:
        return f"Model({self._native.source!r}, dim={self.dim})"


def train(
    data: Any,
    out: Optional[PathLike] = None,
    steps: int = 5000,
    *,
    labels=None,
    model: str = "mlp",
    hidden: int = 256,
    depth: int = 3,
    activation: str = "relu",
    time_features: int = 32,
    channels: int = 32,
    schedule: str = "linear:1e-4:0.02",
    timesteps: int = 1000,
    batch: int = 256,
    lr: float = 1e-3,
    weight_decay: Optional[float] = None,
    standardize: bool = True,
    clip: Optional[float] = None,
    save_every: int = 1000,
    resume: bool = False,
    force: bool = False,
    cond: str = "none",
    target: str = "eps",
    ema: Optional[float] = None,
    label_dropout: float = 0.1,
    prompt_noise: float = 0.0,
    seed: int = 0,
    device: str = "auto",
    progress: Progress = None,
) -> Model:
    """Trains a denoiser with the DDPM loss into the folder ``out`` and returns it loaded, as
    ``diffuse train`` (every option is the command line's, with its default). Without ``out``,
    a new temporary folder (``model.path`` says which).

    ``data`` is a data spec (``spiral``, ``moons``, ``gmm:...``, ``fashion-mnist``, a CSV
    file), or an (n, d) array of points (with ``labels``, one class name per row, for
    ``cond="label"``), written to ``out/data.csv`` so that the model's record names its data. A folder that already holds a model is kept unless ``force`` (replace it)
    or ``resume`` (continue its training). Checkpoints are written every ``save_every`` steps;
    Ctrl-C stops the run and keeps the last one. ``model.losses`` afterwards holds (step,
    loss) rows. ``device`` is where it trains and the returned model samples (as
    :meth:`Model.load`); the same seed trains the same model on every device, up to float32
    summation order.
    """
    if out is None:
        out = tempfile.mkdtemp(prefix="diffuse-model-")
    if isinstance(data, str):
        if labels is not None:
            raise ValueError("labels go with an array of points; a data spec carries its own")
        spec, x = data, None
    else:
        spec, x = None, _checks.points(data, "data")
        if labels is not None:
            labels = [str(v) for v in np.asarray(labels).ravel()]
            if len(labels) != len(x):
                raise ValueError(f"labels: {len(labels)} labels for {len(x)} rows of data")
    options = {
        "model": model, "time_features": _checks.count(time_features, "time_features"),
        "channels": _checks.count(channels, "channels"), "hidden": _checks.count(hidden, "hidden"),
        "depth": _checks.count(depth, "depth"), "activation": activation, "schedule": schedule,
        "timesteps": _checks.count(timesteps, "timesteps"), "steps": _checks.count(steps, "steps"),
        "batch": _checks.count(batch, "batch"), "lr": float(lr),
        "weight_decay": None if weight_decay is None else float(weight_decay),
        "no_standardize": not standardize, "clip": None if clip is None else float(clip),
        "save_every": _checks.count(save_every, "save_every"), "resume": bool(resume),
        "force": bool(force), "cond": cond, "target": target,
        "ema": None if ema is None else float(ema), "label_dropout": float(label_dropout),
        "prompt_noise": float(prompt_noise), "seed": _checks.seed(seed), "device": str(device),
    }
    with reporter(progress) as cb:
        losses, report = _diffuse.train_model(spec, x, labels, os.fspath(out), options, cb)
    m = Model.load(out, device)
    m.losses = losses
    m.report = json.loads(report)
    return m


class StableDiffusion:
    """A Stable Diffusion pipeline folder as diffusers saves it (``model_index.json``, the
    text encoder, UNet, VAE, tokenizer and scheduler), or a shipped one by name
    (``"colour-fashion"``), run as ``diffuse sample --model``, on ``device`` (as
    :meth:`Model.load`)."""

    def __init__(self, path: PathLike, device: str = "auto") -> None:
        self._native = _diffuse.NativeStableDiffusion(os.fspath(path), str(device))
        self.path = os.fspath(path)

    def __call__(
        self,
        prompt: str,
        negative_prompt: str = "",
        guidance: Optional[float] = None,
        steps: Optional[int] = None,
        seed: int = 0,
        n: int = 1,
        *,
        sampler: Optional[str] = None,
        batch: int = 1,
        height: Optional[int] = None,
        width: Optional[int] = None,
        progress: Progress = None,
    ) -> np.ndarray:
        """Images for a prompt, (n, height, width, 3) uint8. Without ``guidance`` and ``steps``,
        diffusers' defaults (7.5, 25) for a downloaded pipeline and 3, 20 for one trained here;
        the sampler is the one that stands for the folder's scheduler."""
        with reporter(progress) as cb:
            images, _ = self._native.generate(
                str(prompt), str(negative_prompt),
                None if guidance is None else float(guidance), sampler,
                None if steps is None else _checks.count(steps, "steps"), _checks.seed(seed), _checks.count(n, "n"),
                _checks.count(batch, "batch"), height, width, cb,
            )
        return images

    def __repr__(self) -> str:
        return f"StableDiffusion({self.path!r})"


def load(path: PathLike, device: str = "auto") -> Union[Model, StableDiffusion]:
    """A Stable Diffusion folder (with model_index.json), a model folder, or a shipped model
    by name, on ``device`` (``"auto"``, ``"cpu"``, ``"wgpu"``, ``"cuda:1"``, ... as
    ``--device``)."""
    if os.path.isfile(os.path.join(os.fspath(path), "model_index.json")) or (
        not os.path.exists(os.fspath(path)) and os.fspath(path) in _diffuse.shipped_pipelines()
    ):
        return StableDiffusion(path, device)
    return Model.load(path, device)
