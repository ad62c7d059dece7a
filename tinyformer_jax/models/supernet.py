"""Weight-sharing supernet: the search space of SuperNAS / SparseNAS.

A *path* is an int32 array with one candidate index per choice module. The model takes it as
data: every candidate is the largest tensors under 0/1 masks (or a select between two ops), or
with `set_dispatch(model, "switch")` a lax.switch over the candidates (DISPATCH), so one compiled
function serves every path. Candidates are listed smallest first: the path of zeros is the
smallest network, `largest_path` the largest. Choice modules (config `modules`):

  ("downsample", cout)  0: 3x3 conv, stride 2; 1: inverted residual, stride 2, expansion
                        `downsample_expand`
  ("mbv2", cout)        `mbv2` candidates (expansion, depthwise kernel): the first cin*e hidden
                        channels and the centre k x k of the largest kernel
  ("transformer",)      `transformer` candidates (embedding dim, heads, layers[, patch; 1]),
                        heads of `head_dim`, MLP ratio `mlp_ratio`: the first E channels, first
                        H heads and first D layers of a MobileViT block; each patch size listed
                        runs the block over its own token grouping (same weights) and the path
                        selects one
  ("pool",)             0: 2x2 average, 1: 2x2 max

`standalone_config(cfg, path)` is the path as a plain `Hybrid` model config, and
`copy_shared(supernet, path, hybrid)` copies the path's slice of the shared weights into it:
the same network, built on its own (tests/jax/test_supernet.py checks the logits agree).
"""
from __future__ import annotations

import functools
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

from ..errors import TinyFormerError
from .hybrid import Hybrid, InvertedResidual, MobileViTBlock, Pool, TokenMasks
from .layers import ActQuant, Conv, Linear, QRange

KINDS = ("downsample", "mbv2", "transformer", "pool")
# How the choice modules run a path's candidate (the same numbers either way; a candidate's
# call changes only its own state, e.g. BatchNorm statistics, even where candidates share it):
#   mask    MobileNetV2 candidates are the largest block under 0/1 masks, other choices run
#           every candidate and select (`_select` where they share state): cheapest under vmap,
#           where a switch would broadcast its weights to the batch of paths, and under grad
#           (measured: a switch's backward costs more than the masked block's)
#   switch  lax.switch over the candidates (`_switch`), MobileNetV2 candidates on their slice of
#           the shared weights: a traced path computes only its own candidates (forward-only
#           evaluation of one path at a time: the loop and lax.map, train/candidates.py)
DISPATCH = ("mask", "switch")


def _changing(module: nnx.Module) -> list[type]:
    """The variable types a call of `module` writes in its current modes: BatchNorm statistics in
    train mode, activation ranges while calibrating."""
    mods = [m for _, m in nnx.iter_graph(module)]
    return ([nnx.BatchStat] * any(isinstance(m, nnx.BatchNorm) and not m.use_running_average for m in mods) +
            [QRange] * any(isinstance(m, ActQuant) and m.mode == "calibrate" for m in mods))


def _switch(module: nnx.Module, index: jax.Array, branches: list, *operands):
    """lax.switch over `branch(module, *operands)` that carries through, and writes back, only the
    state the call changes (`_changing`): an eval-mode call writes nothing."""
    changing = _changing(module)
    if not changing:
        return jax.lax.switch(index, [lambda *ops, b=b: b(module, *ops) for b in branches], *operands)
    graphdef, state, rest = nnx.split(module, nnx.Any(*changing), ...)

    def carrying_state(branch):
        def run(state, *ops):
            m = nnx.merge(graphdef, state, rest)
            return branch(m, *ops), nnx.split(m, nnx.Any(*changing), ...)[1]
        return run

    out, state = jax.lax.switch(index, [carrying_state(b) for b in branches], state, *operands)
    nnx.update(module, state)
    return out


def _select(module: nnx.Module, index: jax.Array, branches: list, *operands):
    """`_switch`'s result computed the vmap-friendly way: every branch runs from the same state,
    then the outputs and changed state of branch `index` are selected. (A vmapped switch would
    broadcast every weight it closes over to the batch of paths.)"""
    changing = _changing(module)
    pick = lambda first, *rest: functools.reduce(  # noqa: E731
        lambda acc, iv: jnp.where(index == iv[0], iv[1], acc), enumerate(rest, 1), first)
    if not changing:
        return jax.tree.map(pick, *[b(module, *operands) for b in branches])
    graphdef, state, rest = nnx.split(module, nnx.Any(*changing), ...)
    outs, states = [], []
    for b in branches:
        m = nnx.merge(graphdef, state, rest, copy=True)
        outs.append(b(m, *operands))
        states.append(nnx.split(m, nnx.Any(*changing), ...)[1])
    nnx.update(module, jax.tree.map(pick, *states))
    return jax.tree.map(pick, *outs)


def _prefix_mask(size: int, keep: jax.Array) -> jax.Array:
    return (jnp.arange(size) < keep).astype(jnp.float32)


class ChoiceDownsample(nnx.Module):
    def __init__(self, cin: int, cout: int, expand: int, *, rngs: nnx.Rngs):
        self.conv = Conv(cin, cout, 3, stride=2, rngs=rngs)
        self.ir = InvertedResidual(cin, cout, expand, 2, rngs=rngs)
        self.dispatch = "mask"

    def __call__(self, x: jax.Array, choice: jax.Array) -> jax.Array:
        if self.dispatch == "switch":
            return _switch(self, choice, [lambda m, x: m.conv(x), lambda m, x: m.ir(x)], x)
        return jnp.where(choice == 0, self.conv(x), self.ir(x))  # candidates share no state


class ChoiceMBV2(nnx.Module):
    def __init__(self, cin: int, cout: int, candidates: tuple, *, rngs: nnx.Rngs):
        self.expand, self.kernel = tuple(e for e, _ in candidates), tuple(k for _, k in candidates)
        self.cin, self.kmax = cin, max(self.kernel)
        self.block = InvertedResidual(cin, cout, max(self.expand), 1, self.kmax, rngs=rngs)
        self.dispatch = "mask"

    def __call__(self, x: jax.Array, choice: jax.Array) -> jax.Array:
        if self.dispatch == "switch":
            branches = [lambda m, x, e=e, k=k: m.block(x, hidden=m.cin * e, kernel=k)
                        for e, k in zip(self.expand, self.kernel)]
            return _switch(self, choice, branches, x)
        hidden = _prefix_mask(self.cin * max(self.expand), self.cin * jnp.asarray(self.expand)[choice])
        off = (self.kmax - jnp.asarray(self.kernel)[choice]) // 2
        r = jnp.arange(self.kmax)
        ring = ((r >= off) & (r < self.kmax - off)).astype(jnp.float32)
        return self.block(x, hidden, ring[:, None] * ring[None, :])


class ChoiceTransformer(nnx.Module):
    def __init__(self, channels: int, candidates: tuple, head_dim: int, mlp_ratio: int, *, rngs: nnx.Rngs):
        self.table = tuple((*(int(v) for v in c[:3]), int(c[3]) if len(c) > 3 else 1) for c in candidates)
        self.emax, self.hmax, depth = (max(c[i] for c in self.table) for i in range(3))  # (dim, heads, layers, patch)
        self.patches = tuple(sorted({c[3] for c in self.table}))
        self.patch_index = tuple(self.patches.index(c[3]) for c in self.table)
        self.head_dim, self.mlp_ratio = head_dim, mlp_ratio
        self.block = MobileViTBlock(channels, self.emax, self.hmax, depth, mlp_ratio, head_dim, rngs=rngs)
        self.dispatch = "mask"

    def __call__(self, x: jax.Array, choice: jax.Array) -> jax.Array:
        dim, heads, depth = (jnp.asarray(self.table)[choice, i] for i in range(3))
        masks = TokenMasks(dim=_prefix_mask(self.emax, dim),
                           heads=_prefix_mask(self.hmax * self.head_dim, heads * self.head_dim),
                           hidden=_prefix_mask(self.emax * self.mlp_ratio, dim * self.mlp_ratio), depth=depth)
        if len(self.patches) == 1:
            return self.block(x, masks, self.patches[0])
        branches = [lambda m, x, masks, p=p: m.block(x, masks, p) for p in self.patches]
        # the patch sizes share the block's state: `_select`, not a plain select, in the mask form
        return (_switch if self.dispatch == "switch" else _select)(
            self, jnp.asarray(self.patch_index)[choice], branches, x, masks)


class ChoicePool(nnx.Module):
    def __init__(self):
        self.avg, self.max = Pool("avg"), Pool("max")
        self.dispatch = "mask"

    def __call__(self, x: jax.Array, choice: jax.Array) -> jax.Array:
        if self.dispatch == "switch":
            return _switch(self, choice, [lambda m, x: m.avg(x), lambda m, x: m.max(x)], x)
        return jnp.where(choice == 0, self.avg(x), self.max(x))


def _choices(model: nnx.Module) -> list[nnx.Module]:
    return [m for _, m in nnx.iter_graph(model)
            if isinstance(m, (ChoiceDownsample, ChoiceMBV2, ChoiceTransformer, ChoicePool))]


def set_dispatch(model: nnx.Module, form: str) -> None:
    """How every choice module runs a path's candidate (DISPATCH), for programs traced from now on."""
    if form not in DISPATCH:
        raise TinyFormerError(f"supernet dispatch {form!r}: choose one of {', '.join(DISPATCH)}")
    for m in _choices(model):
        m.dispatch = form


@contextmanager
def dispatching(model: nnx.Module, form: str):
    """`set_dispatch(model, form)` inside the block, each module's former form after it."""
    before = [(m, m.dispatch) for m in _choices(model)]
    set_dispatch(model, form)
    try:
        yield model
    finally:
        for m, form_before in before:
            m.dispatch = form_before


def _check(cfg: ml_collections.ConfigDict) -> None:
    for kind, *_ in cfg.modules:
        if kind not in KINDS:
            raise TinyFormerError(f"config model.modules: unknown choice module {kind!r} ({', '.join(KINDS)})")
    if any(e < 2 for e, _ in cfg.mbv2) or any(k % 2 == 0 for _, k in cfg.mbv2):
        raise TinyFormerError(f"config model.mbv2 {cfg.mbv2}: expansions must be >= 2 and kernels odd")
    if cfg.downsample_expand < 2:
        raise TinyFormerError(f"config model.downsample_expand {cfg.downsample_expand}: must be >= 2")


def num_candidates(cfg: ml_collections.ConfigDict) -> np.ndarray:
    """Candidates per choice module, in order."""
    n = dict(downsample=2, mbv2=len(cfg.mbv2), transformer=len(cfg.transformer), pool=2)
    return np.array([n[kind] for kind, *_ in cfg.modules], np.int32)


def largest_path(cfg: ml_collections.ConfigDict) -> np.ndarray:
    return num_candidates(cfg) - 1


class Supernet(nnx.Module):
    """Stem, choice modules, 1x1 head conv, global average pool, classifier (as `Hybrid`)."""

    def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
        _check(cfg)
        self.largest = tuple(largest_path(cfg).tolist())
        self.input = ActQuant()
        self.stem = Conv(3, cfg.stem, 3, rngs=rngs)
        c, mods = cfg.stem, []
        for kind, *args in cfg.modules:
            if kind == "downsample":
                mods.append(ChoiceDownsample(c, args[0], cfg.downsample_expand, rngs=rngs))
                c = args[0]
            elif kind == "mbv2":
                mods.append(ChoiceMBV2(c, args[0], tuple(cfg.mbv2), rngs=rngs))
                c = args[0]
            elif kind == "transformer":
                mods.append(ChoiceTransformer(c, tuple(cfg.transformer), cfg.head_dim, cfg.mlp_ratio, rngs=rngs))
            else:
                mods.append(ChoicePool())
        self.blocks = nnx.List(mods)
        self.head = Conv(c, cfg.head, 1, rngs=rngs)
        self.pool = ActQuant()
        self.classifier = Linear(cfg.head, cfg.classes, rngs=rngs)

    def __call__(self, x: jax.Array, path: jax.Array | None = None) -> jax.Array:
        """Logits of one path (default: the largest) for NCHW float images."""
        path = jnp.asarray(self.largest if path is None else path)
        x = self.stem(self.input(x))
        for i, block in enumerate(self.blocks):
            x = block(x, path[i])
        return self.classifier(self.pool(jnp.mean(self.head(x), axis=(2, 3))))


def standalone_config(cfg: ml_collections.ConfigDict, path) -> ml_collections.ConfigDict:
    """The path as a `Hybrid` config (model.blocks), to build, train, quantize and export alone."""
    path = np.asarray(path)
    if path.shape != (len(cfg.modules),) or np.any(path < 0) or np.any(path >= num_candidates(cfg)):
        raise TinyFormerError(f"path {path.tolist()}: need one index per module below {num_candidates(cfg).tolist()}")
    blocks = []
    for (kind, *args), j in zip(cfg.modules, path.tolist()):
        if kind == "downsample":
            blocks.append(("conv", args[0], 3, 2) if j == 0 else ("ir", cfg.downsample_expand, args[0], 2))
        elif kind == "mbv2":
            e, k = cfg.mbv2[j]
            blocks.append(("ir", e, args[0], 1, k))
        elif kind == "transformer":
            dim, heads, depth, *patch = cfg.transformer[j]
            blocks.append(("vit", dim, heads, depth, cfg.mlp_ratio, cfg.head_dim, *patch))
        else:
            blocks.append(("pool", ("avg", "max")[j]))
    return ml_collections.ConfigDict(dict(stem=cfg.stem, blocks=tuple(blocks), head=cfg.head, classes=cfg.classes))


def crop_index(big: tuple, shape: tuple, key: tuple) -> tuple[slice, ...]:
    """Where a standalone variable of `shape` sits in the shared one of shape `big`: leading
    slices, conv kernels (`w`, 4-D) centred on their rows and columns."""
    centre = (2, 3) if key[-1] == "w" and len(big) == 4 else ()
    return tuple(slice((b - s) // 2 if ax in centre else 0, ((b - s) // 2 if ax in centre else 0) + s)
                 for ax, (b, s) in enumerate(zip(big, shape)))


def _copy_sliced(src: nnx.Module, dst: nnx.Module) -> None:
    """Every variable of `dst` (parameters, BatchNorm statistics, activation ranges) from the
    same-named one of the larger `src`: leading slices, kernels centre-cropped."""
    big = dict(nnx.to_flat_state(nnx.state(src)))
    flat = []
    for key, var in nnx.to_flat_state(nnx.state(dst)):
        if key not in big:
            raise TinyFormerError(f"supernet has no variable {'.'.join(map(str, key))} for the standalone model")
        arr = big[key][...]
        flat.append((key, var.replace(arr[crop_index(arr.shape, var[...].shape, key)])))
    nnx.update(dst, nnx.from_flat_state(flat))


def _source(block: nnx.Module, j: int) -> tuple[str, ...]:
    """The attribute of a choice module that candidate `j` uses (the standalone block's weights)."""
    if isinstance(block, ChoiceDownsample):
        return ("conv",) if j == 0 else ("ir",)
    if isinstance(block, ChoicePool):
        return ("avg",) if j == 0 else ("max",)
    return ("block",)


def shared_key(supernet: Supernet, path, key: tuple) -> tuple:
    """The supernet variable behind the standalone model's variable `key` (as copy_shared maps it)."""
    if key[0] != "blocks":
        return key
    i = int(key[1])
    return ("blocks", i, *_source(supernet.blocks[i], int(np.asarray(path)[i])), *key[2:])


def copy_shared(supernet: Supernet, path, hybrid: Hybrid) -> None:
    """Copy the path's share of the supernet's weights into `hybrid` (built from standalone_config)."""
    for name in ("input", "stem", "head", "pool", "classifier"):
        _copy_sliced(getattr(supernet, name), getattr(hybrid, name))
    for block, j, dst in zip(supernet.blocks, np.asarray(path).tolist(), hybrid.blocks):
        _copy_sliced(getattr(block, _source(block, j)[0]), dst)
