"""Builders of a hostile-input corpus, for any test that feeds user files to the workbench.

Each `make_*` function writes one file into a folder and returns its path;
`build_corpus(folder)` writes them all and returns {name: path}. Everything is
deterministic and cheap: the bombs are crafted so they are tiny on disk and fast to
build (the whole corpus takes well under a second).

    from tests.workbench.hostile import build_corpus   # from the repo root
"""
from __future__ import annotations

import csv
import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from workbench.inputs import MAX_ARCHIVE_TOTAL_BYTES, MAX_CSV_BYTES

# ------------------------------------------------------------------- crafted bytes


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def crafted_png(width: int, height: int, bit_depth: int = 1) -> bytes:
    """A valid greyscale PNG of zeros whose pixels are never materialised while building it.

    The IDAT is streamed through zlib row batch by row batch, so a 20000 x 20000 file
    is a few tens of kilobytes and builds in a fraction of a second.
    """
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    row = bytes(1 + (width * bit_depth + 7) // 8)  # filter byte + packed pixels
    compressor = zlib.compressobj(9)
    parts, batch = [], 256
    for start in range(0, height, batch):
        parts.append(compressor.compress(row * min(batch, height - start)))
    parts.append(compressor.flush())
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def crafted_zip(members: list[tuple[str, bytes, int]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A ZIP whose entries (name, real content, declared size) may lie about their size.

    Written by hand so a bomb can reuse one compressed block for many entries. The data
    is always deflated; `method` is only what the headers claim (9 = Deflate64, which
    Python cannot read, makes an archive in an unsupported compression method).
    """
    local, central = io.BytesIO(), io.BytesIO()
    cache: dict[bytes, tuple[bytes, int]] = {}
    for name, content, declared in members:
        if content not in cache:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
            cache[content] = (compressor.compress(content) + compressor.flush(), zlib.crc32(content))
        packed, crc = cache[content]
        encoded = name.encode("utf-8")
        offset = local.tell()
        local.write(
            struct.pack(
                "<4s5H3L2H", b"PK\x03\x04", 20, 0x800, method, 0, 0x21,
                crc, len(packed), declared, len(encoded), 0,
            )
        )
        local.write(encoded + packed)
        central.write(
            struct.pack(
                "<4s4B4H3L5H2L", b"PK\x01\x02", 20, 3, 20, 0, 0x800, method, 0, 0x21,
                crc, len(packed), declared, len(encoded), 0, 0, 0, 0, 0o100644 << 16, offset,
            )
        )
        central.write(encoded)
    directory = central.getvalue()
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(members), len(members), len(directory), local.tell(), 0)
    return local.getvalue() + directory + end


def _zip_bytes(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, content in entries:
            archive.writestr(name, content)
    return buffer.getvalue()


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = Path(folder) / name
    path.write_bytes(data)
    return path


def _save(folder: Path, name: str, image: Image.Image, **options) -> Path:
    path = Path(folder) / name
    image.save(path, **options)
    return path


def _noise(size: int = 64, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


# ------------------------------------------------------------------------- images

# Known pixels and the RGB each must become (transparent pixels composite on white).
RGBA_PIXELS = [(255, 0, 0, 0), (255, 0, 0, 128), (0, 0, 255, 255), (10, 20, 30, 255)]
RGBA_EXPECTED = [(255, 255, 255), (255, 127, 127), (0, 0, 255), (10, 20, 30)]
LA_PIXELS = [(0, 0), (0, 255), (100, 128), (200, 255)]
LA_EXPECTED = [255, 0, 177, 200]  # round(l * a / 255 + 255 * (255 - a) / 255)
GREY16_VALUES = [0, 65535, 32768, 4095]
GREY16_EXPECTED = [0, 255, 128, 16]  # round(v * 255 / 65535): scaled, never clipped
CMYK_PIXELS = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 0, 0, 255), (0, 255, 255, 0)]
CMYK_EXPECTED = [(255, 255, 255), (0, 255, 255), (0, 0, 0), (255, 0, 0)]


def make_bomb_png(folder: Path) -> Path:
    """20000 x 20000 (400 megapixels) declared, ~60 KB on disk: past Pillow's own bomb limit."""
    return _write(folder, "bomb.png", crafted_png(20000, 20000))


def make_oversize_png(folder: Path) -> Path:
    """6000 x 5000 (30 megapixels): over our 25 MP limit but under Pillow's warning threshold."""
    return _write(folder, "oversize.png", crafted_png(6000, 5000))


def make_zero_size_png(folder: Path) -> Path:
    return _write(folder, "zero_size.png", crafted_png(0, 10, bit_depth=8))


def make_truncated_png(folder: Path) -> Path:
    buffer = io.BytesIO()
    _noise().save(buffer, "PNG")
    data = buffer.getvalue()
    return _write(folder, "truncated.png", data[: len(data) // 2])


def make_truncated_jpeg(folder: Path) -> Path:
    buffer = io.BytesIO()
    _noise().save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    return _write(folder, "truncated.jpg", data[: len(data) // 2])


def make_garbage_png(folder: Path) -> Path:
    return _write(folder, "garbage.png", np.random.default_rng(1).bytes(4096))


def make_text_as_jpg(folder: Path) -> Path:
    return _write(folder, "notes.jpg", b"Meeting notes: this is plain text renamed to .jpg\n")


def make_empty_png(folder: Path) -> Path:
    return _write(folder, "empty.png", b"")


def make_rgba_png(folder: Path) -> Path:
    image = Image.new("RGBA", (len(RGBA_PIXELS), 1))
    image.putdata(RGBA_PIXELS)
    return _save(folder, "rgba.png", image)


def make_la_png(folder: Path) -> Path:
    image = Image.new("LA", (len(LA_PIXELS), 1))
    image.putdata(LA_PIXELS)
    return _save(folder, "la.png", image)


def make_palette_png(folder: Path) -> Path:
    """Palette image: index 0 red but fully transparent, index 1 opaque green."""
    image = Image.new("P", (2, 1))
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.putdata([0, 1])
    return _save(folder, "palette.png", image, transparency=0)


def make_cmyk_tiff(folder: Path) -> Path:
    image = Image.new("CMYK", (len(CMYK_PIXELS), 1))
    image.putdata(CMYK_PIXELS)
    return _save(folder, "cmyk.tif", image)


def make_cmyk_jpeg(folder: Path) -> Path:
    """Pillow writes Adobe CMYK JPEGs (inverted channels): all-zero ink must read back as white."""
    return _save(folder, "cmyk.jpg", Image.new("CMYK", (16, 16), (0, 0, 0, 0)), quality=95)


def make_grey16_png(folder: Path) -> Path:
    values = np.array([GREY16_VALUES], dtype=np.uint16)
    return _save(folder, "grey16.png", Image.fromarray(values))


def make_grey_png(folder: Path) -> Path:
    return _save(folder, "grey.png", Image.fromarray(np.array([[0, 77, 255]], dtype=np.uint8), "L"))


def make_bilevel_png(folder: Path) -> Path:
    image = Image.new("1", (2, 1))
    image.putdata([0, 255])
    return _save(folder, "bilevel.png", image)


# Stored 64 wide x 32 high, red square at the stored top-left, EXIF orientation 6
# ("rotate 90 degrees clockwise to display"): shown 32 wide x 64 high, square at the top-right.
EXIF_STORED_SIZE = (64, 32)  # (width, height)
EXIF_RED_BOX = (0, 0, 16, 16)  # stored (left, top, right, bottom)


def make_exif_rotated_jpeg(folder: Path) -> Path:
    image = Image.new("RGB", EXIF_STORED_SIZE, (255, 255, 255))
    image.paste((255, 0, 0), EXIF_RED_BOX)
    exif = Image.Exif()
    exif[0x0112] = 6
    return _save(folder, "rotated.jpg", image, quality=95, exif=exif.tobytes())


def make_animated_gif(folder: Path) -> Path:
    """Two frames: solid red first, solid blue second."""
    red, blue = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (0, 0, 255))
    return _save(folder, "animated.gif", red, save_all=True, append_images=[blue], duration=100, loop=0)


# ----------------------------------------------------------------------- archives


def make_zip_slip(folder: Path) -> Path:
    """A harmless file first, then entries that climb out or are absolute."""
    return _write(folder, "slip.zip", _zip_bytes([("good.txt", b"ok"), ("../evil.txt", b"evil"), ("/abs.txt", b"abs")]))


def make_zip_bomb(folder: Path) -> Path:
    """Real bomb: 1 MiB of zeros per entry, one entry past MAX_ARCHIVE_TOTAL_BYTES in total (~0.5 MB on disk)."""
    block = bytes(1 << 20)
    count = MAX_ARCHIVE_TOTAL_BYTES // len(block) + 1
    return _write(folder, "bomb.zip", crafted_zip([(f"zeros_{i:04d}.bin", block, len(block)) for i in range(count)]))


def make_lying_zip(folder: Path) -> Path:
    """Declares 1,000 bytes but its data expands to 8 MiB: only the real byte count can be trusted."""
    return _write(folder, "lying.zip", crafted_zip([("small.txt", bytes(8 << 20), 1000)]))


def make_nested_zip(folder: Path) -> Path:
    """One usable file among a nested zip, a folder entry and macOS/Windows clutter."""
    inner = _zip_bytes([("inner.txt", b"inside")])
    folder_entry = zipfile.ZipInfo("photos/")
    return _write(
        folder,
        "nested.zip",
        _zip_bytes([
            ("readme.txt", b"hello"),
            ("inner.zip", inner),
            (folder_entry, b""),
            ("photos/cat.txt", b"meow"),
            ("__MACOSX/._readme.txt", b"junk"),
            (".DS_Store", b"junk"),
        ]),
    )


def make_symlink_zip(folder: Path) -> Path:
    link = zipfile.ZipInfo("link")
    link.create_system = 3  # Unix, so the high 16 bits are a st_mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _write(folder, "symlink.zip", _zip_bytes([("ok.txt", b"ok"), (link, b"../../etc/passwd")]))


def make_corrupt_zip(folder: Path) -> Path:
    """The first half of a real zip: no central directory."""
    data = _zip_bytes([("a.txt", b"some text " * 100)])
    return _write(folder, "corrupt.zip", data[: len(data) // 2])


def make_bad_crc_zip(folder: Path) -> Path:
    """A good entry, then a stored entry whose bytes were altered after the CRC was taken."""
    data = bytearray(_zip_bytes([("first.txt", b"intact"), ("second.txt", b"ABCDEFGH")], zipfile.ZIP_STORED))
    position = data.index(b"ABCDEFGH")
    data[position] = ord("X")
    return _write(folder, "bad_crc.zip", bytes(data))


# ---------------------------------------------------------------------------- CSV

# One table written in several encodings and dialects; all must parse the same.
TABLE = [
    ["name", "note", "price"],
    ["Café", "naïve – 5 €", "1,5"],
    ["Zoë", "two\nlines", "2"],
    ["Ørsted", "plain", "3"],
]
TABLE_LINES = [2, 3, 5]  # the quoted newline makes Zoë's row span lines 3-4


def _csv_bytes(rows: list[list[str]], delimiter: str, encoding: str, terminator: str = "\r\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=terminator).writerows(rows)
    return buffer.getvalue().encode(encoding)


def make_utf8_csv(folder: Path) -> Path:
    return _write(folder, "table_utf8.csv", _csv_bytes(TABLE, ",", "utf-8", "\n"))


def make_utf16_csv(folder: Path) -> Path:
    """UTF-16 with a byte-order mark, as Excel's "Unicode text" export writes."""
    return _write(folder, "table_utf16.csv", _csv_bytes(TABLE, ",", "utf-16"))


def make_semicolon_cp1252_csv(folder: Path) -> Path:
    """European Excel: semicolons, decimal commas, Windows-1252."""
    return _write(folder, "table_semicolon_cp1252.csv", _csv_bytes(TABLE, ";", "cp1252"))


def make_tab_utf8_sig_csv(folder: Path) -> Path:
    return _write(folder, "table_tab_bom.csv", _csv_bytes(TABLE, "\t", "utf-8-sig"))


FORMULA_ROWS = [
    ["text", "value"],
    ["=1+1", "1"],
    ["+cmd|' /C calc'!A0", "2"],
    ["-2+3", "-5"],
    ["@SUM(A1:A2)", "3"],
    ["\tindented", "4"],
    ["plain", "5"],
]


def make_formula_csv(folder: Path) -> Path:
    return _write(folder, "formulas.csv", _csv_bytes(FORMULA_ROWS, ",", "utf-8"))


def make_oversized_csv(folder: Path) -> Path:
    header = b"a,b\n"
    body = b"1,2\n" * ((MAX_CSV_BYTES - len(header)) // 4 + 1)
    return _write(folder, "oversized.csv", header + body)


# --------------------------------------------------------------------------- text

HOSTILE_TEXT = "Invoice\u202e fdp.exe\u202c for\u200b Bob\x07\x00 now\r\nok\u2066x\u2069\ufeff"
HOSTILE_TEXT_CLEAN = "Invoice fdp.exe for Bob now\nokx"


def make_bidi_text(folder: Path) -> Path:
    return _write(folder, "bidi.txt", HOSTILE_TEXT.encode("utf-8"))


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "bomb_png": make_bomb_png,
    "oversize_png": make_oversize_png,
    "zero_size_png": make_zero_size_png,
    "truncated_png": make_truncated_png,
    "truncated_jpeg": make_truncated_jpeg,
    "garbage_png": make_garbage_png,
    "text_as_jpg": make_text_as_jpg,
    "empty_png": make_empty_png,
    "rgba_png": make_rgba_png,
    "la_png": make_la_png,
    "palette_png": make_palette_png,
    "cmyk_tiff": make_cmyk_tiff,
    "cmyk_jpeg": make_cmyk_jpeg,
    "grey16_png": make_grey16_png,
    "grey_png": make_grey_png,
    "bilevel_png": make_bilevel_png,
    "exif_rotated_jpeg": make_exif_rotated_jpeg,
    "animated_gif": make_animated_gif,
    "zip_slip": make_zip_slip,
    "zip_bomb": make_zip_bomb,
    "lying_zip": make_lying_zip,
    "nested_zip": make_nested_zip,
    "symlink_zip": make_symlink_zip,
    "corrupt_zip": make_corrupt_zip,
    "bad_crc_zip": make_bad_crc_zip,
    "utf8_csv": make_utf8_csv,
    "utf16_csv": make_utf16_csv,
    "semicolon_cp1252_csv": make_semicolon_cp1252_csv,
    "tab_utf8_sig_csv": make_tab_utf8_sig_csv,
    "formula_csv": make_formula_csv,
    "oversized_csv": make_oversized_csv,
    "bidi_text": make_bidi_text,
}

# Files that `decode_image` must refuse with InputError.
REFUSED_IMAGES = (
    "bomb_png", "oversize_png", "zero_size_png", "truncated_png", "truncated_jpeg",
    "garbage_png", "text_as_jpg", "empty_png",
)
# Archives that `safe_extract_zip` must refuse whole, leaving nothing behind.
REFUSED_ZIPS = ("zip_slip", "zip_bomb", "lying_zip", "symlink_zip", "corrupt_zip", "bad_crc_zip")


def build_corpus(folder: Path) -> dict[str, Path]:
    """Write every hostile file into `folder` (created if needed); return {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return {name: build(folder) for name, build in BUILDERS.items()}
