// The listen backlog hint, from the status page's side: how many connections wait in the kernel's
// accept queue of each TCP listener, read from /proc/net/tcp{,6} (Linux; empty elsewhere).

import { readFile } from 'node:fs/promises';

export interface ListenBacklog {
  /** `127.0.0.1:9000`, `[::]:8080`. */
  readonly address: string;
  readonly port: number;
  /** Connections completed by the kernel and not yet accepted by any worker. */
  readonly queued: number;
  /**
   * The accept queue's size: the listen() backlog, capped by net.core.somaxconn. /proc/net/tcp does
   * not show it for listeners on current kernels (tx_queue is 0), so it comes from the backlog the
   * caller says it used; absent when unknown.
   */
  readonly max?: number;
}

const TCP_LISTEN = '0A';

function ipv4(hex: string): string {
  // /proc prints the address as the host-order u32 of network-order bytes: little-endian on x86/arm.
  const n = Number.parseInt(hex, 16);
  return `${String(n & 0xff)}.${String((n >>> 8) & 0xff)}.${String((n >>> 16) & 0xff)}.${String(n >>> 24)}`;
}

function ipv6(hex: string): string {
  const groups: string[] = [];
  for (let w = 0; w < 4; w++) {
    const word = hex.slice(w * 8, w * 8 + 8);
    // each 32-bit word is host order: reverse its bytes
    const bytes = word.match(/../g) ?? [];
    const be = bytes.reverse().join('');
    groups.push(be.slice(0, 4), be.slice(4, 8));
  }
  const text = groups.map((g) => Number.parseInt(g, 16).toString(16)).join(':');
  // Compress the longest run of zero groups, as RFC 5952 prints it.
  const m = [...text.matchAll(/(?:^|:)0(?::0)+(?::|$)/g)].sort((a, b) => b[0].length - a[0].length)[0];
  return m === undefined ? text : `${text.slice(0, m.index)}::${text.slice(m.index + m[0].length)}`;
}

/**
 * The LISTEN sockets in the text of /proc/net/tcp or /proc/net/tcp6, optionally only those on
 * `ports`. For a listening socket the kernel prints the accept queue length as rx_queue
 * (net/ipv4/tcp_ipv4.c get_tcp4_sock: sk_ack_backlog).
 */
export function parseProcNetTcp(text: string, ports?: readonly number[]): ListenBacklog[] {
  const out: ListenBacklog[] = [];
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const f = lines[i]!.trim().split(/\s+/);
    if (f.length < 5 || f[3] !== TCP_LISTEN) continue;
    const [addrHex, portHex] = f[1]!.split(':');
    const rxHex = f[4]!.split(':')[1];
    if (addrHex === undefined || portHex === undefined || rxHex === undefined) continue;
    const port = Number.parseInt(portHex, 16);
    if (ports !== undefined && !ports.includes(port)) continue;
    const host = addrHex.length === 8 ? ipv4(addrHex) : `[${ipv6(addrHex)}]`;
    out.push({ address: `${host}:${String(port)}`, port, queued: Number.parseInt(rxHex, 16) });
  }
  return out;
}

/** Node's listen() default backlog (lib/net.js). */
export const DEFAULT_BACKLOG = 511;

async function somaxconn(): Promise<number | undefined> {
  try {
    const n = Number.parseInt(await readFile('/proc/sys/net/core/somaxconn', 'latin1'), 10);
    return Number.isFinite(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The accept queues of this machine's TCP listeners on `ports` (all when omitted); [] off Linux.
 * `backlog` is what the listeners were opened with (default Node's 511); `max` is it capped by
 * net.core.somaxconn, as the kernel caps it.
 */
export async function readListenBacklog(ports?: readonly number[], options: { backlog?: number } = {}): Promise<ListenBacklog[]> {
  const out: ListenBacklog[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    try {
      out.push(...parseProcNetTcp(await readFile(file, 'latin1'), ports));
    } catch {
      // not Linux, or no IPv6: no hint rather than an error on the status page
    }
  }
  if (out.length === 0) return out;
  const cap = await somaxconn();
  const backlog = options.backlog ?? DEFAULT_BACKLOG;
  const max = cap === undefined ? backlog : Math.min(backlog, cap);
  return out.map((b) => ({ ...b, max }));
}
