"""RL environments over the simulator: a PettingZoo `ParallelEnv`, a Gymnasium `Env` and a native
batched Gymnasium `VectorEnv`.

Importing this package registers the gymnasium ids `mamrl/B4-v0`, `mamrl/GEANT-v0` and
`mamrl/ATT-v0` (`gymnasium.make` and `gymnasium.make_vec`). See docs/environments.md.
"""

from mamrl.envs import routing, vector
from mamrl.envs.routing import *  # noqa: F403  (the public names are routing's and vector's, listed there)
from mamrl.envs.routing import register_envs
from mamrl.envs.vector import *  # noqa: F403

__all__ = routing.__all__ + vector.__all__  # noqa: PLE0605 (both are lists of strings)

register_envs()
