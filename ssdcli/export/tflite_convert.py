"""The litert-torch conversion, run as a child process by ``write_tflite``.

``python -m ssdcli.export.tflite_convert NETWORK.pt OUT.tflite HEIGHT WIDTH`` loads the pickled
:class:`~ssdcli.export.tflite_file.RawNetwork` and writes the ``.tflite`` file. litert-torch
imports JAX, torchao and their native libraries, and torchao registers itself with torch; in a
child process none of that stays in the process that runs ssdcli (a training, the test suite).
A failure ends with one line ``ssdcli-error: <what>`` on stderr and exit status 1.
"""

from __future__ import annotations

import contextlib
import sys

ERROR_PREFIX = "ssdcli-error: "


def main(argv: list[str]) -> int:
    import torch

    network_path, out, height, width = argv
    try:
        module = torch.load(network_path, weights_only=False).eval()  # our own file, just written
        import litert_torch

        with contextlib.redirect_stdout(sys.stderr), torch.no_grad():  # its progress lines
            edge = litert_torch.convert(module, (torch.zeros(1, 3, int(height), int(width)),))
            edge.export(out)
    except Exception as error:  # the converter raises assorted types; report one line
        first = str(error).splitlines()[0] if str(error) else ""
        print(f"{ERROR_PREFIX}{type(error).__name__}: {first}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
