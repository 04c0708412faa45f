"""Suite-wide test settings.

Hypothesis searches with fresh random examples locally; ``HYPOTHESIS_PROFILE=ci`` (set by
``.ci/run``) derandomises it, so a CI verdict depends on the code alone and can be reproduced.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items) -> None:
    """Tests that load OpenVINO run last.

    With OpenVINO's runtime loaded in the process, a later torch training in the same process
    (tests/train) ended in a segmentation fault here (openvino 2026.4.1, torch 2.14.1, AMD EPYC;
    reproduced by ``pytest tests/export/test_openvino.py tests/train/test_loop.py``). ssdcli never
    trains and exports in one process; only the suite does, so those tests go to the end.
    """
    late = [item for item in items if "openvino" in item.nodeid.lower()]
    if late:
        keep = [item for item in items if "openvino" not in item.nodeid.lower()]
        items[:] = keep + late
