"""A model and a task defined here, registered and run through the real engine: adding either
touches this one file (issue 24 item 2)."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from grokjax import api, lane, models, tasks


class LNMLP(nn.Module):
    """Two-layer MLP with LayerNorm on concatenated token embeddings (flax's own layers)."""

    p: int
    d: int
    hidden: int
    classes: int

    @nn.compact
    def __call__(self, ab_Bx2):
        x_BxE = nn.Embed(self.p, self.d, name="embed")(ab_Bx2).reshape(ab_Bx2.shape[0], -1)
        h_BxH = nn.LayerNorm(name="ln")(nn.Dense(self.hidden, name="hidden")(x_BxE))
        return nn.Dense(self.classes, name="out")(nn.gelu(h_BxH))


@pytest.fixture(scope="module", autouse=True)
def registered():
    models.register("ln_mlp", models.Flax(lambda spec, c: LNMLP(spec.p, spec.d, spec.hidden, c)))
    tasks.register("sq_sum", tasks.Modular(lambda a, b, p: (a * a + b * b) % p))
    yield
    del models._REGISTRY["ln_mlp"], tasks._REGISTRY["sq_sum"]


def test_registered_plugins_build_a_lane_program():
    st = lane.Static(model=models.ModelSpec(kind="ln_mlp", p=7, d=4, hidden=8), op="sq_sum")
    st.validate()
    fns = lane.make_lane_fns(st)
    assert fns.groups == ("embed", "hidden", "ln", "out")
    hp = lane.make_hparams(len(fns.groups), seed=np.array([0]))
    state = jax.vmap(fns.init)(hp)
    # the task's rows: labels (a² + b²) mod 7 over the 49 pairs, split by the seed
    x = np.concatenate([state.data.x_train[0], state.data.x_test[0]])
    y = np.concatenate([state.data.y_train[0], state.data.y_test[0]])
    assert len(x) == 49 and np.array_equal(y, (x[:, 0] ** 2 + x[:, 1] ** 2) % 7)
    # the LayerNorm's scale and bias are not weights: the norm and the decay skip them
    mask = models.get("ln_mlp").weights(jax.tree.map(lambda a: a[0], state.params))
    assert mask["ln"] == {"scale": False, "bias": False} and mask["hidden"]["kernel"]


def test_unknown_or_mismatched_plugins_are_refused():
    with pytest.raises(ValueError, match="unknown model 'nope'.*ln_mlp"):
        models.ModelSpec(kind="nope").validate()
    with pytest.raises(ValueError, match="unknown operation 'nope'.*sq_sum"):
        lane.Static(op="nope").validate()
    with pytest.raises(ValueError, match="needs model kind 'bits'"):
        lane.Static(model=models.ModelSpec(kind="ln_mlp", p=12), op="parity", n_train=9).validate()
    # what is registered must be a plug-in of the right kind, and a model must say its inputs
    with pytest.raises(TypeError, match="a model plug-in is a grokjax.models.ModelPlugin"):
        models.register("t", tasks.get("add"))
    with pytest.raises(TypeError, match="a task plug-in is a grokjax.tasks.TaskPlugin"):
        tasks.register("m", models.get("mlp"))
    odd = models.Flax(lambda spec, classes: None)
    odd.inputs = "pixels"
    with pytest.raises(ValueError, match="model 'odd': inputs must be one of"):
        models.register("odd", odd)
    assert "t" not in models.names() and "m" not in tasks.names() and "odd" not in models.names()


def test_a_sweep_of_a_registered_model_and_task_runs_the_engine(tmp_path):
    kw = dict(model="ln_mlp", op="sq_sum", p=23, d=32, hidden=64, rho=[0.9, 1.1], seeds=2)
    out = str(tmp_path / "run")
    res = api.run("delay_sweep", "tiny", out=out, progress=False, **kw)
    free, clamp = res.select(arm="free"), res.select(arm="clamp")
    assert len(free) == 2 and len(clamp) == 4 and set(res.lanes["model"]) == {"ln_mlp"}
    assert (res.lanes["T_grok"] > res.lanes["T_mem"]).all()  # every lane groks after memorising
    assert "norm_at_grok_ln" in res.lanes  # a column per parameter group of the new model
    wc = res.fit["per_p"]["23"]["Wc"]["median"]
    # clamped lanes held their norm at rho·Wc
    assert np.allclose(res.lanes["norm_at_grok"][clamp], res.lanes["rho"][clamp] * wc, rtol=1e-3)
    assert res.fit["per_p"]["23"]["delay_law"]["alpha"] is not None

    # the run directory resumes while the plug-ins are the same code (here: registered again)
    models.register("ln_mlp", models.Flax(lambda spec, c: LNMLP(spec.p, spec.d, spec.hidden, c)))
    again = api.run("delay_sweep", "tiny", out=out, progress=False, **kw)
    assert np.array_equal(again.lanes["T_grok"], res.lanes["T_grok"])
    # but not over a task that changed under the same name: its lanes would be another task's
    tasks.register("sq_sum", tasks.Modular(lambda a, b, p: (a * a + 2 * b * b) % p))
    with pytest.raises(ValueError, match="written for other lanes"):
        api.run("delay_sweep", "tiny", out=out, progress=False, **kw)
    tasks.register("sq_sum", tasks.Modular(lambda a, b, p: (a * a + b * b) % p))


def test_a_plugin_digest_follows_its_code_and_shipped_plugins_have_none():
    """What run fingerprints carry for a plug-in of the user's: the same source gives the same
    digest (a notebook cell run again), an edit to the plug-in, to the Flax module it builds
    or to data it holds gives another; shipped plug-ins add nothing, so the fingerprints of
    existing run directories are unchanged."""
    from grokjax.plugins import code_digest

    assert models.digest("mlp") is None and tasks.digest("add") is None
    src = (
        "class M(nn.Module):\n"
        "    classes: int\n"
        "    @nn.compact\n"
        "    def __call__(self, x):\n"
        "        return nn.Dense(self.classes)(nn.gelu(x.astype(float)))\n"
        "plugin = models.Flax(lambda spec, c: M(c))\n"
    )

    def digest(text):
        ns = {"nn": nn, "models": models, "__name__": "__main__"}
        exec(compile(text, "<cell>", "exec"), ns)
        return code_digest(ns["plugin"])

    base = digest(src)
    assert digest(src) == base
    edits = [
        src.replace("nn.gelu", "nn.relu"),  # the module's forward pass
        src.replace("M(c)", "M(c + 1)"),  # the plug-in's make
        src.replace("    classes: int\n", "    classes: int\n    bias: bool = False\n"),
    ]
    assert len({base, *map(digest, edits)}) == 4
    table = tasks.Modular(lambda a, b, p: (a * a + b * b) % p)
    table.weights = np.arange(4.0)
    same = tasks.Modular(lambda a, b, p: (a * a + b * b) % p)
    same.weights = np.arange(4.0)
    assert code_digest(table) == code_digest(same)
    same.weights = np.arange(4.0) + 1
    assert code_digest(table) != code_digest(same)
    # a partial's function and arguments are its code too
    import functools

    def make(spec, c, width):
        return None

    one, two = (models.Flax(functools.partial(make, width=w)) for w in (1, 2))
    assert code_digest(one) != code_digest(two)
    # the digest enters the lanes' fingerprint only for a plug-in of the user's
    st = lane.Static(model=models.ModelSpec(kind="ln_mlp", p=7, d=4, hidden=8), op="sq_sum")
    text = lane.static_fingerprint(st)
    assert f"model_code={models.digest('ln_mlp')!r}" in text and "task_code=" in text
    assert "_code=" not in lane.static_fingerprint(lane.Static())
