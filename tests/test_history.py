"""The training logs in Backup/: appended in place, so long runs stay flat in memory and I/O."""

from __future__ import annotations

import numpy as np
import pytest

from elektronn.train.history import History, append_rows_npy, load_history


def timeline_rows(first: int, n: int) -> list[tuple[float, ...]]:
    return [(i, 0.1 * i, 1.0 / (i + 1), 2.0 / (i + 1), 0.5) for i in range(first, first + n)]


def add_all(history: History, rows) -> None:
    for row in rows:
        history.add("timeline", *row)


def test_rows_saved_in_several_backups_read_back_complete_and_in_order(tmp_path):
    history = History()
    written = []
    for block in range(4):  # counts cross 10 and 100: the header's row count gets digits
        rows = timeline_rows(len(written), [7, 5, 90, 3][block])
        add_all(history, rows)
        written += rows
        history.save(tmp_path, "run")
        np.testing.assert_array_equal(np.load(tmp_path / "run.timeline.npy"), written)
    assert history.count("timeline") == len(written) == 105
    np.testing.assert_array_equal(history.last("timeline"), written[-1])


def test_a_save_writes_only_the_new_rows(tmp_path, monkeypatch):
    history = History()
    add_all(history, timeline_rows(0, 1000))
    history.save(tmp_path, "run")
    add_all(history, timeline_rows(1000, 2))
    written = []
    real_open = open

    def recording_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        if "b" in mode and ("+" in mode or "w" in mode):
            real_write = f.write
            f.write = lambda data: written.append(len(data)) or real_write(data)
        return f

    monkeypatch.setattr("builtins.open", recording_open)
    history.save(tmp_path, "run")
    assert sum(written) < 1000  # two rows (80 bytes) and the header, not 1002 rows
    assert len(np.load(tmp_path / "run.timeline.npy")) == 1002


def test_a_new_run_replaces_the_logs_of_an_earlier_run_in_the_same_folder(tmp_path):
    old = History()
    add_all(old, timeline_rows(0, 50))
    old.save(tmp_path, "run")
    new = History()
    add_all(new, timeline_rows(0, 3))
    new.save(tmp_path, "run")
    assert len(np.load(tmp_path / "run.timeline.npy")) == 3


def test_a_kill_between_rows_and_row_count_leaves_the_previous_log(tmp_path):
    history = History()
    add_all(history, timeline_rows(0, 10))
    history.save(tmp_path, "run")
    path = tmp_path / "run.timeline.npy"
    with open(path, "ab") as f:  # what an append killed before its header update leaves
        f.write(np.ones((3, 5)).tobytes()[:100])
    np.testing.assert_array_equal(np.load(path), timeline_rows(0, 10))
    add_all(history, timeline_rows(10, 1))
    history.save(tmp_path, "run")
    np.testing.assert_array_equal(np.load(path), timeline_rows(0, 11))


def test_resume_keeps_rows_before_the_checkpoint_and_drops_later_ones_on_disk(tmp_path):
    history = History()
    add_all(history, timeline_rows(0, 30))
    history.add("CGtimeline", 1.0, 0.5, 0.1, 3)
    history.add("CGtimeline", 0.9, 0.5, 0.2, 2)
    history.save(tmp_path, "run")
    resumed = History()
    resumed.load(tmp_path, "run", before_step=20, cg_rows=1)
    assert resumed.count("timeline") == 20 and resumed.count("CGtimeline") == 1
    np.testing.assert_array_equal(resumed.last("timeline"), timeline_rows(19, 1)[0])
    add_all(resumed, timeline_rows(20, 2))
    resumed.save(tmp_path, "run")
    logs = load_history(tmp_path, "run")
    np.testing.assert_array_equal(logs["timeline"], timeline_rows(0, 22))
    np.testing.assert_array_equal(logs["CGtimeline"], [(1.0, 0.5, 0.1, 3)])


def test_appending_to_a_file_of_other_columns_is_refused_by_name(tmp_path):
    path = tmp_path / "run.timeline.npy"
    np.save(path, np.zeros((4, 3)))
    with pytest.raises(OSError, match="run.timeline.npy is not this run's log"):
        append_rows_npy(path, np.zeros((1, 5)))
