// Live rendering while a control is dragged: at most one request in flight and the newest parameters always win
// (values that arrive while a request runs replace each other; only the last one is sent). The next request goes
// out as soon as the previous one returns, before its result is painted, so painting overlaps the next run.
// Whatever was asked last is what ends up on screen, so no stale frame stays.

export class LiveRenderer {
  /**
   * @param {(params: any) => Promise<any>} send  performs the request
   * @param {(result: any, params: any, meta: {seq: number, sent: number, returned: number}) => Promise<void>|void} paint
   *   shows a result; sent/returned: performance.now() when its request went out and when its answer came back
   * @param {(error: Error, params: any) => void} fail  shows an error
   */
  constructor(send, paint, fail, { paced = () => true } = {}) {
    this.send = send;
    // paced(): whether sends wait for an animation frame (round trips to the server); a render in the page
    // itself goes at once, one at a time, so a drag paints within the frame it was made in
    this.paced = paced;
    this.paint = paint;
    this.fail = fail;
    this.pending = null; // newest parameters not yet sent
    this.inFlight = false;
    this.frameQueued = false;
    this.painting = 0; // results received, not yet painted
    this.paints = Promise.resolve(); // paints run in order (a server PNG decodes asynchronously)
    this.seq = 0; // increases with every request(); a result carries the seq it was asked for
  }

  request(params) {
    this.pending = { params, seq: ++this.seq };
    this.#schedule();
    return this.seq;
  }

  #schedule() {
    if (this.inFlight || this.frameQueued || !this.pending) return;
    if (!this.paced()) {
      this.#flush();
      return;
    }
    this.frameQueued = true;
    requestAnimationFrame(() => {
      this.frameQueued = false;
      this.#flush();
    });
  }

  async #flush() {
    if (this.inFlight || !this.pending) return;
    const { params, seq } = this.pending;
    this.pending = null;
    this.inFlight = true;
    const sent = performance.now();
    let result;
    try {
      result = await this.send(params);
    } catch (err) {
      if (err.name !== "AbortError") this.fail(err, params);
      this.inFlight = false;
      this.#schedule();
      return;
    }
    const returned = performance.now();
    this.inFlight = false;
    this.painting++;
    // Intermediate results are painted too (that is what makes a drag feel live); the newest parameters, if any
    // arrived meanwhile, go out now, and this result is painted while they run
    this.#schedule();
    this.paints = this.paints.then(async () => {
      try {
        await this.paint(result, params, { seq, sent, returned });
      } catch (err) {
        this.fail(err, params);
      } finally {
        this.painting--;
      }
    });
  }

  get idle() {
    return !this.inFlight && !this.pending && !this.frameQueued && this.painting === 0;
  }
}
