"""diffuse's image UNet (crates/nn/src/unet.rs) rebuilt in PyTorch, timed as `diffuse bench`
times it: training steps per second at batch 64 on random 28x28 images with random prompt
embeddings (Adam 1e-3, clip 1), and seconds to sample 100 images with 20 steps of
classifier-free guidance (two forwards of 100 per step; the DPM-Solver++ update itself is a few
element-wise operations). Prints one JSON object. Run by bench/run.sh, never by CI."""
import json, math, sys, time

import torch
from torch import nn
import torch.nn.functional as F

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
CHANNELS = int(sys.argv[2]) if len(sys.argv) > 2 else 16
STEPS, REPEATS, T, TEXT = 20, 3, 1000, 384
alpha_bar = (1 - torch.linspace(1e-4, 0.02, T)).cumprod(0)


def sinusoidal(t, features):  # t = t / T, [n, 1]
    half = features // 2
    w = torch.exp(-math.log(10000.0) * torch.arange(half) / half)[None]
    arg = (t * 1000.0) @ w
    return torch.cat([arg.sin(), arg.cos()], 1)


def conv(cin, cout, k=3, stride=1):
    return nn.Conv2d(cin, cout, k, stride, k // 2)


class Res(nn.Module):
    def __init__(self, cin, cout, emb, groups):
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups, cin), conv(cin, cout)
        self.time = nn.Linear(emb, cout)
        self.norm2, self.conv2 = nn.GroupNorm(groups, cout), conv(cout, cout)
        self.skip = conv(cin, cout, 1) if cin != cout else None

    def forward(self, x, emb):
        h = self.conv1(F.silu(self.norm1(x))) + self.time(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class Attention(nn.Module):
    def __init__(self, c, groups):
        super().__init__()
        self.norm, self.qkv, self.proj = nn.GroupNorm(groups, c), conv(c, 3 * c, 1), conv(c, c, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).unbind(1)
        att = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), 2)
        return x + self.proj((att @ v.transpose(1, 2)).transpose(1, 2).reshape(n, c, h, w))


class UNet(nn.Module):
    def __init__(self, c=16, mults=(1, 2, 2), groups=8):
        super().__init__()
        level = [c * m for m in mults]
        emb = 4 * c
        self.c = c
        self.time1, self.time2 = nn.Linear(c, emb), nn.Linear(emb, emb)
        self.cond = nn.Linear(TEXT, emb, bias=False)
        self.input = conv(1, c)
        self.down, prev = nn.ModuleList(), c
        for cl in level:
            self.down.append(Res(prev, cl, emb, groups))
            prev = cl
        self.downsample = nn.ModuleList(conv(cl, cl, 3, 2) for cl in level[:-1])
        self.mid1, self.att, self.mid2 = Res(prev, prev, emb, groups), Attention(prev, groups), Res(prev, prev, emb, groups)
        self.up, cur = nn.ModuleList(), prev
        for cl in reversed(level):
            self.up.append(Res(cur + cl, cl, emb, groups))
            cur = cl
        self.upsample = nn.ModuleList(conv(cl, cl) for cl in reversed(level[1:]))
        self.out_norm, self.out = nn.GroupNorm(groups, c), conv(c, 1)

    def forward(self, x, t, cond):
        n = x.shape[0]
        emb = self.time2(F.silu(self.time1(sinusoidal(t, self.c)))) + self.cond(cond)
        h, skips = self.input(x.reshape(n, 1, 28, 28)), []
        for l, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if l < len(self.downsample):
                h = self.downsample[l](h)
        h = self.mid2(self.att(self.mid1(h, emb)), emb)
        for l, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], 1), emb)
            if l < len(self.upsample):
                h = self.upsample[l](F.interpolate(h, scale_factor=2, mode="nearest"))
        return self.out(F.silu(self.out_norm(h))).reshape(n, 784)


def train():
    net = UNet(CHANNELS)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-8)
    start = time.perf_counter()
    for _ in range(STEPS):
        x0 = torch.rand(64, 784) * 2 - 1
        cond = torch.randn(64, TEXT) / 20
        t = torch.randint(T, (64, 1))
        eps = torch.randn_like(x0)
        ab = alpha_bar[t]
        loss = (net(ab.sqrt() * x0 + (1 - ab).sqrt() * eps, (t + 1) / T, cond) - eps).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    return STEPS / (time.perf_counter() - start), net


def sample(net):
    x, cond = torch.randn(100, 784), torch.randn(1, TEXT).expand(100, TEXT) / 20
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(20):
            t = torch.full((100, 1), 1.0 - k / 20)
            e = net(x, t, torch.zeros_like(cond))
            e = e + 3.0 * (net(x, t, cond) - e)
            x = 0.99 * x - 0.01 * e
    return time.perf_counter() - start


runs = [train() for _ in range(REPEATS)]
rate = sorted(r for r, _ in runs)[REPEATS // 2]
secs = sorted(sample(runs[-1][1]) for _ in range(REPEATS))[REPEATS // 2]
print(json.dumps({"torch": torch.__version__, "unet_train_steps_per_second": rate, "unet_sample_100_seconds": secs}))
