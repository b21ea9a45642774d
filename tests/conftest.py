import os

# Tests run on the CPU whatever the machine has; keep XLA to the cores CI gives us.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
