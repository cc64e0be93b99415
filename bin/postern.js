#!/usr/bin/env node
// The npm bin: runs the compiled CLI (built by `npm ci` through the `prepare` script).
import { main } from '../dist/src/cli.js';

main(process.argv).catch((err) => {
  process.stderr.write(`postern: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
