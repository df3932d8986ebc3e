"""Per-example memorization estimators: above the training loop, which they drive.

A metric (memobench/metrics/) measures one run from inside the loop; an
estimator trains its own models through the loop (training.loop.train_group)
and scores every training example from them. The package sits above
training/ and metrics/ and below the command lines and experiments that use it:

  subsample            Feldman & Zhang 2020's subsample estimator (K models on subsets)
  leave_one_out        exact leave-one-out memorization: the ground truth estimators
                       are scored on, and the scoring (correlations, reliability)
  data_pruning_scores  one-run proxies: EL2N, GraNd (Paul et al. 2021), TracIn
                       self-influence (Pruthi et al. 2020)
"""
