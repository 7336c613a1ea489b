"""The dataset doctor: fingerprint, checks, label grades, recommendations, figures and report.

``analyze_dataset`` runs it all (`beadseg analyze`); ``grade_labels`` grades the labels only, for
training and evaluation to call at start.
"""

from .doctor import analyze_dataset
from .grades import LabelGrade, LabelSelection, grade_labels, select_labels

__all__ = ["LabelGrade", "LabelSelection", "analyze_dataset", "grade_labels", "select_labels"]
