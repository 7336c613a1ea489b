"""Attention U-Net (Oktay et al. 2018): additive attention gates on the skip connections."""

from .blocks import ConvBlock, EncoderDecoder


class AttentionUNet(EncoderDecoder):
    """U-Net whose skips are weighted by additive attention gates."""

    def __init__(
        self,
        in_channels=3,
        base_channels=16,
        depth=3,
        norm="batch",
        dropout=0.0,
        upsample="transpose",
        out_channels=1,
    ):
        super().__init__(
            in_channels, base_channels, depth, ConvBlock, True, norm, dropout, upsample, out_channels
        )
