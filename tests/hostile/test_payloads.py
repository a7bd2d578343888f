"""No spec text becomes code: payloads placed wherever spec text can reach a generated module.

Each payload goes into every slot of a few spec templates: names (model, block, parameter,
input, output, variable, loop variable, constant, bound layer, keyword argument) and text
(string parameters and arguments, constants, assertion messages, `train` strings, comments,
import paths, file names). Each spec is either refused with a located `SpecError`, or it
compiles in all three backends; then one subprocess per backend imports every generated
module and instantiates its model. The string payloads try to create a canary file; it must
not exist afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from diagnostic_checks import assert_located, compile_or_refuse

import archdsl
from archdsl.api import TRAINABLE
from archdsl.backends.numpy.generator import render as render_numpy
from archdsl.backends.tensorflow.generator import render as render_tf
from archdsl.backends.torch.generator import render

CANARY = "archdsl_canary"

# Text that tries to leave a string, a comment or a docstring, or to run a template.
TEXT_PAYLOADS = [
    f"__import__('os').system('touch {CANARY}')",
    f"'; __import__('os').system('touch {CANARY}'); '",
    f'"; __import__("os").system("touch {CANARY}"); "',
    f'x"""+__import__("os").system("touch {CANARY}")+"""',
    f"x'''+__import__('os').system('touch {CANARY}')+'''",
    f"\n__import__('os').system('touch {CANARY}')\n#",
    f"\r__import__('os').system('touch {CANARY}')\r#",
    f"\\\n__import__('os').system('touch {CANARY}')",
    f"\\\"\"\"+open('{CANARY}','w').close()+\"\"\"\\",
    f"{{{{ cycler.__init__.__globals__.os.system('touch {CANARY}') }}}}",
    f"{{% for x in [1] %}}{{{{ lipsum.__globals__.os.popen('touch {CANARY}') }}}}{{% endfor %}}",
    f"{{# #}}}}{{{{ __import__('os').system('touch {CANARY}') }}}}",
    f"# \\u0027 \\x27 \\N{{APOSTROPHE}}+open('{CANARY}','w')#",
    f"\u202e'; open('{CANARY}', 'w') #\u202c",
    f"\u2028open('{CANARY}','w')\u2029\x85\x0c",
    f"😀 é \t{CANARY}",
    "",
]

# Names Python, the backends' frameworks or the generated modules themselves use.
NAME_PAYLOADS = [
    "__import__", "eval", "open", "super", "type", "match", "_", "self", "torch", "nn", "F",
    "math", "np", "keras", "tf", "Module", "build", "forward", "call", "dims", "d_x", "_g0",
    "kwargs", "training",
]

# Where a payload can go, with `@` marking the slot; a `{P}` payload goes in as written
# (names, comments), a `"S"` one as a spec string literal.
NAME_SLOTS = {
    "model name": "model @ {\n    input x: [B, 4]\n    output y = x |> Linear(4)\n}\n",
    "block name": "block @(n: int) {\n    input x: [B, n]\n    output y = x |> Linear(n)\n}\n"
                  "model Net {\n    input x: [B, 4]\n    output y = x |> @(4)\n}\n",
    "model parameter": "model Net(@: int = 4) {\n    input x: [B, @]\n"
                       "    output y = x |> Linear(@)\n}\n",
    "block parameter": "block Blk(@: int) {\n    input x: [B, 4]\n    output y = x |> Linear(@)\n"
                       "}\nmodel Net {\n    input x: [B, 4]\n    output y = x |> Blk(4)\n}\n",
    "input": "model Net {\n    input @: [B, 4]\n    output y = @ |> Linear(4)\n}\n",
    "block input": "block Blk {\n    input @: [B, 4]\n    output y = @ |> Linear(4)\n}\n"
                   "model Net {\n    input x: [B, 4]\n    output y = x |> Blk\n}\n",
    "output": "model Net {\n    input x: [B, 4]\n    output @ = x |> Linear(4)\n}\n",
    "block output": "block Blk {\n    input x: [B, 4]\n    output @ = x |> Linear(4)\n}\n"
                    "model Net {\n    input x: [B, 4]\n    output y = x |> Blk\n}\n",
    "variable": "model Net {\n    input x: [B, 4]\n    @ = x |> Linear(4)\n"
                "    output y = @ + x\n}\n",
    "bound layer": "model Net {\n    input x: [B, 4]\n    @ = Linear(4)\n"
                   "    output y = x |> @ |> @\n}\n",
    "loop variable": "model Net {\n    input x: [B, 4]\n    for @ in range(2) {\n"
                     "        x = x |> Linear(4)\n    }\n    output y = x\n}\n",
    "constant": "const @ = 4\nmodel Net {\n    input x: [B, @]\n    output y = x |> Linear(@)\n}\n",
    "symbolic dimension": "model Net {\n    input x: [@, 4]\n    output y = x |> Linear(4)\n}\n",
    "keyword argument": "model Net {\n    input x: [B, 4]\n"
                        "    output y = x |> Linear(4, @=true)\n}\n",
    "comment": "# @\nmodel Net { # @\n    input x: [B, 4]  # @\n"
               "    output y = x |> Linear(4)  # @\n}\n",
}
TEXT_SLOTS = {
    "model string parameter": 'model Net(tag: str = "@") {\n    input x: [B, 4]\n'
                              '    output y = if tag == "a" then x else x |> Linear(4)\n}\n',
    "block string argument": 'block Blk(tag: str) {\n    input x: [B, 4]\n'
                             '    output y = if tag == "a" then x else x |> Linear(4)\n}\n'
                             'model Net {\n    input x: [B, 4]\n    output y = x |> Blk("@")\n}\n',
    "string constant": 'const S = "@"\nblock Blk(tag: str) {\n    input x: [B, 4]\n'
                       "    output y = x |> Linear(4)\n}\n"
                       "model Net {\n    input x: [B, 4]\n    output y = x |> Blk(S)\n}\n",
    "assertion message": 'model Net {\n    input x: [B, 4]\n    assert 1 > 0, "@"\n'
                         "    output y = x |> Linear(4)\n}\n",
    "layer argument": 'model Net {\n    input x: [B, 4]\n    output y = x |> GELU("@")\n}\n',
    "train loss": 'model Net {\n    input x: [B, 4]\n    output y = x |> Linear(4)\n'
                  '    train {\n        loss = "@"\n    }\n}\n',
    "import path": 'import "@"\nmodel Net {\n    input x: [B, 4]\n'
                   "    output y = x |> Linear(4)\n}\n",
}


def spec_string(text: str) -> str:
    """`text` as the body of a spec string literal."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


GAN_LIB = ("model G {\n    input z: [B, 4]\n    output x = z |> Linear(4)\n}\n"
           "model D {\n    input x: [B, 4]\n    output s = x |> Linear(1)\n}\n")
GAN = "import \"@\"\ngan Pair {\n    generator = G\n    discriminator = D\n}\n"
MODEL = "model Net {\n    input x: [B, 4]\n    output y = x |> Linear(4)\n}\n"


def cases() -> list[tuple[str, str, dict[str, str]]]:
    """(case, the file to load, {file name: text} to write first)."""
    out = []
    for slot, template in NAME_SLOTS.items():
        for p in NAME_PAYLOADS + TEXT_PAYLOADS:
            out.append((f"{slot}: {p!r}", template.replace("@", p)))
    for slot, template in TEXT_SLOTS.items():
        for p in TEXT_PAYLOADS:
            out.append((f"{slot}: {p!r}", template.replace("@", spec_string(p))))
            out.append((f"{slot} (raw): {p!r}", template.replace("@", p)))
    files = [(case, f"case_{k}.arch", {f"case_{k}.arch": text})
             for k, (case, text) in enumerate(out)]
    for k, p in enumerate(TEXT_PAYLOADS):
        if p and "/" not in p:  # a file name cannot hold `/`
            files.append((f"file name: {p!r}", f"{p}.arch", {f"{p}.arch": MODEL}))
            files.append((f"imported file name: {p!r}", f"gan_{k}.arch",
                          {f"{p}.arch": GAN_LIB,
                           f"gan_{k}.arch": GAN.replace("@", spec_string(p + ".arch"))}))
    return files


def _compile_all(path: str) -> dict[str, tuple[str, str]] | None:
    """{backend: (source, what to call to instantiate)}, or None if the spec is refused (with
    a located error: `compile_or_refuse` checks it)."""
    text = Path(path).read_bytes()
    try:
        program = archdsl.load(path)
        graph = program.graph()
    except archdsl.SpecError as err:
        assert_located(err, text)
        return None
    out = {}
    for backend in TRAINABLE:
        source = compile_or_refuse(program, backend, text)
        if source is None:
            return None
        entry = {"torch": lambda: render(graph)[1], "tensorflow": lambda: render_tf(graph)[1],
                 "numpy": lambda: render_numpy(graph)[1][0]}[backend]()
        out[backend] = (source, entry)
    return out


INSTANTIATE = """
import importlib.util, json, sys
failures = []
for path, entry in json.loads(sys.argv[1]):
    try:
        spec = importlib.util.spec_from_file_location("generated", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        getattr(module, entry)()
    except Exception as exc:
        failures.append(f"{path}: {exc!r}")
print(json.dumps(failures))
"""


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Compile every case (checking each refusal as it comes) in a folder of its own, and
    write each distinct generated module to `<folder>/<backend>/`."""
    folder = tmp_path_factory.mktemp("payloads")
    refused, compiled = [], {b: [] for b in TRAINABLE}
    old = os.getcwd()
    os.chdir(folder)  # payloads that ran would create the canary here
    try:
        for case, path, files in cases():
            for name, text in files.items():
                (folder / name).write_text(text, encoding="utf-8")
            result = _compile_all(path)
            if result is None:
                refused.append(case)
                continue
            for backend, (source, entry) in result.items():
                module = folder / backend / f"{hashlib.sha256(source.encode()).hexdigest()}.py"
                if not module.exists():  # many payloads give the same module: import it once
                    module.parent.mkdir(exist_ok=True)
                    module.write_text(source, encoding="utf-8")
                    compiled[backend].append((case, str(module), entry))
    finally:
        os.chdir(old)
    return {"folder": folder, "refused": refused, "compiled": compiled}


def test_compiling_runs_no_payload(outcomes: dict) -> None:
    assert outcomes["refused"], "every payload compiled: the refusals went untested"
    assert not (outcomes["folder"] / CANARY).exists()


@pytest.mark.parametrize("backend", TRAINABLE)
def test_generated_modules_import_without_running_payloads(outcomes: dict, backend: str
                                                            ) -> None:
    folder = outcomes["folder"]
    compiled = outcomes["compiled"][backend]
    assert compiled, "no payload spec compiled: the test would prove nothing"
    jobs = json.dumps([[path, entry] for _, path, entry in compiled])
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    run = subprocess.run([sys.executable, "-c", INSTANTIATE, jobs], cwd=folder / backend,
                         env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    failures = json.loads(run.stdout.splitlines()[-1])
    cases = {path: case for case, path, _ in compiled}
    assert not failures, "\n".join(f"{cases[f.split(':')[0]]}: {f}" for f in failures)
    assert not (folder / backend / CANARY).exists()
