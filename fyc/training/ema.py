"""Exponential moving average (EMA) of a model's trainable parameters, kept in float32 beside the model.

Not an ``nn.Module`` on purpose: the shadow weights are not part of the LightningModule's state dict, so DDP does
not broadcast them every step; the module saves them under ``checkpoint["ema"]`` instead (exact resume).
Supported with single-device and DDP training (every rank holds the full weights); not with sharded strategies.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch
from torch import nn


class EMAWeights:
    """Shadow copies ``s`` of named parameters ``p``, updated after each optimizer step as
    ``s <- d * s + (1 - d) * p`` with ``d = min(decay, (1 + n) / (10 + n))`` when ``warmup`` (n = updates so far).

    Args:
        named_parameters: ``{name: parameter}`` of the weights to average (e.g. the trainable UNet parameters).
        decay: in [0, 1); 0.9999 for long runs, ~0.99 for toy runs.
        warmup: use the warm-up formula above (small effective decay at the start).
    """

    def __init__(self, named_parameters: dict[str, nn.Parameter], decay: float = 0.9999, warmup: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.names = list(named_parameters)
        self.shadow = {n: p.detach().to(torch.float32, copy=True) for n, p in named_parameters.items()}
        self.num_updates = 0

    def current_decay(self) -> float:
        if not self.warmup:
            return self.decay
        return min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))

    @torch.no_grad()
    def update(self, named_parameters: dict[str, nn.Parameter]) -> None:
        """One EMA step towards the current parameter values."""
        weight = 1.0 - self.current_decay()
        shadows = [self.shadow[n] for n in self.names]
        params = [named_parameters[n].detach() for n in self.names]
        if shadows and shadows[0].device != params[0].device:
            self.to(params[0].device)
            shadows = [self.shadow[n] for n in self.names]
        torch._foreach_lerp_(shadows, [p.to(torch.float32) for p in params], weight)
        self.num_updates += 1

    def to(self, device: torch.device | str) -> "EMAWeights":
        self.shadow = {n: s.to(device) for n, s in self.shadow.items()}
        return self

    @contextlib.contextmanager
    def swapped_in(self, named_parameters: dict[str, nn.Parameter]) -> Iterator[None]:
        """Temporarily copy the EMA weights into the parameters (validation, sampling, export); restored on exit."""
        backup = {n: named_parameters[n].detach().clone() for n in self.names}
        try:
            with torch.no_grad():
                for n in self.names:
                    named_parameters[n].copy_(self.shadow[n].to(named_parameters[n]))
            yield
        finally:
            with torch.no_grad():
                for n in self.names:
                    named_parameters[n].copy_(backup[n])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "warmup": self.warmup, "num_updates": self.num_updates,
                "shadow": {n: s.detach().cpu() for n, s in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        missing = sorted(set(self.names) - set(state["shadow"]))
        unexpected = sorted(set(state["shadow"]) - set(self.names))
        if missing or unexpected:
            raise ValueError(f"EMA state does not match the trainable parameters: missing {missing[:5]} "
                             f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})")
        device = next(iter(self.shadow.values())).device if self.shadow else "cpu"
        self.shadow = {n: state["shadow"][n].to(device=device, dtype=torch.float32) for n in self.names}
        self.num_updates = int(state["num_updates"])
