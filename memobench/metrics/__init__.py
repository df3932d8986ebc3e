"""The metrics of one run that spec.analysis chooses: the explicit table.

TABLE lists every metric (base.Metric) in result.json order; runner.py runs the
enabled ones and knows none by name. Adding a metric is one module here plus
one line in TABLE (docs/METRICS.md, "How to add a metric"). The table imports
its members; members never import the table. docs/METRICS.md defines every entry:

  learning_dynamics      dynamics.py (Toneva et al. 2019; Jiang et al. 2021)
                         -> workdir/dynamics.npz
  turnover               turnover.py (Kobayashi et al. 2020) -> workdir/turnover.npz
  effective_rank         effective_rank.py (Roy & Vetterli 2007; Huh et al. 2023)
  critical_sample_ratio  critical_sample_ratio.py (Arpit et al. 2017)
  sharpness              sharpness.py (top Hessian eigenvalues by Lanczos)
  eps_sharpness          eps_sharpness.py (Keskar et al. 2017's Metric 2.1, L-BFGS-B)
  loss_sensitivity       loss_sensitivity.py (Arpit et al. 2017, Sec. 3.2; Gini coefficient)
                         -> workdir/loss_sensitivity.npz
  input_stability        input_stability.py (Badger 2022: input-gradient and input-Jacobian
                         norms over training)

scores.py (the standard scores) and stats.py (split means, ROC AUC) are shared
by these and by the estimators above the loop (memobench/estimators/).
"""

from __future__ import annotations

from memobench import specs
from memobench.metrics import base, critical_sample_ratio, dynamics, effective_rank
from memobench.metrics import eps_sharpness, input_stability, loss_sensitivity, sharpness
from memobench.metrics import turnover

TABLE: tuple[base.Metric, ...] = (
    dynamics.METRIC,
    turnover.METRIC,
    effective_rank.METRIC,
    critical_sample_ratio.METRIC,
    sharpness.METRIC,
    eps_sharpness.METRIC,
    loss_sensitivity.METRIC,
    input_stability.METRIC,
)


def enabled(spec: specs.Spec, table: tuple[base.Metric, ...] = TABLE) -> list[base.Metric]:
  """The metrics `spec` asks for, in table order."""
  return [metric for metric in table if metric.enabled(spec)]


def check(spec: specs.Spec, table: tuple[base.Metric, ...] = TABLE) -> None:
  """Every metric's checks of its spec fields; raises specs.SpecError (one line)."""
  for metric in table:
    metric.check(spec)
