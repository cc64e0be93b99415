// Listening sockets, from the master's side: the master binds every listener once and keeps it for
// its whole life, and each worker inherits the fds at spawn (stdio slots 4, 5, …) and accepts from
// the shared socket itself. Workers can then come and go (even all of them, for a moment)
// without the address closing: connections wait in the kernel backlog for the next worker.
//
// Why not node:cluster. Measured on this 2-core box, 2 workers, node:http hello, `wrk -t1 -c32 -d5s`
// (test/fixtures/supervisor/measure-scheduling.ts, two runs each):
//   cluster round-robin      keep-alive 64–75k req/s   Connection: close  6.4–10.0k req/s
//   cluster SCHED_NONE       keep-alive 68–73k req/s   Connection: close 19.6–20.5k req/s
//   inherited fds (this)     keep-alive 70–85k req/s   Connection: close 15.3–18.5k req/s
// Round-robin makes the master accept every connection and pass it over IPC: it halves the rate
// for one-connection-per-request protocols (SCGI, uwsgi, FastCGI without keep-conn). SCHED_NONE
// shares the socket like this module does, but cluster closes a shared handle when its last worker
// leaves, which loses the backlog, a `:0` port and, for fd:N / LISTEN_FDS, the socket for good.
// The price of a shared accept queue is balance: Linux wakes whichever worker polls first, so load
// is uneven between workers at low concurrency (the same as SCHED_NONE and nginx without reuseport).
//
// Node has no public call that binds a socket without also polling it for accepts (the master must
// never accept), so this uses `net._createServerHandle`, the primitive cluster's SCHED_NONE path
// is built on (present and unchanged from Node 0.x through 24; checked on 20.20 and 24.21).

import { fstatSync, chmodSync, chownSync } from 'node:fs';
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorName } from 'node:util';
import { formatAddress, type ListenAddress } from '../server/address.ts';
import { clearStaleSocket, ListenError, LISTEN_ERRORS } from '../server/listen.ts';
import type { SocketOwner } from '../server/privileges.ts';

interface RawHandle {
  readonly fd: number;
  getsockname?(out: { address?: string; port?: number; family?: string }): number;
  listen?(backlog: number): number;
  onconnection?: (err: number, client: { close(): void } | undefined) => void;
  close(): void;
}
type CreateServerHandle = (address: string | null, port: number, addressType: number, fd: number | undefined, flags: number) => RawHandle | number;

function createHandleFn(): CreateServerHandle {
  const fn = (net as unknown as { _createServerHandle?: unknown })._createServerHandle;
  if (typeof fn !== 'function') {
    throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, '-', `this Node.js (${process.version}) lacks net._createServerHandle; run postern with workers = 1`);
  }
  return fn as CreateServerHandle;
}

/** One socket the master holds for its workers. */
export interface MasterListener {
  /** The address as configured, canonical (`127.0.0.1:0`, `unix:/x.sock`, `fd:3`): the reuse key. */
  readonly address: string;
  /** As bound: the real port for `:0`. */
  readonly bound: string;
  /** The master's fd, passed to each worker's stdio. */
  readonly fd: number;
  /** Closes the master's copy (a unix socket file is unlinked). Inherited fds are never closed. */
  close(): void;
}

/** Binds one listener (not listening yet: the first worker's listen() makes it so). */
export async function bindListener(address: ListenAddress, socketMode: number | undefined, socketOwner?: SocketOwner): Promise<MasterListener> {
  const text = formatAddress(address);
  const create = createHandleFn();
  const fail = (errno: number): never => {
    const code = getSystemErrorName(errno);
    throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, text, `cannot bind ${text}: ${code}`, code);
  };
  switch (address.kind) {
    case 'fd': {
      let isSocket: boolean;
      try {
        isSocket = fstatSync(address.fd).isSocket();
      } catch (err) {
        throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, text, `cannot use ${text}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, (err as NodeJS.ErrnoException).code);
      }
      if (!isSocket) throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, text, `cannot use ${text}: not a socket`, 'ENOTSOCK');
      return { address: text, bound: text, fd: address.fd, close() {} };
    }
    case 'unix': {
      await clearStaleSocket(address.path, text);
      const h = create(address.path, -1, -1, undefined, 0);
      if (typeof h === 'number') return fail(h);
      if (socketMode !== undefined || socketOwner !== undefined) {
        try {
          if (socketMode !== undefined) chmodSync(address.path, socketMode);
          if (socketOwner !== undefined) chownSync(address.path, socketOwner.uid, socketOwner.gid);
        } catch (err) {
          h.close();
          throw err;
        }
      }
      return handleListener(text, text, h);
    }
    case 'tcp': {
      let host: string | null = null;
      let family = 4;
      if (address.host !== undefined) {
        const ip = net.isIP(address.host);
        if (ip !== 0) {
          host = address.host;
          family = ip;
        } else {
          let r: { address: string; family: number };
          try {
            r = await lookup(address.host);
          } catch (err) {
            const code = (err as NodeJS.ErrnoException).code;
            throw new ListenError(LISTEN_ERRORS.LISTEN_FAILED, text, `cannot resolve ${address.host}: ${code ?? String(err)}`, code);
          }
          host = r.address;
          family = r.family;
        }
      }
      // No host: `::` dual-stack, falling back to 0.0.0.0 (what net.Server.listen does).
      const h = create(host, address.port, family, undefined, 0);
      if (typeof h === 'number') return fail(h);
      const out: { address?: string; port?: number } = {};
      h.getsockname?.(out);
      // libuv binds TCP with SO_REUSEADDR, and Linux lets such a bind share a port with anything
      // not yet in LISTEN: a port another server listens on binds fine and fails only at the
      // worker's listen(). Probe it here, with a second socket that listens for a moment, so the
      // error names the address and comes from the master.
      const probe = create(host, out.port ?? address.port, family, undefined, 0);
      const probeErr = typeof probe === 'number' ? probe : listenProbe(probe);
      if (probeErr !== 0) {
        h.close();
        return fail(probeErr);
      }
      const bound = out.port !== undefined
        ? formatAddress({ kind: 'tcp', host: address.host === undefined ? undefined : out.address, port: out.port })
        : text;
      return handleListener(text, bound, h);
    }
  }
}

function listenProbe(probe: RawHandle): number {
  // A connection landing in this instant is refused, not left half-open.
  probe.onconnection = (_err, client) => client?.close();
  const err = probe.listen?.(1) ?? 0;
  probe.close();
  return err;
}

function handleListener(address: string, bound: string, h: RawHandle): MasterListener {
  let open = true;
  return {
    address,
    bound,
    fd: h.fd,
    close() {
      if (!open) return;
      open = false;
      h.close();
    },
  };
}
