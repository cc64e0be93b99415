// Who may connect, from the listener's side: `allowedClients` (IPv4/IPv6 CIDR blocks, for every
// protocol) and FCGI_WEB_SERVER_ADDRS (FastCGI spec §3.2, for FastCGI listeners), checked once per
// accepted connection. Addresses are compared as 16 bytes, IPv4 as IPv4-mapped IPv6 (::ffff:a.b.c.d),
// so `10.0.0.0/8` also matches a dual-stack listener's `::ffff:10.1.2.3` peer.

import { isIPv4, isIPv6 } from 'node:net';
import type { Protocol } from '../app/types.ts';

export const ACCESS_ERRORS = {
  /** An allowedClients entry (or FCGI_WEB_SERVER_ADDRS item) is not an IP address or CIDR block. */
  BAD_CIDR: 'POSTERN_ERR_BAD_CIDR',
} as const;

export class AccessError extends Error {
  readonly code = ACCESS_ERRORS.BAD_CIDR;
  /** Where the bad entry came from: `allowedClients` or `FCGI_WEB_SERVER_ADDRS`. */
  readonly option: string;
  constructor(option: string, message: string) {
    super(message);
    this.name = 'AccessError';
    this.option = option;
  }
}

/** One CIDR block, as 16 network bytes and a prefix length over them (IPv4 blocks get 96 + n). */
export interface Cidr {
  readonly bytes: Uint8Array;
  /** 0..128, counted over the IPv6 form. */
  readonly bits: number;
  /** Canonical text: the network address (host bits cleared) and its prefix, as written for its family. */
  readonly text: string;
}

const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;

/** An IP address as 16 bytes (IPv4 as ::ffff:a.b.c.d); a zone (`%eth0`) is ignored. Undefined if not an IP. */
export function parseIp(text: string): Uint8Array | undefined {
  const pct = text.indexOf('%');
  const s = pct < 0 ? text : text.slice(0, pct);
  if (isIPv4(s)) {
    const out = new Uint8Array(16);
    out.set(V4_MAPPED_PREFIX);
    writeV4(s, out, 12);
    return out;
  }
  // isIPv6 accepts a zone; the part before it must be an address on its own.
  if (!isIPv6(s)) return undefined;
  return parseV6(s);
}

function writeV4(s: string, out: Uint8Array, at: number): void {
  const parts = s.split('.');
  for (let i = 0; i < 4; i++) out[at + i] = Number(parts[i]);
}

// Called only on text isIPv6 accepted, so the grammar is known to hold.
function parseV6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  const gap = s.indexOf('::');
  const head = gap < 0 ? s : s.slice(0, gap);
  const tail = gap < 0 ? '' : s.slice(gap + 2);
  const headBytes = groupsToBytes(head);
  const tailBytes = groupsToBytes(tail);
  out.set(headBytes, 0);
  out.set(tailBytes, 16 - tailBytes.length);
  return out;
}

function groupsToBytes(part: string): number[] {
  if (part === '') return [];
  const bytes: number[] = [];
  for (const g of part.split(':')) {
    if (g.includes('.')) {
      for (const o of g.split('.')) bytes.push(Number(o));
    } else {
      const n = parseInt(g, 16);
      bytes.push(n >> 8, n & 0xff);
    }
  }
  return bytes;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 12; i++) if (b[i] !== V4_MAPPED_PREFIX[i]) return false;
  return true;
}

function formatBytes(b: Uint8Array, v4: boolean): string {
  if (v4) return `${b[12]!}.${b[13]!}.${b[14]!}.${b[15]!}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  // The longest run of two or more zero groups becomes `::` (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/**
 * Parses `10.0.0.0/8`, `192.168.1.7` (a /32), `2001:db8::/32`, `::1`, `::ffff:10.0.0.0/104`. Host
 * bits below the prefix are cleared (nginx's `allow` does the same). Throws an AccessError naming
 * `option` for anything else.
 */
export function parseCidr(text: string, option = 'allowedClients'): Cidr {
  const s = text.trim();
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const ip = addr.includes('%') ? undefined : parseIp(addr);
  if (ip === undefined) throw new AccessError(option, `${JSON.stringify(text)} is not an IPv4 or IPv6 address or CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32)`);
  const v4 = isIPv4(addr);
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) {
      throw new AccessError(option, `${JSON.stringify(text)}: the prefix length must be 0..${max}`);
    }
    prefix = Number(p);
  }
  const bits = v4 ? 96 + prefix : prefix;
  const bytes = mask(ip, bits);
  const network = formatBytes(bytes, v4);
  return Object.freeze({ bytes, bits, text: prefix === max ? network : `${network}/${prefix}` });
}

function mask(ip: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(16);
  const whole = bits >> 3;
  out.set(ip.subarray(0, whole));
  const rest = bits & 7;
  if (rest !== 0) out[whole] = ip[whole]! & (0xff << (8 - rest));
  return out;
}

/** Whether `ip` (16 bytes) lies in `cidr`. */
export function inCidr(ip: Uint8Array, cidr: Cidr): boolean {
  const whole = cidr.bits >> 3;
  const b = cidr.bytes;
  for (let i = 0; i < whole; i++) if (ip[i] !== b[i]) return false;
  const rest = cidr.bits & 7;
  return rest === 0 || (ip[whole]! & (0xff << (8 - rest)) & 0xff) === b[whole];
}

/** A list of CIDR blocks; `allows` remembers its last answer (a front server connects from one address). */
export class CidrList {
  readonly cidrs: readonly Cidr[];
  #lastAddress: string | undefined;
  #lastAnswer = false;

  constructor(entries: readonly string[], option = 'allowedClients') {
    this.cidrs = Object.freeze(entries.map((e) => parseCidr(e, option)));
  }

  /** True when `address` (as `socket.remoteAddress` gives it) is in some block; false for a non-IP. */
  allows(address: string): boolean {
    if (address === this.#lastAddress) return this.#lastAnswer;
    const ip = parseIp(address);
    let ok = false;
    if (ip !== undefined) {
      for (const c of this.cidrs) {
        if (inCidr(ip, c)) {
          ok = true;
          break;
        }
      }
    }
    this.#lastAddress = address;
    this.#lastAnswer = ok;
    return ok;
  }
}

/** The FastCGI spec's variable (§3.2): the web server addresses that may connect. */
export const FCGI_WEB_SERVER_ADDRS = 'FCGI_WEB_SERVER_ADDRS';

/** Which rule turned a connection away. */
export type AccessRule = 'allowedClients' | typeof FCGI_WEB_SERVER_ADDRS;

/**
 * The access policy of one server. Unix-socket peers (no remote address) are always allowed: the
 * socket file's mode, owner and group (`socketMode`, `socketOwner`, `socketGroup`) decide who can
 * reach them, and they have no IP to check. For FCGI_WEB_SERVER_ADDRS that departs from §3.2's
 * letter ("including the possibility that the connection didn't use TCP/IP transport") as PHP-FPM
 * does (`listen.allowed_clients`, its equivalent, "makes sense only with a tcp listening socket"):
 * a variable inherited from a parent environment must not shut a unix-socket deployment out.
 */
export class ClientAccess {
  readonly allowedClients: CidrList | undefined;
  readonly webServerAddrs: CidrList | undefined;

  constructor(allowedClients: CidrList | undefined, webServerAddrs: CidrList | undefined) {
    this.allowedClients = allowedClients;
    this.webServerAddrs = webServerAddrs;
  }

  /** The rule that refuses a connection from `address` on a `protocol` listener, or undefined. */
  refusal(protocol: Protocol, address: string | undefined): AccessRule | undefined {
    if (address === undefined) return undefined;
    if (this.allowedClients !== undefined && !this.allowedClients.allows(address)) return 'allowedClients';
    if (protocol === 'fastcgi' && this.webServerAddrs !== undefined && !this.webServerAddrs.allows(address)) return FCGI_WEB_SERVER_ADDRS;
    return undefined;
  }
}

/** Splits FCGI_WEB_SERVER_ADDRS: the spec's commas, and whitespace around them. */
export function splitWebServerAddrs(value: string): string[] {
  return value.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

/**
 * The policy for `allowedClients` and the FCGI_WEB_SERVER_ADDRS value (unset or blank: no rule, as
 * with every variable postern reads). Undefined when neither restricts anything. Throws an
 * AccessError for an entry that does not parse: a typo must not open (or close) the door silently.
 */
export function clientAccess(allowedClients: readonly string[] | undefined, webServerAddrs: string | undefined): ClientAccess | undefined {
  const allowed = allowedClients === undefined || allowedClients.length === 0 ? undefined : new CidrList(allowedClients, 'allowedClients');
  const web = webServerAddrs === undefined || webServerAddrs.trim() === ''
    ? undefined
    : new CidrList(splitWebServerAddrs(webServerAddrs), FCGI_WEB_SERVER_ADDRS);
  return allowed === undefined && web === undefined ? undefined : new ClientAccess(allowed, web);
}

/** Whether `address` is a loopback IP (127.0.0.0/8, ::1, or their IPv4-mapped form). */
export function isLoopback(address: string): boolean {
  const ip = parseIp(address);
  if (ip === undefined) return false;
  if (isMapped(ip)) return ip[12] === 127;
  for (let i = 0; i < 15; i++) if (ip[i] !== 0) return false;
  return ip[15] === 1;
}
