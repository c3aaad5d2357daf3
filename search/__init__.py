"""are-search: per-dataset Optuna search of ARE fusion settings."""
