"""The native vector environment: gymnasium.make_vec, lockstep episodes equal to the simulator's,
seeding, NEXT_STEP autoreset with episode statistics, rewards, and bad input."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import mamrl.envs  # noqa: F401  (registers the ids)
from mamrl.envs import RoutingVectorEnv, make_params, vector_env
from mamrl.errors import MamrlError, SimulationError
from mamrl.sim import Simulator
from mamrl.sim.simulator import undelivered_by_router


def random_actions(env: RoutingVectorEnv, rng: np.random.Generator) -> np.ndarray:
    return (rng.random((env.num_envs, len(env.degree))) * env.degree).astype(np.int64)


@pytest.mark.parametrize("env_id, routers", [("mamrl/B4-v0", 12), ("mamrl/ATT-v0", 25)])
def test_make_vec_gives_the_native_vector_env(env_id, routers):
    env = gymnasium.make_vec(env_id, num_envs=4, horizon_ticks=20)
    assert isinstance(env, RoutingVectorEnv) and env.num_envs == 4
    obs, info = env.reset(seed=1)
    assert obs["observation"].shape == (4, routers, 12) and obs["action_mask"].shape[:2] == (4, routers)
    assert obs in env.observation_space
    assert env.action_space.shape == (4, routers)
    assert list(info["episode_index"]) == [0, 1, 2, 3]


def test_episodes_are_the_simulators_episodes_and_seeds_fix_them():
    """Environment e runs episode e of the traffic seed: step for step the observations are those
    of the simulator stepped with the same actions; the same seed and actions repeat the run."""
    params = make_params("b4", 0.3, horizon_ticks=30)
    env = RoutingVectorEnv(params, 3)
    sim = Simulator(params)
    obs, _ = env.reset(seed=7)
    state = sim.reset(7, 3)
    rng = np.random.default_rng(0)
    trajectory = []
    for _ in range(30):
        expected, mask = sim.observe_encoded(state)
        np.testing.assert_array_equal(obs["observation"], expected)
        np.testing.assert_array_equal(obs["action_mask"], mask)
        actions = random_actions(env, rng)
        obs, reward, terminated, truncated, info = env.step(actions)
        sim.step(state, actions)
        np.testing.assert_array_equal(info["router_rewards"], -undelivered_by_router(state))
        np.testing.assert_allclose(reward, info["router_rewards"].mean(axis=1))
        assert not terminated.any()
        trajectory.append((actions, reward))
    again = RoutingVectorEnv(params, 3)
    again.reset(seed=7)
    for actions, reward in trajectory:
        np.testing.assert_array_equal(again.step(actions)[1], reward)


def test_next_step_autoreset_reports_the_episode_and_starts_the_next_ones():
    params = make_params("b4", 0.4, horizon_ticks=6)
    env = RoutingVectorEnv(params, 2)
    env.reset(seed=3)
    rng = np.random.default_rng(1)
    total = np.zeros(2)
    for t in range(6):
        obs, reward, terminated, truncated, info = env.step(random_actions(env, rng))
        total += reward
        assert truncated.all() == (t == 5) and ("episode" in info) == (t == 5)
    np.testing.assert_allclose(info["episode"]["r"], total)
    assert list(info["episode"]["l"]) == [6, 6] and info["_episode"].all()
    assert np.all((info["episode"]["delivered_fraction"] >= 0) & (info["episode"]["delivered_fraction"] <= 1))
    # The next step resets (actions ignored, reward 0) into episodes 2 and 3 of the same seed.
    obs, reward, terminated, truncated, info = env.step(np.full((2, 12), 10**6))
    assert not truncated.any() and not reward.any()
    assert list(info["episode_index"]) == [2, 3]
    expected, _ = Simulator(params).observe_encoded(Simulator(params).reset(3, 2, 2))
    np.testing.assert_array_equal(obs["observation"], expected)
    env.step(random_actions(env, rng))  # and stepping goes on


def test_unseeded_resets_draw_from_the_env_generator():
    params = make_params("b4", 0.3, horizon_ticks=5)
    a, b = RoutingVectorEnv(params, 2), RoutingVectorEnv(params, 2)
    a.reset(seed=11)
    b.reset(seed=11)
    a.reset()
    b.reset()
    assert a.traffic_seed == b.traffic_seed != 11


def test_a_down_link_is_a_valid_choice_that_loses_the_packet_and_a_missing_slot_is_an_error():
    params = make_params("b4", 0.5, horizon_ticks=20, failures=["A-B@0"])
    env = RoutingVectorEnv(params, 2)
    obs, _ = env.reset(seed=0)
    topo = params.topology
    a, b = topo.router_names.index("A"), topo.router_names.index("B")
    slot = int(np.flatnonzero(Simulator(params).neighbors[a] == b)[0])
    lost = 0
    for _ in range(20):
        assert not obs["action_mask"][:, a, slot].any()  # the mask shows the failure
        actions = np.zeros((2, 12), dtype=np.int64)
        actions[:, a] = slot
        obs, _, _, _, info = env.step(actions)
        lost += int(info["lost"][:, a].sum())
    assert lost > 0
    env.reset(seed=0)
    actions = np.zeros((2, 12), dtype=np.int64)
    actions[:, :] = topo.degree  # one past every router's last slot
    with pytest.raises(SimulationError, match="is not a slot"):
        for _ in range(20):
            env.step(actions)


@pytest.mark.parametrize("call, message", [
    (lambda: vector_env(num_envs=0), "num_envs"),
    (lambda: vector_env(num_envs=2, reward="nope"), "unknown reward"),
    (lambda: vector_env(num_envs=2, colour="red"), "unknown argument"),
    (lambda: vector_env(num_envs=2).reset(seed=[1, 2]), "one integer"),
    (lambda: vector_env(num_envs=2).step(np.zeros((2, 12), dtype=np.int64)), "reset"),
])
def test_bad_input_is_one_clear_error(call, message):
    with pytest.raises((MamrlError, SimulationError), match=message):
        call()


def test_actions_of_the_wrong_shape_are_refused():
    env = vector_env(num_envs=2, horizon_ticks=5)
    env.reset(seed=0)
    with pytest.raises(SimulationError, match=r"shape \(2, 12\)"):
        env.step(np.zeros((12,), dtype=np.int64))
    with pytest.raises(SimulationError, match="integers"):
        env.step(np.zeros((2, 12)))
