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
from mamrl.sim.params import SimParams

Progress = Callable[[int], None]
"""Called with the number of episodes just finished."""

CHECKPOINT_FORMAT = "mamrl-agent/1"


class RoutingAgent(ABC):
    """A routing algorithm for one topology."""

    name: str = "agent"
    """Registry name (`spa`, `q-routing`, ...)."""
    learns: bool = False
    """Whether `train` changes anything."""

    def train(self, params: SimParams, seed: int, num_episodes: int, *, on_progress: Progress | None = None) -> dict[str, np.ndarray]:
        """Learn online for `num_episodes` episodes of `seed`; returns per-episode metrics of
        the training episodes (learning curves). Default: nothing to learn."""
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

    def save(self, path: str | Path) -> Path:
        """Write config and learned state to one `.npz` file, atomically (no pickles)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"format": CHECKPOINT_FORMAT, "name": self.name, "config": self.config()})
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, __meta__=np.array(meta), **self.state_arrays())
        tmp.replace(path)
        return path

    @staticmethod
    def read_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(meta, arrays) of a checkpoint written by `save`; one-line errors if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise MamrlError(f"checkpoint {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("__meta__")))
        except Exception as exc:  # zip, npy and JSON errors all mean the same to a user
            raise MamrlError(f"checkpoint {path} is corrupt or not a mamrl checkpoint ({type(exc).__name__})") from None
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise MamrlError(f"checkpoint {path} is not a mamrl agent checkpoint")
        return meta, arrays
