"""RCAN-style residual-in-residual trunk used by both modules (Sec. III-B, Sec. IV-A).

The paper adopts "several residual groups of RCAN [38]" as the backbone of ARM and REM: 2 groups
(tiny) or 5 groups (full), each with 12 residual channel attention blocks (RCAB) of 64 features.
Pieces, from the inside out:

* ``ChannelAttention``: global average pool -> 1x1 conv (C -> C/r) -> ReLU -> 1x1 conv (C/r -> C)
  -> sigmoid, the result rescales every channel.
* ``RCAB``: conv3x3 -> ReLU -> conv3x3 -> channel attention, plus identity. No batch norm.
* ``ResidualGroup``: ``n_blocks`` RCABs -> conv3x3, plus identity (short skip).
* ``Backbone``: ``n_groups`` residual groups -> conv3x3, plus identity (RCAN's long skip inside the
  trunk; the module-level long skip of eq. (11) is a different connection, see arm.py / rem.py).

Every convolution keeps the spatial size (padding k // 2) and has a bias.
"""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    """3x3 convolution with padding 1 (size preserving) and a bias."""
    return nn.Conv2d(c_in, c_out, kernel_size=3, padding=1, bias=True)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention of RCAN.

    Args:
        channels: number of feature channels C.
        reduction: C is squeezed to max(1, C // reduction) channels in the bottleneck.

    Derived in notebooks/05_backbone_rcan.ipynb
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.squeeze = nn.Conv2d(channels, hidden, kernel_size=1, bias=True)
        self.excite = nn.Conv2d(hidden, channels, kernel_size=1, bias=True)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, C, H, W) -> (B, C, H, W), f rescaled channel-wise by weights in (0, 1)."""
        a = f.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1) global average pool
        a = torch.relu(self.squeeze(a))  # (B, C/r, 1, 1)
        a = torch.sigmoid(self.excite(a))  # (B, C, 1, 1)
        return f * a


class RCAB(nn.Module):
    """Residual channel attention block: f + CA(conv(relu(conv(f)))).

    Args:
        channels: feature channels C.
        reduction: channel attention reduction ratio r.

    Derived in notebooks/05_backbone_rcan.ipynb
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)
        self.attention = ChannelAttention(channels, reduction)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, C, H, W) -> (B, C, H, W)."""
        r = self.conv2(torch.relu(self.conv1(f)))  # (B, C, H, W)
        return f + self.attention(r)


class ResidualGroup(nn.Module):
    """``n_blocks`` RCABs followed by a conv3x3, with a short skip connection.

    Args:
        channels: feature channels C.
        n_blocks: number of RCABs (12 in the paper, 20 in the original RCAN).
        reduction: channel attention reduction ratio.

    Derived in notebooks/05_backbone_rcan.ipynb
    """

    def __init__(self, channels: int, n_blocks: int, reduction: int = 16):
        super().__init__()
        self.blocks = nn.Sequential(*[RCAB(channels, reduction) for _ in range(n_blocks)])
        self.conv = conv3x3(channels, channels)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, C, H, W) -> (B, C, H, W)."""
        return f + self.conv(self.blocks(f))


class Backbone(nn.Module):
    """RCAN trunk: ``n_groups`` residual groups -> conv3x3, plus a long residual.

    Args:
        channels: feature channels C (64 in the paper).
        n_groups: residual groups (2 for tiny, 5 for full).
        n_blocks: RCABs per group (12 in the paper).
        reduction: channel attention reduction ratio (16).

    Derived in notebooks/05_backbone_rcan.ipynb
    """

    def __init__(self, channels: int = 64, n_groups: int = 2, n_blocks: int = 12, reduction: int = 16):
        super().__init__()
        self.groups = nn.Sequential(
            *[ResidualGroup(channels, n_blocks, reduction) for _ in range(n_groups)]
        )
        self.conv = conv3x3(channels, channels)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        """f: (B, C, H, W) head features -> (B, C, H, W) trunk features."""
        return f + self.conv(self.groups(f))


def backbone_params(channels: int, n_groups: int, n_blocks: int, reduction: int = 16) -> int:
    """Closed-form parameter count of ``Backbone`` (weights and biases).

    conv3x3 C->C: 9C^2 + C; channel attention: C*h + h + h*C + C with h = max(1, C // r);
    RCAB = 2 conv3x3 + CA; group = n_blocks RCAB + conv3x3; trunk = n_groups groups + conv3x3.
    """
    c = channels
    h = max(1, c // reduction)
    conv = 9 * c * c + c
    ca = c * h + h + h * c + c
    rcab = 2 * conv + ca
    group = n_blocks * rcab + conv
    return n_groups * group + conv
