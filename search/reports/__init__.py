"""Reports: a study's report, a campaign's cross-dataset report, their figures and statistics.

* :mod:`~search.reports.study` -- one study: best against baselines on test, figures, ``summary.json``;
* :mod:`~search.reports.campaign` -- a campaign: one row per study, group means, wins;
* :mod:`~search.reports.plots`, :mod:`~search.reports.campaign_figures` -- the figures (matplotlib, Agg);
* :mod:`~search.reports.stats` -- the paired bootstrap; :mod:`~search.reports.rankcache` -- the rank cache.
"""
