"""Issue 23, the page (items 12-15): a phone, stale results, input fields, the upload preview, no models, keyboard."""

from __future__ import annotations

import base64
import io

import httpx
import pytest

from .conftest import new_page
from .test_explorer import open_page, settle

pytestmark = pytest.mark.browser
PHONE_390 = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def in_view(page, selector: str) -> bool:
    return page.evaluate(
        """(s) => { const r = document.querySelector(s).getBoundingClientRect();
        return r.height > 0 && r.top >= -1 && r.bottom <= window.innerHeight + 1; }""",
        selector,
    )


def test_phone_keeps_the_image_in_view_while_sliding(browser, server):
    """Item 12: at 390x844 the picture stays on screen while the last slider is dragged; the tabs are one row."""
    context, page = new_page(browser, server, **PHONE_390)
    open_page(page, "model=tiny&seed=4")
    slider = page.get_by_role("slider", name="c2", exact=True)
    page.evaluate("() => document.querySelector('[aria-label=c2]').scrollIntoView({block: 'end'})")
    assert in_view(page, "[aria-label=c2]") and in_view(page, "#main-image")
    box = slider.bounding_box()
    page.mouse.click(box["x"] + box["width"] * 0.8, box["y"] + box["height"] / 2)
    settle(page)
    assert in_view(page, "#main-image") and page.evaluate("() => window.explorer.state().codes.c2") > 0.5
    tops = page.get_by_role("tab").evaluate_all("ts => ts.map((t) => Math.round(t.getBoundingClientRect().top))")
    assert len(set(tops)) == 1, f"tabs on several rows: {tops}"
    context.close()


def digit_png(server, model="tiny", digit=4, size=None) -> bytes:
    body = httpx.post(f"{server.url}/generate", json={"model": model, "seed": 21, "codes": {"digit": digit}}).json()
    png = base64.b64decode(body["images"][0])
    if size is None:
        return png
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(png)).resize(size).save(out, "PNG")
    return out.getvalue()


def test_infer_result_belongs_to_its_model_and_request(page, server, tmp_path):
    """Item 13: a model switch clears the result; an answer for the previous model does not move the new model's
    controls; choosing the same file again runs again."""
    png = tmp_path / "digit.png"
    png.write_bytes(digit_png(server))
    open_page(page, "model=tiny&seed=2&view=infer&c.digit=9")
    requests = []
    page.on("request", lambda r: requests.append(r) if r.url.endswith("/infer-codes") else None)
    page.locator("#file").set_input_files(str(png))
    page.wait_for_selector("#infer-result:not([hidden])")
    page.locator("#file").set_input_files(str(png))  # the same file again: a second request
    page.wait_for_function("() => window.explorer.idle()")
    page.wait_for_timeout(300)
    assert len(requests) == 2
    page.get_by_label("model").select_option("tiny-gan")
    settle(page)
    assert page.locator("#infer-result").is_hidden()
    # an answer that arrives after the switch is dropped
    held = []
    page.route("**/infer-codes", lambda route: held.append(route))
    page.get_by_label("model").select_option("tiny")
    settle(page)
    page.locator("#file").set_input_files(str(png))
    page.wait_for_function("() => document.getElementById('dropzone').classList.contains('busy')")
    before = page.evaluate("() => window.explorer.state().codes")
    page.get_by_label("model").select_option("tiny-gan")
    settle(page)
    assert held, "the upload was not sent"
    held[0].continue_()
    page.wait_for_timeout(800)
    assert page.locator("#infer-result").is_hidden()
    assert page.evaluate("() => window.explorer.state().codes") == before
    assert page.evaluate("() => window.explorer.state().model") == "tiny-gan"


def test_fields_show_the_value_used_and_send_nothing_refused(page):
    """Item 14: a seed the API refuses is not sent (the field shows the seed in use), rows are clamped to what the API
    takes, a typed code value beyond its bounds shows the clamped value that is used."""
    page.goto("/?engine=server#model=tiny&seed=5&view=traverse&rows=3")  # watches the service's requests
    settle(page)
    sent = []
    page.on("request", lambda r: sent.append(r.post_data_json) if r.method == "POST" else None)
    seed = page.get_by_label("seed", exact=True)
    for refused in ("1e20", "9007199254740993", "-4", "2.5"):
        seed.fill(refused)
        seed.press("Enter")
        settle(page)
        assert seed.input_value() == "5", refused
    assert all(p.get("seed") == 5 for p in sent)
    assert page.get_by_role("alert").is_hidden()
    seed.fill("9007199254740991")  # the largest seed the API takes is used as it is
    seed.press("Enter")
    settle(page)
    assert sent[-1]["seed"] == 9007199254740991 and seed.input_value() == "9007199254740991"
    rows = page.get_by_label("rows")
    rows.fill("0")
    rows.press("Enter")
    settle(page)
    assert rows.input_value() == "1" and sent[-1]["rows"] == 1
    number = page.get_by_label("c1 value", exact=True)
    number.fill("5")
    number.press("Enter")
    settle(page)
    hard_max = float(number.get_attribute("max"))
    assert float(number.input_value()) == hard_max == page.evaluate("() => window.explorer.state().codes.c1")
    assert sent[-1]["codes"]["c1"] == hard_max


def test_tall_upload_preview_is_not_cropped(page, server, tmp_path):
    """Item 15: a 28x84 upload is shown whole (letterboxed in its frame, not cut)."""
    png = tmp_path / "tall.png"
    png.write_bytes(digit_png(server, size=(28, 84)))
    open_page(page, "model=tiny&seed=2&view=infer")
    page.locator("#file").set_input_files(str(png))
    page.wait_for_selector("#infer-result:not([hidden])")
    img, frame = page.locator("#infer-input").bounding_box(), page.locator("#infer-input >> xpath=..").bounding_box()
    assert img["height"] <= frame["height"] + 0.5 and img["width"] <= frame["width"] + 0.5


def test_no_model_disables_the_controls(page):
    page.route("**/models", lambda route: route.fulfill(status=200, json={"models": []}))
    page.goto("/")
    page.wait_for_function("() => !document.getElementById('error').hidden", timeout=3_000)
    assert page.get_by_role("button", name="New sample").is_disabled()
    assert page.get_by_label("seed", exact=True).is_disabled()
    assert page.locator("#draw-infer").is_disabled() and page.locator("#file").is_disabled()
    assert page.locator("main").evaluate("m => m.inert")


def test_category_buttons_are_one_tab_stop(page):
    """Item 15: the category buttons are one tab stop (roving tabindex); arrows move within, Tab leaves."""
    open_page(page, "model=tiny&seed=2&c.digit=3")
    group = page.get_by_role("group", name="digit", exact=True)
    assert group.locator("button[tabindex='0']").all_inner_texts() == ["3"]
    page.get_by_role("button", name="New sample").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.textContent") == "3"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.textContent") == "4"
    page.keyboard.press("Enter")
    settle(page)
    assert group.locator("[aria-pressed=true]").inner_text() == "4"
    page.keyboard.press("Tab")  # out of the group, onto the next control (c1's typed field, then its slider)
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == "c1 value"


def test_drawing_canvas_from_the_keyboard(page):
    """Item 15: focus the canvas, Space puts the pen down, arrows draw, Enter infers."""
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")  # watches the service's requests
    settle(page)
    send = page.get_by_role("button", name="Infer from drawing")
    page.locator("#draw").focus()
    page.keyboard.press("ArrowUp")
    assert send.is_disabled()  # pen up: moving draws nothing
    page.keyboard.press("Space")
    for _ in range(8):
        page.keyboard.press("ArrowDown")
    assert send.is_enabled()
    with page.expect_response(lambda r: r.url.endswith("/infer-codes")) as response:
        page.keyboard.press("Enter")
    assert response.value.status == 200
    page.wait_for_selector("#infer-result:not([hidden])")
