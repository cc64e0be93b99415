// FastCGI name-value pairs (spec §3.4): an incremental decoder for the PARAMS stream, fed record
// by record and split anywhere, and the encoder. Names and values are bytes, read as latin1.

import { KnownNames, latin1 } from '../common/latin1.ts';

/** Outcome of `NameValueDecoder.write()` / `finish()`; anything but `NV_OK` ends the stream. */
export const NV_OK = 0;
/** The stream, or a pair's declared lengths, reach past `maxBytes`. */
export const NV_TOO_LARGE = 1;
/** A pair beyond `maxCount` began. */
export const NV_TOO_MANY = 2;
/** A name or value holds a NUL byte (§6.1: values are C strings to CGI programs). */
export const NV_NUL = 3;
/** The stream ended inside a pair. */
export const NV_TRUNCATED = 4;
export type NameValueStatus = typeof NV_OK | typeof NV_TOO_LARGE | typeof NV_TOO_MANY | typeof NV_NUL | typeof NV_TRUNCATED;

// Decoder states. S_PAIR is the only state where the stream may end.
const S_PAIR = 0;
const S_NAME_LEN = 1; // inside a 4-byte name length
const S_VALUE_LEN0 = 2; // before the value length
const S_VALUE_LEN = 3; // inside a 4-byte value length
const S_NAME = 4;
const S_VALUE = 5;

/** FastCGI's names by place (see KnownNames). */
const KNOWN = new KnownNames();

/**
 * Decodes one name-value stream incrementally: `write()` takes bytes as they arrive, in any
 * split (a pair may straddle records, spec appendix B example 2), and checks the limits before
 * holding anything: the byte count as bytes arrive, and a pair's declared lengths as soon as
 * they are read, so a 31-bit length that lies is refused without waiting or allocating.
 * Only a pair that straddles a write is kept between writes, as latin1 string pieces.
 */
export class NameValueDecoder {
  /** Decoded pairs as a flat list `[name0, value0, name1, value1, …]`, in stream order. */
  readonly params: string[] = [];
  readonly #maxBytes: number;
  readonly #maxCount: number;
  #fed = 0;
  #state = S_PAIR;
  #acc = 0;
  #need = 0;
  #nameLen = 0;
  #valueLen = 0;
  #left = 0;
  #part = '';
  #name = '';
  #count = 0;

  /**
   * @param maxBytes stream bytes allowed (names, values and length prefixes)
   * @param maxCount pairs allowed
   */
  constructor(maxBytes: number, maxCount: number) {
    this.#maxBytes = maxBytes;
    this.#maxCount = maxCount;
  }

  /** Stream bytes taken so far. */
  get bytes(): number {
    return this.#fed;
  }

  /** Decodes `buf[start, end)`. After a status other than `NV_OK` the decoder must not be used again. */
  write(buf: Buffer, start: number, end: number): NameValueStatus {
    if (this.#fed + (end - start) > this.#maxBytes) return NV_TOO_LARGE;
    // Stream offset of buf[i] is base + i.
    const base = this.#fed - start;
    this.#fed += end - start;
    const params = this.params;
    // Whole pairs come out of one latin1 string of the write (JS substrings, no C++ call per
    // string), and NULs are found with that string's indexOf, once per zero byte (a zero length
    // byte, an empty value, makes one more search). 20,000 nginx-like requests of 27 params
    // (bench/decoder-fastcgi.ts, Node 20): 18 ms, against 57 ms with a latin1Slice and a string
    // NUL check per name and value; searching the string instead of a Buffer view (a call into
    // C++ per search, six per nginx request): 2.75 → 2.67 µs per request in bench/hot-path.ts. The
    // substrings keep the write's string (≤ maxParamsBytes) alive while the app holds a param.
    let text: string | null = null;
    let zero = -1;
    let p = start;
    while (p < end) {
      const state = this.#state;
      if (state === S_PAIR) {
        if (this.#count === this.#maxCount) return NV_TOO_MANY;
        // Fast path: a whole pair inside this write (nginx sends all params in one record).
        let q = p;
        let nl = buf[q]!;
        if (nl < 0x80) q += 1;
        else if (q + 4 <= end) {
          nl = ((nl & 0x7f) << 24) | (buf[q + 1]! << 16) | (buf[q + 2]! << 8) | buf[q + 3]!;
          q += 4;
        } else q = -1;
        if (q !== -1 && q < end) {
          let vl = buf[q]!;
          if (vl < 0x80) q += 1;
          else if (q + 4 <= end) {
            vl = ((vl & 0x7f) << 24) | (buf[q + 1]! << 16) | (buf[q + 2]! << 8) | buf[q + 3]!;
            q += 4;
          } else q = -1;
          if (q !== -1) {
            const stop = q + nl + vl;
            if (base + stop > this.#maxBytes) return NV_TOO_LARGE;
            if (stop <= end) {
              if (text === null) text = latin1(buf, start, end);
              if (zero < q) {
                // In the write's string, so bounded to the write: an unbounded search could rescan
                // the rest of the chunk once per record, which a stream of tiny zero-free records
                // turns quadratic.
                const at = text.indexOf('\0', q - start);
                zero = at === -1 ? end : start + at;
              }
              if (zero < stop) return NV_NUL;
              const name = KNOWN.name(this.#count, buf, q, nl, text, q - start);
              const value = text.slice(q - start + nl, stop - start);
              params.push(name, value);
              this.#count++;
              p = stop;
              continue;
            }
          }
        }
        // The pair straddles this write: take it byte by byte.
        const b = buf[p++]!;
        if (b < 0x80) {
          this.#nameLen = b;
          this.#state = S_VALUE_LEN0;
        } else {
          this.#acc = b & 0x7f;
          this.#need = 3;
          this.#state = S_NAME_LEN;
        }
        continue;
      }
      switch (state) {
        case S_NAME_LEN:
          this.#acc = (this.#acc << 8) | buf[p++]!;
          if (--this.#need === 0) {
            this.#nameLen = this.#acc;
            this.#state = S_VALUE_LEN0;
          }
          break;
        case S_VALUE_LEN0: {
          const b = buf[p++]!;
          if (b < 0x80) {
            this.#valueLen = b;
            const status = this.#lengthsRead(base + p);
            if (status !== NV_OK) return status;
          } else {
            this.#acc = b & 0x7f;
            this.#need = 3;
            this.#state = S_VALUE_LEN;
          }
          break;
        }
        case S_VALUE_LEN:
          this.#acc = (this.#acc << 8) | buf[p++]!;
          if (--this.#need === 0) {
            this.#valueLen = this.#acc;
            const status = this.#lengthsRead(base + p);
            if (status !== NV_OK) return status;
          }
          break;
        case S_NAME: {
          const n = Math.min(this.#left, end - p);
          this.#part += latin1(buf, p, p + n);
          p += n;
          this.#left -= n;
          if (this.#left === 0) {
            const status = this.#nameRead();
            if (status !== NV_OK) return status;
          }
          break;
        }
        default: {
          // S_VALUE
          const n = Math.min(this.#left, end - p);
          this.#part += latin1(buf, p, p + n);
          p += n;
          this.#left -= n;
          if (this.#left === 0) {
            const status = this.#valueRead();
            if (status !== NV_OK) return status;
          }
        }
      }
    }
    return NV_OK;
  }

  /** The stream ended (the empty PARAMS record): `NV_TRUNCATED` unless it ended between pairs. */
  finish(): NameValueStatus {
    return this.#state === S_PAIR ? NV_OK : NV_TRUNCATED;
  }

  /** Both lengths are known; `offset` is the stream offset just after them. */
  #lengthsRead(offset: number): NameValueStatus {
    if (offset + this.#nameLen + this.#valueLen > this.#maxBytes) return NV_TOO_LARGE;
    this.#part = '';
    this.#left = this.#nameLen;
    this.#state = S_NAME;
    return this.#nameLen === 0 ? this.#nameRead() : NV_OK;
  }

  #nameRead(): NameValueStatus {
    if (this.#part.indexOf('\0') !== -1) return NV_NUL;
    this.#name = this.#part;
    this.#part = '';
    this.#left = this.#valueLen;
    this.#state = S_VALUE;
    return this.#valueLen === 0 ? this.#valueRead() : NV_OK;
  }

  #valueRead(): NameValueStatus {
    const value = this.#part;
    if (value.indexOf('\0') !== -1) return NV_NUL;
    this.params.push(this.#name, value);
    this.#count++;
    this.#name = '';
    this.#part = '';
    this.#state = S_PAIR;
    return NV_OK;
  }
}

/**
 * Decodes a complete name-value block (a GET_VALUES or GET_VALUES_RESULT body) into a flat
 * `[name, value, …]` list, or returns the failing status.
 */
export function decodeNameValuePairs(bytes: Uint8Array, maxBytes = bytes.length, maxCount = bytes.length): string[] | NameValueStatus {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  const decoder = new NameValueDecoder(maxBytes, maxCount);
  const status = decoder.write(buf, 0, buf.length);
  if (status !== NV_OK) return status;
  const end = decoder.finish();
  return end === NV_OK ? decoder.params : end;
}

export type NameValuePairs = ReadonlyArray<readonly [string, string]>;

// Any char above U+00FF has no latin1 byte; Buffer.from would silently keep its low byte.
function hasNonLatin1(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return true;
  return false;
}

function lengthSize(n: number): number {
  return n < 0x80 ? 1 : 4;
}

/** Wire size of `pairs` (§3.4: 1-byte lengths below 128, else 4 bytes with the high bit set). */
export function nameValuePairsLength(pairs: NameValuePairs): number {
  let size = 0;
  for (const [name, value] of pairs) size += lengthSize(name.length) + lengthSize(value.length) + name.length + value.length;
  return size;
}

function writeLength(buf: Buffer, offset: number, n: number): number {
  if (n < 0x80) {
    buf[offset] = n;
    return offset + 1;
  }
  buf.writeUInt32BE((n | 0x80000000) >>> 0, offset);
  return offset + 4;
}

/**
 * Encodes pairs as one name-value block, latin1. Throws a `RangeError` for a name or value with
 * a char above U+00FF (it has no byte) or longer than 2³¹−1.
 */
export function encodeNameValuePairs(pairs: NameValuePairs): Buffer {
  for (const [name, value] of pairs) {
    if (hasNonLatin1(name) || hasNonLatin1(value)) throw new RangeError('FastCGI names and values are latin1: a char above U+00FF has no byte');
    if (name.length > 0x7fffffff || value.length > 0x7fffffff) throw new RangeError('FastCGI name-value lengths are 31-bit');
  }
  const buf = Buffer.allocUnsafe(nameValuePairsLength(pairs));
  let offset = 0;
  for (const [name, value] of pairs) {
    offset = writeLength(buf, offset, name.length);
    offset = writeLength(buf, offset, value.length);
    offset += buf.write(name, offset, 'latin1');
    offset += buf.write(value, offset, 'latin1');
  }
  return buf;
}
