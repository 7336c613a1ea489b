"""Training: the loop (:mod:`.trainer`), its state and callbacks, data preparation, learning-rate
schedules, validation and the learning-rate finder.

``from beadseg.training import train`` is the public entry point.
"""

from .lr_find import lr_find
from .trainer import train

__all__ = ["lr_find", "train"]
