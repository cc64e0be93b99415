// Requests in flight on one connection, by FastCGI request id, for the decoder and the server's
// connection alike: nginx and Apache never multiplex, so almost always there is one, and a Map set
// and deleted for every request made garbage each time (its table regrown and shrunk: ~350 B a
// request, bench/hot-path.ts under the sampling heap profiler; a Map per idle connection ~184 B).
// One slot, and a Map only while two or more are in flight (multiplexing), which keeps them in
// the order they arrived.

export class IdSlots<V> {
  #id = -1;
  #value: V | undefined;
  #more: Map<number, V> | null = null;

  get size(): number {
    return this.#more !== null ? this.#more.size : this.#value === undefined ? 0 : 1;
  }

  get(id: number): V | undefined {
    if (this.#more !== null) return this.#more.get(id);
    return id === this.#id ? this.#value : undefined;
  }

  /** Adds `value` under `id` (which must not be in use). */
  set(id: number, value: V): void {
    const more = this.#more;
    if (more !== null) {
      more.set(id, value);
    } else if (this.#value === undefined) {
      this.#id = id;
      this.#value = value;
    } else {
      this.#more = new Map([[this.#id, this.#value], [id, value]]);
      this.#id = -1;
      this.#value = undefined;
    }
  }

  delete(id: number): void {
    const more = this.#more;
    if (more !== null) {
      more.delete(id);
      if (more.size === 0) this.#more = null;
    } else if (id === this.#id) {
      this.#id = -1;
      this.#value = undefined;
    }
  }

  /** A copy of the values, in arrival order: safe to iterate while entries are deleted. */
  values(): V[] {
    if (this.#more !== null) return [...this.#more.values()];
    return this.#value === undefined ? [] : [this.#value];
  }
}
