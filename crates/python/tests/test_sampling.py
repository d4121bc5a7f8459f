"""Samplers over exact mixtures, trained models and Python functions."""

import numpy as np
import pytest

import diffuse


def test_exact_mixture_samples_follow_the_mixture():
    m = diffuse.Mixture(means=[[1.0, -1.0]], stds=[0.5])
    n = 20_000
    x = diffuse.sample(m, sampler="heun", nfe=99, n=n, seed=0, progress=False)
    assert x.shape == (n, 2) and x.dtype == np.float64
    # N((1, -1), 0.25 I): mean and variance within 5 standard errors (plus 1% for the solver).
    assert np.all(np.abs(x.mean(0) - [1.0, -1.0]) < 5 * 0.5 / np.sqrt(n))
    assert np.all(np.abs(x.var(0) - 0.25) < 5 * 0.25 * np.sqrt(2 / n) + 0.0025)


def test_the_same_seed_gives_the_same_bytes_whatever_the_batch():
    m = diffuse.Mixture.data("moons", reference=200)
    a = diffuse.sample(m, nfe=8, n=300, seed=5, progress=False)
    b = diffuse.sample(m, nfe=8, n=300, seed=5, batch=7, progress=False)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, diffuse.sample(m, nfe=8, n=300, seed=6, progress=False))


def test_a_python_denoiser_drives_every_sampler():
    # Data N(0, I): E[x0 | x0 + sigma eps = x] = x / (1 + sigma^2), in k-diffusion's convention.
    calls = []

    def gaussian(x, sigma):
        calls.append((x.shape, sigma))
        return x / (1 + sigma**2)

    n = 20_000
    x, run = diffuse.sample(gaussian, sampler="dpmpp-2m", nfe=100, n=n, dim=2, seed=1,
                            progress=False, info=True)
    # Two batches of 10,000 rows (the default batch), 100 evaluations each.
    assert run.nfe == 100 and len(calls) == 200 and calls[0][0] == (10_000, 2)
    assert np.all(np.abs(x.mean(0)) < 5 / np.sqrt(n))
    assert np.all(np.abs(x.var(0) - 1) < 5 * np.sqrt(2 / n) + 0.01)
    for name in diffuse.SAMPLERS:
        if name in ("ddpm", "sde", "ode"):
            continue  # every step of the schedule: covered by the mixture test below
        y = diffuse.sample(gaussian, sampler=name, nfe=10, n=50, dim=2, progress=False)
        assert y.shape == (50, 2) and np.all(np.isfinite(y)), name


def test_a_python_denoiser_gives_the_native_denoisers_samples():
    m = diffuse.Mixture(means=[[-2.0], [2.0]], stds=[0.3, 0.6], weights=[0.4, 0.6])

    def tweedie(x, sigma):  # the same exact denoiser, written in Python
        ab = 1 / (1 + sigma**2)
        return m.denoise(x * np.sqrt(ab), ab)

    for sampler in ("euler", "dpmpp-2m", "ddim", "ddpm"):
        nfe = None if sampler == "ddpm" else 10
        native = diffuse.sample(m, sampler=sampler, nfe=nfe, n=500, seed=2, progress=False)
        python = diffuse.sample(tweedie, sampler=sampler, nfe=nfe, n=500, dim=1, seed=2, progress=False)
        # float32 tensors on both sides: agreement to float32 round-off over the run.
        np.testing.assert_allclose(python, native, atol=1e-4, err_msg=sampler)


def test_undiffuse_chains_and_likelihoods():
    u = diffuse.undiffuse("delta:-1,1", n=2000, seed=0, progress=False)
    assert u.x.shape == (2000, 1) and u.reference.shape == (2000, 1)
    assert set(np.round(u.x[:, 0], 6)) <= {-1.0, 1.0}
    assert u.run.report["chi_square_p"] > 1e-4
    c = diffuse.langevin(chains=4000, steps=500, delta=0.01, seed=1, progress=False)
    # exp(-x^2/2): N(0, 1); Langevin with step delta has variance 1 / (1 - delta/2).
    assert abs(c.states.var() - 1 / (1 - 0.005)) < 5 * np.sqrt(2 / 4000)
    assert c.report["ks_p_value"] > 1e-4
    r = diffuse.metropolis(chains=4000, steps=300, seed=1, progress=False)
    assert 0 < r.report["acceptance"] < 1
    g = diffuse.Mixture(means=[[0.0]], stds=[1.0])
    x = np.array([[-1.0], [0.0], [2.0]])
    ll = diffuse.log_likelihood(x, g, progress=False)
    np.testing.assert_allclose(ll, -0.5 * x[:, 0] ** 2 - 0.5 * np.log(2 * np.pi), atol=2e-3)


def test_training_on_an_array_and_sampling_the_model(tmp_path):
    rng = np.random.default_rng(0)
    data = np.concatenate([rng.normal(-2, 0.3, 500), rng.normal(2, 0.3, 500)]).reshape(-1, 1)
    model = diffuse.train(data, tmp_path / "m", steps=300, hidden=32, depth=2, seed=0, progress=False)
    assert (tmp_path / "m" / "data.csv").exists() and model.dim == 1
    assert model.path == str(tmp_path / "m")
    assert model.losses.shape == (300, 2) and np.all(np.isfinite(model.losses))
    x = model.sample(2000, sampler="dpmpp-2m", nfe=20, seed=0, progress=False)
    assert x.shape == (2000, 1)
    # Two modes learned: most samples near +-2.
    assert np.mean(np.abs(np.abs(x[:, 0]) - 2) < 1) > 0.8
    again = diffuse.Model.load(tmp_path / "m").sample(2000, sampler="dpmpp-2m", nfe=20, seed=0, progress=False)
    np.testing.assert_array_equal(x, again)
    assert np.array_equal(diffuse.sample(model, sampler="dpmpp-2m", nfe=20, n=2000, progress=False), x)
    # Bimodal data: the model puts more density at a mode than between the modes.
    ll = model.log_likelihood([[2.0], [0.0]], progress=False)
    assert ll.shape == (2,) and np.all(np.isfinite(ll)) and ll[0] > ll[1]


def test_a_shipped_image_model_returns_images():
    model = diffuse.load("fashion-mnist")
    assert model.image_shape == (28, 28) and "coat" in model.classes
    x, run = model.sample(3, nfe=4, label="coat", seed=0, progress=False, info=True)
    assert x.shape == (3, 28, 28) and np.all(np.abs(x) <= 1 + 1e-6)
    assert run.report["labels"] == ["coat"] * 3
    with pytest.raises(ValueError):
        model.sample(2, label="unicorn", progress=False)


def test_training_on_labelled_rows_and_asking_for_a_label(tmp_path):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2, 0.3, 600), rng.normal(2, 0.3, 600)])
    labels = ["left"] * 600 + ["right"] * 600
    model = diffuse.train(x, tmp_path / "m", labels=labels, cond="label", steps=400, hidden=32,
                          depth=2, progress=False)
    assert model.classes == ["left", "right"]
    right = model.sample(1000, sampler="dpmpp-2m", nfe=20, label="right", progress=False)
    assert np.mean(right[:, 0] > 0) > 0.9
    with pytest.raises(ValueError) as e:
        diffuse.train(x, tmp_path / "n", labels=labels[:10], progress=False)
    assert "10 labels for 1200 rows" in str(e.value)
