"""Small random policies and decision batches shared by the deep-learner and meta-learning tests."""

from __future__ import annotations

import numpy as np
import torch

from mamrl.agents.networks import encode_fields, init_params
from mamrl.agents.trpo import RouterBatch


def small_batch(seed: int = 0, n: int = 3, m: int = 40, k: int = 3) -> tuple[dict, RouterBatch]:
    generator = torch.Generator().manual_seed(seed)
    in_dim = (n + 1) + 11 * (k + 1)
    params = init_params(n, in_dim, (16, 16), k, generator, output_scale=1.0)
    rng = np.random.default_rng(seed)
    degree = np.array([k, k - 1, k][:n])
    fields = encode_fields(rng.integers(0, n, (n, m)), rng.integers(0, k, (n, m)), rng.integers(0, k - 1, (n, m, 10)), n, k)
    actions = np.minimum(rng.integers(0, k, (n, m)), degree[:, None] - 1)
    mask = torch.ones((n, m), dtype=torch.bool)
    mask[1, m // 2 :] = False  # routers have different numbers of decisions
    valid = torch.as_tensor(np.arange(k)[None, :] < degree[:, None])
    batch = RouterBatch(torch.from_numpy(fields), torch.from_numpy(actions), torch.from_numpy(rng.normal(size=(n, m))).float(), mask, valid)
    return params, batch
