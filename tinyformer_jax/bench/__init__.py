"""Measurements of the training side: `python -m tinyformer_jax.bench COMMAND` (see __main__)."""
