"""mamrl: learned packet routing in wide-area networks."""

__version__ = "0.1.0"
