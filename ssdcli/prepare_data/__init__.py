"""``ssd prepare-data``: validate a data set, report on it, write its ``manifest.json``.

Entry point: :func:`ssdcli.prepare_data.run.run` (a
:class:`~ssdcli.prepare_data.run.PrepareRequest` and a reporter -> a
:class:`~ssdcli.prepare_data.run.PrepareOutcome`); the work itself is :mod:`ssdcli.data`'s.
"""

from ssdcli.prepare_data.run import PrepareOutcome, PrepareReporter, PrepareRequest, run

__all__ = ["PrepareOutcome", "PrepareReporter", "PrepareRequest", "run"]
