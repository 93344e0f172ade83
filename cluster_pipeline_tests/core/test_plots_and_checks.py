import io

import numpy as np
import pytest
from PIL import Image

from cluster_pipeline.core.config import QualityChecks
from cluster_pipeline.core.plots import projection_png, sizes_png
from cluster_pipeline.core.quality_checks import evaluate_checks
from cluster_pipeline.core.report import html_report, markdown_summary
from cluster_pipeline_tests.core.test_results import completed


def _image(png: bytes) -> Image.Image:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(png))
    image.verify()
    return Image.open(io.BytesIO(png))


def test_projection_is_a_reasonable_png_and_samples_large_inputs():
    rng = np.random.default_rng(0)
    space = rng.normal(size=(30_000, 20)).astype(np.float32)
    labels = rng.integers(-1, 3, size=30_000)
    png = projection_png(space, labels, ["Rockets", "Pasta", "Football"], max_points=5_000)
    image = _image(png)
    assert image.size[0] > 500 and image.size[1] > 400
    assert 10_000 < len(png) < 400_000
    colours = np.asarray(image.convert("RGB")).reshape(-1, 3)
    assert len(np.unique(colours, axis=0)) > 50  # drawn points, not a blank canvas


def test_sizes_chart():
    image = _image(sizes_png([50, 30, 20], ["A", "B", "C"], num_noise=7))
    assert image.size[0] > 300


def test_checks_pass_and_fail_on_crafted_results():
    result = completed()  # silhouette 0.85, DB 0.42, clusters 6 and 4 of 10 points
    defaults = {o.name: o for o in evaluate_checks(result, QualityChecks())}
    assert all(o.passed for o in defaults.values())
    assert defaults["ari_vs_previous"].description == "no previous execution to compare with"
    strict = QualityChecks(
        min_silhouette=0.9,
        max_davies_bouldin=0.4,
        max_cluster_fraction=0.5,
        max_noise_fraction=0.05,
        min_ari_vs_previous=0.8,
    )
    drifting = result.with_updates(num_noise=2, drift={"adjusted_rand_index": 0.3, "previous_run_id": "run_x"})
    outcomes = {o.name: o for o in evaluate_checks(drifting, strict)}
    assert {name for name, o in outcomes.items() if not o.passed} == {
        "silhouette_threshold",
        "davies_bouldin_threshold",
        "largest_cluster_fraction",
        "noise_fraction",
        "ari_vs_previous",
    }
    assert outcomes["largest_cluster_fraction"].value == pytest.approx(0.6)
    assert outcomes["silhouette_threshold"].description == "silhouette 0.85 < 0.9"


def test_markdown_and_html_render_escaped_text_and_inline_images():
    result = completed()
    result = result.with_updates(centroids=[result.centroids[0].__class__("cl_0", 6, "<script>x</script>", "s", ["k"])])
    png = sizes_png([6], ["x"])
    markdown = markdown_summary(result, {"sizes": png})
    assert "| silhouette | 0.850" in markdown and "![sizes](data:image/png;base64," in markdown
    page = html_report(result, {"sizes": png})
    assert "&lt;script&gt;" in page and "<script>x" not in page and 'src="data:image/png;base64,' in page
