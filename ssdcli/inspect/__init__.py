"""``ssd inspect-priors``: a recipe's priors as a table and a drawing, and their coverage.

Entry point: :func:`ssdcli.inspect.priors.run_inspect`; the coverage report (tables, histogram,
suggested priors) is :mod:`ssdcli.inspect.coverage_report`.
"""
