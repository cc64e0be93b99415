// v8Pretenuring (src/v8-tuning.ts), from the operator's side: the real `postern` command, single
// process and with workers, serves an app whose import keeps 1,000,000 object-literal objects
// alive (about 40 MB, more than a young generation holds, so several young-generation GCs run
// while it is imported). node runs with --trace-pretenuring-statistics, which makes
// V8 print a `pretenuring:` line whenever it digests allocation-site feedback, something it does
// only while pretenuring is on. So after the app's own marker line, that process prints none by
// default and some with --v8-pretenuring: the flag postern sets at run time really takes, on the
// Node version under test.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { get, scratch, startCli, type Cli } from './operate-helpers.ts';

const s = scratch();
const running: Cli[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.kill()));
  s.remove();
});

const keeps = join(s.dir, 'keeps.mjs');
writeFileSync(keeps, `
process.stderr.write('keeps: importing in ' + process.pid + '\\n');
const kept = [];
function make(i) { return { i, next: null, tag: 'x' }; }
for (let i = 0; i < 1000000; i++) kept.push(make(i));
const app = (environ, start) => {
  const body = 'kept ' + kept.length;
  start('200 OK', [['Content-Type', 'text/plain'], ['Content-Length', String(body.length)]]);
  return body;
};
Object.defineProperty(app, Symbol.for('postern.appKind'), { value: 'native' });
export default app;
`);

/** Per process that imported the app: the `pretenuring:` lines V8 printed after the import began. */
function pretenuringLinesAfterImport(output: string): Map<number, number> {
  const lines = output.split('\n');
  const counts = new Map<number, number>();
  lines.forEach((line, i) => {
    const m = /^keeps: importing in (\d+)$/.exec(line);
    if (m === null) return;
    const pid = Number(m[1]);
    const prefix = `[${pid}:`;
    counts.set(pid, lines.slice(i + 1).filter((l) => l.startsWith(prefix) && l.includes('pretenuring:')).length);
  });
  return counts;
}

async function run(args: readonly string[], processes: number): Promise<Map<number, number>> {
  const cli = startCli(s, ['--http', '127.0.0.1:0', '--mount', `/=${keeps}`, ...args], { nodeFlags: ['--trace-pretenuring-statistics'] });
  running.push(cli);
  const port = await cli.port('http');
  await cli.waitFor(processes === 1 ? 'mount(s))' : 'ready (master pid');
  for (let i = 0; i < processes * 4; i++) {
    const answer = await get(port, '/');
    assert.equal(answer.text, 'kept 1000000');
  }
  const counts = pretenuringLinesAfterImport(cli.output());
  assert.equal(counts.size, processes, `one import per app process in:\n${cli.output().slice(-4000)}`);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exitWithin(15_000), 0);
  return counts;
}

for (const [mode, args, processes] of [['single process', [], 1], ['two workers', ['--workers', '2'], 2]] as const) {
  test(`${mode}: V8's allocation-site pretenuring is off by default in the processes that run the apps`, async () => {
    const counts = await run(args, processes);
    for (const [pid, n] of counts) assert.equal(n, 0, `process ${pid} digested pretenuring feedback ${n} times after the app's import`);
  });

  test(`${mode}: --v8-pretenuring keeps V8's default (feedback digested while the app imports)`, async () => {
    const counts = await run([...args, '--v8-pretenuring'], processes);
    for (const [pid, n] of counts) assert.ok(n > 0, `process ${pid} printed no pretenuring statistics after the app's import`);
  });
}
