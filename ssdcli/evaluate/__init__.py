"""``ssd eval``: a checkpoint on a data split -> VOC07, VOC area and COCO AP, PR curves.

Entry point: :func:`ssdcli.evaluate.run.run_evaluation`. :func:`ssdcli.evaluate.evaluator.
evaluate_detector` is what training calls on its validation split.
"""
