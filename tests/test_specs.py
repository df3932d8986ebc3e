"""Spec registry, hashing and --set overrides."""

import dataclasses
import subprocess
import sys

import pytest

from memobench import catalogue, specs, workload
from memobench.data import datasets


def test_names_unique_and_well_formed():
  names = catalogue.names()
  assert len(names) == len(set(names))
  for name in names:
    assert catalogue.get(name).name == name


def test_catalogue_has_every_offline_dataset_with_every_corruption():
  for dataset in datasets.OFFLINE:
    for corruption in ["clean", "partial20", "partial40", "partial60", "partial80", "randlabels",
                       "shufpix", "randpix", "gaussian", "noise50"]:
      spec = catalogue.get(f"{dataset}_{corruption}")
      assert spec.dataset.name == dataset
    assert catalogue.get(f"{dataset}_randlabels_mlp3x512").model.name == "mlp3x512"
  assert catalogue.get("mnist5k_partial40").corruption == specs.CorruptionSpec("partial", 0.4)


def test_every_registered_spec_validates():
  for spec in catalogue.all_specs():
    workload.validate(spec)


def test_hash_ignores_labels_and_seed_but_not_content():
  spec = catalogue.get("mnist5k_randlabels")
  h = specs.spec_hash(spec)
  assert len(h) == specs.HASH_LENGTH
  assert specs.spec_hash(dataclasses.replace(spec, name="x_y", description="z", seed=7)) == h
  assert specs.spec_hash(specs.with_overrides(spec, ["optimizer.lr=0.05"])[0]) != h
  assert specs.spec_hash(catalogue.get("mnist5k_clean")) != h


def test_hash_is_stable_across_processes():
  code = ("from memobench import catalogue, specs; "
          "print(specs.spec_hash(catalogue.get('mnist5k_randlabels')))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=True, env={"PYTHONHASHSEED": "123", "PATH": ""})
  assert out.stdout.strip() == specs.spec_hash(catalogue.get("mnist5k_randlabels"))


def test_hash_of_a_pinned_spec_never_changes():
  # Changing this value means every published result is no longer comparable:
  # only do it together with a schema_version bump.
  spec = specs.Spec(name="a_b", description="", dataset=specs.DatasetSpec("mnist5k"),
                    corruption=specs.CorruptionSpec("partial", 0.2))
  assert specs.spec_hash(spec) == PINNED_HASH


# The value every memobench version since the first has computed for that spec.
PINNED_HASH = "b7c4d5aed958e7c6"


def test_a_knob_added_later_enters_the_hash_only_when_set():
  """dataset.input_noise came after the first results: at its default the hash is unchanged."""
  spec = specs.Spec(name="a_b", description="", dataset=specs.DatasetSpec("mnist5k"),
                    corruption=specs.CorruptionSpec("partial", 0.2))
  assert spec.dataset.input_noise == 0.0 and specs.spec_hash(spec) == PINNED_HASH
  noisy, applied = specs.with_overrides(spec, ["dataset.input_noise=0.25"])
  assert applied == {"dataset.input_noise": 0.25} and specs.spec_hash(noisy) != PINNED_HASH
  # A result written before the field existed reads back as the default spec.
  old = specs.to_dict(spec)
  del old["dataset"]["input_noise"]
  assert specs.from_dict(old) == spec


def test_overrides_parse_types_and_record_what_was_applied():
  spec = catalogue.get("mnist5k_randlabels")
  new, applied = specs.with_overrides(spec, ["optimizer.lr=0.05", "budget.max_steps=10",
                                             "dataset.random_crop=true", "budget.max_steps=none"])
  assert new.optimizer.lr == 0.05 and new.dataset.random_crop is True
  assert new.budget.max_steps is None
  assert applied == {"optimizer.lr": 0.05, "budget.max_steps": None,
                     "dataset.random_crop": True}
  assert spec.optimizer.lr != 0.05  # frozen original untouched


@pytest.mark.parametrize("assignment,needle", [
    ("optimizer.lrr=0.1", "did you mean optimizer.lr"),
    ("optimizer.lr=fast", "expected a value of type float"),
    ("optimizer=3", "unknown spec field"),
    ("corruption.level=1.5", "corruption.level must be in [0, 1]"),
    ("budget.batch_size=0", "batch_size must be positive"),
    ("model.name=resnet9000", "unknown model"),
    ("dataset.input_noise=-0.1", "dataset.input_noise must be a finite std >= 0"),
    ("dataset.input_noise=inf", "dataset.input_noise must be a finite std >= 0"),
    ("nonsense", "expected key=value"),
])
def test_bad_overrides_raise_one_line(assignment, needle):
  with pytest.raises(specs.SpecError) as e:
    workload.validate(specs.with_overrides(catalogue.get("mnist5k_partial20"), [assignment])[0])
  assert needle in str(e.value) and "\n" not in str(e.value)


def test_unknown_spec_names_close_matches():
  with pytest.raises(specs.SpecError, match="did you mean mnist5k_randlabels"):
    catalogue.get("mnist5k_randlabel")
  with pytest.raises(specs.SpecError, match=r"model.name: unknown model 'mlp1x52' "
                     r"\(did you mean mlp1x512"):
    workload.validate(dataclasses.replace(catalogue.get("digits_clean"),
                                          model=specs.ModelSpec("mlp1x52")))


def test_round_trip_through_dict():
  spec = catalogue.make_spec("digits", "partial60")
  assert specs.from_dict(specs.to_dict(spec)) == spec
