// Live rendering while a control is dragged: at most one request in flight, sends are paced to
// animation frames, and the newest parameters always win. Whatever was asked last is what ends up
// on screen (the request for it is sent once the one in flight returns), so no stale frame stays.

export class LiveRenderer {
  /**
   * @param {(params: any) => Promise<any>} send  performs the request
   * @param {(result: any, params: any, meta: {seq: number}) => Promise<void>|void} paint  shows a result
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
    try {
      const result = await this.send(params);
      // Intermediate results are painted too (that is what makes a drag feel live); the newest
      // parameters, if any arrived meanwhile, go out on the next frame.
      await this.paint(result, params, { seq });
    } catch (err) {
      if (err.name !== "AbortError") this.fail(err, params);
    } finally {
      this.inFlight = false;
      this.#schedule();
    }
  }

  get idle() {
    return !this.inFlight && !this.pending && !this.frameQueued;
  }
}
