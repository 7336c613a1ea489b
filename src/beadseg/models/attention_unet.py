"""Attention U-Net (Oktay et al. 2018): additive attention gates on the skip connections."""

from .blocks import ConvBlock, EncoderDecoder


class AttentionUNet(EncoderDecoder):
    """U-Net whose skips are weighted by additive attention gates."""

    block = ConvBlock
    attention = True
