"""Knowledge distillation: the loss of a student against a teacher's soft targets."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["soft_target_loss"]


def soft_target_loss(logits: torch.Tensor, teacher_logits: torch.Tensor,
                     temperature: float = 1.0, *, reduction: str = "mean") -> torch.Tensor:
    """Cross-entropy of ``logits`` against the teacher's softened distribution, times
    ``temperature**2`` (Hinton et al.; at temperature 1 this is OFA's
    ``cross_entropy_loss_with_soft_target``).

    Args:
        logits: student logits, classes on the last axis.
        teacher_logits: teacher logits of the same shape (no gradient flows into them).
        temperature: softmax temperature (> 0).
        reduction: ``"mean"`` or ``"sum"`` over the rows.

    Returns:
        A scalar tensor (float32).

    Raises:
        ValueError: a bad temperature or reduction, or shapes that differ.
    """
    if not temperature > 0:
        raise ValueError(f"temperature={temperature!r} must be > 0")
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}: choose from 'mean', 'sum'")
    if logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    t = float(temperature)
    target = F.softmax(teacher_logits.detach().float() / t, dim=-1)
    per_row = -(target * F.log_softmax(logits.float() / t, dim=-1)).sum(-1) * (t * t)
    return per_row.sum() if reduction == "sum" else per_row.mean()
