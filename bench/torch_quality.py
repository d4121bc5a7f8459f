"""Seed 003's model trained in PyTorch on the same data, budget and sample size as the diffuse
recipe it is compared with (bench/quality.sh): writes the samples as CSV for `diffuse eval`.
Usage: torch_quality.py DATA STEPS BATCH SEED OUT.csv   (DATA: spiral or swissroll)."""
import math, sys

import torch
from torch import nn

data, steps, batch, seed, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
torch.set_num_threads(2)
torch.manual_seed(seed)
T, N = 1000, 2000
beta = torch.linspace(1e-4, 0.02, T)
alpha = 1 - beta
alpha_bar = alpha.cumprod(0)


def draw(nb):  # the same laws as diffuse's toy data sets
    if data == "spiral":  # seed 003
        u = torch.rand(nb)
        rho = u * 0.65 + 0.25 + torch.rand(nb) * 0.15
        theta = u * math.pi * 3
        return torch.stack([theta.cos() * rho, theta.sin() * rho], 1)
    t = 1.5 * math.pi * (1 + 2 * torch.rand(nb))  # swiss roll, noise 1, scaled by 1/10 (seed 001)
    return torch.stack([t * t.cos() + torch.randn(nb), t * t.sin() + torch.randn(nb)], 1) / 10


fit = draw(10_000)
mean, std = fit.mean(0), fit.std(0)  # seed 003 standardises its data
net = nn.Sequential(nn.Linear(3, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                    nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))
opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
for _ in range(steps):
    x0 = (draw(batch) - mean) / std
    t = torch.randint(T, (batch, 1))
    eps = torch.randn_like(x0)
    ab = alpha_bar[t]
    xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
    loss = (net(torch.cat([xt, (t + 1) / T], 1)) - eps).pow(2).mean()
    opt.zero_grad()
    loss.backward()
    opt.step()

with torch.no_grad():  # DDPM with beta as the step variance (seed 003)
    x = torch.randn(N, 2)
    for k in range(T, 0, -1):
        eps = net(torch.cat([x, torch.full((N, 1), k / T)], 1))
        x = (x - beta[k - 1] / (1 - alpha_bar[k - 1]).sqrt() * eps) / alpha[k - 1].sqrt()
        if k > 1:
            x = x + beta[k - 1].sqrt() * torch.randn_like(x)
x = x * std + mean
with open(out, "w") as f:
    f.write("x0,x1\n")
    for a, b in x.tolist():
        f.write(f"{a},{b}\n")
