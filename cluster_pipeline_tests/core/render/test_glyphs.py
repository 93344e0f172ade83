import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from cluster_pipeline.core.render.glyphs import GlyphDraw

TEXTS = ("cl_12 Wolf Yankees Sox (34.5 %)", "… 60 more (sizes chart)", "Ty, Vo. gjq", "documents (share of all)")


def drawn(draw_class, text, font, anchor):
    image = Image.new("RGB", (500, 60), "white")
    draw_class(image).text((250, 30), text, fill=(20, 30, 40), font=font, anchor=anchor)
    return np.asarray(image, dtype=int)


@pytest.mark.parametrize("size", [11, 13, 14])
@pytest.mark.parametrize("anchor", ["la", "lm", "rm", "ls", "ra"])
def test_text_from_cached_glyphs_is_what_pillow_draws(size, anchor):
    font = ImageFont.load_default(size=size)
    for text in TEXTS:
        ours, pillows = drawn(GlyphDraw, text, font, anchor), drawn(ImageDraw.ImageDraw, text, font, anchor)
        ink = int((pillows.min(axis=2) < 255).sum())
        moved = int((np.abs(ours - pillows).max(axis=2) > 48).sum())
        assert ink > 100 and moved <= 0.01 * ink, (text, moved, ink)  # the same glyphs in the same places
        probe = Image.new("RGB", (1, 1))
        assert GlyphDraw(probe).textlength(text, font=font) == ImageDraw.Draw(probe).textlength(text, font=font)


@pytest.mark.parametrize(("text", "anchor"), [("two\nlines", "la"), ("centred", "mm"), ("top", "mt"), ("", "la")])
def test_what_glyphs_do_not_cover_pillow_draws_itself(text, anchor):
    font = ImageFont.load_default(size=13)
    if "\n" in text:
        anchor = None  # Pillow draws several lines only from the default anchor
    np.testing.assert_array_equal(drawn(GlyphDraw, text, font, anchor), drawn(ImageDraw.ImageDraw, text, font, anchor))
