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
 * `s` as V8's internalized string (the one copy it keeps for property keys): comparing two of
 * them is a pointer compare, and storing one as a property key needs no lookup. For names seen
 * again and again (param names), made once and remembered by the caller.
 */
export function internalized(s: string): string {
  return Object.keys({ [s]: 0 })[0]!;
}
