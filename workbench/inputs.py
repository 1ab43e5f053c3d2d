"""The one door for user input: images, text, CSV tables and ZIP archives.

Every function here bounds the size of what it reads, decodes it safely, normalises
it, or refuses it with `InputError` whose message is one sentence saying what is
wrong and what to do. No exception from Pillow, zipfile or csv escapes raw.

Choices worth knowing:

* Images come back as uint8 H x W x 3 RGB. Transparency is composited on white
  (exact integer rounding), EXIF orientation is applied, animations give their first
  frame. 16-bit grey (`I;16*`) is scaled by the full 16-bit range, 65535 -> 255:
  the file does not say how many of the 16 bits the sensor used, and a fixed scale
  keeps brightness comparable between images (12-bit data 0..4095 therefore looks
  dark; it is not clipped). 32-bit integer images whose values fit 0..65535 are
  treated the same way; other 32-bit integer and float images have their actual
  range stretched to 0..255 (floats already within 0..1 are multiplied by 255).
  Colour profiles are not applied. Pillow's decompression-bomb error is caught, and
  our own header check (25 megapixels) is far below Pillow's warning threshold.
  Truncated files are refused: this module never sets
  `PIL.ImageFile.LOAD_TRUNCATED_IMAGES`.
* Text is NFC-normalised; bidi controls, zero-width and control characters are
  removed (each with a notice); long text is truncated with a notice.
* CSV tables are read with every cell as a string plus a `__line__` column: the
  1-based line in the original file where each row starts (the header is line 1; a
  row whose quoted value spans several lines is numbered by its first line). Blank
  rows are skipped but still counted.
* CSV exports prefix formula-like cells (`= + - @`, tab, CR) with an apostrophe;
  plain numbers written as text (such as "-5") are left alone.
"""
from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageOps

from foundation.errors import InputError
from foundation.tokens import tokenize
from workbench.archives import (
    MAX_ARCHIVE_FILES,
    MAX_ARCHIVE_TOTAL_BYTES,
    ExtractResult,
    extract_zip,
    safe_extract_zip,
    shown_name,
)

__all__ = [
    "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "MAX_TEXT_CHARS", "MAX_CSV_BYTES", "MAX_CSV_ROWS",
    "MAX_ARCHIVE_TOTAL_BYTES", "MAX_ARCHIVE_FILES", "IMAGE_FORMATS",
    "decode_image", "read_image_file",
    "CleanText", "clean_text",
    "neutralise_cell", "write_safe_csv", "to_safe_csv_bytes", "read_table_csv", "LINE_COLUMN",
    "ExtractResult", "extract_zip", "safe_extract_zip",
]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000
MAX_TEXT_CHARS = 5000
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CSV_ROWS = 1_000_000
# Decoded, all of these; the UI advertises PNG, JPEG, WebP and BMP.
IMAGE_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"})

_OPEN_FORMATS = tuple(sorted(IMAGE_FORMATS))
# Pillow's JPEG reader labels a camera JPEG that carries extra pictures "MPO"; it is still a JPEG.
_ACCEPTED_FORMATS = IMAGE_FORMATS | {"MPO"}
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}
_ADVERTISED = "PNG, JPEG, WebP or BMP"


# --------------------------------------------------------------------------- images


def decode_image(data: bytes, name: str = "image") -> np.ndarray:
    """Decode image bytes to a uint8 H x W x 3 RGB array, or raise InputError.

    The header is checked (format, width x height <= MAX_IMAGE_PIXELS) before any
    pixel is decoded; then the first frame is fully decoded, EXIF-oriented and
    converted to RGB as described in the module docstring.
    """
    label = shown_name(name)
    data = bytes(data)
    if not data:
        raise InputError(f"'{label}' is empty; choose a file that contains an image and retry.")
    if len(data) > MAX_IMAGE_BYTES:
        raise _image_too_heavy(label, len(data))
    with _open_image(data, label) as image:
        _check_header(image, label)
        frame = _decode_first_frame(image, label)
        return _to_rgb(frame, label)


def read_image_file(path: Path) -> np.ndarray:
    """Read an image file (at most MAX_IMAGE_BYTES) and decode it with `decode_image`."""
    path = Path(path)
    label = shown_name(path.name)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size > MAX_IMAGE_BYTES:
                raise _image_too_heavy(label, size)
            # Read one byte past the limit in case the file grew after fstat.
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"'{label}' could not be read ({exc.strerror or exc}); check the path and retry.") from exc
    if len(data) > MAX_IMAGE_BYTES:
        raise _image_too_heavy(label, len(data))
    return decode_image(data, path.name)


def _image_too_heavy(label: str, size: int) -> InputError:
    return InputError(
        f"'{label}' is {_megabytes(size)} MB, more than the {MAX_IMAGE_BYTES // 2**20} MB limit for images; "
        "resize or compress it and retry."
    )


def _megabytes(size: int) -> str:
    """Rounded up to 0.1 MB, so a file just over a limit never reads as equal to it."""
    return f"{math.ceil(size * 10 / 2**20) / 10:.1f}"


def _not_an_image(label: str) -> InputError:
    return InputError(
        f"'{label}' is not an image we can read ({_ADVERTISED} expected); "
        "export it again in one of these formats and retry."
    )


def _open_image(data: bytes, label: str) -> Image.Image:
    """Open lazily: Pillow reads the header only, no pixels yet."""
    try:
        return Image.open(io.BytesIO(data), formats=_OPEN_FORMATS)
    # The warning is only an exception when warnings are escalated; our own check refuses such sizes anyway.
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise InputError(
            f"'{label}' declares far more than {MAX_IMAGE_PIXELS / 1e6:.0f} megapixels "
            "(a possible decompression bomb); resize it and retry."
        ) from exc
    except Exception as exc:  # plugins raise OSError, SyntaxError, ValueError, struct.error... on bad headers
        raise _not_an_image(label) from exc


def _check_header(image: Image.Image, label: str) -> None:
    # `formats=` already limits what Pillow tries; this keeps the accepted list explicit.
    if image.format not in _ACCEPTED_FORMATS:
        raise _not_an_image(label)
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InputError(f"'{label}' has no pixels (its width or height is zero); export it again and retry.")
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(
            f"'{label}' is {width} x {height} pixels ({width * height / 1e6:.1f} megapixels), more than the "
            f"{MAX_IMAGE_PIXELS / 1e6:.0f}-megapixel limit; resize it and retry."
        )


def _decode_first_frame(image: Image.Image, label: str) -> Image.Image:
    try:
        image.seek(0)
        image.load()
    except Exception as exc:  # truncated data raises OSError; broken streams raise many kinds
        raise InputError(
            f"'{label}' is damaged or incomplete and could not be decoded; export or download it again and retry."
        ) from exc
    try:
        ImageOps.exif_transpose(image, in_place=True)
    except Exception:
        # Unreadable EXIF: the pixels are fine, so show them as stored rather than refuse the picture.
        pass
    return image


def _to_rgb(image: Image.Image, label: str) -> np.ndarray:
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES:
        return _grey_to_rgb(_scale_uint16(np.asarray(image)))
    if mode == "I":
        return _grey_to_rgb(_scale_int32(np.asarray(image)))
    if mode == "F":
        return _grey_to_rgb(_scale_float(np.asarray(image)))
    try:
        if image.has_transparency_data:
            return _over_white(np.asarray(image.convert("RGBA")))
        return np.array(image.convert("RGB") if mode != "RGB" else image, dtype=np.uint8)
    except Exception as exc:  # exotic modes Pillow cannot convert
        raise InputError(
            f"'{label}' uses a colour mode ({mode}) we cannot convert to RGB; "
            "save it as an 8-bit RGB PNG or JPEG and retry."
        ) from exc


def _grey_to_rgb(grey: np.ndarray) -> np.ndarray:
    return np.repeat(grey[:, :, None], 3, axis=2)


def _over_white(rgba: np.ndarray) -> np.ndarray:
    """Composite on white with exact rounding: round((c * a + 255 * (255 - a)) / 255)."""
    rgb = rgba[..., :3].astype(np.uint16)
    alpha = rgba[..., 3:4].astype(np.uint16)
    mixed = rgb * alpha + 255 * (255 - alpha)  # at most 255 * 255, fits uint16
    return ((mixed + 127) // 255).astype(np.uint8)


def _scale_uint16(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255, rounded (65535 -> 255, 32768 -> 128)."""
    wide = values.astype(np.uint32)
    return ((wide * 255 + 32767) // 65535).astype(np.uint8)


def _scale_int32(values: np.ndarray) -> np.ndarray:
    low, high = int(values.min()), int(values.max())
    if low >= 0 and high <= 65535:
        return _scale_uint16(values)
    return _stretch(values.astype(np.float64), low, high)


def _scale_float(values: np.ndarray) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.zeros(values.shape, dtype=np.uint8)
    low, high = float(finite.min()), float(finite.max())
    values = np.nan_to_num(values.astype(np.float64), nan=low, posinf=high, neginf=low)
    if low >= 0.0 and high <= 1.0:
        return np.rint(values * 255).astype(np.uint8)
    return _stretch(values, low, high)


def _stretch(values: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


# ----------------------------------------------------------------------------- text


@dataclass(frozen=True)
class CleanText:
    """Text ready for a model, and one plain sentence per change made to it."""

    text: str
    notices: tuple[str, ...]


_BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# C0/C1 controls except tab and newline, plus lone surrogates (they cannot be stored as UTF-8).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_WORD = re.compile(r"\S+")
# Work on a huge paste is bounded: anything past this is cut before cleaning (it would be truncated anyway).
_MAX_RAW_TEXT_CHARS = 100 * MAX_TEXT_CHARS


def clean_text(text: str | bytes, *, max_tokens: int | None = None) -> CleanText:
    """Decode, clean and bound user text, or raise InputError if nothing readable is left.

    Bytes are decoded as BOM-marked UTF-8/16/32, else UTF-16 without BOM when every
    other byte is zero, else UTF-8, else Windows-1252, else Latin-1 (with a notice).
    Newlines are normalised to "\\n". `max_tokens` keeps the first that many tokens
    as `models.loaded.tokenize` counts them.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    notices: list[str] = []
    if isinstance(text, (bytes, bytearray, memoryview)):
        text, encoding = _decode_text_bytes(bytes(text))
        if encoding in {"cp1252", "latin-1"}:
            notices.append(f"The text was not valid UTF-8, so it was read as {_ENCODING_NAMES[encoding]}.")
    raw = text.replace("\r\n", "\n").replace("\r", "\n")
    cut_early = len(raw) > _MAX_RAW_TEXT_CHARS
    cleaned = raw[:_MAX_RAW_TEXT_CHARS]

    for pattern, what in (
        (_BIDI_CONTROLS, "invisible text-direction character"),
        (_ZERO_WIDTH, "zero-width character"),
        (_CONTROLS, "control character"),
    ):
        cleaned, count = pattern.subn("", cleaned)
        if count:
            notices.append(f"Removed {_count(count, what)}.")
    cleaned = unicodedata.normalize("NFC", cleaned).strip()

    if not cleaned:
        if raw.strip():
            raise InputError(
                "The text contains only invisible or control characters; type some visible text and retry."
            )
        raise InputError("The text is empty; type or paste some text and retry.")

    cut_chars = cut_early or len(cleaned) > MAX_TEXT_CHARS
    if cut_chars:
        total = len(raw) if cut_early else len(cleaned)
        cleaned = cleaned[:MAX_TEXT_CHARS].rstrip()
        notices.append(f"The text had {total:,} characters; only the first {MAX_TEXT_CHARS:,} were kept.")

    if max_tokens is not None:
        cleaned, total_tokens = _keep_tokens(cleaned, max_tokens)
        if total_tokens > max_tokens:
            # After a character cut we only counted the words that were left.
            had = f"more than {total_tokens:,}" if cut_chars else f"{total_tokens:,}"
            notices.append(f"The text had {had} words; only the first {max_tokens:,} were kept.")
    return CleanText(text=cleaned, notices=tuple(notices))


def _keep_tokens(text: str, max_tokens: int) -> tuple[str, int]:
    """Cut `text` after its `max_tokens`-th token; also return how many tokens it had.

    `tokenize` strips punctuation and splits on whitespace, so each whitespace-separated
    chunk of the text yields at most one token: cutting after a chunk is exact.
    """
    count = 0
    cut = len(text)
    for chunk in _WORD.finditer(text):
        if tokenize(chunk.group()):
            count += 1
            if count == max_tokens:
                cut = chunk.end()
    return (text[:cut] if count > max_tokens else text), count


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


_ENCODING_NAMES = {"cp1252": "Windows-1252", "latin-1": "Latin-1"}
_BOMS = (  # longest first: the UTF-32 LE mark starts with the UTF-16 LE mark
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def _decode_text_bytes(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, encoding used). Never fails: Latin-1 maps every byte."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding
            except UnicodeDecodeError:
                break  # a BOM followed by damaged data: fall back like an unmarked file
    for encoding in (_guess_utf16(data), "utf-8", "cp1252"):
        if encoding is None:
            continue
        try:
            return data.decode(encoding), encoding
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1"), "latin-1"


def _guess_utf16(data: bytes) -> str | None:
    """UTF-16 without a BOM: mostly-Latin text has a zero in every other byte."""
    sample = data[:4096]
    if len(sample) < 4 or b"\x00" not in sample:
        return None
    even, odd = sample[0::2], sample[1::2]
    if odd.count(0) > 0.9 * len(odd) and even.count(0) < 0.1 * len(even):
        return "utf-16-le"
    if even.count(0) > 0.9 * len(even) and odd.count(0) < 0.1 * len(odd):
        return "utf-16-be"
    return None


# ----------------------------------------------------------------------- CSV export

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise_cell(value: Any) -> Any:
    """Make a cell safe to open in a spreadsheet: formula-like strings get a leading apostrophe.

    Non-strings (numbers, None, booleans) and strings that are plain numbers ("-5",
    "+1.5e3") are returned unchanged: a spreadsheet reads those as numbers, not formulas.
    """
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def write_safe_csv(
    rows: Iterable[Mapping[str, Any]],
    path_or_buffer: str | os.PathLike[str] | IO[str],
    fieldnames: Sequence[str],
) -> None:
    """Write rows as UTF-8 CSV with every cell (and header) neutralised.

    Missing keys are written as empty cells; a key not in `fieldnames` raises ValueError.
    A text buffer is written to as is; a path is created or overwritten.
    """
    if isinstance(path_or_buffer, (str, os.PathLike)):
        with open(path_or_buffer, "w", newline="", encoding="utf-8") as handle:
            _write_rows(rows, handle, fieldnames)
    else:
        _write_rows(rows, path_or_buffer, fieldnames)


def _write_rows(rows: Iterable[Mapping[str, Any]], handle: IO[str], fieldnames: Sequence[str]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow([neutralise_cell(str(name)) for name in fieldnames])
    known = set(fieldnames)
    for row in rows:
        extra = set(row) - known
        if extra:
            raise ValueError(f"row has keys not in fieldnames: {sorted(map(str, extra))}")
        writer.writerow([neutralise_cell(row.get(name, "")) for name in fieldnames])


def to_safe_csv_bytes(df: pd.DataFrame) -> bytes:
    """A DataFrame as UTF-8 CSV bytes (no index) with every cell and column name neutralised."""
    safe = df.map(neutralise_cell)
    safe.columns = [neutralise_cell(str(column)) for column in df.columns]
    return safe.to_csv(index=False, lineterminator="\n").encode("utf-8")


# ------------------------------------------------------------------------ CSV input

LINE_COLUMN = "__line__"
_DELIMITERS = (",", ";", "\t", "|")
_DELIMITER_NAMES = {",": "a comma", ";": "a semicolon", "\t": "a tab", "|": "a bar"}
_SNIFF_CHARS = 64 * 1024
_SNIFF_ROWS = 50


def read_table_csv(data: bytes, name: str = "file.csv") -> pd.DataFrame:
    """Parse user CSV bytes into a DataFrame of strings plus the int column `__line__`.

    Encoding: BOM (UTF-8, UTF-16/32), else UTF-16 without BOM when every other byte is
    zero, else UTF-8, else Windows-1252, else Latin-1.
    Delimiter: whichever of , ; tab | gives the most consistent rows of 2+ columns
    (a comma if none does). Header names are stripped; an empty one becomes
    `column_<n>`. Short rows are padded with ""; extra empty trailing cells are
    dropped; extra non-empty cells, duplicate names, bad quoting, binary data,
    no data rows, more than MAX_CSV_BYTES or MAX_CSV_ROWS raise InputError.
    """
    label = shown_name(name)
    data = bytes(data)
    if len(data) > MAX_CSV_BYTES:
        raise InputError(
            f"'{label}' is {_megabytes(len(data))} MB, more than the {MAX_CSV_BYTES // 2**20} MB limit for tables; "
            "split it into smaller files and retry."
        )
    text, _ = _decode_text_bytes(data)
    if "\x00" in text:
        raise InputError(
            f"'{label}' is not CSV text (it looks like binary data, perhaps a spreadsheet); save it as CSV and retry."
        )
    if not text.strip():
        raise InputError(f"'{label}' is empty; add a header line and rows, then retry.")
    delimiter = _sniff_delimiter(text)
    records, lines = _read_records(text, delimiter, label)
    header = _header(records[0], label)
    if len(records) == 1:
        raise InputError(f"'{label}' has a header but no data rows; add rows and retry.")
    rows = [_fit_row(row, len(header), line, delimiter, label) for row, line in zip(records[1:], lines[1:])]
    table = pd.DataFrame(rows, columns=header, dtype=str)
    table[LINE_COLUMN] = np.asarray(lines[1:], dtype=np.int64)
    return table


def _sniff_delimiter(text: str) -> str:
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rfind("\n")]  # drop the partial last line
    best, best_score = ",", (0.0, 0)
    for delimiter in _DELIMITERS:
        widths: list[int] = []
        try:
            for row in csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter):
                if any(cell.strip() for cell in row):
                    widths.append(len(row))
                if len(widths) >= _SNIFF_ROWS:
                    break
        except csv.Error:
            continue
        if not widths or widths[0] < 2:
            continue
        score = (sum(width == widths[0] for width in widths) / len(widths), widths[0])
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_records(text: str, delimiter: str, label: str) -> tuple[list[list[str]], list[int]]:
    """Non-blank records and the line on which each starts."""
    # newline="" lets csv see \r\n inside quoted values, and line_num count physical lines.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                records.append(row)
                lines.append(start)
                if len(records) > MAX_CSV_ROWS + 1:
                    raise InputError(
                        f"'{label}' has more than {MAX_CSV_ROWS:,} rows; split it into smaller files and retry."
                    )
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            problem = f"has a value longer than {csv.field_size_limit():,} characters"
        else:
            problem = "has a misplaced or unclosed quote"
        raise InputError(f"Line {start} of '{label}' {problem}; fix that line and retry.") from exc
    return records, lines


def _header(names: list[str], label: str) -> list[str]:
    header = [name.strip() or f"column_{index}" for index, name in enumerate(names, start=1)]
    seen: set[str] = set()
    for name in header:
        if name == LINE_COLUMN:
            raise InputError(
                f"'{label}' uses the reserved column name '{LINE_COLUMN}'; rename that column and retry."
            )
        if name in seen:
            raise InputError(f"'{label}' has two columns named '{shown_name(name)}'; rename one and retry.")
        seen.add(name)
    return header


def _fit_row(row: list[str], width: int, line: int, delimiter: str, label: str) -> list[str]:
    if len(row) > width:
        if any(cell.strip() for cell in row[width:]):
            raise InputError(
                f"Line {line} of '{label}' has {len(row)} values but the header has {width} columns; "
                f"put quotes around values that contain {_DELIMITER_NAMES[delimiter]} and retry."
            )
        return row[:width]
    return row + [""] * (width - len(row))
