"""Seed 003's model in PyTorch, timed as `diffuse bench` times it: training steps per second at
each batch size (Adam 1e-3, eps 1e-8) and seconds to sample points with 1000 DDPM steps.
Prints one JSON object. Run by bench/run.sh, never by CI."""
import json, math, sys, time

import torch
from torch import nn

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
TRAIN_STEPS, BATCHES, SAMPLE_N, REPEATS = 300, [25, 256], 10_000, 3
T = 1000
beta = torch.linspace(1e-4, 0.02, T)
alpha = 1 - beta
alpha_bar = alpha.cumprod(0)


def spiral(nb):  # seed 003
    u = torch.rand(nb)
    rho = u * 0.65 + 0.25 + torch.rand(nb) * 0.15
    theta = u * math.pi * 3
    return torch.stack([theta.cos() * rho, theta.sin() * rho], 1)


def model():
    return nn.Sequential(nn.Linear(3, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(),
                         nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 2))


def train(batch):
    net = model()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    start = time.perf_counter()
    for _ in range(TRAIN_STEPS):
        x0 = spiral(batch)
        t = torch.randint(T, (batch, 1))
        eps = torch.randn_like(x0)
        ab = alpha_bar[t]
        xt = ab.sqrt() * x0 + (1 - ab).sqrt() * eps
        loss = (net(torch.cat([xt, (t + 1) / T], 1)) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return TRAIN_STEPS / (time.perf_counter() - start), net


rates = {}
for b in BATCHES:
    runs = [train(b) for _ in range(REPEATS)]
    rates[str(b)] = sorted(r for r, _ in runs)[REPEATS // 2]
    net = runs[-1][1]

times = []
with torch.no_grad():
    for _ in range(REPEATS):
        x = torch.randn(SAMPLE_N, 2)
        start = time.perf_counter()
        for k in range(T, 0, -1):
            t_in = torch.full((SAMPLE_N, 1), k / T)
            eps = net(torch.cat([x, t_in], 1))
            mean = (x - beta[k - 1] / (1 - alpha_bar[k - 1]).sqrt() * eps) / alpha[k - 1].sqrt()
            x = mean + beta[k - 1].sqrt() * torch.randn_like(x) if k > 1 else mean
        times.append(time.perf_counter() - start)
print(json.dumps({"torch": torch.__version__, "train_steps_per_second": rates,
                  "sample_seconds": sorted(times)[REPEATS // 2]}))
