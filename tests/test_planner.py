"""The static arena never lets two live tensors share bytes (property test over random graphs)."""
from __future__ import annotations

import numpy as np

from sparse_engine import planner


def test_random_lifetimes_never_overlap():
    rng = np.random.default_rng(0)
    for trial in range(300):
        n = int(rng.integers(1, 40))
        life, sizes = {}, {}
        for i in range(n):
            start = int(rng.integers(0, 30))
            life[f"t{i}"] = (start, start + int(rng.integers(0, 8)))
            sizes[f"t{i}"] = int(rng.integers(1, 5000))
        offsets, peak = planner.place(sizes, life)
        p = planner.Plan(offsets, life, sizes, peak)
        assert p.overlaps() == [], trial
        assert all(o % planner.ALIGN == 0 for o in offsets.values())
        assert peak >= max(offsets[k] + sizes[k] for k in sizes)
        # never worse than all tensors side by side, never better than the largest live set
        assert peak <= sum(-(-s // 8) * 8 for s in sizes.values())
        for step in range(40):
            live = sum(sizes[k] for k, (a, b) in life.items() if a <= step <= b)
            assert peak >= live


def test_plan_of_a_real_graph(models_dir):
    from conftest import quantized

    from sparse_engine.compiler import build_graph
    g = build_graph(quantized(dict(op="concat", shape=(1, 3, 4, 4), axis=1), models_dir, "plan_concat"))
    p = planner.plan(g)
    assert p.overlaps() == []
    assert g.input not in p.offsets and g.output not in p.offsets
