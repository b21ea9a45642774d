"""grokjax: the weight-norm grokking delay law as a batched JAX experiment.

The public pieces most users want:

* ``grokjax.clamp_norm`` -- an optax transform that pins the global weight norm;
* ``grokjax.global_norm`` / ``grokjax.weight_matrices`` -- the norm it pins and reports;
* ``grokjax.engine`` -- the lane engine (``Engine``: one jitted, chunked program over lanes),
  over the pure per-lane functions of ``grokjax.lane``;
* ``grokjax.fit`` -- the fitting module (numpy/scipy only: importable without JAX).

The clamp names are resolved lazily so that ``import grokjax.fit`` does not import JAX.
"""

__all__ = ["ClampNormState", "clamp_norm", "global_norm", "weight_matrices"]
__version__ = "0.1.0"


def __getattr__(name):
    if name in __all__:
        from grokjax import optim

        return getattr(optim, name)
    raise AttributeError(f"module 'grokjax' has no attribute {name!r}")
