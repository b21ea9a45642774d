"""Every experiment of the paper, in the order the report and ``reproduce`` list them.

Importing this module registers each experiment's spec with :mod:`grokjax.registry`; this import
list is the one place that names them. Importing it needs no JAX (the experiments import JAX
only when they run).
"""

from experiments import (  # noqa: F401  (imported for their registration)
    delay_sweep,
    critical_norm,
    lr_matrix,
    dense_rho,
    norm_controls,
    log_delay,
    transformer,
    parity,
)
