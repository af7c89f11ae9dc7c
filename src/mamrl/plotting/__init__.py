"""Figures. Everything draws on explicit `Figure` objects with the Agg canvas: no pyplot, no global
backend switch, so importing this package never changes how an interactive session plots."""

from mamrl.plotting.topology import draw_topology, plot_topology, save_figure

__all__ = ["draw_topology", "plot_topology", "save_figure"]
