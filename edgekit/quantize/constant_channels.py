"""Zero the weights of conv channels whose output never varied, before INT8 preparation.

A conv channel whose input is dead (a ReLU6 channel that is 0 for every image) gives the same output
for every image, so its BatchNorm learns a variance of ~0. Folding that BatchNorm into the conv multiplies
the channel's weights by gamma / sqrt(var + eps), about 400x here, and the channel's per-channel weight
scale grows with them. That costs nothing in float (the weights multiply zeros) and nothing in the PT2E
graph, whose bias stays float, but TFLite stores the bias as int32 in steps of input scale x weight
scale: for the digits student's ``features.1.conv.0`` channel 4 a step was 0.30, seven output steps,
and the bias 0.228 became 0.299 in every pixel (benchmarks/results/ptq_tflite_layers.md).

Setting those weights to zero (and the BatchNorm's mean to zero, so the channel still outputs the
BatchNorm's beta, which is what it output before) leaves the network's function unchanged on the data
its statistics came from, and lets the weight scale collapse to the quantizer's floor so the bias is
stored exactly.
"""

from __future__ import annotations

import torch

# A channel is constant when its standard deviation is under 2 % of BatchNorm's sqrt(eps): its
# normalised output then varies by under 0.02 * gamma.
RELATIVE_STD = 0.02


def conv_bn_pairs(model: torch.nn.Module) -> list[tuple[str, torch.nn.Conv2d, torch.nn.BatchNorm2d]]:
    """Every Conv2d directly followed by a BatchNorm2d of the same width in a Sequential."""
    pairs = []
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Sequential):
            continue
        children = list(module.named_children())
        for (conv_name, conv), (_, bn) in zip(children, children[1:]):
            if (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)
                    and conv.out_channels == bn.num_features and bn.track_running_stats):
                pairs.append((f"{name}.{conv_name}" if name else conv_name, conv, bn))
    return pairs


@torch.no_grad()
def zero_constant_channels(model: torch.nn.Module) -> dict[str, list[int]]:
    """Zeroes, in place, the conv weights of every channel whose BatchNorm saw (almost) no variance.

    Returns the channels changed per conv (module path -> channel indices)."""
    changed: dict[str, list[int]] = {}
    for name, conv, bn in conv_bn_pairs(model):
        constant = bn.running_var < (RELATIVE_STD ** 2) * bn.eps
        if not bool(constant.any()):
            continue
        channels = constant.nonzero().flatten()
        conv.weight[channels] = 0.0
        if conv.bias is not None:  # the conv now outputs its bias there: centre BatchNorm on it
            bn.running_mean[channels] = conv.bias[channels]
        else:
            bn.running_mean[channels] = 0.0
        changed[name] = channels.tolist()
    return changed
