// The option table as commander flags: one `Option` per entry, with its POSTERN_* variable, a value
// parser that rejects bad input while parsing, and help grouped by section.

import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { parseAddress } from '../server/address.ts';
import { parseCidr } from '../server/access.ts';
import { GROUP_TITLES, OPTION_LIST } from './options.ts';
import type { OptionName, OptionSpec } from './options.ts';
import { parseBytes, parseChoice, parseDuration, parseInteger, formatBytes, formatDuration } from './values.ts';
import type { Parsed } from './values.ts';
import { parseMountSpec, normalizePrefix } from './load.ts';
import type { RawValues } from './load.ts';
import type { OptionSource } from './errors.ts';

/** The help line's default, from the table (commander's own `.default()` is left unset on purpose). */
export function defaultText(spec: OptionSpec): string {
  if (spec.defaultText !== undefined) return spec.defaultText;
  const d = spec.default;
  if (d === undefined) return 'unset';
  if (typeof d === 'number' && spec.type === 'bytes') return d === 0 ? '0' : `${d} (${formatBytes(d)})`;
  if (typeof d === 'number' && spec.type === 'duration') return d === 0 ? '0 (off)' : `${d} (${formatDuration(d)})`;
  if (Array.isArray(d)) return d.length === 0 ? 'none' : d.join(', ');
  return typeof d === 'object' ? JSON.stringify(d) : String(d);
}

function throwing<T>(p: Parsed<T>): T {
  if (!p.ok) throw new InvalidArgumentError(p.message);
  return p.value;
}

/** Early checks while commander parses; resolveConfig re-checks every value with its full context. */
function argParser(spec: OptionSpec): (value: string, previous: unknown) => unknown {
  switch (spec.type) {
    case 'integer':
      return (v) => {
        if (spec.words?.includes(v.trim()) === true) return v.trim();
        const p = parseInteger(v, spec, spec.unit === 'MiB' ? 'MiB' : '');
        if (!p.ok && spec.words !== undefined) throw new InvalidArgumentError(`${p.message} (or ${spec.words.join(', ')})`);
        return throwing(p);
      };
    case 'bytes': return (v) => throwing(parseBytes(v, spec));
    case 'duration': return (v) => throwing(parseDuration(v, spec));
    case 'enum': return (v) => throwing(parseChoice(v, spec.choices ?? []));
    case 'list':
      return (v, previous) => {
        // Commander hands environment values through here too: a list there is comma-separated.
        const items = v.split(/[\s,]+/).filter((x) => x.length > 0);
        for (const item of items) checkItem(spec, item);
        return [...(Array.isArray(previous) ? previous as unknown[] : []), ...items];
      };
    case 'string':
      return (v) => {
        if (spec.format === 'address') checkItem(spec, v);
        return v;
      };
    case 'boolean':
      return (v) => v;
  }
}

function checkItem(spec: OptionSpec, item: string): void {
  if (spec.format === 'address') {
    try { parseAddress(item); } catch (err) { throw new InvalidArgumentError((err as Error).message); }
  } else if (spec.format === 'cidr') {
    try { parseCidr(item); } catch (err) { throw new InvalidArgumentError((err as Error).message); }
  } else if (spec.format === 'mount') {
    const m = throwing(parseMountSpec(item));
    throwing(normalizePrefix(m.prefix));
  }
}

/** Adds every table option to `cmd` (booleans get a `--no-` twin so a flag can undo env or file). */
export function addTableOptions(cmd: Command): Command {
  for (const spec of OPTION_LIST) {
    const group = `${GROUP_TITLES[spec.group]}:`;
    const desc = `${firstSentence(spec.help)} (default: ${defaultText(spec)})`;
    if (spec.type === 'boolean') {
      cmd.addOption(new Option(spec.flag, desc).env(spec.env).helpGroup(group));
      cmd.addOption(new Option(`--no-${spec.flag.slice(2)}`, `Turn ${spec.flag} off`).hideHelp());
      continue;
    }
    const opt = new Option(`${spec.flag} <${spec.valueName ?? 'VALUE'}>`, desc)
      .env(spec.env)
      .argParser(argParser(spec))
      .helpGroup(group);
    if (spec.type === 'enum' && spec.choices !== undefined) opt.choices(spec.choices);
    cmd.addOption(opt);
  }
  return cmd;
}

// Help shows the first sentence; a sentence ends at `.` or `:` before a capital (so `e.g. 0660` stays whole).
function firstSentence(help: string): string {
  const m = /^(.*?)[.:](?=\s+[A-Z`]|$)/.exec(help);
  return m?.[1] ?? help;
}

const ATTRIBUTE = new Map<OptionName, string>(OPTION_LIST.map((o) => [o.name, new Option(o.flag).attributeName()]));

/** Commander's key for an option (`--max-worker-rss-mib` → `maxWorkerRssMib`, the table says `maxWorkerRssMiB`). */
export function commanderKey(name: OptionName): string {
  return ATTRIBUTE.get(name) ?? name;
}

/**
 * The values the command line itself set, and where commander says each came from; env-sourced
 * values are left to resolveConfig, which reads the environment with the same rules as a file.
 */
export function commandLineValues(cmd: Command): { flags: RawValues; sources: Partial<Record<OptionName, OptionSource>> } {
  const flags: RawValues = {};
  const sources: Partial<Record<OptionName, OptionSource>> = {};
  const opts = cmd.opts<Record<string, unknown>>();
  for (const spec of OPTION_LIST) {
    const key = commanderKey(spec.name);
    const source = cmd.getOptionValueSource(key) as OptionSource | 'implied' | undefined;
    if (source === undefined || source === 'implied') continue;
    sources[spec.name] = source;
    if (source === 'cli') flags[spec.name] = opts[key];
  }
  return { flags, sources };
}
