"""Preparation of the real datasets in ../shared (beside the repository; never copied into it)."""

from __future__ import annotations

import re

import pytest

from livedroid.errors import UserError
from livedroid.training.cli import main
from livedroid.training.dataset.prepare import prepare_dataset

from tests.conftest import SHARED, shared_path

STAR_WARS = SHARED / "datasets" / "star-wars"
RACCOON_RECORD = SHARED / "datasets" / "raccoon" / "data" / "test.record"


@pytest.fixture
def needs_star_wars() -> None:
    shared_path("datasets/star-wars")


@pytest.fixture
def needs_raccoon() -> None:
    shared_path("datasets/raccoon/data/test.record")


@pytest.mark.usefixtures("needs_star_wars")
def test_star_wars_label_mismatches_are_reported_with_the_fix(tmp_path):
    with pytest.raises(UserError) as caught:
        prepare_dataset(STAR_WARS, tmp_path / "out")
    message = str(caught.value)
    assert "3 class name(s) in the annotations are not in the label map (BB-8, R2-D2)" in message
    assert "'bb8': 81 box(es) in annotations/BB-8_1.xml" in message and "did you mean 'BB-8'?" in message
    assert "'r2-d2': 1 box(es) in annotations/R2-D2_102.xml; did you mean 'R2-D2'?" in message
    assert "--label-alias bb8=BB-8 --label-alias r2-d2=R2-D2 --label-alias r2d2=R2-D2" in message
    assert not (tmp_path / "out").exists()  # nothing half-written


@pytest.mark.usefixtures("needs_star_wars")
@pytest.mark.parametrize(
    "options",
    [
        ["--label-alias", "bb8=BB-8", "--label-alias", "r2d2=R2-D2", "--label-alias", "r2-d2=R2-D2"],
        ["--match-label-names"],
    ],
    ids=["aliases", "matched names"],
)
def test_star_wars_prepares_with_aliases(tmp_path, capsys, options):
    assert main(["prepare", str(STAR_WARS), "--out", str(tmp_path / "out"), *options]) == 0
    out = capsys.readouterr().out
    # R2-D2_102.jpg is byte-identical to BB-8_37.jpg (and labelled the other class): reported, dropped.
    assert "annotations/R2-D2_102.xml: same image as annotations/BB-8_37.xml" in out
    assert "163 annotated images read; 162 written" in out
    for name in ("BB-8", "R2-D2"):  # the table's columns widen for a 'background' row
        assert re.search(rf"^{name} +65 +16$", out, re.M), out


@pytest.mark.usefixtures("needs_raccoon")
def test_raccoon_records_from_the_tf1_tools_are_read_and_resplit(tmp_path, capsys):
    prepared = prepare_dataset(RACCOON_RECORD, tmp_path / "out", val_fraction=0.25, seed=1)
    assert prepared.label_map == {1: "raccoon"}
    assert sum(prepared.images.values()) > 0
    assert prepared.images["val"] == round(sum(prepared.images.values()) * 0.25)
