// A Dockerfile and .dockerignore reader for the tests, from a reviewer's side: the instructions as
// Docker's parser groups them, a rule-based lint (hadolint is not in Debian), and the ignore matcher.

/** One instruction: keyword upper-cased, leading `--flag=value`s split off, the rest as written. */
export interface Instruction {
  readonly keyword: string;
  readonly flags: Readonly<Record<string, string>>;
  readonly rest: string;
  /** 1-based line of the keyword. */
  readonly line: number;
}

export interface Stage {
  readonly name: string | undefined;
  /** The image, with global ARG defaults expanded. */
  readonly base: string;
  readonly instructions: readonly Instruction[];
}

export interface Dockerfile {
  /** ARGs declared before the first FROM, with their defaults. */
  readonly globalArgs: ReadonlyMap<string, string>;
  readonly stages: readonly Stage[];
}

/** Docker's logical lines: comments dropped, `\` continuations joined (comment lines inside skipped). */
function logicalLines(text: string): Array<{ text: string; line: number }> {
  const out: Array<{ text: string; line: number }> = [];
  const lines = text.split('\n');
  let current: { text: string; line: number } | undefined;
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '');
    const trimmed = raw.trim();
    if (trimmed.startsWith('#') || (trimmed === '' && current === undefined)) continue;
    const continues = /\\\s*$/.test(raw);
    const body = continues ? raw.replace(/\\\s*$/, '') : raw;
    if (current === undefined) current = { text: body.trim(), line: i + 1 };
    else current.text += ` ${body.trim()}`;
    if (!continues) {
      out.push(current);
      current = undefined;
    }
  }
  if (current !== undefined) out.push(current);
  return out;
}

function splitFlags(args: string): { flags: Record<string, string>; rest: string } {
  const flags: Record<string, string> = {};
  let rest = args.trim();
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest);
    if (m === null) break;
    flags[m[1] as string] = m[2] ?? 'true';
    rest = rest.slice(m[0].length);
  }
  return { flags, rest };
}

/** `${NAME}` and `$NAME` from `vars`; unknown names expand to ''. */
export function expand(text: string, vars: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, a: string | undefined, b: string | undefined) => vars.get(a ?? b ?? '') ?? '');
}

export function parseDockerfile(text: string): Dockerfile {
  const globalArgs = new Map<string, string>();
  const stages: Array<{ name: string | undefined; base: string; instructions: Instruction[] }> = [];
  for (const { text: lineText, line } of logicalLines(text)) {
    const m = /^(\S+)\s*(.*)$/.exec(lineText);
    if (m === null) continue;
    const keyword = (m[1] as string).toUpperCase();
    const { flags, rest } = splitFlags(m[2] ?? '');
    const ins: Instruction = { keyword, flags, rest, line };
    if (keyword === 'ARG' && stages.length === 0) {
      const [name, value] = rest.split('=', 2);
      globalArgs.set((name ?? '').trim(), (value ?? '').trim());
      continue;
    }
    if (keyword === 'FROM') {
      const parts = rest.split(/\s+/);
      const as = parts.findIndex((p) => p.toUpperCase() === 'AS');
      stages.push({ name: as >= 0 ? parts[as + 1] : undefined, base: expand(parts[0] ?? '', globalArgs), instructions: [ins] });
      continue;
    }
    const stage = stages[stages.length - 1];
    if (stage === undefined) throw new Error(`line ${line}: ${keyword} before the first FROM`);
    stage.instructions.push(ins);
  }
  return { globalArgs, stages };
}

/** An exec-form argument list (`["a", "b"]`), or undefined for the shell form. */
export function execForm(rest: string): string[] | undefined {
  if (!rest.trim().startsWith('[')) return undefined;
  const v = JSON.parse(rest) as unknown;
  if (!Array.isArray(v) || !v.every((x): x is string => typeof x === 'string')) throw new Error(`not a JSON string array: ${rest}`);
  return v;
}

/** `ENV A=1 B="two words"` (and the legacy `ENV A value`) as pairs. */
export function parseEnv(rest: string): Array<[string, string]> {
  const legacy = /^([A-Za-z_][A-Za-z0-9_]*)\s+([^=].*)$/.exec(rest);
  if (legacy !== null && !/^[A-Za-z_][A-Za-z0-9_]*=/.test(rest)) return [[legacy[1] as string, (legacy[2] as string).trim()]];
  const out: Array<[string, string]> = [];
  const re = /([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  for (const m of rest.matchAll(re)) {
    let v = m[2] ?? '';
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out.push([m[1] as string, v]);
  }
  return out;
}

/** Every ENV of a stage, in order, later ones winning. */
export function stageEnv(stage: Stage): Map<string, string> {
  const env = new Map<string, string>();
  for (const ins of stage.instructions) if (ins.keyword === 'ENV') for (const [k, v] of parseEnv(ins.rest)) env.set(k, v);
  return env;
}

export function finalStage(df: Dockerfile): Stage {
  const s = df.stages[df.stages.length - 1];
  if (s === undefined) throw new Error('no FROM');
  return s;
}

export function last(stage: Stage, keyword: string): Instruction | undefined {
  return stage.instructions.filter((i) => i.keyword === keyword).at(-1);
}

// ——— lint ———

/** Rule ids, after hadolint's where one exists. */
export const RULES = {
  MULTI_STAGE: 'multi-stage',
  TAGGED_BASE: 'tagged-base',
  SLIM_BASE: 'slim-base',
  NON_ROOT: 'non-root-user',
  HEALTHCHECK: 'healthcheck',
  STOPSIGNAL: 'stopsignal-sigterm',
  EXPOSE_FASTCGI: 'expose-9000',
  NPM_CI: 'npm-ci-not-install',
  OMIT_DEV: 'runtime-omit-dev',
  COPY_NOT_ADD: 'copy-not-add',
  EXEC_FORM: 'exec-form-entrypoint',
  ABSOLUTE_WORKDIR: 'absolute-workdir',
  NO_CD: 'no-cd-in-run',
  NO_SUDO: 'no-sudo',
  BUILD_OUTPUT_ONLY: 'runtime-copies-build-output',
  KNOWN_KEYWORDS: 'known-keywords',
} as const;

const KNOWN = new Set(['ARG', 'FROM', 'WORKDIR', 'COPY', 'RUN', 'ENV', 'USER', 'EXPOSE', 'STOPSIGNAL', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD', 'LABEL']);

/** The rules the Dockerfile breaks, each once, in RULES order. */
export function lintDockerfile(text: string): string[] {
  const df = parseDockerfile(text);
  const broken = new Set<string>();
  const fin = finalStage(df);
  const all = df.stages.flatMap((s) => s.instructions);
  const runs = (s: Stage): string[] => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.rest);

  if (df.stages.length < 2 || !fin.instructions.some((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined && df.stages.some((s) => s.name === i.flags['from']))) {
    broken.add(RULES.MULTI_STAGE);
  }
  for (const s of df.stages) {
    // hadolint DL3006/DL3007: an explicit tag that names a version: not `latest`, nor the other
    // floating tags (`lts-slim`, `current-slim`) that change major version under you.
    if (df.stages.some((o) => o.name === s.base)) continue;
    const tag = /^[^@]+:([^:@/]+)(?:@sha256:[0-9a-f]{64})?$/.exec(s.base)?.[1];
    if (tag === undefined || !/^[0-9]/.test(tag)) broken.add(RULES.TAGGED_BASE);
    if (!/slim|alpine|distroless/.test(s.base)) broken.add(RULES.SLIM_BASE);
  }
  const user = last(fin, 'USER')?.rest.split(':')[0]?.trim();
  if (user === undefined || user === 'root' || user === '0') broken.add(RULES.NON_ROOT);
  const hc = last(fin, 'HEALTHCHECK');
  const hcCmd = hc === undefined ? undefined : /^CMD\s+(.*)$/i.exec(hc.rest)?.[1];
  if (hc === undefined || hcCmd === undefined || execForm(hcCmd) === undefined || hc.flags['timeout'] === undefined) broken.add(RULES.HEALTHCHECK);
  if (last(fin, 'STOPSIGNAL')?.rest.trim() !== 'SIGTERM') broken.add(RULES.STOPSIGNAL);
  const exposed = fin.instructions.filter((i) => i.keyword === 'EXPOSE').flatMap((i) => i.rest.split(/\s+/)).map((p) => p.replace(/\/tcp$/, ''));
  if (!exposed.includes('9000')) broken.add(RULES.EXPOSE_FASTCGI);
  // hadolint DL3016-ish: a lockfile install, reproducible; `npm install` may rewrite the lock.
  if (all.some((i) => i.keyword === 'RUN' && /\bnpm\s+(install|i)\b/.test(i.rest)) || !df.stages.some((s) => runs(s).some((r) => /\bnpm\s+ci\b/.test(r)))) {
    broken.add(RULES.NPM_CI);
  }
  if (!runs(fin).some((r) => /\bnpm\s+ci\b.*--omit=dev/.test(r))) broken.add(RULES.OMIT_DEV);
  if (all.some((i) => i.keyword === 'ADD')) broken.add(RULES.COPY_NOT_ADD);
  // hadolint DL3025: exec form, so node is PID 1 and receives the STOPSIGNAL itself.
  const entry = last(fin, 'ENTRYPOINT') ?? last(fin, 'CMD');
  if (entry === undefined || execForm(entry.rest) === undefined || fin.instructions.some((i) => i.keyword === 'CMD' && execForm(i.rest) === undefined)) {
    broken.add(RULES.EXEC_FORM);
  }
  if (all.some((i) => i.keyword === 'WORKDIR' && !i.rest.trim().startsWith('/'))) broken.add(RULES.ABSOLUTE_WORKDIR);
  if (all.some((i) => i.keyword === 'RUN' && /(^|&&|;)\s*cd\s/.test(i.rest))) broken.add(RULES.NO_CD);
  if (all.some((i) => i.keyword === 'RUN' && /\bsudo\b/.test(i.rest))) broken.add(RULES.NO_SUDO);
  // The runtime stage takes the compiled output from the build stage and no sources.
  const fromBuild = fin.instructions.filter((i) => i.keyword === 'COPY' && i.flags['from'] !== undefined).map((i) => i.rest);
  const copiesSources = fin.instructions.some((i) => i.keyword === 'COPY' && i.flags['from'] === undefined && /(^|\s)\.?\/?(src|protocols|test)\/?(\s|$)/.test(i.rest));
  if (!fromBuild.some((r) => /\bdist\/?\s/.test(r)) || copiesSources) broken.add(RULES.BUILD_OUTPUT_ONLY);
  if (all.some((i) => !KNOWN.has(i.keyword))) broken.add(RULES.KNOWN_KEYWORDS);
  return Object.values(RULES).filter((r) => broken.has(r));
}

// ——— .dockerignore ———

interface IgnoreRule {
  readonly negate: boolean;
  readonly pattern: string;
  readonly re: RegExp;
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
      if (glob[i + 1] === '/') i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** The rules of a .dockerignore (Go filepath.Match plus `**`, as Docker's patternmatcher reads them). */
export function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const negate = line.startsWith('!');
    const pattern = (negate ? line.slice(1) : line).replace(/^\/+/, '').replace(/\/+$/, '');
    rules.push({ negate, pattern, re: globToRegExp(pattern) });
  }
  return rules;
}

/**
 * Whether a context path (relative, `/`-separated) is left out of the build context: a rule matches a
 * path or any of its parent directories, and the last matching rule wins.
 */
export function isIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  const parts = path.split('/');
  const prefixes = parts.map((_p, i) => parts.slice(0, i + 1).join('/'));
  let ignored = false;
  for (const r of rules) if (prefixes.some((p) => r.re.test(p))) ignored = !r.negate;
  return ignored;
}

/** Whether some negation rule could bring back a path under `dir` (so an ignored dir must still be walked). */
export function mayReinclude(rules: readonly IgnoreRule[], dir: string): boolean {
  return rules.some((r) => r.negate && (r.pattern.startsWith(`${dir}/`) || r.pattern.startsWith('**')));
}
