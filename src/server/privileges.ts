// Process privileges, from the operator's side: who owns the unix sockets postern creates
// (`socketOwner`, `socketGroup`), whether postern may run as root (`allowRoot`), and dropping to
// `user` / `group` once the listeners are bound. Names resolve through /etc/passwd and /etc/group,
// then `getent` (NSS: LDAP, sssd); numeric ids are taken as they are.

import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { isLoopback } from './access.ts';
import { parseAddress } from './address.ts';

export const PRIVILEGE_ERRORS = {
  /** Running as root with a listener reachable from other hosts, and neither `user` nor `allowRoot` set. */
  RUNNING_AS_ROOT: 'POSTERN_ERR_RUNNING_AS_ROOT',
  /** `user` / `socketOwner` names no user of this system. */
  UNKNOWN_USER: 'POSTERN_ERR_UNKNOWN_USER',
  /** `group` / `socketGroup` names no group of this system. */
  UNKNOWN_GROUP: 'POSTERN_ERR_UNKNOWN_GROUP',
  /** Switching to `user` / `group` failed (not root, or the system refused), or root could be regained. */
  DROP_FAILED: 'POSTERN_ERR_PRIVILEGES',
} as const;

export type PrivilegeErrorCode = (typeof PRIVILEGE_ERRORS)[keyof typeof PRIVILEGE_ERRORS];

export class PrivilegeError extends Error {
  readonly code: PrivilegeErrorCode;
  constructor(code: PrivilegeErrorCode, message: string) {
    super(message);
    this.name = 'PrivilegeError';
    this.code = code;
  }
}

export interface UserEntry {
  readonly name: string | undefined;
  readonly uid: number;
  /** The user's primary group; undefined for a bare uid no database knows. */
  readonly gid: number | undefined;
}

const ID_RE = /^[0-9]{1,10}$/;

function lookup(database: 'passwd' | 'group', key: string): string[] | undefined {
  const numeric = ID_RE.test(key);
  // Field 0 is the name, field 2 the id, in both files.
  const match = (line: string): string[] | undefined => {
    const f = line.split(':');
    return (numeric ? f[2] === key : f[0] === key) && f.length >= 3 ? f : undefined;
  };
  try {
    for (const line of readFileSync(`/etc/${database}`, 'latin1').split('\n')) {
      const f = match(line);
      if (f !== undefined) return f;
    }
  } catch {
    // No such file (not Linux, a minimal container): getent may still know.
  }
  try {
    const out = execFileSync('getent', [database, key], { encoding: 'latin1', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
    return match(out.split('\n')[0] ?? '');
  } catch {
    return undefined;
  }
}

/** A user by name or numeric id. Throws UNKNOWN_USER for a name no database knows. */
export function lookupUser(nameOrId: string): UserEntry {
  const key = nameOrId.trim();
  const f = lookup('passwd', key);
  if (f !== undefined) return { name: f[0], uid: Number(f[2]), gid: Number(f[3]) };
  if (ID_RE.test(key)) return { name: undefined, uid: Number(key), gid: undefined };
  throw new PrivilegeError(PRIVILEGE_ERRORS.UNKNOWN_USER, `no user named ${JSON.stringify(key)} on this system`);
}

/** A group id by name or numeric id. Throws UNKNOWN_GROUP for a name no database knows. */
export function lookupGroup(nameOrId: string): number {
  const key = nameOrId.trim();
  if (ID_RE.test(key)) return Number(key);
  const f = lookup('group', key);
  if (f !== undefined) return Number(f[2]);
  throw new PrivilegeError(PRIVILEGE_ERRORS.UNKNOWN_GROUP, `no group named ${JSON.stringify(key)} on this system`);
}

/** Owner and group for a socket file; -1 leaves that one unchanged (chown(2)). */
export interface SocketOwner {
  readonly uid: number;
  readonly gid: number;
}

/**
 * The `socketOwner` / `socketGroup` pair as ids, or undefined when neither is set. An owner alone
 * leaves the group as it is (chown(1) `user`, not `user:`).
 */
export function resolveSocketOwner(owner: string | undefined, group: string | undefined): SocketOwner | undefined {
  if (owner === undefined && group === undefined) return undefined;
  const uid = owner === undefined ? -1 : lookupUser(owner).uid;
  const gid = group === undefined ? -1 : lookupGroup(group);
  return Object.freeze({ uid, gid });
}

/** Where a listener can be reached from, for the root check. */
export type Exposure = 'local' | 'network';

/**
 * `local` for a unix socket, a loopback TCP address or `localhost`, and an inherited fd that is one
 * of those (Linux: looked up in /proc by socket inode); `network` for everything else, including
 * `:PORT` (every interface), host names, and fds whose kind cannot be told.
 */
export function listenerExposure(address: string, procRoot = '/proc'): Exposure {
  let a;
  try {
    a = parseAddress(address);
  } catch {
    return 'network';
  }
  switch (a.kind) {
    case 'unix':
      return 'local';
    case 'tcp':
      if (a.host === undefined) return 'network';
      return a.host === 'localhost' || isLoopback(a.host) ? 'local' : 'network';
    case 'fd':
      return fdExposure(a.fd, procRoot);
  }
}

function fdExposure(fd: number, procRoot: string): Exposure {
  let inode: string;
  try {
    const m = /^socket:\[([0-9]+)\]$/.exec(readlinkSync(`${procRoot}/self/fd/${String(fd)}`));
    if (m === null) return 'network';
    inode = m[1] ?? '';
  } catch {
    return 'network';
  }
  const rows = (file: string): string[][] => {
    try {
      return readFileSync(`${procRoot}/net/${file}`, 'latin1').split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    } catch {
      return [];
    }
  };
  // /proc/net/unix: Num RefCount Protocol Flags Type St Inode Path
  if (rows('unix').some((r) => r[6] === inode)) return 'local';
  // /proc/net/tcp{,6}: sl local_address rem_address st tx:rx tr:tm retrnsmt uid timeout inode
  for (const file of ['tcp', 'tcp6']) {
    const row = rows(file).find((r) => r[9] === inode);
    if (row !== undefined) return isLoopback(procHexAddress(row[1] ?? '')) ? 'local' : 'network';
  }
  return 'network';
}

/** `0100007F:1F90` (host-order 32-bit words, as the kernel prints them) → `127.0.0.1`. */
function procHexAddress(field: string): string {
  const hex = field.split(':')[0] ?? '';
  const bytes: number[] = [];
  for (let w = 0; w < hex.length; w += 8) {
    const word = hex.slice(w, w + 8);
    // Each 32-bit word is printed in host order; x86 and arm64 are little-endian.
    for (let i = 6; i >= 0; i -= 2) bytes.push(parseInt(word.slice(i, i + 2), 16));
  }
  if (bytes.length === 4) return bytes.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(':');
}

export interface RootCheckInput {
  /** The effective uid (`process.geteuid()`); -1 where there is none (Windows). */
  readonly euid: number;
  readonly allowRoot: boolean;
  /** The `user` option: set means privileges are dropped after binding. */
  readonly user?: string | undefined;
  /** Every address postern will bind or inherit (app listeners and the status listener). */
  readonly addresses: readonly string[];
  /** For tests: where /proc is. */
  readonly procRoot?: string;
}

export type RootVerdict =
  | { readonly action: 'ok' }
  | { readonly action: 'warn'; readonly message: string }
  | { readonly action: 'refuse'; readonly message: string };

/**
 * Whether postern may start, as root. Refused when root would serve apps on an address other hosts
 * can reach, with no `user` to drop to and no `allowRoot`; only a warning when every listener is
 * local (unix sockets, loopback): that keeps `postern` with its loopback defaults working in a root
 * container or CI job, where root is the norm and nothing outside can connect.
 */
export function rootCheck(input: RootCheckInput): RootVerdict {
  if (input.euid !== 0) return { action: 'ok' };
  if (input.user !== undefined) {
    const u = lookupUser(input.user);
    if (u.uid !== 0) return { action: 'ok' };
  }
  const exposed = input.addresses.filter((a) => listenerExposure(a, input.procRoot) === 'network');
  if (input.allowRoot) {
    return { action: 'warn', message: 'running as root (allowRoot is set): apps run with every privilege; set user (and group) to drop them after binding' };
  }
  if (exposed.length === 0) {
    return { action: 'warn', message: 'running as root: every listener is local (unix socket or loopback), so postern starts; set user (and group) to drop privileges after binding, or allowRoot to silence this' };
  }
  return {
    action: 'refuse',
    message: `refusing to run as root with ${exposed.join(', ')} reachable from other hosts: set user (and group) to drop privileges after binding, ` +
      'or allowRoot (--allow-root, POSTERN_ALLOW_ROOT=1) to run as root anyway',
  };
}

export interface DropTarget {
  readonly user?: string | undefined;
  readonly group?: string | undefined;
}

export interface Identity {
  readonly uid: number;
  readonly gid: number;
}

interface PosixProcess {
  getuid(): number;
  geteuid(): number;
  getgid(): number;
  setuid(id: number | string): void;
  setgid(id: number | string): void;
  setgroups(groups: ReadonlyArray<number | string>): void;
  initgroups(user: number | string, extraGroup: number | string): void;
}

function posix(): PosixProcess | undefined {
  const p = process as Partial<PosixProcess>;
  return typeof p.setuid === 'function' && typeof p.getuid === 'function' ? (p as PosixProcess) : undefined;
}

/**
 * Switches this process to `user` (with its supplementary groups) and `group` (default: the user's
 * primary group), then checks root cannot be regained. Already running as the target: nothing to
 * do. Returns the identity now in effect, or undefined when neither is set. Throws DROP_FAILED when
 * the switch is impossible (not root) or incomplete, UNKNOWN_USER / UNKNOWN_GROUP for a bad name.
 */
export function dropPrivileges(target: DropTarget): Identity | undefined {
  if (target.user === undefined && target.group === undefined) return undefined;
  const p = posix();
  if (p === undefined) throw new PrivilegeError(PRIVILEGE_ERRORS.DROP_FAILED, 'user and group need a POSIX system');
  const u = target.user === undefined ? undefined : lookupUser(target.user);
  const gid = target.group !== undefined ? lookupGroup(target.group) : (u?.gid ?? p.getgid());
  const uid = u?.uid ?? p.getuid();
  if (p.geteuid() !== 0) {
    if (p.getuid() === uid && p.geteuid() === uid && p.getgid() === gid) return { uid, gid };
    throw new PrivilegeError(PRIVILEGE_ERRORS.DROP_FAILED,
      `cannot switch to ${u === undefined ? '' : `user ${target.user ?? ''} `}${target.group === undefined ? '' : `group ${target.group} `}: not running as root (uid ${String(p.getuid())})`);
  }
  try {
    // Supplementary groups first, while still root: root's own (often 0) must not linger.
    if (u?.name !== undefined) p.initgroups(u.name, gid);
    else p.setgroups([gid]);
    p.setgid(gid);
    p.setuid(uid);
  } catch (err) {
    throw new PrivilegeError(PRIVILEGE_ERRORS.DROP_FAILED, `switching to uid ${String(uid)} gid ${String(gid)} failed: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  if (p.getuid() !== uid || p.geteuid() !== uid || p.getgid() !== gid) {
    throw new PrivilegeError(PRIVILEGE_ERRORS.DROP_FAILED, `after switching, uid ${String(p.geteuid())} gid ${String(p.getgid())} instead of ${String(uid)}/${String(gid)}`);
  }
  if (uid !== 0) {
    let regained = false;
    try {
      p.setuid(0);
      regained = true;
    } catch {
      // EPERM: as it must be.
    }
    if (regained) throw new PrivilegeError(PRIVILEGE_ERRORS.DROP_FAILED, 'root could be regained after switching user');
  }
  return { uid, gid };
}
