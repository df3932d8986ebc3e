"""Figure helpers shared by the experiments' plot functions (matplotlib, files only)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402  pylint: disable=wrong-import-position

plt.rcParams.update({"figure.dpi": 110, "font.size": 9})


def errorbar(ax, xs, stats, **kw):
  """Plots means with sample-std error bars, skipping points without a mean."""
  pts = [(x, s["mean"], s["std"] or 0.0) for x, s in zip(xs, stats) if s["mean"] is not None]
  if pts:
    x, m, e = zip(*pts)
    ax.errorbar(x, m, yerr=e, marker="o", capsize=3, **kw)
