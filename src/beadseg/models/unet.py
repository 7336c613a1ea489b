"""Plain U-Net (Ronneberger et al. 2015) sized for small beads."""

from .blocks import ConvBlock, EncoderDecoder


class UNet(EncoderDecoder):
    """U-Net: double-convolution blocks, concatenated skips."""

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
            in_channels, base_channels, depth, ConvBlock, False, norm, dropout, upsample, out_channels
        )
