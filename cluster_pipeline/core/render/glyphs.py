"""Text from glyphs rasterised once: ``GlyphDraw`` is Pillow's ``ImageDraw`` whose ``text`` and
``textlength`` compose a string from cached per-character masks.

Pillow lays out and rasterises a whole string through FreeType on every call: ~0.6 ms for a
35-character label on the project's machine, and the pictures of a 100-cluster execution draw
about 400 of them (half of the pictures stage at 100k documents). Pillow's basic layout applies no
kerning with the bundled font and its hinted advances are whole pixels, so a line of text is its
characters side by side at their advances: each character is rasterised once per font and its
coverage pasted as an alpha mask, as Pillow pastes the string's. What this does not cover (several
lines, centred or top/bottom anchors, other options, another font type) Pillow draws itself.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# the anchors whose vertical position depends on the font alone (not on the text's ink)
_VERTICAL = "ams"


class _Glyphs:
    """One font's glyph masks and advances, and where its baseline lies below each vertical anchor."""

    def __init__(self, font: ImageFont.FreeTypeFont) -> None:
        self.font = font
        top = font.getbbox("H", anchor="ls")[1]
        self.baseline = {v: font.getbbox("H", anchor="l" + v)[1] - top for v in _VERTICAL}
        self._glyphs: dict[str, tuple[np.ndarray, int, int, float]] = {}

    def glyph(self, char: str) -> tuple[np.ndarray, int, int, float]:
        """``char``'s coverage (rows, columns) uint8, its left and top from the pen on the baseline, its advance."""
        found = self._glyphs.get(char)
        if found is None:
            left, top, right, bottom = (int(v) for v in self.font.getbbox(char, anchor="ls"))
            coverage = np.zeros((max(bottom - top, 0), max(right - left, 0)), dtype=np.uint8)
            if coverage.size:
                image = Image.new("L", (right - left, bottom - top))
                ImageDraw.Draw(image).text((-left, -top), char, fill=255, font=self.font, anchor="ls")
                coverage = np.asarray(image)
            found = self._glyphs[char] = (coverage, left, top, float(self.font.getlength(char)))
        return found

    def length(self, text: str) -> float:
        return sum(self.glyph(char)[3] for char in text)

    def coverage(self, text: str) -> tuple[np.ndarray, int, int]:
        """The string's coverage, and its left and top from the pen's start on the baseline."""
        placed, pen = [], 0.0
        for char in text:
            mask, left, top, advance = self.glyph(char)
            if mask.size:
                placed.append((mask, int(round(pen)) + left, top))
            pen += advance
        if not placed:
            return np.zeros((0, 0), dtype=np.uint8), 0, 0
        x0 = min(x for _, x, _ in placed)
        y0 = min(y for _, _, y in placed)
        x1 = max(x + mask.shape[1] for mask, x, _ in placed)
        y1 = max(y + mask.shape[0] for mask, _, y in placed)
        canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        for mask, x, y in placed:  # overlapping glyphs keep the larger coverage, as FreeType's string does
            window = canvas[y - y0 : y - y0 + mask.shape[0], x - x0 : x - x0 + mask.shape[1]]
            np.maximum(window, mask, out=window)
        return canvas, x0, y0


@cache
def _glyphs(font: ImageFont.FreeTypeFont) -> _Glyphs:
    return _Glyphs(font)


class GlyphDraw(ImageDraw.ImageDraw):
    """``ImageDraw`` drawing single lines of a FreeType font from cached glyphs (see the module doc)."""

    def text(
        self,
        xy: Any,
        text: Any,
        fill: Any = None,
        font: Any = None,
        anchor: str | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> None:  # type: ignore[override]
        anchor = anchor or "la"
        simple = not args and not kwargs and isinstance(text, str) and "\n" not in text
        if not (simple and isinstance(font, ImageFont.FreeTypeFont) and anchor[0] in "lr" and anchor[1] in _VERTICAL):
            return super().text(xy, text, fill, font, anchor, *args, **kwargs)
        glyphs = _glyphs(font)
        coverage, left, top = glyphs.coverage(text)
        if not coverage.size:
            return None
        width = glyphs.length(text)
        start = xy[0] - (width if anchor[0] == "r" else 0.0)
        baseline = xy[1] + glyphs.baseline[anchor[1]]
        self.bitmap((int(start) + left, int(baseline) + top), Image.fromarray(coverage, "L"), fill=fill)
        return None

    def textlength(self, text: Any, font: Any = None, *args: Any, **kwargs: Any) -> float:  # type: ignore[override]
        if args or kwargs or not isinstance(font, ImageFont.FreeTypeFont) or not isinstance(text, str) or "\n" in text:
            return float(super().textlength(text, font, *args, **kwargs))
        return _glyphs(font).length(text)
