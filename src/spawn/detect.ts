// How this process was started, from its own side: by a front server that handed it a listening
// socket on fd 0 (FCGI_LISTENSOCK_FILENO, FastCGI spec §2.2: mod_fcgid, lighttpd bin-path,
// spawn-fcgi), as a plain CGI program (RFC 3875: GATEWAY_INTERFACE set, the request in the
// environment and on stdin), or as a daemon that opens its own listeners.
//
// Telling a listening socket from a connected one. libfcgi asks getpeername(0) (ENOTCONN means
// listening) and Go's fcgi.Serve(nil) simply accepts on fd 0; Node has no public getsockopt or
// getpeername on a bare fd, and `net.Server.listen({ fd: 0 })` is no probe: on a connected socket
// (mod_cgid hands a CGI program its request on a unix socket; node's child_process `pipe` stdio is
// a socketpair) listen() fails and node closes the fd, losing the request body. So on Linux the
// kernel's own tables answer: fstat(0) gives the socket's inode, /proc/net/unix lists it with the
// __SO_ACCEPTCON flag when listening (net/unix/af_unix.c unix_seq_show), /proc/net/tcp{,6} with
// state 0A (TCP_LISTEN). Where /proc is missing (BSD, macOS), a socket on fd 0 without the CGI
// variables is taken as listening, as Go does.

import { fstatSync, readFileSync } from 'node:fs';

/** What fd 0 is. */
export interface Fd0 {
  /** fd 0 is a socket of some kind. */
  readonly socket: boolean;
  /** A listening socket; undefined when the socket's state could not be read (no /proc). */
  readonly listening: boolean | undefined;
  /** The socket family as the kernel tables name it, when found. */
  readonly family: 'unix' | 'tcp' | 'tcp6' | undefined;
}

// __SO_ACCEPTCON in include/linux/net.h: set in /proc/net/unix's Flags column for a listening socket.
const SO_ACCEPTCON = 0x10000;
// TCP_LISTEN in include/net/tcp_states.h, as /proc/net/tcp prints it.
const TCP_LISTEN = '0A';

function rows(procRoot: string, file: string): string[][] {
  try {
    return readFileSync(`${procRoot}/net/${file}`, 'latin1').split('\n').slice(1).map((l) => l.trim().split(/\s+/));
  } catch {
    return [];
  }
}

/** Inspects fd 0 without touching it (no read, no listen). */
export function inspectFd0(procRoot = '/proc', fd = 0): Fd0 {
  let inode: string;
  try {
    const st = fstatSync(fd);
    if (!st.isSocket()) return { socket: false, listening: false, family: undefined };
    inode = String(st.ino);
  } catch {
    // EBADF: fd 0 closed.
    return { socket: false, listening: false, family: undefined };
  }
  return socketState(inode, procRoot);
}

/** What the kernel's tables under `procRoot` say of the socket with this inode. */
export function socketState(inode: string, procRoot: string): Fd0 {
  let anyTable = false;
  // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path
  const unix = rows(procRoot, 'unix');
  anyTable ||= unix.length > 0;
  const u = unix.find((r) => r[6] === inode);
  if (u !== undefined) return { socket: true, listening: (Number.parseInt(u[3] ?? '0', 16) & SO_ACCEPTCON) !== 0, family: 'unix' };
  // /proc/net/tcp{,6}: sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
  for (const file of ['tcp', 'tcp6'] as const) {
    const table = rows(procRoot, file);
    anyTable ||= table.length > 0;
    const row = table.find((r) => r[9] === inode);
    if (row !== undefined) return { socket: true, listening: row[3] === TCP_LISTEN, family: file };
  }
  // A socket in no table we read: UDP, netlink… (not listening), or no /proc at all (unknown).
  return { socket: true, listening: anyTable ? false : undefined, family: undefined };
}

/** How postern serves, decided at start. */
export type StartMode =
  /** Serve FastCGI on the listening socket on fd 0, as the spawner expects. */
  | { readonly kind: 'fd0'; readonly fd0: Fd0 }
  /** Answer the one CGI request in the environment and on stdin, then exit. */
  | { readonly kind: 'cgi' }
  /** Open the configured (or default) listeners. */
  | { readonly kind: 'listeners' };

export interface StartFacts {
  /** Some listener was configured (flag, environment or file), statusListen aside. */
  readonly listenerConfigured: boolean;
  /** systemd passed sockets to this process (LISTEN_PID is us, LISTEN_FDS set). */
  readonly socketActivated: boolean;
  /** GATEWAY_INTERFACE is set (RFC 3875 §4.1.4: the server must set it for a CGI script). */
  readonly cgiVariables: boolean;
  readonly fd0: Fd0;
}

/**
 * The decision, a pure function of the facts: a configured listener (or systemd's sockets) always
 * wins and leaves fd 0 alone; else a listening fd 0 means FastCGI on it; else the CGI variables
 * mean one CGI request. A socket on fd 0 of unknown state counts as listening unless the CGI
 * variables are set.
 */
export function decideStart(f: StartFacts): StartMode {
  if (f.listenerConfigured || f.socketActivated) return { kind: 'listeners' };
  if (f.fd0.listening === true || (f.fd0.listening === undefined && f.fd0.socket && !f.cgiVariables)) return { kind: 'fd0', fd0: f.fd0 };
  if (f.cgiVariables) return { kind: 'cgi' };
  return { kind: 'listeners' };
}

/** systemd socket activation aimed at this process (sd_listen_fds(3)'s own test). */
export function socketActivated(env: Readonly<Record<string, string | undefined>>, pid = process.pid): boolean {
  return env['LISTEN_FDS'] !== undefined && env['LISTEN_PID'] === String(pid);
}
