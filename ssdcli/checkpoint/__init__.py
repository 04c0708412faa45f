"""Checkpoint files and starting weights.

* :mod:`ssdcli.checkpoint.file`: atomic ``save_checkpoint``, ``load_checkpoint`` (weights only:
  no pickled code runs), ``load_detector`` (the network a checkpoint's recipe describes).
* :mod:`ssdcli.checkpoint.starting_weights`: ``model.init`` - starting from an ssdcli,
  torchvision or ssd.pytorch file, class head re-made for new classes.
* :mod:`ssdcli.checkpoint.rng`: random-number states for exact resumes.
"""
