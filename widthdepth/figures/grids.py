"""Headless matplotlib, and a titled grid of images (the report's sample images, evaluate's misclassified images)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend: stages run with no screen."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_image_grid(images: np.ndarray, titles: list[str], title: str, path: Path) -> None:
    """Up to 25 uint8 images (grayscale or RGB) in a 5 x 5 PNG grid, each with its title."""
    plt = pyplot()
    fig, axes = plt.subplots(5, 5, figsize=(8, 8.8))
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, name in zip(axes.flat, images, titles):
        ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=255)
        ax.set_title(name, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=90)
    plt.close(fig)


def save_misclassified_grid(
    images: np.ndarray, actual: np.ndarray, predicted: np.ndarray, classes: list[str], run: str, path: Path
) -> None:
    """The first 25 images whose predicted class is wrong, each titled true -> predicted; `run` names the model."""
    wrong = np.flatnonzero(actual != predicted)[:25]
    titles = [f"{classes[actual[i]]}\n-> {classes[predicted[i]]}" for i in wrong]
    title = f"Misclassified test images (true -> predicted), first {len(wrong)}, {run}"
    save_image_grid(images[wrong], titles, title, path)
