// A single-process reload (SIGHUP) re-imports the mounted modules: a CommonJS entry must load its
// file again like an ES module does, both a script served through the listen() takeover (which must
// listen again) and a module that exports its app. Each fixture is written to a temporary directory
// and rewritten before the SIGHUP, so the answer after the reload shows which code runs.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fcgiRequest } from '../helpers/clients.ts';
import { fcgiParams } from '../helpers/servers.ts';
import { freePort } from '../helpers/front/ports.ts';
import { startCli, type Cli } from './hardening-helpers.ts';

const running: Cli[] = [];
const dirs: string[] = [];
after(async () => {
  await Promise.all(running.map((c) => c.stop()));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const listening = (answer: string): string => `const http = require('node:http');
http.createServer((req, res) => { res.setHeader('content-type', 'text/plain'); res.end(${JSON.stringify(answer)}); }).listen(Number(process.env.PORT));
`;
// A Fetch handler: one parameter, so postern recognises it without a kind.
const exported = (answer: string): string => `module.exports = (request) => new Response(${JSON.stringify(answer)}, { headers: { 'content-type': 'text/plain' } });
`;

async function get(port: number, path: string): Promise<{ status: number; body: string }> {
  const r = await fcgiRequest({ port }, { params: fcgiParams('', [['REQUEST_URI', path], ['PATH_INFO', path]]) });
  return { status: r.status, body: r.body.toString() };
}

test('single process, SIGHUP: CommonJS modules are loaded again, a taken-over script listens again and an exported app answers with its new code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'postern-cjs-reload-'));
  dirs.push(dir);
  const script = join(dir, 'server.cjs');
  const app = join(dir, 'app.cjs');
  writeFileSync(script, listening('script v1'));
  writeFileSync(app, exported('app v1'));
  const cli = startCli(['--fastcgi', '127.0.0.1:0', '--mount', `/s=${script}`, '--mount', `/a=${app}#default`, '--shutdown-timeout-ms', '500'],
    { env: { PORT: String(await freePort()) } });
  running.push(cli);
  const port = (await cli.listening(['fastcgi'])).get('fastcgi') ?? 0;
  assert.deepEqual(await get(port, '/s/'), { status: 200, body: 'script v1' });
  assert.deepEqual(await get(port, '/a/'), { status: 200, body: 'app v1' });

  writeFileSync(script, listening('script v2'));
  writeFileSync(app, exported('app v2'));
  cli.child.kill('SIGHUP');
  await cli.waitFor('reloaded (same listeners');
  assert.deepEqual(await get(port, '/s/'), { status: 200, body: 'script v2' });
  assert.deepEqual(await get(port, '/a/'), { status: 200, body: 'app v2' });
  assert.doesNotMatch(cli.output(), /reload (failed|refused)/i);
  cli.child.kill('SIGTERM');
  assert.equal(await cli.exited, 0, cli.output());
});
