"""The explorer for a keyboard-only or screen-reader user: focus rings, names and roles, contrast, reflow, focus kept
out from under the sticky picture (Chromium's computed styles and accessibility tree)."""

from __future__ import annotations

import re

import pytest

from .conftest import PHONE, new_page, route_models, served_models
from .test_explorer import open_page, settle

pytestmark = pytest.mark.browser

# WCAG 2.2: text 4.5:1 (3:1 when large), a focus indicator 3:1 against what is beside it
TEXT, LARGE_TEXT, NON_TEXT = 4.5, 3.0, 3.0

# Contrast of every visible text (and of each form field's own value) against what is painted behind it, each colour
# composited through its ancestors' backgrounds and opacities (an opacity group fades its text and its background
# together). Returns [{ratio, need, text, where}] for the texts below the need.
LOW_CONTRAST_JS = """() => {
  const parse = (s) => {
    const m = s.match(/^rgba?\\(([^)]+)\\)/) || s.match(/^color\\(srgb ([^)]+)\\)/);
    if (!m) return { r: 0, g: 0, b: 0, a: 0 };
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    const k = s.startsWith("color(") ? 255 : 1;
    return { r: p[0] * k, g: p[1] * k, b: p[2] * k, a: p.length > 3 ? p[3] : 1 };
  };
  const over = (t, b) => {
    const a = t.a + b.a * (1 - t.a);
    if (!a) return { r: 0, g: 0, b: 0, a: 0 };
    const mix = (x, y) => (x * t.a + y * b.a * (1 - t.a)) / a;
    return { r: mix(t.r, b.r), g: mix(t.g, b.g), b: mix(t.b, b.b), a };
  };
  const lum = (c) => {
    const f = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  // one pixel of `el`: its text (or its background when top is null) painted through every ancestor's layer
  const pixel = (el, top) => {
    const chain = [];
    for (let e = el; e; e = e.parentElement) chain.push(e);
    let layer = top ?? { r: 0, g: 0, b: 0, a: 0 };
    for (const e of chain) {
      const cs = getComputedStyle(e);
      layer = over(layer, parse(cs.backgroundColor)); // an element's background lies under its content
      layer = { ...layer, a: layer.a * Number(cs.opacity) };
    }
    return over(layer, { r: 255, g: 255, b: 255, a: 1 });
  };
  const low = [];
  const check = (el, text) => {
    const r = el.getBoundingClientRect();
    const cs = getComputedStyle(el);
    if (!text.trim() || !r.width || !r.height || cs.visibility === "hidden" || el.closest(".visually-hidden")) return;
    // text drawn over a picture (the drawing canvas's hint): the canvas's own background is what is behind it
    const canvas = el.matches(".draw-hint") ? document.getElementById("draw") : null;
    const under = canvas ? parse(getComputedStyle(canvas).backgroundColor) : null;
    const fg = parse(cs.color);
    const [text_, back] = under ? [over(fg, under), under] : [pixel(el, fg), pixel(el, null)];
    const ratio = (Math.max(lum(text_), lum(back)) + 0.05) / (Math.min(lum(text_), lum(back)) + 0.05);
    const size = parseFloat(cs.fontSize);
    const large = size >= 24 || (Number(cs.fontWeight) >= 700 && size >= 18.66);
    const need = large ? 3 : 4.5;
    if (ratio < need - 0.005) low.push({ ratio: Math.round(ratio * 100) / 100, need, text: text.trim().slice(0, 40),
      where: `${el.tagName.toLowerCase()}${el.id ? "#" + el.id : ""}.${el.className}` });
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.parentElement.closest("svg, option, select, script")) check(n.parentElement, n.textContent);
  }
  for (const field of document.querySelectorAll("input[type=number], select")) {
    check(field, field instanceof HTMLSelectElement ? field.selectedOptions[0]?.textContent ?? "" : field.value);
  }
  return low;
}"""


def low_contrast(page) -> list[dict]:
    # colours still in transition (a button going disabled fades its background over 0.12 s) are not the page's
    page.evaluate("() => Promise.all(document.getAnimations().map((a) => a.finished))")
    return page.evaluate(LOW_CONTRAST_JS)


def edited_models(server, **changes) -> list[dict]:
    """GET /models with `changes` applied to the model 'tiny'."""
    models = served_models(server)
    for m in models:
        if m["id"] == "tiny":
            m.update(changes)
    return models


@pytest.mark.parametrize(
    "scenario",
    [
        "explore",  # the <kbd>r</kbd> key caps (opacity 0.7: 2.4:1 on the primary button)
        "infer, disabled button",  # "Infer from drawing" before anything is drawn (opacity 0.45: 2:1)
        "infer, dark-on-light canvas",  # the drawing hint on a white canvas (#9aa1ad: 2.6:1)
        "traversal, fixed columns",  # the columns field, disabled while a choice is swept
        "no model served",  # the whole page inert (opacity 0.55: 2.4:1)
    ],
)
def test_text_contrast_in_every_state(page, server, scenario):
    """Every visible text, disabled controls' included, is 4.5:1 (3:1 when large) against what is behind it."""
    if scenario == "no model served":
        route_models(page, [])
        page.goto("/")
        page.wait_for_selector("#error:not([hidden])")
        page.wait_for_selector("#new-sample:disabled")  # every control disabled once the error is up
    elif scenario == "infer, dark-on-light canvas":
        route_models(page, edited_models(server, drawing="dark-on-light"))
        open_page(page, "model=tiny&seed=2&view=infer")
        assert page.locator("#draw").evaluate("c => getComputedStyle(c).backgroundColor") == "rgb(255, 255, 255)"
    else:
        view = {"explore": "explore", "infer, disabled button": "infer", "traversal, fixed columns": "traverse"}
        open_page(page, f"model=tiny&seed=2&view={view[scenario]}&grid=digit")
    if scenario == "infer, disabled button":
        assert page.get_by_role("button", name="Infer from drawing").is_disabled()
    if scenario == "traversal, fixed columns":
        assert page.locator("#grid-cols").is_disabled()
    assert low_contrast(page) == []


def focus_cycle(page, limit: int = 80) -> list[dict]:
    """Tab from the top of the page until focus comes back to where it started (no trap: within `limit` presses):
    each stop's description, its outline and box-shadow while focused, and whether it matches :focus-visible."""
    page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
    stops: list[dict] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(
            """() => {
            const e = document.activeElement;
            const style = () => { const cs = getComputedStyle(e);
              return { outline: `${cs.outlineStyle} ${cs.outlineWidth} ${cs.outlineColor}`, shadow: cs.boxShadow }; };
            const on = style();
            const name = e.getAttribute("aria-label") ?? e.textContent.trim().slice(0, 20);
            return { id: `${e.tagName.toLowerCase()}#${e.id}[${name}]`, on, focusVisible: e.matches(":focus-visible"),
              el: e !== document.body };
            }"""
        )
        if not stop["el"]:
            return stops
        stops.append(stop)
    raise AssertionError(f"focus did not come back round within {limit} Tab presses: {[s['id'] for s in stops]}")


def parse_colour(css: str) -> tuple[float, float, float, float]:
    m = re.match(r"rgba?\(([^)]+)\)", css) or re.match(r"color\(srgb ([^)]+)\)", css)
    assert m, css
    parts = [float(p) for p in re.split(r"[ ,/]+", m.group(1).strip()) if p]
    k = 255 if css.startswith("color(") else 1
    return parts[0] * k, parts[1] * k, parts[2] * k, parts[3] if len(parts) > 3 else 1.0


def contrast(fg: tuple, bg: tuple[float, float, float]) -> float:
    """WCAG contrast of ``fg`` (RGBA, composited over ``bg``) against ``bg`` (RGB)."""
    a = fg[3]
    mixed = [fg[i] * a + bg[i] * (1 - a) for i in range(3)]

    def lum(c):
        f = [(v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        return 0.2126 * f[0] + 0.7152 * f[1] + 0.0722 * f[2]

    hi, lo = sorted((lum(mixed), lum(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.mark.parametrize(
    "hash_",
    [
        "model=tiny&view=explore",
        "model=tiny&view=traverse",
        "model=tiny&view=compare",
        "model=tiny&view=infer",
        "model=tiny-sprites&view=factors",
    ],
)
def test_every_tab_stop_shows_a_focus_ring(page, hash_):
    """Tab goes round every view without a trap; each stop shows a ring (3:1 against the white panel and the page's
    grey) that it does not show unfocused."""
    open_page(page, f"{hash_}&seed=2")
    stops = focus_cycle(page)
    ids = [s["id"] for s in stops]
    assert any("tab-" in i for i in ids) and any(i.startswith("select#model") for i in ids)
    for stop in stops:
        assert stop["focusVisible"], stop["id"]
        style, width, colour = stop["on"]["outline"].split(" ", 2)
        assert style != "none" and float(width.removesuffix("px")) >= 2, stop
        rgba = parse_colour(colour)
        for behind in [(255, 255, 255), (245, 246, 248)]:  # the panel, the page
            assert contrast(rgba, behind) >= NON_TEXT, (stop["id"], colour, behind)
    # and no ring without focus
    page.evaluate("() => document.activeElement?.blur()")
    for selector in ["#model", "#seed", "#new-sample", "[role=tab][aria-selected=true]"]:
        assert page.locator(selector).evaluate("e => getComputedStyle(e).outlineStyle") == "none", selector


# Every focusable node in the accessibility tree: its role and name (CDP, as a screen reader gets them)
def focusable_nodes(page) -> list[tuple[str, str, int]]:
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    out = []
    for n in nodes:
        props = {p["name"]: p["value"].get("value") for p in n.get("properties", [])}
        if n.get("ignored") or not props.get("focusable"):
            continue
        role = n.get("role", {}).get("value", "")
        if role in ("RootWebArea", "option"):  # the document itself; a select's options (named by their text)
            continue
        out.append((role, (n.get("name", {}).get("value") or "").strip(), n.get("backendDOMNodeId")))
    return out


def tab_stops_as_read(page, limit: int = 80) -> list[tuple[str, str]]:
    """Tab round the page from the top: each stop's role and name in the accessibility tree."""
    cdp = page.context.new_cdp_session(page)
    try:
        page.evaluate("() => { document.activeElement?.blur(); window.scrollTo(0, 0); }")
        out = []
        for _ in range(limit):
            page.keyboard.press("Tab")
            focused = cdp.send("Runtime.evaluate", {"expression": "document.activeElement"})["result"]
            if page.evaluate("() => document.activeElement === document.body"):
                return out
            ax = {"objectId": focused["objectId"], "fetchRelatives": False}
            own = cdp.send("Accessibility.getPartialAXTree", ax)["nodes"][0]
            out.append((own.get("role", {}).get("value", ""), (own.get("name", {}).get("value") or "").strip()))
        raise AssertionError(f"focus did not come back round within {limit} Tab presses: {out}")
    finally:
        cdp.detach()


@pytest.mark.parametrize(
    "hash_, phone",
    [
        ("model=tiny&view=explore", False),
        ("model=tiny&view=explore", True),
        ("model=tiny&view=traverse", False),
        ("model=tiny&view=compare", False),
        ("model=tiny&view=infer", False),
        ("model=tiny-sprites&view=factors", False),
    ],
)
def test_every_focusable_element_has_a_role_and_a_name(browser, server, hash_, phone):
    """No tab stop is a bare <div> or <canvas> (the drop zone, the drawing canvas, the gallery strip that scrolls on a
    phone): each has a role and a name, and a control with visible words is named with them (a voice user says
    "click Choose file")."""
    context, page = new_page(browser, server, viewport=PHONE if phone else {"width": 1280, "height": 860})
    try:
        open_page(page, f"{hash_}&seed=2")
        nodes = focusable_nodes(page)
        assert len(nodes) > 8
        # and what Tab reaches: Chromium makes a strip that scrolls a tab stop without marking it focusable there
        stops = tab_stops_as_read(page)
        assert len(stops) > 8
        unnamed = ("generic", "Canvas", "none", "")
        bare = [(role, name) for role, name, *_ in nodes + stops if role in unnamed or not name]
        assert bare == [], bare
        roles = {role for role, _, _ in nodes}
        if "view=infer" in hash_:
            assert page.get_by_role("application", name="drawing canvas").count() == 1
            assert page.get_by_role("button", name="Choose file").count() == 1  # the file input, by its label
        assert "slider" in roles or "tab" in roles
    finally:
        context.close()


def test_focus_is_not_hidden_under_the_sticky_picture(browser, server):
    """On a phone the picture sticks to the top of the screen: going back up the controls with Shift+Tab scrolls
    each one into view below it, never under it (the seed and the choice buttons were hidden under the picture)."""
    context, page = new_page(browser, server, viewport=PHONE)
    try:
        # from the view's last control (Download sits below the controls; the compared model's select above them)
        for view, last in [("explore", "#download-image"), ("compare", "#compare-model")]:
            open_page(page, f"model=tiny&seed=2&view={view}")
            page.locator(last).focus()
            seen = []
            for _ in range(30):
                page.keyboard.press("Shift+Tab")
                where = page.evaluate(
                    """() => { const e = document.activeElement; if (e === document.body) return null;
                    const r = e.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2;
                    const hit = document.elementFromPoint(Math.min(Math.max(x, 0), innerWidth - 1), y);
                    const shown = y >= 0 && y < innerHeight && !!hit
                      && (hit === e || e.contains(hit) || hit.contains(e));
                    const name = e.getAttribute("aria-label") ?? e.textContent.trim().slice(0, 16);
                    return { id: `${e.tagName.toLowerCase()}#${e.id}[${name}]`, shown,
                      under: shown ? null : hit?.className }; }"""
                )
                if where is None or where["id"].startswith("select#model"):
                    break
                seen.append(where)
            assert any(w["id"].startswith("input#seed") for w in seen), seen
            hidden = [w for w in seen if not w["shown"]]
            assert hidden == [], (view, hidden)
    finally:
        context.close()


def test_narrow_screen_cuts_nothing_off(browser, server):
    """At 320 CSS px (a phone, or 400% zoom on a desktop): no sideways scrolling, every model's title shown whole
    (not "Tiny sprit…" for two models), and the seed field wide enough for the seed in it."""
    context, page = new_page(browser, server, viewport={"width": 320, "height": 640})
    try:
        open_page(page, "model=tiny&seed=1234567890")
        assert page.evaluate("() => document.documentElement.scrollWidth") <= 320
        cut = page.locator(".thumb-title").evaluate_all(
            "ts => ts.filter(t => t.scrollWidth > t.clientWidth + 1 || getComputedStyle(t).textOverflow === 'ellipsis')"
            ".map(t => t.textContent)"
        )
        assert cut == []
        room = page.locator("#seed").evaluate(
            """(s) => { const cs = getComputedStyle(s); const c = document.createElement("canvas").getContext("2d");
            c.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
            // the content box less the spin buttons' room (Chromium: about 15 px)
            const box = s.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight) - 16;
            return box - c.measureText(s.value).width; }"""
        )
        assert room >= 0, f"the seed field is {-room:.0f} px too narrow for 1234567890"
    finally:
        context.close()


def test_headings_do_not_skip_a_level_with_a_reading(page):
    """The inferred codes are h4s: an h3 over them, so a screen reader's heading list goes h1, h2, h3, h4."""
    open_page(page, "model=tiny&seed=2&view=infer")
    page.locator("#draw").focus()
    page.keyboard.press("Space")
    for _ in range(6):
        page.keyboard.press("ArrowDown")
    page.keyboard.press("Space")  # pen lifted: the final reading
    page.wait_for_selector("#infer-result:not([hidden]) #infer-codes h4")
    settle(page)
    levels = page.evaluate(
        """() => [...document.querySelectorAll("h1, h2, h3, h4, h5, h6")].filter((h) => h.getClientRects().length)
        .map((h) => Number(h.tagName[1]))"""
    )
    assert levels[0] == 1
    skips = [(a, b) for a, b in zip(levels, levels[1:], strict=False) if b > a + 1]
    assert skips == [], levels


def test_slider_reads_out_the_value_in_use(page):
    """A value beyond the slider's range (a link's c1=3, typed or read from a drawing; the API takes up to the hard
    bounds) is what the slider says, not the end of its track, and it follows the arrow keys."""
    open_page(page, "model=tiny&seed=2&c.c1=3")
    slider = page.get_by_role("slider", name="c1", exact=True)
    assert slider.input_value() == "2"  # the track ends at 2 ...
    assert slider.get_attribute("aria-valuetext") == "3.00"  # ... the picture uses 3
    assert "c1=3.00" in page.locator("#main-image").get_attribute("aria-label")
    slider.focus()
    page.keyboard.press("ArrowLeft")
    settle(page)
    assert slider.get_attribute("aria-valuetext") == page.get_by_label("c1 value", exact=True).input_value() == "1.90"


def test_grid_cells_are_named_by_their_column_heading(page):
    """A screen reader reads each cell of the traversal grid as its column is headed: the category's label and the
    rounded value, not the raw value ("item = 2" under "Ankle boot", "c1 = -1.3333333333333335")."""
    open_page(page, "model=tiny-words&seed=1&view=traverse&grid=item&rows=2")
    heads = page.locator("#grid .grid-head").all_inner_texts()
    assert heads == ["T-shirt/top", "Trouser", "Ankle boot", "Bag"]
    labels = page.locator("#grid canvas").evaluate_all("cs => cs.map((c) => c.getAttribute('aria-label'))")
    assert labels[:4] == [f"sample 1, item = {h}" for h in heads]
    page.get_by_label("sweep code").select_option("c1")
    settle(page)
    heads = page.locator("#grid .grid-head").all_inner_texts()
    labels = page.locator("#grid canvas").evaluate_all("cs => cs.map((c) => c.getAttribute('aria-label'))")
    assert labels[: len(heads)] == [f"sample 1, c1 = {h}" for h in heads] and heads[0] == "-2.00"


def test_the_same_error_is_not_announced_again_on_every_frame(page):
    """The alert is rewritten only when its text changes: with /generate failing, each slider step wrote the same
    message again, and a screen reader announces an alert on every write."""
    page.goto("/?engine=server#model=tiny&seed=1")
    settle(page)
    page.route("**/generate", lambda route: route.fulfill(status=500, body="{}", content_type="application/json"))
    page.evaluate(
        "() => { window.__alertWrites = 0; new MutationObserver((ms) => { window.__alertWrites += ms.length; })"
        ".observe(document.getElementById('error'), { childList: true, characterData: true, subtree: true }); }"
    )
    slider = page.get_by_role("slider", name="c1", exact=True)
    slider.focus()
    for _ in range(5):
        slider.press("ArrowRight")
        page.wait_for_timeout(150)
    page.wait_for_function("() => !document.getElementById('error').hidden")
    settle(page)
    assert page.get_by_role("alert").is_visible()
    assert page.evaluate("() => window.__alertWrites") == 1
