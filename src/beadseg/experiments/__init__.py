"""Experiments built on training runs: cross-validation (:mod:`.cv`), hyperparameter sweeps
(:mod:`.sweep`), the table of runs (:mod:`.compare`) and cluster job scripts (:mod:`.hpc`).

Import the module you need (``from beadseg.experiments.cv import cross_validate``); nothing is
imported here, so ``beadseg hpc`` and ``beadseg compare`` start without PyTorch.
"""
