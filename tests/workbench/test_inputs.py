"""workbench.inputs on real files: the hostile corpus, hand-computed pixels, real CSV bytes."""
from __future__ import annotations

import csv
import io
import re
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageFile

from foundation.errors import InputError
from foundation.tokens import tokenize
from workbench import inputs

try:
    from tests.workbench import hostile
except ImportError:  # plain `pytest`: its rootdir-relative import puts this folder on sys.path
    import hostile


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return hostile.build_corpus(tmp_path_factory.mktemp("hostile"))


def assert_one_sentence(message: str) -> None:
    """Messages are shown as is: one plain sentence that ends by saying what to do."""
    prose = re.sub(r"'[^']*'", "''", message)  # quoted names may contain anything
    assert "\n" not in message and ". " not in prose, message
    assert message.endswith("retry."), message


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as caught:
        call(*args, **kwargs)
    assert_one_sentence(str(caught.value))
    return str(caught.value)


def png_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _idat(png: bytes) -> bytes:
    start = png.index(b"IDAT")
    (length,) = struct.unpack(">I", png[start - 4 : start])
    return png[start + 4 : start + 4 + length]


def first_row(image: np.ndarray) -> list:
    return image[0].tolist()


# ----------------------------------------------------------------- refused images


@pytest.mark.parametrize("name", hostile.REFUSED_IMAGES)
def test_hostile_images_are_refused_with_a_message_naming_the_file(corpus, name):
    path = corpus[name]
    message = refusal(inputs.read_image_file, path)
    assert f"'{path.name}'" in message


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("bomb_png", "megapixels"),
        ("oversize_png", "6000 x 5000 pixels (30.0 megapixels)"),
        ("truncated_png", "damaged or incomplete"),
        ("truncated_jpeg", "damaged or incomplete"),
        ("garbage_png", "PNG, JPEG, WebP or BMP expected"),
        ("text_as_jpg", "PNG, JPEG, WebP or BMP expected"),
        ("empty_png", "is empty"),
    ],
)
def test_refusals_say_what_is_wrong(corpus, name, fragment):
    assert fragment in refusal(inputs.decode_image, corpus[name].read_bytes(), corpus[name].name)


def test_the_bombs_are_tiny_on_disk_but_declare_huge_sizes(corpus):
    # Guards the corpus itself: if these were not bombs, the refusals above would prove nothing.
    for name, side in (("bomb_png", (20000, 20000)), ("oversize_png", (6000, 5000))):
        data = corpus[name].read_bytes()
        assert len(data) < 100_000
        assert struct.unpack(">II", data[16:24]) == side  # IHDR width, height
        # The data really is that many pixels: the zlib stream inflates to one row per line.
        rows = zlib.decompress(_idat(data))
        assert len(rows) == side[1] * (1 + (side[0] + 7) // 8)


def test_pixel_limit_is_checked_on_the_header_not_after_decoding():
    just_over = hostile.crafted_png(5001, 5000)
    assert "5001 x 5000" in refusal(inputs.decode_image, just_over)


def test_an_image_exactly_at_the_pixel_limit_is_accepted():
    image = inputs.decode_image(hostile.crafted_png(5000, 5000))
    assert image.shape == (5000, 5000, 3) and image.dtype == np.uint8
    assert int(image.max()) == 0


def test_pillow_bomb_warning_range_is_refused_with_our_size_message():
    # 100 MP: Pillow only warns; our header check must refuse it.
    with pytest.warns(Image.DecompressionBombWarning):
        message = refusal(inputs.decode_image, hostile.crafted_png(10000, 10000))
    assert "10000 x 10000" in message


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_pillow_bomb_warning_escalated_to_error_is_still_an_input_error():
    assert "megapixels" in refusal(inputs.decode_image, hostile.crafted_png(10000, 10000))


def test_too_many_bytes_is_refused_before_decoding():
    message = refusal(inputs.decode_image, b"\x89PNG" + bytes(inputs.MAX_IMAGE_BYTES), "big.png")
    assert "20.1 MB" in message and "20 MB limit" in message


def test_read_image_file_refuses_a_large_file_without_reading_it(tmp_path):
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(inputs.MAX_IMAGE_BYTES * 5)  # sparse: costs no disk or time
    assert "100.0 MB" in refusal(inputs.read_image_file, path)


def test_read_image_file_reports_a_missing_file(tmp_path):
    assert "could not be read" in refusal(inputs.read_image_file, tmp_path / "nope.png")


def test_formats_outside_the_list_are_refused():
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(buffer, "PPM")  # Pillow reads PPM; we must not
    assert "not an image we can read" in refusal(inputs.decode_image, buffer.getvalue(), "x.ppm")


def test_truncated_images_stay_refused_globally():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_file_names_in_messages_are_stripped_of_control_and_bidi_characters():
    message = refusal(inputs.decode_image, b"", "evil\u202egnp.exe\n" + "x" * 200)
    assert "\u202e" not in message and "evil" in message and "…" in message


# ------------------------------------------------------------- decoded correctly


@pytest.mark.parametrize("fmt, options", [
    ("PNG", {}), ("BMP", {}), ("TIFF", {}), ("WEBP", {"lossless": True}), ("GIF", {}),
])
def test_every_lossless_format_round_trips_exactly(fmt, options):
    pixels = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 0]],
                       [[255, 255, 255], [10, 20, 30], [255, 0, 0], [0, 0, 255]]], dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, fmt, **options)
    decoded = inputs.decode_image(buffer.getvalue())
    assert decoded.dtype == np.uint8 and decoded.flags.writeable
    np.testing.assert_array_equal(decoded, pixels)


def test_jpeg_and_camera_multi_picture_jpeg_decode():
    buffer = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 30, 30)).save(
        buffer, "MPO", save_all=True, append_images=[Image.new("RGB", (16, 8), (0, 0, 0))]
    )
    assert Image.open(io.BytesIO(buffer.getvalue())).format == "MPO"
    decoded = inputs.decode_image(buffer.getvalue())
    assert decoded.shape == (8, 16, 3)
    assert np.abs(decoded.astype(int) - [200, 30, 30]).max() <= 4


def test_rgba_is_composited_on_white(corpus):
    assert first_row(inputs.read_image_file(corpus["rgba_png"])) == [list(p) for p in hostile.RGBA_EXPECTED]


def test_grey_with_alpha_is_composited_on_white(corpus):
    assert first_row(inputs.read_image_file(corpus["la_png"])) == [[v] * 3 for v in hostile.LA_EXPECTED]


def test_palette_transparency_becomes_white(corpus):
    assert first_row(inputs.read_image_file(corpus["palette_png"])) == [[255, 255, 255], [0, 255, 0]]


def test_palette_without_transparency_keeps_its_colours():
    image = Image.new("P", (2, 1))
    image.putpalette([12, 34, 56, 200, 100, 0])
    image.putdata([0, 1])
    assert first_row(inputs.decode_image(png_bytes(image))) == [[12, 34, 56], [200, 100, 0]]


def test_cmyk_converts_to_rgb(corpus):
    assert first_row(inputs.read_image_file(corpus["cmyk_tiff"])) == [list(p) for p in hostile.CMYK_EXPECTED]


def test_cmyk_jpeg_without_ink_is_white(corpus):
    decoded = inputs.read_image_file(corpus["cmyk_jpeg"])
    assert decoded.min() >= 250


def test_sixteen_bit_is_scaled_not_clipped(corpus):
    decoded = inputs.read_image_file(corpus["grey16_png"])
    # Clipping would turn 32768 and 4095 into 255; scaling gives round(v * 255 / 65535).
    assert first_row(decoded) == [[v] * 3 for v in hostile.GREY16_EXPECTED]


def test_sixteen_bit_big_endian_tiff_is_scaled_the_same_way():
    values = np.array([[0, 65535, 32768, 4095]], dtype=">u2")
    image = Image.frombytes("I;16B", (4, 1), values.tobytes())
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode.startswith("I;16")
    assert first_row(inputs.decode_image(buffer.getvalue())) == [[v] * 3 for v in hostile.GREY16_EXPECTED]


def tiff_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "TIFF")
    return buffer.getvalue()


def test_32_bit_int_within_16_bits_uses_the_16_bit_scale():
    image = Image.fromarray(np.array([[0, 65535, 32768]], dtype=np.int32), "I")
    assert first_row(inputs.decode_image(tiff_bytes(image))) == [[0] * 3, [255] * 3, [128] * 3]


def test_32_bit_int_beyond_16_bits_stretches_its_range():
    image = Image.fromarray(np.array([[-100_000, 0, 300_000]], dtype=np.int32), "I")
    # (v + 100000) * 255 / 400000 -> 0, 63.75, 255
    assert first_row(inputs.decode_image(tiff_bytes(image))) == [[0] * 3, [64] * 3, [255] * 3]


def test_float_images_in_unit_range_scale_by_255():
    image = Image.fromarray(np.array([[0.0, 0.5, 1.0]], dtype=np.float32), "F")
    assert first_row(inputs.decode_image(tiff_bytes(image))) == [[0] * 3, [128] * 3, [255] * 3]


def test_float_images_outside_unit_range_stretch_and_survive_nan():
    image = Image.fromarray(np.array([[-1.0, 0.0, 3.0, np.nan]], dtype=np.float32), "F")
    # (v + 1) * 255 / 4 -> 0, 63.75, 255; NaN counts as the minimum.
    assert first_row(inputs.decode_image(tiff_bytes(image))) == [[0] * 3, [64] * 3, [255] * 3, [0] * 3]


def test_grey_and_bilevel_become_three_equal_channels(corpus):
    assert first_row(inputs.read_image_file(corpus["grey_png"])) == [[0] * 3, [77] * 3, [255] * 3]
    assert first_row(inputs.read_image_file(corpus["bilevel_png"])) == [[0] * 3, [255] * 3]


def test_exif_orientation_is_applied(corpus):
    decoded = inputs.read_image_file(corpus["exif_rotated_jpeg"])
    width, height = hostile.EXIF_STORED_SIZE
    assert decoded.shape == (width, height, 3)  # rotated: stored width becomes height
    red, white = [255, 0, 0], [255, 255, 255]
    # Stored top-left square, rotated 90 degrees clockwise, is shown at the top-right.
    assert np.abs(decoded[8, 24].astype(int) - red).max() <= 12
    assert np.abs(decoded[8, 8].astype(int) - white).max() <= 12
    assert np.abs(decoded[56, 24].astype(int) - white).max() <= 12


def test_animated_gif_uses_the_first_frame(corpus):
    with Image.open(corpus["animated_gif"]) as gif:
        assert gif.n_frames == 2
        gif.seek(1)
        assert gif.convert("RGB").getpixel((0, 0)) == (0, 0, 255)  # the corpus really differs
    decoded = inputs.read_image_file(corpus["animated_gif"])
    assert decoded.shape == (8, 8, 3)
    assert (decoded == [255, 0, 0]).all()


def test_bytes_like_inputs_are_accepted():
    data = png_bytes(Image.new("RGB", (3, 2), (9, 8, 7)))
    for value in (bytearray(data), memoryview(data)):
        assert inputs.decode_image(value).shape == (2, 3, 3)


# --------------------------------------------------------------------------- text


def test_hostile_text_is_cleaned_with_a_notice_per_kind(corpus):
    cleaned = inputs.clean_text(corpus["bidi_text"].read_bytes())
    assert cleaned.text == hostile.HOSTILE_TEXT_CLEAN
    assert cleaned.notices == (
        "Removed 4 invisible text-direction characters.",
        "Removed 2 zero-width characters.",
        "Removed 2 control characters.",
    )


def test_clean_text_keeps_tabs_and_newlines_and_normalises_line_ends():
    assert inputs.clean_text("a\tb\r\nc\rd").text == "a\tb\nc\nd"


def test_clean_text_applies_nfc():
    cleaned = inputs.clean_text("cafe\u0301")
    assert cleaned.text == "caf\u00e9" and len(cleaned.text) == 4
    assert cleaned.notices == ()


@pytest.mark.parametrize(
    "data, expected, notice",
    [
        ("naïve café".encode("utf-8"), "naïve café", None),
        ("naïve café".encode("utf-8-sig"), "naïve café", None),
        ("naïve café".encode("utf-16"), "naïve café", None),
        ("naïve café €5".encode("cp1252"), "naïve café €5", "Windows-1252"),
        (b"caf\xe9 \x81", "café \x81", "Latin-1"),  # 0x81 is undefined in cp1252; C1 control then removed
    ],
)
def test_clean_text_decodes_bytes(data, expected, notice):
    cleaned = inputs.clean_text(data)
    expected = expected.replace("\x81", "").strip()
    assert cleaned.text == expected
    if notice:
        assert any(notice in n for n in cleaned.notices)
    else:
        assert cleaned.notices == ()


@pytest.mark.parametrize("value, fragment", [
    ("", "empty"), ("   \n\t ", "empty"), (b"", "empty"),
    ("\u200b\u202e\x00", "only invisible or control characters"),
])
def test_clean_text_refuses_empty_text(value, fragment):
    assert fragment in refusal(inputs.clean_text, value)


def test_long_text_is_truncated_with_a_notice():
    cleaned = inputs.clean_text("x" * (inputs.MAX_TEXT_CHARS + 123))
    assert len(cleaned.text) == inputs.MAX_TEXT_CHARS
    assert cleaned.notices == ("The text had 5,123 characters; only the first 5,000 were kept.",)


def test_huge_paste_is_bounded_and_reports_its_real_length():
    cleaned = inputs.clean_text("word " * 400_000)
    assert len(cleaned.text) <= inputs.MAX_TEXT_CHARS
    assert "2,000,000 characters" in cleaned.notices[-1]


def test_max_tokens_keeps_the_first_tokens_exactly():
    text = "Hello, world! -- This is: a (small) test."
    cleaned = inputs.clean_text(text, max_tokens=3)
    assert cleaned.text == "Hello, world! -- This"
    assert tokenize(cleaned.text) == ["hello", "world", "this"]
    assert cleaned.notices == ("The text had 7 words; only the first 3 were kept.",)


def test_max_tokens_not_reached_changes_nothing():
    assert inputs.clean_text("two words", max_tokens=2) == inputs.CleanText("two words", ())


def test_max_tokens_truncation_matches_the_tokenizer_on_varied_text():
    rng = np.random.default_rng(7)
    pieces = ["alpha", "Beta,", "--", "...", "c.d", "(e)", "é", "x-y", "!!", "tab\t", "new\n", "'q'"]
    for _ in range(200):
        text = " ".join(rng.choice(pieces, size=int(rng.integers(1, 30))))
        if not text.strip():
            continue
        limit = int(rng.integers(1, 10))
        try:
            kept = inputs.clean_text(text, max_tokens=limit).text
        except InputError:
            continue
        assert tokenize(kept) == tokenize(text.strip())[:limit]


# ---------------------------------------------------------------------- CSV input

EXPECTED_TABLE = pd.DataFrame(
    {
        "name": ["Café", "Zoë", "Ørsted"],
        "note": ["naïve – 5 €", "two\nlines", "plain"],
        "price": ["1,5", "2", "3"],
    },
    dtype=str,
).assign(__line__=np.array(hostile.TABLE_LINES, dtype=np.int64))


@pytest.mark.parametrize("name", ["utf8_csv", "utf16_csv", "semicolon_cp1252_csv", "tab_utf8_sig_csv"])
def test_encodings_and_delimiters_parse_to_the_same_table(corpus, name):
    table = inputs.read_table_csv(corpus[name].read_bytes(), corpus[name].name)
    pd.testing.assert_frame_equal(table, EXPECTED_TABLE)


def test_utf16_without_bom_and_pipe_delimiter():
    text = "name|price\nCafé|1,5\n"
    for encoding in ("utf-16-le", "utf-16-be"):
        table = inputs.read_table_csv(text.encode(encoding))
        assert table.to_dict("list") == {"name": ["Café"], "price": ["1,5"], "__line__": [2]}


def test_cells_stay_strings_and_nothing_becomes_nan():
    table = inputs.read_table_csv(b"a,b,c\nNA,,007\nnull,1e3,TRUE\n")
    assert table[["a", "b", "c"]].values.tolist() == [["NA", "", "007"], ["null", "1e3", "TRUE"]]
    assert not table.isna().any().any()


def test_blank_lines_are_skipped_but_counted():
    table = inputs.read_table_csv(b"a,b\n\n1,2\n,\n3,4\n")
    assert table.to_dict("list") == {"a": ["1", "3"], "b": ["2", "4"], "__line__": [3, 5]}


def test_short_rows_are_padded_and_empty_trailing_cells_dropped():
    table = inputs.read_table_csv(b"a,b,c\n1\n2,3,4,,\n")
    assert table[["a", "b", "c"]].values.tolist() == [["1", "", ""], ["2", "3", "4"]]


def test_header_names_are_stripped_and_blank_ones_named():
    table = inputs.read_table_csv(b" a ,,c\n1,2,3\n")
    assert list(table.columns) == ["a", "column_2", "c", "__line__"]


def test_formula_cells_are_read_verbatim(corpus):
    table = inputs.read_table_csv(corpus["formula_csv"].read_bytes())
    assert table["text"].tolist() == [row[0] for row in hostile.FORMULA_ROWS[1:]]


@pytest.mark.parametrize(
    "data, fragment",
    [
        (b"", "is empty"),
        (b" \r\n \n", "is empty"),
        (b"a,b\n", "no data rows"),
        (b"a,b\n1,\"x\ny\"\n2,3,4\n", "Line 4 of 'file.csv' has 3 values but the header has 2 columns"),
        (b"a,b\n1,2\n3,\"open\n4,5\n", "Line 3 of 'file.csv' has a misplaced or unclosed quote"),
        (b"a,a\n1,2\n", "two columns named 'a'"),
        (b"__line__,b\n1,2\n", "reserved column name"),
        (b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(40), "binary data"),
    ],
)
def test_bad_tables_are_refused_with_a_line_or_a_reason(data, fragment):
    assert fragment in refusal(inputs.read_table_csv, data)


def test_a_real_spreadsheet_file_is_refused_as_binary():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # an .xlsx is a zip of XML
        archive.writestr("xl/workbook.xml", "<workbook/>")
    assert "binary" in refusal(inputs.read_table_csv, buffer.getvalue(), "sheet.xlsx")


def test_oversized_csv_is_refused(corpus):
    assert "20 MB limit" in refusal(inputs.read_table_csv, corpus["oversized_csv"].read_bytes(), "big.csv")


def test_an_oversized_value_is_refused_with_its_line():
    data = b"a,b\n1,2\n3," + b"x" * (csv.field_size_limit() + 10) + b"\n"
    assert "Line 3" in refusal(inputs.read_table_csv, data)


# --------------------------------------------------------------------- CSV export


@pytest.mark.parametrize(
    "value, expected",
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tindented", "'\tindented"),
        ("\rcarriage", "'\rcarriage"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        ("-5", "-5"),
        ("+1.5e3", "+1.5e3"),
        ("-.5", "-.5"),
        ("'=quoted", "'=quoted"),
        (-5, -5),
        (2.5, 2.5),
        (None, None),
        (True, True),
    ],
)
def test_neutralise_cell(value, expected):
    result = inputs.neutralise_cell(value)
    assert result == expected and type(result) is type(expected)
    assert inputs.neutralise_cell(result) == result  # idempotent


def test_neutralise_cell_leaves_numpy_numbers_alone():
    value = np.int64(-3)
    assert inputs.neutralise_cell(value) is value


def read_csv_rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_write_safe_csv_to_a_path_and_a_buffer(tmp_path):
    rows = [{"label": "=HYPERLINK(\"x\")", "score": 0.5}, {"label": "cat"}]
    path = tmp_path / "out.csv"
    inputs.write_safe_csv(rows, path, ["label", "score"])
    buffer = io.StringIO()
    inputs.write_safe_csv(rows, buffer, ["label", "score"])
    expected = [["label", "score"], ["'=HYPERLINK(\"x\")", "0.5"], ["cat", ""]]
    assert read_csv_rows(path.read_text(encoding="utf-8")) == expected
    assert read_csv_rows(buffer.getvalue()) == expected


def test_write_safe_csv_neutralises_the_header_and_rejects_unknown_keys(tmp_path):
    buffer = io.StringIO()
    inputs.write_safe_csv([{"@class": "x"}], buffer, ["@class"])
    assert read_csv_rows(buffer.getvalue())[0] == ["'@class"]
    with pytest.raises(ValueError):
        inputs.write_safe_csv([{"a": 1, "b": 2}], io.StringIO(), ["a"])


def test_to_safe_csv_bytes(corpus):
    table = inputs.read_table_csv(corpus["formula_csv"].read_bytes())
    table["number"] = [-1, 2, -3, 4, 5, 6]
    table["=cmd()"] = "x"
    rows = read_csv_rows(inputs.to_safe_csv_bytes(table).decode("utf-8"))
    assert rows[0] == ["text", "value", "__line__", "number", "'=cmd()"]
    assert [row[0] for row in rows[1:]] == [
        "'=1+1", "'+cmd|' /C calc'!A0", "'-2+3", "'@SUM(A1:A2)", "'\tindented", "plain",
    ]
    assert [row[1] for row in rows[1:]] == ["1", "2", "-5", "3", "4", "5"]
    assert [row[3] for row in rows[1:]] == ["-1", "2", "-3", "4", "5", "6"]
