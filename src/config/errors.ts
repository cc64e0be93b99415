// Configuration errors as values, from the operator's side: each issue names the key, where it came
// from (flag, environment variable, or file:line:col) and what was expected. Tests assert on `code`.

/** Where a value came from, in commander's vocabulary (`getOptionValueSource`). */
export type OptionSource = 'cli' | 'env' | 'config' | 'default';

export const CONFIG_ERRORS = {
  /** The config file cannot be read (missing, a directory, no permission). */
  FILE: 'POSTERN_ERR_CONFIG_FILE',
  /** The config file is not valid YAML / JSON, or holds a duplicate key. */
  PARSE: 'POSTERN_ERR_CONFIG_PARSE',
  /** A key no option has (the message suggests the nearest one). */
  UNKNOWN_KEY: 'POSTERN_ERR_CONFIG_UNKNOWN_KEY',
  /** A value of the wrong type (a string where a number goes, a malformed size or duration). */
  TYPE: 'POSTERN_ERR_CONFIG_TYPE',
  /** A number outside the option's range, or a word outside its choices. */
  RANGE: 'POSTERN_ERR_CONFIG_RANGE',
  /** A listen address that does not parse, or a unix socket path that cannot work. */
  ADDRESS: 'POSTERN_ERR_CONFIG_ADDRESS',
  /** A mount that does not parse (`PREFIX=MODULE[#EXPORT]`, or a bad mapping in a file). */
  MOUNT: 'POSTERN_ERR_CONFIG_MOUNT',
  /** A file path (socket, log) whose directory does not exist, or a mounted module file that does not. */
  PATH: 'POSTERN_ERR_CONFIG_PATH',
  /** Values that are each fine but impossible together (the same address twice, …). */
  CONFLICT: 'POSTERN_ERR_CONFIG_CONFLICT',
  /** A command-line usage error (unknown flag, missing argument). */
  USAGE: 'POSTERN_ERR_USAGE',
  /** A mounted module failed to import, or lacks the named export. */
  MOUNT_LOAD: 'POSTERN_ERR_MOUNT_LOAD',
} as const;

export type ConfigErrorCode = (typeof CONFIG_ERRORS)[keyof typeof CONFIG_ERRORS];

export interface ConfigIssue {
  readonly code: ConfigErrorCode;
  /** The option or file key path (`maxParamsBytes`, `mount[1].prefix`); '' for the file as a whole. */
  readonly key: string;
  readonly source: OptionSource;
  /** The flag (`--workers`) or environment variable (`POSTERN_WORKERS`) that carried the value. */
  readonly origin?: string;
  /** The config file, when the value came from one. */
  readonly file?: string;
  /** 1-based position in `file`, where known. */
  readonly line?: number;
  readonly col?: number;
  /** What is wrong and what was expected, without the location. */
  readonly message: string;
}

/** `file:line:col`, the flag or the environment variable: the prefix an operator's eye looks for. */
export function issueWhere(issue: ConfigIssue): string {
  if (issue.file !== undefined) {
    const pos = issue.line === undefined ? '' : `:${issue.line}${issue.col === undefined ? '' : `:${issue.col}`}`;
    return `${issue.file}${pos}`;
  }
  return issue.origin ?? issue.key;
}

/** One line: `postern.yaml:3:1: maxParamBytes: unknown key … [POSTERN_ERR_CONFIG_UNKNOWN_KEY]`. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issueWhere(issue);
  const key = issue.file !== undefined && issue.key !== '' ? ` ${issue.key}:` : '';
  return `${where}:${key} ${issue.message} [${issue.code}]`;
}

/** One or more issues found while resolving a configuration; all are reported at once. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const first = issues[0];
    if (first === undefined) throw new TypeError('ConfigError needs at least one issue');
    super(issues.length === 1
      ? `invalid configuration: ${formatIssue(first)}`
      : `invalid configuration (${issues.length} problems):\n${issues.map((i) => `  ${formatIssue(i)}`).join('\n')}`);
    this.name = 'ConfigError';
    this.code = first.code;
    this.issues = Object.freeze([...issues]);
  }
}
