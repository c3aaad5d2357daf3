"""YAML in and out: the one YAML reader, the best trial as flag values, and the byte-preserving editor.

* :mod:`~search.flags.yamlio` -- every YAML file are-search reads (study specs, campaign specs, flags.yaml);
* :mod:`~search.flags.export` -- a study's best settings written into ``flags.yaml``;
* :mod:`~search.flags.yaml_edit` -- set a few top-level keys of a user's file, keep every other byte.
"""
