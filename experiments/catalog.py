"""Every experiment of the paper, in the order the report and ``reproduce`` list them.

Importing this module registers each experiment's spec with :mod:`grokjax.registry` and puts
them in ``NAMES`` order; this is the one place that names them. Importing it needs no JAX
(the experiments import JAX only when they run).
"""

from experiments import (
    critical_norm,
    delay_sweep,
    dense_rho,
    log_delay,
    lr_matrix,
    norm_controls,
    parity,
    transformer,
)
from grokjax import registry

# the report's and reproduce's order (a module imported earlier registered earlier)
NAMES = tuple(
    m.SPEC.name
    for m in (
        delay_sweep,
        critical_norm,
        lr_matrix,
        dense_rho,
        norm_controls,
        log_delay,
        transformer,
        parity,
    )
)
registry.reorder(NAMES)
