"""grokjax: the weight-norm grokking delay law as a batched JAX experiment.

The public pieces most users want:

* ``grokjax.clamp_norm`` -- an optax transform that pins the global weight norm;
* ``grokjax.global_norm`` / ``grokjax.weight_matrices`` -- the norm it pins and reports;
* ``grokjax.engine`` -- the vmapped lane engine; ``grokjax.fit`` -- the fitting module.
"""

from grokjax.optim import ClampNormState, clamp_norm, global_norm, weight_matrices

__all__ = ["ClampNormState", "clamp_norm", "global_norm", "weight_matrices"]
__version__ = "0.1.0"
