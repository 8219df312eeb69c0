"""A recipe's augmentation done on the data, outside the gradient graph (recipe key `augment: data`).

Random horizontal flips and integer shifts of the raw uint8 images, with the border mirrored
as Keras' `fill_mode="reflect"` does. Keras-free and backend-free, so it runs the same under
every backend; the saved model holds no augmentation layer (in inference they are identities).
Drawn from (seed, epoch) alone, so a resumed run sees exactly the images an uninterrupted one does.
"""

from __future__ import annotations

import numpy as np


def augment_epoch(images: np.ndarray, seed: int, epoch: int, flip: bool, shift: int) -> np.ndarray:
    """A flipped and shifted copy of one epoch's images (N x H x W x C): each image flipped with
    probability 1/2 and moved by whole pixels, up to `shift` each way."""
    rng = np.random.default_rng([seed, epoch, 1])  # (seed, epoch) is the epoch's order; 1 keeps the streams apart
    out = images.copy()
    if flip:
        flipped = np.flatnonzero(rng.random(len(out)) < 0.5)
        out[flipped] = out[flipped, :, ::-1]
    if shift:
        height, width = out.shape[1:3]
        padded = np.pad(out, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="symmetric")  # = Keras' reflect
        dy, dx = rng.integers(-shift, shift + 1, (2, len(out)))
        for oy in range(-shift, shift + 1):
            for ox in range(-shift, shift + 1):
                moved = np.flatnonzero((dy == oy) & (dx == ox))
                out[moved] = padded[moved, shift + oy : shift + oy + height, shift + ox : shift + ox + width]
    return out
