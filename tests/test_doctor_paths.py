"""``fc.shorten_paths``: a doctor report without this machine's absolute paths (08 stores one)."""

from __future__ import annotations

import re

from fashion_course.doctor import shorten_paths

REPORT = """[  ok] python        3.11.7 (/srv/course/.venv/bin/python)
[  ok] data          from the repository's data/ folder (/home/ann/course/data), in /home/ann/course/data
[  ok] data          Fashion-MNIST from FASHION_COURSE_DATA (/usr/share/datasets/fashion-mnist)
[  ok] data folder   /home/ann/other/data is writable
[  ok] torch         2.14.1+cu130 (CUDA build, torch.version.cuda = 13.0), 2 of 2 CPU threads"""


def test_known_places_become_names_and_other_paths_lose_their_folders():
    short = shorten_paths(REPORT, repository="/home/ann/course", environment="/srv/course/.venv",
                          home="/home/ann")
    lines = short.splitlines()
    assert lines[0] == "[  ok] python        3.11.7 (<python env>/bin/python)"
    assert "folder (<repository>/data), in <repository>/data" in lines[1]
    assert lines[2].endswith("FASHION_COURSE_DATA (.../fashion-mnist)")
    assert lines[3] == "[  ok] data folder   ~/other/data is writable"
    assert lines[4] == REPORT.splitlines()[4]        # versions and words stay as they are
    assert not re.search(r"(?<![\w.~>])/(home|srv|usr)\b", short)


def test_a_place_is_not_matched_inside_a_longer_name():
    short = shorten_paths("in /home/ann/course2/data", repository="/home/ann/course",
                          environment="/nowhere", home="/elsewhere")
    assert short == "in .../data"


def test_the_environment_inside_the_repository_is_named_as_the_environment():
    short = shorten_paths("(/home/ann/course/.venv/bin/python) /home/ann/course/data",
                          repository="/home/ann/course", environment="/home/ann/course/.venv",
                          home="/home/ann")
    assert short == "(<python env>/bin/python) <repository>/data"
