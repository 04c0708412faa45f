"""``ssd benchmark``: one checkpoint exported to every deployment format, each file verified, then
timed and scored side by side with the eager checkpoint and torchvision's model.

* :mod:`ssdcli.benchmark.run`: :func:`~ssdcli.benchmark.run.run` (a
  :class:`~ssdcli.benchmark.run.BenchRequest` and a reporter), the entry point;
* :mod:`ssdcli.benchmark.formats`: which formats exist and whether their packages are installed;
* :mod:`ssdcli.benchmark.timing`: milliseconds per image of a predictor;
* :mod:`ssdcli.benchmark.torchvision_twin`: torchvision's SSD with the checkpoint's weights;
* :mod:`ssdcli.benchmark.agreement`: whether two implementations give the same detections;
* :mod:`ssdcli.benchmark.table`: the rows as JSON and CSV.
"""

from ssdcli.benchmark.run import BenchRequest, run

__all__ = ["BenchRequest", "run"]
