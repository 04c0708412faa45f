"""Suite-wide test settings.

Hypothesis searches with fresh random examples locally; ``HYPOTHESIS_PROFILE=ci`` (set by
``.ci/run``) derandomises it, so a CI verdict depends on the code alone and can be reproduced.
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
