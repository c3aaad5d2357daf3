"""A study of one (dataset, mode): what it searches, what it has spent, and what it records besides its trials.

* :mod:`~search.study.names` -- study names ``<dataset>/<mode>``;
* :mod:`~search.study.spec` -- the study spec (a reviewable file) and its fine-tuning budget;
* :mod:`~search.study.spaces` -- the search spaces of the fusion modes and their known points;
* :mod:`~search.study.settings` -- the schema of a trial's record;
* :mod:`~search.study.bounds` -- soft bounds that grow; :mod:`~search.study.stopping` -- early stops;
* :mod:`~search.study.budget` -- the trial budget; :mod:`~search.study.owners` -- who runs a trial;
  :mod:`~search.study.stale` -- RUNNING trials nothing vouches for;
* :mod:`~search.study.warmstart`, :mod:`~search.study.similarity` -- warm starts from similar graphs;
* :mod:`~search.study.prepare` -- a study made ready for a run, and undone on bad input.
"""
