"""Data sets: readers, the manifest, synthetic data, augmentation, Dataset and loading.

Import from the submodules (this package imports nothing, so numpy-only users never load torch):

* :mod:`ssdcli.data.records`: ``Record``, ``Problem``, ``Manifest`` (``save``/``load``).
* :mod:`ssdcli.data.manifest`: ``read_dataset``, ``build_manifest`` (from the recipe's ``data``),
  ``prepare_synthetic``, ``relabel``.
* :mod:`ssdcli.data.voc`, :mod:`ssdcli.data.coco`, :mod:`ssdcli.data.yolo`: the readers.
* :mod:`ssdcli.data.validate`: the box rules and problem log; :mod:`ssdcli.data.stats`: summaries.
* :mod:`ssdcli.data.synthetic`: ``render_sample``, ``write_synthetic``, ``ensure_synthetic``.
* :mod:`ssdcli.data.images`: ``read_image_rgb``, ``image_size_hw``.
* :mod:`ssdcli.data.transforms`: ``augment_ssd``, ``preprocess_image``, ``normalize_image``.
* :mod:`ssdcli.data.dataset`, :mod:`ssdcli.data.collate`, :mod:`ssdcli.data.loader` (torch):
  ``DetectionDataset``, ``Batch``/``collate``, ``build_dataset``/``build_loader``.
"""
