#!/usr/bin/python3
"""The PyTorch peer of the structured examples (language version 1): the same networks,
initialisation (nn.Linear's default, as vaec), optimiser (Adam, lr 1e-3, batch 128: the
examples' settings and vaec's defaults), data treatment and estimator as

  gmvae       examples/fashion_gmvae.vae   y summed out exactly, z reparameterised per state,
                                           prior p(z | y) a network of onehot(y)
  iwae2       examples/fashion_iwae2.vae   two stochastic layers, IWAE-5, dynamic binarisation
  iwae1       the IWAE paper's one-layer model with the same data treatment and bound:
              784-200-200 tanh to a normal z[50], 50-200-200 tanh back to 784 Bernoullis
  m2          examples/fashion_m2.vae      1,000 labels (100 per class, chosen by the seed),
                                           classify = 50, every batch holding
                                           ceil(B * labelled / N) labelled examples
  classifier  m2's q(y | x) network trained on the same 1,000 labels alone (cross-entropy)

usage: structured_peer.py CASE [--epochs N] [--limit N] [--test-limit N] [--threads T]
                               [--seed S] [--iwae K] [--iwae-limit N] [--batch B]

Prints one line per epoch, `epoch=E seconds=S name=value ...` (seconds: training only, the
test evaluation is timed apart as eval_seconds), then one `summary case=CASE ...` line.
The final log p(x) (gmvae, iwae2, iwae1) is an importance-sampling estimate with K samples
(per state of y for gmvae) on the first --iwae-limit test images.

What stays different from vaec, by construction: the random streams (initial weights, noise,
example order, dynamic binarisation's draws, which 1,000 labels are kept: the same rules, other
numbers), and the dynamic cases' test set, binarised once here with a fixed seed
(TEST_BINARISATION_SEED) and by vaec with one fixed draw of its own.
"""
import argparse, gzip, math, os, sys, time

# glibc hands each large freed block back to the system, so every step's big tensors cost page
# faults again: a third of the peer's CPU time on gmvae. Keeping freed memory (the same bits)
# makes the peer a fair opponent; set before the process starts, hence the re-exec.
MALLOC = {"MALLOC_MMAP_THRESHOLD_": "33554432", "MALLOC_TRIM_THRESHOLD_": "1073741824", "MALLOC_TOP_PAD_": "268435456"}


def keep_freed_memory():
    if any(k not in os.environ for k in MALLOC):
        os.execve(sys.executable, [sys.executable] + sys.argv, {**os.environ, **MALLOC})


if __name__ == "__main__":
    keep_freed_memory()  # before torch is imported: the re-exec would import it twice

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DATA = os.environ.get("VAE_DATA_DIR", "/usr/share/datasets/fashion-mnist")
LOG2PI = math.log(2 * math.pi)
TEST_BINARISATION_SEED = 20151  # dynamic cases: the test set is binarised once, whatever --seed


def read_idx(name, offset, shape):
    path = os.path.join(DATA, name)
    try:
        with gzip.open(path) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset).reshape(shape)
    except OSError as e:
        sys.exit(f"structured_peer.py: cannot read {path}: {e}")


def load(limit, test_limit):
    """uint8 images [N, 784] and labels [N] of the train and test sets, cut to the limits."""
    x = read_idx("train-images-idx3-ubyte.gz", 16, (-1, 784))
    y = read_idx("train-labels-idx1-ubyte.gz", 8, (-1,))
    tx = read_idx("t10k-images-idx3-ubyte.gz", 16, (-1, 784))
    ty = read_idx("t10k-labels-idx1-ubyte.gz", 8, (-1,))
    n, t = limit or len(x), test_limit or len(tx)
    return x[:n], y[:n].astype(np.int64), tx[:t], ty[:t].astype(np.int64)


def threshold(raw):
    """`binary`: byte / 255 >= 0.5, as vaec reads binary data from bytes."""
    return torch.from_numpy((raw >= 128).astype(np.float32))


def dynamic(raw, gen):
    """`binary(dynamic)`: each pixel a Bernoulli draw of its intensity, at every use."""
    p = torch.from_numpy(raw.astype(np.float32) / 255.0)
    return torch.bernoulli(p, generator=gen)


def bernoulli_ll(logits, x):
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none").sum(-1)


def normal_lp(z, mu, lv):
    return (-0.5 * (LOG2PI + lv + (z - mu) ** 2 / lv.exp())).sum(-1)


def std_normal_lp(z):
    return (-0.5 * (LOG2PI + z * z)).sum(-1)


def kl_normal(mu, lv, pm, plv):
    """KL(N(mu, e^lv) || N(pm, e^plv)), summed over the last dimension."""
    return 0.5 * (plv - lv + (lv.exp() + (mu - pm) ** 2) / plv.exp() - 1).sum(-1)


def mlp(sizes, act):
    layers = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(a, b), act()]
    return nn.Sequential(*layers)


class GaussHead(nn.Module):
    """dense(h, n) for the mean and dense(h, n) for the log-variance."""

    def __init__(self, n_in, n):
        super().__init__()
        self.mean, self.logvar = nn.Linear(n_in, n), nn.Linear(n_in, n)

    def forward(self, h):
        return self.mean(h), self.logvar(h)


def eye_states(B):
    """onehot of the 10 states, [10, B, 10]: one row per state and example (state-major)."""
    return torch.eye(10).unsqueeze(1).expand(10, B, 10)


class YZ(nn.Module):
    """What gmvae and m2 share: q(y | x) = qy, q(z | x, y) = qz over concat(x, onehot(y)),
    y summed out exactly (its 10 states as a leading dimension), z reparameterised per state."""

    def __init__(self, zdim):
        super().__init__()
        self.qy = nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 10))
        self.qz = nn.Sequential(nn.Linear(794, 512), nn.ReLU(), GaussHead(512, zdim))

    def posterior_z(self, x):
        """mean and log-variance of q(z | x, y) for every state y: [10, B, zdim]."""
        B = x.shape[0]
        return self.qz(torch.cat([x.expand(10, B, 784), eye_states(B)], 2))

    def per_state(self, x, K=0):
        """log p(x | .) - KL(q(z) || p(z | y)) per state, [10, B] (K = 0: one sample, KL closed
        form), or the K log-weights log p(x|z) + log p(z|y) - log q(z|x,y), [K, 10, B]."""
        mu, lv = self.posterior_z(x)
        pm, plv = self.prior_z(x.shape[0])
        eps = torch.randn((K,) + mu.shape if K else mu.shape)
        z = mu + (0.5 * lv).exp() * eps
        rec = bernoulli_ll(self.decode(z), x)
        if not K:
            return rec - kl_normal(mu, lv, pm, plv)
        return rec + normal_lp(z, pm, plv) - normal_lp(z, mu, lv)

    def elbo_y_summed(self, x):
        """the ELBO with y a latent summed out (uniform prior), [B]; and log q(y | x), [B, 10]."""
        logq = F.log_softmax(self.qy(x), 1)
        v = self.per_state(x).t()  # [B, 10]
        q = logq.exp()
        return (q * (v - logq - math.log(10))).sum(1), logq, v


class GMVAE(YZ):
    def __init__(self):
        super().__init__(16)
        self.pm, self.plv = nn.Linear(10, 16), nn.Linear(10, 16)  # prior pz(z | y)
        self.dec = nn.Sequential(nn.Linear(16, 512), nn.ReLU(), nn.Linear(512, 784))

    def prior_z(self, B):
        y = torch.eye(10).unsqueeze(1)  # [10, 1, 10]: broadcast over the examples
        return self.pm(y), self.plv(y)

    def decode(self, z):
        return self.dec(z)

    def loss(self, x):
        return -self.elbo_y_summed(x)[0].mean()

    def log_px(self, x, K):
        """log sum_y p(y) (1/K) sum_k p(x|z)p(z|y)/q(z|x,y), z from q(z | x, y), [B]."""
        lw = self.per_state(x, K)  # [K, 10, B]
        return torch.logsumexp(lw.reshape(-1, x.shape[0]), 0) - math.log(K) - math.log(10)


class M2(YZ):
    def __init__(self, classify):
        super().__init__(32)
        self.classify = classify
        self.dec = nn.Sequential(nn.Linear(42, 512), nn.ReLU(), nn.Linear(512, 784))

    def prior_z(self, B):
        return torch.zeros(1), torch.zeros(1)

    def decode(self, z):
        y = torch.eye(10).unsqueeze(1).expand(*z.shape[:-1], 10)  # z is [..., 10 states, B, 32]
        return self.dec(torch.cat([y, z], -1))  # concat(onehot(y), z)

    def loss(self, x, y, kept):
        """-(1/B) [sum_b ELBO_b + classify * sum_{b kept} log q(y_b | x_b)]: an example whose label
        is kept has y observed (ELBO of its state, log p(y) = -log 10), the others sum y out."""
        unl, logq, v = self.elbo_y_summed(x)
        obs = v.gather(1, y.unsqueeze(1)).squeeze(1) - math.log(10)
        lq = logq.gather(1, y.unsqueeze(1)).squeeze(1)
        elbo = torch.where(kept, obs + self.classify * lq, unl)
        return -elbo.mean()


class IWAE(nn.Module):
    """iwae(samples: K) over one (layers = 1) or two stochastic layers."""

    def __init__(self, layers):
        super().__init__()
        self.layers = layers
        if layers == 2:  # examples/fashion_iwae2.vae
            self.q1 = nn.Sequential(mlp([784, 200, 200], nn.Tanh), GaussHead(200, 100))
            self.q2 = nn.Sequential(mlp([100, 100, 100], nn.Tanh), GaussHead(100, 50))
            self.p1 = nn.Sequential(mlp([50, 100, 100], nn.Tanh), GaussHead(100, 100))
            self.dec = nn.Sequential(mlp([100, 200, 200], nn.Tanh), nn.Linear(200, 784))
        else:
            self.q1 = nn.Sequential(mlp([784, 200, 200], nn.Tanh), GaussHead(200, 50))
            self.dec = nn.Sequential(mlp([50, 200, 200], nn.Tanh), nn.Linear(200, 784))

    def log_w(self, x, K):
        """[K, B] log p(x, z..) - log q(z.. | x), every latent sampled from q in posterior order."""
        mu1, lv1 = self.q1(x)
        z1 = mu1 + (0.5 * lv1).exp() * torch.randn((K,) + mu1.shape)
        lw = bernoulli_ll(self.dec(z1), x) - normal_lp(z1, mu1, lv1)
        if self.layers == 1:
            return lw + std_normal_lp(z1)
        mu2, lv2 = self.q2(z1)
        z2 = mu2 + (0.5 * lv2).exp() * torch.randn_like(mu2)
        pm, plv = self.p1(z2)
        return lw + normal_lp(z1, pm, plv) + std_normal_lp(z2) - normal_lp(z2, mu2, lv2)

    def bound(self, x, K):
        return torch.logsumexp(self.log_w(x, K), 0) - math.log(K)

    def loss(self, x):
        return -self.bound(x, 5).mean()

    def log_px(self, x, K):
        return self.bound(x, K)


def chunked(n, size):
    for i in range(0, n, size):
        yield slice(i, min(n, i + size))


def mean_over(n, size, f):
    """the mean over n test examples of f(slice) -> [rows], in chunks, without gradients."""
    with torch.no_grad():
        return float(sum(f(s).double().sum() for s in chunked(n, size)) / n)


def balanced_labels(y, count, rng):
    """indices of count examples, count / 10 per class, chosen by rng."""
    per = count // 10
    picked = []
    for c in range(10):
        idx = np.flatnonzero(y == c)
        if len(idx) < per:
            sys.exit(f"structured_peer.py: --limit leaves {len(idx)} examples of class {c}, fewer than {per}")
        picked.append(rng.choice(idx, per, replace=False))
    return np.sort(np.concatenate(picked))


def adam(model):
    return torch.optim.Adam(model.parameters(), lr=1e-3)


def step(opt, loss):
    opt.zero_grad()
    loss.backward()
    opt.step()
    return float(loss)


def log_epoch(e, secs, eval_secs, **values):
    v = " ".join(f"{k}={x:.4f}" if isinstance(x, float) else f"{k}={x}" for k, x in values.items())
    print(f"epoch={e} seconds={secs:.3f} eval_seconds={eval_secs:.3f} {v}", flush=True)


def run_unsupervised(a, data, rng, gen):
    """gmvae, iwae1, iwae2: an epoch is floor(N / B) batches of a fresh permutation (as vaec)."""
    raw, _, traw, _ = data
    dyn = a.case != "gmvae"
    model = GMVAE() if a.case == "gmvae" else IWAE(2 if a.case == "iwae2" else 1)
    opt = adam(model)
    tx = dynamic(traw, torch.Generator().manual_seed(TEST_BINARISATION_SEED)) if dyn else threshold(traw)
    name = "test_iwae5" if dyn else "test_elbo"
    test = (lambda s: model.bound(tx[s], 5)) if dyn else (lambda s: model.elbo_y_summed(tx[s])[0])
    nb, total = len(raw) // a.batch, 0.0
    for e in range(1, a.epochs + 1):
        order = rng.permutation(len(raw))
        t0, tot = time.perf_counter(), 0.0
        for b in range(nb):
            idx = order[b * a.batch:(b + 1) * a.batch]
            x = dynamic(raw[idx], gen) if dyn else threshold(raw[idx])
            tot += step(opt, model.loss(x))
        secs = time.perf_counter() - t0
        total += secs
        t1 = time.perf_counter()
        tv = mean_over(len(tx), 500, test)
        extra = {"test_elbo": mean_over(len(tx), 500, lambda s: model.bound(tx[s], 1))} if dyn else {}
        log_epoch(e, secs, time.perf_counter() - t1, train_objective=-tot / nb, **{name: tv}, **extra)
    t1 = time.perf_counter()
    n = min(a.iwae_limit, len(tx))
    chunk = max(1, 10000 // (a.iwae * (10 if a.case == "gmvae" else 1)))  # rows in cache-sized chunks
    lp = mean_over(n, chunk, lambda s: model.log_px(tx[s], a.iwae))
    print(f"summary case={a.case} epochs={a.epochs} seconds_per_epoch={total / max(1, a.epochs):.3f} "
          f"{name}={tv:.4f} logpx={lp:.4f} iwae_k={a.iwae} logpx_examples={n} "
          f"logpx_seconds={time.perf_counter() - t1:.1f}", flush=True)


def m2_batches(n_unl, n_lab, B, labelled_idx, unlabelled_idx, rng):
    """the batches of one epoch (as vaec): each ceil(B * labelled / N) labelled examples (at most
    B - 1), cycling through one permutation of the labelled set an epoch, and the rest
    unlabelled; one pass over the unlabelled examples."""
    per = min(B - 1, math.ceil(B * n_lab / (n_lab + n_unl)))
    unl, lab = unlabelled_idx[rng.permutation(n_unl)], labelled_idx[rng.permutation(n_lab)]
    out = []
    for b in range(n_unl // (B - per)):
        kept = lab[np.arange(b * per, (b + 1) * per) % n_lab]
        out.append((np.concatenate([kept, unl[b * (B - per):(b + 1) * (B - per)]]), per))
    return out


def test_error(qy, tx, ty):
    with torch.no_grad():
        wrong = sum(int((qy(tx[s]).argmax(1) != ty[s]).sum()) for s in chunked(len(tx), 1000))
    return 100.0 * wrong / len(tx)


def run_m2(a, data, rng, labelled_idx):
    raw, y, traw, ty = data
    model, kept_all = M2(a.classify), np.zeros(len(raw), bool)
    kept_all[labelled_idx] = True
    unlabelled_idx = np.flatnonzero(~kept_all)
    opt, tx, ty = adam(model), threshold(traw), torch.from_numpy(ty)
    total = 0.0
    for e in range(1, a.epochs + 1):
        batches = m2_batches(len(unlabelled_idx), len(labelled_idx), a.batch, labelled_idx, unlabelled_idx, rng)
        t0, tot = time.perf_counter(), 0.0
        for idx, per in batches:
            kept = torch.from_numpy(np.arange(len(idx)) < per)
            tot += step(opt, model.loss(threshold(raw[idx]), torch.from_numpy(y[idx]), kept))
        secs = time.perf_counter() - t0
        total += secs
        t1 = time.perf_counter()
        err = test_error(model.qy, tx, ty)
        elbo = mean_over(len(tx), 500, lambda s: model.elbo_y_summed(tx[s])[0])
        log_epoch(e, secs, time.perf_counter() - t1, train_objective=-tot / len(batches), test_error=err, test_elbo=elbo)
    print(f"summary case=m2 epochs={a.epochs} seconds_per_epoch={total / max(1, a.epochs):.3f} "
          f"labelled={len(labelled_idx)} labelled_per_batch={batches[0][1]} test_error={err:.2f} test_elbo={elbo:.4f}",
          flush=True)


def run_classifier(a, data, rng, labelled_idx):
    """q(y | x) alone on the labelled examples; an epoch is one pass over them, the last batch partial."""
    raw, y, traw, ty = data
    qy = M2(a.classify).qy  # the same network, drawn by the same initialisation
    opt, tx, ty = adam(qy), threshold(traw), torch.from_numpy(ty)
    best, total = (101.0, 0), 0.0
    for e in range(1, a.epochs + 1):
        order = labelled_idx[rng.permutation(len(labelled_idx))]
        t0, tot = time.perf_counter(), 0.0
        for s in chunked(len(order), a.batch):
            idx = order[s]
            tot += step(opt, F.cross_entropy(qy(threshold(raw[idx])), torch.from_numpy(y[idx])))
        secs = time.perf_counter() - t0
        total += secs
        t1 = time.perf_counter()
        err = test_error(qy, tx, ty)
        best = min(best, (err, e))
        log_epoch(e, secs, time.perf_counter() - t1, train_cross_entropy=tot / math.ceil(len(order) / a.batch), test_error=err)
    print(f"summary case=classifier epochs={a.epochs} seconds_per_epoch={total / max(1, a.epochs):.3f} "
          f"labelled={len(labelled_idx)} test_error={err:.2f} best_test_error={best[0]:.2f} best_epoch={best[1]}",
          flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("case", choices=["gmvae", "iwae2", "iwae1", "m2", "classifier"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--limit", type=int, default=0, help="train on the first N examples only")
    p.add_argument("--test-limit", type=int, default=0, help="evaluate on the first N test examples only")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--iwae", type=int, default=0, help="K of the final log p(x) (gmvae: 100 per state of y; iwae: 5000)")
    p.add_argument("--iwae-limit", type=int, default=1000, help="test examples of the final log p(x)")
    p.add_argument("--labelled", type=int, default=1000)
    p.add_argument("--classify", type=float, default=50.0)
    a = p.parse_args()
    if a.epochs < 1 or a.limit < 0 or a.test_limit < 0 or a.threads < 1 or a.batch < 2 or a.iwae < 0 \
            or a.iwae_limit < 1 or a.labelled < 10:
        p.error("--epochs, --threads, --iwae-limit must be >= 1, --batch >= 2, --labelled >= 10, the rest >= 0")
    a.iwae = a.iwae or (100 if a.case == "gmvae" else 5000)
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    data = load(a.limit, a.test_limit)
    if len(data[0]) < a.batch:
        p.error(f"--limit leaves {len(data[0])} training examples, fewer than one batch of {a.batch}")
    print(f"# case={a.case} seed={a.seed} threads={a.threads} train={len(data[0])} test={len(data[2])} "
          f"batch={a.batch} torch={torch.__version__}", flush=True)
    if a.case in ("m2", "classifier"):
        if a.labelled >= len(data[0]):
            p.error(f"--labelled {a.labelled} leaves no unlabelled example among {len(data[0])}")
        labelled_idx = balanced_labels(data[1], a.labelled, np.random.default_rng(a.seed))
        (run_m2 if a.case == "m2" else run_classifier)(a, data, rng, labelled_idx)
    else:
        run_unsupervised(a, data, rng, torch.Generator().manual_seed(a.seed))


if __name__ == "__main__":
    main()
