// Raw, tolerant framing of the three gateway protocols, from the fuzzer's side: split bytes into
// records / netstring / vars whatever they hold, and re-encode anything (lies included). Written
// independently of protocols/ on purpose: an oracle that shared the decoders' code would share
// their bugs.

/** One FastCGI record as found in a byte string; `content` and `padding` may be short at the end. */
export interface RawRecord {
  version: number;
  type: number;
  id: number;
  /** The header's contentLength, which may lie about `content.length`. */
  contentLength: number;
  paddingLength: number;
  reserved: number;
  content: Buffer;
  padding: Buffer;
}

/** Records front to back; bytes after the last whole header are returned as `rest`. */
export function splitFcgiRecords(bytes: Buffer): { records: RawRecord[]; rest: Buffer } {
  const records: RawRecord[] = [];
  let pos = 0;
  while (bytes.length - pos >= 8) {
    const contentLength = (bytes[pos + 4]! << 8) | bytes[pos + 5]!;
    const paddingLength = bytes[pos + 6]!;
    const cEnd = Math.min(bytes.length, pos + 8 + contentLength);
    const pEnd = Math.min(bytes.length, cEnd + paddingLength);
    records.push({
      version: bytes[pos]!,
      type: bytes[pos + 1]!,
      id: (bytes[pos + 2]! << 8) | bytes[pos + 3]!,
      contentLength,
      paddingLength,
      reserved: bytes[pos + 7]!,
      content: bytes.subarray(pos + 8, cEnd),
      padding: bytes.subarray(cEnd, pEnd),
    });
    pos = pEnd;
  }
  return { records, rest: bytes.subarray(pos) };
}

/** A record with its header fields as given (contentLength defaults to the content's length). */
export function fcgiRecord(
  type: number,
  id: number,
  content: Uint8Array = EMPTY,
  options: { version?: number; contentLength?: number; padding?: number; reserved?: number } = {},
): Buffer {
  const padding = options.padding ?? (-content.length & 7);
  const cl = options.contentLength ?? content.length;
  const out = Buffer.alloc(8 + content.length + padding);
  out[0] = options.version ?? 1;
  out[1] = type & 0xff;
  out[2] = (id >>> 8) & 0xff;
  out[3] = id & 0xff;
  out[4] = (cl >>> 8) & 0xff;
  out[5] = cl & 0xff;
  out[6] = padding & 0xff;
  out[7] = options.reserved ?? 0;
  out.set(content, 8);
  return out;
}

/** Re-encodes parsed records exactly as they are (header fields, content, padding bytes). */
export function joinFcgiRecords(records: readonly RawRecord[], rest: Buffer = EMPTY): Buffer {
  const parts: Buffer[] = [];
  for (const r of records) {
    const h = Buffer.alloc(8);
    h[0] = r.version;
    h[1] = r.type;
    h[2] = (r.id >>> 8) & 0xff;
    h[3] = r.id & 0xff;
    h[4] = (r.contentLength >>> 8) & 0xff;
    h[5] = r.contentLength & 0xff;
    h[6] = r.paddingLength;
    h[7] = r.reserved;
    parts.push(h, r.content, r.padding);
  }
  parts.push(rest);
  return Buffer.concat(parts);
}

/** FastCGI name-value length (§3.4): one byte below 128, else four with the high bit set. */
export function nvLength(n: number, long = n > 127): Buffer {
  if (!long) return Buffer.from([n & 0x7f]);
  const b = Buffer.alloc(4);
  b.writeUInt32BE((n | 0x80000000) >>> 0);
  return b;
}

/** Name-value pairs, each length in the short form unless `long` (or too big for it). */
export function encodeNv(pairs: ReadonlyArray<readonly [Buffer, Buffer]>, long = false): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of pairs) parts.push(nvLength(n.length, long || n.length > 127), nvLength(v.length, long || v.length > 127), n, v);
  return Buffer.concat(parts);
}

/** Pairs of a complete name-value block; undefined when it does not parse exactly. */
export function parseNv(block: Buffer): Array<[Buffer, Buffer]> | undefined {
  const out: Array<[Buffer, Buffer]> = [];
  let p = 0;
  const len = (): number => {
    if (p >= block.length) return -1;
    const b = block[p]!;
    if (b < 0x80) {
      p += 1;
      return b;
    }
    if (p + 4 > block.length) return -1;
    const v = block.readUInt32BE(p) & 0x7fffffff;
    p += 4;
    return v;
  };
  while (p < block.length) {
    const nl = len();
    const vl = len();
    if (nl < 0 || vl < 0 || p + nl + vl > block.length) return undefined;
    out.push([block.subarray(p, p + nl), block.subarray(p + nl, p + nl + vl)]);
    p += nl + vl;
  }
  return out;
}

/** An SCGI request split at its netstring: undefined when there is no `digits:` prefix. */
export interface RawScgi {
  digits: Buffer;
  block: Buffer;
  /** The byte after the block (normally `,`), or undefined when the input ends first. */
  comma: number | undefined;
  body: Buffer;
}

export function splitScgi(bytes: Buffer): RawScgi | undefined {
  const colon = bytes.indexOf(0x3a);
  if (colon < 0 || colon > 24) return undefined;
  const digits = bytes.subarray(0, colon);
  const n = Number.parseInt(digits.toString('latin1'), 10);
  const size = Number.isFinite(n) && n >= 0 ? Math.min(n, bytes.length - colon - 1) : bytes.length - colon - 1;
  const blockEnd = colon + 1 + size;
  return { digits, block: bytes.subarray(colon + 1, blockEnd), comma: bytes[blockEnd], body: bytes.subarray(Math.min(bytes.length, blockEnd + 1)) };
}

/** `len:block,body` with a truthful length. */
export function scgiFrame(block: Buffer, body: Buffer = EMPTY, comma = 0x2c): Buffer {
  return Buffer.concat([Buffer.from(`${String(block.length)}:`, 'latin1'), block, Buffer.from([comma]), body]);
}

/** `name NUL value NUL …` split at NULs; an unpaired trailing string is returned as `tail`. */
export function splitScgiBlock(block: Buffer): { pairs: Array<[Buffer, Buffer]>; tail: Buffer } {
  const strings: Buffer[] = [];
  let p = 0;
  while (p < block.length) {
    const z = block.indexOf(0, p);
    if (z < 0) break;
    strings.push(block.subarray(p, z));
    p = z + 1;
  }
  const pairs: Array<[Buffer, Buffer]> = [];
  for (let i = 0; i + 1 < strings.length; i += 2) pairs.push([strings[i]!, strings[i + 1]!]);
  const tail = strings.length % 2 === 1 ? Buffer.concat([strings.at(-1)!, NUL, block.subarray(p)]) : block.subarray(p);
  return { pairs, tail };
}

export function joinScgiBlock(pairs: ReadonlyArray<readonly [Buffer, Buffer]>, tail: Buffer = EMPTY): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of pairs) parts.push(n, NUL, v, NUL);
  parts.push(tail);
  return Buffer.concat(parts);
}

/** A uwsgi packet: header fields, the vars block (datasize bytes, or fewer at the end) and the rest. */
export interface RawUwsgi {
  modifier1: number;
  datasize: number;
  modifier2: number;
  vars: Buffer;
  body: Buffer;
}

export function splitUwsgi(bytes: Buffer): RawUwsgi | undefined {
  if (bytes.length < 4) return undefined;
  const datasize = bytes.readUInt16LE(1);
  const end = Math.min(bytes.length, 4 + datasize);
  return { modifier1: bytes[0]!, datasize, modifier2: bytes[3]!, vars: bytes.subarray(4, end), body: bytes.subarray(end) };
}

export function uwsgiFrame(vars: Buffer, body: Buffer = EMPTY, modifier1 = 0, modifier2 = 0, datasize = vars.length): Buffer {
  const h = Buffer.from([modifier1 & 0xff, datasize & 0xff, (datasize >>> 8) & 0xff, modifier2 & 0xff]);
  return Buffer.concat([h, vars, body]);
}

/** Vars as `[key, value]`; undefined when the block is not an exact sequence of vars. */
export function parseUwsgiVars(vars: Buffer): Array<[Buffer, Buffer]> | undefined {
  const out: Array<[Buffer, Buffer]> = [];
  let p = 0;
  while (p < vars.length) {
    if (p + 2 > vars.length) return undefined;
    const kl = vars.readUInt16LE(p);
    if (p + 2 + kl + 2 > vars.length) return undefined;
    const k = vars.subarray(p + 2, p + 2 + kl);
    p += 2 + kl;
    const vl = vars.readUInt16LE(p);
    if (p + 2 + vl > vars.length) return undefined;
    out.push([k, vars.subarray(p + 2, p + 2 + vl)]);
    p += 2 + vl;
  }
  return out;
}

export function encodeUwsgiVars(pairs: ReadonlyArray<readonly [Buffer, Buffer]>): Buffer {
  const parts: Buffer[] = [];
  for (const [k, v] of pairs) {
    const kl = Buffer.alloc(2);
    kl.writeUInt16LE(k.length & 0xffff);
    const vl = Buffer.alloc(2);
    vl.writeUInt16LE(v.length & 0xffff);
    parts.push(kl, k, vl, v);
  }
  return Buffer.concat(parts);
}

export const EMPTY: Buffer = Buffer.alloc(0);
const NUL = Buffer.from([0]);
