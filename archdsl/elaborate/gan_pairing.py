"""Whether a gan's generator and discriminator fit each other."""

from __future__ import annotations

from archdsl.diagnostics import Loc, Note, Problem
from archdsl.graph import (
    FLOAT_DTYPES,
    Graph,
    TensorType,
)
from archdsl.symbolic import (
    Dim,
    format_dim,
    symbol_name,
)


def check_gan_pairing(gen: Graph, disc: Graph, gen_loc: Loc, disc_loc: Loc,
                      latent: bool = True) -> list[str]:
    """The generator's output type must be the discriminator's input type, the
    discriminator must give one score per example ([B, 1] or [B]), and both must take the same
    conditions: the generator's inputs after its latent (all of them without one) and the
    discriminator's after its sample, by name and type. Returns the conditions' names."""
    other = [Note(message="the discriminator", loc=disc_loc)]
    if len(gen.outputs) != 1 or not disc.inputs:
        raise Problem("E0603", "a gan needs a generator with one output and a discriminator "
                      "with an input", loc=gen_loc,
                      label=f"generator outputs {len(gen.outputs)}, discriminator inputs "
                            f"{len(disc.inputs)}", notes=other)
    if not gen.inputs:
        raise Problem("E0603", "the generator has no input to generate from", loc=gen_loc,
                      label="it declares no `input`", notes=other,
                      hint="declare its latent first: `input z: [B, nz]`")
    if latent:
        z = gen.nodes[gen.inputs[0]].type
        if z.dtype not in FLOAT_DTYPES:
            raise Problem("E0603", "the generator's first input is its latent, drawn from "
                          "N(0, 1)", loc=gen_loc,
                          label=f"`{gen.input_names[0]}` is {z.dtype}{z}", notes=other,
                          hint="declare the latent first and the condition after it, or say "
                               "`latent = false` in the gan")
    binding: dict[str, Dim] = {}
    out = gen.nodes[gen.outputs[0]].type
    inp = disc.nodes[disc.inputs[0]].type
    if not _fits(inp, out, binding):
        raise Problem("E0603", "the generator's output does not fit the discriminator",
                      loc=gen_loc, label=f"the generator makes {out.dtype}{out}",
                      notes=[Note(message=f"the discriminator takes {inp.dtype}{inp}",
                                  loc=disc_loc)])
    g_conds = _named_types(gen, 1 if latent else 0)
    d_conds = _named_types(disc, 1)
    for name in [*g_conds, *(n for n in d_conds if n not in g_conds)]:
        if name not in d_conds or name not in g_conds:
            side, missing = ("generator", "discriminator") if name in g_conds else \
                ("discriminator", "generator")
            raise Problem("E0603", f"the {side}'s condition `{name}` is not an input of the "
                          f"{missing}", loc=gen_loc,
                          label=f"generator conditions: {_show_inputs(g_conds)}",
                          notes=[Note(message=f"discriminator conditions (after its sample): "
                                              f"{_show_inputs(d_conds)}", loc=disc_loc)],
                          hint="a condition (a label, a source image) goes to both models "
                               "under one name")
        if not _fits(d_conds[name], g_conds[name], binding):
            g, d = g_conds[name], d_conds[name]
            raise Problem("E0603", f"the condition `{name}` has another type in each model",
                          loc=gen_loc, label=f"the generator takes {g.dtype}{g}",
                          notes=[Note(message=f"the discriminator takes {d.dtype}{d}",
                                      loc=disc_loc)])
    score = disc.nodes[disc.outputs[0]].type
    batch = inp.shape[0]
    if not (score.rank in (1, 2) and score.shape[0] == batch and
            (score.rank == 1 or score.shape[1] == 1)):
        raise Problem("E0603", "the discriminator must give one score per example",
                      loc=disc_loc, label=f"it gives {score}, expected [{format_dim(batch)}, 1] "
                      f"or [{format_dim(batch)}]")
    return list(g_conds)


def _fits(want: TensorType, have: TensorType, binding: dict[str, Dim]) -> bool:
    """`have` (a generator's type) is `want` (the discriminator's), the discriminator's
    symbols binding to the generator's dimensions consistently across calls."""
    if want.rank != have.rank or want.dtype != have.dtype:
        return False
    for w, h in zip(want.shape, have.shape, strict=True):
        name = symbol_name(w)
        if name is not None:
            if binding.setdefault(name, h) != h:
                return False
        elif w != h:
            return False
    return True


def _named_types(g: Graph, skip: int) -> dict[str, TensorType]:
    return {n: g.nodes[i].type for n, i in zip(g.input_names[skip:], g.inputs[skip:],
                                                strict=True)}


def _show_inputs(types: dict[str, TensorType]) -> str:
    return ", ".join(f"{n}: {t.dtype}{t}" for n, t in types.items()) or "none"

