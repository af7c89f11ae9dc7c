"""The one interface every routing algorithm offers: train, evaluate (frozen), save, load.

SPA, random, Q-routing, tabular PG and the deep learner all implement `RoutingAgent`, so the
experiment harness treats them alike. Training and evaluation are on explicit seeds; episode k of
seed s has the same traffic for every algorithm (common random numbers).
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Callable

import numpy as np

from mamrl.errors import MamrlError
from mamrl.runs import save_torch
from mamrl.sim.evaluate import in_chunks  # noqa: F401  (re-exported for the agents)
from mamrl.sim.params import SimParams

Progress = Callable[[int], None]
"""Called with the number of episodes just finished."""

CHECKPOINT_FORMAT = "mamrl-agent/2"


def training_start(first_episode: int | None, episodes_trained: int) -> int:
    """Index of the first episode a learner's `train` call plays: `first_episode`, or with None
    `episodes_trained`, the learner's index of the episode after the last one it trained on (so
    successive calls continue with new episodes). A learner keeps that index itself, as
    `first_episode + num_episodes` after the call: callers name episodes, they never set it."""
    if first_episode is None:
        return episodes_trained
    if isinstance(first_episode, bool) or not isinstance(first_episode, (int, np.integer)) or first_episode < 0:
        raise MamrlError(f"first_episode must be an integer >= 0, got {first_episode!r}")
    return int(first_episode)


class RoutingAgent(ABC):
    """A routing algorithm for one topology."""

    name: str = "agent"
    """Registry name (`spa`, `q-routing`, ...)."""
    learns: bool = False
    """Whether `train` changes anything."""
    rollout_bytes_per_router_tick: float = 0.0
    """Memory a training rollout holds per (tick, episode, router), for `sim.memory` estimates."""
    learning_cost_per_router_tick: float = 0.0
    """Rough compute of training per (tick, episode, router) beyond simulating it, in units of
    simulating a router-tick at load 1 (`sweep.cell_cost`: orders cells, weighs progress estimates)."""

    def train(
        self, params: SimParams, seed: int, num_episodes: int, *, first_episode: int | None = None,
        on_progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        """Learn online from episodes `first_episode .. first_episode + num_episodes - 1` of `seed`
        (`first_episode` None: the episodes after those already trained, see `training_start`);
        returns per-episode metrics of the training episodes (learning curves). Default: nothing
        to learn."""
        return {}

    @abstractmethod
    def evaluate(
        self, params: SimParams, seed: int, num_episodes: int, *, batch_size: int = 32, on_progress: Progress | None = None
    ) -> dict[str, np.ndarray]:
        """Per-episode metrics of `num_episodes` episodes of `seed` with learning frozen."""

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        """Hyper-parameters needed to rebuild the agent (JSON-ready)."""
        return {}

    def state_arrays(self) -> dict[str, np.ndarray]:
        """Learned state as named arrays (empty for algorithms that do not learn)."""
        return {}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        if arrays:
            raise MamrlError(f"{self.name} has no learned state to load")

    def save(self, path: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Write config and learned state as a torch state dict, atomically (temp file + rename).

        `extra` holds JSON-ready training state (logs, counters) kept beside the weights."""
        # lazy: torch takes ~1 s to import; only checkpoints need it
        import torch

        path = Path(path)
        payload = {
            "format": CHECKPOINT_FORMAT,
            "name": self.name,
            "config": json.dumps(self.config()),
            "extra": json.dumps(extra or {}),
            "arrays": {k: torch.from_numpy(np.array(v, copy=True)) for k, v in self.state_arrays().items()},
        }
        return save_torch(path, payload)

    @staticmethod
    def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays) of a checkpoint written by `save`, loaded with `weights_only=True`
        (no code runs); one-line errors for a missing, corrupt or foreign file."""
        # lazy: torch takes ~1 s to import; only checkpoints need it
        import torch

        path = Path(path)
        if not path.is_file():
            raise MamrlError(f"checkpoint {path} does not exist")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # zip, unpickling and format errors all mean the same to a user
            raise MamrlError(f"checkpoint {path} is corrupt or not a mamrl checkpoint ({type(exc).__name__})") from None
        if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
            raise MamrlError(f"checkpoint {path} is not a mamrl agent checkpoint")
        try:
            meta = {"name": payload["name"], "config": json.loads(payload["config"]), "extra": json.loads(payload["extra"])}
            arrays = {k: v.numpy() for k, v in payload["arrays"].items()}
        except Exception as exc:
            raise MamrlError(f"checkpoint {path} is incomplete ({type(exc).__name__})") from None
        return meta, arrays
