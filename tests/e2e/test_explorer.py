"""The explorer page in Chromium against a real uvicorn server (tiny untrained models 'tiny' and 'tiny-gan')."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import httpx
import pytest

from .conftest import PHONE, new_page, served_models

pytestmark = pytest.mark.browser


def open_page(page, hash_: str) -> None:
    page.goto(f"/#{hash_}")
    settle(page)


def settle(page) -> None:
    """Wait until the page has its models and no request is queued or in flight."""
    page.wait_for_function(
        "() => document.body.classList.contains('ready') && window.explorer.idle()"
        " && (document.body.dataset.view !== 'explore'"
        "     || 'painted' in document.getElementById('main-image').dataset)"
        " || !document.getElementById('error').hidden",
        timeout=15_000,
    )
    page.wait_for_function("() => window.explorer.idle()", timeout=15_000)


def main_src(page) -> str:
    """The main image as a PNG data URL: its canvas (painted at the image's own size) read back."""
    return page.locator("#main-image").evaluate("(c) => c.toDataURL('image/png')")


def expected_png(server, **payload) -> str:
    body = httpx.post(f"{server.url}/generate", json=payload, timeout=30).json()
    return f"data:image/png;base64,{body['images'][0]}"


def same_pixels(a: str, b: str) -> bool:
    """Two PNG data URLs show the same picture within 1/255 (the page's in-browser PNGs are encoded differently)."""
    from .test_local_generation import png_pixels

    pa, pb = png_pixels(a), png_pixels(b)
    return pa.shape == pb.shape and int(abs(pa.astype(int) - pb).max()) <= 1


def test_controls_match_spec(page, server):
    spec = next(m for m in served_models(server) if m["id"] == "tiny")
    open_page(page, "model=tiny&seed=3")
    assert page.locator("#model").input_value() == "tiny"
    for code in spec["codes"]:
        control = code["control"]
        if control["widget"] == "range":  # bounds and step as /models gives them, the caption beside the slider
            slider = page.get_by_role("slider", name=code["name"], exact=True)
            assert slider.count() == 1
            for attr in ("min", "max", "step"):
                assert float(slider.get_attribute(attr)) == pytest.approx(control[attr])
            number = page.get_by_label(f"{code['name']} value", exact=True)
            assert float(number.get_attribute("min")) == pytest.approx(control["hard_min"])
            assert float(number.get_attribute("max")) == pytest.approx(control["hard_max"])
            assert page.locator(f"#{slider.get_attribute('aria-describedby')}").inner_text() == code["caption"]
        else:
            group = page.get_by_role("group", name=code["name"], exact=True)
            buttons = group.get_by_role("button")
            assert buttons.all_inner_texts() == control["choices"]
            assert group.locator("[aria-pressed=true]").inner_text() == control["choices"][control["default"]]
    assert page.get_by_role("slider").count() == sum(c["control"]["widget"] == "range" for c in spec["codes"])
    assert page.locator("#main-image").get_attribute("aria-label").startswith("generated")
    assert page.locator("#device").inner_text().lower().endswith(spec["device"])
    assert re.search(r"\d+ ms", page.locator("#latency").inner_text())
    # the picture is the server's picture for the state in the URL (seed 3, default codes)
    codes = {c["name"]: c["control"]["default"] for c in spec["codes"]}
    assert same_pixels(main_src(page), expected_png(server, model="tiny", n=1, seed=3, codes=codes))


def test_every_shipped_model_shows_its_labelled_controls(page, server):
    """Each model under models/ (the shipped ones): one slider per continuous code, captioned with the label its
    manifest gives (what the code measurably does, e.g. width, azimuth), and one button per category, named by the
    manifest's labels where it has them. The list is read from models/, so a newly shipped model is covered."""
    import json

    from .conftest import exported_models

    shipped = exported_models()
    assert shipped or not (Path(__file__).resolve().parents[2] / "models").is_dir()
    for folder in shipped:
        manifest = json.loads((folder / "manifest.json").read_text())
        open_page(page, f"model={manifest['id']}&seed=1")
        assert page.locator("#model").input_value() == manifest["id"]
        codes = manifest["spec"]["codes"]
        for code in codes:
            if code["type"] == "continuous":
                slider = page.get_by_role("slider", name=code["name"], exact=True)
                assert slider.count() == 1, (manifest["id"], code["name"])
                caption = page.locator(f"#{slider.get_attribute('aria-describedby')}").inner_text()
                assert code.get("label") and caption.startswith(code["label"] + " "), (manifest["id"], caption)
            else:
                buttons = page.get_by_role("group", name=code["name"], exact=True).get_by_role("button")
                assert buttons.count() == code["categories"], (manifest["id"], code["name"])
                if code.get("labels"):
                    assert sorted(buttons.all_inner_texts()) == sorted(code["labels"]), manifest["id"]
        assert page.get_by_role("slider").count() == sum(c["type"] == "continuous" for c in codes)


def test_drag_slider_changes_image(page, server):
    open_page(page, "model=tiny&seed=4")
    before = main_src(page)
    slider = page.get_by_role("slider", name="c1", exact=True)
    box = slider.bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    for i in range(1, 21):  # a continuous drag to the right end, one step per frame or so
        page.mouse.move(box["x"] + box["width"] / 2 + i * box["width"] * 0.024, y)
        page.wait_for_timeout(16)
    page.mouse.up()
    settle(page)
    value = float(slider.input_value())
    assert value > 1.5
    assert main_src(page) != before
    assert f"c.c1={round(value, 3):g}" in page.url
    # no stale frame: what is on screen is the image for the final value
    state = page.evaluate("() => window.explorer.state()")
    assert same_pixels(main_src(page), expected_png(server, model="tiny", n=1, seed=4, codes=state["codes"]))
    # arrow keys move the focused slider by the control's step (~40 presses end to end), PageUp/PageDown by 10 steps
    tiny = next(m for m in served_models(server) if m["id"] == "tiny")
    control = next(c for c in tiny["codes"] if c["name"] == "c1")["control"]
    step = control["step"]
    assert 30 <= (control["max"] - control["min"]) / step <= 50
    slider.focus()
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert float(slider.input_value()) == pytest.approx(value - step)
    page.keyboard.press("PageDown")
    settle(page)
    assert float(slider.input_value()) == pytest.approx(value - 11 * step)
    assert page.evaluate("() => window.explorer.state().codes.c1") == pytest.approx(value - 11 * step)
    page.keyboard.press("PageUp")
    settle(page)
    assert float(slider.input_value()) == pytest.approx(value - step)


def test_category_button_and_keys(page):
    open_page(page, "model=tiny&seed=5")
    group = page.get_by_role("group", name="digit", exact=True)
    before = main_src(page)
    group.get_by_role("button", name="7", exact=True).click()
    settle(page)
    assert group.get_by_role("button", name="7", exact=True).get_attribute("aria-pressed") == "true"
    assert group.locator("[aria-pressed=true]").count() == 1
    assert main_src(page) != before
    page.locator("body").press("2")  # a digit picks the category
    settle(page)
    assert group.get_by_role("button", name="2", exact=True).get_attribute("aria-pressed") == "true"
    seed = page.locator("#seed").input_value()
    page.locator("body").press("r")  # a new sample
    settle(page)
    assert page.locator("#seed").input_value() != seed
    # back/forward step through the changes
    page.go_back()
    settle(page)
    assert page.locator("#seed").input_value() == seed
    page.go_back()
    settle(page)
    assert group.get_by_role("button", name="7", exact=True).get_attribute("aria-pressed") == "true"
    page.go_forward()
    settle(page)
    assert group.get_by_role("button", name="2", exact=True).get_attribute("aria-pressed") == "true"


def test_reloaded_url_reproduces_image(page):
    open_page(page, "model=tiny&seed=11&c.digit=6&c.c1=-1.25&c.c2=0.5")
    src, url = main_src(page), page.url
    page.reload()
    settle(page)
    assert page.url == url
    assert main_src(page) == src
    # a fresh tab from the link alone
    other = page.context.new_page()
    other.goto(url)
    settle(other)
    assert main_src(other) == src
    # the typed field shows the value in use; the slider's thumb sits on its nearest step
    assert float(other.get_by_label("c1 value", exact=True).input_value()) == pytest.approx(-1.25)
    assert float(other.get_by_role("slider", name="c1", exact=True).input_value()) == pytest.approx(-1.25, abs=0.1)
    other.close()


def test_upload_sets_inferred_category(page, server, tmp_path):
    digit = httpx.post(f"{server.url}/generate", json={"model": "tiny", "seed": 21, "codes": {"digit": 4}}).json()
    png = tmp_path / "digit.png"
    png.write_bytes(base64.b64decode(digit["images"][0]))
    with png.open("rb") as f:
        inferred = httpx.post(
            f"{server.url}/infer-codes", files={"file": ("digit.png", f, "image/png")}, data={"model": "tiny"}
        ).json()
    expected = inferred["codes"]["digit"]["value"]
    open_page(page, f"model=tiny&seed=2&view=infer&c.digit={(expected + 1) % 10}")
    page.locator("#file").set_input_files(str(png))
    page.wait_for_selector("#infer-result:not([hidden])")
    settle(page)
    group = page.get_by_role("group", name="digit", exact=True)
    assert group.locator("[aria-pressed=true]").inner_text() == str(expected)
    assert f"c.digit={expected}" in page.url
    assert page.locator("#infer-recon").get_attribute("src").startswith("data:image/png;base64,")
    c1 = inferred["codes"]["c1"]["value"]
    assert float(page.get_by_role("slider", name="c1", exact=True).input_value()) == pytest.approx(
        max(-2, min(2, c1)), abs=0.01
    )
    assert page.locator(".probs .prob").count() == 10


def test_drawing_is_sent_at_model_size_and_read(page):
    # the server path (in-browser reading: test_static_site.py); ?engine=server keeps the page off its own runtime
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    hint, send = page.locator("#draw-hint"), page.get_by_role("button", name="Infer from drawing")
    assert hint.is_visible() and send.is_disabled()  # nothing drawn yet: nothing to send
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=12)  # a "1"
    page.mouse.up()
    assert not hint.is_visible() and send.is_enabled()
    with page.expect_response(lambda r: r.url.endswith("/infer-codes")) as response:
        send.click()
    sent = response.value.request.post_data_json
    assert sent["model"] == "tiny" and sent["image"].startswith("data:image/png;base64,")
    png = base64.b64decode(sent["image"].split(",", 1)[1])
    assert png[16:24] == (28).to_bytes(4, "big") * 2  # IHDR width and height: box-downscaled to the model's 28x28
    assert response.value.status == 200
    page.wait_for_selector("#infer-result:not([hidden])")
    assert page.locator(".probs .prob").count() == 10
    page.get_by_role("button", name="Clear").click()
    assert hint.is_visible() and send.is_disabled()


def test_word_labels_fit_and_a_model_without_a_peer_says_so(page):
    """'tiny-words' has its own spec and labels like Fashion-MNIST's: every category button shows its whole label,
    and side by side says in the view that there is nothing to compare with (no error banner, no empty frames)."""
    open_page(page, "model=tiny-words&seed=1")
    buttons = page.get_by_role("group", name="item", exact=True).get_by_role("button")
    assert buttons.all_inner_texts() == ["T-shirt/top", "Trouser", "Ankle boot", "Bag"]
    assert buttons.evaluate_all("bs => bs.every((b) => b.scrollWidth <= b.clientWidth)")  # nothing cut off
    # 3 columns for word labels (digits get 5 a row): each label on one line, none broken mid-word
    group = page.get_by_role("group", name="item", exact=True)
    assert group.evaluate("g => getComputedStyle(g).gridTemplateColumns.split(' ').length") == 3
    assert buttons.evaluate_all(
        "bs => bs.every((b) => b.getClientRects().length && "
        "b.scrollHeight < 2 * parseFloat(getComputedStyle(b).lineHeight) + 16)"
    )
    page.get_by_role("tab", name="Side by side").click()
    settle(page)
    note = page.locator("#compare-none")
    assert note.is_visible() and '"tiny-words"' in note.inner_text()
    assert page.locator("#error").is_hidden() and page.locator("#compare-pair").is_hidden()
    assert page.get_by_label("compare with").is_disabled()
    page.goto("/#model=tiny&view=compare")  # a model with a peer: the frames, not the note
    settle(page)
    assert note.is_hidden() and page.locator("#compare-pair").is_visible()


def test_traversal_grid_and_side_by_side(page):
    traversals = []
    page.on("request", lambda r: traversals.append(r) if r.url.endswith("/traverse") else None)
    open_page(page, "model=tiny&seed=8&view=traverse&grid=digit&rows=3")
    assert len(traversals) == 1  # the whole grid in one request
    assert page.locator("#grid canvas").count() == 3 * 10
    assert page.locator("#grid .grid-head").all_inner_texts() == [str(i) for i in range(10)]
    page.get_by_label("sweep code").select_option("c2")
    settle(page)
    assert page.locator("#grid canvas").count() == 3 * 7
    assert page.locator("#grid .grid-head").first.inner_text() == "-2.00"

    page.get_by_role("tab", name="Side by side").click()
    settle(page)
    assert page.get_by_label("compare with").input_value() == "tiny-gan"
    a, b = (page.locator(f"#compare-{s}").evaluate("(c) => c.toDataURL('image/png')") for s in "ab")
    assert a and b and a != b  # same seed and codes, different generators
    assert "view=compare" in page.url and "vs=tiny-gan" in page.url


def test_server_errors_are_shown_as_text(page, server):
    open_page(page, "model=no-such-model&seed=1")
    alert = page.get_by_role("alert")
    assert alert.is_visible()
    assert "no-such-model" in alert.inner_text()
    assert "404" in alert.inner_text() or "unknown" in alert.inner_text().lower()
    # a server that stops answering: the page says so in words (on the server path: ?engine=server)
    page.goto("/?engine=server#model=tiny&seed=1")
    settle(page)
    assert page.get_by_role("alert").is_hidden()
    page.route("**/generate", lambda route: route.abort("connectionrefused"))
    page.get_by_role("group", name="digit", exact=True).get_by_role("button", name="3", exact=True).click()
    page.wait_for_function("() => !document.getElementById('error').hidden")
    assert "Cannot reach the server" in alert.inner_text()
    # and recovers once it answers again
    page.unroute("**/generate")
    page.get_by_role("group", name="digit", exact=True).get_by_role("button", name="4", exact=True).click()
    settle(page)
    assert page.get_by_role("alert").is_hidden()
    assert not page.locator("figure.failed").count()


def test_a_server_without_models_is_said_at_once(page):
    """GET /models answers 503 while loading, so an empty list is final: the page says there are no models at once
    rather than "still loading" for 10 s first."""
    page.route("**/models", lambda route: route.fulfill(status=200, json={"models": []}))
    page.goto("/")
    page.wait_for_function("() => !document.getElementById('error').hidden", timeout=3_000)
    assert "serves no models" in page.get_by_role("alert").inner_text()


def test_phone_layout_fits_and_screenshots_go_to_tmp(browser, server, tmp_path):
    """At 360 px nothing is wider than the screen (the gallery and the model chooser are strips that scroll sideways
    inside it); screenshots of both layouts are written under tmp_path only (the
    docs' screenshots come from `make figures`: scripts/make_screenshots.py)."""
    hash_ = "model=tiny&seed=7&c.digit=3&c.c1=0.6&c.c2=-0.4"
    phone, ppage = new_page(browser, server, viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True)
    ppage.goto(f"/#{hash_}")
    settle(ppage)
    wide = ppage.evaluate("""() => [...document.querySelectorAll('body *')]
        .filter((e) => !e.closest('.gallery, .chooser') && e.getBoundingClientRect().right > window.innerWidth + 0.5
                || e.matches('.gallery, .chooser') && e.getBoundingClientRect().right > window.innerWidth + 0.5)
        .map((e) => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`)""")
    assert not wide, f"wider than a {PHONE['width']} px screen: {wide}"
    assert ppage.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]
    shot = tmp_path / "phone.png"
    ppage.screenshot(path=str(shot), full_page=True)
    phone.close()
    assert shot.stat().st_size > 10_000
