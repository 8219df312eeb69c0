"""What a network costs, counted from its declaration before Keras builds it: parameters,
activation values per image (every layer's output, which the memory check weighs) and
multiply-accumulates per image (convolutions and dense layers, as `widthdepth.metrics` counts
them on the built model).

As in pycls (`blocks.py`: `conv2d_cx`, `norm2d_cx`, ...), a family's cost function walks its
network in its builder's order with these helpers, so the count reads like the network.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class Cost:
    """A running count over a network, and the shape (h, w, c) of the tensor reached so far."""

    h: int
    w: int
    c: int
    params: int = 0
    activations: int = 0
    macs: int = 0

    def _output(self, h: int, w: int, c: int) -> Cost:
        self.h, self.w, self.c = h, w, c
        self.activations += h * w * c
        return self

    def conv(self, filters: int, kernel: int, stride: int = 1, padding: str = "same", bias: bool = True) -> Cost:
        """A square 2-D convolution (Keras' Conv2D; its activation, if any, inside it)."""
        h, w = _sides(self.h, self.w, kernel, stride, padding)
        self.params += kernel * kernel * self.c * filters + (filters if bias else 0)
        self.macs += h * w * kernel * kernel * self.c * filters
        return self._output(h, w, filters)

    def batch_norm(self, scale: bool = True) -> Cost:
        """Batch normalization: gamma (if `scale`), beta, moving mean and variance per channel."""
        self.params += (4 if scale else 3) * self.c
        return self._output(self.h, self.w, self.c)

    def pool(self, size: int, stride: int | None = None, padding: str = "valid") -> Cost:
        """A max- or average-pool of a square window."""
        return self._output(*_sides(self.h, self.w, size, stride or size, padding), self.c)

    def elementwise(self) -> Cost:
        """A layer that keeps the shape: an activation, dropout, rescaling."""
        return self._output(self.h, self.w, self.c)

    def flatten(self) -> Cost:
        return self._output(1, 1, self.h * self.w * self.c)

    def global_pool(self) -> Cost:
        return self._output(1, 1, self.c)

    def dense(self, units: int) -> Cost:
        """A dense layer on a flat input (its activation inside it)."""
        self.params += self.c * units + units
        self.macs += self.c * units
        return self._output(1, 1, units)

    def branch(self) -> Cost:
        """A branch from the tensor reached so far, counted apart until `concatenate` joins it."""
        return Cost(self.h, self.w, self.c)

    def concatenate(self, branches: list[Cost]) -> Cost:
        """Join branches of one spatial shape along the channels, with what each cost."""
        for branch in branches:
            self.params, self.activations, self.macs = (
                self.params + branch.params,
                self.activations + branch.activations,
                self.macs + branch.macs,
            )
        return self._output(branches[0].h, branches[0].w, sum(branch.c for branch in branches))


def _sides(h: int, w: int, kernel: int, stride: int, padding: str) -> tuple[int, int]:
    if padding == "same":
        return math.ceil(h / stride), math.ceil(w / stride)
    return (h - kernel) // stride + 1, (w - kernel) // stride + 1
