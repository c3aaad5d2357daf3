"""Reports: a study's report, a campaign's cross-dataset report, their figures and statistics.

* :mod:`~search.report.study` -- one study: best against baselines on test, figures, ``summary.json``;
* :mod:`~search.report.campaign` -- a campaign: one row per study, group means, wins;
* :mod:`~search.report.plots`, :mod:`~search.report.campaign_figures` -- the figures (matplotlib, Agg);
* :mod:`~search.report.stats` -- the paired bootstrap; :mod:`~search.report.rankcache` -- the rank cache.
"""
