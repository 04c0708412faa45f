"""``ssd inspect-priors``: a recipe's priors as a table and a drawing, and their coverage.

Entry point: :func:`ssdcli.inspect.run.run` (an :class:`~ssdcli.inspect.run.InspectRequest` and
an :class:`~ssdcli.inspect.run.InspectReporter` -> an :class:`~ssdcli.inspect.run.InspectOutcome`).
The priors and their table are :mod:`ssdcli.inspect.priors`; the coverage report (tables,
histogram, suggested priors) is :mod:`ssdcli.inspect.coverage_report`.
"""

from ssdcli.inspect.run import InspectOutcome, InspectReporter, InspectRequest, run

__all__ = ["InspectOutcome", "InspectReporter", "InspectRequest", "run"]
