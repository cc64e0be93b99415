// Scalar value parsing for options, shared by flags, environment variables and config files:
// sizes with binary suffixes, durations with units, booleans, integers. Pure; results are values.

import type { ConfigErrorCode } from './errors.ts';
import { CONFIG_ERRORS } from './errors.ts';

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly code: ConfigErrorCode; readonly message: string };

export function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}
export function fail<T = never>(code: ConfigErrorCode, message: string): Parsed<T> {
  return { ok: false, code, message };
}

// Powers of 1024, as nginx reads `64k` / `1m` and as IEC writes KiB/MiB/GiB.
const BYTE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3,
};
const DURATION_UNITS: Readonly<Record<string, number>> = {
  '': 1, ms: 1, s: 1000, m: 60_000, h: 3_600_000,
};
const SIZE_RE = /^([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)$/;

/** Show a value in an error message: strings quoted, objects by their type. */
export function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  return typeof value === 'undefined' ? 'nothing' : `a ${typeof value}`;
}

function checkRange(n: number, min: number | undefined, max: number | undefined, unit: string): Parsed<number> {
  const u = unit === '' ? '' : ` ${unit}`;
  if (min !== undefined && n < min) return fail(CONFIG_ERRORS.RANGE, `${n}${u} is below the minimum: expected at least ${min}${u}`);
  if (max !== undefined && n > max) return fail(CONFIG_ERRORS.RANGE, `${n}${u} is above the maximum: expected at most ${max}${u}`);
  return ok(n);
}

export interface NumberRule {
  readonly min?: number;
  readonly max?: number;
}

/** A non-negative integer; strings must be plain decimal digits. */
export function parseInteger(value: unknown, rule: NumberRule, unit = ''): Parsed<number> {
  let n: number;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\s*[0-9]+\s*$/.test(value)) n = Number(value);
  else if (typeof value === 'string' && /^\s*-[0-9]+\s*$/.test(value)) n = Number(value);
  else return fail(CONFIG_ERRORS.TYPE, `expected an integer${unit === '' ? '' : ` (${unit})`}, got ${show(value)}`);
  if (!Number.isSafeInteger(n)) return fail(CONFIG_ERRORS.TYPE, `expected an integer, got ${show(value)}`);
  return checkRange(n, rule.min, rule.max, unit);
}

/** Bytes: an integer, or a number with a binary suffix (`64k`, `64KiB`, `1.5MiB`, `1g`). */
export function parseBytes(value: unknown, rule: NumberRule): Parsed<number> {
  if (typeof value === 'number') return parseInteger(value, rule, 'bytes');
  const m = typeof value === 'string' ? SIZE_RE.exec(value.trim()) : null;
  const mult = m === null ? undefined : BYTE_UNITS[(m[2] ?? '').toLowerCase()];
  if (m === null || mult === undefined) {
    return fail(CONFIG_ERRORS.TYPE, `expected a size in bytes (an integer, or with a suffix K/KiB, M/MiB, G/GiB), got ${show(value)}`);
  }
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) return fail(CONFIG_ERRORS.TYPE, `expected a whole number of bytes, got ${show(value)}`);
  return checkRange(n, rule.min, rule.max, 'bytes');
}

/** Milliseconds: an integer, or a number with a unit (`500ms`, `30s`, `2m`, `1h`, `1.5s`). */
export function parseDuration(value: unknown, rule: NumberRule): Parsed<number> {
  if (typeof value === 'number') return parseInteger(value, rule, 'ms');
  const m = typeof value === 'string' ? SIZE_RE.exec(value.trim()) : null;
  const mult = m === null ? undefined : DURATION_UNITS[(m[2] ?? '').toLowerCase()];
  if (m === null || mult === undefined) {
    return fail(CONFIG_ERRORS.TYPE, `expected a duration in milliseconds (an integer, or with a unit ms, s, m, h), got ${show(value)}`);
  }
  const n = Number(m[1]) * mult;
  if (!Number.isSafeInteger(n)) return fail(CONFIG_ERRORS.TYPE, `expected a whole number of milliseconds, got ${show(value)}`);
  return checkRange(n, rule.min, rule.max, 'ms');
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/** Booleans; environment variables and flags also accept 1/0, yes/no, on/off. */
export function parseBoolean(value: unknown): Parsed<boolean> {
  if (typeof value === 'boolean') return ok(value);
  if (typeof value === 'string') {
    const w = value.trim().toLowerCase();
    if (TRUE_WORDS.has(w)) return ok(true);
    if (FALSE_WORDS.has(w)) return ok(false);
  }
  return fail(CONFIG_ERRORS.TYPE, `expected true or false, got ${show(value)}`);
}

export function parseChoice<T extends string>(value: unknown, choices: readonly T[]): Parsed<T> {
  if (typeof value === 'string' && (choices as readonly string[]).includes(value)) return ok(value as T);
  const code = typeof value === 'string' ? CONFIG_ERRORS.RANGE : CONFIG_ERRORS.TYPE;
  return fail(code, `expected one of ${choices.join(', ')}; got ${show(value)}`);
}

/** A human reading of a byte count for docs and summaries: 65536 → "64 KiB". */
export function formatBytes(n: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (n >= size && n % size === 0) return `${n / size} ${unit}`;
  }
  return `${n} B`;
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['h', 3_600_000], ['min', 60_000], ['s', 1000]] as const) {
    if (ms >= size && ms % size === 0) return `${ms / size} ${unit}`;
  }
  return `${ms} ms`;
}
