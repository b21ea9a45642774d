"""The run directory's lanes.csv reader: renamed columns, and results committed before them."""

import glob
import os

import pytest

from grokjax import results

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write(path, header, row):
    path.write_text(",".join(header) + "\n" + ",".join(row) + "\n")


def test_old_threshold_norm_columns_read_under_their_new_names(tmp_path):
    old = ["lane", "norm_at_grok", "norm_at_grok_80", "norm_at_grok_95", "norm_at_grok_embed"]
    _write(tmp_path / "old.csv", old, ["0", "50.5", "49.0", "51.0", "30.0"])
    got = results.read_lanes_csv(str(tmp_path / "old.csv"))
    assert list(got) == [
        "lane",
        "norm_at_grok",
        "norm_at_test80",
        "norm_at_test95",
        "norm_at_grok_embed",
    ]
    assert got["norm_at_test80"][0] == 49.0 and got["norm_at_test95"][0] == 51.0


def test_a_column_under_both_names_is_refused(tmp_path):
    _write(tmp_path / "both.csv", ["lane", "norm_at_grok_80", "norm_at_test80"], ["0", "1", "2"])
    with pytest.raises(ValueError, match="old and new name"):
        results.read_lanes_csv(str(tmp_path / "both.csv"))


def test_the_writer_uses_the_new_names_only():
    assert "norm_at_test80" in results.LANE_COLUMNS and "norm_at_test95" in results.LANE_COLUMNS
    assert not any(c in results.LANE_COLUMNS for c in results.RENAMED_COLUMNS)


@pytest.mark.parametrize("path", sorted(glob.glob(os.path.join(ROOT, "results", "*", "lanes.csv"))))
def test_committed_results_still_read(path):
    lanes = results.read_lanes_csv(path)
    assert "norm_at_test80" in lanes and "norm_at_grok_80" not in lanes
    assert len(lanes["lane"]) == len(lanes["T_grok"]) > 0
