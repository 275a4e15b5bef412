"""Optimizer construction: SGD or AdamW, with no weight decay on norms and biases."""

from __future__ import annotations

from torch import nn, optim

from cnnspec.train.config import TrainConfig

_NORMS = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm, nn.LocalResponseNorm)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two groups: weights that decay, and biases plus norm parameters that do not.

    Decaying a norm's scale or any bias only fights the normalisation and
    hurts accuracy (Goyal et al. 2017; He et al. 2019, "bag of tricks").
    """
    decay, no_decay = [], []
    seen: set[int] = set()
    for module in model.modules():
        for name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or id(param) in seen:
                continue
            seen.add(id(param))
            if isinstance(module, _NORMS) or name.endswith("bias") or param.ndim <= 1:
                no_decay.append(param)
            else:
                decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(model: nn.Module, config: TrainConfig, lr: float) -> optim.Optimizer:
    """The optimizer named in ``config`` at learning rate ``lr``."""
    groups = param_groups(model, config.weight_decay)
    if config.optimizer == "sgd":
        return optim.SGD(groups, lr=lr, momentum=config.momentum, nesterov=config.nesterov and config.momentum > 0)
    return optim.AdamW(groups, lr=lr, betas=config.betas)
