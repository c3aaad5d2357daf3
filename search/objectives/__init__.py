"""Objective functions: the model core wrapped, one trial's settings in, validation MRR out.

* :mod:`~search.objectives.context` -- :class:`SearchContext`: everything the fusion weights do not change,
  computed once per process;
* :mod:`~search.objectives.fusion` -- :class:`FusionObjective`: fixed and learnable fusion trials.
"""
