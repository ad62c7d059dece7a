"""`python -m sparse_engine.bench models`: a missing MLPerf folder is one line naming the flag; one
model's row carries the ELF's sizes, exact instructions, estimated cycles against the published
target, and its ladder verdict; the EEGFormer model runs its attention fused."""
from __future__ import annotations

from pathlib import Path

import pytest

from sparse_engine.bench import models
from sparse_engine.errors import EngineError

MLPERF = Path(__file__).resolve().parents[3] / "shared" / "data" / "mlperf_tiny"


def test_missing_mlperf_dir_names_the_flag(tmp_path):
    with pytest.raises(EngineError, match=r"no ic_resnet8_int8.tflite .*--mlperf-dir"):
        models.sources(tmp_path, tmp_path / "nowhere")


@pytest.mark.skipif(not MLPERF.exists(), reason="../shared/data/mlperf_tiny is not beside the clone")
def test_ad_row_against_its_target(tmp_path):
    res = models.run(tmp_path, ["ad_autoencoder"], progress=lambda m: None, mlperf_dir=MLPERF)
    (row,) = res["cases"]
    assert row["bit_exact"] and set(row["ladder"].values()) == {0}
    assert 0 < row["flash_bytes"] < 1 << 20 and row["sram_bytes"] > 0
    assert row["cycles_estimate"] and row["target_cycles_at_most"] == models.PUBLISHED_CYCLES[models.TARGET]["ad_autoencoder"]
    assert row["meets_target"] == (row["cycles_estimate"] <= row["target_cycles_at_most"])
    assert abs(row["latency_ms_estimate"] - row["cycles_estimate"] / 216e3) < 0.01
    assert set(row["cycles_per_mac"]) == {"se_fc_s8_dsp"}
    assert "ad_autoencoder" in models.table(res)


def test_eegformer_attention_is_fused(tmp_path):
    from sparse_engine import verify, zoo
    from sparse_engine.compiler import build_graph, fuse_attention

    g = build_graph(zoo.quantize_qdq(zoo.eegformer(layers=1), tmp_path / "eeg.onnx"))
    g = fuse_attention(g, "auto", verify.load_inputs(g, None, 2, 0))
    assert [op.params["heads"] for op in g.ops if op.kind == "attention"] == [8]
