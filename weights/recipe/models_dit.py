"""The embedded DiT: an MMDiT-style rectified-flow transformer (Esser et al. 2024, "Scaling
Rectified Flow Transformers", SD3; Flux's single-stream blocks) on the shapes model's 16x16x4
latent, conditioned on the frozen shapes text encoder's [32, 64] hidden states.

Layout (the sequence is [text tokens 0..31, image tokens 32..95], text first as in Flux):
- patchify: 2x2 patches of the latent -> 64 image tokens, Linear(16, D) + learned positions;
- text: Linear(64, D) of the encoder states; pooled text (mean over tokens) joins the timestep
  embedding as the conditioning vector c (SD3's pooled-text + timestep vector);
- `joint_blocks` double-stream blocks (MMDiT): text and image tokens have their own adaLN-zero
  modulations, q/k/v projections, qk RMSNorm, output projections and MLPs; q, k, v of both are
  concatenated into ONE softmax over the 96 tokens; 2D rotary embeddings on image q and k (text
  tokens get the identity rotation, as Flux's zero text ids);
- `single_blocks` single-stream blocks (Flux): one sequence holding text+image, one adaLN-zero
  modulation, one fused Linear(D, 3D + mlp) for q/k/v and the MLP input, one fused Linear back;
- final adaLN, Linear(D, 16) and unpatchify to [B, 4, 16, 16]: the velocity v = eps - x0.

Attention is written as plain matmul/softmax (as models.Attention) so the exported ONNX graph
shows MatMul(Q, K^T) -> Mul(scale) -> Softmax -> MatMul(V) over the joint sequence.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from models import timestep_embedding


class RMSNorm(nn.Module):
    """RMSNorm over the last axis with a learned gain (SD3/Flux qk-norm), as plain ops."""

    def __init__(self, dim, eps=1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_2d(grid, head_dim, text_len, theta=100.0):
    """cos/sin tables [text_len + grid^2, head_dim] for 2D rotary embeddings: half the pairs rotate
    with the row index, half with the column; text tokens sit at position (0, 0) (identity)."""
    quarter = head_dim // 4
    freqs = theta ** (-torch.arange(quarter, dtype=torch.float32) / quarter)
    ys, xs = torch.meshgrid(torch.arange(grid), torch.arange(grid), indexing="ij")
    ang = torch.cat([ys.reshape(-1, 1).float() * freqs, xs.reshape(-1, 1).float() * freqs], dim=1)
    ang = torch.cat([torch.zeros(text_len, 2 * quarter), ang], dim=0)     # [N, head_dim / 2]
    ang = ang.repeat_interleave(2, dim=1)                                  # pairs (2i, 2i+1)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x, cos, sin):
    """x [B, h, N, d] rotated pairwise: (x0, x1) -> (x0 cos - x1 sin, x1 cos + x0 sin)."""
    b, h, n, d = x.shape
    pairs = x.reshape(b, h, n, d // 2, 2)
    rot = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(b, h, n, d)
    return x * cos + rot * sin


def attention(q, k, v):
    """Plain scaled dot-product attention over [B, h, N, d]."""
    scores = torch.matmul(q, k.transpose(2, 3)) * (q.shape[-1] ** -0.5)
    probs = torch.softmax(scores, dim=-1)
    return torch.matmul(probs, v)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class JointBlock(nn.Module):
    """MMDiT double-stream block: separate weights per stream, one joint softmax."""

    def __init__(self, dim, heads, mlp=4):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        for s in ("img", "txt"):
            setattr(self, f"{s}_mod", nn.Linear(dim, 6 * dim))
            setattr(self, f"{s}_norm1", nn.LayerNorm(dim, eps=1e-6))
            setattr(self, f"{s}_qkv", nn.Linear(dim, 3 * dim))
            setattr(self, f"{s}_q_norm", RMSNorm(self.head_dim))
            setattr(self, f"{s}_k_norm", RMSNorm(self.head_dim))
            setattr(self, f"{s}_out", nn.Linear(dim, dim))
            setattr(self, f"{s}_norm2", nn.LayerNorm(dim, eps=1e-6))
            setattr(self, f"{s}_mlp", nn.Sequential(
                nn.Linear(dim, dim * mlp), nn.GELU(approximate="tanh"), nn.Linear(dim * mlp, dim)))

    def _qkv(self, s, x, m):
        b, n, d = x.shape
        h = modulate(getattr(self, f"{s}_norm1")(x), m[0], m[1])
        q, k, v = getattr(self, f"{s}_qkv")(h).reshape(b, n, 3, self.heads, self.head_dim) \
            .permute(2, 0, 3, 1, 4)
        return getattr(self, f"{s}_q_norm")(q), getattr(self, f"{s}_k_norm")(k), v

    def forward(self, txt, img, c, cos, sin):
        mi = self.img_mod(F.silu(c)).chunk(6, dim=1)
        mt = self.txt_mod(F.silu(c)).chunk(6, dim=1)
        tq, tk, tv = self._qkv("txt", txt, mt)
        iq, ik, iv = self._qkv("img", img, mi)
        q = apply_rope(torch.cat([tq, iq], dim=2), cos, sin)
        k = apply_rope(torch.cat([tk, ik], dim=2), cos, sin)
        v = torch.cat([tv, iv], dim=2)
        o = attention(q, k, v)
        b, h, n, d = o.shape
        o = o.transpose(1, 2).reshape(b, n, h * d)
        L = txt.shape[1]
        out = []
        for s, x, m, os_ in (("txt", txt, mt, o[:, :L]), ("img", img, mi, o[:, L:])):
            x = x + m[2][:, None] * getattr(self, f"{s}_out")(os_)
            h2 = modulate(getattr(self, f"{s}_norm2")(x), m[3], m[4])
            out.append(x + m[5][:, None] * getattr(self, f"{s}_mlp")(h2))
        return out[0], out[1]


class SingleBlock(nn.Module):
    """Flux single-stream block: fused q/k/v + MLP-in projection, one fused output projection."""

    def __init__(self, dim, heads, mlp=4):
        super().__init__()
        self.heads, self.head_dim, self.mlp_dim = heads, dim // heads, dim * mlp
        self.mod = nn.Linear(dim, 3 * dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.linear1 = nn.Linear(dim, 3 * dim + self.mlp_dim)
        self.q_norm, self.k_norm = RMSNorm(self.head_dim), RMSNorm(self.head_dim)
        self.linear2 = nn.Linear(dim + self.mlp_dim, dim)

    def forward(self, x, c, cos, sin):
        shift, scale, gate = self.mod(F.silu(c)).chunk(3, dim=1)
        b, n, d = x.shape
        h = modulate(self.norm(x), shift, scale)
        qkv, mlp = torch.split(self.linear1(h), [3 * d, self.mlp_dim], dim=-1)
        q, k, v = qkv.reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q = apply_rope(self.q_norm(q), cos, sin)
        k = apply_rope(self.k_norm(k), cos, sin)
        o = attention(q, k, v).transpose(1, 2).reshape(b, n, d)
        o = self.linear2(torch.cat([o, F.gelu(mlp, approximate="tanh")], dim=-1))
        return x + gate[:, None] * o


class DiT(nn.Module):
    """forward(sample [B, 4, 16, 16], timestep [B] (sigma * 1000), encoder_hidden_states
    [B, 32, 64]) -> velocity [B, 4, 16, 16]."""

    def __init__(self, dim=128, heads=4, joint_blocks=4, single_blocks=2, mlp=4, latent=4,
                 size=16, patch=2, context_dim=64, text_len=32, temb=128):
        super().__init__()
        self.patch, self.latent, self.grid = patch, latent, size // patch
        self.temb = temb
        pdim = latent * patch * patch
        self.x_embed = nn.Linear(pdim, dim)
        self.pos = nn.Parameter(torch.randn(1, self.grid ** 2, dim) * 0.02)
        self.context_embed = nn.Linear(context_dim, dim)
        self.time_mlp = nn.Sequential(nn.Linear(temb, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.pooled_mlp = nn.Sequential(nn.Linear(context_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.joint = nn.ModuleList([JointBlock(dim, heads, mlp) for _ in range(joint_blocks)])
        self.single = nn.ModuleList([SingleBlock(dim, heads, mlp) for _ in range(single_blocks)])
        self.norm_out = nn.LayerNorm(dim, eps=1e-6)
        self.mod_out = nn.Linear(dim, 2 * dim)
        self.proj_out = nn.Linear(dim, pdim)
        cos, sin = rope_2d(self.grid, dim // heads, text_len)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        # adaLN-zero: every residual branch and the output start at zero.
        for blk in self.joint:
            for m in (blk.img_mod, blk.txt_mod):
                nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)
        for blk in self.single:
            nn.init.zeros_(blk.mod.weight); nn.init.zeros_(blk.mod.bias)
        for m in (self.mod_out, self.proj_out):
            nn.init.zeros_(m.weight); nn.init.zeros_(m.bias)

    def forward(self, sample, timestep, encoder_hidden_states):
        b, C, H, W = sample.shape
        p, g = self.patch, self.grid
        x = sample.reshape(b, C, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(b, g * g, C * p * p)
        img = self.x_embed(x) + self.pos
        txt = self.context_embed(encoder_hidden_states)
        c = self.time_mlp(timestep_embedding(timestep, self.temb)) + \
            self.pooled_mlp(encoder_hidden_states.mean(dim=1))
        cos, sin = self.rope_cos, self.rope_sin
        for blk in self.joint:
            txt, img = blk(txt, img, c, cos, sin)
        L = txt.shape[1]
        h = torch.cat([txt, img], dim=1)
        for blk in self.single:
            h = blk(h, c, cos, sin)
        img = h[:, L:]
        shift, scale = self.mod_out(F.silu(c)).chunk(2, dim=1)
        out = self.proj_out(modulate(self.norm_out(img), shift, scale))       # [B, 64, C p p]
        return out.reshape(b, g, g, C, p, p).permute(0, 3, 1, 4, 2, 5).reshape(b, C, H, W)


def dit_attention_layers(joint_blocks, single_blocks):
    """Attention cores in graph order, for config.json: (name, kind)."""
    return [(f"joint.{i}", "joint") for i in range(joint_blocks)] + \
        [(f"single.{i}", "single") for i in range(single_blocks)]
