import jax
import numpy as np
import pytest

from grokjax import data


def test_table_covers_all_pairs_with_correct_labels():
    ab, y = data.make_table(7, "add")
    assert ab.shape == (49, 2) and y.shape == (49,)
    assert len({tuple(r) for r in ab}) == 49
    np.testing.assert_array_equal(y, (ab[:, 0] + ab[:, 1]) % 7)
    ab, y = data.make_table(7, "div")
    assert ab.shape == (42, 2)
    np.testing.assert_array_equal((y * ab[:, 1]) % 7, ab[:, 0])
    ab, y = data.make_table(7, "sub")
    np.testing.assert_array_equal((y + ab[:, 1]) % 7, ab[:, 0])


def test_split_is_deterministic_per_seed_and_partitions_the_table():
    n, n_train = 59 * 59, data.num_train(59, 0.4)
    assert n_train == round(0.4 * n)
    k0, s0 = data.lane_keys(3)
    k1, s1 = data.lane_keys(3)
    tr0, te0 = data.split_indices(s0, n, n_train)
    tr1, te1 = data.split_indices(s1, n, n_train)
    np.testing.assert_array_equal(tr0, tr1)
    np.testing.assert_array_equal(
        np.asarray(jax.random.key_data(k0)), np.asarray(jax.random.key_data(k1))
    )
    assert sorted(np.concatenate([tr0, te0]).tolist()) == list(range(n))
    _, s2 = data.lane_keys(4)
    tr2, _ = data.split_indices(s2, n, n_train)
    assert not np.array_equal(np.sort(tr0), np.sort(tr2))


@pytest.mark.parametrize(
    "p,op,frac,msg",
    [
        (1, "add", 0.4, "p must be"),
        (9, "div", 0.4, "prime"),
        (7, "add", 0.0, "fraction"),
        (7, "add", 1.0, "fraction"),
        (7, "pow", 0.4, "unknown operation"),
    ],
)
def test_bad_tasks_are_refused(p, op, frac, msg):
    with pytest.raises(ValueError, match=msg):
        data.validate_task(p, op, frac)


def test_one_memory_variable_sets_the_limit_and_the_lane_budget(monkeypatch, capsys):
    from grokjax import memory

    for var in ("GROKJAX_MEMORY", "GROKJAX_MEMORY_LIMIT", "GROKJAX_MEMORY_BUDGET"):
        monkeypatch.delenv(var, raising=False)
    assert memory.device_budget() is None and memory.memory_limit() > 2**20
    monkeypatch.setenv("GROKJAX_MEMORY", "3GiB")
    assert memory.memory_limit() == memory.device_budget() == 3 * 2**30
    with pytest.raises(ValueError, match="more than this machine's 3.0 GiB"):
        memory.check_fits(4 * 2**30, "a lane")
    # the old names: each sets its half, with a deprecation line
    monkeypatch.delenv("GROKJAX_MEMORY")
    monkeypatch.setattr(memory, "_warned", set())
    monkeypatch.setenv("GROKJAX_MEMORY_BUDGET", "512MiB")
    assert memory.device_budget() == 2**29 and memory.memory_limit() != 2**29
    assert "GROKJAX_MEMORY_BUDGET is deprecated; set GROKJAX_MEMORY" in capsys.readouterr().err
