// Renders the example configs in config/nginx and config/apache (the files users copy) into the
// configs the tests run, by substituting their {{PLACEHOLDER}}s.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './root.ts';

export function renderTemplate(relPath: string, values: Readonly<Record<string, string>>): string {
  const text = readFileSync(join(repoRoot(), 'config', relPath), 'utf8');
  const missing: string[] = [];
  const out = text.replace(/\{\{([A-Z_]+)\}\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) {
      missing.push(key);
      return '';
    }
    return v;
  });
  if (missing.length > 0) throw new Error(`config/${relPath}: no value for ${[...new Set(missing)].join(', ')}`);
  return out;
}
