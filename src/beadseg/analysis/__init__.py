"""The dataset doctor: fingerprint, checks, recommendations, figures and report."""

from .doctor import analyze_dataset

__all__ = ["analyze_dataset"]
