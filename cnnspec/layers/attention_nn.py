"""The torch modules of the attention kinds (cnnspec.layers.attention).

Each class is self-contained (it reads only `torch` and `nn`), so that the
exported Python (backends/pysource.py) can copy its source as it is.
"""

from __future__ import annotations

import torch
from torch import nn


class SelfAttention(nn.MultiheadAttention):
    """Multi-head self-attention on (batch, tokens, width): nn.MultiheadAttention(x, x, x), batch first.

    A subclass, so that its state_dict keys are nn.MultiheadAttention's
    (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias), as
    torchvision's ViT holds them.
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__(embed_dim, num_heads, dropout=dropout, bias=bias, batch_first=True)
        self.bias = bias  # kept, as torch keeps the other arguments, so that the .py export rebuilds it

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, x, need_weights=False)[0]


class WindowAttention(nn.Module):
    """Swin's (shifted) window attention on a channels-last map (batch, H, W, C).

    The map is padded to whole windows, rolled back by `shift`, cut into
    window×window windows; each window attends within itself with a learned
    relative-position bias (and, when shifted, a mask keeping apart the
    regions the roll brought together); then the steps are undone. Its
    parameters and buffer are torchvision's ShiftedWindowAttention's: qkv,
    proj, relative_position_bias_table, relative_position_index.
    """

    def __init__(
        self, dim: int, window: int, shift: int, num_heads: int, attention_dropout: float = 0.0, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.dim = dim
        self.window = window
        self.shift = shift
        self.num_heads = num_heads
        self.attention_dropout = attention_dropout
        self.dropout = dropout
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
        self.register_buffer("relative_position_index", (rel[:, :, 0] * (2 * window - 1) + rel[:, :, 1]).flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        win, heads = self.window, self.num_heads
        x = torch.nn.functional.pad(x, (0, 0, 0, (win - w % win) % win, 0, (win - h % win) % win))
        ph, pw = x.shape[1], x.shape[2]
        # A window as large as the padded map sees all of it: nothing to shift (as torchvision).
        sh = self.shift if win < ph else 0
        sw = self.shift if win < pw else 0
        if sh or sw:
            x = torch.roll(x, shifts=(-sh, -sw), dims=(1, 2))
        nh, nw, n = ph // win, pw // win, win * win
        x = x.view(b, nh, win, nw, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b * nh * nw, n, c)
        qkv = self.qkv(x).reshape(x.size(0), n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * (c // heads) ** -0.5, qkv[1], qkv[2]
        bias = self.relative_position_bias_table[self.relative_position_index].view(n, n, -1)
        attn = q.matmul(k.transpose(-2, -1)) + bias.permute(2, 0, 1).unsqueeze(0)
        if sh or sw:
            mask = x.new_zeros((ph, pw))
            count = 0
            for hs in ((0, -win), (-win, -sh), (-sh, None)):
                for ws in ((0, -win), (-win, -sw), (-sw, None)):
                    mask[hs[0] : hs[1], ws[0] : ws[1]] = count
                    count += 1
            mask = mask.view(nh, win, nw, win).permute(0, 2, 1, 3).reshape(nh * nw, n)
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = (attn.view(b, nh * nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)).view(-1, heads, n, n)
        attn = torch.nn.functional.dropout(attn.softmax(dim=-1), p=self.attention_dropout, training=self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), n, c)
        x = torch.nn.functional.dropout(self.proj(x), p=self.dropout, training=self.training)
        x = x.view(b, nh, nw, win, win, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)
        if sh or sw:
            x = torch.roll(x, shifts=(sh, sw), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()

    def extra_repr(self) -> str:
        return f"dim={self.dim}, window={self.window}, shift={self.shift}, num_heads={self.num_heads}"
