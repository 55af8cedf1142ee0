"""The page derives nothing on its own: widgets, bounds, steps, captions, the side-by-side baseline and the drawing's
polarity all come from GET /models (COMMON.md's contract). /models is answered here with edited copies of what the
server serves, to show each field is what the page follows."""

from __future__ import annotations

import copy

import httpx
import pytest

from .conftest import route_models, served_models
from .test_explorer import open_page, settle

pytestmark = pytest.mark.browser


def edited(server, edit) -> list[dict]:
    models = copy.deepcopy(served_models(server))
    edit({m["id"]: m for m in models})
    return models


def test_controls_follow_the_control_not_the_code_kind(page, server):
    """Bounds, step and caption of a slider are the control's; a code kind the page has never heard of is shown by
    its widget (the page dispatches on control.widget only)."""

    def edit(by_id):
        c1 = next(c for c in by_id["tiny"]["codes"] if c["name"] == "c1")
        c1["type"] = "some-new-kind"
        c1["control"].update(min=-1.5, max=1.5, hard_min=-2.5, hard_max=2.5, step=0.075, prior=[-0.5, 0.5])
        c1["caption"] = "a caption from the server"
        digit = next(c for c in by_id["tiny"]["codes"] if c["name"] == "digit")
        digit["type"] = "another-kind"
        digit["control"]["default"] = 4

    route_models(page, edited(server, edit))
    open_page(page, "model=tiny&seed=3")
    slider = page.get_by_role("slider", name="c1", exact=True)
    assert [slider.get_attribute(a) for a in ("min", "max", "step")] == ["-1.5", "1.5", "0.075"]
    number = page.get_by_label("c1 value", exact=True)
    assert [number.get_attribute(a) for a in ("min", "max")] == ["-2.5", "2.5"]
    assert page.locator(f"#{slider.get_attribute('aria-describedby')}").inner_text() == "a caption from the server"
    digit = page.get_by_role("group", name="digit", exact=True)
    assert digit.locator("[aria-pressed=true]").inner_text() == "4"  # the control's default
    slider.focus()
    page.keyboard.press("ArrowRight")
    settle(page)
    assert page.evaluate("() => window.explorer.state().codes.c1") == pytest.approx(0.075)
    # the traversal sweeps the slider's span and formats with the widget
    page.get_by_role("tab", name="Traversal grid").click()
    settle(page)
    assert page.locator("#grid .grid-head").first.inner_text() == "-1.50"


def test_side_by_side_uses_compare_with(page, server):
    """The baseline is the model's compare_with, not a model whose id looks like '<id>-gan'."""

    def edit(by_id):
        twin = copy.deepcopy(by_id["tiny-gan"])
        twin.update(id="zz-baseline", title="Named baseline")
        by_id["tiny"]["compare_with"] = "zz-baseline"
        edit.extra = twin

    models = edited(server, edit)
    route_models(page, [*models, edit.extra])
    open_page(page, "model=tiny&seed=3")
    assert page.evaluate("() => window.explorer.state().vs") == "zz-baseline"
    assert "Named baseline" in page.get_by_label("compare with").locator("option").all_inner_texts()


@pytest.mark.parametrize(
    "field, value",
    [
        ("image", {"width": 32}),
        ("image", {"channels": 3}),
        ("noise", {"distribution": "normal"}),
        ("noise", {"dim": 61}),
    ],
)
def test_side_by_side_pairs_only_models_of_one_noise_and_image_shape(page, server, field, value):
    """Same codes are not enough: another noise prior draws another z for the same seed, and another image shape
    cannot share the pair's one aspect ratio. The baseline differing in one of them is not offered."""

    def edit(by_id):
        by_id["tiny-gan"][field] = {**by_id["tiny-gan"][field], **value}

    route_models(page, edited(server, edit))
    open_page(page, "model=tiny&seed=3&view=compare")
    assert page.evaluate("() => window.explorer.state().vs") != "tiny-gan"
    assert "Tiny GAN baseline" not in page.get_by_label("compare with").locator("option").all_inner_texts()


@pytest.mark.parametrize("drawing, ground, ink", [("light-on-dark", 0, 255), ("dark-on-light", 255, 0)])
def test_drawing_canvas_paints_in_the_served_polarity(page, server, drawing, ground, ink):
    route_models(page, edited(server, lambda by_id: by_id["tiny"].update(drawing=drawing)))
    open_page(page, "model=tiny&seed=2&view=infer")
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=8)
    page.mouse.up()
    pixel = (
        "([x, y]) => [...document.getElementById('draw').getContext('2d').getImageData(x, y, 1, 1).data.slice(0, 3)]"
    )
    assert page.evaluate(pixel, [5, 5]) == [ground] * 3
    assert page.evaluate(pixel, [140, 140]) == [ink] * 3


def test_models_serve_the_page_contract(server):
    """The real service serves every field the page reads (fails until the backend side of the contract is in)."""
    for model in httpx.get(f"{server.url}/models", timeout=30).json()["models"]:
        assert model["drawing"] in ("light-on-dark", "dark-on-light")
        assert "compare_with" in model
        for code in model["codes"]:
            assert code["control"]["widget"] in ("choice", "range") and isinstance(code["caption"], str)
    tiny = next(m for m in httpx.get(f"{server.url}/models", timeout=30).json()["models"] if m["id"] == "tiny")
    assert tiny["compare_with"] == "tiny-gan"
