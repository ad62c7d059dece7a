"""Input normalization and augmentation, run on the accelerator inside the compiled step."""
from __future__ import annotations

import jax
import jax.numpy as jnp

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


def normalize(images: jax.Array) -> jax.Array:
    """uint8 NHWC -> float32 NCHW, per-channel standardized (the model's input, also in ONNX)."""
    x = (images.astype(jnp.float32) / 255.0 - jnp.asarray(MEAN)) / jnp.asarray(STD)
    return x.transpose(0, 3, 1, 2)


def random_crop_flip(key: jax.Array, x: jax.Array, pad: int = 4) -> jax.Array:
    """Random crop of the zero-padded (pad pixels) image back to its size, and a random horizontal
    flip; independent per image. x: float NCHW."""
    n, c, h, w = x.shape
    k_off, k_flip = jax.random.split(key)
    offsets = jax.random.randint(k_off, (n, 2), 0, 2 * pad + 1)
    padded = jnp.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))

    def crop(img, off):
        return jax.lax.dynamic_slice(img, (0, off[0], off[1]), (c, h, w))

    out = jax.vmap(crop)(padded, offsets)
    flip = jax.random.bernoulli(k_flip, 0.5, (n, 1, 1, 1))
    return jnp.where(flip, out[..., ::-1], out)
