#!/usr/bin/python3
"""The PyTorch peer of the benchmark: the same models, data, batch, optimiser,
estimator and samples as the vaec examples, timed the same way.

usage: torch_peer.py CASE THREADS STEPS   (CASE: gauss, iwae5, mixture_analytic, mixture_reinforce10, conv)
Prints one line: CASE threads=T examples_per_second=X (steady state, data prepared in advance)
and examples_per_second_with_data=Y (batches gathered and binarised inside the timed loop).
"""
import gzip, sys, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

case, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)

with gzip.open("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz") as f:
    raw = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 784)
B = 128


class Gauss(nn.Module):
    def __init__(self, K=1):
        super().__init__()
        self.K = K
        self.e1, self.em, self.ev = nn.Linear(784, 400), nn.Linear(400, 20), nn.Linear(400, 20)
        self.d1, self.d2 = nn.Linear(20, 400), nn.Linear(400, 784)

    def forward(self, x):
        h = F.relu(self.e1(x))
        mu, lv = self.em(h), self.ev(h)
        if self.K == 1:  # reparam ELBO, KL in closed form
            z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
            logits = self.d2(F.relu(self.d1(z)))
            rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            kl = 0.5 * (mu * mu + lv.exp() - 1 - lv).sum(1)
            return (rec - kl).mean()
        eps = torch.randn(self.K, *mu.shape)
        z = mu + torch.exp(0.5 * lv) * eps  # [K, B, 20]
        logits = self.d2(F.relu(self.d1(z)))
        rec = -F.binary_cross_entropy_with_logits(logits, x.expand(self.K, -1, -1), reduction="none").sum(2)
        logp = (-0.5 * z * z).sum(2)
        logq = (-0.5 * eps * eps - 0.5 * lv).sum(2)
        logw = rec + logp - logq
        return (torch.logsumexp(logw, 0) - np.log(self.K)).mean()


class Mixture(nn.Module):
    def __init__(self, estimator):
        super().__init__()
        self.estimator = estimator
        self.e1, self.e2, self.e3 = nn.Linear(784, 512), nn.Linear(512, 256), nn.Linear(256, 10)
        self.d1, self.d2, self.d3 = nn.Linear(10, 256), nn.Linear(256, 512), nn.Linear(512, 784)

    def decode(self, onehot):
        return self.d3(F.relu(self.d2(F.relu(self.d1(onehot)))))

    def forward(self, x):
        logq = F.log_softmax(self.e3(F.relu(self.e2(F.relu(self.e1(x))))), 1)
        q = logq.exp()
        kl = (q * (logq + np.log(10))).sum(1)
        if self.estimator == "analytic":  # decoder once on the 10 states
            logits = self.decode(torch.eye(10))  # [10, 784]
            ll = x @ logits.t() - F.softplus(logits).sum(1)  # [B, 10]
            return ((q * ll).sum(1) - kl).mean()
        S = 10  # reinforce(samples: 10)
        z = torch.multinomial(q.detach(), S, replacement=True)  # [B, S]
        logits = self.decode(F.one_hot(z, 10).float())  # [B, S, 784]
        ll = -F.binary_cross_entropy_with_logits(logits, x.unsqueeze(1).expand(-1, S, -1), reduction="none").sum(2)
        lq = logq.gather(1, z)
        return ((ll + ll.detach() * lq).mean(1) - kl).mean()


class Conv(nn.Module):
    """examples/fashion_conv.vae: two strided convolutions down to 64 x 7 x 7,
    two transposed convolutions back up; reparam ELBO."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(1, 32, 4, 2, 1), nn.Conv2d(32, 64, 4, 2, 1)
        self.em, self.ev = nn.Linear(3136, 20), nn.Linear(3136, 20)
        self.d1 = nn.Linear(20, 3136)
        self.t1, self.t2 = nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ConvTranspose2d(32, 1, 4, 2, 1)

    def forward(self, x):
        h = F.relu(self.c2(F.relu(self.c1(x.view(-1, 1, 28, 28))))).flatten(1)
        mu, lv = self.em(h), self.ev(h)
        z = mu + torch.exp(0.5 * lv) * torch.randn_like(mu)
        h = F.relu(self.d1(z)).view(-1, 64, 7, 7)
        logits = self.t2(F.relu(self.t1(h))).flatten(1)
        rec = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
        kl = 0.5 * (mu * mu + lv.exp() - 1 - lv).sum(1)
        return (rec - kl).mean()


model = {"gauss": lambda: Gauss(1), "iwae5": lambda: Gauss(5), "conv": Conv,
         "mixture_analytic": lambda: Mixture("analytic"), "mixture_reinforce10": lambda: Mixture("reinforce")}[case]()
opt = torch.optim.Adam(model.parameters(), lr=1e-3)
rng = np.random.default_rng(0)
order = rng.permutation(len(raw))
binary = torch.from_numpy((raw >= 128).astype(np.float32))


def run(n, with_data):
    t = 0.0
    for s in range(n):
        idx = order[(s * B) % (len(raw) - B):][:B]
        t0 = time.perf_counter()
        x = torch.from_numpy((raw[idx] >= 128).astype(np.float32)) if with_data else binary[idx]
        if not with_data:
            t0 = time.perf_counter()
        loss = -model(x)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t += time.perf_counter() - t0
    return n * B / t


run(10, False)  # warm-up
eps = run(steps, False)
eps_data = run(steps, True)
print(f"{case} threads={threads} examples_per_second={eps:.0f} examples_per_second_with_data={eps_data:.0f}")
