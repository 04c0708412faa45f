"""``ssd train``: the training loop, its setup, checkpoints of its state, and its log.

Entry point: :func:`ssdcli.train.run.run` (a :class:`~ssdcli.train.run.TrainRequest` and a
reporter -> the :class:`~ssdcli.train.loop.TrainResult`), which names the run folder and calls
:func:`ssdcli.train.loop.fit`. What a run is made of (:mod:`~ssdcli.train.context`:
``TrainParts`` built once, ``LoopState`` advanced by the loop), how it is built
(:mod:`~ssdcli.train.setup`), one step (:mod:`~ssdcli.train.step`), ``last.pt``/``best.pt``
(:mod:`~ssdcli.train.state`), data-parallel helpers and rank detection
(:mod:`~ssdcli.train.distributed`), the optimiser and schedule (:mod:`~ssdcli.train.optim`), EMA,
Ctrl-C, and the run log (:mod:`~ssdcli.train.runlog`).
"""

from ssdcli.train.run import InterruptedAtOnce, TrainReporter, TrainRequest, run

__all__ = ["InterruptedAtOnce", "TrainReporter", "TrainRequest", "run"]
