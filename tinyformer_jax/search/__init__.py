"""SuperNAS and SparseNAS: search under exact MCU constraints."""
