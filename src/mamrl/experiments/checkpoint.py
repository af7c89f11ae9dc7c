"""Trained agents from checkpoints, for evaluation (`mamrl evaluate`, `mamrl simulate --policy
PATH`, `mamrl plot-topology --policy PATH`, `mamrl saturation --checkpoint`).

A policy spec names one of:
* a checkpoint file written by an agent's `save` (`checkpoint.pt` of `mamrl train`, a
  failure experiment's `meta_init.pt` is not one: use its `meta/checkpoint.pt`);
* a `mamrl train` run directory (its `checkpoint.pt`; its `config.json` then gives the defaults
  of topology, load and failures);
* `pretrained:NAME`, a checkpoint shipped inside the package (`pretrained_names()`), beside its
  card `NAME.json`: the training config and command, the checkpoint's SHA-256 (checked on every
  load: a file that differs from its card is refused) and what it achieves (`ship_pretrained`).

Loading is weights-only (`RoutingAgent.read_checkpoint`); a corrupt file, another file type or
an unknown pretrained name is one line. An agent evaluated on a topology with another router
count is refused by the agent itself, with one line naming both shapes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mamrl.agents.base import RoutingAgent
from mamrl.algorithms import make_agent
from mamrl.errors import MamrlError
from mamrl.runs import atomic_file, write_json

PRETRAINED_PREFIX = "pretrained:"
PRETRAINED_DIR = Path(__file__).resolve().parent.parent / "pretrained"
"""Where shipped checkpoints live (package data: `mamrl/pretrained/<name>.pt` and `<name>.json`)."""


def pretrained_names() -> list[str]:
    """Names of the shipped checkpoints (`pretrained:NAME`)."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.pt"))


def is_checkpoint_spec(spec: str) -> bool:
    """Whether a `--policy` value names a checkpoint rather than a built-in policy: `pretrained:`,
    a path ending in `.pt`, or an existing file or directory."""
    text = str(spec).strip()
    return text.startswith(PRETRAINED_PREFIX) or text.endswith(".pt") or Path(text).exists()


@dataclass(frozen=True)
class LoadedAgent:
    """A trained agent and where it came from."""

    name: str
    """Algorithm name of the checkpoint (mamrl, maml, q-routing, pg, ...)."""
    agent: Any
    """The `RoutingAgent`, its state loaded."""
    path: Path
    """The checkpoint file."""
    sha256: str
    """Content hash of the checkpoint file."""
    spec: str
    """The spec as given."""
    training: dict[str, Any] | None
    """The `mamrl train` config of its run directory (topology, load, failures, ...), if known."""

    def describe(self) -> dict[str, Any]:
        """What a results file records about the policy."""
        # A shipped checkpoint is named inside the package, wherever it is installed.
        shipped = self.spec.strip().startswith(PRETRAINED_PREFIX)
        where = f"mamrl/pretrained/{self.path.name}" if shipped else str(self.path)
        return {"checkpoint": self.spec, "checkpoint_file": where, "checkpoint_sha256": self.sha256,
                "algorithm": self.name, "config": self.agent.config(), "training": self.training}


def resolve_checkpoint(spec: str) -> tuple[Path, dict[str, Any] | None]:
    """(checkpoint file, training config if known) of a policy spec (module doc)."""
    path, training, _ = _resolve(spec)
    return path, training


def _resolve(spec: str) -> tuple[Path, dict[str, Any] | None, str | None]:
    """`resolve_checkpoint`, plus the SHA-256 a shipped checkpoint's card expects (None otherwise)."""
    text = str(spec).strip()
    if text.startswith(PRETRAINED_PREFIX):
        name = text[len(PRETRAINED_PREFIX):]
        path = PRETRAINED_DIR / f"{name}.pt"
        if not path.is_file():
            names = pretrained_names()
            raise MamrlError(f"unknown pretrained policy {name!r} (shipped: {', '.join(names) if names else 'none'})")
        card = read_card(name)
        training = card.get("training")
        return path, training if isinstance(training, dict) else None, str(card.get("sha256"))
    path = Path(text)
    if path.is_dir():
        checkpoint = path / "checkpoint.pt"
        if not checkpoint.is_file():
            raise MamrlError(f"{path} is a directory without a checkpoint.pt (not a `mamrl train` run directory)")
        config_file = path / "config.json"
        training = None
        if config_file.is_file():
            try:
                training = json.loads(config_file.read_text(encoding="utf-8")).get("config")
            except ValueError:
                raise MamrlError(f"{config_file} is not valid JSON") from None
        return checkpoint, training, None
    if not path.is_file():
        raise MamrlError(f"checkpoint {path} does not exist")
    return path, None, None


def read_card(name: str) -> dict[str, Any]:
    """The card `NAME.json` of a shipped checkpoint (one line if missing or unreadable)."""
    card = PRETRAINED_DIR / f"{name}.json"
    try:
        data = json.loads(card.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise MamrlError(f"pretrained policy {name!r}: its card {card.name} is missing or not valid JSON (reinstall mamrl)") from None
    if not isinstance(data, dict):
        raise MamrlError(f"pretrained policy {name!r}: its card {card.name} is not a JSON object (reinstall mamrl)")
    return data


def ship_pretrained(run_dir: Path, name: str, *, command: str, evaluation: dict[str, Any] | None = None,
                    note: str | None = None, destination: Path = PRETRAINED_DIR) -> Path:
    """Copy the checkpoint of `mamrl train` run `run_dir` to `destination/NAME.pt`, with its card
    `NAME.json`: training config, `command` (the training command line), SHA-256, `evaluation`
    (what it achieves) and `note` (what a user must know, e.g. a load above λ*). The checkpoint
    must load (weights only) before it is shipped."""
    if not name.replace("-", "").replace("_", "").isalnum():
        raise MamrlError(f"pretrained name {name!r}: use letters, digits, - and _")
    checkpoint, training = resolve_checkpoint(str(run_dir))
    loaded = load_agent(str(checkpoint))
    data = checkpoint.read_bytes()
    destination.mkdir(parents=True, exist_ok=True)
    target = destination / f"{name}.pt"
    with atomic_file(target, "wb") as handle:
        handle.write(data)
    card = {"name": name, "algorithm": loaded.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data),
            "command": command, "training": training, "agent_config": loaded.agent.config(), "evaluation": evaluation,
            "note": note}
    write_json(destination / f"{name}.json", card)
    return target


def load_agent(spec: str) -> LoadedAgent:
    """The trained agent a policy spec names (module doc), with one-line errors."""
    path, training, expected_sha256 = _resolve(spec)
    # Hashed once, before it is read as a checkpoint: a shipped file must match its card.
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise MamrlError(f"pretrained policy {str(spec).strip()[len(PRETRAINED_PREFIX):]!r}: {path.name} does not match the "
                         "SHA-256 of its card (a damaged or replaced file; reinstall mamrl)")
    meta, arrays = RoutingAgent.read_checkpoint(path)
    name = str(meta.get("name"))
    config = meta.get("config") or {}
    if name in ("spa", "random"):
        config = {k: v for k, v in config.items() if k == "reconvergence_delay_ticks"} if name == "spa" else {}
    try:
        agent = make_agent(name, config)
    except MamrlError as exc:
        raise MamrlError(f"checkpoint {path}: {exc}") from None
    agent.load_state_arrays(arrays)
    return LoadedAgent(name, agent, path, digest, str(spec), training if isinstance(training, dict) else None)


__all__ = ["LoadedAgent", "PRETRAINED_DIR", "PRETRAINED_PREFIX", "is_checkpoint_spec", "load_agent", "pretrained_names",
           "read_card", "ship_pretrained",
           "resolve_checkpoint"]
