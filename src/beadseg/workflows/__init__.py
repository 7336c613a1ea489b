"""One function per command, each returning a frozen result: what the CLI and a notebook call.

Every function that writes a folder holds it by the output-folder rule
(:class:`~beadseg.outputs.folder.OutputFolder`): one command and one set of settings per
folder; the same settings resume, others are refused naming the difference (or
``overwrite=True``), so the Python API refuses exactly where ``beadseg`` does.

========================  ==============================  =================================
command                   function                        result
========================  ==============================  =================================
``beadseg synth``         :func:`synth`                   :class:`.data.SynthResult`
``beadseg analyze``       :func:`analyze`                 :class:`.data.AnalyzeResult`
``beadseg fix-masks``     :func:`fix_masks`               :class:`.data.FixMasksResult`
``beadseg train``         :func:`train`                   :class:`.training.TrainResult`
``beadseg lr-find``       :func:`lr_find`                 :class:`.training.LrFindResult`
``beadseg compare``       :func:`compare`                 :class:`.training.CompareResult`
``beadseg cv``            :func:`cv`                      :class:`.cross_validation.CVResult`
``beadseg sweep``         :func:`sweep`                   :class:`.hyperparameter_search.SweepResult`
``beadseg predict``       :func:`predict`                 ``inference.counts.PredictSummary``
``beadseg merge``         :func:`merge`                   ``inference.merge.MergeSummary``
``beadseg evaluate``      :func:`evaluate`                ``evaluation.scores.Evaluation``
``beadseg dilution``      :func:`dilution`                :class:`.inference.DilutionResult`
``beadseg export``        :func:`export`                  :class:`.inference.ExportResult`
``beadseg audit``         :func:`audit`                   :class:`.count_audit.AuditResult`
``beadseg demo``          :func:`demo`                    :class:`.walkthrough.DemoResult`
========================  ==============================  =================================

The names are imported on first use: ``import beadseg.workflows`` loads no torch.
"""

from __future__ import annotations

from ..core.lazy import lazy_names

_WHERE = {
    "synth": "data",
    "analyze": "data",
    "fix_masks": "data",
    "train": "training",
    "lr_find": "training",
    "compare": "training",
    "cv": "cross_validation",
    "sweep": "hyperparameter_search",
    "predict": "inference",
    "merge": "inference",
    "evaluate": "inference",
    "dilution": "inference",
    "export": "inference",
    "audit": "count_audit",
    "demo": "walkthrough",
}

__all__ = sorted(_WHERE)


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
