"""Checking an exported file against the eager model, in two separate questions.

1. Does the exported *network* compute what the checkpoint computes? The file's inputs
   (preprocessed as its metadata describes: size, mean/std, channel order) are compared with the
   checkpoint's, then its head outputs (:mod:`~ssdcli.export.verify.heads`) with the eager
   model's, within a tolerance relative to their magnitude. Wrong normalisation, swapped channels
   or a broken network fail here.
2. Does the exported *post-processing* give the checkpoint's detections where the result is
   determined? Scores that nearly tie with each other or with a cut-off (threshold, per-class
   top-k, per-image top-k) make decisions that float32 rounding can flip, and a barely trained
   model has thousands of them. :mod:`~ssdcli.export.verify.determined` replays the decisions on
   the eager outputs and sets those candidates aside; every determined detection must be in the
   file's output, and the file must output nothing the checkpoint surely drops. Wrong priors,
   variances, NMS IoU or a broken NMS fail here.

One job per module:

* :mod:`~ssdcli.export.verify.samples`: the pictures checked (a manifest's, else generated ones);
* :mod:`~ssdcli.export.verify.tolerance`: the accepted differences (:data:`FLOAT32`,
  :data:`FLOAT16`);
* :mod:`~ssdcli.export.verify.heads`: the head outputs of an exported file, whatever its form;
* :mod:`~ssdcli.export.verify.determined`: the checkpoint's candidates and the near-tie rules;
* :mod:`~ssdcli.export.verify.matching`: detections as arrays and the one greedy pairing;
* :mod:`~ssdcli.export.verify.check`: :func:`verify_export`, the comparison itself;
* :mod:`~ssdcli.export.verify.diagnosis`: the phrases naming the likely cause of a failure;
* :mod:`~ssdcli.export.verify.report`: :class:`VerifyReport`, what was found.
"""

from __future__ import annotations

from ssdcli.export.verify.check import verify_export
from ssdcli.export.verify.report import VerifyReport
from ssdcli.export.verify.samples import sample_images
from ssdcli.export.verify.tolerance import FLOAT16, FLOAT32, Tolerance

__all__ = ["FLOAT16", "FLOAT32", "Tolerance", "VerifyReport", "sample_images", "verify_export"]
