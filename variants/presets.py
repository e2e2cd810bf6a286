"""Named config bundles (``--preset NAME``). Keys a strategy lacks are skipped.

``jar-base`` is the JAR paper's Base setting as far as the paper lets us infer it. The
paper states D, N, iterations and fusion layers (Table 4's middle rows) but not its
backbones, text length or head; assumptions, each one ours:

- image encoder: ViT-B/16 at 224 px (197 tokens incl. [CLS]), 17.56 G multiply-adds, which
  fits the 22.4 GF of Table 4(e)'s 8-layer row (papers.md);
- text encoder: BERT-base width (768 = D, so JAR's text needs no projection), 12 layers;
- questions padded to 16 tokens (GQA questions are ~10 words; the paper gives no length);
- fusion: D = 768, 12 heads, MLP ratio 4, N = 64 latents, 4 iterations, 32 fusion layers,
  latent resampling, weighted combination, gating on (Table 4's bold rows);
- answer head: the harness's 2-layer MLP classifier over 3129 VQAv2 answers (the same for
  every strategy; 6 M multiply-adds);
- baselines get their own depth where the paper's name alone does not fix it, each chosen
  so that a baseline differs from JAR in *how* it fuses, not in how deep it is:
  ``concat`` runs 32 joint layers (JAR's 32 fusion layers, now over all 1 + 196 + 16
  tokens: "the joint transformer pays for H·W extra tokens"); ``perceiver`` reads the inputs
  4 times with 8 latent self-attention layers each (32 latent layers over 64 latents, like
  JAR's); ``cotok`` shares JAR's 4 iterations x 8 layers and pools 64 image tokens per
  iteration. ``cross_attn`` (ALBEF's 6 layers) and ``flamingo`` (64 resampled tokens,
  6-layer resampler, 6 text layers) keep their defaults: the paper has no row for them.
"""

from __future__ import annotations

from .registry import Preset, register_preset

register_preset(Preset(
    name="tiny",
    description="trains on 2 CPU cores in minutes on the built-in data: 64 px, patch 8, "
                "micro ViT with a conv stem, bidirectional-GRU question tokens (a random "
                "micro BERT learns the question far slower at this size), fusion width 64, "
                "2 fusion layers, 8 latent tokens, 2 iterations, softmax answer loss",
    overrides=dict(image_size=64, patch_size=8, vision="micro", vision_stem="conv",
                   text="gru", width=64,
                   heads=2, depth=2, text_len=16, num_tokens=8, iterations=2,
                   fusion_layers=2, self_per_cross=1, resampler_depth=1,
                   answer_loss="softmax", vision_lr=2e-4),
    families=("encoder-fusion",),
    # On the built-in data: the shipped micro ViT pretrained on its scene annotations,
    # frozen (features cached once). Elsewhere the encoder trains from raw pixels.
    pretrained=dict(vision_path="@pretrained", freeze_vision=True),
    # vision_lr: an encoder trained from raw pixels (elsewhere, or freeze_vision=false) at a
    # tenth of the fusion's lr. Measured on the built-in data, cross_attn, seed 0, 20 epochs,
    # test acc / image reliance: at the run's 2e-3 47.5 % / 3.9 (training loss 1.63 -> 1.35:
    # the encoder stops learning, and a frozen *random* encoder does better: 54.7 / 12.0);
    # at 2e-4 57.3 % / 15.3, val still rising at epoch 20 (968 s of training on 2 cores)
    # Measured on the built-in data with the frozen shipped ViT (cross_attn): the attention
    # fusions only take off after several epochs, sooner with the softmax loss: val bce
    # 57.8 / 60.7 / 64.5 % after 5 / 8 / 10 epochs (of a 15-epoch schedule), softmax
    # 63.4 / 69.1 % after 5 / 8 (of 10). 10 epochs: 73.6 % test, image reliance 30.4; 20
    # epochs (val still rising: 74.5 / 78.4 / 80.0 % after 10 / 13 / 20): 77.8 % test,
    # reliance 34.9, 225 s of training on 2 cores. With the ViT re-pretrained to keep each
    # token's position (classes): 79.9 % test, reliance 36.6, 220 s (val best 81.1 % at
    # epoch 16); position as classes and coordinates: 79.9 % / 37.1 (val 82.9 %).
    train=dict(epochs=20, batch_size=64, lr=2e-3, warmup_steps=50),
    per_strategy={
        "late_fusion": {"embed_dim": 64},  # word embeddings as wide as the rest
        # tanh gates start open (tanh(1) = 0.76): zero-initialised gates protect a
        # pretrained path, and here the text side trains from scratch. Measured (frozen
        # ViT shipped before the position target, 5 epochs): jar 44.6 % test with image
        # reliance 0.0 at gate_init 0, 51.1 % / 6.4 at 1.0; flamingo 48.0 % / 4.1 -> 49.7 %
        # / 5.3. jar-base keeps 0.
        "jar": {"gate_init": 1.0},
        "flamingo": {"gate_init": 1.0},
    },
))

register_preset(Preset(
    name="jar-base",
    description="JAR paper's Base (assumed backbones): ViT-B/16 224 px, BERT-base, 16 text "
                "tokens, D=768, 64 latents, 4 iterations, 32 fusion layers; concat 32 joint "
                "layers, perceiver 4x(1 cross + 8 self); see variants/presets.py",
    overrides=dict(image_size=224, patch_size=16, vision="base", text="base", width=768,
                   heads=12, mlp_ratio=4.0, text_len=16, num_answers=3129, num_tokens=64,
                   iterations=4, fusion_layers=32, resampling="latent",
                   combination="weighted", gating=True),
    families=("encoder-fusion",),
    per_strategy={"concat": {"depth": 32}, "perceiver": {"self_per_cross": 8}},
))

# Frozen-LM family (eP-ALM). Keys: frozen_lm.FrozenLMConfig; OPT sizes: variants/opt.py.
_FROZEN = ("frozen-lm",)
register_preset(Preset(
    name="epalm-tiny",
    description="CPU training: 64 px, patch 8, micro ViT (64 wide, 2 layers, conv stem) + "
                "micro OPT (64 wide, 6 layers); [CLS] of both ViT layers into the last 4 LM "
                "layers; "
                "prompt and adapter lr 3e-3 (the paper's 1e-5 is for 350M+ models); finetune's "
                "backbones at 1e-4",
    overrides=dict(image_size=64, patch_size=8, vision="micro", vision_stem="conv", lm="micro",
                   vision_layers=2,
                   text_len=16, prompt_lr=3e-3, adapter_lr=3e-3),
    families=_FROZEN,
    # on the built-in data: the shipped micro ViT and micro OPT pretrained on it (frozen
    # by the strategies themselves); elsewhere both stay randomly initialised
    pretrained=dict(vision_path="@pretrained", lm_path="@pretrained"),
    # the input-placement baselines keep their single, final [CLS]; finetune's pretrained
    # ViT and OPT train at 1e-4, its new layers at the run's lr. Measured with the run's lr
    # at 1e-3 (built-in data, seed 0, 2 epochs, test acc / image reliance): backbones at
    # 1e-3 forgot the image (42.9 / 0.0, the question-only answers); at 1e-4 50.8 / 6.9; at
    # 3e-4 49.4 / 5.6
    per_strategy={**{name: {"vision_layers": 1} for name in ("promptfuse", "magma", "limber")},
                  "finetune": {"backbone_lr": 1e-4}},
    # Measured on the built-in data, seed 0, 2 epochs (test acc / image reliance): prompt and
    # adapters at 3e-3 rather than 1e-3: epalm_ada 50.7 / 7.0 -> 51.4 / 7.3, magma 50.4 / 5.2
    # -> 51.3 / 6.6, finetune 47.9 / 3.0 -> 48.5 / 4.0. The connectors (the run's lr) at 3e-3
    # too, now that finetune's backbones keep 1e-4 (quick report rows, lr 1e-3 -> 3e-3):
    # epalm_ada 51.4 / 8.0 -> 53.4 / 9.5, finetune 50.4 / 6.1 -> 51.8 / 7.6, epalm_lin 48.8 /
    # 4.8 -> 50.1 / 6.7, limber 44.3 -> 45.1; magma, magma_all, promptfuse, epalm_pt within
    # 0.4 either way; epalm 49.1 / 4.7 -> 48.3 / 4.1. Mean over the 9: +0.4 points.
    train=dict(epochs=2, batch_size=64, lr=3e-3, warmup_steps=50),
))
register_preset(Preset(
    name="epalm-opt350m",
    description="the eP-ALM paper's main setting: ViT-B/16 at 224 px + OPT-350M",
    overrides=dict(image_size=224, patch_size=16, vision="base", lm="opt-350m"),
    families=_FROZEN,
))
for _size in ("opt-1.3b", "opt-2.7b", "opt-6.7b"):
    register_preset(Preset(
        name=f"epalm-{_size.replace('-', '')}",
        description=f"ViT-B/16 at 224 px + {_size} (eP-ALM's LM-size ablation)",
        overrides=dict(image_size=224, patch_size=16, vision="base", lm=_size),
        families=_FROZEN,
    ))
register_preset(Preset(
    name="epalm-pt-l",
    description="eP-ALM pt-L: ViT-L/16 + OPT-6.7B, prompt without MLP at lr 1e-3 (model lr "
                "2e-4, batch 16 in the paper); ~4.24M trainable with epalm_pt",
    overrides=dict(image_size=224, patch_size=16, vision="large", lm="opt-6.7b",
                   prompt_mlp=False, prompt_lr=1e-3),
    families=_FROZEN,
))
