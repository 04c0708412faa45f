"""Prior coverage of a data set: how well priors can match its ground truths, and better priors.

* :mod:`ssdcli.coverage.measure`: the best IoU of every ground truth with any prior.
* :mod:`ssdcli.coverage.suggest`: a search for prior sizes and aspect ratios that cover more.

Used by ``ssd inspect-priors --data/--suggest`` (reports in :mod:`ssdcli.inspect.coverage_report`).
"""
