// Loading mounted apps, from the start-up side: import each configured module (a file or a package,
// resolved from where it was configured), take the named export and mount it on a fresh Tree.

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Tree } from '../app/tree.ts';
import { prepareApp } from '../app/resolve.ts';
import { CONFIG_ERRORS, ConfigError } from './errors.ts';
import type { ConfigIssue } from './errors.ts';
import type { Environ } from '../app/types.ts';
import type { MountConfig } from './options.ts';
import type { NodeBridge } from '../app/adapters/node-common.ts';

/** The module URL to import for a mount: files by path, packages resolved from `baseDir`. */
export function mountUrl(m: MountConfig): string {
  if (m.module.startsWith('file:')) return m.module;
  if (m.module.startsWith('/')) return pathToFileURL(m.module).href;
  try {
    // Resolve a package from where it was configured, not from postern's own node_modules.
    return pathToFileURL(createRequire(join(m.baseDir, 'noop.js')).resolve(m.module)).href;
  } catch {
    // ESM-only packages without a "require"/"default" export condition: let import() resolve it.
    return m.module;
  }
}

function hint(err: unknown, m: MountConfig): string {
  const code = (err as { code?: unknown }).code;
  if (code === 'ERR_UNKNOWN_FILE_EXTENSION' && /\.[cm]?ts$/.test(m.module)) {
    return ' (a .ts module needs Node ≥ 22.18 / 23.6, or running postern under tsx: node --import tsx …; or compile it to .js)';
  }
  if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return ` (resolved from ${m.baseDir})`;
  return '';
}

/**
 * Imports a mount's module and returns its export. `fresh` defeats the ESM module cache for file
 * modules (a reload that should see new code); each fresh import keeps the old copy in memory.
 */
export async function importMount(m: MountConfig, fresh?: string): Promise<unknown> {
  let url = mountUrl(m);
  if (fresh !== undefined && url.startsWith('file:')) url += `${url.includes('?') ? '&' : '?'}postern-reload=${encodeURIComponent(fresh)}`;
  let ns: Record<string, unknown>;
  try {
    ns = await import(url) as Record<string, unknown>;
  } catch (err) {
    throw loadError(m, `cannot import ${m.module}: ${(err as Error).message ?? String(err)}${hint(err, m)}`);
  }
  if (!(m.export in ns) || ns[m.export] === undefined) {
    const names = Object.keys(ns).filter((k) => ns[k] !== undefined);
    throw loadError(m, `${m.module} has no export ${JSON.stringify(m.export)} (it exports: ${names.length === 0 ? 'nothing' : names.join(', ')})`);
  }
  return ns[m.export];
}

function loadError(m: MountConfig, message: string, index?: number): ConfigError {
  const issue: ConfigIssue = { code: CONFIG_ERRORS.MOUNT_LOAD, key: index === undefined ? 'mount' : `mount[${index}]`, source: 'default', origin: `mount ${m.prefix}`, message };
  return new ConfigError([issue]);
}

export interface BuildTreeOptions {
  readonly debug?: boolean;
  /** Cache-busting token for re-imports on reload. */
  readonly fresh?: string;
  readonly onError?: (err: unknown, environ: Environ) => void;
  /** How Node (req, res) apps are bridged (the `nodeBridge` option); default `direct`. */
  readonly nodeBridge?: NodeBridge;
}

/** A tree with every configured mount, in order; all load errors are reported together. */
export async function buildTree(mounts: readonly MountConfig[], options: BuildTreeOptions = {}): Promise<Tree> {
  const tree = new Tree({ debug: options.debug === true, ...(options.onError === undefined ? {} : { onError: options.onError }) });
  const issues: ConfigIssue[] = [];
  // Imports run one after another: module top-level code may depend on order (shared state, ports).
  for (const [i, m] of mounts.entries()) {
    try {
      const app = await importMount(m, options.fresh);
      tree.mount(app, m.prefix, { kind: m.kind, role: m.role, adapter: { bridge: options.nodeBridge ?? 'direct' } });
      // A Fastify app that cannot load its plugins fails the start, naming this mount.
      await prepareApp(app);
    } catch (err) {
      const message = err instanceof ConfigError ? (err.issues[0]?.message ?? err.message) : (err as Error).message;
      issues.push({ code: CONFIG_ERRORS.MOUNT_LOAD, key: `mount[${i}]`, source: 'default', origin: `mount ${m.prefix}=${m.module}#${m.export}`, message });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return tree;
}
