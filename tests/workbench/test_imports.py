"""Importing user data: real ZIPs, folders and CSV bytes; problems listed by file or line;
nothing stored before commit, nothing half-stored when it fails, nothing outside the workspace."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commandline import cli
from foundation.errors import InputError, WorkbenchError
from foundation.types import Modality
from workbench import datasets, imports

try:
    from tests.workbench import hostile
except ImportError:  # plain `pytest` puts this folder on sys.path instead
    import hostile

COLOURS = {"cat": (250, 10, 10), "dog": (10, 10, 250)}


def png(colour, size=(24, 24), shade: int = 0) -> bytes:
    """A solid image; `shade` varies the green channel so every file has different bytes."""
    buffer = io.BytesIO()
    Image.new("RGB", size, (colour[0], shade, colour[2])).save(buffer, "PNG")
    return buffer.getvalue()


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def class_folder_zip(per_class: int = 5) -> dict[str, bytes]:
    entries = {}
    for label, colour in COLOURS.items():
        for i in range(per_class):
            entries[f"pets/{label}/{i}.png"] = png(colour, shade=10 * i)
    return entries


def datasets_root(workspace: Path) -> list[str]:
    root = workspace / "datasets"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ------------------------------------------------------------------ image ZIPs


def test_a_zip_of_class_folders_is_planned_with_every_problem_named_by_file(workspace):
    entries = class_folder_zip()
    entries.update({
        "pets/cat/copy.png": entries["pets/cat/0.png"],          # same bytes as cat/0.png
        "pets/dog/again.png": entries["pets/cat/1.png"],         # same bytes, other label
        "pets/dog/notes.jpg": b"plain text renamed",
        "pets/loose.png": png((0, 0, 0)),                        # not in a class folder
        "pets/dog/tiny.png": png(COLOURS["dog"], size=(4, 4)),   # 24 / 4 = 6 times too small
        "pets/cat/strip.png": png(COLOURS["cat"], size=(96, 24)),  # 4 times wider than tall
        "pets/more.zip": zip_bytes({"x.png": png((1, 1, 1))}),   # never opened
        "__MACOSX/pets/._0.png": b"junk",
    })
    plan = imports.import_image_zip(zip_bytes(entries), "pets")
    assert plan.classes == ("cat", "dog") and plan.counts() == {"cat": 5, "dog": 5}
    assert plan.image_size == (24, 24)
    problems = {(p.where, p.kind) for p in plan.problems}
    assert problems == {
        ("pets/cat/copy.png", "duplicate"),
        ("pets/dog/again.png", "duplicate"),
        ("pets/dog/notes.jpg", "unreadable"),
        ("pets/loose.png", "unlabelled"),
        ("pets/dog/tiny.png", "size"),
        ("pets/cat/strip.png", "size"),
    }
    again = next(p for p in plan.problems if p.where == "pets/dog/again.png")
    assert again.detail == "the same image as pets/cat/1.png, which is labelled 'cat'"
    assert any("more.zip" in note and "not opened" in note for note in plan.notes)
    assert datasets_root(workspace) == []  # planning stores nothing (its scratch folder is gone)


def test_commit_writes_a_dataset_that_loads_with_fixed_splits(workspace):
    plan = imports.import_image_zip(zip_bytes(class_folder_zip(per_class=10)), "pets")
    assert imports.assign_splits(plan) == imports.assign_splits(plan)  # deterministic
    report = imports.commit(plan)
    # Per class of 10: round(1.5) = 2 test, 2 val, 6 train.
    assert report.split_counts == {"train": 12, "val": 4, "test": 4}
    assert datasets_root(workspace) == ["pets"]
    assert "pets" in datasets.names() and datasets.splits("pets") == ("train", "val", "test")
    assert datasets.classes("pets") == ("cat", "dog") and datasets.modality("pets") is Modality.IMAGE
    seen = []
    for split in datasets.splits("pets"):
        ds = datasets.load(split=split, name="pets")
        assert ds.x.shape == (len(ds), 24, 24, 3) and ds.x.dtype == np.uint8
        for pixels, label in zip(ds.x, ds.y):
            # The red channel tells the class: 250 for cats, 10 for dogs.
            assert ds.classes[label] == ("cat" if pixels[0, 0, 0] == 250 else "dog")
        seen.extend(ds.ids)
    assert sorted(seen) == [f"pets-{i:05d}" for i in range(20)]
    with pytest.raises(WorkbenchError, match="no split 'train_noisy'"):
        datasets.load("pets", "train_noisy")
    manifest = json.loads((workspace / "datasets" / "pets" / "manifest.json").read_text())
    assert manifest["splits"] == report.split_counts and manifest["problem_rows_skipped"] == 0


def test_problems_must_be_skipped_explicitly_and_a_refused_commit_stores_nothing(workspace):
    entries = class_folder_zip()
    entries["pets/cat/bad.png"] = b"\x89PNG broken"
    plan = imports.import_image_zip(zip_bytes(entries), "pets")
    with pytest.raises(InputError, match=r"1 problem row\(s\) \(first: pets/cat/bad.png"):
        imports.commit(plan)
    assert datasets_root(workspace) == []
    report = imports.commit(plan, skip_problem_rows=True)
    assert report.imported == 10 and report.skipped == 1


def test_a_failure_while_writing_leaves_no_folder(workspace, monkeypatch):
    plan = imports.import_image_zip(zip_bytes(class_folder_zip()), "pets")
    calls = []

    def fail_on_second(path, **arrays):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(path, **arrays)

    real = imports._write_npz
    monkeypatch.setattr(imports, "_write_npz", fail_on_second)
    with pytest.raises(OSError):
        imports.commit(plan)
    assert datasets_root(workspace) == [] and "pets" not in datasets.names()


def test_a_single_class_or_too_few_examples_cannot_be_imported(workspace):
    one_class = {f"cat/{i}.png": png(COLOURS["cat"], shade=i) for i in range(4)}
    plan = imports.import_image_zip(zip_bytes(one_class), "cats")
    assert plan.blocking() and "at least 2" in plan.blocking()[0]
    with pytest.raises(InputError, match="at least 2"):
        imports.commit(plan, skip_problem_rows=True)
    few = dict(one_class, **{"dog/0.png": png(COLOURS["dog"]), "dog/1.png": png(COLOURS["dog"], shade=1)})
    plan = imports.import_image_zip(zip_bytes(few), "few")
    assert "'dog' (2) has fewer" in plan.blocking()[0]
    assert datasets_root(workspace) == []


def test_images_of_other_sizes_are_resized_to_the_most_common_size(workspace):
    entries = class_folder_zip()
    entries["pets/cat/big.png"] = png(COLOURS["cat"], size=(48, 40), shade=200)
    plan = imports.import_image_zip(zip_bytes(entries), "pets")
    assert not plan.problems and plan.image_size == (24, 24)
    big = next(item for item in plan.items if item.where == "pets/cat/big.png")
    assert big.value.shape == (24, 24, 3) and tuple(big.value[5, 5]) == (250, 200, 10)


def test_a_flat_zip_with_a_labels_csv_inside(workspace):
    entries = {f"img/{label}{i}.png": png(colour, shade=i) for label, colour in COLOURS.items() for i in range(3)}
    entries["img/labels.csv"] = b"file,label\n" + b"".join(
        f"{label}{i}.png,{label}\n".encode() for label in COLOURS for i in range(3)
    )
    plan = imports.import_image_zip(zip_bytes(entries), "flat")
    assert plan.counts() == {"cat": 3, "dog": 3} and not plan.problems


# -------------------------------------------------------- folder + labels CSV


def test_a_flat_folder_with_a_labels_csv_lists_problems_by_line(workspace, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    for label, colour in COLOURS.items():
        for i in range(3):
            (folder / f"{label}{i}.png").write_bytes(png(colour, shade=i))
    (folder / "extra.png").write_bytes(png((5, 5, 5)))
    (tmp_path / "secret.png").write_bytes(png((9, 9, 9)))
    labels = "\n".join([
        "filename;class",      # line 1: semicolons, other column names
        "cat0.png;cat",
        "cat1.png;cat",
        "missing.png;cat",     # line 4
        "cat2.png;",           # line 5
        "cat2.png;cat",
        "cat1.png;cat",        # line 7: listed twice
        "../secret.png;dog",   # line 8: outside the folder
        "dog0.png;Dog",        # line 9: differs only in case
        "dog1.png;dog",
        "dog2.png;dog",
        "",
    ]).encode("utf-8-sig")
    plan = imports.import_image_folder(folder, labels, "photos")
    rows = [(p.where, p.kind) for p in plan.problems]
    assert rows == [
        ("line 4 (missing.png)", "not found"),
        ("line 5 (cat2.png)", "empty"),
        ("line 7 (cat1.png)", "duplicate"),
        ("line 8 (../secret.png)", "not found"),
        ("extra.png", "unlabelled"),
        ("line 9 (dog0.png)", "unknown label"),
    ]
    assert "differs from the class 'dog' only in case" in plan.problems[-1].detail
    assert plan.counts() == {"cat": 3, "dog": 2}
    assert "line 7" in str(plan.problems[2].where) and "line 6" not in plan.problems[2].detail
    assert plan.problems[2].detail == "the file is already listed on line 3"


def test_a_folder_of_class_folders_without_csv(workspace, tmp_path):
    for label, colour in COLOURS.items():
        (tmp_path / "data" / label).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "data" / label / f"{i}.png").write_bytes(png(colour, shade=i))
    outside = tmp_path / "outside.png"
    outside.write_bytes(png((1, 2, 3)))
    (tmp_path / "data" / "cat" / "link.png").symlink_to(outside)  # never followed
    plan = imports.import_image_folder(tmp_path / "data", None, "data")
    assert plan.counts() == {"cat": 3, "dog": 3}
    assert any("link.png" in note and "not a regular file" in note for note in plan.notes)


# -------------------------------------------------------------------- text CSV

TEXT_ROWS = [
    ["headline", "sentiment"],
    ["Café profits rise – 5 €", "positive"],
    ["Shares plunge", "negative"],
    ["   ", "negative"],                   # line 4: whitespace only
    ["Shares plunge", "positive"],         # line 5: duplicate text, other label
    ["Guidance cut", "negativ"],           # line 6: not a class of the model
    ["Record orders", "positive"],
    ["Bid\u202etxt.exe rejected", "negative"],  # bidi override is removed, row kept
]


def csv_bytes(rows, delimiter=",", encoding="utf-8") -> bytes:
    import csv

    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode(encoding)


@pytest.fixture
def text_model(workspace, tmp_path):
    from tests.models import byo_models as bm
    from workbench import user_models

    path = bm.save(bm.text_model(), tmp_path / "m", "sentiment", ["negative", "positive"])
    return user_models.register_model(path)["name"]


@pytest.mark.parametrize("delimiter, encoding", [(",", "utf-16"), (";", "cp1252"), ("\t", "utf-8-sig")])
def test_text_csv_in_any_encoding_lists_problems_by_line(text_model, delimiter, encoding):
    rows = TEXT_ROWS if encoding != "cp1252" else [[c.replace("\u202e", "") for c in r] for r in TEXT_ROWS]
    plan = imports.import_text_csv(csv_bytes(rows, delimiter, encoding), "headline", "sentiment", "news",
                                   for_model=text_model)
    assert plan.classes == ("negative", "positive")  # the model's classes, in its order
    assert [(p.where, p.kind) for p in plan.problems] == [
        ("line 4", "empty"), ("line 5", "duplicate"), ("line 6", "unknown label"),
    ]
    assert plan.problems[1].detail == "the same text as line 3, which is labelled 'negative'"
    assert "did you mean 'negative'?" in plan.problems[2].detail
    texts = {item.value: item.label for item in plan.items}
    assert texts["Café profits rise – 5 €"] == "positive"
    assert texts["Bidtxt.exe rejected"] == "negative"


def test_labels_that_could_carry_markdown_links_or_tags_are_problems(workspace):
    rows = [["text", "label"]] + [[f"t{i}", "a" if i % 2 else "b"] for i in range(8)]
    rows += [["lure", "![x](https://tracker.example/p.png)"], ["tag", "<b>b</b>"], ["bidi", "a\u202eb"]]
    plan = imports.import_text_csv(csv_bytes(rows), "text", "label", "marked")
    assert plan.classes == ("a", "b")
    assert [(p.where, p.kind) for p in plan.problems] == [
        ("line 10", "unknown label"), ("line 11", "unknown label"), ("line 12", "unknown label"),
    ]
    assert "one of < > [ ] `, which class names may not use" in plan.problems[0].detail
    assert "invisible or control characters" in plan.problems[2].detail


def test_text_commit_and_load(workspace):
    rows = [["text", "label"]] + [[f"text number {i}", "a" if i % 3 else "b"] for i in range(20)]
    report = imports.commit(imports.import_text_csv(csv_bytes(rows), "text", "label", "abc"))
    assert report.classes == ("a", "b") and sum(report.split_counts.values()) == 20
    train = datasets.load("abc", "train")
    assert train.modality is Modality.TEXT and isinstance(train.x, list)
    for text, label in zip(train.x, train.y):
        number = int(text.split()[-1])
        assert train.classes[label] == ("a" if number % 3 else "b")


def test_text_column_choices_are_checked(workspace):
    data = csv_bytes(TEXT_ROWS)
    assert imports.guess_columns(imports.preview_csv(data)[0]) == ("headline", "sentiment")
    with pytest.raises(InputError, match="no column 'body'; its columns are headline, sentiment"):
        imports.import_text_csv(data, "body", "sentiment", "x")
    with pytest.raises(InputError, match="must be different"):
        imports.import_text_csv(data, "headline", "headline", "x")


# ------------------------------------------------------------- names & hostile


@pytest.mark.parametrize("name, fragment", [("digits", "already exists"), ("../up", "lowercase"), ("", "lowercase")])
def test_dataset_names_are_checked(workspace, name, fragment):
    with pytest.raises(InputError, match=fragment):
        imports.import_text_csv(csv_bytes(TEXT_ROWS), "headline", "sentiment", name)


@pytest.mark.parametrize("key", ["zip_slip", "zip_bomb", "lying_zip", "symlink_zip", "corrupt_zip", "bad_crc_zip"])
def test_hostile_archives_are_refused_and_write_nothing(workspace, tmp_path, key):
    corpus = tmp_path / "corpus"
    path = hostile.BUILDERS[key](corpus.mkdir() or corpus)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "workspace" not in p.parts)
    with pytest.raises(InputError):
        imports.import_image_zip(path, "hostile")
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if "workspace" not in p.parts)
    assert after == before  # no evil.txt or abs.txt anywhere
    assert datasets_root(workspace) == []


def test_an_oversized_csv_is_refused(workspace, tmp_path):
    path = hostile.make_oversized_csv(tmp_path)
    with pytest.raises(InputError, match="MB limit for tables"):
        imports.import_text_csv(path.read_bytes(), "a", "b", "big")


# -------------------------------------------------------------------------- CLI


def test_cli_dry_run_lists_problems_and_stores_nothing(workspace, tmp_path, capsys):
    path = tmp_path / "news.csv"
    rows = TEXT_ROWS + [[f"headline {i}", "positive" if i % 2 else "negative"] for i in range(8)]
    path.write_bytes(csv_bytes(rows, ";", "utf-16"))
    assert cli.main(["import-data", str(path), "--name", "news", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "problem: line 4: empty" in out and "problem: line 5: duplicate" in out
    # Without a model, a rare label close to a common one is flagged as a likely typo.
    assert "problem: line 6: unknown label: 'negativ' is used only 1 time(s) and looks like a misspelling of 'negative'" in out
    assert "dry run: nothing was stored." in out and datasets_root(workspace) == []

    assert cli.main(["import-data", str(path), "--name", "news"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: 3 problem row(s) (first: line 4") and "--skip-problems" in err[0]
    assert datasets_root(workspace) == []

    assert cli.main(["import-data", str(path), "--name", "news", "--skip-problems", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["imported"]["rows"] == 12 and result["imported"]["skipped"] == 3
    assert [row["where"] for row in result["problems"]] == ["line 4", "line 5", "line 6"]
    assert datasets_root(workspace) == ["news"]


def test_cli_refuses_unknown_kinds_of_file(workspace, tmp_path, capsys):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"PK\x03\x04")
    assert cli.main(["import-data", str(path), "--name", "x"]) == 2
    assert "neither a ZIP" in capsys.readouterr().err
