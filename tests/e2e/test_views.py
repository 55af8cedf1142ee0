"""The Disentanglement view (models with ground-truth metrics only), the model chooser's thumbnails, and 64x64 models
beside the 28x28 ones: the tiny sprites models of sprites_model.py, served with the tiny MNIST ones."""

from __future__ import annotations

import base64

import httpx
import pytest

from .conftest import PHONE, new_page, served_models
from .sprites_model import (
    BASELINE_SCORES,
    SCORES,
    SPRITES_BASELINE_ID,
    SPRITES_BEST,
    SPRITES_CODES,
    SPRITES_FACTORS,
    SPRITES_ID,
    SPRITES_LABELS,
    SPRITES_MI,
)
from .test_explorer import main_src, open_page, settle

pytestmark = pytest.mark.browser


def has_disentanglement(model: dict) -> bool:
    return isinstance((model.get("metrics") or {}).get("disentanglement"), dict)


def test_disentanglement_tab_only_for_models_with_factor_metrics(page, server):
    models = served_models(server)
    assert any(has_disentanglement(m) for m in models) and not all(has_disentanglement(m) for m in models)
    open_page(page, "model=tiny&seed=3")
    for model in models:
        page.locator("#model").select_option(model["id"])
        settle(page)
        assert page.get_by_role("tab", name="Disentanglement").is_visible() == has_disentanglement(model), model["id"]
    # a link into the view for a model without the metrics opens on Explore instead
    open_page(page, "model=tiny&seed=3&view=factors")
    assert page.evaluate("() => window.explorer.state().view") == "explore"
    assert page.locator("#view-factors").is_hidden()


def test_disentanglement_view(page):
    open_page(page, f"model={SPRITES_ID}&seed=3")
    page.get_by_role("tab", name="Disentanglement").click()
    settle(page)
    assert "view=factors" in page.url
    view = page.locator("#view-factors")
    # the heatmap: one cell per (code, factor), rows and columns labelled, the value in each cell's title
    cells = view.locator(".hm-cell")
    assert cells.count() == len(SPRITES_CODES) * len(SPRITES_FACTORS)
    assert view.locator(".hm-row").all_text_contents() == [
        f"{c} ({SPRITES_LABELS[c]})" if c in SPRITES_LABELS else c for c in SPRITES_CODES
    ]
    assert view.locator(".hm-col").all_text_contents() == SPRITES_FACTORS
    for i, code in enumerate(SPRITES_CODES):
        for j, factor in enumerate(SPRITES_FACTORS):
            cell = view.locator(f'.hm-cell[data-code="{code}"][data-factor="{factor}"]')
            title = cell.locator("title").text_content()
            mi = SPRITES_MI[i][j]
            assert title.startswith(f"{code} × {factor}: ")
            assert (f"MI {mi:.3f} nats" in title) if mi is not None else "undefined" in title
    # each code's best factor is outlined, once per row
    best = view.locator(".hm-cell.best")
    assert {
        (best.nth(k).get_attribute("data-code"), best.nth(k).get_attribute("data-factor")) for k in range(5)
    } == set(SPRITES_BEST.items())
    # the scores beside the published anchors, and the side-by-side baseline's scores (its compare_with)
    rows = {r.get_attribute("data-score"): r for r in view.locator("tr[data-score]").all()}
    assert set(rows) == {"factor_vae", "mig", "dci_d", "dci_c", "dci_i", "sap"}
    for key in ("factor_vae", "mig", "sap"):
        values = rows[key].locator(".score-value").all_text_contents()
        assert values == [f"{SCORES[key]:.3f}", f"{BASELINE_SCORES[key]:.3f}"]
    fvae = rows["factor_vae"].locator(".published").inner_text()
    for text in ("InfoGAN 0.59", "InfoGAN-CR 0.88", "ModelCentrality 0.92", "FactorVAE (a VAE) 0.82"):
        assert text in fvae
    assert "InfoGAN-CR 0.35" in rows["mig"].locator(".published").inner_text()
    assert rows["factor_vae"].locator(".score-anchor").count() == 4
    assert "Lin et al., ICML 2020" in rows["mig"].locator(".anchor").first.get_attribute("title")
    # InfoGAN-CR's FactorVAE is its own variant of the score: the page says the comparison is not exact
    assert "its own variant of the score" in view.locator("p.hint").first.inner_text()
    # switching to a model without the metrics leaves the view (its tab is gone)
    page.locator("#model").select_option("tiny")
    settle(page)
    assert page.evaluate("() => window.explorer.state().view") == "explore"


def test_slider_captions_name_the_best_factor(page, server):
    sprites = next(m for m in served_models(server) if m["id"] == SPRITES_ID)
    open_page(page, f"model={SPRITES_ID}&seed=3")
    for code in sprites["codes"]:
        slider = page.get_by_role("slider", name=code["name"], exact=True)
        caption = page.locator(f"#{slider.get_attribute('aria-describedby')}").inner_text()
        if code["name"] in SPRITES_LABELS:  # the manifest's label wins (the server's caption holds it)
            assert caption == code["caption"] and caption.startswith(SPRITES_LABELS[code["name"]])
        else:
            assert caption == f"≈ {SPRITES_BEST[code['name']]} · {code['caption']}"
    # a model without ground-truth metrics keeps the server's captions as they are
    page.locator("#model").select_option("tiny")
    settle(page)
    tiny = next(m for m in served_models(server) if m["id"] == "tiny")
    c1 = next(c for c in tiny["codes"] if c["name"] == "c1")
    slider = page.get_by_role("slider", name="c1", exact=True)
    assert page.locator(f"#{slider.get_attribute('aria-describedby')}").inner_text() == c1["caption"]


def thumbnails(page):
    page.wait_for_function("() => window.explorer.idle()", timeout=15_000)
    return page.locator("#chooser .thumb")


def test_chooser_shows_one_thumbnail_per_model_and_switches(page, server):
    models = served_models(server)
    open_page(page, "")
    thumbs = thumbnails(page)
    assert [t.get_attribute("data-model") for t in thumbs.all()] == [m["id"] for m in models]
    first = models[0]["id"]
    assert page.locator("#chooser .thumb[aria-pressed=true]").get_attribute("data-model") == first
    # every thumbnail painted, at its model's own size (64x64 sprites beside 28x28 digits)
    for thumb, model in zip(thumbs.all(), models, strict=True):
        canvas = thumb.locator("canvas")
        assert canvas.get_attribute("data-painted") is not None, model["id"]
        size = canvas.evaluate("(c) => [c.width, c.height]")
        assert size == [model["image"]["width"], model["image"]["height"]]
    sizes = {(m["image"]["width"], m["image"]["height"]) for m in models}
    assert {(28, 28), (64, 64)} <= sizes
    # choosing a thumbnail selects its model: select, URL, controls and the picture follow
    before = main_src(page)
    page.locator(f'#chooser .thumb[data-model="{SPRITES_ID}"]').click()
    settle(page)
    assert page.locator("#model").input_value() == SPRITES_ID
    assert f"model={SPRITES_ID}" in page.url
    assert page.locator(f'#chooser .thumb[data-model="{SPRITES_ID}"]').get_attribute("aria-pressed") == "true"
    assert page.locator("#chooser .thumb[aria-pressed=true]").count() == 1
    assert page.get_by_role("slider").count() == len(SPRITES_CODES)
    assert page.locator("#main-image").evaluate("(c) => [c.width, c.height]") == [64, 64]
    assert main_src(page) != before
    # the select still switches (keyboards), and the chooser follows it
    page.locator("#model").select_option("tiny")
    settle(page)
    assert page.locator('#chooser .thumb[data-model="tiny"]').get_attribute("aria-pressed") == "true"


def test_sprites_views_work_like_digits(page, server, tmp_path):
    """Traversal grid, side by side and infer codes for a 64x64 model, as for the 28x28 ones."""
    open_page(page, f"model={SPRITES_ID}&seed=9&view=traverse&grid=c1&rows=2&cols=3")
    cells = page.locator("#grid canvas")
    assert cells.count() == 6
    assert cells.first.evaluate("(c) => [c.width, c.height]") == [64, 64]
    page.get_by_role("tab", name="Side by side").click()
    settle(page)
    assert page.locator("#compare-model").input_value() == SPRITES_BASELINE_ID
    a = page.locator("#compare-a").evaluate("(c) => c.toDataURL()")
    b = page.locator("#compare-b").evaluate("(c) => c.toDataURL()")
    assert a != b
    assert page.locator("#compare-b-cap").inner_text() == "Tiny sprites baseline"
    # one of the model's own 64x64 pictures, read back by its recognizer; the controls move to the inferred codes
    body = httpx.post(f"{server.url}/generate", json={"model": SPRITES_ID, "seed": 21}, timeout=30).json()
    png = tmp_path / "sprite.png"
    png.write_bytes(base64.b64decode(body["images"][0]))
    page.get_by_role("tab", name="Infer codes").click()
    settle(page)
    page.locator("#file").set_input_files(str(png))
    page.wait_for_selector("#infer-result:not([hidden])")
    settle(page)
    assert page.locator("#infer-recon").evaluate("(i) => [i.naturalWidth, i.naturalHeight]") == [64, 64]
    assert page.locator("#infer-codes h4").count() == len(SPRITES_CODES)


def test_phone_chooser_and_view(browser, server):
    context, pg = new_page(browser, server, viewport=PHONE, is_mobile=True, has_touch=True)
    try:
        open_page(pg, f"model={SPRITES_ID}&seed=3&view=factors")
        assert pg.locator("#view-factors .hm-cell").count() == 25
        assert pg.get_by_role("tab", name="Disentanglement").is_visible()
        # the chooser strip scrolls sideways rather than widening the page
        assert pg.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
        assert thumbnails(pg).count() == len(served_models(server))
    finally:
        context.close()


def test_every_served_model_with_factor_metrics_shows_its_scores_and_its_baseline(page, server):
    """Every served model with ground-truth metrics (the shipped dsprites and chairs3d pairs where models/ has them,
    and the tiny sprites models): its Disentanglement view shows its manifest's scores beside its baseline's, one
    heatmap row per code, and its side by side paints both models' pictures (different ones: different networks)."""
    models = {m["id"]: m for m in served_models(server)}
    with_factors = [m for m in models.values() if has_disentanglement(m) and m.get("compare_with") in models]
    assert {SPRITES_ID, *({"dsprites", "chairs3d"} & set(models))} <= {m["id"] for m in with_factors}
    for model in with_factors:
        peer = models[model["compare_with"]]
        open_page(page, f"model={model['id']}&seed=5&view=factors")
        view = page.locator("#view-factors")
        assert view.is_visible(), model["id"]
        assert view.locator(".hm-row").count() == len(model["metrics"]["disentanglement"]["mi_matrix"])
        for key in ("factor_vae", "mig"):  # the row's data-score is the metrics' key
            shown = view.locator(f'tr[data-score="{key}"] .score-value').all_text_contents()
            mine, theirs = (m["metrics"]["disentanglement"][key]["score"] for m in (model, peer))
            assert shown == [f"{mine:.3f}", f"{theirs:.3f}"], (model["id"], key)
        page.get_by_role("tab", name="Side by side").click()
        page.wait_for_function(
            "() => window.explorer.idle() && ['a', 'b'].every((s) => 'painted' in"
            " document.getElementById('compare-' + s).dataset)",
            timeout=15_000,
        )
        assert page.locator("#compare-model").input_value() == peer["id"]
        assert page.locator("#compare-b-cap").inner_text() == peer["title"]
        pictures = [page.locator(f"#compare-{s}").evaluate("(c) => c.toDataURL()") for s in "ab"]
        assert pictures[0] != pictures[1], model["id"]
