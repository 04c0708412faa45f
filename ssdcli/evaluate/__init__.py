"""``ssd eval``: a checkpoint on a data split -> VOC07, VOC area and COCO AP, PR curves.

Entry point: :func:`ssdcli.evaluate.run.run` (an :class:`~ssdcli.evaluate.run.EvalRequest` and a
:class:`~ssdcli.reporting.Reporter` -> an :class:`~ssdcli.evaluate.run.EvalOutcome`).
:func:`ssdcli.evaluate.evaluator.evaluate_detector` is what training calls on its validation split.
"""

from ssdcli.evaluate.run import EvalOutcome, EvalRequest, run

__all__ = ["EvalOutcome", "EvalRequest", "run"]
