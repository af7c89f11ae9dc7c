"""RL environments over the simulator: a PettingZoo `ParallelEnv` and a Gymnasium `Env`.

Importing this package registers the gymnasium ids `mamrl/B4-v0`, `mamrl/GEANT-v0` and
`mamrl/ATT-v0`. See docs/environments.md.
"""

from mamrl.envs.routing import (
    DEFAULT_REWARD,
    GYM_IDS,
    OBS_LEN,
    REWARDS,
    RewardFn,
    RoutingEnv,
    RoutingParallelEnv,
    encode_observation,
    episode_totals,
    gym_env,
    make_params,
    observation_nvec,
    parallel_env,
    register_envs,
    router_rewards,
    sojourn_rewards,
)

register_envs()

__all__ = [
    "DEFAULT_REWARD",
    "GYM_IDS",
    "OBS_LEN",
    "REWARDS",
    "RewardFn",
    "RoutingEnv",
    "RoutingParallelEnv",
    "encode_observation",
    "episode_totals",
    "gym_env",
    "make_params",
    "observation_nvec",
    "parallel_env",
    "register_envs",
    "router_rewards",
    "sojourn_rewards",
]
