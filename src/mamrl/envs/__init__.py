"""RL environments over the simulator: a PettingZoo `ParallelEnv` and a Gymnasium `Env`.

Importing this package registers the gymnasium ids `mamrl/B4-v0`, `mamrl/GEANT-v0` and
`mamrl/ATT-v0`. See docs/environments.md.
"""

from mamrl.envs.routing import *  # noqa: F403  (the public names are routing's, listed once there)
from mamrl.envs.routing import __all__ as __all__
from mamrl.envs.routing import register_envs

register_envs()
