"""Attention residual U-Net: residual blocks plus attention-gated skips."""

from .blocks import EncoderDecoder, ResBlock


class AttentionResUNet(EncoderDecoder):
    """Residual blocks in encoder and decoder, attention gates on the skips."""

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
            in_channels, base_channels, depth, ResBlock, True, norm, dropout, upsample, out_channels
        )
