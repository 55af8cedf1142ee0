// The model chooser the page opens on: one thumbnail per served model (one image from its default codes and a fixed
// seed), so a newcomer sees at once which kinds of pictures the models make. Clicking one selects the model; the
// header's <select> stays for keyboards.
import { api } from "./api.js";
import { el } from "./controls.js";
import { paint } from "./frames.js";

// One seed for every thumbnail: the same picture on every visit (and in the screenshots)
export const THUMB_SEED = 7;

export class Chooser {
  /** container: the chooser's element; engine: engine.js (the static site generates here, a server page asks the
   * service, so the page does not fetch every model's generator at start); onPick(id): a thumbnail was chosen. */
  constructor(container, engine, onPick) {
    this.container = container;
    this.engine = engine;
    this.onPick = onPick;
    this.pending = 0; // thumbnails not painted yet (the page is not idle meanwhile)
    this.buttons = new Map();
  }

  build(models) {
    const items = models.map((model) => {
      const canvas = el("canvas", { class: "pixel", role: "img", width: String(model.image.width),
        height: String(model.image.height), "aria-label": `${model.title ?? model.id} (loading)` });
      const button = el("button", { type: "button", class: "thumb", "data-model": model.id, "aria-pressed": "false",
        title: `${model.title ?? model.id}: ${model.dataset}, ${model.image.width}×${model.image.height}`,
        onclick: () => this.onPick(model.id) },
      el("span", { class: "thumb-frame" }, canvas),
      el("span", { class: "thumb-title", text: model.title ?? model.id }),
      el("span", { class: "thumb-meta", text: `${model.dataset} · ${model.image.width}×${model.image.height}` }));
      this.buttons.set(model.id, button);
      this.#thumbnail(model, canvas);
      return button;
    });
    this.container.replaceChildren(...items);
    this.container.hidden = models.length === 0;
  }

  select(id) {
    for (const [key, button] of this.buttons) button.setAttribute("aria-pressed", String(key === id));
  }

  async #thumbnail(model, canvas) {
    const codes = Object.fromEntries(model.codes.map((c) => [c.name, c.control.default]));
    const payload = { model: model.id, n: 1, seed: THUMB_SEED, codes };
    this.pending++;
    try {
      const { body } = this.engine.staticSite ? await this.engine.generate(model, payload) : await api.generate(payload);
      await paint(canvas, body.images[0]);
      canvas.setAttribute("aria-label", `sample of ${model.title ?? model.id} (seed ${THUMB_SEED}, default codes)`);
    } catch (err) {
      // a thumbnail is a preview: its failure marks it, and the model stays selectable
      canvas.closest(".thumb")?.classList.add("failed");
      canvas.setAttribute("aria-label", `no preview of ${model.title ?? model.id} (${err.message})`);
    } finally {
      this.pending--;
    }
  }
}
