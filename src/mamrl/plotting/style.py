"""How figures look: titles on or off, a size, and a paper style (`mamrl plot`, `mamrl reproduce`,
`mamrl failures`, `mamrl plot-topology`: `--no-title`, `--size WxH`, `--style paper`).

A `FigureStyle` is in force inside `figure_style(style)`; the plotting modules ask
`current_style()` when they make a figure (`new_figure`) and title it (`set_suptitle`). Styles
change how a figure looks, never what it shows.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from mamrl.errors import MamrlError

STYLES = ("default", "paper")
PAPER_RC = {
    "font.family": "serif",
    "font.size": 8,
    "axes.labelsize": 8,
    "axes.titlesize": 8,
    "legend.fontsize": 7,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "lines.linewidth": 1.1,
    "axes.linewidth": 0.6,
    "grid.linewidth": 0.4,
    "savefig.dpi": 300,
}
"""rcParams of the paper style: a serif font at the sizes of a two-column paper's figures."""


@dataclass(frozen=True)
class FigureStyle:
    """How figures look (module doc)."""

    titles: bool = True
    """Figure titles (the suptitle with its setup lines); panel titles naming a topology or link stay."""
    size_inches: tuple[float, float] | None = None
    """Width and height of every figure in inches; None: each figure's own size."""
    style: str = "default"
    """`default`, or `paper` (`PAPER_RC`; also titles off unless asked for)."""


_CURRENT: ContextVar[FigureStyle] = ContextVar("figure_style", default=FigureStyle())


def parse_size(text: str | None) -> tuple[float, float] | None:
    """`WxH` in inches (`7x3.5`) -> (7.0, 3.5); None -> None; one-line errors."""
    if text is None:
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*", str(text))
    if not match:
        raise MamrlError(f"--size: expected WIDTHxHEIGHT in inches (e.g. 7x3.5), got {text!r}")
    width, height = float(match.group(1)), float(match.group(2))
    if not (0.5 <= width <= 100 and 0.5 <= height <= 100):
        raise MamrlError(f"--size: width and height must be between 0.5 and 100 inches, got {text!r}")
    return width, height


def make_style(*, no_title: bool = False, size: str | None = None, style: str = "default") -> FigureStyle:
    """The `FigureStyle` of the command-line options (`--no-title`, `--size`, `--style`)."""
    if style not in STYLES:
        raise MamrlError(f"--style: unknown style {style!r} (choose from {', '.join(STYLES)})")
    return FigureStyle(titles=not no_title and style != "paper", size_inches=parse_size(size), style=style)


def current_style() -> FigureStyle:
    return _CURRENT.get()


@contextlib.contextmanager
def figure_style(style: FigureStyle | None) -> Iterator[FigureStyle]:
    """Make figures in `style` inside the block (None: the current one)."""
    style = style or current_style()
    token = _CURRENT.set(style)
    try:
        with matplotlib.rc_context(PAPER_RC if style.style == "paper" else {}):
            yield style
    finally:
        _CURRENT.reset(token)


def new_figure(width: float, height: float) -> Figure:
    """A constrained-layout figure of the current style's size, else `width` x `height` inches."""
    size = current_style().size_inches or (width, height)
    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def set_suptitle(fig: Figure, text: str, **kwargs) -> None:
    """The figure's title, unless the current style has titles off."""
    if current_style().titles and text:
        fig.suptitle(text, **kwargs)


__all__ = ["FigureStyle", "PAPER_RC", "STYLES", "current_style", "figure_style", "make_style", "new_figure", "parse_size",
           "set_suptitle"]
