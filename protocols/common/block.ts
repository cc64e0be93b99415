// Assembles a block of known length (the SCGI netstring payload, the uwsgi vars) from pushed chunks:
// a zero-copy view when it lies inside one chunk, one buffer of exactly that size when it crosses.

export class BlockAssembler {
  #buffer: Buffer | undefined = undefined;
  #filled = 0;
  /** Offset in the last chunk given to `take()` where its bytes stopped being consumed. */
  next = 0;

  /** Bytes held for a block that crosses chunks (never more than the block's length). */
  get bufferedBytes(): number {
    return this.#buffer === undefined ? 0 : this.#buffer.length;
  }

  /** Consumes block bytes from `chunk` at `pos`; returns the block once all `length` bytes are in. */
  take(chunk: Buffer, pos: number, length: number): Buffer | undefined {
    const need = length - this.#filled;
    const avail = chunk.length - pos;
    if (this.#filled === 0 && avail >= need) {
      this.next = pos + need;
      return chunk.subarray(pos, pos + need);
    }
    this.#buffer ??= Buffer.allocUnsafe(length);
    const n = Math.min(need, avail);
    chunk.copy(this.#buffer, this.#filled, pos, pos + n);
    this.#filled += n;
    this.next = pos + n;
    if (this.#filled < length) return undefined;
    const block = this.#buffer;
    this.clear();
    return block;
  }

  clear(): void {
    this.#buffer = undefined;
    this.#filled = 0;
  }
}
