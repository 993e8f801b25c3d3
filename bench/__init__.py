"""Benchmarks of flask_statemgr against its peers; run ``python -m bench``."""
