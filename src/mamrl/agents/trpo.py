"""TRPO (Schulman et al. 2015) for N routers at once, each router optimising only its own
parameters from only its own data (paper §3.2–3.3, [18]); plus the linear feature baseline of
Duan et al. 2016 ([19]), GAE, and a vanilla policy-gradient step (MAML's inner loop).

Everything is batched over routers: parameters are dicts of tensors with a leading router axis,
and "per router" quantities (losses, KLs, dot products, step sizes, line-search decisions) are
vectors of length N. The routers' objectives are separable, so the Hessian of the sum of their
KLs is block diagonal and one Hessian-vector product gives every router's Fisher-vector product.

Reads top to bottom like the algorithm: data -> surrogate & KL -> gradient -> conjugate gradient
-> step size -> per-router backtracking line search.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from mamrl.agents.networks import policy_logits

Params = dict[str, torch.Tensor]


# --------------------------------------------------------------------------- data
@dataclass
class RouterBatch:
    """Each router's decisions, padded to M per router. Shapes [N, M, ...]."""

    fields: torch.Tensor
    """int64 [N, M, G]: observation rows (see networks.encode_fields)."""
    actions: torch.Tensor
    """int64 [N, M]: the slot chosen."""
    advantages: torch.Tensor
    """float32 [N, M]."""
    mask: torch.Tensor
    """bool [N, M]: real decisions (False = padding)."""
    valid: torch.Tensor
    """bool [N, K] or [N, M, K]: slots the policy may choose."""
    total: torch.Tensor | None = None
    """float32 [N]: decisions per router of the whole batch when this is a chunk of its columns
    (per-router means of a chunk then sum to the whole batch's means); None = this batch's own."""
    rows: torch.Tensor | None = None
    """int64 [N]: for a chunk, which routers of the batch it was cut from it holds (those with a
    real decision in its columns); None = all of them."""
    column: int = 0
    """For a chunk, its first column in the batch it was cut from."""

    @property
    def counts(self) -> torch.Tensor:
        if self.total is not None:
            return self.total
        return self.mask.sum(dim=1).clamp(min=1).to(torch.float32)

    def routers(self, index: torch.Tensor) -> "RouterBatch":
        """The batch of the routers in `index` (int64) only."""
        return RouterBatch(self.fields[index], self.actions[index], self.advantages[index], self.mask[index],
                           self.valid[index], None if self.total is None else self.total[index])

    def chunks(self, max_rows: int) -> list["RouterBatch"]:
        """Column chunks of at most `max_rows` rows (N x columns) whose per-router means add up to
        this batch's: sums over decisions (gradients, Hessian-vector products) can be computed
        chunk by chunk, freeing each chunk's graph before the next. A chunk holds only the routers
        with a real decision in its columns (`rows`): the routers' decision counts differ (by 1.4x
        on b4 under a trained policy), and the padding of the others would cost as much as data."""
        n, m = self.mask.shape
        width = max(1, max_rows // max(n, 1))
        if width >= m:
            return [self]
        total = self.counts
        out = []
        for start in range(0, m, width):
            cols = slice(start, start + width)
            present = self.mask[:, cols].any(dim=1)
            if not bool(present.any()):
                continue
            rows = None if bool(present.all()) else torch.nonzero(present).squeeze(1)
            pick = (lambda x: x[:, cols]) if rows is None else (lambda x: x[rows, cols])
            valid = (self.valid if rows is None else self.valid[rows]) if self.valid.dim() == 2 else pick(self.valid)
            out.append(RouterBatch(pick(self.fields), pick(self.actions), pick(self.advantages), pick(self.mask), valid,
                                   total if rows is None else total[rows], rows, start))
        return out

    def part(self, whole: torch.Tensor) -> torch.Tensor:
        """This chunk's routers and columns of a tensor [N, M, ...] laid out like the batch it was
        cut from (e.g. log-probabilities computed on that batch)."""
        columns = whole[:, self.column:self.column + self.mask.shape[1]]
        return columns if self.rows is None else columns[self.rows]

    def put(self, whole: torch.Tensor, values: torch.Tensor) -> None:
        """Write `values` into this chunk's part of `whole` (see `part`)."""
        columns = slice(self.column, self.column + self.mask.shape[1])
        if self.rows is None:
            whole[:, columns] = values
        else:
            whole[self.rows, columns] = values

    def take(self, params: Params) -> Params:
        """The parameters of this chunk's routers."""
        return params if self.rows is None else {k: v[self.rows] for k, v in params.items()}

    def add_to(self, total: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """total [N, ...] + values [n, ...] of this chunk's routers (in place; returns total)."""
        return total.add_(values) if self.rows is None else total.index_add_(0, self.rows, values)

    def subsample(self, fraction: float, generator: torch.Generator) -> "RouterBatch":
        """A random fraction of the columns (for cheaper Fisher-vector products)."""
        m = self.mask.shape[1]
        keep = max(1, int(round(m * fraction)))
        if keep >= m:
            return self
        cols = torch.randperm(m, generator=generator)[:keep]
        valid = self.valid if self.valid.dim() == 2 else self.valid[:, cols]
        return RouterBatch(self.fields[:, cols], self.actions[:, cols], self.advantages[:, cols], self.mask[:, cols], valid)


def per_router_mean(values: torch.Tensor, batch: RouterBatch) -> torch.Tensor:
    """[N]: mean of values [N, M] over each router's real decisions."""
    return (values * batch.mask).sum(dim=1) / batch.counts


def log_probs(params: Params, batch: RouterBatch) -> torch.Tensor:
    """[N, M, K] log pi over slots (-inf on invalid slots)."""
    return torch.log_softmax(policy_logits(params, batch.fields, batch.valid), dim=-1)


def uniform_log_probs(batch: RouterBatch, dtype: torch.dtype) -> torch.Tensor:
    """[N, M, K] log-probabilities of the uniform policy over each decision's valid slots: what
    stands for the log-probabilities of padding rows a chunk leaves out (any finite policy would
    do: padding has weight 0 in every mean, and must not turn it into nan)."""
    n, m = batch.mask.shape
    valid = batch.valid if batch.valid.dim() == 3 else batch.valid[:, None, :].expand(n, m, -1)
    slots = valid.sum(dim=-1, keepdim=True).clamp(min=1).to(dtype)
    return torch.where(valid, -torch.log(slots), torch.tensor(-math.inf, dtype=dtype))


def surrogate(params: Params, batch: RouterBatch, old_logp_actions: torch.Tensor) -> torch.Tensor:
    """[N]: per-router importance-sampled advantage, mean over its decisions."""
    return surrogate_of(log_probs(params, batch), batch, old_logp_actions)


def surrogate_of(logp: torch.Tensor, batch: RouterBatch, old_logp_actions: torch.Tensor) -> torch.Tensor:
    """`surrogate` from the policy's log-probabilities over slots [N, M, K] on `batch`."""
    ratio = torch.exp(logp.gather(2, batch.actions[..., None]).squeeze(2) - old_logp_actions)
    return per_router_mean(ratio * batch.advantages, batch)


def mean_kl(params: Params, batch: RouterBatch, old_logp: torch.Tensor) -> torch.Tensor:
    """[N]: KL(pi_old || pi) per router, mean over its decisions."""
    return mean_kl_of(log_probs(params, batch), batch, old_logp)


def mean_kl_of(logp: torch.Tensor, batch: RouterBatch, old_logp: torch.Tensor) -> torch.Tensor:
    """`mean_kl` from the policy's log-probabilities over slots [N, M, K] on `batch`;
    differentiable in both arguments (MAML's inner KL needs the gradient in `old_logp` too)."""
    # Invalid slots have -inf logs in both: zero them before they meet, so that their terms are
    # 0 and no backward pass sees 0 * (-inf - -inf) = nan.
    valid = torch.isfinite(old_logp)
    old = torch.where(valid, old_logp, torch.zeros_like(old_logp))
    new = torch.where(valid, logp, torch.zeros_like(logp))
    terms = torch.where(valid, old.exp() * (old - new), torch.zeros_like(old))
    return per_router_mean(terms.sum(dim=2), batch)


# --------------------------------------------------------------------------- per-router vector algebra
def dot(a: Params, b: Params) -> torch.Tensor:
    """[N]: per-router inner products of two parameter-shaped dicts."""
    return sum((a[k] * b[k]).reshape(a[k].shape[0], -1).sum(dim=1) for k in a)


def axpy(alpha: torch.Tensor, x: Params, y: Params) -> Params:
    """y + alpha * x with a per-router alpha [N]."""
    return {k: y[k] + alpha.reshape(-1, *([1] * (x[k].dim() - 1))) * x[k] for k in x}


def scale(alpha: torch.Tensor, x: Params) -> Params:
    return {k: alpha.reshape(-1, *([1] * (x[k].dim() - 1))) * x[k] for k in x}


def conjugate_gradient(matvec, b: Params, iterations: int = 10, tolerance: float = 1e-10) -> Params:
    """Solve A_i x_i = b_i for every router i at once (A block diagonal, SPD), as in TRPO."""
    x = {k: torch.zeros_like(v) for k, v in b.items()}
    r = {k: v.clone() for k, v in b.items()}
    p = {k: v.clone() for k, v in b.items()}
    rr = dot(r, r)
    for _ in range(iterations):
        ap = matvec(p)
        alpha = rr / dot(p, ap).clamp(min=1e-30)
        active = (rr > tolerance).to(rr.dtype)  # converged routers stop moving
        x = axpy(alpha * active, p, x)
        r = axpy(-alpha * active, ap, r)
        rr_new = dot(r, r)
        beta = rr_new / rr.clamp(min=1e-30)
        p = axpy(beta, p, r)
        rr = torch.where(active > 0, rr_new, rr)
    return x


# --------------------------------------------------------------------------- baseline and advantages
def baseline_features(fields: torch.Tensor, ticks: torch.Tensor, in_dim: int, horizon: int) -> torch.Tensor:
    """Dense features [..., in_dim + 4] of Duan et al.'s linear baseline: the observation (one-hot,
    so its square is itself), time t/H, (t/H)^2, (t/H)^3 and 1."""
    one_hot = torch.zeros((*fields.shape[:-1], in_dim), dtype=torch.float64)
    one_hot.scatter_(-1, fields, 1.0)
    tau = (ticks.to(torch.float64) / horizon)[..., None]
    return torch.cat([one_hot, tau, tau**2, tau**3, torch.ones_like(tau)], dim=-1)


def fit_linear_baseline(features: torch.Tensor, returns: torch.Tensor, reg: float = 1e-5) -> torch.Tensor:
    """Per-router ridge regression: features [N, R, F], returns [N, R] -> weights [N, F].
    As in rllab's LinearFeatureBaseline, the ridge coefficient grows x10 until the solve is finite."""
    gram = features.transpose(1, 2) @ features
    rhs = (features.transpose(1, 2) @ returns[..., None]).squeeze(-1)
    eye = torch.eye(gram.shape[-1], dtype=gram.dtype)
    for _ in range(5):
        weights = torch.linalg.solve(gram + reg * eye, rhs)
        if torch.isfinite(weights).all():
            return weights
        reg *= 10
    return torch.zeros_like(rhs)


def discounted_returns(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    """Returns-to-go along the first (time) axis of rewards [T, ...]."""
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gae(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """Generalised advantage estimates along time for rewards, values [T, ...]; the episode ends
    at the horizon (value 0 after it; the time features of the baseline model the truncation)."""
    adv = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[0])
    next_value = torch.zeros_like(values[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        adv[t] = running
        next_value = values[t]
    return adv


# --------------------------------------------------------------------------- Fisher-vector products
def fisher_vector_product(params: Params, batch: RouterBatch, damping: float):
    """v -> (F + damping) v per router, F the Fisher of the policy over the batch's decisions
    (= the Hessian of mean KL(pi_params || pi) at pi_params, what TRPO needs).

    For a softmax policy F = J^T (diag p - p p^T) J with J = d logits / d theta, so a product is one
    forward-mode Jacobian-vector product and one backward pass through a stored graph: cheaper than
    differentiating the KL twice.
    """
    keys = list(params)
    primals = tuple(params[k].detach().requires_grad_(True) for k in keys)

    def logits_of(*weights):
        return policy_logits(dict(zip(keys, weights)), batch.fields, batch.valid)

    logits = logits_of(*primals)
    probs = torch.softmax(logits, dim=-1).detach()
    weight = (batch.mask / batch.counts[:, None]).to(probs.dtype)[..., None]
    detached = tuple(p.detach() for p in primals)

    def product(v: Params) -> Params:
        _, jv = torch.func.jvp(logits_of, detached, tuple(v[k] for k in keys))
        jv = torch.nan_to_num(jv, nan=0.0, posinf=0.0, neginf=0.0)
        mjv = probs * (jv - (probs * jv).sum(dim=-1, keepdim=True))
        fv = torch.autograd.grad(logits, primals, grad_outputs=mjv * weight, retain_graph=True)
        return {k: f.detach() + damping * v[k] for k, f in zip(keys, fv)}

    return product


# --------------------------------------------------------------------------- updates
@dataclass
class TrpoStats:
    """What one TRPO update did, per router."""

    kl: torch.Tensor
    """[N] KL of the accepted step (0 where rejected)."""
    improvement: torch.Tensor
    """[N] surrogate improvement of the accepted step."""
    accepted: torch.Tensor
    """bool [N] whether the router took a step."""
    step_fraction: torch.Tensor
    """[N] accepted fraction of the full natural-gradient step."""


def trpo_update(
    params: Params,
    batch: RouterBatch,
    *,
    max_kl: float = 0.01,
    cg_iterations: int = 10,
    cg_damping: float = 0.1,
    backtrack_ratio: float = 0.5,
    max_backtracks: int = 10,
    fvp_fraction: float = 1.0,
    generator: torch.Generator | None = None,
    max_rows: int = 8192,
    timings: dict[str, float] | None = None,
) -> tuple[Params, TrpoStats]:
    """One TRPO step for every router; returns new (detached) parameters and per-router stats.
    Passes over the batch go `max_rows` rows at a time (`RouterBatch.chunks`). `timings`, if
    given, gets the seconds of each phase added (`policy_gradient`, and `trust_region_step`'s)."""
    start = time.perf_counter()
    theta = {k: v.detach() for k, v in params.items()}
    # At theta_old the importance ratio is 1: the surrogate's gradient is the policy gradient, and
    # its pass gives the old log-probabilities.
    logs: list[torch.Tensor] = []
    g = policy_gradient(theta, batch, max_rows=max_rows, log_probs_out=logs)
    old_logp = logs[0]
    old_logp_actions = old_logp.gather(2, batch.actions[..., None]).squeeze(2)

    if timings is not None:
        timings["policy_gradient"] = timings.get("policy_gradient", 0.0) + time.perf_counter() - start
    fvp_batch = batch if fvp_fraction >= 1 else batch.subsample(fvp_fraction, generator or torch.Generator())
    fisher_vector = fisher_vector_product(theta, fvp_batch, cg_damping)

    def evaluate(candidate: Params, routers: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return kl_and_gain(candidate, batch.routers(routers), old_logp[routers], old_logp_actions[routers], max_rows)

    return trust_region_step(theta, g, fisher_vector, evaluate, max_kl=max_kl, cg_iterations=cg_iterations,
                             backtrack_ratio=backtrack_ratio, max_backtracks=max_backtracks, timings=timings)


def kl_and_gain(candidate: Params, batch: RouterBatch, old_logp: torch.Tensor, old_logp_actions: torch.Tensor,
                max_rows: int) -> tuple[torch.Tensor, torch.Tensor]:
    """[N] KL(pi_old || pi_candidate) and surrogate gain (over the old policy's mean advantage) of
    every router of `batch` on its decisions, pi_old given by its log-probabilities over slots
    `old_logp` [N, M, K] and of the actions taken `old_logp_actions` [N, M]: what a line search
    measures. One forward pass per chunk gives both."""
    dtype = old_logp.dtype
    kl, gain = torch.zeros(batch.mask.shape[0], dtype=dtype), torch.zeros(batch.mask.shape[0], dtype=dtype)
    with torch.no_grad():
        for chunk in batch.chunks(max_rows):
            logp = log_probs(chunk.take(candidate), chunk)
            chunk.add_to(kl, mean_kl_of(logp, chunk, chunk.part(old_logp)))
            chunk.add_to(gain, surrogate_of(logp, chunk, chunk.part(old_logp_actions))
                         - per_router_mean(chunk.advantages, chunk))
    return kl, gain


def trust_region_step(
    theta: Params,
    gradient: Params,
    fisher_vector,
    evaluate,
    *,
    max_kl: float,
    cg_iterations: int,
    backtrack_ratio: float,
    max_backtracks: int,
    start: torch.Tensor | None = None,
    timings: dict[str, float] | None = None,
) -> tuple[Params, TrpoStats]:
    """TRPO's step for every router from its gradient g_i and Fisher-vector products: direction
    s_i = F_i^-1 g_i by conjugate gradient, scaled to the KL bound (sqrt(2 max_kl / s_i^T F_i s_i)),
    then a backtracking line search in which router i takes the largest fraction of its step
    (start_i x ratio^k, start_i = 1 unless given) whose true KL_i <= max_kl and whose surrogate
    gain_i > 0, or no step. `evaluate(candidate, routers) -> (kl, gain)` measures the routers
    still searching (int64 index; `candidate` holds only their parameters), so later backtracks
    cost only what the rejected routers need. Shared by TRPO and MAML-TRPO (whose surrogate is
    post-adaptation). `timings`, if given, gets the seconds of the Fisher-vector products
    (`conjugate_gradient`, with the step's curvature) and of the `line_search` added."""
    clock = time.perf_counter()
    theta = {k: v.detach() for k, v in theta.items()}
    direction = conjugate_gradient(fisher_vector, gradient, cg_iterations)
    curvature = dot(direction, fisher_vector(direction)).clamp(min=1e-12)
    full_step = scale(torch.sqrt(2 * max_kl / curvature), direction)
    if timings is not None:
        timings["conjugate_gradient"] = timings.get("conjugate_gradient", 0.0) + time.perf_counter() - clock
        clock = time.perf_counter()

    n = next(iter(theta.values())).shape[0]
    start = torch.ones(n) if start is None else start
    accepted = torch.zeros(n, dtype=torch.bool)
    fraction = torch.zeros(n)
    kl_taken = torch.zeros(n)
    improvement = torch.zeros(n)
    for k in range(max_backtracks):
        f = start * backtrack_ratio**k
        pending = torch.nonzero(~accepted).squeeze(1)
        with torch.no_grad():
            candidate = axpy(f[pending], {key: v[pending] for key, v in full_step.items()},
                             {key: v[pending] for key, v in theta.items()})
        kl_pending, gain_pending = evaluate(candidate, pending)
        kl = torch.full((n,), math.inf).index_put((pending,), kl_pending.detach().to(torch.float32))
        gain = torch.zeros(n).index_put((pending,), gain_pending.detach().to(torch.float32))
        ok = (~accepted) & (kl <= max_kl) & (gain > 0) & torch.isfinite(kl)
        fraction = torch.where(ok, f, fraction)
        kl_taken = torch.where(ok, kl, kl_taken)
        improvement = torch.where(ok, gain, improvement)
        accepted |= ok
        if bool(accepted.all()):
            break
    with torch.no_grad():
        new_params = axpy(fraction, full_step, theta)
    if timings is not None:
        timings["line_search"] = timings.get("line_search", 0.0) + time.perf_counter() - clock
    return new_params, TrpoStats(kl_taken, improvement, accepted, fraction)


def policy_gradient_step(params: Params, batch: RouterBatch, step_size: float, *, create_graph: bool = False) -> Params:
    """theta_i + alpha * grad_i mean(log pi * A): a vanilla policy-gradient (REINFORCE with
    baseline) step for every router. With `create_graph` the result stays differentiable with
    respect to `params` (MAML's inner step)."""
    logp = log_probs(params, batch).gather(2, batch.actions[..., None]).squeeze(2)
    objective = per_router_mean(logp * batch.advantages, batch).sum()
    grads = torch.autograd.grad(objective, list(params.values()), create_graph=create_graph)
    return {k: v + step_size * g for (k, v), g in zip(params.items(), grads)}


def chunked_gradient(params: Params, batch: RouterBatch, max_rows: int,
                     objective: Callable[[Params, RouterBatch], torch.Tensor]) -> Params:
    """Gradient at `params` of the sum over the chunks of `batch` (`RouterBatch.chunks`) of
    `objective(chunk_params, chunk)`, a scalar of the parameters of the chunk's routers: each
    chunk's graph is freed before the next, and its gradient is added back to its routers."""
    theta = {k: v.detach() for k, v in params.items()}
    total = {k: torch.zeros_like(v) for k, v in theta.items()}
    for chunk in batch.chunks(max_rows):
        leaves = {k: v.detach().requires_grad_(True) for k, v in chunk.take(theta).items()}
        for k, g in zip(leaves, torch.autograd.grad(objective(leaves, chunk), list(leaves.values()))):
            chunk.add_to(total[k], g)
    return total


def policy_gradient(params: Params, batch: RouterBatch, *, max_rows: int = 8192,
                    log_probs_out: list[torch.Tensor] | None = None) -> Params:
    """grad_i of mean_i(log pi * A) for every router (= the surrogate's gradient at the sampling
    policy), accumulated over column chunks of at most `max_rows` rows to bound memory (small
    chunks are also faster: they stay in cache). With `log_probs_out`, appends the batch's
    log pi over slots [N, M, K] (detached) to it."""
    logp_whole = None
    if log_probs_out is not None:
        logp_whole = uniform_log_probs(batch, params[next(iter(params))].dtype)  # where chunks leave padding out

    def objective(leaves: Params, chunk: RouterBatch) -> torch.Tensor:
        logp_all = log_probs(leaves, chunk)
        if logp_whole is not None:
            chunk.put(logp_whole, logp_all.detach())
        logp = logp_all.gather(2, chunk.actions[..., None]).squeeze(2)
        return per_router_mean(logp * chunk.advantages, chunk).sum()

    total = chunked_gradient(params, batch, max_rows, objective)
    if log_probs_out is not None:
        log_probs_out.append(logp_whole)
    return total


def hessian_vector_product(params: Params, batch: RouterBatch, vector: Params, *, max_rows: int = 8192,
                           scale: float = 1.0, extra: Callable[[torch.Tensor, RouterBatch], torch.Tensor] | None = None,
                           ) -> Params:
    """scale * H_i v_i for every router, H_i the Hessian of mean_i(log pi * A) (the inner objective of
    MAML) at `params`: d/dtheta <grad L(theta), v> by double backward, chunk by chunk.

    `extra(log_probs, chunk)`, a per-router function of the log-probabilities over slots on a
    chunk of `batch` (of its routers, `chunk.rows`, and columns), adds the gradient of its sum
    at `params` from the same forward pass (MAML's inner-KL penalty); with `scale` 0 only that
    gradient is computed."""
    def objective(leaves: Params, chunk: RouterBatch) -> torch.Tensor:
        full = log_probs(leaves, chunk)
        value = torch.zeros(())
        if scale != 0:
            logp = full.gather(2, chunk.actions[..., None]).squeeze(2)
            grads = torch.autograd.grad(per_router_mean(logp * chunk.advantages, chunk).sum(), list(leaves.values()),
                                        create_graph=True)
            vector_part = chunk.take(vector)
            value = scale * sum((g * vector_part[k]).sum() for k, g in zip(leaves, grads))
        if extra is not None:
            value = value + extra(full, chunk).sum()
        return value

    return chunked_gradient(params, batch, max_rows, objective)
