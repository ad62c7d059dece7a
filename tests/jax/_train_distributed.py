"""Helper run as one of N processes by tests/test_train.py: jax.distributed on localhost, one CPU
device per process, `fit` data-parallel over all processes' devices; process 0 saves the final
parameters as tests/jax/_train_tiny.py does; $TIME_LIMIT as there (exit status 75 when it stops).

    python tests/jax/_train_distributed.py PORT PROCESS_ID NUM_PROCESSES WORKDIR STEPS
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "jax")]

import jax  # noqa: E402
import numpy as np  # noqa: E402


def main() -> None:
    port, pid, n, workdir, steps = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4]), \
        int(sys.argv[5])
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"localhost:{port}", num_processes=n, process_id=pid)
    from flax import nnx

    from _train_tiny import MODEL, synthetic, train_cfg
    from tinyformer_jax import time_limit
    from tinyformer_jax.models.hybrid import Hybrid
    from tinyformer_jax.train.loop import fit

    assert jax.device_count() == n and jax.local_device_count() == 1, jax.devices()
    model = Hybrid(MODEL, rngs=nnx.Rngs(0))
    time_limit.start(float(os.environ.get("TIME_LIMIT", 0)))
    try:
        res = fit(model, synthetic(96, 1), synthetic(32, 2), train_cfg(steps), workdir, "float", seed=3,
                  progress=False)
    except time_limit.TimeLimitReached as exc:
        print(f"stopped: {exc}")
        jax.distributed.shutdown()
        sys.exit(75)
    if pid == 0:
        leaves = jax.tree.leaves(nnx.state(model))
        np.savez(workdir / "final.npz", *[np.asarray(jax.device_get(x)) for x in leaves])
        print(f"done steps={res.steps} resumed_from={res.resumed_from} devices={jax.device_count()} "
              f"test_accuracy={res.test_accuracy}")
    jax.distributed.shutdown()


if __name__ == "__main__":
    main()
