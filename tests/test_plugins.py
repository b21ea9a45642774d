"""A model and a task defined here, registered and run through the real engine: adding either
touches this one file (issue 24 item 2)."""

import os

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
    try:
        with pytest.raises(ValueError, match="written for other lanes"):
            api.run("delay_sweep", "tiny", out=out, progress=False, **kw)
    finally:
        tasks.register("sq_sum", tasks.Modular(lambda a, b, p: (a * a + b * b) % p))


def test_a_plugin_digest_follows_what_it_computes_and_shipped_plugins_have_none(tmp_path):
    """What run fingerprints carry for a plug-in of the user's: the same code gives the same
    digest, in another process too (a notebook cell run again); an edit to the model at any
    depth, to an initializer or to the task gives another; shipped plug-ins add nothing, so the
    fingerprints of existing run directories are unchanged."""
    import subprocess
    import sys

    def fingerprint(model, task):
        models.register("probe", model)
        tasks.register("probe_t", task)
        try:
            st = lane.Static(model=models.ModelSpec(kind="probe", p=7, d=4, hidden=8), op="probe_t")
            return lane.static_fingerprint(st)
        finally:
            del models._REGISTRY["probe"], tasks._REGISTRY["probe_t"]

    class Inner(nn.Module):
        scale: float

        @nn.compact
        def __call__(self, x):
            return nn.Dense(8, name="k")(x) * self.scale

    class Outer(nn.Module):
        classes: int
        scale: float = 1.0
        std: float = 0.02

        @nn.compact
        def __call__(self, ab):
            e = nn.Embed(7, 4, embedding_init=nn.initializers.normal(self.std))(ab)
            h = Inner(self.scale)(e.reshape(len(ab), -1))
            return nn.Dense(self.classes)(nn.gelu(h))

    def flax(**kw):
        return models.Flax(lambda spec, c: Outer(c, **kw))

    sq = tasks.Modular(lambda a, b, p: (a * a + b * b) % p)
    base = fingerprint(flax(), sq)
    assert "behaviour=" in base and fingerprint(flax(), sq) == base
    others = [
        fingerprint(flax(scale=2.0), sq),  # a module two levels down
        fingerprint(flax(std=0.05), sq),  # an initializer's argument
        fingerprint(flax(), tasks.Modular(lambda a, b, p: (a * a + 2 * b * b) % p)),  # the task
    ]
    assert len({base, *others}) == 4
    # shipped plug-ins add nothing: the text of every existing run directory's fingerprint
    assert models.shipped("mlp") and tasks.shipped("add") and not models.shipped("ln_mlp")
    assert "behaviour=" not in lane.static_fingerprint(lane.Static())
    # another process, another hash seed: the same digest
    code = (
        "import flax.linen as nn\n"
        "from grokjax import lane, models, tasks\n"
        "class M(nn.Module):\n"
        "    classes: int\n"
        "    @nn.compact\n"
        "    def __call__(self, ab):\n"
        "        return nn.Dense(self.classes)(nn.Embed(7, 4)(ab).reshape(len(ab), -1))\n"
        "models.register('m', models.Flax(lambda s, c: M(c)))\n"
        "tasks.register('t', tasks.Modular(lambda a, b, p: (a * b + 1) % p))\n"
        "st = lane.Static(model=models.ModelSpec(kind='m', p=7, d=4, hidden=8), op='t')\n"
        "print(lane.behaviour_digest(st))\n"
    )
    got = {
        subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed, "JAX_PLATFORMS": "cpu"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(got) == 1 and len(next(iter(got))) == 16
