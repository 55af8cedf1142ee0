"""The page when requests overlap or come early: the final reading of a drawing wins over the live ones queued
before it, a link to an unknown model keeps saying so, a hash changed before the models are known, a recognizer that
cannot run in the page, the traversal grid on a model switch, a file dropped beside the drop zone, and what the status
bar announces."""

from __future__ import annotations

import pytest

from .test_explorer import open_page, settle

pytestmark = pytest.mark.browser

# every /infer-codes answer arrives 400 ms late: a live reading is still in flight when the final one is asked for
SLOW_READINGS = """
const slowFetch = window.fetch;
window.fetch = async (input, init) => {
  const answer = await slowFetch(input, init);
  if (String(input.url ?? input).endsWith("/infer-codes")) await new Promise((r) => setTimeout(r, 400));
  return answer;
};
"""


def readings_sent(page) -> list:
    sent: list = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/infer-codes") else None)
    return sent


def codes_in_hash(page) -> dict[str, str]:
    pairs = page.evaluate("() => location.hash").lstrip("#").split("&")
    return dict(p[2:].split("=", 1) for p in pairs if p.startswith("c."))


def expected_hash_codes(page, reading: dict) -> dict[str, str]:
    """The hash the page writes for a reading's values (state.js rounds continuous codes)."""
    return page.evaluate(
        """(codes) => Object.fromEntries(Object.entries(codes).map(([k, v]) =>
            [k, String(Number.parseFloat(Number(v.value).toFixed(3)))]))""",
        reading["codes"],
    )


def test_the_final_reading_of_a_drawing_wins_over_queued_live_ones(page):
    """Arrows draw while a live reading is in flight (more queued), then Enter: that final reading must move the
    controls. The queued live reading used to be sent after it and, being newer, dropped its answer."""
    page.add_init_script(SLOW_READINGS)
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    page.locator("#draw").focus()
    page.keyboard.press("Space")  # pen down
    sent = readings_sent(page)
    for _ in range(6):
        page.keyboard.press("ArrowDown")  # the first asks for a reading, the others queue behind it
    assert len(sent) == 1
    page.keyboard.press("Enter")
    page.wait_for_timeout(1_500)  # the live reading's answer, then the final one's (400 ms each)
    settle(page)
    final = sent[-1]
    assert len(sent) == 2, [r.post_data_json for r in sent]  # no live reading after the final one
    assert codes_in_hash(page) == expected_hash_codes(page, final.response().json())


def test_lifting_the_pen_moves_the_controls_to_the_reading(page):
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.8, steps=6)
    with page.expect_request(lambda r: r.url.endswith("/infer-codes")) as lifted:
        page.mouse.up()
    settle(page)
    assert codes_in_hash(page) == expected_hash_codes(page, lifted.value.response().json())


def test_a_link_to_an_unknown_model_keeps_saying_so_and_draws_nothing(page):
    open_page(page, "model=no-such-model&seed=1")
    alert = page.get_by_role("alert")
    page.get_by_role("slider").first.press("ArrowRight")  # an input: nothing to draw it with
    page.keyboard.press("r")
    page.wait_for_timeout(500)
    settle(page)
    assert alert.is_visible() and 'Unknown model "no-such-model"' in alert.inner_text()
    assert page.evaluate("() => 'painted' in document.getElementById('main-image').dataset") is False
    assert page.evaluate("() => window.explorer.requests") == 0
    page.select_option("#model", "tiny")  # choosing a model ends it
    settle(page)
    assert alert.is_hidden() and page.evaluate("() => 'painted' in document.getElementById('main-image').dataset")


def test_a_hash_changed_before_the_models_are_known_is_applied_once_they_are(page):
    held, released = [], []

    def hold(route):
        if released:
            route.continue_()
        else:
            held.append(route)

    page.route("**/models", hold)
    page.goto("/#model=tiny&seed=3")
    page.wait_for_function("() => document.readyState === 'complete'")
    page.evaluate("() => { location.hash = '#model=tiny-gan&seed=5'; }")
    page.wait_for_timeout(200)
    page.go_back()
    page.wait_for_timeout(200)
    page.evaluate("() => { location.hash = '#model=tiny-gan&seed=5'; }")
    page.wait_for_timeout(200)
    assert held, "GET /models was not asked for"
    released.append(True)
    for route in held:
        route.continue_()
    settle(page)
    assert page.get_by_role("alert").is_hidden()  # the page fixture also fails on an uncaught error
    assert page.evaluate("() => [window.explorer.state().model, window.explorer.state().seed]") == ["tiny-gan", 5]


def test_a_recognizer_that_fails_to_run_in_the_page_reads_on_the_server(page):
    open_page(page, "model=tiny&seed=2")  # a picture asks for the generator in the page
    page.wait_for_function("() => window.explorer.engine().loaded.has('tiny')", timeout=15_000)
    page.get_by_role("tab", name="Infer").click()
    page.evaluate(
        """() => { const w = window.explorer.engine().worker; const call = w.call.bind(w);
        w.call = (op, args) => op === 'run' && String(args.url).endsWith('recognizer.onnx')
          ? Promise.reject(new Error('an operator this runtime lacks')) : call(op, args); }"""
    )
    box = page.locator("#draw").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.8, steps=4)
    with page.expect_response(lambda r: r.url.endswith("/infer-codes"), timeout=10_000) as answer:
        page.mouse.up()
    settle(page)
    assert answer.value.status == 200
    assert page.get_by_role("alert").is_hidden() and page.locator("#infer-result").is_visible()


def test_a_model_switch_clears_the_traversal_grid(page):
    page.goto("/?engine=server#model=tiny&seed=2&view=traverse")  # the server path, where a request can fail
    settle(page)
    assert page.locator("#grid canvas").count() > 0
    page.route("**/traverse", lambda route: route.fulfill(status=500, json={"detail": "broken"}))
    page.select_option("#model", "tiny-gan")
    page.wait_for_function("() => !document.getElementById('error').hidden")
    settle(page)
    assert page.locator("#grid canvas").count() == 0 and page.locator("#grid-note").inner_text() == ""


def test_a_file_dropped_beside_the_drop_zone_does_not_leave_the_page(page):
    open_page(page, "model=tiny&seed=2&view=infer")
    prevented = page.evaluate(
        """() => ['dragover', 'drop'].map((type) => {
            const e = new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: new DataTransfer() });
            document.querySelector('header').dispatchEvent(e);
            return e.defaultPrevented; })"""
    )
    assert prevented == [True, True]


def test_the_status_bar_announces_the_engine_not_every_latency(page):
    open_page(page, "model=tiny&seed=2")
    live = page.evaluate(
        """() => ['latency', 'engine', 'device'].map((id) =>
            !!document.getElementById(id).closest('[aria-live]:not([aria-live=off])'))"""
    )
    assert live == [False, True, False]
    before = page.evaluate(
        """() => { window.__engineWrites = 0;
            new MutationObserver((m) => { window.__engineWrites += m.length; })
              .observe(document.getElementById('engine'), { childList: true, characterData: true, subtree: true });
            return document.getElementById('engine').textContent; }"""
    )
    slider = page.get_by_role("slider").first
    for _ in range(5):
        slider.press("ArrowRight")
    settle(page)
    assert page.locator("#engine").inner_text() == before and page.evaluate("() => window.__engineWrites") == 0


def painted(page) -> dict:
    return page.evaluate("() => ({...document.getElementById('main-image').dataset})")


@pytest.mark.parametrize("query", ["", "?engine=server"])
def test_an_unknown_model_after_a_picture_blanks_it_and_a_request_in_flight_keeps_the_error(page, query):
    page.goto(f"/{query}#model=tiny&seed=42")
    settle(page)
    assert painted(page)["model"] == "tiny"
    # a new sample asked for, then (same task) a link to an unknown model: the sample's answer must not clear the
    # error, nor be painted; nor may the old picture stay up to be downloaded under the unknown model's name
    page.evaluate("() => { document.getElementById('new-sample').click(); location.hash = '#model=nope&seed=1'; }")
    page.wait_for_timeout(500)
    settle(page)
    alert = page.get_by_role("alert")
    assert alert.is_visible() and 'Unknown model "nope"' in alert.inner_text()
    assert "painted" not in painted(page) and page.locator("#main-caption").inner_text() == ""
    with _no_download(page):
        page.locator("#download-image").click()


class _no_download:
    """No download starts while the block runs (and 500 ms after)."""

    def __init__(self, page):
        self.page, self.got = page, []

    def _record(self, download) -> None:
        self.got.append(download)

    def __enter__(self):
        self.page.on("download", self._record)

    def __exit__(self, *exc):
        self.page.wait_for_timeout(500)
        self.page.remove_listener("download", self._record)
        assert not self.got, self.got


def test_the_download_is_named_after_the_picture_on_the_canvas(page):
    # a new sample still on its way (the server answers late): the download is the picture shown, under its seed
    page.goto("/?engine=server#model=tiny&seed=42")
    settle(page)
    page.evaluate(  # from now on /generate answers 800 ms late
        """() => { const f = window.fetch; window.fetch = async (input, init) => {
            const answer = await f(input, init);
            if (String(input.url ?? input).endsWith('/generate')) await new Promise((r) => setTimeout(r, 800));
            return answer; }; }"""
    )
    page.locator("#new-sample").click()
    page.wait_for_timeout(100)
    with page.expect_download() as dl:
        page.locator("#download-image").click()
    assert dl.value.suggested_filename == "infogan-tiny-seed42.png"


def draw_with_touches(page, fingers: list[tuple[float, float]], dy: float) -> None:
    """Touch points put down at once, moved down together by dy in 6 steps, then lifted (CSS pixels in the canvas)."""
    box = page.locator("#draw").bounding_box()
    cdp = page.context.new_cdp_session(page)

    def points(shift: float):
        return [{"x": box["x"] + x, "y": box["y"] + y + shift, "id": i} for i, (x, y) in enumerate(fingers)]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(0)})
    for k in range(1, 7):
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": points(dy * k / 6)})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def ink_between(page, x0: float, x1: float, y: float) -> int:
    """Drawn pixels on the row at CSS height y, strictly between CSS x0 and x1 (away from both strokes)."""
    return page.evaluate(
        """([x0, x1, y]) => {
            const c = document.getElementById('draw'), r = c.getBoundingClientRect(), s = c.width / r.width;
            const ctx = c.getContext('2d'), row = ctx.getImageData(0, Math.round(y * s), c.width, 1).data;
            const ground = ctx.getImageData(0, 0, 1, 1).data[0];
            let n = 0;
            for (let x = Math.round((x0 + 30) * s); x < Math.round((x1 - 30) * s); x++) if (row[x * 4] !== ground) n++;
            return n;
        }""",
        [x0, x1, y],
    )


def test_two_fingers_draw_one_stroke_not_a_band_between_them(browser, server):
    from .conftest import new_page

    context, page = new_page(browser, server, has_touch=True)
    try:
        page.goto("/?engine=server#model=tiny&seed=2&view=infer")
        settle(page)
        box = page.locator("#draw").bounding_box()
        left, right, y = box["width"] * 0.15, box["width"] * 0.85, box["height"] * 0.3
        draw_with_touches(page, [(left, y), (right, y)], dy=box["height"] * 0.3)
        page.wait_for_timeout(300)
        assert ink_between(page, left, right, y + box["height"] * 0.15) == 0  # once a solid band
    finally:
        context.close()


def test_a_tap_leaves_a_dot_and_a_right_button_drag_draws_nothing(page):
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    box = page.locator("#draw").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    page.mouse.down(button="right")
    page.mouse.move(cx + 40, cy + 40, steps=5)
    page.mouse.up(button="right")
    assert not page.locator("#draw").evaluate("c => c.parentElement.classList.contains('drawn')")
    page.mouse.click(cx, cy)  # a tap
    settle(page)
    assert page.locator("#draw").evaluate("c => c.parentElement.classList.contains('drawn')")


def test_pageup_and_pagedown_never_move_against_their_key_from_beyond_the_slider(page):
    # a link may hold c1 = 3 on a -2..2 slider: the range input holds it clamped to 2, and PageUp once gave 2
    open_page(page, "model=tiny&seed=42&c.c1=3")
    slider = page.get_by_role("slider", name="c1", exact=True)
    slider.press("PageUp")
    settle(page)
    assert codes_in_hash(page)["c1"] == "3"
    open_page(page, "model=tiny&seed=42&c.c1=-3")
    page.get_by_role("slider", name="c1", exact=True).press("PageDown")
    settle(page)
    assert codes_in_hash(page)["c1"] == "-3"
    page.get_by_role("slider", name="c1", exact=True).press("PageUp")  # towards the slider: moves in
    settle(page)
    assert float(codes_in_hash(page)["c1"]) > -3


def test_a_link_holds_the_value_the_picture_was_made_with(page):
    # the state kept 1.2345, the link 1.234 (or .235) and the field 1.23: reloading the link changed pixels
    from .test_explorer import main_src

    open_page(page, "model=tiny&seed=42&c.c1=1.2345")
    first, link = main_src(page), page.evaluate("() => location.hash")
    shown = page.get_by_label("c1 value").input_value()
    assert shown == codes_in_hash(page)["c1"] and len(shown.split(".")[1]) == 3, (shown, link)
    page.goto("about:blank")
    page.goto("/" + link)  # the link as shared: a fresh load
    settle(page)
    assert page.evaluate("() => location.hash") == link and main_src(page) == first


def test_the_engine_badge_speaks_for_side_by_side_and_readings(page):
    # it stayed "…" in those views, or kept what Explore last said
    page.goto("/?engine=server#model=tiny&seed=42&view=compare")
    settle(page)
    assert page.locator("#engine").inner_text() == "server"
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    page.evaluate("() => { document.getElementById('engine').textContent = '…'; }")  # whatever loading said
    page.locator("#draw").focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    settle(page)
    assert page.locator("#engine").inner_text() == "server"


def test_the_probabilities_are_a_list_of_items_and_the_picker_offers_what_is_read(page):
    page.goto("/?engine=server#model=tiny&seed=2&view=infer")
    settle(page)
    page.locator("#draw").focus()
    page.keyboard.press("Space")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    settle(page)
    items = page.get_by_role("list", name="digit probabilities").get_by_role("listitem")
    assert items.count() == 10
    accept = page.locator("#file").get_attribute("accept")
    assert "image/*" not in accept and "image/png" in accept and "image/bmp" in accept


def test_the_tabs_take_home_and_end(page):
    open_page(page, "model=tiny&seed=42")
    page.get_by_role("tab", name="Explore").focus()
    page.keyboard.press("End")
    settle(page)
    last = page.evaluate("() => [...document.querySelectorAll('[role=tab]')].filter((t) => !t.hidden).at(-1).id")
    assert page.evaluate("() => document.activeElement.id") == last
    assert page.evaluate("() => window.explorer.state().view") == last.removeprefix("tab-")
    page.keyboard.press("Home")
    settle(page)
    assert page.evaluate("() => window.explorer.state().view") == "explore"


@pytest.mark.parametrize("seed", ["9007199254740992", "abc", "-3"])
def test_a_link_s_seed_the_api_cannot_take_is_replaced_with_a_note(page, seed):
    open_page(page, f"model=tiny&seed={seed}")
    note = page.locator("#seed-note")
    assert note.is_visible() and f"seed {seed[:24]} is not a whole number" in note.inner_text()
    drawn = page.evaluate("() => window.explorer.state().seed")
    assert f"seed={drawn}" in page.evaluate("() => location.hash")  # the link now holds the seed in use
    page.locator("#new-sample").click()
    settle(page)
    assert note.is_hidden()


def test_a_link_s_good_seed_has_no_note(page):
    open_page(page, "model=tiny&seed=42")
    assert page.locator("#seed-note").is_hidden()
