#!/usr/bin/env python3
"""An independent NumPy implementation of examples/fashion_bernoulli200.vae trained with DisARM,
to tell how vaec's objective differs from the DisARM paper's (bench/ESTIMATORS.md, notes).

  bench/bernoulli_peer.py --kl analytic|sampled [--steps N] [--seed S] [--init torch|glorot]

The protocol of bench/estimators.sh: 200 Bernoulli latents, a learned prior (logits from 0, SGD
1e-2), one linear map each way, the training set's first 50,000 images dynamically binarised at
every use, batch 50, Adam 1e-4 (eps 1e-8) for the networks.  --kl says what the estimator sees:

  analytic  vaec's form: the ELBO is (1/2)(log p(x|b) + log p(x|b~)) - KL(q || p), the KL and its
            gradient exact, DisARM applied to log p(x|b) alone;
  sampled   the paper's form (and its authors' code): f(b) = log p(x|b) + log p(b) - log q(b|x),
            DisARM applied to the whole f, the prior learning from log p(b) of the draws.

--init torch: weights and biases uniform in +-1/sqrt(fan_in) (nn.Linear's default, and vaec's);
glorot: Glorot-uniform weights and zero biases (Keras' default, the authors' code).
Prints the mean train ELBO of every 1,000 steps (the value trained) and, at the end, the ELBO of
the 10,000 validation images (one dynamic draw; analytic KL in both forms).
Needs numpy (Debian: python3-numpy).
"""
import argparse
import gzip
import os
import sys
import time

import numpy as np

DATA = os.environ.get("VAE_DATA_DIR", "/usr/share/datasets/fashion-mnist")


def images(name):
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    return np.frombuffer(raw, np.uint8, offset=16).reshape(-1, 784).astype(np.float32) / 255.0


def softplus(a):
    return np.logaddexp(0.0, a)


def sigmoid(a):
    return 0.5 * (1.0 + np.tanh(0.5 * a))


def init(rng, fan_in, fan_out, kind):
    if kind == "glorot":
        r = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-r, r, (fan_in, fan_out)).astype(np.float32), np.zeros(fan_out, np.float32)
    r = 1.0 / np.sqrt(fan_in)
    return (rng.uniform(-r, r, (fan_in, fan_out)).astype(np.float32),
            rng.uniform(-r, r, fan_out).astype(np.float32))


class Adam:
    def __init__(self, params, lr=1e-4, eps=1e-8):
        self.p, self.lr, self.eps, self.t = params, lr, eps, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads):  # grads of the loss (minimised)
        self.t += 1
        c1, c2 = 1 - 0.9 ** self.t, 1 - 0.999 ** self.t
        for p, g, m, v in zip(self.p, grads, self.m, self.v):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.lr * (m / c1) / (np.sqrt(v / c2) + self.eps)


def loglik(x, eta):  # log p(x | logits eta), per example
    return (x * eta - softplus(eta)).sum(1)


def kl_bernoulli(phi, lam):  # KL(Bern(sigmoid phi) || Bern(sigmoid lam)), per example
    return (sigmoid(phi) * (phi - lam) - softplus(phi) + softplus(lam)).sum(1)


def step_grads(x, We, be, Wd, bd, lam, u, kl):
    """The loss's gradients (the negative mean objective) and the mean train ELBO of one batch."""
    B = x.shape[0]
    phi = x @ We + be
    q = sigmoid(phi)
    b1 = (u > 1 - q).astype(np.float32)  # b, and b~ its antithetic partner
    b2 = (u < q).astype(np.float32)
    e1, e2 = b1 @ Wd + bd, b2 @ Wd + bd
    L1, L2 = loglik(x, e1), loglik(x, e2)
    if kl == "analytic":
        f1, f2 = L1, L2
        klv = kl_bernoulli(phi, lam)
        elbo = 0.5 * (L1 + L2) - klv
        dphi_kl = q * (1 - q) * (phi - lam)  # d KL / d phi
        dlam = (sigmoid(lam)[None, :] - q).mean(0)  # d KL / d lam (the loss's)
    else:
        logp = lambda b: (b * lam - softplus(lam)).sum(1)
        logq = lambda b: (b * phi - softplus(phi)).sum(1)
        f1, f2 = L1 + logp(b1) - logq(b1), L2 + logp(b2) - logq(b2)
        elbo = 0.5 * (f1 + f2)
        dphi_kl = 0.0
        dlam = -(0.5 * ((b1 + b2) - 2 * sigmoid(lam)[None, :])).mean(0)
    factor = (b1 != b2) * np.where(b2 > 0, -1.0, 1.0) * sigmoid(np.abs(phi))
    gphi = 0.5 * (f1 - f2)[:, None] * factor - dphi_kl  # ascent direction for phi
    gphi = -gphi / B  # the loss's, averaged over the batch
    dWe, dbe = x.T @ gphi, gphi.sum(0)
    r1, r2 = -(x - sigmoid(e1)) * (0.5 / B), -(x - sigmoid(e2)) * (0.5 / B)
    dWd, dbd = b1.T @ r1 + b2.T @ r2, r1.sum(0) + r2.sum(0)
    return [dWe.astype(np.float32), dbe.astype(np.float32), dWd.astype(np.float32), dbd.astype(np.float32)], \
        dlam.astype(np.float32), float(elbo.mean())


def valid_elbo(xv, We, be, Wd, bd, lam, rng):
    total = 0.0
    for i in range(0, len(xv), 500):
        x = (rng.random(xv[i:i + 500].shape, dtype=np.float32) < xv[i:i + 500]).astype(np.float32)
        phi = x @ We + be
        b = (rng.random(phi.shape, dtype=np.float32) < sigmoid(phi)).astype(np.float32)
        total += float((loglik(x, b @ Wd + bd) - kl_bernoulli(phi, lam)).sum())
    return total / len(xv)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kl", choices=["analytic", "sampled"], required=True)
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--init", choices=["torch", "glorot"], default="torch")
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    xs = images("train-images-idx3-ubyte.gz")
    xt, xv = xs[:50000], xs[50000:]
    We, be = init(rng, 784, 200, a.init)
    Wd, bd = init(rng, 200, 784, a.init)
    lam = np.zeros(200, np.float32)
    opt = Adam([We, be, Wd, bd])
    order, pos, acc, t0 = rng.permutation(50000), 0, [], time.time()
    for step in range(1, a.steps + 1):
        if pos == 50000:
            order, pos = rng.permutation(50000), 0
        xb = xt[order[pos:pos + 50]]
        pos += 50
        x = (rng.random(xb.shape, dtype=np.float32) < xb).astype(np.float32)
        u = rng.random((50, 200), dtype=np.float32)
        grads, dlam, elbo = step_grads(x, We, be, Wd, bd, lam, u, a.kl)
        opt.step(grads)
        lam -= 1e-2 * dlam
        acc.append(elbo)
        if step % 1000 == 0:
            print(f"step {step} train_ELBO {np.mean(acc):.2f} seconds {time.time() - t0:.1f}", flush=True)
            acc = []
    print(f"valid_ELBO {valid_elbo(xv, We, be, Wd, bd, lam, rng):.2f}")


if __name__ == "__main__":
    sys.exit(main())
