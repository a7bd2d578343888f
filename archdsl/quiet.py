"""Framework start-up logs kept out of the user's terminal (the CLI; `--debug` keeps them).

While `import tensorflow` runs, its C++ libraries write to file descriptor 2 through absl
before any setting can silence them: "All log messages before absl::InitializeLog() is called
are written to STDERR", oneDNN's "custom operations are on" (twice), cpu_feature_guard's
"This TensorFlow binary is optimized ..." and its list of instructions. `import_tensorflow`
imports it with descriptor 2 redirected to a temporary file and passes on every line that is
not an absl information or warning line (errors go through). It also sets
`TF_CPP_MIN_LOG_LEVEL=2` for what TensorFlow logs later, unless the user set it, and keeps
TensorFlow's, Keras's and absl's Python warnings and log records below errors out.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import tempfile
import warnings

# absl's prefix for information and warning lines (`I0000 00:00:1796423954.716960  14043
# port.cc:153] ...`), its notice before InitializeLog, and cpu_feature_guard's second line.
NOISE = re.compile(r"[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ [\w.-]+:\d+\] "
                   r"|WARNING: All log messages before absl::InitializeLog\(\) is called"
                   r"|To enable the following instructions: .* rebuild TensorFlow")


def import_tensorflow() -> None:
    """Import TensorFlow (and Keras) with its start-up noise filtered out; a no-op once
    imported."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    for module in ("tensorflow", "keras", "absl"):
        warnings.filterwarnings("ignore", module=rf"{module}(\.|$)")
        logging.getLogger(module).setLevel(logging.ERROR)
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().decode(errors="replace").splitlines()
                    if not NOISE.match(line)]
            if kept:
                sys.stderr.write("\n".join(kept) + "\n")
