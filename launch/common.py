"""What the launch scripts share: the flags --config (config_flags: file[:preset], --config.x.y=...),
--workdir, --data_dir, --distributed, --time_limit, --conv_form, and a main that calls the script's
one run function, with bad data, config or model reported as one line instead of a traceback, and a run
stopped by its time limit reported as one line with exit status 75 (rerun to resume)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from absl import app, flags, logging
from ml_collections import config_flags

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sparse_engine.errors import EngineError  # noqa: E402
from tinyformer_jax import time_limit  # noqa: E402
from tinyformer_jax.errors import TinyFormerError  # noqa: E402
from tinyformer_jax.models import layers  # noqa: E402

STOPPED = 75  # exit status of a run its time limit stopped (EX_TEMPFAIL: rerun to resume)


def launch(run: Callable, config_help: str, workdir_help: str, options: Callable[[], dict] = dict) -> None:
    """Define the flags, parse them and call `run(config, workdir, data_dir, **options())`; `options`
    reads the script's own flags."""
    config = config_flags.DEFINE_config_file("config", None, config_help)
    workdir = flags.DEFINE_string("workdir", None, workdir_help)
    data_dir = flags.DEFINE_string("data_dir", None,
                                   "CIFAR-10 folder (else $TINYFORMER_DATA, else ../shared/data/cifar10)")
    distributed = flags.DEFINE_bool("distributed", False, "call jax.distributed.initialize() first (one process "
                                    "per host, e.g. on a cloud TPU pod slice: see launch/README.md)")
    limit = flags.DEFINE_float("time_limit", 0.0, "seconds; past them the run stops at the next save point (a "
                               "training step, a search candidate) with exit status 75; rerun to resume (0: none)",
                               lower_bound=0.0)
    conv_form = flags.DEFINE_enum("conv_form", "unrolled", list(layers.CONV_FORMS),
                                  "how convolutions are computed (same math): unrolled (depthwise as shifted "
                                  "multiply-adds, 1x1 as einsum; fastest on CPU) or lax (lax.conv everywhere); "
                                  "python -m tinyformer_jax.bench train_step measures both")
    flags.mark_flags_as_required(["config", "workdir"])
    # listed by the script's --help
    for name in ("config", "workdir", "data_dir", "distributed", "time_limit", "conv_form"):
        flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])

    def main(argv: list[str]) -> None:
        del argv
        logging.set_verbosity(logging.WARNING)  # orbax and jax2onnx log every save / conversion at INFO
        if distributed.value:
            import jax

            jax.distributed.initialize()  # coordinator and process ids from the TPU / cluster environment
        time_limit.start(limit.value)
        layers.set_conv_form(conv_form.value)
        try:
            run(config.value, workdir.value, data_dir.value, **options())
        except time_limit.TimeLimitReached as exc:
            print(f"stopped: {exc}", file=sys.stderr)
            sys.exit(STOPPED)
        except (TinyFormerError, EngineError) as exc:
            sys.exit(f"error: {exc}")

    app.run(main)
