"""Where the language contract's examples live: `../shared/examples` beside the checkout (or
`/work/shared/examples`, where CI keeps it), or the folder in `ARCHDSL_EXAMPLES`."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_PLACES = ([Path(os.environ["ARCHDSL_EXAMPLES"])] if os.environ.get("ARCHDSL_EXAMPLES") else
           [ROOT.parent / "shared" / "examples", Path("/work/shared/examples")])
EXAMPLES = next((p for p in _PLACES if p.is_dir()), _PLACES[0])
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.arch"))
