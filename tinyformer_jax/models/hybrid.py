"""The fixed CNN + transformer hybrid of the first end-to-end run (NCHW, CIFAR-10 sized).

stem conv 3x3 -> MobileNetV2 inverted residuals -> one MobileViT-style block (local conv 3x3,
1x1 to the embedding, unfold into tokens, transformer layers with multi-head self-attention,
LayerNorm and GELU, fold, 1x1 back, concat with the block input, fuse conv 3x3) -> inverted
residuals -> 1x1 head conv -> global average pool -> classifier.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
from flax import nnx

from ..errors import TinyFormerError
from .layers import ActQuant, Conv, LayerNorm, Linear, Residual


class InvertedResidual(nnx.Module):
    def __init__(self, cin: int, cout: int, expand: int, stride: int, kernel: int = 3, *, rngs: nnx.Rngs):
        hidden = cin * expand
        self.expand = nnx.data(Conv(cin, hidden, 1, rngs=rngs) if expand != 1 else None)
        self.dw = Conv(hidden, hidden, kernel, stride=stride, depthwise=True, rngs=rngs)
        self.project = Conv(hidden, cout, 1, relu6=False, rngs=rngs)
        self.residual = nnx.data(Residual() if stride == 1 and cin == cout else None)

    def __call__(self, x: jax.Array, hidden_mask: jax.Array | None = None,
                 kernel_mask: jax.Array | None = None, hidden: int | None = None,
                 kernel: int | None = None) -> jax.Array:
        """A smaller block inside this one (supernet), masked: `hidden_mask` [hidden] keeps the
        first hidden channels of a smaller expansion, `kernel_mask` [k, k] the centre of a smaller
        depthwise kernel; or sliced: the first `hidden` channels and the centre `kernel`."""
        keep = (lambda h: h) if hidden_mask is None else (lambda h: h * hidden_mask[None, :, None, None])  # noqa: E731
        h = keep(self.expand(x, out=hidden)) if self.expand is not None else x
        h = self.project(keep(self.dw(h, None if kernel_mask is None else kernel_mask[None, None], k=kernel)))
        return self.residual(x, h) if self.residual is not None else h


def _perm(lead: int, order: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(range(lead)) + tuple(lead + i for i in order)


class Attention(nnx.Module):
    """Multi-head self-attention on tokens [*lead, S, E], heads of `head_dim` (default E / heads;
    head_dim = E is the form where fused-weight self-attention pays); the 1/sqrt(d) scale rides on W_Q."""

    def __init__(self, dim: int, heads: int, head_dim: int | None = None, *, rngs: nnx.Rngs):
        if head_dim is None and dim % heads:
            raise TinyFormerError(f"config model.blocks: vit embedding dim {dim} is not a multiple of heads {heads}")
        self.heads, self.head_dim = heads, head_dim or dim // heads
        inner = heads * self.head_dim
        self.q = Linear(dim, inner, post_scale=self.head_dim ** -0.5, rngs=rngs)
        self.k = Linear(dim, inner, rngs=rngs)
        self.v = Linear(dim, inner, rngs=rngs)
        self.scores, self.probs, self.context = ActQuant(), ActQuant(), ActQuant()
        self.o = Linear(inner, dim, rngs=rngs)

    def __call__(self, t: jax.Array, head_mask: jax.Array | None = None, groups: int = 1) -> jax.Array:
        """`head_mask` [heads * head_dim] (supernet): zero the context of the heads a path drops.
        `groups` (export, patch > 1): the S rows of t hold that many sequences one after the other,
        each attending within itself; projections stay 2-D (Gemm), the heads' MatMuls get the
        sequence as a batch axis (SparseEngine fuses it into one attention op of `groups` sequences)."""
        *lead, s, e = t.shape
        lead = (*lead, groups) if groups > 1 else tuple(lead)
        s //= groups
        n = len(lead)
        split = lambda z: z.reshape(*lead, s, self.heads, self.head_dim)  # noqa: E731
        q = split(self.q(t)).transpose(_perm(n, (1, 0, 2)))        # [*, H, S, D]
        k = split(self.k(t)).transpose(_perm(n, (1, 2, 0)))        # [*, H, D, S]
        v = split(self.v(t)).transpose(_perm(n, (1, 0, 2)))        # [*, H, S, D]
        a = self.probs(jax.nn.softmax(self.scores(jnp.matmul(q, k)), axis=-1))
        c = self.context(jnp.matmul(a, v)).transpose(_perm(n, (1, 0, 2)))
        c = c.reshape(*t.shape[:-1], self.heads * self.head_dim)
        return self.o(c if head_mask is None else c * head_mask)


class TokenMasks(NamedTuple):
    """A smaller transformer inside the largest (supernet): 0/1 masks over the embedding
    channels, the heads' context channels and the MLP's hidden channels, and the layer count."""
    dim: jax.Array
    heads: jax.Array
    hidden: jax.Array
    depth: jax.Array


class TransformerLayer(nnx.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int, head_dim: int | None = None, *, rngs: nnx.Rngs):
        self.ln1, self.res1 = LayerNorm(dim, rngs=rngs), Residual()
        self.attn = Attention(dim, heads, head_dim, rngs=rngs)
        self.ln2, self.res2 = LayerNorm(dim, rngs=rngs), Residual()
        self.fc1 = Linear(dim, dim * mlp_ratio, rngs=rngs)
        self.gelu = ActQuant()
        self.fc2 = Linear(dim * mlp_ratio, dim, rngs=rngs)

    def __call__(self, t: jax.Array, masks: "TokenMasks | None" = None, groups: int = 1) -> jax.Array:
        if masks is None:
            t = self.res1(t, self.attn(self.ln1(t), groups=groups))
            h = self.fc2(self.gelu(jax.nn.gelu(self.fc1(self.ln2(t)), approximate=False)))
            return self.res2(t, h)
        dim = masks.dim
        t = self.res1(t, self.attn(self.ln1(t, dim), masks.heads) * dim)
        h = self.gelu(jax.nn.gelu(self.fc1(self.ln2(t, dim)), approximate=False)) * masks.hidden
        return self.res2(t, self.fc2(h) * dim)


class MobileViTBlock(nnx.Module):
    """Local 3x3 conv, 1x1 to `dim`, unfold into tokens, transformer layers, fold, 1x1 back to the
    input channels, concat with the input, fuse 3x3. Patch p: the pixels at one position inside
    every p x p patch form one sequence (p^2 sequences of HW/p^2 tokens); p = 1: every pixel is a
    token of one sequence."""

    def __init__(self, channels: int, dim: int, heads: int, depth: int, mlp_ratio: int, head_dim: int | None = None,
                 patch: int = 1, *, rngs: nnx.Rngs):
        self.local = Conv(channels, channels, 3, rngs=rngs)
        self.embed = Conv(channels, dim, 1, relu6=False, rngs=rngs)
        self.layers = nnx.List([TransformerLayer(dim, heads, mlp_ratio, head_dim, rngs=rngs) for _ in range(depth)])
        self.unembed = Conv(dim, channels, 1, rngs=rngs)
        self.cat = ActQuant()
        self.fuse = Conv(2 * channels, channels, 3, rngs=rngs)
        self.patch = patch
        self.mode = "float"

    def _unfold(self, y: jax.Array, p: int) -> jax.Array:
        """[B, E, H, W] -> [B p^2, H W / p^2, E]; export (B = 1): [H W, E], the p^2 sequences'
        rows one after the other in the same order."""
        b, e, h, w = y.shape
        if h % p or w % p:
            raise TinyFormerError(f"config model.blocks: vit patch {p} does not divide the {h}x{w} feature map")
        if self.mode == "export":  # batch 1: tokens as a 2-D [S, E] matrix (Gemm in ONNX)
            if p == 1:
                return y.reshape(e, h * w).T
            return y.reshape(e, h // p, p, w // p, p).transpose(2, 4, 1, 3, 0).reshape(h * w, e)
        if p == 1:
            return y.reshape(b, e, h * w).transpose(0, 2, 1)
        t = y.reshape(b, e, h // p, p, w // p, p).transpose(0, 3, 5, 2, 4, 1)
        return t.reshape(b * p * p, (h // p) * (w // p), e)

    def _fold(self, t: jax.Array, shape: tuple, p: int) -> jax.Array:
        b, e, h, w = shape
        if self.mode == "export":
            if p == 1:
                return t.T.reshape(b, e, h, w)
            return t.reshape(p, p, h // p, w // p, e).transpose(4, 2, 0, 3, 1).reshape(b, e, h, w)
        if p == 1:
            return t.transpose(0, 2, 1).reshape(b, e, h, w)
        return t.reshape(b, p, p, h // p, w // p, e).transpose(0, 5, 3, 1, 4, 2).reshape(b, e, h, w)

    def __call__(self, x: jax.Array, masks: "TokenMasks | None" = None, patch: int | None = None) -> jax.Array:
        """`masks` (supernet): a smaller embedding, fewer heads and fewer layers inside this one;
        `patch` (supernet): another patch size over the same weights."""
        p = patch or self.patch
        y = self.embed(self.local(x))
        if masks is not None:
            y = y * masks.dim[None, :, None, None]
        t = self._unfold(y, p)
        groups = p * p if self.mode == "export" else 1  # export: the sequences share the 2-D rows
        for i, layer in enumerate(self.layers):
            t = layer(t, groups=groups) if masks is None else jnp.where(i < masks.depth, layer(t, masks), t)
        y = self._fold(t, y.shape, p)
        return self.fuse(self.cat(jnp.concatenate([x, self.unembed(y)], axis=1)))


class Pool(nnx.Module):
    """2x2 average or max pooling, stride 2."""

    def __init__(self, kind: str):
        if kind not in ("avg", "max"):
            raise TinyFormerError(f"config model.blocks: pool kind {kind!r} (avg or max)")
        self.kind = kind
        self.out = ActQuant()

        self.mode = "float"

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.mode == "export":  # one MaxPool / AveragePool node in ONNX (jax2onnx maps the NHWC pools)
            pool = nnx.max_pool if self.kind == "max" else nnx.avg_pool
            y = pool(x.transpose(0, 2, 3, 1), window_shape=(2, 2), strides=(2, 2))
            return self.out(y.transpose(0, 3, 1, 2))
        b, c, h, w = x.shape
        t = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(b, c, h // 2, 2, w // 2, 2)
        return self.out(t.mean(axis=(3, 5)) if self.kind == "avg" else t.max(axis=(3, 5)))


class Hybrid(nnx.Module):
    def __init__(self, cfg: ml_collections.ConfigDict, *, rngs: nnx.Rngs):
        self.input = ActQuant()
        self.stem = Conv(3, cfg.stem, 3, rngs=rngs)
        c = cfg.stem
        blocks = []
        for kind, *args in cfg.blocks:
            if kind == "ir":
                expand, cout, stride, *kernel = args
                blocks.append(InvertedResidual(c, cout, expand, stride, *kernel, rngs=rngs))
                c = cout
            elif kind == "conv":
                cout, k, stride = args
                blocks.append(Conv(c, cout, k, stride=stride, rngs=rngs))
                c = cout
            elif kind == "pool":
                blocks.append(Pool(*args))
            elif kind == "vit":
                dim, heads, depth, mlp_ratio, *more = args  # [head dim[, patch]]
                blocks.append(MobileViTBlock(c, dim, heads, depth, mlp_ratio, *more, rngs=rngs))
            else:
                raise TinyFormerError(f"config model.blocks: unknown block kind {kind!r} (ir, conv, pool or vit)")
        self.blocks = nnx.List(blocks)
        self.head = Conv(c, cfg.head, 1, rngs=rngs)
        self.pool = ActQuant()
        self.classifier = Linear(cfg.head, cfg.classes, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        x = self.stem(self.input(x))
        for block in self.blocks:
            x = block(x)
        return self.classifier(self.pool(jnp.mean(self.head(x), axis=(2, 3))))


def describe_blocks(blocks, stem: int, size: int = 32) -> list[tuple[str, str]]:
    """Each block of a Hybrid config in words, with its output feature map (H x W x C) for a
    size x size input: the chosen model as a person reads it (reports)."""
    rows, c = [], stem
    for kind, *args in blocks:
        if kind == "ir":
            expand, cout, stride, *kernel = args
            k = kernel[0] if kernel else 3
            size, c = -(-size // stride), cout
            text = f"inverted residual: expand x{expand}, {k}x{k} depthwise, stride {stride}, {cout} channels"
        elif kind == "conv":
            cout, k, stride = args
            size, c = -(-size // stride), cout
            text = f"conv {k}x{k}, stride {stride}, {cout} channels"
        elif kind == "pool":
            size //= 2
            text = f"2x2 {args[0]} pooling"
        else:
            dim, heads, depth, mlp_ratio, *more = args
            head_dim = more[0] if more and more[0] else dim // heads
            p = more[1] if len(more) > 1 else 1
            seqs = p * p
            text = (f"MobileViT: embedding {dim}, {heads} heads of {head_dim}, {depth} layer(s), MLP x{mlp_ratio}, "
                    f"{p}x{p} patches: {seqs} sequence{'s' if seqs > 1 else ''} of {size * size // seqs} tokens")
        rows.append((text, f"{size}x{size}x{c}"))
    return rows
