"""The adaptation rule of the link-failure experiment: how many episodes a controller needs to
adapt to the failure (`RULE_TEXT`), applied to one run's reward and loss curves (`analyse_run`).

One rule for every controller; Table 2 (`adaptation_table.table2`) reports it over seeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mamrl.runs import Row
from mamrl.sim.metrics import LOSS_BIN_TICKS

MA_WINDOW = 10
"""Episodes in the moving averages of the adaptation rules."""
TOLERANCE = 0.05
"""Relative distance to the plateau within which a controller counts as adapted."""
PLATEAU_SHARE = 0.10
"""The plateau is the mean reward of the last max(MA_WINDOW, 10% of the episodes) episodes."""
LOSS_TARGET = 0.01
"""The loss fraction of the second rule ("episodes until loss < 1%")."""
FAMILY_ALPHA = 0.05
"""Chance that a settled curve leaves the band in any of the windows the rule scans (Bonferroni)."""
MIN_NOISE_SIGMAS = 3.0
"""The band is at least this many standard errors of a 10-episode average on the plateau."""


def noise_sigmas(windows: int) -> float:
    """Standard errors in the band's noise term: z of a two-sided test at FAMILY_ALPHA / windows,
    so that a settled curve stays in the band over all `windows` windows with probability ~95%
    (the windows overlap, so this errs wide); at least MIN_NOISE_SIGMAS."""
    from scipy.stats import norm  # lazy: scipy.stats takes ~0.3 s to import

    return max(MIN_NOISE_SIGMAS, float(norm.ppf(1 - FAMILY_ALPHA / (2 * max(1, windows)))))

RULE_TEXT = (
    "**Episodes to adapt.** Let f be the failure episode and E the number of episodes of the run. The "
    f"plateau is the mean reward of the last P = max({MA_WINDOW}, ⌈{PLATEAU_SHARE:.0%} · E⌉) episodes. The controller "
    f"has adapted at the first episode k ≥ f such that the {MA_WINDOW}-episode moving average of the reward "
    f"stays within the band (below) around the plateau for every window of {MA_WINDOW} episodes lying "
    f"entirely at or after k (a trailing average MA_j over episodes j−{MA_WINDOW - 1}..j, for every j ≥ k+{MA_WINDOW - 1}); "
    "we report k − f. If no such k ≤ E − P exists, the controller has not adapted within the budget E − P − f "
    f"(shown as \"> budget\"). **Episodes until loss < {LOSS_TARGET:.0%}** is the same with the condition "
    f"\"the {MA_WINDOW}-episode moving average of the loss fraction is below {LOSS_TARGET:.0%}\". A controller can "
    "adapt quickly to a bad plateau (SPA, which never reacts, \"adapts\" at once to losing packets): read the "
    "plateau reward, loss fraction and sojourn time beside the episode counts. Near saturation rewards are noisy "
    "from episode to episode, and a 5% band alone would then be crossed by chance: the band is therefore "
    f"max({TOLERANCE:.0%} · |plateau|, z · SE) with SE = SD · √(1/{MA_WINDOW} + 1/P), the standard error "
    f"of a {MA_WINDOW}-episode average minus the plateau mean on a settled curve; SD is the episode-to-episode standard "
    "deviation of the plateau window's rewards, from successive differences (SD(diff)/√2, blind to a remaining "
    "trend). The rule scans m = E − P − f + 1 windows, and a settled curve must stay in the band in all of them, so z "
    f"is corrected for m (Bonferroni): z = Φ⁻¹(1 − {FAMILY_ALPHA:g}/(2m)), at least {MIN_NOISE_SIGMAS:g} (3.6 for m = 170, "
    "4.1 for m = 1000); with a fixed 3, controllers that never change (re-converging SPA) came out as adapting after "
    f"tens of episodes by chance. *band/noise* is {TOLERANCE:.0%} · |plateau| / SE: below z the noise term set the band."
)
"""The adaptation rule, written once: docs, table2.md and `episodes_to_adapt` all use it."""


def plateau_window(episodes: int) -> int:
    """P = max(MA_WINDOW, ⌈PLATEAU_SHARE · episodes⌉)."""
    return max(MA_WINDOW, math.ceil(PLATEAU_SHARE * episodes - 1e-9))


def _window_means(values: np.ndarray, start: int, window: int) -> np.ndarray:
    """Means of values[s:s+window] for s = start .. len-window (NaN-ignoring; NaN if all NaN)."""
    values = np.asarray(values, dtype=np.float64)
    count = len(values) - window - start + 1
    if count <= 0:
        return np.empty(0)
    stacked = np.lib.stride_tricks.sliding_window_view(values[start:], window)
    finite = np.isfinite(stacked)
    sums = np.where(finite, stacked, 0.0).sum(axis=1)
    n = finite.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, sums / np.maximum(n, 1), np.nan)


def _settled_from(ok: np.ndarray, start: int, last_start: int) -> int | None:
    """First k >= start with ok[s - start] for every window start s >= k, if k <= last_start."""
    bad = np.flatnonzero(~ok)
    k = start if bad.size == 0 else start + int(bad[-1]) + 1
    return k if k <= last_start else None


@dataclass(frozen=True)
class Adaptation:
    """The adaptation rule (`RULE_TEXT`) applied to one run."""

    episodes_to_adapt: int | None
    """k − f, or None: not adapted within the budget."""
    episodes_to_low_loss: int | None
    """The same for "loss below LOSS_TARGET", or None."""
    budget: int
    """E − P − f: the largest value either count can take."""
    plateau_reward: float
    """Mean reward of the last P episodes."""
    plateau_loss_fraction: float
    plateau_sojourn_time: float
    plateau_delivery_time: float
    pre_failure_reward: float
    """Mean reward of the MA_WINDOW episodes before the failure (NaN if there are none)."""
    recovery_ticks: float
    """Ticks from the failure until the loss rate stays below LOSS_TARGET (RECOVERY_TEXT); NaN: not within the run."""
    transient_lost: float
    """Packets lost before recovery."""
    band_to_noise: float
    """TOLERANCE·|plateau| divided by the standard deviation a MA_WINDOW-episode average of
    independent episodes would have, estimated from the plateau window (SD/√MA_WINDOW). Below
    about 2, chance alone takes moving averages out of the band: the count measures noise."""
    steps_until_low_loss: float = float("nan")
    """Adaptation steps taken from the failure until the episode `episodes_to_low_loss` counts from
    (`gradient_steps_before`); 0 for a controller that takes none; NaN if it never gets there, for
    Q-routing (it updates its table on every hop, not in steps), or without the run's schedule."""
    lost_until_low_loss: float = float("nan")
    """Packets lost from the failure episode (always counted) until the episode `episodes_to_low_loss`
    counts from (every packet lost after the failure if it never gets there; NaN without per-episode counts)."""


def plateau_noise(rewards: np.ndarray) -> float:
    """Standard error of (a MA_WINDOW-episode average - the plateau mean) on a settled curve:
    SD * sqrt(1/MA_WINDOW + 1/P) for the P plateau episodes `rewards`, with their
    episode-to-episode SD estimated from successive differences (SD(diff) / sqrt 2) so that a
    curve still trending in the window does not count its trend as noise."""
    values = np.asarray(rewards, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size < 3:
        return float("nan")
    sd = float(np.diff(values).std(ddof=1)) / math.sqrt(2)
    return sd * math.sqrt(1 / MA_WINDOW + 1 / values.size)


def episodes_to_adapt(reward: np.ndarray, fail_episode: int) -> tuple[int | None, float, int]:
    """(k − f or None, plateau, budget) of a reward curve under `RULE_TEXT`."""
    reward = np.asarray(reward, dtype=np.float64)
    n = len(reward)
    window = plateau_window(n)
    plateau = float(np.nanmean(reward[n - window:])) if np.isfinite(reward[n - window:]).any() else float("nan")
    budget = n - window - fail_episode
    means = _window_means(reward, fail_episode, MA_WINDOW)
    if not math.isfinite(plateau) or budget < 0:
        return None, plateau, budget
    noise = plateau_noise(reward[n - window:])
    band = max(TOLERANCE * abs(plateau), noise_sigmas(budget + 1) * (noise if math.isfinite(noise) else 0.0))
    ok = np.isfinite(means) & (np.abs(means - plateau) <= band)
    k = _settled_from(ok, fail_episode, n - window)
    return (None if k is None else k - fail_episode), plateau, budget


def episodes_to_low_loss(loss: np.ndarray, fail_episode: int, threshold: float = LOSS_TARGET) -> int | None:
    """k − f for "the MA_WINDOW-episode moving average of the loss fraction stays below
    `threshold`", with the same budget as `episodes_to_adapt`; None if not within it."""
    loss = np.asarray(loss, dtype=np.float64)
    n = len(loss)
    means = _window_means(loss, fail_episode, MA_WINDOW)
    ok = np.isfinite(means) & (means < threshold)
    k = _settled_from(ok, fail_episode, n - plateau_window(n))
    return None if k is None else k - fail_episode


STEPS_TEXT = (
    "**Adaptation steps until loss < 1%.** The deep learners (meta-initialisation with and without reset, random "
    "initialisation by PG or TRPO steps, the fine-tuned intact-network policy) take one adaptation step, or reset, "
    "after every block of episodes; this counts the steps taken from the failure until the episode from which "
    "*episodes until loss < 1%* counts (a reset is not a step), over the seeds that got there (\"never\": none did). "
    "Controllers that do not learn take none (0); Q-routing updates its table on every hop (—)."
)
"""How Table 2 counts adaptation steps, written once (table2.md, REPORT.md)."""


def gradient_steps_before(episode: int, fail_episode: int, block_ends: Sequence[int], resets: np.ndarray) -> int:
    """Adaptation steps a controller that steps after every block (the deep learners) took from the
    failure until `episode`: one after each block ending in fail_episode .. episode − 1, except a
    block it ended by resetting instead (`resets`: the per-episode reset flags)."""
    return sum(1 for end in block_ends if fail_episode <= end < episode and not resets[end])


def lost_until_low_loss(lost: np.ndarray, fail_episode: int, episodes: int | None) -> float:
    """Packets lost in episodes f .. f + max(k, 1) − 1, k = `episodes_to_low_loss` (all after f if
    None): the transient the episode rule sees. The failure episode always counts: a short transient
    (re-converging routing tables) lies inside it, under 1% in a 10-episode average."""
    lost = np.asarray(lost, dtype=np.float64)
    end = len(lost) if episodes is None else fail_episode + max(episodes, 1)
    return float(lost[fail_episode:end].sum())


RECOVERY_WINDOW_TICKS = 100
"""Width of the sliding window over which recovery's loss rate is measured (ticks): short enough
to resolve a 50-tick re-convergence, long enough (~360 packets on b4 at λ = 0.3) that the odd
packet a saturated link loses rarely makes 1% (with 50 ticks it did, on b4 near λ*)."""

RECOVERY_TEXT = (
    "**Recovery in network time.** The episodes from the failure on are laid end to end as network time "
    f"(t = 0 at the failure tick). The loss rate of a {RECOVERY_WINDOW_TICKS}-tick window is the packets lost in it "
    "over the packets created in it. The controller has recovered at the first t from which every such window "
    f"(sliding in steps of the simulator's {LOSS_BIN_TICKS}-tick bins) has a loss rate below {LOSS_TARGET:.0%}; "
    "*recovery* is that t in ticks, and *lost in transient* the packets lost before it. It is \"> run\" when the "
    "last window of the run is still above the target. Episodes restart with empty queues, so network time is an "
    "approximation across episode boundaries. Near λ* a settled controller still loses the odd burst, and one "
    f"later window at {LOSS_TARGET:.0%} moves *recovery* past it, so over a long run *recovery* and *lost in transient* "
    f"can be set by the last such window. *Lost until loss < {LOSS_TARGET:.0%}* is blind to a burst that keeps the "
    "10-episode average below 1%: the packets lost from the failure episode (always counted) until the episode from "
    "which *episodes until loss < 1%* counts (every packet lost after the failure if it never gets there)."
)
"""The recovery rule, written once (table2.md and docs/failures.md)."""


def recovery_after_failure(generated: np.ndarray, lost: np.ndarray, fail_tick: int, bin_ticks: int,
                           target: float = LOSS_TARGET) -> tuple[float, float]:
    """(recovery ticks or NaN, packets lost before it) under RECOVERY_TEXT, from the per-bin
    packets generated and lost [episodes from the failure episode on, bins] (`sim.metrics.loss_bins`)."""
    first = fail_tick // bin_ticks  # the bin holding the failure tick: network time starts there
    generated = np.asarray(generated, dtype=np.float64).ravel()[first:]
    lost = np.asarray(lost, dtype=np.float64).ravel()[first:]
    width = max(1, RECOVERY_WINDOW_TICKS // bin_ticks)
    if lost.size < width:
        return float("nan"), float(lost.sum())
    windows_lost = np.lib.stride_tricks.sliding_window_view(lost, width).sum(axis=1)
    windows_made = np.lib.stride_tricks.sliding_window_view(generated, width).sum(axis=1)
    bad = (windows_lost > 0) & (windows_lost >= target * windows_made)
    if bad[-1]:
        return float("nan"), float(lost.sum())
    start = int(np.flatnonzero(bad)[-1]) + 1 if bad.any() else 0
    return float(start * bin_ticks), float(lost[:start].sum())


def failure_episode(rows: Sequence[Row]) -> int:
    """The first episode of a run not on the intact network (the run's length if there is none)."""
    return min((int(r["episode"]) for r in rows if r["phase"] != "intact"), default=len(rows))


def analyse_run(rows: Sequence[Row], *, stepping: bool | None = False, block_ends: Sequence[int] | None = None) -> Adaptation:
    """The adaptation rule on one run's rows (episodes in order). `stepping`: the controller takes
    an adaptation step after every block, whose last episodes are `block_ends` (True), takes none
    (False), or learns otherwise (None: Q-routing)."""
    rows = sorted(rows, key=lambda r: int(r["episode"]))
    f = failure_episode(rows)
    reward = np.array([r["reward"] for r in rows], dtype=np.float64)
    adapt, plateau, budget = episodes_to_adapt(reward, f)
    loss = np.array([r["loss_fraction"] for r in rows], dtype=np.float64)
    low_loss = episodes_to_low_loss(loss, f)
    lost = np.array([r.get("lost", float("nan")) for r in rows], dtype=np.float64)
    if low_loss is None or stepping is None or (stepping and block_ends is None):
        steps = float("nan")
    elif stepping:
        resets = np.array([bool(int(r.get("reset", 0))) for r in rows])
        steps = float(gradient_steps_before(f + low_loss, f, block_ends, resets))
    else:
        steps = 0.0
    tail = rows[len(rows) - plateau_window(len(rows)):]

    def tail_mean(key: str) -> float:
        values = np.array([r[key] for r in tail], dtype=np.float64)
        return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")

    before = reward[max(0, f - MA_WINDOW):f]
    noise = plateau_noise(reward[len(rows) - len(tail):])
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = float(np.float64(TOLERANCE * abs(plateau)) / noise) if math.isfinite(noise) else float("nan")
    return Adaptation(
        adapt, low_loss, budget, plateau, tail_mean("loss_fraction"),
        tail_mean("mean_sojourn_time"), tail_mean("mean_delivery_time"),
        float(np.nanmean(before)) if np.isfinite(before).any() else float("nan"),
        float(rows[0].get("recovery_ticks", float("nan"))), float(rows[0].get("transient_lost", float("nan"))), ratio,
        steps, lost_until_low_loss(lost, f, low_loss),
    )
