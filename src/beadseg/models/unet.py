"""Plain U-Net (Ronneberger et al. 2015) sized for small beads."""

from .blocks import ConvBlock, EncoderDecoder


class UNet(EncoderDecoder):
    """U-Net: double-convolution blocks, concatenated skips."""

    block = ConvBlock
    attention = False
