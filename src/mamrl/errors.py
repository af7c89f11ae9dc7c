"""The one exception family the CLI turns into a one-line error message."""


class MamrlError(ValueError):
    """Bad input or state that the user can fix; its message is one line naming the problem."""


class TopologyError(MamrlError):
    """A topology (built-in name, file or in-memory value) is malformed or unusable."""


class SimulationError(MamrlError):
    """Simulation parameters are invalid (load, horizon, failures, policy tables...)."""
