"""``ssd train``: the training loop, its setup, checkpoints of its state, and its log.

Entry point: :func:`ssdcli.train.loop.fit`. What a run is made of (:mod:`~ssdcli.train.context`:
``TrainParts`` built once, ``LoopState`` advanced by the loop), how it is built
(:mod:`~ssdcli.train.setup`), one step (:mod:`~ssdcli.train.step`), ``last.pt``/``best.pt``
(:mod:`~ssdcli.train.state`), data-parallel helpers (:mod:`~ssdcli.train.distributed`), the
optimiser and schedule (:mod:`~ssdcli.train.optim`), EMA, Ctrl-C, and the run log
(:mod:`~ssdcli.train.runlog`).
"""
