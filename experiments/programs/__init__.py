"""Named programs for loops the library's training loop lacks; each is a function of a Workload.

An experiment's computed cell calls one of these (never a loop hidden in the
script): `parity_online.train(workload, ...)`: online SGD on fresh sparse-parity
batches with the hinge loss (Barak et al. 2022); `trained_models.train`: a
training cell whose parameters later cells measure (a spec's seeds through the
library loop, kept as msgpack; Keskar, Dinh, Granziol); `lr_stability.run_grid`:
short runs of a learning-rate grid x seeds, vmapped as members (Granziol);
`validated_runs.train`: the loop's runs, also evaluated on a validation split held out
from training, for an early-stopping epoch chosen without the test split (Arpit et al. 2017).
"""
