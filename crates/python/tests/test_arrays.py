"""Arrays in and out: shapes, dtypes, layouts, and the closed forms they must satisfy."""

import numpy as np
import pytest

import diffuse


def test_schedule_tables_follow_their_definitions():
    s = diffuse.Schedule.linear(1e-4, 0.02, steps=1000)
    assert s.betas.shape == (1000,) and s.alpha_bar.shape == (1001,) and s.sigma.shape == (1001,)
    assert s.betas.dtype == np.float64
    np.testing.assert_allclose(s.betas, np.linspace(1e-4, 0.02, 1000), rtol=1e-12)
    np.testing.assert_allclose(s.alpha_bar, np.concatenate([[1.0], np.cumprod(1 - s.betas)]), rtol=1e-9)
    np.testing.assert_allclose(s.sigma, np.sqrt((1 - s.alpha_bar) / s.alpha_bar), rtol=1e-9, atol=1e-15)
    c = diffuse.Schedule.cosine(50)
    assert c.alpha_bar[0] == 1.0 and np.all(np.diff(c.alpha_bar) < 0)
    assert diffuse.Schedule("constant:0.01", 10).betas.tolist() == [0.01] * 10


def test_forward_closed_form_is_the_formula_and_stepwise_has_its_variance():
    s = diffuse.Schedule.linear(steps=100)
    x0 = np.tile([[1.0, -2.0]], (20_000, 1))
    xt, eps = diffuse.forward(x0, s, 40, seed=3, return_noise=True)
    a = s.alpha_bar[40]
    np.testing.assert_allclose(xt, np.sqrt(a) * x0 + np.sqrt(1 - a) * eps, rtol=1e-6, atol=1e-6)
    # Step by step, x_t has mean sqrt(ab) x0 and variance 1 - ab: within 5 standard errors.
    x = diffuse.forward(x0, s, 40, seed=3, closed_form=False)
    n = len(x)
    assert np.all(np.abs(x.mean(0) - np.sqrt(a) * x0[0]) < 5 * np.sqrt((1 - a) / n))
    assert np.all(np.abs(x.var(0) - (1 - a)) < 5 * (1 - a) * np.sqrt(2 / n))


def test_any_layout_and_dtype_gives_the_same_numbers():
    rng = np.random.default_rng(0)
    big = rng.normal(size=(200, 4))
    view = big[::2, 1::2]  # strided, not contiguous
    assert not view.flags["C_CONTIGUOUS"]
    s = diffuse.Schedule.linear(steps=100)
    want = diffuse.forward(np.ascontiguousarray(view), s, 10, seed=1)
    np.testing.assert_array_equal(diffuse.forward(view, s, 10, seed=1), want)
    # A transposed (Fortran-ordered) array and float32 input.
    np.testing.assert_array_equal(diffuse.forward(np.asfortranarray(view), s, 10, seed=1), want)
    f32 = diffuse.forward(view.astype(np.float32), s, 10, seed=1)
    assert f32.dtype == np.float64 and f32.shape == (100, 2)
    # Lists, and a 1-D array read as points of dimension 1.
    assert diffuse.forward([[0.0], [1.0]], s, 5).shape == (2, 1)
    assert diffuse.forward(np.zeros(7), s, 5).shape == (7, 1)


def test_mixture_queries_match_their_closed_forms():
    m = diffuse.Mixture(means=[[-2.0], [2.0]], stds=[0.5, 1.0], weights=[0.3, 0.7])
    x = np.linspace(-4, 4, 9)
    def pdf(v, mu, s):
        return np.exp(-0.5 * ((v - mu) / s) ** 2) / (s * np.sqrt(2 * np.pi))
    p = 0.3 * pdf(x, -2, 0.5) + 0.7 * pdf(x, 2, 1.0)
    np.testing.assert_allclose(m.log_density(x), np.log(p), rtol=1e-9)
    dp = 0.3 * pdf(x, -2, 0.5) * (-(x + 2) / 0.25) + 0.7 * pdf(x, 2, 1.0) * (-(x - 2) / 1.0)
    np.testing.assert_allclose(m.score(x)[:, 0], dp / p, rtol=1e-7, atol=1e-9)
    # Tweedie: E[x0 | x_t] = (x_t + (1 - ab) score_t(x_t)) / sqrt(ab) with q_t the diffused mixture.
    ab = 0.36
    q = m.diffused(ab)
    want = (x + (1 - ab) * q.score(x)[:, 0]) / np.sqrt(ab)
    np.testing.assert_allclose(m.denoise(x, ab)[:, 0], want, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(q.stds, np.sqrt(ab * np.array([0.25, 1.0]) + 1 - ab))
    same = diffuse.Mixture(means=[-2.0, 2.0], stds=[0.5, 1.0], weights=[0.3, 0.7])
    np.testing.assert_array_equal(same.means, m.means)
    assert diffuse.Mixture(means=[[0.0, 1.0]], stds=0.2).stds.tolist() == [0.2]
    y = m.sample(40_000, seed=2)
    assert y.shape == (40_000, 1)
    mean, var = 0.3 * -2 + 0.7 * 2, 0.3 * (0.25 + 4) + 0.7 * (1 + 4) - (0.3 * -2 + 0.7 * 2) ** 2
    assert abs(y.mean() - mean) < 5 * np.sqrt(var / len(y))


def test_data_specs_give_points_and_mixtures():
    x = diffuse.data("spiral", n=500, seed=1)
    assert x.shape == (500, 2)
    np.testing.assert_array_equal(x, diffuse.data("spiral", n=500, seed=1))
    m = diffuse.Mixture.data("delta:-1,1")
    assert m.analytic and m.dim == 1 and sorted(m.means[:, 0]) == [-1.0, 1.0]
    e = diffuse.Mixture.data("moons", reference=300)
    assert not e.analytic and e.means.shape == (300, 2) and np.all(e.stds == 0)


def test_metrics():
    rng = np.random.default_rng(0)
    # The energy distance with unbiased within-sample terms, in NumPy.
    p, q = rng.normal(size=(60, 3)), rng.normal(size=(50, 3)) + 0.5
    def mean_dist(u, v, same):
        dist = np.linalg.norm(u[:, None, :] - v[None, :, :], axis=2)
        return dist.sum() / (len(u) * (len(u) - 1)) if same else dist.mean()
    want = 2 * mean_dist(p, q, False) - mean_dist(p, p, True) - mean_dist(q, q, True)
    assert diffuse.energy_distance(p, q) == pytest.approx(want, rel=1e-9)
    a, b = rng.normal(size=(2000, 1)), rng.normal(size=(2000, 1)) + 3
    # Between N(0,1) and N(3,1) the 1-Wasserstein distance is 3.
    assert diffuse.sliced_wasserstein(a, b) == pytest.approx(3, abs=0.15)
    stat, p = diffuse.ks_2samp(a, b)
    assert stat > 0.8 and p < 1e-6
