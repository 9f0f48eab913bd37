"""Image-classification data for the OFA spaces, held in memory as tensors.

* :class:`DigitsData`: scikit-learn's bundled 8x8 digits (1,797 images, no download),
  split into train / val (accuracy dataset for predictors) / test (validation of the
  final front).
* :class:`ImageFolderData`: an ImageNet-style folder (``root/<class>/<image>``, or
  ``root/train`` and ``root/val`` each of that shape), resized once to ``image_size``.

Both hand out batches at any resolution (bilinear resize of the stored images), which
is what elastic-resolution training and evaluation need.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["DigitsData", "ImageFolderData", "TensorImageData"]

SPLITS = ("train", "val", "test")


class TensorImageData:
    """Images ``(N, 3, H, W)`` (normalised) and labels per split.

    ``mean``/``std`` (per RGB channel, for pixels scaled to [0, 1]) and ``class_names``
    say how the stored images were made, so that an exported bundle can preprocess raw
    images the same way (``None``: unknown).
    """

    def __init__(self, images: dict[str, torch.Tensor], labels: dict[str, torch.Tensor],
                 n_classes: int, name: str, *, mean: list[float] | None = None,
                 std: list[float] | None = None, class_names: list[str] | None = None):
        for s in SPLITS:
            if s not in images or len(images[s]) == 0:
                raise ValueError(f"{name}: split {s!r} is empty")
        self.images, self.labels, self.n_classes, self.name = images, labels, n_classes, name
        self.mean, self.std, self.class_names = mean, std, class_names

    def size(self, split: str) -> int:
        return len(self.labels[self._check(split)])

    def _check(self, split: str) -> str:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; choose from {list(SPLITS)}")
        return split

    def batches(self, split: str, *, batch_size: int, resolution: int, shuffle: bool = False,
                seed: int = 0, limit: int | None = None,
                ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield ``(images at resolution x resolution, labels)``; at most ``limit`` batches."""
        x, y = self.images[self._check(split)], self.labels[split]
        idx = (torch.from_numpy(np.random.default_rng(seed).permutation(len(y)))
               if shuffle else torch.arange(len(y)))
        for n, start in enumerate(range(0, len(y), batch_size)):
            if limit is not None and n >= limit:
                return
            sel = idx[start:start + batch_size]
            xb = x[sel]
            if xb.shape[-1] != resolution or xb.shape[-2] != resolution:
                xb = F.interpolate(xb, size=(resolution, resolution), mode="bilinear",
                                   align_corners=False)
            yield xb, y[sel]


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return (x - x.mean()) / (x.std() + 1e-8)


def _split_indices(labels: np.ndarray, fractions: tuple[float, float], seed: int
                   ) -> dict[str, np.ndarray]:
    """Stratified train/val/test split; ``fractions`` are (val, test)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {s: [] for s in SPLITS}
    for c in np.unique(labels):
        ids = rng.permutation(np.flatnonzero(labels == c))
        n_val, n_test = round(len(ids) * fractions[0]), round(len(ids) * fractions[1])
        parts["val"] += ids[:n_val].tolist()
        parts["test"] += ids[n_val:n_val + n_test].tolist()
        parts["train"] += ids[n_val + n_test:].tolist()
    return {s: np.sort(np.asarray(v, dtype=np.int64)) for s, v in parts.items()}


class DigitsData(TensorImageData):
    """scikit-learn's digits as 3-channel images; ``val``/``test`` fractions of each class."""

    def __init__(self, *, n_classes: int = 10, val_fraction: float = 0.2,
                 test_fraction: float = 0.2, seed: int = 0):
        from sklearn.datasets import load_digits  # shipped with scikit-learn, no download

        if n_classes != 10:
            raise ValueError(f"digits has 10 classes; data.n_classes={n_classes} is not allowed")
        if not 0 < val_fraction < 1 or not 0 < test_fraction < 1 or val_fraction + test_fraction >= 0.9:
            raise ValueError(f"digits: val_fraction={val_fraction}, test_fraction={test_fraction}"
                             " must be in (0, 1) and sum below 0.9")
        d = load_digits()
        x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1).repeat(1, 3, 1, 1)
        # pixels are 0-16: in [0, 1] terms the normalisation is (x/16 - mu/16) / (sigma/16)
        mu, sigma = float(x.mean()), float(x.std()) + 1e-8
        x = _normalise(x)
        y = torch.tensor(d.target, dtype=torch.long)
        parts = _split_indices(d.target, (val_fraction, test_fraction), seed)
        super().__init__({s: x[i] for s, i in parts.items()}, {s: y[i] for s, i in parts.items()},
                         10, "digits", mean=[mu / 16] * 3, std=[sigma / 16] * 3,
                         class_names=[str(c) for c in range(10)])


class ImageFolderData(TensorImageData):
    """An ImageNet-style folder, loaded into memory at ``image_size`` (for small folders:
    evaluation of a checkpoint on a sample of a dataset, tests)."""

    def __init__(self, *, root: str, n_classes: int | None = None, image_size: int = 64,
                 val_fraction: float = 0.2, test_fraction: float = 0.2, seed: int = 0):
        from PIL import Image

        base = Path(root)
        if not base.is_dir():
            raise FileNotFoundError(f"imagefolder: data.root={root!r} is not a directory")
        exts = {".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"}

        def scan(folder: Path) -> list[tuple[Path, str]]:
            return [(p, c.name) for c in sorted(folder.iterdir()) if c.is_dir()
                    for p in sorted(c.iterdir()) if p.suffix.lower() in exts]

        explicit = (base / "train").is_dir() and (base / "val").is_dir()
        items = scan(base / "train") + scan(base / "val") if explicit else scan(base)
        classes = sorted({c for _, c in items})
        if len(classes) < 2:
            raise ValueError(f"imagefolder: {root!r} needs at least two class folders with "
                             f"images ({sorted(exts)}); found {classes}")
        if n_classes is not None and len(classes) > n_classes:
            raise ValueError(f"imagefolder: {root!r} has {len(classes)} classes but "
                             f"data.n_classes={n_classes} (the classifier's size)")
        mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
        xs = []
        for p, _ in items:
            img = Image.open(p).convert("RGB").resize((image_size, image_size), Image.Resampling.BILINEAR)
            t = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0).permute(2, 0, 1)
            xs.append((t - mean) / std)
        x = torch.stack(xs)
        labels = np.asarray([classes.index(c) for _, c in items])
        y = torch.from_numpy(labels)
        if explicit:
            n_train = len(scan(base / "train"))
            tr = np.arange(n_train)
            rest = np.arange(n_train, len(items))
            half = len(rest) // 2
            parts = {"train": tr, "val": rest[:max(half, 1)], "test": rest[half:] if half else rest}
        else:
            parts = _split_indices(labels, (val_fraction, test_fraction), seed)
        super().__init__({s: x[i] for s, i in parts.items()}, {s: y[i] for s, i in parts.items()},
                         n_classes or len(classes), f"imagefolder:{root}",
                         mean=mean.flatten().tolist(), std=std.flatten().tolist(),
                         class_names=classes if n_classes in (None, len(classes)) else None)
        self.classes = classes
