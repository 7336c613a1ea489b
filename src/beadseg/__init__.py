"""beadseg: microbead segmentation for brightfield microscopy."""

__version__ = "0.1.0"

from .errors import BeadsegError, BeadsegWarning  # noqa: E402

__all__ = ["BeadsegError", "BeadsegWarning", "__version__"]
