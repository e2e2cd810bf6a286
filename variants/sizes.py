"""Backbone size tables (public configs, plus our CPU-sized ``micro``): plain data, so that
the command line can offer them as choices without importing torch (``fusebench --help``
stays fast). ``backbones`` and ``opt`` build from them and re-export them."""

# name -> (width, depth, heads)
VIT_SIZES = {
    "micro": (64, 2, 2),
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
    "huge": (1280, 32, 16),
}
# name -> (hidden, layers, heads)
BERT_SIZES = {
    "micro": (64, 2, 2),
    "tiny": (128, 2, 2),
    "mini": (256, 4, 4),
    "small": (512, 4, 8),
    "medium": (512, 8, 8),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}
# name -> (hidden, layers, heads, ffn_dim, word_embed_proj_dim, do_layer_norm_before)
OPT_SIZES = {
    "micro": (64, 6, 2, 256, 64, True),
    "opt-125m": (768, 12, 12, 3072, 768, True),
    "opt-350m": (1024, 24, 16, 4096, 512, False),
    "opt-1.3b": (2048, 24, 32, 8192, 2048, True),
    "opt-2.7b": (2560, 32, 32, 10240, 2560, True),
    "opt-6.7b": (4096, 32, 32, 16384, 4096, True),
}
