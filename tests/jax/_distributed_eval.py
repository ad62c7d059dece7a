"""Helper run as one of N processes by tests/test_candidates.py: jax.distributed on localhost,
one CPU device per process, sharded candidate evaluation; process 0 saves the logits.

    python tests/jax/_distributed_eval.py PORT PROCESS_ID NUM_PROCESSES OUT.npy
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]

import jax  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    port, pid, n, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=n, process_id=pid)
    from _candidates_case import case

    from tinyformer_jax.train import candidates

    model, paths, calib, images = case()
    assert jax.device_count() == n and jax.local_device_count() == 1, jax.devices()
    logits = candidates.logits(model, paths, calib, images, "shard")
    if pid == 0:
        np.save(out, logits)
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
