# %% [markdown]
# # Seeds 000 and 004 with `import diffuse`
#
# The experiments of seed 000 (Langevin, Metropolis, forward diffusion, undiffusion, a learned
# denoiser with a prompt) and seed 004 (marginals, Tweedie's posterior mean, the reverse SDE and
# the probability-flow ODE with the exact mixture score, likelihoods) as notebook cells: open it
# in Jupyter or VS Code (`# %%` cells), or run `python examples/seeds.py`, which writes every
# figure into `out/seeds/`. Needs `pip install ./crates/python matplotlib`; about half a minute.

# %%
import os

import matplotlib

try:
    get_ipython  # noqa: F821 (defined in Jupyter and IPython: figures show inline)
except NameError:
    matplotlib.use("Agg")  # run as a script: figures go to files
import matplotlib.pyplot as plt
import numpy as np

import diffuse

OUT = os.path.join("out", "seeds")
os.makedirs(OUT, exist_ok=True)


def save(fig, name):
    fig.tight_layout()
    fig.savefig(os.path.join(OUT, name), dpi=100)


# %% [markdown]
# ## Seed 000, part 1: Langevin dynamics and Metropolis
#
# x <- x - delta E'(x) + sqrt(2 delta) z has exp(-E) / Z as its stationary law (up to the step
# size's bias). Both chains start every walker at 0.

# %%
grid = np.linspace(-2.5, 2.5, 400)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for ax, (energy, E) in zip(axes, [("quadratic", lambda x: x**2 / 2),
                                   ("double-well:2", lambda x: 2 * (x**2 - 1) ** 2)]):
    lang = diffuse.langevin(energy, chains=10_000, steps=2000, delta=0.01, seed=0)
    metro = diffuse.metropolis(energy, proposal="gaussian:1.0", chains=10_000, steps=2000, seed=0)
    p = np.exp(-E(grid))
    p /= p.sum() * (grid[1] - grid[0])
    ax.hist(lang.states, bins=80, density=True, alpha=0.5, label="Langevin")
    ax.hist(metro.states, bins=80, density=True, alpha=0.5,
            label=f"Metropolis (acceptance {metro.report['acceptance']:.2f})")
    ax.plot(grid, p, "k", label="exp(-E) / Z")
    ax.set_title(f"{energy}: KS p = {lang.report['ks_p_value']:.2f} (Langevin)")
    ax.legend(fontsize=8)
save(fig, "chains.png")

# %% [markdown]
# ## Seed 000, part 2: diffusing two points, and undiffusing them
#
# The data are the points -1 and 1. The forward chain x_k = sqrt(1 - beta) x_(k-1) + sqrt(beta) z
# with a constant beta spreads them into N(0, 1); q_t is known in closed form: a mixture of
# N(+-sqrt(alpha-bar_t), 1 - alpha-bar_t).

# %%
s = diffuse.Schedule.constant(0.04, steps=200)
points = diffuse.Mixture.deltas([-1.0, 1.0])
x0 = points.sample(5000, seed=0)
fig, axes = plt.subplots(1, 4, figsize=(14, 3), sharey=True)
for ax, t in zip(axes, [1, 10, 40, 200]):
    xt = diffuse.forward(x0, s, t, seed=1, closed_form=False)  # step by step, as the seed does
    q = points.diffused(s.alpha_bar[t])
    ax.hist(xt[:, 0], bins=80, density=True, alpha=0.6, label="chain")
    ax.plot(grid * 1.6, np.exp(q.log_density(grid * 1.6)), "k", label="q_t, closed form")
    ax.set_title(f"t = {t}, alpha-bar = {s.alpha_bar[t]:.3f}")
axes[0].legend(fontsize=8)
save(fig, "forward.png")

# %% [markdown]
# Undiffusion: from N(0, I) at step T back to step 0, driven by the exact denoiser of the two
# points (seed 000's ideal `GuessZ`), with DDPM's every step and with ten steps of DPM-Solver++.

# %%
fig, ax = plt.subplots(figsize=(6, 3.5))
for sampler, nfe in [("ddpm", None), ("dpmpp-2m", 10)]:
    u = diffuse.undiffuse("delta:-1,1", schedule="constant:0.04", steps=200, prior="normal",
                          sampler=sampler, nfe=nfe, n=5000, seed=0)
    ax.hist(u.x[:, 0], bins=100, range=(-1.5, 1.5), alpha=0.6,
            label=f"{sampler}, {u.run.nfe} evaluations, chi2 p = {u.run.report['chi_square_p']:.2f}")
ax.legend(fontsize=8)
ax.set_title("Undiffused from N(0, 1) to step 0")
save(fig, "undiffuse.png")

# %% [markdown]
# ## Seed 000, part 3: a learned denoiser that reads a prompt
#
# A small MLP learns to predict the noise of the two points, told which one by a label; guidance
# then draws the point asked for.

# %%
x = np.where(np.arange(4000) % 2 == 0, -1.0, 1.0)
labels = np.where(x < 0, "left", "right")
model = diffuse.train(x, os.path.join(OUT, "two-points"), labels=labels, cond="label",
                      schedule="constant:0.04", timesteps=200, hidden=64, depth=2,
                      steps=3000, seed=0, force=True, progress=False)
fig, ax = plt.subplots(figsize=(6, 3.5))
for label in ["left", "right"]:
    y = model.sample(2000, sampler="dpmpp-2m", nfe=20, label=label, guidance=2.0, seed=1)
    ax.hist(y[:, 0], bins=100, range=(-1.5, 1.5), alpha=0.6, label=f"asked for {label}")
ax.legend(fontsize=8)
ax.set_title("A learned denoiser, guided by a label")
save(fig, "learned.png")

# %% [markdown]
# ## Seed 004, part 1: marginals and Tweedie's posterior mean
#
# Two Gaussians diffused by DDPM's linear schedule: q_t in closed form over the whole run, and
# the optimal denoiser E[x_0 | x_t] (Tweedie: x_t + (1 - alpha-bar) score, over sqrt(alpha-bar))
# at a few noise levels.

# %%
m = diffuse.Mixture(means=[[-2.0], [2.0]], stds=[0.5, 0.5], weights=[0.3, 0.7])
s = diffuse.Schedule.linear(1e-4, 0.02, steps=1000)
xs = np.linspace(-5, 5, 300)
ts = np.arange(0, 1001, 10)
density = np.array([np.exp(m.diffused(s.alpha_bar[t]).log_density(xs)) for t in ts])
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].imshow(density.T, aspect="auto", origin="lower", extent=[0, 1000, -5, 5])
axes[0].set(xlabel="step t", ylabel="x", title="q_t(x) of a two-Gaussian mixture")
for t in [50, 200, 400, 800]:
    ab = s.alpha_bar[t]
    axes[1].plot(xs, m.denoise(xs * np.sqrt(ab), ab)[:, 0], label=f"t = {t}")
axes[1].set(xlabel="x_t / sqrt(alpha-bar)", ylabel="E[x_0 | x_t]", title="Tweedie's denoiser")
axes[1].legend(fontsize=8)
save(fig, "marginals.png")

# %% [markdown]
# ## Seed 004, part 2: the reverse SDE and the probability-flow ODE
#
# Both driven by the exact score of the mixture; then any sampler by name, and the same samplers
# over a Python function, which is how a PyTorch model plugs in.

# %%
def tweedie(x, sigma):
    """E[x_0 | x_0 + sigma eps = x], in k-diffusion's convention, written in NumPy."""
    ab = 1 / (1 + sigma**2)
    return m.denoise(x * np.sqrt(ab), ab)


fig, ax = plt.subplots(figsize=(7, 4))
for name, kw in [("sde", {}), ("ode", {}), ("dpmpp-2m", {"nfe": 20}), ("heun", {"nfe": 19})]:
    y, run = diffuse.sample(m, sampler=name, n=10_000, seed=0, info=True, **kw)
    ax.hist(y[:, 0], bins=120, range=(-5, 5), density=True, histtype="step",
            label=f"{name} ({run.nfe} evaluations)")
y = diffuse.sample(tweedie, sampler="dpmpp-2m", nfe=20, n=10_000, dim=1, seed=0)
ax.hist(y[:, 0], bins=120, range=(-5, 5), density=True, histtype="step", ls="--",
        label="dpmpp-2m over a Python denoiser")
ax.plot(xs, np.exp(m.log_density(xs)), "k", label="q_0")
ax.legend(fontsize=8)
ax.set_title("Reverse samplers with the exact score")
save(fig, "reverse.png")

# %% [markdown]
# ## Seed 004, part 3: likelihoods by the probability-flow ODE
#
# log p(x) from the ODE's change of variables against the mixture's closed form.

# %%
pts = np.linspace(-4, 4, 41)
ll = diffuse.log_likelihood(pts, m)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(pts, m.log_density(pts), "k", label="log q_0(x), closed form")
ax.plot(pts, ll, "o", ms=3, label="probability-flow ODE")
ax.set(xlabel="x", ylabel="log p(x)")
ax.legend(fontsize=8)
save(fig, "likelihood.png")
print(f"largest error {np.max(np.abs(ll - m.log_density(pts))):.2e} nats; figures in {OUT}")
