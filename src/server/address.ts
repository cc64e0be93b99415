// Listen addresses as the operator writes them (`127.0.0.1:9000`, `:9000`, `[::1]:9000`,
// `unix:/run/app.sock`, `fd:0`), parsed into what a listener needs, with errors that name the input.

export type ListenAddress =
  /** `host` undefined means every interface (`:PORT`): Node binds `::` dual-stack, or 0.0.0.0 without IPv6. */
  | { readonly kind: 'tcp'; readonly host: string | undefined; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string }
  /** An inherited listening socket: fd 0 as spawn-fcgi / mod_fcgid pass it, 3+ from systemd. */
  | { readonly kind: 'fd'; readonly fd: number };

export const ADDRESS_ERROR = 'POSTERN_ERR_BAD_ADDRESS';

export class AddressError extends Error {
  readonly code = ADDRESS_ERROR;
  readonly address: string;
  constructor(address: string, why: string) {
    super(`bad listen address ${JSON.stringify(address)}: ${why} (expected HOST:PORT, :PORT, [IPv6]:PORT, unix:PATH or fd:N)`);
    this.name = 'AddressError';
    this.address = address;
  }
}

const DIGITS = /^[0-9]+$/;
// A DNS name or an IPv4 literal: letters, digits, '-', '.', '_' (no spaces, no ':').
const HOSTNAME = /^[A-Za-z0-9._-]+$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses one listen address. `:PORT` binds every interface, as uWSGI's `--socket :9000` and
 * PHP-FPM's `listen = 9000` do; write `127.0.0.1:PORT` to stay on loopback.
 */
export function parseAddress(addr: string): ListenAddress {
  if (typeof addr !== 'string' || addr.length === 0) throw new AddressError(String(addr), 'empty');
  if (addr.startsWith('unix:')) {
    const path = addr.slice(5);
    if (path.length === 0) throw new AddressError(addr, 'unix: needs a socket path');
    if (path.includes('\0')) throw new AddressError(addr, 'socket path holds a NUL byte');
    return { kind: 'unix', path };
  }
  if (addr.startsWith('fd:')) {
    const n = addr.slice(3);
    if (!DIGITS.test(n) || n.length > 9) throw new AddressError(addr, 'fd: needs a decimal file descriptor number');
    return { kind: 'fd', fd: Number(n) };
  }
  let host: string | undefined;
  let portText: string;
  if (addr.startsWith('[')) {
    const close = addr.indexOf(']');
    if (close < 0) throw new AddressError(addr, 'missing ] after the IPv6 address');
    host = addr.slice(1, close);
    if (host.length === 0 || !IPV6.test(host) || !host.includes(':')) throw new AddressError(addr, 'not an IPv6 address inside [ ]');
    if (addr[close + 1] !== ':') throw new AddressError(addr, 'missing :PORT after ]');
    portText = addr.slice(close + 2);
  } else {
    const colon = addr.lastIndexOf(':');
    if (colon < 0) throw new AddressError(addr, 'missing :PORT');
    if (addr.indexOf(':') !== colon) throw new AddressError(addr, 'an IPv6 address must be written in brackets, e.g. [::1]:9000');
    const h = addr.slice(0, colon);
    if (h.length > 0 && h !== '*' && !HOSTNAME.test(h)) throw new AddressError(addr, 'not a host name or IPv4 address');
    host = h.length === 0 || h === '*' ? undefined : h;
    portText = addr.slice(colon + 1);
  }
  if (!DIGITS.test(portText) || portText.length > 5) throw new AddressError(addr, 'the port must be a decimal number');
  const port = Number(portText);
  if (port > 65535) throw new AddressError(addr, 'the port must be 0..65535');
  return { kind: 'tcp', host, port };
}

/** The canonical text of an address, as logs and `PosternServer.listeners` show it. */
export function formatAddress(a: ListenAddress): string {
  switch (a.kind) {
    case 'unix': return `unix:${a.path}`;
    case 'fd': return `fd:${a.fd}`;
    case 'tcp': {
      if (a.host === undefined) return `:${a.port}`;
      return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
    }
  }
}
