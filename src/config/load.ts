// Resolving the configuration, from the operator's side: flags > POSTERN_* environment > config file
// > defaults, each value checked against the option table, then the whole checked once for
// impossible combinations, and frozen. Every problem is reported at once, each naming its key.

import { existsSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, resolve } from 'node:path';
import { formatAddress, parseAddress } from '../server/address.ts';
import { parseCidr } from '../server/access.ts';
import { validateAccessLogFormat } from '../log/access-format.ts';
import type { ListenAddress } from '../server/address.ts';
import { CONFIG_ERRORS, ConfigError } from './errors.ts';
import type { ConfigErrorCode, ConfigIssue, OptionSource } from './errors.ts';
import { readConfigFile } from './file.ts';
import type { ConfigFile, KeyPath } from './file.ts';
import {
  ACCESS_LOG_FIELDS, DEFAULT_LISTENERS, FILE_KEYS, LISTENER_PROTOCOLS, MASTER_OPTIONS, MOUNT_KINDS, MOUNT_ROLES, OPTIONS, OPTION_LIST,
  SUPERVISOR_OPTIONS, needsMaster,
} from './options.ts';
import type { ListenerProtocol, MountConfig, MountKind, OptionName, OptionSpec, OptionValues } from './options.ts';
import { suggest } from './suggest.ts';
import { fail, ok, parseBoolean, parseBytes, parseChoice, parseDuration, parseInteger, show } from './values.ts';
import type { Parsed } from './values.ts';
import type { RoleName } from '../app/types.ts';

export interface ListenerConfig {
  readonly protocol: ListenerProtocol;
  /** Canonical address text (`127.0.0.1:9000`, `:9000`, `[::1]:9000`, `unix:/abs/path`, `fd:3`). */
  readonly address: string;
}

type UnsetKeys = { [K in OptionName]: undefined extends OptionValues[K] ? K : never }[OptionName];

/**
 * The resolved, validated, frozen configuration: every option of the table by name (options that
 * are unset by default are absent until set), plus the derived listener list, where each value came
 * from, and warnings worth logging at start-up.
 */
export type PosternConfig =
  & { readonly [K in Exclude<OptionName, UnsetKeys>]: OptionValues[K] }
  & { readonly [K in UnsetKeys]?: Exclude<OptionValues[K], undefined> }
  & {
    /** Every app listener, in table order (fastcgi, scgi, uwsgi, http); the defaults when none was given. */
    readonly listeners: readonly ListenerConfig[];
    /** Which layer set each option. */
    readonly sources: Readonly<Record<OptionName, OptionSource>>;
    /** Things that are legal but probably not meant (logged at start-up, printed by check-config). */
    readonly warnings: readonly string[];
  };

/** Raw values from one layer, as strings, booleans, numbers, lists or (file) mappings. */
export type RawValues = Partial<Record<OptionName, unknown>>;

export interface ConfigInput {
  /** Values the command line set (commander's `cli`-sourced values). */
  readonly flags?: RawValues;
  /** The environment to read `POSTERN_*` variables from (default: none). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** A config file path (overrides `--config` / POSTERN_CONFIG), or one already read. */
  readonly file?: string | ConfigFile;
  /** Where relative paths from flags and the environment resolve (default: process.cwd()). */
  readonly cwd?: string;
  /** Check that socket and log directories and mounted module files exist (default: true). */
  readonly checkPaths?: boolean;
}

/** Splits list values given as one string (environment variables): commas or whitespace. */
function splitList(s: string): string[] {
  return s.split(/[\s,]+/).filter((x) => x.length > 0);
}

interface Layer {
  readonly source: OptionSource;
  readonly values: RawValues;
  readonly baseDir: string;
  readonly file?: ConfigFile;
}

class Collector {
  readonly issues: ConfigIssue[] = [];
  readonly warnings: string[] = [];

  add(layer: Layer | undefined, spec: OptionSpec | undefined, path: KeyPath, code: ConfigErrorCode, message: string, part: 'key' | 'value' = 'value'): void {
    const key = keyText(path);
    const source = layer?.source ?? 'default';
    const base = { code, key, source, message };
    if (layer?.file !== undefined) {
      const pos = layer.file.locate(path, part);
      this.issues.push({ ...base, file: layer.file.display, ...(pos === undefined ? {} : { line: pos.line, col: pos.col }) });
    } else if (spec !== undefined && source === 'cli') {
      this.issues.push({ ...base, origin: spec.flag });
    } else if (spec !== undefined && source === 'env') {
      this.issues.push({ ...base, origin: spec.env });
    } else {
      this.issues.push(base);
    }
  }
}

function keyText(path: KeyPath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : (s === '' ? seg : `.${seg}`);
  return s;
}

/**
 * Resolves the configuration from its layers. Throws `ConfigError` carrying every issue found.
 */
export function resolveConfig(input: ConfigInput = {}): PosternConfig {
  const cwd = input.cwd ?? process.cwd();
  const env = input.env ?? {};
  const out = new Collector();
  const checkPaths = input.checkPaths ?? true;

  const flagLayer: Layer = { source: 'cli', values: input.flags ?? {}, baseDir: cwd };
  const envLayer: Layer = { source: 'env', values: envValues(env, out), baseDir: cwd };

  let file: ConfigFile | undefined;
  if (typeof input.file === 'object') {
    file = input.file;
  } else {
    const path = input.file ?? stringOrUndefined(flagLayer.values.config) ?? stringOrUndefined(envLayer.values.config);
    if (path !== undefined) file = readConfigFile(path, cwd); // unreadable or unparsable: nothing else is worth checking
  }
  const fileLayer: Layer | undefined = file === undefined ? undefined : { source: 'config', values: fileValues(file, out), baseDir: dirname(file.path), file };

  const values: Partial<Record<OptionName, unknown>> = {};
  const sources = {} as Record<OptionName, OptionSource>;
  const layerOf = {} as Record<OptionName, Layer | undefined>;
  for (const spec of OPTION_LIST) {
    const layer = [flagLayer, envLayer, fileLayer].find((l) => l !== undefined && l.values[spec.name] !== undefined);
    sources[spec.name] = layer?.source ?? 'default';
    layerOf[spec.name] = layer;
    if (layer === undefined) {
      values[spec.name] = spec.default;
      continue;
    }
    const v = normalize(spec, layer.values[spec.name], layer, out);
    if (v.ok) values[spec.name] = v.value;
  }
  if (file !== undefined) values.config = file.path;
  if (typeof input.file === 'string' || typeof input.file === 'object') sources.config = 'cli';

  const v = values as OptionValues;
  const listeners = crossCheck(v, layerOf, out, checkPaths);
  if (out.issues.length > 0) throw new ConfigError(out.issues);

  const config: Record<string, unknown> = {};
  for (const spec of OPTION_LIST) {
    const value = values[spec.name];
    if (value !== undefined) config[spec.name] = value;
  }
  config.listeners = listeners;
  config.sources = Object.freeze(sources);
  config.warnings = Object.freeze(out.warnings);
  return deepFreeze(config) as unknown as PosternConfig;
}

function stringOrUndefined(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const ENV_NAMES: ReadonlyMap<string, OptionName> = new Map(OPTION_LIST.map((o) => [o.env, o.name]));
// Set by postern itself (the supervisor marks its workers), never by operators: not typos.
const INTERNAL_ENV: ReadonlySet<string> = new Set(['POSTERN_WORKER_ID']);

function envValues(env: Readonly<Record<string, string | undefined>>, out: Collector): RawValues {
  const values: RawValues = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('POSTERN_') || raw === undefined || INTERNAL_ENV.has(name)) continue;
    const opt = ENV_NAMES.get(name);
    if (opt === undefined) {
      // Other POSTERN_* variables may be postern-internal (worker bookkeeping): only flag likely typos.
      const near = suggest(name, [...ENV_NAMES.keys()]);
      if (near !== undefined) out.warnings.push(`unknown environment variable ${name} ignored (did you mean ${near}?)`);
      continue;
    }
    // An empty variable is unset: compose files and unit files often define them blank.
    if (raw.trim() === '') continue;
    values[opt] = OPTIONS[opt].type === 'list' ? splitList(raw) : raw;
  }
  return values;
}

function fileValues(file: ConfigFile, out: Collector): RawValues {
  const layer: Layer = { source: 'config', values: {}, baseDir: dirname(file.path), file };
  const data = file.data;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    out.add(layer, undefined, [], CONFIG_ERRORS.TYPE, `expected a mapping of option names to values at the top level, got ${show(data)}`);
    return {};
  }
  const values: RawValues = {};
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if ((FILE_KEYS as readonly string[]).includes(key)) {
      // `key: ~` (null) leaves the option unset, so a file can document an option without setting it.
      if (value !== null) values[key as OptionName] = value;
      continue;
    }
    const near = key === 'config' ? undefined : suggest(key, FILE_KEYS);
    const why = key === 'config' ? 'a config file cannot name another config file'
      : `unknown key${near === undefined ? '' : ` (did you mean "${near}"?)`}; see docs/configuration.md for the options`;
    out.add(layer, undefined, [key], CONFIG_ERRORS.UNKNOWN_KEY, why, 'key');
  }
  return values;
}

// ——— per-option normalization ———

function normalize(spec: OptionSpec, raw: unknown, layer: Layer, out: Collector): Parsed<unknown> {
  const report = (p: Parsed<unknown>): Parsed<unknown> => {
    if (!p.ok) out.add(layer, spec, [spec.name], p.code, p.message);
    return p;
  };
  switch (spec.type) {
    case 'integer': {
      if (spec.words !== undefined && typeof raw === 'string' && spec.words.includes(raw.trim())) {
        return ok(raw.trim() === 'auto' ? Math.max(1, Math.min(spec.max ?? Infinity, availableParallelism())) : raw);
      }
      const p = parseInteger(raw, spec, spec.unit === 'MiB' ? 'MiB' : '');
      if (!p.ok && spec.words !== undefined && p.code === CONFIG_ERRORS.TYPE) {
        return report(fail(p.code, `${p.message} (or ${spec.words.map((w) => JSON.stringify(w)).join(', ')})`));
      }
      return report(p);
    }
    case 'bytes': return report(parseBytes(raw, spec));
    case 'duration': return report(parseDuration(raw, spec));
    case 'boolean': return report(parseBoolean(raw));
    case 'enum': return report(parseChoice(raw, spec.choices ?? []));
    case 'string': {
      if (typeof raw !== 'string' && !((spec.format === 'file-mode' || spec.format === 'account') && typeof raw === 'number')) {
        return report(fail(CONFIG_ERRORS.TYPE, `expected a string, got ${show(raw)}`));
      }
      return report(normalizeString(spec, raw, layer));
    }
    case 'list': {
      const items = typeof raw === 'string' ? [raw] : raw;
      if (!Array.isArray(items)) {
        return report(fail(CONFIG_ERRORS.TYPE, `expected a list (or a single ${spec.valueName ?? 'value'}), got ${show(raw)}`));
      }
      const result: unknown[] = [];
      let good = true;
      items.forEach((item: unknown, i) => {
        const path = layer.file === undefined ? [spec.name] : (Array.isArray(raw) ? [spec.name, i] : [spec.name]);
        const p = spec.format === 'mount' ? normalizeMount(item, layer, path, spec, out) : normalizeListItem(spec, item, layer);
        if (p.ok) result.push(p.value);
        else {
          good = false;
          if (spec.format !== 'mount') out.add(layer, spec, path, p.code, p.message);
        }
      });
      return good ? ok(result) : fail(CONFIG_ERRORS.TYPE, 'bad list');
    }
  }
}

function normalizeListItem(spec: OptionSpec, item: unknown, layer: Layer): Parsed<unknown> {
  if (typeof item !== 'string') return fail(CONFIG_ERRORS.TYPE, `expected ${spec.valueName ?? 'a string'}, got ${show(item)}`);
  return normalizeString(spec, item, layer);
}

function normalizeString(spec: OptionSpec, raw: string | number, layer: Layer): Parsed<unknown> {
  const s = typeof raw === 'string' ? raw.trim() : String(raw);
  switch (spec.format) {
    case 'address': return normalizeAddress(s, layer.baseDir);
    case 'url-path':
      return /^\/[^\s?#]*$/.test(s) ? ok(s) : fail(CONFIG_ERRORS.TYPE, `expected a URL path starting with / (no spaces, ? or #), got ${show(raw)}`);
    case 'file-mode': {
      // YAML reads an unquoted 0660 as the decimal 660: its digits are still the octal bits meant.
      if (!/^0?[0-7]{3}$/.test(s)) return fail(CONFIG_ERRORS.TYPE, `expected octal permission bits like "0660", got ${show(raw)}`);
      return ok(s.padStart(4, '0'));
    }
    case 'path':
      return s === '' ? fail(CONFIG_ERRORS.TYPE, 'expected a file path, got an empty string') : ok(resolve(layer.baseDir, s));
    case 'access-log':
      if (s === '' ) return fail(CONFIG_ERRORS.TYPE, 'expected off, - or a file path, got an empty string');
      return ok(s === 'off' ? undefined : s === '-' ? '-' : resolve(layer.baseDir, s));
    case 'log-template': return checkTemplate(s);
    case 'account':
      // POSIX portable user names, plus what useradd allows (a trailing $ for machine accounts); or an id.
      return /^(?:[0-9]{1,10}|[A-Za-z_][A-Za-z0-9._-]{0,31}\$?)$/.test(s)
        ? ok(s) : fail(CONFIG_ERRORS.TYPE, `expected a user or group name or a numeric id, got ${show(raw)}`);
    case 'cidr': {
      try {
        parseCidr(s);
      } catch (err) {
        return fail(CONFIG_ERRORS.TYPE, (err as Error).message);
      }
      return ok(s);
    }
    case 'mount': case undefined:
      return s === '' ? fail(CONFIG_ERRORS.TYPE, 'expected a non-empty string') : ok(s);
  }
  return fail(CONFIG_ERRORS.TYPE, 'unreachable');
}

/** A unix socket path must fit sockaddr_un.sun_path (108 bytes with the NUL on Linux). */
const MAX_UNIX_PATH_BYTES = 107;

function normalizeAddress(s: string, baseDir: string): Parsed<string> {
  let a: ListenAddress;
  try {
    a = parseAddress(s);
  } catch (err) {
    return fail(CONFIG_ERRORS.ADDRESS, (err as Error).message);
  }
  if (a.kind === 'unix') {
    const path = isAbsolute(a.path) ? a.path : resolve(baseDir, a.path);
    if (Buffer.byteLength(path) > MAX_UNIX_PATH_BYTES) {
      return fail(CONFIG_ERRORS.ADDRESS, `unix socket path ${path} is ${Buffer.byteLength(path)} bytes; the limit is ${MAX_UNIX_PATH_BYTES}`);
    }
    return ok(formatAddress({ kind: 'unix', path }));
  }
  return ok(formatAddress(a));
}

function checkTemplate(s: string): Parsed<string> {
  if (s === 'combined' || s === 'json') return ok(s);
  const fields = [...s.matchAll(/\{([^{}]*)\}/g)].map((m) => m[1] ?? '');
  if (fields.length === 0) {
    return fail(CONFIG_ERRORS.TYPE, `expected combined, json, or a template naming fields in braces like "{method} {uri} {status}", got ${show(s)}`);
  }
  if (/[{}]/.test(s.replace(/\{[^{}]*\}/g, ''))) return fail(CONFIG_ERRORS.TYPE, `unbalanced braces in access log template ${show(s)}`);
  for (const f of fields) {
    if (!ACCESS_LOG_FIELDS.includes(f)) {
      const near = suggest(f, ACCESS_LOG_FIELDS);
      return fail(CONFIG_ERRORS.RANGE, `unknown access log field {${f}}${near === undefined ? '' : ` (did you mean {${near}}?)`}; fields: ${ACCESS_LOG_FIELDS.join(', ')}`);
    }
  }
  // The writer's own check has the last word (a line break in a template, say), so a format that
  // passes here always compiles at start-up.
  const why = validateAccessLogFormat(s);
  return why === undefined ? ok(s) : fail(CONFIG_ERRORS.TYPE, why);
}

// ——— mounts ———

const MOUNT_KEYS = ['prefix', 'module', 'export', 'kind', 'role'] as const;
const EXPORT_RE = /^[^\s#]+$/;

/** Splits `PREFIX=MODULE[#EXPORT]`. */
export function parseMountSpec(text: string): Parsed<{ prefix: string; module: string; export: string }> {
  const eq = text.indexOf('=');
  if (eq < 0) return fail(CONFIG_ERRORS.MOUNT, `expected PREFIX=MODULE[#EXPORT] (e.g. /api=./app.js#default), got ${show(text)}`);
  const prefix = text.slice(0, eq).trim();
  let module = text.slice(eq + 1).trim();
  let exp = 'default';
  const hash = module.lastIndexOf('#');
  if (hash > 0) {
    exp = module.slice(hash + 1);
    module = module.slice(0, hash);
  }
  return ok({ prefix, module, export: exp });
}

/** `/` or `/a/b` without a trailing slash; a prefix always ends on a path-segment boundary. */
export function normalizePrefix(prefix: string): Parsed<string> {
  if (!prefix.startsWith('/')) return fail(CONFIG_ERRORS.MOUNT, `a mount prefix must start with /, got ${show(prefix)}`);
  // eslint-disable-next-line no-control-regex
  if (/[\s?#\x00-\x1f\x7f]/.test(prefix)) return fail(CONFIG_ERRORS.MOUNT, `a mount prefix cannot hold spaces, ? or #, got ${show(prefix)}`);
  const trimmed = prefix.length > 1 ? prefix.replace(/\/+$/, '') : prefix;
  const segs = trimmed.split('/').slice(1);
  if (trimmed !== '/' && segs.some((seg) => seg === '' || seg === '.' || seg === '..')) {
    return fail(CONFIG_ERRORS.MOUNT, `a mount prefix cannot hold empty, . or .. segments, got ${show(prefix)}`);
  }
  return ok(trimmed === '' ? '/' : trimmed);
}

const MODULE_EXT = /\.(?:[cm]?js|[cm]?ts)$/;

/** True when a module names a file rather than a package. */
export function isPathModule(module: string, baseDir: string): boolean {
  if (/^(?:\.{1,2}\/|\/|file:)/.test(module)) return true;
  return MODULE_EXT.test(module) && existsSync(resolve(baseDir, module));
}

function normalizeMount(item: unknown, layer: Layer, path: KeyPath, spec: OptionSpec, out: Collector): Parsed<MountConfig> {
  let fields: { prefix: unknown; module: unknown; export: unknown; kind: unknown; role: unknown };
  if (typeof item === 'string') {
    const p = parseMountSpec(item);
    if (!p.ok) { out.add(layer, spec, path, p.code, p.message); return fail(p.code, p.message); }
    fields = { ...p.value, kind: undefined, role: undefined };
  } else if (typeof item === 'object' && item !== null && !Array.isArray(item)) {
    const obj = item as Record<string, unknown>;
    let good = true;
    for (const k of Object.keys(obj)) {
      if (!(MOUNT_KEYS as readonly string[]).includes(k)) {
        const near = suggest(k, MOUNT_KEYS);
        out.add(layer, spec, [...path, k], CONFIG_ERRORS.UNKNOWN_KEY,
          `unknown mount key${near === undefined ? '' : ` (did you mean "${near}"?)`}; a mount has ${MOUNT_KEYS.join(', ')}`, 'key');
        good = false;
      }
    }
    for (const k of ['prefix', 'module'] as const) {
      if (obj[k] === undefined || obj[k] === null) {
        out.add(layer, spec, path, CONFIG_ERRORS.MOUNT, `a mount needs "${k}"`);
        good = false;
      }
    }
    if (!good) return fail(CONFIG_ERRORS.MOUNT, 'bad mount');
    fields = { prefix: obj.prefix, module: obj.module, export: obj.export ?? 'default', kind: obj.kind, role: obj.role };
  } else {
    const message = `expected a mount (PREFIX=MODULE[#EXPORT] or a mapping with prefix and module), got ${show(item)}`;
    out.add(layer, spec, path, CONFIG_ERRORS.TYPE, message);
    return fail(CONFIG_ERRORS.TYPE, message);
  }

  const here = (k: string): KeyPath => (typeof item === 'string' ? path : [...path, k]);
  let good = true;
  const check = <T>(k: string, p: Parsed<T>): T | undefined => {
    if (p.ok) return p.value;
    out.add(layer, spec, here(k), p.code, p.message);
    good = false;
    return undefined;
  };
  const prefix = check('prefix', typeof fields.prefix === 'string' ? normalizePrefix(fields.prefix.trim()) : fail(CONFIG_ERRORS.TYPE, `expected a prefix string, got ${show(fields.prefix)}`));
  const moduleText = check('module', typeof fields.module === 'string' && fields.module.trim() !== ''
    ? ok(fields.module.trim()) : fail(CONFIG_ERRORS.MOUNT, `expected a module path or package name, got ${show(fields.module)}`));
  const exp = check('export', typeof fields.export === 'string' && EXPORT_RE.test(fields.export)
    ? ok(fields.export) : fail(CONFIG_ERRORS.MOUNT, `expected an export name, got ${show(fields.export)}`));
  const kind = check('kind', fields.kind === undefined ? ok<MountKind>('auto') : parseChoice(fields.kind, MOUNT_KINDS));
  const role = check('role', fields.role === undefined ? ok<RoleName>('responder') : parseChoice(fields.role, MOUNT_ROLES));
  if (!good || prefix === undefined || moduleText === undefined || exp === undefined || kind === undefined || role === undefined) {
    return fail(CONFIG_ERRORS.MOUNT, 'bad mount');
  }
  const module = isPathModule(moduleText, layer.baseDir)
    ? (moduleText.startsWith('file:') ? moduleText : resolve(layer.baseDir, moduleText))
    : moduleText;
  return ok({ prefix, module, export: exp, kind, role, baseDir: layer.baseDir });
}

/** `@scope/pkg/sub/path` → `@scope/pkg`; `pkg/sub` → `pkg`. */
function packageName(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] ?? specifier);
}

/** Whether Node's resolution from `baseDir` would find the package's directory. */
function packageFound(specifier: string, baseDir: string): boolean {
  const name = packageName(specifier);
  for (let dir = baseDir; ; dir = dirname(dir)) {
    if (existsSync(resolve(dir, 'node_modules', name, 'package.json'))) return true;
    if (dirname(dir) === dir) return false;
  }
}

// ——— whole-config checks ———

/** What an address occupies, for clash detection; undefined for port 0 (every bind gets its own port). */
function addressSlot(address: string): { key: string; port?: number; wildcard?: boolean } | undefined {
  const a = parseAddress(address);
  if (a.kind === 'unix') return { key: `unix:${a.path}` };
  if (a.kind === 'fd') return { key: `fd:${a.fd}` };
  if (a.port === 0) return undefined;
  if (a.host === undefined) return { key: `tcp:*:${a.port}`, port: a.port, wildcard: true };
  return { key: `tcp:${a.host}:${a.port}`, port: a.port, wildcard: false };
}

function crossCheck(v: OptionValues, layerOf: Record<OptionName, Layer | undefined>, out: Collector, checkPaths: boolean): ListenerConfig[] {
  let listeners: ListenerConfig[] = [];
  for (const protocol of LISTENER_PROTOCOLS) {
    for (const address of v[protocol] ?? []) listeners.push({ protocol, address });
  }
  if (listeners.length === 0) listeners = DEFAULT_LISTENERS.map((l) => ({ ...l }));

  // One address, one listener: a second bind would fail at start-up with EADDRINUSE, less clearly.
  const seen = new Map<string, { who: string; slot: NonNullable<ReturnType<typeof addressSlot>> }>();
  const claim = (who: string, name: OptionName, index: number | undefined, address: string): void => {
    const slot = addressSlot(address);
    if (slot === undefined) return;
    for (const prior of seen.values()) {
      const clash = prior.slot.key === slot.key
        || (slot.port !== undefined && prior.slot.port === slot.port && (slot.wildcard === true || prior.slot.wildcard === true));
      if (clash) {
        const layer = layerOf[name];
        const path: KeyPath = index === undefined || layer?.file === undefined || !Array.isArray(layer.values[name]) ? [name] : [name, index];
        const what = name === 'statusListen' ? 'statusListen must differ from every app listener' : 'each address can have only one listener';
        out.add(layer, OPTIONS[name], path, CONFIG_ERRORS.CONFLICT, `${address} (${who}) clashes with ${prior.who}: ${what}`);
        return;
      }
    }
    seen.set(`${who}`, { who, slot });
  };
  const indexOf = new Map<string, number>();
  for (const l of listeners) {
    const i = indexOf.get(l.protocol) ?? 0;
    indexOf.set(l.protocol, i + 1);
    claim(`the ${l.protocol} listener ${l.address}`, l.protocol, i, l.address);
  }
  if (v.statusListen !== undefined) claim(`the status listener ${v.statusListen}`, 'statusListen', undefined, v.statusListen);

  if (checkPaths) {
    const dirMissing = (p: string): boolean => {
      try { return !statSync(dirname(p)).isDirectory(); } catch { return true; }
    };
    indexOf.clear();
    const sockets: Array<[OptionName, string]> = [
      ...listeners.map((l) => [l.protocol, l.address] as [OptionName, string]),
      ...(v.statusListen === undefined ? [] : [['statusListen', v.statusListen] as [OptionName, string]]),
    ];
    for (const [name, address] of sockets) {
      const i = indexOf.get(name) ?? 0;
      indexOf.set(name, i + 1);
      if (!address.startsWith('unix:')) continue;
      const path = address.slice(5);
      if (dirMissing(path)) {
        const layer = layerOf[name];
        out.add(layer, OPTIONS[name], layer?.file === undefined || name === 'statusListen' ? [name] : [name, i], CONFIG_ERRORS.PATH,
          `the directory ${dirname(path)} for unix socket ${path} does not exist`);
      }
    }
    for (const name of ['logFile', 'accessLog'] as const) {
      const p = v[name];
      if (p !== undefined && p !== '-' && dirMissing(p)) {
        out.add(layerOf[name], OPTIONS[name], [name], CONFIG_ERRORS.PATH, `the directory ${dirname(p)} for ${p} does not exist`);
      }
    }
    (v.mount ?? []).forEach((m, i) => {
      const layer = layerOf.mount;
      const path: KeyPath = layer?.file === undefined ? ['mount'] : ['mount', i, 'module'];
      if (m.module.startsWith('file:')) return;
      if (isAbsolute(m.module)) {
        if (!existsSync(m.module)) out.add(layer, OPTIONS.mount, path, CONFIG_ERRORS.PATH, `module file ${m.module} (mounted at ${m.prefix}) does not exist`);
      } else if (!packageFound(m.module, m.baseDir)) {
        out.add(layer, OPTIONS.mount, path, CONFIG_ERRORS.PATH,
          `package ${packageName(m.module)} (mounted at ${m.prefix}) is not installed in any node_modules above ${m.baseDir}`);
      }
    });
  }

  // The tree holds one app per prefix and role (an authorizer may share its responder's prefix).
  const prefixes = new Map<string, number>();
  (v.mount ?? []).forEach((m, i) => {
    const slot = `${m.role} ${m.prefix}`;
    const prior = prefixes.get(slot);
    if (prior !== undefined) {
      const layer = layerOf.mount;
      out.add(layer, OPTIONS.mount, layer?.file === undefined ? ['mount'] : ['mount', i, 'prefix'], CONFIG_ERRORS.CONFLICT,
        `prefix ${m.prefix} is mounted twice for the ${m.role} role (mounts ${prior + 1} and ${i + 1})`);
    }
    prefixes.set(slot, i);
  });

  if (v.statusPath !== undefined && v.statusPath === v.pingPath) {
    out.add(layerOf.pingPath, OPTIONS.pingPath, ['pingPath'], CONFIG_ERRORS.CONFLICT, `pingPath and statusPath are both ${v.statusPath}`);
  }
  if ((v.statusListen !== undefined) && v.statusPath === undefined && v.pingPath === undefined) {
    out.warnings.push('statusListen is set but neither statusPath nor pingPath is: the status listener answers 404 to everything');
  }
  if (v.maxRequestsJitter > 0 && v.maxRequestsPerWorker === 0) {
    out.warnings.push('maxRequestsJitter has no effect while maxRequestsPerWorker is 0');
  }
  const masterKnobs = SUPERVISOR_OPTIONS.filter((name) => layerOf[name] !== undefined);
  if (masterKnobs.length > 0 && !needsMaster(v) && v.user === undefined && v.group === undefined) {
    out.warnings.push(`${masterKnobs.join(', ')} ${masterKnobs.length === 1 ? 'has' : 'have'} no effect in a single process `
      + `(workers: 1 with none of ${MASTER_OPTIONS.join(', ')} set runs no master)`);
  }
  if (v.socketMode !== undefined && !listeners.some((l) => l.address.startsWith('unix:'))) {
    out.warnings.push('socketMode has no effect without a unix: listener');
  }
  if ((v.socketOwner !== undefined || v.socketGroup !== undefined) && !listeners.some((l) => l.address.startsWith('unix:'))) {
    out.warnings.push('socketOwner and socketGroup have no effect without a unix: listener');
  }
  if (v.maxRequestsPerConnection > 1 && !listeners.some((l) => l.protocol === 'fastcgi')) {
    out.warnings.push('maxRequestsPerConnection only applies to FastCGI listeners, and there are none');
  }
  return listeners;
}
