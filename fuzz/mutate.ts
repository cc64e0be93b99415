// Input mutation for the fuzzer, from the fuzzer's side: byte-level havoc (flips, interesting
// values, arithmetic, inserts, deletes, duplication, splices) plus mutators that know each
// protocol's framing (FastCGI 8-byte record headers and name-value lengths, SCGI netstring
// digits and NUL-separated headers, uwsgi little-endian sizes and vars), so mutated inputs get
// past the framing into the deeper states instead of failing on their first bytes.

import { CONFIGS, type Protocol } from './oracle.ts';
import {
  EMPTY,
  encodeNv,
  encodeUwsgiVars,
  fcgiRecord,
  joinFcgiRecords,
  joinScgiBlock,
  nvLength,
  parseNv,
  parseUwsgiVars,
  scgiFrame,
  splitFcgiRecords,
  splitScgi,
  splitScgiBlock,
  splitUwsgi,
  uwsgiFrame,
  type RawRecord,
} from './wire.ts';

/** The fuzzer's random source: a seeded xorshift128+, so a campaign can be replayed. */
export class Rng {
  #s0: number;
  #s1: number;

  constructor(seed: number) {
    this.#s0 = (seed ^ 0x9e3779b9) | 1;
    this.#s1 = Math.imul(seed, 0x85ebca6b) ^ 0xc2b2ae35;
    for (let i = 0; i < 8; i++) this.u32();
  }

  u32(): number {
    let s1 = this.#s0;
    const s0 = this.#s1;
    this.#s0 = s0;
    s1 ^= s1 << 23;
    s1 ^= s1 >>> 17;
    s1 ^= s0 ^ (s0 >>> 26);
    this.#s1 = s1;
    return (this.#s0 + this.#s1) >>> 0;
  }

  /** 0 ≤ n < max (max ≥ 1). */
  int(max: number): number {
    return max <= 1 ? 0 : this.u32() % max;
  }

  chance(p: number): boolean {
    return this.u32() / 4294967296 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
}

const INTERESTING_8 = [0, 1, 2, 7, 8, 0x0a, 0x0d, 0x10, 0x20, 0x2c, 0x30, 0x39, 0x3a, 0x40, 0x7f, 0x80, 0x81, 0xfe, 0xff];
const INTERESTING_16 = [0, 1, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0x3fff, 0x7fff, 0x8000, 0xfff8, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0x80000000, 0x80000080, 0xffffffff, 0x10000, 0xffff];

/** Words worth inserting whole (libFuzzer-style dictionary). */
const DICTIONARY: Record<Protocol, readonly string[]> = {
  fastcgi: ['CONTENT_LENGTH', 'REQUEST_METHOD', 'FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', 'HTTP_COOKIE', 'SCRIPT_NAME', '\x01\x01\x00\x01\x00\x08\x00\x00', '\x00\x01\x01\x00\x00\x00\x00\x00', '\x01\x04\x00\x01\x00\x00\x00\x00', '\x01\x05\x00\x01\x00\x00\x00\x00', '\x01\x09\x00\x00'],
  scgi: ['CONTENT_LENGTH', '\x00', 'SCGI\x001\x00', 'REQUEST_METHOD\x00POST\x00', '0', '9', ':', ',', '00', '65536', '4294967296', '9007199254740993', 'GET / HTTP/1.1\r\n', '\x16\x03\x01'],
  uwsgi: ['CONTENT_LENGTH', '\x0e\x00CONTENT_LENGTH', '\x00\x00', '\xff\xff', 'GET / HTTP/1.1\r\n', 'PRI * HTTP/2.0', '\x64\x00\x00\x00', '\x16\x03\x01', '\x01\x01\x00\x01'],
};

/** Inputs never grow past this, so one input stays cheap. */
export const MAX_INPUT = 96 * 1024;

type Mutator = (input: Buffer, rng: Rng, others: readonly Buffer[]) => Buffer;

// ---- byte level ---------------------------------------------------------------------------------

const flipBit: Mutator = (b, rng) => {
  if (b.length === 0) return rng.bytes(1);
  const out = Buffer.from(b);
  out[rng.int(out.length)]! ^= 1 << rng.int(8);
  return out;
};

const setInteresting8: Mutator = (b, rng) => {
  if (b.length === 0) return Buffer.from([rng.pick(INTERESTING_8)]);
  const out = Buffer.from(b);
  out[rng.int(out.length)] = rng.pick(INTERESTING_8);
  return out;
};

const setRandomByte: Mutator = (b, rng) => {
  if (b.length === 0) return rng.bytes(1);
  const out = Buffer.from(b);
  out[rng.int(out.length)] = rng.u32() & 0xff;
  return out;
};

const setInteresting16: Mutator = (b, rng) => {
  if (b.length < 2) return b;
  const out = Buffer.from(b);
  const at = rng.int(out.length - 1);
  const v = rng.pick(INTERESTING_16);
  if (rng.chance(0.5)) out.writeUInt16BE(v, at);
  else out.writeUInt16LE(v, at);
  return out;
};

const setInteresting32: Mutator = (b, rng) => {
  if (b.length < 4) return b;
  const out = Buffer.from(b);
  const at = rng.int(out.length - 3);
  const v = rng.pick(INTERESTING_32) >>> 0;
  if (rng.chance(0.5)) out.writeUInt32BE(v, at);
  else out.writeUInt32LE(v, at);
  return out;
};

const arith: Mutator = (b, rng) => {
  if (b.length < 2) return b;
  const out = Buffer.from(b);
  const at = rng.int(out.length - 1);
  const delta = (1 + rng.int(16)) * (rng.chance(0.5) ? 1 : -1);
  const width = rng.int(3);
  if (width === 0) out[at] = (out[at]! + delta) & 0xff;
  else if (width === 1) out.writeUInt16BE((out.readUInt16BE(at) + delta) & 0xffff, at);
  else out.writeUInt16LE((out.readUInt16LE(at) + delta) & 0xffff, at);
  return out;
};

const insertBytes: Mutator = (b, rng) => {
  const at = rng.int(b.length + 1);
  const n = rng.chance(0.8) ? 1 + rng.int(8) : 1 + rng.int(512);
  const ins = rng.chance(0.5) ? rng.bytes(n) : Buffer.alloc(n, rng.pick(INTERESTING_8));
  return Buffer.concat([b.subarray(0, at), ins, b.subarray(at)]);
};

const deleteBytes: Mutator = (b, rng) => {
  if (b.length < 2) return b;
  const at = rng.int(b.length);
  const n = 1 + rng.int(Math.min(b.length - at, rng.chance(0.8) ? 16 : 4096));
  return Buffer.concat([b.subarray(0, at), b.subarray(at + n)]);
};

const duplicateRange: Mutator = (b, rng) => {
  if (b.length === 0) return b;
  const from = rng.int(b.length);
  const n = 1 + rng.int(Math.min(b.length - from, 2048));
  const at = rng.int(b.length + 1);
  const times = rng.chance(0.9) ? 1 : 1 + rng.int(64);
  const piece = b.subarray(from, from + n);
  return Buffer.concat([b.subarray(0, at), ...Array<Buffer>(times).fill(piece), b.subarray(at)]);
};

const copyRange: Mutator = (b, rng) => {
  if (b.length < 2) return b;
  const out = Buffer.from(b);
  const from = rng.int(b.length);
  const to = rng.int(b.length);
  const n = 1 + rng.int(Math.min(b.length - from, b.length - to, 64));
  b.copy(out, to, from, from + n);
  return out;
};

const truncate: Mutator = (b, rng) => (b.length === 0 ? b : b.subarray(0, rng.int(b.length)));

const splice: Mutator = (b, rng, others) => {
  if (others.length === 0) return b;
  const o = rng.pick(others);
  const a = rng.int(b.length + 1);
  const c = rng.int(o.length + 1);
  return rng.chance(0.5) ? Buffer.concat([b.subarray(0, a), o.subarray(c)]) : Buffer.concat([b, o.subarray(c)]);
};

function dictionaryInsert(protocol: Protocol): Mutator {
  const words = DICTIONARY[protocol].map((w) => Buffer.from(w, 'latin1'));
  return (b, rng) => {
    const w = rng.pick(words);
    const at = rng.int(b.length + 1);
    if (rng.chance(0.5) && b.length >= w.length) {
      const out = Buffer.from(b);
      w.copy(out, Math.min(at, b.length - w.length));
      return out;
    }
    return Buffer.concat([b.subarray(0, at), w, b.subarray(at)]);
  };
}

// ---- FastCGI ---------------------------------------------------------------------------------

const FCGI_TYPES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x7f, 0xff];
const PARAM_NAMES = ['CONTENT_LENGTH', 'REQUEST_METHOD', 'SCRIPT_NAME', 'QUERY_STRING', 'HTTP_HOST', 'FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS', ''];

function someId(rng: Rng, records: readonly RawRecord[]): number {
  if (records.length > 0 && rng.chance(0.6)) return rng.pick(records).id;
  return rng.pick([0, 1, 1, 2, 3, 4, 0x100, 0xffff, rng.int(0x10000)]);
}

function randomPairs(rng: Rng): Array<[Buffer, Buffer]> {
  const pairs: Array<[Buffer, Buffer]> = [];
  const n = rng.int(6);
  for (let i = 0; i < n; i++) {
    const name = rng.chance(0.7) ? Buffer.from(rng.pick(PARAM_NAMES), 'latin1') : rng.bytes(rng.int(20));
    const value = rng.chance(0.1) ? Buffer.alloc(120 + rng.int(400), 0x61) : rng.chance(0.5) ? Buffer.from(String(rng.int(100000)), 'latin1') : rng.bytes(rng.int(12));
    pairs.push([name, value]);
  }
  return pairs;
}

function synthRecord(rng: Rng, records: readonly RawRecord[]): Buffer {
  const id = someId(rng, records);
  switch (rng.int(9)) {
    case 0:
      return fcgiRecord(1, id, Buffer.from([0, rng.pick([0, 1, 2, 3, 4, 0xff]), rng.pick([0, 1, 0xff]), 0, 0, 0, 0, 0]), { padding: 0 });
    case 1:
      return fcgiRecord(2, id);
    case 2:
      return fcgiRecord(4, id, encodeNv(randomPairs(rng), rng.chance(0.2)));
    case 3:
      return fcgiRecord(rng.pick([4, 5, 8]), id);
    case 4:
      return fcgiRecord(rng.pick([5, 8]), id, rng.bytes(rng.chance(0.8) ? rng.int(100) : rng.int(70000) & 0xffff));
    case 5: {
      const names = Array.from({ length: rng.int(5) }, () => [Buffer.from(rng.pick(PARAM_NAMES), 'latin1'), EMPTY] as [Buffer, Buffer]);
      return fcgiRecord(9, rng.chance(0.8) ? 0 : id, encodeNv(names));
    }
    case 6:
      return fcgiRecord(rng.pick(FCGI_TYPES), id, rng.bytes(rng.int(16)), { padding: rng.int(9) });
    case 7:
      return fcgiRecord(5, id, rng.bytes(rng.int(40)), { padding: rng.pick([0, 1, 7, 255]) });
    default:
      // A header that lies about its content length.
      return fcgiRecord(rng.pick([4, 5, 8, 9]), id, rng.bytes(rng.int(16)), { contentLength: rng.pick([0, 1, 8, 0xff, 0xffff, rng.int(0x10000)]), padding: 0 });
  }
}

function mutateNvContent(content: Buffer, rng: Rng): Buffer {
  const pairs = parseNv(content);
  if (pairs === undefined || pairs.length === 0) {
    // Not a clean block: lie in a length prefix instead.
    const out = Buffer.from(content.length > 0 ? content : Buffer.from([0]));
    const at = rng.int(out.length);
    if (rng.chance(0.5) || out.length - at < 4) out[at] = rng.pick([0, 1, 0x7f, 0x80, 0xff]);
    else out.writeUInt32BE(rng.pick(INTERESTING_32) >>> 0, at);
    return out;
  }
  const i = rng.int(pairs.length);
  switch (rng.int(8)) {
    case 0:
      return encodeNv(pairs, true);
    case 1: {
      // One pair's length lies (the next pair's bytes get swallowed, or the block runs short).
      const [n, v] = pairs[i]!;
      const parts = pairs.map(([a, b], k) => (k === i ? Buffer.concat([nvLength(n.length), nvLength(rng.pick([0, 1, v.length + 1, Math.max(0, v.length - 1), 0x7fffffff, 200, 128]), rng.chance(0.5)), n, v]) : encodeNv([[a, b]])));
      return Buffer.concat(parts);
    }
    case 2: {
      const [n, v] = pairs[i]!;
      const nv = Buffer.from(v);
      if (nv.length > 0) nv[rng.int(nv.length)] = 0;
      pairs[i] = rng.chance(0.5) ? [n, nv] : [Buffer.concat([n, Buffer.from([0])]), v];
      return encodeNv(pairs);
    }
    case 3:
      pairs.splice(i, 0, pairs[i]!);
      return encodeNv(pairs);
    case 4:
      pairs.splice(i, 1);
      return encodeNv(pairs);
    case 5:
      pairs.push(...randomPairs(rng));
      return encodeNv(pairs);
    case 6:
      pairs[i] = [pairs[i]![0], Buffer.alloc(rng.pick([127, 128, 129, 300, 5000]), 0x62)];
      return encodeNv(pairs);
    default:
      pairs[i] = [Buffer.from(rng.pick(PARAM_NAMES), 'latin1'), Buffer.from(String(rng.pick([0, 1, 65535, 65536, 2147483647])), 'latin1')];
      return encodeNv(pairs);
  }
}

/** Rebuilds a record with new content and a truthful length (content over 65535 is cut). */
function withContent(r: RawRecord, content: Buffer): RawRecord {
  const c = content.subarray(0, 0xffff);
  return { ...r, content: c, contentLength: c.length, paddingLength: -c.length & 7, padding: Buffer.alloc(-c.length & 7) };
}

const fcgiStructure: Mutator = (b, rng) => {
  const { records, rest } = splitFcgiRecords(b);
  if (records.length === 0) return Buffer.concat([synthRecord(rng, records), b]);
  const i = rng.int(records.length);
  const r = records[i]!;
  switch (rng.int(14)) {
    case 0:
      records[i] = { ...r, type: rng.pick(FCGI_TYPES) };
      break;
    case 1:
      records[i] = { ...r, id: someId(rng, records) };
      break;
    case 2: {
      // The header lies about its length: the framing of everything after desynchronises.
      const cl = rng.pick([0, 1, r.contentLength + 1, Math.max(0, r.contentLength - 1), r.contentLength + 8, 0xffff]);
      records[i] = { ...r, contentLength: cl & 0xffff };
      break;
    }
    case 3: {
      const pad = rng.pick([0, 1, 7, 8, 255]);
      records[i] = { ...r, paddingLength: pad, padding: rng.chance(0.5) ? Buffer.alloc(pad) : rng.bytes(pad) };
      break;
    }
    case 4:
      records[i] = { ...r, version: rng.pick([0, 2, 0xff]) };
      break;
    case 5:
      records.splice(i, 0, { ...r });
      break;
    case 6:
      records.splice(i, 1);
      break;
    case 7: {
      const j = rng.int(records.length);
      records[i] = records[j]!;
      records[j] = r;
      break;
    }
    case 8: {
      const extra = splitFcgiRecords(synthRecord(rng, records)).records;
      records.splice(rng.int(records.length + 1), 0, ...extra);
      break;
    }
    case 9: {
      // Re-split one record's content into two records of the same stream (legal framing).
      if (r.content.length < 2) break;
      const at = 1 + rng.int(r.content.length - 1);
      records.splice(i, 1, withContent(r, r.content.subarray(0, at)), withContent(r, r.content.subarray(at)));
      break;
    }
    case 10:
      if (r.type === 4 || r.type === 9 || r.type === 10) records[i] = withContent(r, mutateNvContent(r.content, rng));
      else records[i] = withContent(r, Buffer.concat([r.content, rng.bytes(rng.int(32))]));
      break;
    case 11: {
      // Move every record of one request to another id: two requests now interleave.
      const from = r.id;
      const to = someId(rng, records);
      for (let k = 0; k < records.length; k++) if (records[k]!.id === from && rng.chance(0.8)) records[k] = { ...records[k]!, id: to };
      break;
    }
    case 12: {
      // Duplicate the whole request stream under a new id and interleave it.
      const id = rng.pick([2, 3, 4, 0x101]);
      const copy = records.filter((x) => x.id === r.id).map((x) => ({ ...x, id }));
      for (const x of copy) records.splice(rng.int(records.length + 1), 0, x);
      break;
    }
    default:
      records.push(...splitFcgiRecords(synthRecord(rng, records)).records);
  }
  return joinFcgiRecords(records, rng.chance(0.9) ? rest : EMPTY);
};

// ---- SCGI ------------------------------------------------------------------------------------

const LENGTH_VALUES = ['0', '1', '', '-1', ' 5', '5 ', '+5', '05', '1e3', '0x10', '65536', '4294967296', '99999999999999999999', '9007199254740993', '64', '65', '63'];

function lengthValue(rng: Rng, actual: number): Buffer {
  if (rng.chance(0.5)) return Buffer.from(String(Math.max(0, actual + rng.pick([0, 0, 0, 1, -1, 2, 100]))), 'latin1');
  return Buffer.from(rng.pick(LENGTH_VALUES), 'latin1');
}

const CL = Buffer.from('CONTENT_LENGTH', 'latin1');

function mutatePairs(pairs: Array<[Buffer, Buffer]>, rng: Rng, bodyLength: number): void {
  const i = rng.int(Math.max(1, pairs.length));
  const clAt = pairs.findIndex(([n]) => n.equals(CL));
  switch (rng.int(10)) {
    case 0:
      if (clAt >= 0) pairs[clAt] = [CL, lengthValue(rng, bodyLength)];
      else pairs.unshift([CL, lengthValue(rng, bodyLength)]);
      break;
    case 1:
      if (clAt >= 0) pairs.splice(clAt, 1);
      break;
    case 2:
      pairs.splice(rng.int(pairs.length + 1), 0, [CL, rng.chance(0.5) && clAt >= 0 ? pairs[clAt]![1] : lengthValue(rng, bodyLength)]);
      break;
    case 3:
      if (pairs.length > 0) pairs.splice(i, 0, pairs[i]!);
      break;
    case 4:
      if (pairs.length > 0) pairs.splice(i, 1);
      break;
    case 5:
      pairs.splice(rng.int(pairs.length + 1), 0, [rng.chance(0.3) ? EMPTY : Buffer.from(rng.pick(PARAM_NAMES), 'latin1'), rng.bytes(rng.int(8))]);
      break;
    case 6:
      if (pairs.length > 0) pairs[i] = [pairs[i]![0], Buffer.alloc(rng.pick([100, 200, 300, 70000]), 0x63)];
      break;
    case 7: {
      const n = rng.pick([5, 6, 7, 1001]);
      for (let k = 0; k < n; k++) pairs.push([Buffer.from(`X${String(k)}`, 'latin1'), EMPTY]);
      break;
    }
    case 8:
      if (pairs.length > 0) {
        const name = rng.bytes(1 + rng.int(6));
        for (let k = 0; k < name.length; k++) if (name[k] === 0) name[k] = 1;
        pairs[i] = [name, pairs[i]![1]];
      }
      break;
    default:
      if (pairs.length > 1) {
        const j = rng.int(pairs.length);
        const t = pairs[i]!;
        pairs[i] = pairs[j]!;
        pairs[j] = t;
      }
  }
}

function bodyFor(body: Buffer, rng: Rng): Buffer {
  switch (rng.int(5)) {
    case 0:
      return body.subarray(0, rng.int(body.length + 1));
    case 1:
      return Buffer.concat([body, rng.bytes(1 + rng.int(16))]);
    case 2:
      return EMPTY;
    default:
      return body;
  }
}

const scgiStructure: Mutator = (b, rng) => {
  const s = splitScgi(b);
  if (s === undefined) return Buffer.concat([Buffer.from(rng.pick(['10:', '0:', '70:', '']), 'latin1'), b]);
  const { pairs, tail } = splitScgiBlock(s.block);
  switch (rng.int(6)) {
    case 0: {
      // The netstring's length lies, or is no number at all.
      const d = rng.pick([String(s.block.length + 1), String(Math.max(0, s.block.length - 1)), '0', '00', `0${String(s.block.length)}`, '', '99999999', ' 1', String(s.block.length + 65536)]);
      return Buffer.concat([Buffer.from(d, 'latin1'), Buffer.from(':'), s.block, s.comma === undefined ? EMPTY : Buffer.from([s.comma]), s.body]);
    }
    case 1:
      return scgiFrame(s.block, s.body, rng.pick([0x3b, 0x00, 0x2e, 0x2c]));
    case 2:
      return scgiFrame(joinScgiBlock(pairs, rng.chance(0.5) ? rng.bytes(rng.int(4)) : EMPTY), s.body);
    case 3:
      return scgiFrame(s.block, bodyFor(s.body, rng));
    default: {
      mutatePairs(pairs, rng, s.body.length);
      return scgiFrame(joinScgiBlock(pairs, rng.chance(0.95) ? tail : rng.bytes(3)), rng.chance(0.7) ? s.body : bodyFor(s.body, rng));
    }
  }
};

// ---- uwsgi -------------------------------------------------------------------------------------

const uwsgiStructure: Mutator = (b, rng) => {
  const u = splitUwsgi(b);
  if (u === undefined) return uwsgiFrame(encodeUwsgiVars(randomPairs(rng)), EMPTY, rng.pick([0, 100]));
  const pairs = parseUwsgiVars(u.vars);
  switch (rng.int(7)) {
    case 0:
      return uwsgiFrame(u.vars, u.body, rng.pick([0, 0, 100, 1, 5, 9, 0x16, 0x47, 0xff]), u.modifier2, u.datasize);
    case 1:
      return uwsgiFrame(u.vars, u.body, u.modifier1, rng.pick([0, 1, 0xff]), u.datasize);
    case 2:
      // datasize lies.
      return uwsgiFrame(u.vars, u.body, u.modifier1, u.modifier2, rng.pick([0, 1, u.vars.length + 1, Math.max(0, u.vars.length - 1), 0xffff, 201, 0x0101]));
    case 3:
      return uwsgiFrame(u.vars, bodyFor(u.body, rng), u.modifier1, u.modifier2);
    case 4: {
      // A var's own length lies (key or value, LE).
      if (u.vars.length < 2) return b;
      const out = Buffer.from(u.vars);
      out.writeUInt16LE(rng.pick([0, 1, 0xffff, 0x100, rng.int(0x10000)]), rng.int(out.length - 1));
      return uwsgiFrame(out, u.body, u.modifier1, u.modifier2);
    }
    default: {
      if (pairs === undefined) return uwsgiFrame(u.vars, u.body, u.modifier1, u.modifier2);
      mutatePairs(pairs, rng, u.body.length);
      const vars = encodeUwsgiVars(pairs.map(([k, v]) => [k.subarray(0, 0xffff), v.subarray(0, 0xffff)] as [Buffer, Buffer]));
      return uwsgiFrame(vars, rng.chance(0.7) ? u.body : bodyFor(u.body, rng), u.modifier1, u.modifier2, vars.length & 0xffff);
    }
  }
};

// ---- sizes at the limits ----------------------------------------------------------------------

/**
 * Every configured limit, one less and one more: an off-by-one in a limit check shows only at
 * exactly these sizes, which random growth almost never hits.
 */
const AT_LIMITS = {
  bytes: [...new Set(CONFIGS.flatMap((c) => [c.maxParamsBytes - 1, c.maxParamsBytes, c.maxParamsBytes + 1]))],
  count: [...new Set(CONFIGS.flatMap((c) => [c.maxParamCount - 1, c.maxParamCount, c.maxParamCount + 1]))],
  body: [...new Set(CONFIGS.filter((c) => c.maxBodyBytes > 0).flatMap((c) => [c.maxBodyBytes - 1, c.maxBodyBytes, c.maxBodyBytes + 1]))],
};

const PAD = Buffer.from('X_PAD', 'latin1');

/**
 * Pairs resized to `target` wire bytes (by a padding pair whose value length is solved for) or
 * to `target` pairs; undefined when the target cannot be met.
 */
function fitPairs(pairs: Array<[Buffer, Buffer]>, kind: 'bytes' | 'count', target: number, sizeOf: (pairs: ReadonlyArray<readonly [Buffer, Buffer]>) => number): Array<[Buffer, Buffer]> | undefined {
  const out = pairs.filter(([n]) => !n.equals(PAD));
  if (kind === 'count') {
    if (out.length > target) return out.slice(0, target);
    for (let k = out.length; k < target; k++) out.push([Buffer.from(`X${String(k)}`, 'latin1'), EMPTY]);
    return out;
  }
  const base = sizeOf(out);
  for (const guess of [target - base - sizeOf([[PAD, EMPTY]]), target - base - sizeOf([[PAD, EMPTY]]) - 3]) {
    if (guess < 0) continue;
    const padded: Array<[Buffer, Buffer]> = [...out, [PAD, Buffer.alloc(guess, 0x70)]];
    if (sizeOf(padded) === target) return padded;
  }
  return undefined;
}

function limitTarget(rng: Rng): { kind: 'bytes' | 'count' | 'body'; target: number } {
  const kind = rng.pick(['bytes', 'count', 'body'] as const);
  return { kind, target: rng.pick(AT_LIMITS[kind]) };
}

const scgiSize = (pairs: ReadonlyArray<readonly [Buffer, Buffer]>): number => pairs.reduce((n, [a, b]) => n + a.length + b.length + 2, 0);
const uwsgiSize = (pairs: ReadonlyArray<readonly [Buffer, Buffer]>): number => pairs.reduce((n, [a, b]) => n + a.length + b.length + 4, 0);
const nvSize = (pairs: ReadonlyArray<readonly [Buffer, Buffer]>): number => encodeNv(pairs).length;

function withBody(pairs: Array<[Buffer, Buffer]>, n: number): Array<[Buffer, Buffer]> {
  return [...pairs.filter(([k]) => !k.equals(CL)), [CL, Buffer.from(String(n), 'latin1')]];
}

const scgiAtLimit: Mutator = (b, rng) => {
  const s = splitScgi(b);
  if (s === undefined) return b;
  const { pairs } = splitScgiBlock(s.block);
  const { kind, target } = limitTarget(rng);
  if (kind === 'body') return scgiFrame(joinScgiBlock(withBody(pairs, target)), Buffer.alloc(target, 0x62));
  const fitted = fitPairs(pairs, kind, target, scgiSize);
  return fitted === undefined ? b : scgiFrame(joinScgiBlock(fitted), s.body);
};

const uwsgiAtLimit: Mutator = (b, rng) => {
  const u = splitUwsgi(b);
  const pairs = u === undefined ? undefined : parseUwsgiVars(u.vars);
  if (u === undefined || pairs === undefined) return b;
  const { kind, target } = limitTarget(rng);
  if (kind === 'body') return uwsgiFrame(encodeUwsgiVars(withBody(pairs, target)), Buffer.alloc(target, 0x62), u.modifier1, u.modifier2);
  const fitted = fitPairs(pairs, kind, target, uwsgiSize);
  if (fitted === undefined || uwsgiSize(fitted) > 0xffff) return b;
  return uwsgiFrame(encodeUwsgiVars(fitted), u.body, u.modifier1, u.modifier2);
};

/** The first request's PARAMS stream (or body) brought to a limit, re-framed in 1–3 records. */
const fcgiAtLimit: Mutator = (b, rng) => {
  const { records, rest } = splitFcgiRecords(b);
  const begin = records.find((r) => r.type === 1);
  if (begin === undefined) return b;
  const id = begin.id;
  const { kind, target } = limitTarget(rng);
  const streamType = kind === 'body' ? 5 : 4;
  const mine = records.filter((r) => r.id === id && r.type === streamType && r.contentLength > 0);
  const at = records.indexOf(mine[0] ?? records.find((r) => r.id === id && r.type === streamType) ?? begin);
  let content: Buffer;
  if (kind === 'body') content = Buffer.alloc(target, 0x62);
  else {
    const pairs = parseNv(Buffer.concat(mine.map((r) => r.content)));
    const fitted = pairs === undefined ? undefined : fitPairs(pairs, kind, target, nvSize);
    if (fitted === undefined) return b;
    content = encodeNv(fitted);
  }
  const pieces: RawRecord[] = [];
  const cuts = rng.int(3);
  let start = 0;
  for (let k = 0; k <= cuts && start < content.length; k++) {
    const end = k === cuts ? content.length : Math.min(content.length, start + Math.min(0xffff, 1 + rng.int(content.length)));
    pieces.push(...splitFcgiRecords(fcgiRecord(streamType, id, content.subarray(start, end))).records);
    start = end;
  }
  while (start < content.length) {
    pieces.push(...splitFcgiRecords(fcgiRecord(streamType, id, content.subarray(start, start + 0xffff))).records);
    start += 0xffff;
  }
  const kept = records.filter((r) => !mine.includes(r));
  const pos = Math.min(kept.length, at <= records.indexOf(begin) ? kept.indexOf(begin) + 1 : at - records.slice(0, at).filter((r) => mine.includes(r)).length);
  kept.splice(pos, 0, ...pieces);
  return joinFcgiRecords(kept, rest);
};

// ---- scheduling --------------------------------------------------------------------------------

interface Weighted {
  readonly name: string;
  readonly weight: number;
  readonly fn: Mutator;
}

function mutatorsFor(protocol: Protocol): Weighted[] {
  const structural = protocol === 'fastcgi' ? fcgiStructure : protocol === 'scgi' ? scgiStructure : uwsgiStructure;
  const atLimit = protocol === 'fastcgi' ? fcgiAtLimit : protocol === 'scgi' ? scgiAtLimit : uwsgiAtLimit;
  return [
    { name: 'structure', weight: 12, fn: structural },
    { name: 'limits', weight: 2, fn: atLimit },
    { name: 'flip', weight: 3, fn: flipBit },
    { name: 'set8', weight: 3, fn: setInteresting8 },
    { name: 'random8', weight: 2, fn: setRandomByte },
    { name: 'set16', weight: 2, fn: setInteresting16 },
    { name: 'set32', weight: 1, fn: setInteresting32 },
    { name: 'arith', weight: 2, fn: arith },
    { name: 'insert', weight: 2, fn: insertBytes },
    { name: 'delete', weight: 2, fn: deleteBytes },
    { name: 'duplicate', weight: 2, fn: duplicateRange },
    { name: 'copy', weight: 1, fn: copyRange },
    { name: 'truncate', weight: 1, fn: truncate },
    { name: 'splice', weight: 2, fn: splice },
    { name: 'dictionary', weight: 2, fn: dictionaryInsert(protocol) },
  ];
}

/** Stacks 1–8 mutations on a parent (AFL havoc). Deterministic for a given Rng state. */
export class Havoc {
  readonly #table: Weighted[];
  readonly #total: number;

  constructor(protocol: Protocol) {
    this.#table = mutatorsFor(protocol);
    this.#total = this.#table.reduce((s, m) => s + m.weight, 0);
  }

  mutate(parent: Buffer, rng: Rng, others: readonly Buffer[]): Buffer {
    let out = parent;
    const n = 1 << rng.int(4);
    for (let i = 0; i < n; i++) {
      let r = rng.int(this.#total);
      let m = this.#table[0]!;
      for (const w of this.#table) {
        if (r < w.weight) {
          m = w;
          break;
        }
        r -= w.weight;
      }
      out = m.fn(out, rng, others);
      if (out.length > MAX_INPUT) out = out.subarray(0, MAX_INPUT);
    }
    // Never hand back the parent itself: the caller owns (and may keep) what it gets.
    return out === parent ? Buffer.from(parent) : out;
  }
}
