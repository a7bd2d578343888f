"""The backend benchmarks still run: each script, at its tiniest (`--quick`), prints a table
with a numeric ratio per row. The torch one also checks that the generated and hand-written
models agree before it times them, the ONNX one that both exported files compute the same.
No timing is asserted."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"

CASES = [  # script, its options, the rows it must print
    ("torch_vs_handwritten.py", [], ["ResNet-20", "Transformer encoder", "char LSTM"]),
    ("numpy_vs_torch.py", ["--only", "Linear"], ["matmul", "Linear 512->512"]),
    ("keras_vs_handwritten.py", ["--only", "LSTM"], ["char LSTM"]),
    ("editor_recheck.py", [], ["ResNet-50", "GPT-2 small", "seq2seq (imports)"]),
    ("onnx_export.py", [], ["ResNet-50"]),
    ("threads.py", ["--only", "numpy"], ["numpy CNN"]),
]


@pytest.mark.parametrize(("script", "options", "rows"), CASES, ids=[c[0] for c in CASES])
def test_bench_script_prints_a_ratio_per_row(script, options, rows):
    run = subprocess.run([sys.executable, str(BENCH / script), "--quick", *options],
                         capture_output=True, text=True, cwd=BENCH, timeout=300,
                         env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "ratio" in line.split())
    end = lines[header].index("ratio") + len("ratio")  # the columns are right-aligned
    ratios = {name: float(line[:end].split()[-1]) for line in lines[header + 1:]
              for name in rows if line.startswith(name)}
    assert set(ratios) == set(rows), run.stdout
    assert all(r > 0 for r in ratios.values())
