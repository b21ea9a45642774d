"""What a task plug-in is: ``TaskPlugin``, what the lane engine asks of a task (its checks,
class count, per-lane train/test rows and a memory estimate), all read from the ``Static`` of
a program (``static.model.p`` is the task's size: the modulus, or the number of bits)."""

from __future__ import annotations

from typing import Callable


class TaskPlugin:
    """A task the lane engine can train on. Subclass it and register an instance with
    ``grokjax.tasks.register(name, plugin)``; ``Static(op=name, ...)`` then selects it.

    ``inputs`` is what a row is: ``"pairs"`` (int operand pairs [.., 2], what the mlp and attn
    models read) or ``"vector"`` (float vectors [.., n], the bits model). ``fields`` names the
    ``Static`` fields the task reads beyond ``model.p`` and ``frac``: the run fingerprint of a
    task leaves out the fields only other tasks read."""

    inputs = "pairs"
    fields: tuple = ()

    def validate(self, static) -> None:
        """ValueError (one line) for an impossible task."""

    def num_classes(self, static) -> int:
        raise NotImplementedError

    def lane_data(self, static) -> Callable:
        """``split_key -> (x_train, y_train, x_test, y_test)``: one lane's rows, deterministic
        in the key, with static shapes (jit/vmap safe; one program serves every seed)."""
        raise NotImplementedError

    def example(self, static):
        """One input row (traces the model at init)."""
        raise NotImplementedError

    def memory(self, static) -> dict:
        """The sizes of ``memory.lane_bytes``: n_rows, n_train, n_inputs, n_classes and table
        (bytes of data shared by every lane)."""
        raise NotImplementedError
