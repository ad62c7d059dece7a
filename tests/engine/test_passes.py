"""Graph passes: copies that together move no element are merged into one in-place copy, and the
graph computes the same bits as without the pass."""
from __future__ import annotations

import numpy as np

from sparse_engine import frontend, layout, passes, planner, verify, zoo


def _physical(path):
    return layout.to_physical(frontend.import_model(frontend.load(path)))


def test_identity_copy_chains_merge_and_keep_the_bits(tmp_path):
    model = zoo.quantize_qdq(zoo.hybrid(), tmp_path / "hybrid_qdq.onnx")
    before = passes.absorb_copies(_physical(model))
    after = passes.absorb_copies(passes.merge_identity_copies(_physical(model)))
    copies = [op for op in before.ops if op.kind == "copy"]
    left = [op for op in after.ops if op.kind == "copy"]
    assert any("merged into one in-place copy" in n for n in after.notes)
    assert len(copies) - len(left) == 3

    def permuting(ops):
        return sum(op.params["perm"] != tuple(range(len(op.params["perm"]))) for op in ops)

    # unfold: Reshape + Transpose, fold: Transpose + Reshape (no permutation in NHWC) + layout copy
    assert permuting(copies) - permuting(left) == 4
    inputs = verify.load_inputs(after, None, 3, 0)
    np.testing.assert_array_equal(verify.simulate(after, inputs)[0], verify.simulate(before, inputs)[0])
    assert planner.plan(after).peak <= planner.plan(before).peak
