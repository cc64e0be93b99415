// Bytes to a latin1 string, for the decoders: one char per byte, the way every protocol's names
// and values are read (names and values are bytes, not UTF-8).

// `latin1Slice` skips `toString`'s argument juggling: 35 ns against 42 ns for a 20-byte slice
// (Node 20, 5M slices). It is undocumented, so fall back to `toString` if a runtime lacks it.
// Each call still crosses into C++: a decoder reads a whole header block as one string and cuts
// its names and values out of it as JS substrings (see protocols/fastcgi/name-value.ts).
interface Latin1Buffer {
  latin1Slice(start: number, end: number): string;
}
const hasLatin1Slice = typeof (Buffer.prototype as unknown as Partial<Latin1Buffer>).latin1Slice === 'function';

/** `buf[start, end)` as a latin1 string. */
export function latin1(buf: Buffer, start: number, end: number): string {
  return hasLatin1Slice ? (buf as unknown as Latin1Buffer).latin1Slice(start, end) : buf.toString('latin1', start, end);
}

/**
 * The internalized strings made so far, by content: a front server sends a small set of names,
 * but in an order that changes with each client's headers, so the callers' by-position caches
 * miss, and a Map lookup (a hash of the fresh string) is much cheaper than internalizing again
 * through an object literal. Bounded: names past the cap are internalized each time, uncached.
 * Measured (Node 20, tsc build, `bench/hot-path.ts --layouts 3`: three clients' header orders in
 * turn): `internalized` was 19.6 % of 4.5 µs per request without this Map, 3.5–3.7 µs with it.
 */
const INTERNED = new Map<string, string>();
const INTERNED_MAX = 4096;

/**
 * `s` as V8's internalized string (the one copy it keeps for property keys): comparing two of
 * them is a pointer compare, and storing one as a property key needs no lookup. For names seen
 * again and again (param names).
 */
export function internalized(s: string): string {
  let known = INTERNED.get(s);
  if (known === undefined) {
    known = Object.keys({ [s]: 0 })[0]!;
    if (INTERNED.size < INTERNED_MAX) INTERNED.set(known, known);
  }
  return known;
}

/**
 * The names of a protocol's previous request, by pair index, internalized: a front server sends
 * the same names in the same order, so a name is compared byte by byte with the one at its place
 * last time and, when equal, that string is used instead of a fresh substring; the params check
 * and the environ then compare names by pointer. One per protocol (their orders differ), shared by
 * every decoder of it. Measured (Node 20, bench/hot-path.ts, tsc build, nginx's 24 params):
 * FastCGI CPU unchanged at 2.9 µs per request (the byte compare costs what the string compare in
 * src/server/params-check.ts saves), but 6.2 → 5.4 KiB allocated per request (sampling heap
 * profiler) and 9 % fewer scavenges; SCGI unchanged (3.2 µs), uwsgi 3.1–3.2 → 3.0–3.05 µs.
 */
export class KnownNames {
  readonly #names: string[] = [];
  /** Their bytes: comparing bytes with bytes is twice as fast as with `charCodeAt` (14 vs 30 ns a name). */
  readonly #bytes: Uint8Array[] = [];

  /**
   * Pair `k`'s name, whose bytes are `buf[at, at + length)` and whose latin1 text is
   * `text[textAt, textAt + length)`.
   */
  name(k: number, buf: Buffer, at: number, length: number, text: string, textAt: number): string {
    if (k >= KNOWN_MAX) return text.slice(textAt, textAt + length);
    const known = this.#bytes[k];
    if (known !== undefined && known.length === length && sameBytes(buf, at, known)) return this.#names[k]!;
    const name = internalized(text.slice(textAt, textAt + length));
    this.#names[k] = name;
    // A copy: a view would keep the whole socket read alive.
    this.#bytes[k] = new Uint8Array(buf.subarray(at, at + length));
    return name;
  }
}

const KNOWN_MAX = 128;

/** Whether `buf[at, at + known.length)` equals `known`. */
function sameBytes(buf: Buffer, at: number, known: Uint8Array): boolean {
  for (let i = 0; i < known.length; i++) if (buf[at + i] !== known[i]) return false;
  return true;
}
