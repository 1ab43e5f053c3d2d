"""Safe ZIP extraction on real archives, checked on the real filesystem."""
from __future__ import annotations

import io
import os
import re
import warnings
import zipfile
from pathlib import Path

import pytest

from foundation.errors import InputError
from workbench import inputs

try:
    from tests.workbench import hostile
except ImportError:  # plain `pytest`: its rootdir-relative import puts this folder on sys.path
    import hostile


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile.build_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture
def sandbox(tmp_path: Path) -> Path:
    """An extraction area two levels deep, so "../" and "../../" both land inside tmp_path."""
    area = tmp_path / "outer" / "area"
    area.mkdir(parents=True)
    return area


def snapshot(root: Path) -> set[str]:
    return {str(path.relative_to(root)) for path in root.rglob("*")}


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def refused(source, dest: Path, **options) -> str:
    """Extraction must raise InputError with one sentence and leave the filesystem untouched."""
    watched = dest.parent.parent.parent  # tmp_path: catches anything written beside or above dest
    before = snapshot(watched)
    with pytest.raises(InputError) as caught:
        inputs.safe_extract_zip(source, dest, **options)
    message = str(caught.value)
    prose = re.sub(r"'[^']*'", "''", message)  # quoted names may contain anything
    assert "\n" not in message and ". " not in prose and message.endswith("retry."), message
    assert snapshot(watched) == before
    return message


# ----------------------------------------------------------------- hostile corpus


@pytest.mark.parametrize("name", hostile.REFUSED_ZIPS)
def test_hostile_archives_are_refused_and_leave_nothing_behind(corpus, sandbox, name):
    message = refused(corpus[name], sandbox / "dest")
    assert f"'{corpus[name].name}'" in message


def test_zip_slip_writes_nothing_outside_dest(corpus, sandbox):
    message = refused(corpus["zip_slip"], sandbox / "dest")
    assert "unsafe path ('../evil.txt')" in message
    assert not (sandbox / "evil.txt").exists() and not Path("/abs.txt").exists()
    assert not (sandbox / "dest").exists()  # not even the harmless first file


@pytest.mark.parametrize(
    "entry",
    [
        "../evil.txt",
        "a/../../evil.txt",
        "/abs.txt",
        "\\abs.txt",
        "C:/evil.txt",
        "c:evil.txt",
        "..\\evil.txt",
        "a\\..\\..\\evil.txt",
        "a/.. /evil.txt",
        "a/.../evil.txt",
        "new\nline.txt",
    ],
)
def test_each_kind_of_unsafe_path_is_refused(sandbox, entry):
    message = refused(zip_of([("fine.txt", b"ok"), (entry, b"x")]), sandbox / "dest")
    assert "unsafe path" in message


def test_zip_bomb_is_refused_from_declared_sizes_before_any_work(corpus, sandbox):
    with zipfile.ZipFile(corpus["zip_bomb"]) as archive:
        declared = sum(info.file_size for info in archive.infolist())
    assert declared > inputs.MAX_ARCHIVE_TOTAL_BYTES  # the corpus is a real bomb
    message = refused(corpus["zip_bomb"], sandbox / "dest")
    assert "more than 500 MB" in message


def test_declared_sizes_alone_are_enough_to_refuse(sandbox):
    # Claims 600 MB but holds one byte: only the declared-size check can say "expands to".
    data = hostile.crafted_zip([("claims_big.bin", b"x", 600 * 2**20)])
    assert "expands to more than 500 MB (at least 600 MB)" in refused(data, sandbox / "dest")


def test_a_lying_size_header_cannot_make_us_write_more(corpus, sandbox):
    with zipfile.ZipFile(corpus["lying_zip"]) as archive:
        assert archive.infolist()[0].file_size == 1000
    assert "damaged" in refused(corpus["lying_zip"], sandbox / "dest")


def test_the_total_size_bound_is_configurable(sandbox):
    data = zip_of([("a.txt", b"x" * 600), ("b.txt", b"y" * 600)])
    assert "expands to more than" in refused(data, sandbox / "dest", max_total_bytes=1000)
    files = inputs.safe_extract_zip(data, sandbox / "ok", max_total_bytes=1200)
    assert [path.read_bytes() for path in files] == [b"x" * 600, b"y" * 600]


def test_too_many_files_are_refused(sandbox):
    data = zip_of([(f"f{i}.txt", b"x") for i in range(3)])
    assert "3 entries, more than the 2 allowed" in refused(data, sandbox / "dest", max_files=2)


def test_symlinks_are_refused(corpus, sandbox):
    assert "symbolic link ('link')" in refused(corpus["symlink_zip"], sandbox / "dest")


def test_a_damaged_entry_after_a_good_one_leaves_nothing(corpus, sandbox):
    assert "second.txt" in refused(corpus["bad_crc_zip"], sandbox / "dest")


def test_corrupt_and_non_zip_data_are_refused(corpus, sandbox):
    assert "not a ZIP archive" in refused(corpus["corrupt_zip"], sandbox / "dest")
    assert "not a ZIP archive" in refused(b"just some text", sandbox / "dest")


def test_unsupported_compression_is_refused(sandbox):
    data = hostile.crafted_zip([("a.txt", b"hello", 5)], method=9)
    assert "compression method" in refused(data, sandbox / "dest")


def test_password_protected_entries_are_refused(sandbox):
    data = bytearray(zip_of([("secret.txt", b"data")]))
    # zipfile cannot write encrypted entries: set the "encrypted" flag in both headers by hand.
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        data[data.index(signature) + flag_offset] |= 0x1
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        assert archive.infolist()[0].flag_bits & 0x1
    assert "password-protected" in refused(bytes(data), sandbox / "dest")


def test_duplicate_names_are_refused(sandbox):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate it writes
        data = zip_of([("a.txt", b"first"), ("a.txt", b"second")])
    assert "more than once" in refused(data, sandbox / "dest")


def test_a_file_and_a_folder_with_the_same_name_are_refused(sandbox):
    assert "could not be extracted" in refused(zip_of([("a", b"file"), ("a/b.txt", b"x")]), sandbox / "dest")


def test_empty_and_clutter_only_archives_are_refused(sandbox):
    assert "contains no files" in refused(zip_of([]), sandbox / "dest")
    clutter = zip_of([(zipfile.ZipInfo("dir/"), b""), (".DS_Store", b"x"), ("inner.zip", b"PK")])
    assert "no files we can use" in refused(clutter, sandbox / "dest")


def test_a_missing_archive_is_reported(sandbox):
    assert "could not be found" in refused(sandbox / "nope.zip", sandbox / "dest")


# ------------------------------------------------------------------- extraction


def test_nested_archives_folders_and_clutter_are_skipped_and_reported(corpus, sandbox):
    dest = sandbox / "dest"
    result = inputs.extract_zip(corpus["nested_zip"], dest)
    assert result.files == (dest / "readme.txt", dest / "photos" / "cat.txt")
    assert [path.read_bytes() for path in result.files] == [b"hello", b"meow"]
    assert dict(result.skipped) == {
        "inner.zip": "archive inside the archive (not opened)",
        "photos/": "folder",
        "__MACOSX/._readme.txt": "system metadata file",
        ".DS_Store": "system metadata file",
    }
    assert snapshot(dest) == {"readme.txt", "photos", "photos/cat.txt"}
    assert [p.name for p in sandbox.iterdir()] == ["dest"]  # no staging folder left


@pytest.mark.parametrize(
    "junk",
    ["__MACOSX/photo.jpg", "deep/__MACOSX/x.txt", ".DS_Store", "sub/.DS_Store", "._photo.jpg", "Thumbs.db", "desktop.ini"],
)
def test_each_kind_of_system_clutter_is_skipped(sandbox, junk):
    result = inputs.extract_zip(zip_of([("keep.txt", b"k"), (junk, b"junk")]), sandbox / "dest")
    assert result.files == (sandbox / "dest" / "keep.txt",)
    assert result.skipped == ((junk, "system metadata file"),)


@pytest.mark.parametrize("nested", ["a.zip", "b.TAR", "c.tar.gz", "d.tgz", "e.7z", "f.rar", "g.bz2", "h.xz"])
def test_each_kind_of_nested_archive_is_skipped(sandbox, nested):
    result = inputs.extract_zip(zip_of([("keep.txt", b"k"), (nested, b"data")]), sandbox / "dest")
    assert result.skipped == ((nested, "archive inside the archive (not opened)"),)


def test_bytes_and_paths_give_the_same_files(corpus, sandbox):
    from_path = inputs.safe_extract_zip(corpus["nested_zip"], sandbox / "a")
    from_bytes = inputs.safe_extract_zip(corpus["nested_zip"].read_bytes(), sandbox / "b")
    assert isinstance(from_path, list)
    assert [p.relative_to(sandbox / "a") for p in from_path] == [p.relative_to(sandbox / "b") for p in from_bytes]


def test_an_existing_empty_dest_is_used_and_a_full_one_is_a_caller_error(sandbox):
    data = zip_of([("x/y.txt", b"z")])
    dest = sandbox / "empty"
    dest.mkdir()
    assert inputs.safe_extract_zip(data, dest) == [dest / "x" / "y.txt"]
    with pytest.raises(ValueError):
        inputs.safe_extract_zip(data, dest)


def test_backslash_paths_become_folders_and_dot_segments_are_dropped(sandbox):
    dest = sandbox / "dest"
    files = inputs.safe_extract_zip(zip_of([("cats\\one.txt", b"1"), ("./dogs//two.txt", b"2")]), dest)
    assert files == [dest / "cats" / "one.txt", dest / "dogs" / "two.txt"]
    assert all(path.is_file() and not path.is_symlink() for path in files)


def test_extracted_files_are_plain_files_with_safe_permissions(sandbox):
    info = zipfile.ZipInfo("run.sh")
    info.create_system = 3
    info.external_attr = 0o104755 << 16  # setuid executable
    (path,) = inputs.safe_extract_zip(zip_of([(info, b"#!/bin/sh\n")]), sandbox / "dest")
    assert not os.stat(path).st_mode & 0o4000
