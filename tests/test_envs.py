"""The RL adapters (mamrl.envs): API conformance, spaces and encoding, seeding, rewards, and that
the adapters add no behaviour to the simulator."""

from __future__ import annotations

import warnings

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test

import mamrl.envs as envs
from mamrl.agents.shortest_path import ShortestPathPolicy, shortest_path_next_hop
from mamrl.envs import RoutingEnv, RoutingParallelEnv, make_params, parallel_env
from mamrl.errors import MamrlError, SimulationError, TopologyError
from mamrl.sim import LinkFailure, SimParams, Simulator
from mamrl.sim import kernel
from mamrl.sim.kernel import RT_LOST
from mamrl.topologies import load_topology, save_topology

TOPOLOGIES = ("b4", "geant", "att")
H = 50


def random_actions(env: RoutingParallelEnv, obs, rng: np.random.Generator) -> dict[str, int]:
    """A uniformly random allowed slot per live agent (any slot if every link is down)."""
    out = {}
    for agent in env.agents:
        mask = obs[agent]["action_mask"]
        allowed = np.flatnonzero(mask) if mask.any() else np.arange(mask.size)
        out[agent] = int(rng.choice(allowed))
    return out


def rollout(env: RoutingParallelEnv, seed: int, action_seed: int = 0):
    """(observations, rewards, infos) per step of one episode under seeded random actions."""
    rng = np.random.default_rng(action_seed)
    obs, _ = env.reset(seed=seed)
    trace = [(obs, None, None)]
    while env.agents:
        obs, rew, _, _, info = env.step(random_actions(env, obs, rng))
        trace.append((obs, rew, info))
    return trace


def same_trace(a, b) -> bool:
    if len(a) != len(b):
        return False
    for (oa, ra, _), (ob, rb, _) in zip(a, b):
        if ra != rb:
            return False
        for agent in oa:
            for key in ("observation", "action_mask"):
                if not np.array_equal(oa[agent][key], ob[agent][key]):
                    return False
    return True


# ---------------------------------------------------------------------------- API checkers
@pytest.mark.parametrize("name", TOPOLOGIES)
def test_parallel_api(name):
    env = parallel_env(name, horizon_ticks=H)
    parallel_api_test(env, num_cycles=H + 10)


@pytest.mark.parametrize("name", TOPOLOGIES)
def test_parallel_api_with_failure(name):
    env = parallel_env(name, load_per_router=0.5, horizon_ticks=H, failures=[f"{load_topology(name).link_name(0)}@3"])
    parallel_api_test(env, num_cycles=H + 10)


def test_gym_check_env_registered():
    env = gymnasium.make("mamrl/B4-v0", horizon_ticks=H)
    assert isinstance(env.unwrapped, RoutingEnv)
    assert env.unwrapped.params.horizon_ticks == H
    assert env.unwrapped.params.load_per_router == 0.3
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # no checker warning either
        check_env(env.unwrapped)
    env.close()


@pytest.mark.parametrize("env_id,name", [("mamrl/GEANT-v0", "geant"), ("mamrl/ATT-v0", "att")])
def test_gym_check_env_other_ids(env_id, name):
    env = gymnasium.make(env_id, horizon_ticks=H, load_per_router=0.1, failures=("2-9@0",) if name == "att" else ())
    inner = env.unwrapped
    assert inner.topology.name == name and inner.params.load_per_router == 0.1
    check_env(inner)
    obs, info = env.reset(seed=0)
    steps = 0
    truncated = False
    while not truncated:
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert terminated is False
        steps += 1
    assert steps == H


def test_registration_is_idempotent():
    envs.register_envs()
    envs.register_envs()
    for env_id in ("mamrl/B4-v0", "mamrl/GEANT-v0", "mamrl/ATT-v0"):
        assert env_id in gymnasium.registry
        assert gymnasium.registry[env_id].kwargs["horizon_ticks"] == 500


# ---------------------------------------------------------------------------- spaces and encoding
def test_parallel_spaces_and_encoding():
    env = parallel_env("geant", load_per_router=0.2, horizon_ticks=H)
    topo = env.topology
    n = topo.num_routers
    assert env.possible_agents == list(topo.router_names)
    for i, agent in enumerate(env.possible_agents):
        deg = int(topo.degree[i])
        assert env.action_space(agent) is env.action_space(agent)
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.action_space(agent) == gymnasium.spaces.Discrete(deg)
        space = env.observation_space(agent)
        assert list(space["observation"].nvec) == [n + 1, deg + 1] + [deg + 1] * 10
        assert space["action_mask"].n == deg
    obs, infos = env.reset(seed=3)
    sim_obs = env.simulator.observe(env.sim_state)
    for i, agent in enumerate(env.agents):
        deg = int(topo.degree[i])
        o = obs[agent]
        assert o in env.observation_space(agent)
        assert o["action_mask"].dtype == np.int8 and o["action_mask"].shape == (deg,)
        head = sim_obs.head_destination[0, i]
        assert o["observation"][0] == (n if head < 0 else head)
        longest = sim_obs.longest_queue_neighbor[0, i]
        assert o["observation"][1] == (deg if longest < 0 else longest)
        assert np.all(o["observation"][2:] == deg)  # no actions yet
        assert infos[agent]["has_packet"] == (head >= 0)
    actions = {a: env.action_space(a).n - 1 for a in env.agents}
    busy = {a: infos[a]["has_packet"] for a in env.agents}
    obs, _, _, _, infos = env.step(actions)
    for i, agent in enumerate(env.possible_agents):
        deg = int(topo.degree[i])
        assert infos[agent]["acted"] == busy[agent]
        expected = actions[agent] if busy[agent] else deg
        assert obs[agent]["observation"][2] == expected
        assert np.all(obs[agent]["observation"][3:] == deg)
        assert obs[agent] in env.observation_space(agent)


def test_gym_spaces_and_encoding():
    params = make_params("b4", 0.2, H)
    env = RoutingEnv(params)
    topo = params.topology
    n, k = topo.num_routers, topo.max_degree
    assert env.action_space == gymnasium.spaces.MultiDiscrete(topo.degree)
    assert env.observation_space["observation"].shape == (n, 12)
    assert env.observation_space["action_mask"].shape == (n, k)
    obs, info = env.reset(seed=0)
    assert obs in env.observation_space
    # Same encoding as the parallel env given the same traffic.
    penv = RoutingParallelEnv(params)
    pobs, _ = penv.reset(seed=info["traffic_seed"])
    for i, agent in enumerate(penv.agents):
        assert np.array_equal(obs["observation"][i], pobs[agent]["observation"])
        deg = topo.degree[i]
        assert np.array_equal(obs["action_mask"][i, :deg], pobs[agent]["action_mask"])
        assert np.all(obs["action_mask"][i, deg:] == 0)


# ---------------------------------------------------------------------------- seeding
def test_parallel_seeding():
    env = parallel_env("b4", load_per_router=0.3, horizon_ticks=H)
    first = rollout(env, seed=11)
    again = rollout(env, seed=11)
    other = rollout(env, seed=12)
    assert same_trace(first, again)
    assert not same_trace(first, other)
    # A fresh env with the same seed reproduces the episode too.
    assert same_trace(first, rollout(parallel_env("b4", load_per_router=0.3, horizon_ticks=H), seed=11))


def test_parallel_unseeded_resets_reproducible_from_first_seed():
    def traffic_seeds(env):
        _, infos = env.reset(seed=5)
        seeds = [infos["A"]["traffic_seed"]]
        for _ in range(3):
            _, infos = env.reset()
            seeds.append(infos["A"]["traffic_seed"])
        return seeds

    a = traffic_seeds(parallel_env("b4", horizon_ticks=H))
    b = traffic_seeds(parallel_env("b4", horizon_ticks=H))
    assert a == b
    assert a[0] == 5
    assert len(set(a)) == len(a)  # unseeded resets differ from each other and from the seed
    # Unseeded from the start: still works, with a fresh seed.
    env = parallel_env("b4", horizon_ticks=H)
    _, infos = env.reset()
    assert isinstance(infos["A"]["traffic_seed"], int)


def test_gym_seeding():
    env = gymnasium.make("mamrl/B4-v0", horizon_ticks=H)

    def run(seed):
        env.action_space.seed(0)
        obs, info = env.reset(seed=seed)
        out = [obs["observation"].copy()]
        rewards = []
        truncated = False
        while not truncated:
            obs, reward, _, truncated, info = env.step(env.action_space.sample())
            out.append(obs["observation"].copy())
            rewards.append(reward)
        return np.stack(out), np.array(rewards), info["totals"]

    o1, r1, t1 = run(4)
    o2, r2, t2 = run(4)
    o3, r3, t3 = run(5)
    assert np.array_equal(o1, o2) and np.array_equal(r1, r2) and t1 == t2
    assert not (np.array_equal(o1, o3) and np.array_equal(r1, r3))


def test_bad_seed():
    env = parallel_env("b4", horizon_ticks=H)
    with pytest.raises(SimulationError):
        env.reset(seed=-1)


# ---------------------------------------------------------------------------- failures and masks
@pytest.mark.parametrize("name", TOPOLOGIES)
def test_failed_link_masked_at_both_ends(name):
    topo = load_topology(name)
    spec = {"b4": "D-E", "geant": "7-19", "att": "2-9"}[name]
    link = topo.link_id(spec)
    a, b = topo.links[link].a, topo.links[link].b
    neighbors, link_of_slot = topo.neighbor_table
    slot_a = int(np.flatnonzero(link_of_slot[a] == link)[0])
    slot_b = int(np.flatnonzero(link_of_slot[b] == link)[0])

    env = parallel_env(name, horizon_ticks=H, failures=[f"{spec}@0"])
    obs, _ = env.reset(seed=0)
    for router, slot in ((a, slot_a), (b, slot_b)):
        mask = obs[topo.router_names[router]]["action_mask"]
        assert mask[slot] == 0
        assert mask.sum() == topo.degree[router] - 1
    for i, agent in enumerate(env.agents):
        if i not in (a, b):
            assert obs[agent]["action_mask"].all()

    genv = RoutingEnv(make_params(name, 0.3, H, [LinkFailure(link, 0)]))
    gobs, _ = genv.reset(seed=0)
    assert gobs["action_mask"][a, slot_a] == 0 and gobs["action_mask"][b, slot_b] == 0
    assert gobs["action_mask"].sum() == topo.degree.sum() - 2


def test_link_failure_later_in_episode_updates_mask():
    env = parallel_env("b4", horizon_ticks=H, failures=["D-E@5"])
    topo = env.topology
    d = topo.router_id("D")
    slot = int(np.flatnonzero(topo.neighbor_table[0][d] == topo.router_id("E"))[0])
    obs, _ = env.reset(seed=0)
    masks = [obs["D"]["action_mask"][slot]]
    for _ in range(8):
        obs, *_ = env.step({a: 0 for a in env.agents})
        masks.append(obs["D"]["action_mask"][slot])
    # Observation k is taken at tick k: up at ticks 0..4, down from tick 5.
    assert masks == [1] * 5 + [0] * 4


# ---------------------------------------------------------------------------- rewards
def test_rewards_match_step_events():
    env = parallel_env("b4", load_per_router=0.5, horizon_ticks=H, failures=["D-E@0", "C-F@10"], reward="delay_and_loss")
    rng = np.random.default_rng(1)
    obs, _ = env.reset(seed=2)
    before = env.episode_totals()
    saw_loss = saw_delivery = False
    while env.agents:
        # Ignore the mask so packets are sent onto failed links and lost.
        actions = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        obs, rew, term, trunc, info = env.step(actions)
        after = env.episode_totals()
        events = env.last_events
        lost_now = after["lost"] - before["lost"]
        delivered_now = after["delivered"] - before["delivered"]
        assert sum(-info[a]["lost"] for a in info) == -lost_now
        assert sum(info[a]["delivered"] for a in info) == delivered_now
        for i, agent in enumerate(env.possible_agents):
            assert info[agent]["lost"] == events.lost[0, i]
            assert info[agent]["delivered"] == events.delivered[0, i]
            assert info[agent]["delivery_time_sum"] == events.delivery_time_sum[0, i]
            delivered = info[agent]["delivered"]
            mean_time = info[agent]["delivery_time_sum"] / delivered if delivered else 0.0
            assert rew[agent] == pytest.approx(-info[agent]["lost"] - mean_time)
        saw_loss |= lost_now > 0
        saw_delivery |= delivered_now > 0
        before = after
    assert saw_loss and saw_delivery


def test_gym_reward_is_mean_of_router_rewards():
    params = make_params("att", 0.4, H, ["2-9@0"])
    genv = RoutingEnv(params)
    penv = RoutingParallelEnv(params)
    rng = np.random.default_rng(0)
    gobs, ginfo = genv.reset(seed=9)
    pobs, _ = penv.reset(seed=ginfo["traffic_seed"])  # same traffic
    truncated = False
    while not truncated:
        joint = np.array([rng.integers(d) for d in params.topology.degree], dtype=np.int64)
        gobs, reward, terminated, truncated, ginfo = genv.step(joint)
        pobs, prew, _, ptrunc, pinfo = penv.step({a: int(joint[i]) for i, a in enumerate(penv.possible_agents)})
        per_router = np.array([prew[a] for a in penv.possible_agents])
        assert reward == pytest.approx(per_router.mean())
        assert np.allclose(ginfo["router_rewards"], per_router)
        assert np.array_equal(ginfo["lost"], [pinfo[a]["lost"] for a in penv.possible_agents])
        assert truncated == ptrunc[penv.possible_agents[0]]
    totals = ginfo["totals"]
    assert totals == penv.episode_totals()
    assert totals["generated"] == totals["delivered"] + totals["lost"] + totals["in_network"]


def test_named_and_custom_rewards():
    params = make_params("b4", 0.5, H, ["D-E@0"])
    env_loss = RoutingParallelEnv(params, reward="loss")
    env_delay = RoutingParallelEnv(params, reward="delay")
    env_both = RoutingParallelEnv(params, reward="delay_and_loss")
    env_custom = RoutingParallelEnv(params, reward=lambda ev: ev.delivered[0] * 2.0)
    env_default = RoutingParallelEnv(params)
    all_envs = (env_loss, env_delay, env_both, env_custom, env_default)
    for e in all_envs:
        e.reset(seed=0)
    saw_loss = False
    rng = np.random.default_rng(3)
    for _ in range(H):
        # Random slots, failed link included, so that packets are lost too.
        actions = {a: int(rng.integers(env_both.action_space(a).n)) for a in env_both.possible_agents}
        results = [e.step(actions) for e in all_envs]
        (_, r_loss, *_), (_, r_delay, *_), (_, r_both, *_), (_, r_custom, _, _, info), (_, r_default, *_) = results
        state = env_default.sim_state
        for i, a in enumerate(env_both.possible_agents):
            assert r_both[a] == pytest.approx(r_loss[a] + r_delay[a])
            assert r_loss[a] == -info[a]["lost"]
            assert r_custom[a] == 2.0 * info[a]["delivered"]
            # Default (loss-honest): -(queued + in flight from it + lost at it so far).
            on_link_from_i = np.sum((state.pk[0, :, kernel.PK_LINK] >= 0) & (state.pk[0, :, kernel.PK_SENDER] == i))
            assert r_default[a] == -(state.q_len[0, i] + on_link_from_i + state.router[0, i, kernel.RT_LOST])
        totals = env_default.episode_totals()
        assert sum(r_default.values()) == -(totals["generated"] - totals["delivered"])
        saw_loss |= totals["lost"] > 0
    assert saw_loss
    with pytest.raises(MamrlError):
        RoutingParallelEnv(params, reward="bogus")


def test_reset_losses_reported_in_infos():
    # Tick 0's drop-tail losses happen inside reset (no step reports them).
    env = parallel_env("b4", load_per_router=3.0, horizon_ticks=10, buffer_limit=1)
    _, infos = env.reset(seed=1)
    at_reset = sum(infos[a]["lost"] for a in infos)
    assert at_reset == env.episode_totals()["lost"] > 0
    stepped = 0
    while env.agents:
        _, _, _, _, info = env.step({a: 0 for a in env.agents})
        stepped += sum(i["lost"] for i in info.values())
    assert at_reset + stepped == env.episode_totals()["lost"]


# ---------------------------------------------------------------------------- no added behaviour
@pytest.mark.parametrize(
    "name,failures",
    [("b4", ()), ("b4", ("D-E@0",)), ("geant", ()), ("geant", ("7-19@20",)), ("att", ()), ("att", ("2-9@0",))],
)
def test_shortest_path_through_env_matches_run_tables(name, failures):
    params = make_params(name, 0.3, 100, failures)
    topo = params.topology
    n = topo.num_routers
    next_hop = shortest_path_next_hop(topo)
    seed = 17
    env = RoutingParallelEnv(params)
    obs, _ = env.reset(seed=seed)
    delivery_time = 0
    while env.agents:
        actions = {}
        for i, agent in enumerate(env.agents):
            dst = obs[agent]["observation"][0]
            actions[agent] = 0 if dst == n else int(next_hop[i, dst])
        obs, _, _, _, info = env.step(actions)
        delivery_time += sum(v["delivery_time_sum"] for v in info.values())
    totals = env.episode_totals()
    assert totals["delivered"] > 0

    ref = Simulator(params).run_tables(ShortestPathPolicy().routing_tables(params), seed, 1).per_episode()
    assert totals["generated"] == ref["generated"][0]
    assert totals["delivered"] == ref["delivered"][0]
    assert totals["lost"] == ref["lost"][0]
    assert totals["in_network"] == ref["in_network_at_end"][0]
    assert delivery_time == pytest.approx(ref["mean_delivery_time"][0] * ref["delivered"][0])
    assert np.array_equal(env.sim_state.router[0, :, RT_LOST], ref["lost_per_router"][0])
    if failures and failures[0].endswith("@0"):
        assert totals["lost"] > 0  # SPA keeps using the failed link


# ---------------------------------------------------------------------------- episode end
def test_truncation_and_end_of_episode():
    env = parallel_env("b4", horizon_ticks=5)
    env.reset(seed=0)
    for step in range(5):
        agents = list(env.agents)
        assert agents == env.possible_agents
        _, rew, term, trunc, info = env.step({a: 0 for a in agents})
        assert set(rew) == set(term) == set(trunc) == set(info) == set(agents)
        assert not any(term.values())
        assert all(trunc.values()) == (step == 4) and any(trunc.values()) == (step == 4)
    assert env.agents == []
    with pytest.raises(SimulationError):
        env.step({})
    env.reset(seed=0)
    assert env.agents == env.possible_agents

    genv = RoutingEnv(make_params("b4", 0.3, 3))
    genv.reset(seed=0)
    flags = [genv.step(np.zeros(12, dtype=np.int64))[3] for _ in range(3)]
    assert flags == [False, False, True]
    with pytest.raises(SimulationError):
        genv.step(np.zeros(12, dtype=np.int64))


def test_actions_checked():
    env = parallel_env("b4", load_per_router=2.0, horizon_ticks=H)
    obs, infos = env.reset(seed=0)
    busy = [a for a in env.agents if infos[a]["has_packet"]]
    assert busy and len(busy) < len(env.agents)
    with pytest.raises(SimulationError):
        env.step({a: 0 for a in env.agents if a != busy[0]})  # a busy router without an action
    with pytest.raises(SimulationError):
        env.step({**{a: 0 for a in env.agents}, "nope": 0})
    with pytest.raises(SimulationError):
        env.step({**{a: 0 for a in env.agents}, busy[0]: env.action_space(busy[0]).n})
    env.step({a: 0 for a in busy})  # idle routers may be left out


def test_render_ansi():
    env = parallel_env("b4", horizon_ticks=H, render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and "tick 0/50" in text and "A:" in text
    genv = RoutingEnv(make_params("b4", 0.3, H), render_mode="ansi")
    genv.reset(seed=0)
    assert "queues" in genv.render()
    with pytest.raises(MamrlError):
        parallel_env("b4", render_mode="human")


# ---------------------------------------------------------------------------- factories and bad input
def test_factory_accepts_name_path_topology_and_failure_forms(tmp_path):
    topo = load_topology("b4")
    path = save_topology(topo, tmp_path / "mine.json")
    fail = LinkFailure(topo.link_id("D-E"), 0)
    for spec in ("B4", path, str(path), topo):
        env = parallel_env(spec, load_per_router=0.1, horizon_ticks=H, failures=[fail])
        assert env.topology.num_routers == 12
        assert env.params.failures == (fail,)
    env = parallel_env(topo, failures=["E-D@7"])
    assert env.params.failures == (LinkFailure(topo.link_id("D-E"), 7),)
    assert env.params.horizon_ticks == 500 and env.params.load_per_router == 0.3
    assert parallel_env(topo, failures="D-E").params.failures == (fail,)


@pytest.mark.parametrize(
    "kwargs,error",
    [
        ({"topology": "no-such-topology"}, TopologyError),
        ({"load_per_router": -0.1}, SimulationError),
        ({"horizon_ticks": 0}, SimulationError),
        ({"buffer_limit": 0}, SimulationError),
        ({"failures": ["A-Z@0"]}, TopologyError),
        ({"failures": ["D-E@soon"]}, SimulationError),
        ({"failures": [3.5]}, MamrlError),
        ({"topology": 42}, MamrlError),
    ],
)
def test_bad_input_raises_mamrl_error(kwargs, error):
    with pytest.raises(error):
        parallel_env(**kwargs)
    with pytest.raises(error):
        envs.gym_env(**kwargs)
    assert issubclass(error, MamrlError)


def test_bad_input_through_gymnasium_make_and_constructors():
    with pytest.raises(MamrlError):
        gymnasium.make("mamrl/B4-v0", load_per_router=-1.0)
    with pytest.raises(MamrlError):
        RoutingParallelEnv("b4")
    with pytest.raises(MamrlError):
        RoutingEnv({"topology": "b4"})
    assert isinstance(make_params("b4"), SimParams)


# ------------------------------------------------------------------------------ observation modes, state, masks
@pytest.mark.parametrize("mode", ["flat", "graph"])
@pytest.mark.parametrize("name", ["b4", "att"])
def test_parallel_api_in_every_observation_mode(name, mode):
    env = parallel_env(name, load_per_router=0.5, horizon_ticks=H, failures=[f"{load_topology(name).link_name(0)}@3"],
                       observation_mode=mode)
    parallel_api_test(env, num_cycles=H + 10)


def test_flat_mode_is_the_deep_learners_input_with_the_mask_and_shares_one_space():
    from mamrl.agents.networks import encode_fields

    env = parallel_env("b4", load_per_router=0.5, horizon_ticks=30, failures=["A-B@0"], observation_mode="flat")
    topo = env.topology
    n, k = topo.num_routers, topo.max_degree
    first = env.possible_agents[0]
    for a in env.possible_agents:  # homogeneous spaces: parameter sharing needs no padding
        assert env.observation_space(a) == env.observation_space(first) and env.action_space(a) == env.action_space(first)
    assert env.action_space("A").n == k
    obs, _ = env.reset(seed=2)
    rng = np.random.default_rng(0)
    for _ in range(30):
        plain = env.simulator.observe(env.sim_state)
        rows = encode_fields(plain.head_destination, plain.longest_queue_neighbor, plain.last_actions, n, k)[0]
        masks = env.action_masks()
        for i, a in enumerate(env.possible_agents):
            expected = np.zeros(obs[a].shape[0] - k, dtype=np.float32)
            expected[rows[i]] = 1.0
            np.testing.assert_array_equal(obs[a][:-k], expected)
            np.testing.assert_array_equal(obs[a][-k:].astype(bool), plain.action_mask[0, i])
            np.testing.assert_array_equal(masks[a], plain.action_mask[0, i])
        actions = {a: int(rng.choice(np.flatnonzero(masks[a]))) for a in env.agents}
        obs, *_ = env.step(actions)
    assert not masks["A"][np.flatnonzero(env.simulator.neighbors[topo.router_names.index("A")] == topo.router_names.index("B"))].any()


def test_graph_mode_marks_the_agent_and_its_heads_destination():
    env = parallel_env("geant", load_per_router=0.3, horizon_ticks=20, observation_mode="graph")
    obs, _ = env.reset(seed=1)
    for _ in range(5):
        obs, *_ = env.step({a: 0 for a in env.agents})
    n = env.topology.num_routers
    for i, a in enumerate(env.possible_agents):
        o = obs[a]
        assert o["agent"] == i and o["nodes"][i, 3] == 1 and o["nodes"][:, 3].sum() == 1
        np.testing.assert_array_equal(o["nodes"][:, 0], env.sim_state.q_len[0])
        head = env.simulator.observe(env.sim_state).head_destination[0, i]
        assert o["nodes"][:, 2].sum() == (head >= 0) and (head < 0 or o["nodes"][head, 2] == 1)
        assert o["edge_index"].shape == (2, 2 * len(env.topology.links)) and o["edge_index"].max() == n - 1


def test_state_is_a_global_view_in_its_space_and_bad_modes_are_refused():
    env = parallel_env("b4", horizon_ticks=10)
    with pytest.raises(SimulationError, match="reset"):
        env.state()
    env.reset(seed=0)
    for _ in range(4):
        env.step({a: 0 for a in env.agents})
        state = env.state()
        assert state in env.state_space
        n = env.topology.num_routers
        np.testing.assert_array_equal(state[12 * n:13 * n], env.sim_state.q_len[0])
    with pytest.raises(MamrlError, match="observation_mode"):
        parallel_env("b4", observation_mode="image")


def test_flat_mode_maps_a_slot_beyond_the_degree_to_slot_mod_degree():
    params = make_params("b4", 0.5, horizon_ticks=15)
    flat, plain = RoutingParallelEnv(params, observation_mode="flat"), RoutingParallelEnv(params)
    flat.reset(seed=4)
    plain.reset(seed=4)
    k = flat.topology.max_degree
    for t in range(15):
        wide = {a: (t + i) % k for i, a in enumerate(flat.agents)}
        _, r_flat, *_ = flat.step(wide)
        _, r_plain, *_ = plain.step({a: v % int(plain.degree[plain.agent_index[a]]) for a, v in wide.items()})
        assert r_flat == r_plain
    with pytest.raises(SimulationError, match="slots in 0.."):
        flat.reset(seed=4)
        flat.step({a: k for a in flat.agents})


def test_gym_flat_mode_passes_the_checker_and_offers_maskable_ppo_masks():
    env = gymnasium.make("mamrl/B4-v0", horizon_ticks=H, observation_mode="flat", failures=["A-B@0"])
    inner = env.unwrapped
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        check_env(inner)
    obs, _ = inner.reset(seed=0)
    assert obs.ndim == 1 and obs in inner.observation_space  # a flat Box, as SB3's PPO takes it
    masks = inner.action_masks()
    assert masks.shape == (int(inner.degree.sum()),)
    plain = inner.simulator.observe(inner.sim_state).action_mask[0]
    np.testing.assert_array_equal(masks, plain[inner.simulator.slot_exists])
    assert not masks.all()  # A-B is down, at both ends
    with pytest.raises(MamrlError, match="observation_mode"):
        gymnasium.make("mamrl/B4-v0", observation_mode="graph")
