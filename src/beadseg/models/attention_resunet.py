"""Attention residual U-Net: residual blocks plus attention-gated skips."""

from .blocks import EncoderDecoder, ResBlock


class AttentionResUNet(EncoderDecoder):
    """Residual blocks in encoder and decoder, attention gates on the skips."""

    block = ResBlock
    attention = True
