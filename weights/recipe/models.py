"""The embedded shapes model's networks: an autoencoder (64x64x3 <-> 16x16x4), a word-level
transformer text encoder, and an SD-style UNet on the latent whose transformer blocks hold `attn1`
(self-attention), `attn2` (cross-attention) and a feed-forward at 16x16 and 8x8.

Attention is written as plain matmul/softmax so the exported ONNX graph shows
MatMul(Q, K^T) -> Mul(scale) -> Softmax -> MatMul(V), which attnkit's hooks find by structure.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------- autoencoder
class Encoder(nn.Module):
    """64x64x3 in [-1, 1] -> 16x16x4 latent (space-to-depth first: cheap on a CPU)."""

    def __init__(self, ch=48, latent=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.PixelUnshuffle(2),                      # 32x32x12
            nn.Conv2d(12, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, 64, 3, stride=2, padding=1), nn.SiLU(),  # 16x16
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, latent, 1),
        )

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """16x16x4 latent -> 64x64x3 in [-1, 1] (depth-to-space last)."""

    def __init__(self, ch=48, latent=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent, 64, 3, padding=1), nn.SiLU(),
            nn.Conv2d(64, 64, 3, padding=1), nn.SiLU(),
            nn.Upsample(scale_factor=2.0, mode="nearest"),  # 32x32
            nn.Conv2d(64, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, ch, 3, padding=1), nn.SiLU(),
            nn.Conv2d(ch, 12, 3, padding=1),
            nn.PixelShuffle(2),                        # 64x64x3
        )

    def forward(self, z):
        return self.net(z)


class Res(nn.Module):
    """conv-SiLU-conv with a residual connection (no normalisation: the decoder is small)."""

    def __init__(self, ch):
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.b(F.silu(self.a(F.silu(x))))


class SharpDecoder(nn.Module):
    """The shipped decoder: trained on the frozen encoder's latents with a foreground-weighted
    loss, with a full-resolution stage so small stars and crosses keep their corners."""

    def __init__(self, latent=4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent, 64, 3, padding=1), Res(64),
            nn.Upsample(scale_factor=2.0, mode="nearest"),       # 32x32
            nn.Conv2d(64, 48, 3, padding=1), Res(48),
            nn.Upsample(scale_factor=2.0, mode="nearest"),       # 64x64
            nn.Conv2d(48, 16, 3, padding=1), nn.SiLU(),
            nn.Conv2d(16, 3, 3, padding=1),
        )

    def forward(self, z):
        return self.net(z)


# ---------------------------------------------------------------- attention
class Attention(nn.Module):
    """Multi-head attention as plain matmul/softmax; context=None means self-attention."""

    def __init__(self, dim, heads, context_dim=None):
        super().__init__()
        self.heads = heads
        self.head_dim = dim // heads
        self.scale = self.head_dim ** -0.5
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_k = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_v = nn.Linear(context_dim or dim, dim, bias=False)
        self.to_out = nn.Linear(dim, dim)

    def forward(self, x, context=None):
        b, n, _ = x.shape
        ctx = x if context is None else context
        m = ctx.shape[1]
        h, d = self.heads, self.head_dim
        q = self.to_q(x).reshape(b, n, h, d).transpose(1, 2)      # [B, h, N, d]
        k = self.to_k(ctx).reshape(b, m, h, d).transpose(1, 2)    # [B, h, M, d]
        v = self.to_v(ctx).reshape(b, m, h, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(2, 3)) * self.scale
        probs = torch.softmax(scores, dim=-1)
        out = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, h * d)
        return self.to_out(out)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=2):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim * mult), nn.GELU(), nn.Linear(dim * mult, dim))

    def forward(self, x):
        return self.net(x)


class TransformerBlock(nn.Module):
    """SD's BasicTransformerBlock: attn1 (self), attn2 (cross), ff, each pre-norm + residual."""

    def __init__(self, dim, heads, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn1 = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.attn2 = Attention(dim, heads, context_dim)
        self.norm3 = nn.LayerNorm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class SpatialTransformer(nn.Module):
    """GroupNorm -> 1x1 proj -> TransformerBlock over HW tokens -> 1x1 proj, residual."""

    def __init__(self, ch, heads, context_dim):
        super().__init__()
        self.norm = nn.GroupNorm(16, ch)
        self.proj_in = nn.Conv2d(ch, ch, 1)
        self.block = TransformerBlock(ch, heads, context_dim)
        self.proj_out = nn.Conv2d(ch, ch, 1)

    def forward(self, x, context):
        b, c, h, w = x.shape
        y = self.proj_in(self.norm(x))
        y = y.reshape(b, c, h * w).transpose(1, 2)
        y = self.block(y, context)
        y = y.transpose(1, 2).reshape(b, c, h, w)
        return x + self.proj_out(y)


class ResBlock(nn.Module):
    def __init__(self, cin, cout, temb):
        super().__init__()
        self.norm1 = nn.GroupNorm(16, cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(16, cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x, t):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


def timestep_embedding(t, dim):
    """Sinusoidal embedding of (float) timesteps, as in DDPM/SD."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


class UNet(nn.Module):
    """SD-style UNet on a 16x16x4 latent: transformer blocks at 16x16 (down, up) and 8x8 (down,
    mid, up): 5 attn1 + 5 attn2 layers."""

    def __init__(self, ch=(64, 128), heads=4, context_dim=64, temb=128, latent=4):
        super().__init__()
        c1, c2 = ch
        self.temb_dim = temb
        self.time_mlp = nn.Sequential(nn.Linear(temb, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(latent, c1, 3, padding=1)
        self.down1_res = ResBlock(c1, c1, temb)
        self.down1_attn = SpatialTransformer(c1, heads, context_dim)
        self.down = nn.Conv2d(c1, c1, 3, stride=2, padding=1)
        self.down2_res = ResBlock(c1, c2, temb)
        self.down2_attn = SpatialTransformer(c2, heads, context_dim)
        self.mid_res1 = ResBlock(c2, c2, temb)
        self.mid_attn = SpatialTransformer(c2, heads, context_dim)
        self.mid_res2 = ResBlock(c2, c2, temb)
        self.up2_res = ResBlock(c2 + c2, c2, temb)
        self.up2_attn = SpatialTransformer(c2, heads, context_dim)
        self.up = nn.Upsample(scale_factor=2.0, mode="nearest")
        self.up_conv = nn.Conv2d(c2, c1, 3, padding=1)
        self.up1_res = ResBlock(c1 + c1, c1, temb)
        self.up1_attn = SpatialTransformer(c1, heads, context_dim)
        self.norm_out = nn.GroupNorm(16, c1)
        self.conv_out = nn.Conv2d(c1, latent, 3, padding=1)

    def forward(self, sample, timestep, encoder_hidden_states):
        t = self.time_mlp(timestep_embedding(timestep, self.temb_dim))
        ctx = encoder_hidden_states
        h1 = self.down1_attn(self.down1_res(self.conv_in(sample), t), ctx)      # 16x16
        h2 = self.down2_attn(self.down2_res(self.down(h1), t), ctx)             # 8x8
        m = self.mid_res2(self.mid_attn(self.mid_res1(h2, t), ctx), t)
        u2 = self.up2_attn(self.up2_res(torch.cat([m, h2], 1), t), ctx)          # 8x8
        u1 = self.up_conv(self.up(u2))                                          # 16x16
        u1 = self.up1_attn(self.up1_res(torch.cat([u1, h1], 1), t), ctx)
        return self.conv_out(F.silu(self.norm_out(u1)))


# attention layers in graph order, for config.json: (name, kind, resolution)
ATTENTION_LAYERS = [
    ("down1_attn.block.attn1", "self", 16), ("down1_attn.block.attn2", "cross", 16),
    ("down2_attn.block.attn1", "self", 8), ("down2_attn.block.attn2", "cross", 8),
    ("mid_attn.block.attn1", "self", 8), ("mid_attn.block.attn2", "cross", 8),
    ("up2_attn.block.attn1", "self", 8), ("up2_attn.block.attn2", "cross", 8),
    ("up1_attn.block.attn1", "self", 16), ("up1_attn.block.attn2", "cross", 16),
]


# ---------------------------------------------------------------- text encoder
class TextEncoder(nn.Module):
    """Token + position embeddings -> pre-norm transformer layers -> final LayerNorm."""

    def __init__(self, vocab, length=32, dim=64, heads=4, layers=2):
        super().__init__()
        self.tok = nn.Embedding(vocab, dim)
        self.pos = nn.Parameter(torch.randn(1, length, dim) * 0.02)
        self.layers = nn.ModuleList()
        for _ in range(layers):
            self.layers.append(nn.ModuleDict(dict(
                norm1=nn.LayerNorm(dim), attn=Attention(dim, heads),
                norm2=nn.LayerNorm(dim), ff=FeedForward(dim))))
        self.norm = nn.LayerNorm(dim)

    def forward(self, input_ids):
        x = self.tok(input_ids.long()) + self.pos
        for l in self.layers:
            x = x + l["attn"](l["norm1"](x))
            x = x + l["ff"](l["norm2"](x))
        return self.norm(x)
