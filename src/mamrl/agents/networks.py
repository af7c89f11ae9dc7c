"""Per-router policy networks, stored stacked and evaluated for all routers in one batched call.

Router i's policy is an MLP (paper §3.3: 5 hidden layers of 128, ReLU, softmax over the router's
neighbours). All routers' weights live in tensors with a leading router dimension N, so one call
evaluates every router on every parallel episode (`torch.baddbmm`).

Observation encoding (docs/model.md). Router i's observation is G = 12 categorical fields:

    field 0      destination of the queue head              N + 1 values (N = queue empty)
    field 1      slot of the neighbour with the longest queue K + 1 values (K = all empty)
    fields 2-11  the router's last 10 action slots           K + 1 values each (K = none yet)

(N routers, K = maximum degree; slots beyond a router's degree never occur.) The network input is
the concatenation of the one-hot codes, D_in = (N + 1) + 11 (K + 1) values, built on the fly
from the G row indices (`encode_fields`). (An embedding-bag first layer would skip the one-hot
vector, but torch has no double backward for it, and TRPO's Fisher-vector products need one.)

Everything is a pure function of an explicit parameter dict (`policy_logits(params, ...)`), so the
MAML inner step can differentiate through updated parameters; `StackedPolicy` holds the
parameters as an `nn.Module`.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from torch import nn

from mamrl.sim.kernel import HISTORY_LEN

NUM_FIELDS = 2 + HISTORY_LEN
PRECISIONS = ("float32", "bfloat16")
"""Arithmetic of the networks' matrix products in learning updates (`matmul_precision`)."""


def matmul_precision(precision: str) -> contextlib.AbstractContextManager:
    """Context in which the policy networks' matrix products run at `precision`: `float32`, or
    `bfloat16` (torch's CPU autocast: bfloat16 operands, float32 accumulation). Logits, and so
    log-probabilities, KLs and everything computed from them, stay float32 (`policy_logits`)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    return torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bfloat16" else contextlib.nullcontext()


def field_sizes(num_routers: int, max_degree: int) -> list[int]:
    """Number of values of each observation field."""
    return [num_routers + 1, max_degree + 1] + [max_degree + 1] * HISTORY_LEN


def input_dim(num_routers: int, max_degree: int) -> int:
    return sum(field_sizes(num_routers, max_degree))


def field_offsets(num_routers: int, max_degree: int) -> np.ndarray:
    """int64 [G]: where each field's one-hot block starts in the input vector."""
    sizes = field_sizes(num_routers, max_degree)
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def encode_fields(head_destination: np.ndarray, longest_slot: np.ndarray, last_actions: np.ndarray,
                  num_routers: int, max_degree: int) -> np.ndarray:
    """int64 [..., G] input-row indices (field value + field offset) from the simulator's
    observation arrays ([..., ], [..., ], [..., 10]; -1 meaning empty / none)."""
    head = np.where(head_destination < 0, num_routers, head_destination)
    longest = np.where(longest_slot < 0, max_degree, longest_slot)
    history = np.where(last_actions < 0, max_degree, last_actions)
    fields = np.concatenate([head[..., None], longest[..., None], history], axis=-1).astype(np.int64)
    return fields + field_offsets(num_routers, max_degree)


def init_params(num_routers: int, in_dim: int, hidden: tuple[int, ...], num_actions: int,
                generator: torch.Generator, output_scale: float = 0.01) -> dict[str, torch.Tensor]:
    """Stacked parameters: `w0` [N, D_in, H1], `b0` [N, H1], then `w{k}` [N, H_k,
    H_{k+1}] / `b{k}` for the other hidden layers and the output layer. nn.Linear's default
    initialisation per router; the output layer scaled down so initial policies are near uniform."""
    sizes = (in_dim, *hidden, num_actions)
    params: dict[str, torch.Tensor] = {}
    for k in range(len(sizes) - 1):
        fan_in, fan_out = sizes[k], sizes[k + 1]
        bound = 1.0 / math.sqrt(fan_in)
        # kaiming_uniform(a=sqrt(5)) as nn.Linear does gives the same bound for weights and biases.
        w = (torch.rand((num_routers, fan_in, fan_out), generator=generator) * 2 - 1) * bound
        b = (torch.rand((num_routers, fan_out), generator=generator) * 2 - 1) * bound
        if k == len(sizes) - 2:
            w, b = w * output_scale, b * 0.0
        params[f"w{k}"], params[f"b{k}"] = w, b
    return params


def slot_mask(degree: np.ndarray, max_degree: int) -> torch.Tensor:
    """bool [N, K]: which action slots exist (slot k < the router's degree)."""
    return torch.as_tensor(np.arange(max_degree)[None, :] < np.asarray(degree)[:, None])


def num_layers(params: dict[str, torch.Tensor]) -> int:
    return sum(1 for key in params if key.startswith("w"))


def policy_logits(params: dict[str, torch.Tensor], fields: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Logits [N, M, K] (in the parameters' dtype) for inputs `fields` [N, M, G] (row indices, see `encode_fields`);
    `valid` [N, K] or [N, M, K] bool masks slots that do not exist (or are masked as down)."""
    n, m, _ = fields.shape
    w0 = params["w0"]
    one_hot = torch.zeros((n, m, w0.shape[1]), dtype=w0.dtype, device=w0.device)
    one_hot.scatter_(2, fields, 1.0)
    h = torch.relu(torch.baddbmm(params["b0"][:, None, :], one_hot, w0))
    layers = num_layers(params)
    for k in range(1, layers):
        h = torch.baddbmm(params[f"b{k}"][:, None, :], h, params[f"w{k}"])
        if k < layers - 1:
            h = torch.relu(h)
    mask = valid if valid.dim() == 3 else valid[:, None, :]
    # In the parameters' precision even where `matmul_precision("bfloat16")` made the products bfloat16.
    return h.to(w0.dtype).masked_fill(~mask, float("-inf"))


class StackedPolicy(nn.Module):
    """All routers' policy networks as one module (parameters stacked along the router axis)."""

    def __init__(self, num_routers: int, max_degree: int, degree: np.ndarray, hidden: tuple[int, ...], seed: int):
        super().__init__()
        self.num_routers, self.max_degree, self.hidden = num_routers, max_degree, tuple(hidden)
        self.in_dim = input_dim(num_routers, max_degree)
        generator = torch.Generator().manual_seed(int(seed))
        init = init_params(num_routers, self.in_dim, self.hidden, max_degree, generator)
        self.params = nn.ParameterDict({k: nn.Parameter(v) for k, v in init.items()})
        self.register_buffer("valid", slot_mask(degree, max_degree), persistent=False)

    def param_dict(self) -> dict[str, torch.Tensor]:
        return dict(self.params.items())

    def forward(self, fields: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        return policy_logits(self.param_dict(), fields, self.valid if valid is None else valid)
