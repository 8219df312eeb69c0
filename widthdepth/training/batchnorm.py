"""Batch norm: trained through TensorFlow's fused kernel (`fuse`), and its statistics recomputed
after training (`recalibrate`, after pycls' "precise BN", which runs in training mode instead).

Keras' `BatchNormalization` trains on TensorFlow as about 15 separate operations, each a pass
over the activations; TensorFlow's fused kernel makes one pass forward and one backward.
`fuse` routes a model's layers through it in training: the same arithmetic up to rounding
(tests/test_train.py), and 1.06x to 1.49x faster training of this project's batch-norm
models (docs/speed.md). The layers stay Keras' own, so the saved model is the same portable file;
inference, other backends, and layers the kernel cannot take keep Keras' code.

During training a `BatchNormalization` layer normalizes with each batch's own statistics and
keeps exponential moving averages for inference. When the averages do not describe what the
layer sees in inference (dropout before it inflates the training-time variance; the weights
moved faster than a momentum of 0.99 follows at a small batch), inference-mode accuracy
collapses while the training loss looks healthy. `recalibrate` replaces the averages with the
exact mean and variance of each layer's inputs over a sample of training images, computed in
inference mode (no dropout, no augmentation), layer after layer so each sees the layers before
it already recalibrated.

Import after `widthdepth.runtime.configure`: it imports Keras.
"""

from __future__ import annotations

import keras
import numpy as np

from widthdepth import runtime

# Training images the statistics are computed on (pycls uses 8,192 too), and per forward pass.
SAMPLE_IMAGES = 8192
BATCH = 512


def batch_norm_layers(model: keras.Model) -> list:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def fuse(model: keras.Model) -> int:
    """On TensorFlow (unless `WIDTHDEPTH_FUSED_BATCH_NORM=0`), train `model`'s batch-norm layers
    through the fused kernel; return how many were switched. Called for recipes with
    `fused_batch_norm: true` (not the notebook's: docs/training.md)."""
    if keras.backend.backend() != "tensorflow" or not runtime.switched_on(runtime.FUSED_BATCH_NORM):
        return 0
    layers = [layer for layer in batch_norm_layers(model) if "call" not in vars(layer)]  # not switched yet
    for layer in layers:
        layer.call = _fused_call(layer, layer.call)  # on the instance: the class, and so the saved file, stay Keras'
    return len(layers)


def _fused_call(layer, keras_call):
    import tensorflow as tf

    def call(inputs, training=None, mask=None):
        rank = len(inputs.shape)
        fusable = (
            layer.axis in (-1, rank - 1)
            and 2 <= rank <= 4
            and not layer.renorm
            and not layer.synchronized
            and layer.compute_dtype == "float32"
            and mask is None
        )
        if not (training and layer.trainable and fusable):
            return keras_call(inputs, training=training, mask=mask)
        channels = inputs.shape[-1]
        images = tf.reshape(inputs, [-1, 1, 1, channels]) if rank < 4 else inputs  # the kernel takes NHWC
        outputs, mean, variance, *_ = tf.raw_ops.FusedBatchNormV3(
            x=images,
            scale=layer.gamma if layer.scale else tf.ones([channels]),
            offset=layer.beta if layer.center else tf.zeros([channels]),
            mean=tf.constant([], tf.float32),
            variance=tf.constant([], tf.float32),
            epsilon=layer.epsilon,
            exponential_avg_factor=1.0,
            is_training=True,
        )
        values = tf.cast(tf.size(images) // channels, tf.float32)
        variance = (
            variance * (values - 1.0) / values
        )  # the kernel returns the unbiased variance; Keras averages the biased one
        layer.moving_mean.assign(layer.moving_mean * layer.momentum + mean * (1.0 - layer.momentum))
        layer.moving_variance.assign(layer.moving_variance * layer.momentum + variance * (1.0 - layer.momentum))
        return tf.reshape(outputs, tf.shape(inputs)) if rank < 4 else outputs

    return call


def sample(images: np.ndarray, seed: int) -> np.ndarray:
    """The training images the statistics are computed on: a fixed random subset."""
    if len(images) <= SAMPLE_IMAGES:
        return images
    return images[np.sort(np.random.default_rng([seed, 2]).choice(len(images), SAMPLE_IMAGES, replace=False))]


def recalibrate(model: keras.Model, images: np.ndarray) -> int:
    """Set every batch-norm layer's moving mean and variance to its inputs' statistics over
    `images` (raw model inputs), in inference mode; return how many layers were set."""
    layers = batch_norm_layers(model)
    for layer in layers:
        axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
        axis %= len(layer.input.shape)
        # Each batch's per-channel moments in the backend (the activations never reach NumPy),
        # pooled over the batches here in float64.
        moments = keras.ops.moments(
            layer.input, axes=[a for a in range(len(layer.input.shape)) if a != axis], keepdims=True
        )
        probe = keras.Model(model.inputs, [keras.ops.reshape(m, (1, -1)) for m in moments])
        per_image = int(
            np.prod([d for a, d in enumerate(layer.input.shape) if a not in (0, axis)])
        )  # values of a channel
        total = total_squares = 0.0
        count = 0
        for start in range(0, len(images), BATCH):
            batch = images[start : start + BATCH]
            mean, variance = (np.asarray(m, dtype=np.float64)[0] for m in probe.predict_on_batch(batch))
            values = len(batch) * per_image
            total, total_squares, count = (
                total + values * mean,
                total_squares + values * (variance + mean**2),
                count + values,
            )
        mean = total / count
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(
            np.maximum(total_squares / count - mean**2, 0.0).astype(layer.moving_variance.dtype)
        )
    return len(layers)
