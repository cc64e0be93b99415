// The listen() takeover under the master (`--workers 2`), behind real nginx over FastCGI: an
// Express script calling app.listen(PORT) is served by both workers, a SIGHUP reload under a light,
// bounded GET and POST load loses no request, the old workers' servers hear 'close' (their apps'
// shutdown hooks) once drained, and nothing ever binds PORT.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startNginx, type FrontServer, type NginxMode } from '../helpers/front/nginx.ts';
import { freePort } from '../helpers/front/ports.ts';
import { problemLines, runLoad } from '../helpers/reload-load.ts';
import { ROOT, sleep, startCli, type Cli } from './hardening-helpers.ts';

const APP = join(ROOT, 'test', 'fixtures', 'takeover', 'express-workers.cjs');
const markers = mkdtempSync(join(tmpdir(), 'postern-takeover-workers-'));
let cli: Cli | undefined;
let nginx: FrontServer<NginxMode> | undefined;
after(async () => {
  await nginx?.stop();
  await cli?.stop();
  rmSync(markers, { recursive: true, force: true });
});

/** True when something accepts connections on 127.0.0.1:port. */
function bound(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => { resolve(false); });
  });
}

/** The worker pids that answer `count` GETs, eight at a time, each on its own connection. */
async function pids(url: string, count: number): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let i = 0; i < count; i += 8) {
    const bodies = await Promise.all(Array.from({ length: 8 }, async () => (await fetch(url, { headers: { connection: 'close' } })).text()));
    for (const b of bodies) {
      const m = /^ok (\d+) 0$/.exec(b);
      assert.ok(m !== null, b);
      seen.add(Number(m[1]));
    }
  }
  return seen;
}

test('--workers 2: an Express app.listen() script is served by both workers, survives a reload under load, and never binds its port', { timeout: 120_000 }, async () => {
  const appPort = await freePort();
  cli = startCli(['--workers', '2', '--fastcgi', '127.0.0.1:0', '--mount', `/=${APP}`, '--log-format', 'json', '--heartbeat-interval-ms', '200'],
    { env: { PORT: String(appPort), MARKER_DIR: markers } });
  const fastcgi = (await cli.listening(['fastcgi'], 60_000)).get('fastcgi') ?? 0;
  await cli.waitFor(/postern [^ ]+ ready/, 60_000);
  nginx = await startNginx([{ mode: 'fastcgi', backend: `127.0.0.1:${fastcgi}` }]);
  const site = nginx.sites[0];
  assert.ok(site !== undefined);
  const c = cli;

  // Both workers took the app's server over; each answers.
  const deadline = Date.now() + 20_000;
  const before = await pids(site.url('/who'), 16);
  while (before.size < 2 && Date.now() < deadline) for (const p of await pids(site.url('/who'), 16)) before.add(p);
  assert.equal(before.size, 2, `answers came from ${[...before].join(', ')}`);
  assert.equal((c.output().match(/serving the http\.Server .*express-workers\.cjs listened on/g) ?? []).length, 2);

  // Light load through nginx; PORT is probed all along; one SIGHUP in the middle.
  let stop = false;
  const probes: boolean[] = [];
  const probing = (async () => {
    while (!stop) {
      probes.push(await bound(appPort));
      await sleep(100);
    }
  })();
  const load = runLoad({ name: 'nginx fastcgi', port: site.port }, 2, () => stop);
  try {
    await sleep(500);
    c.child.kill('SIGHUP');
    await c.waitFor(/reloaded: generation/, 60_000);
    // The old workers drain, then close their apps: their servers' 'close' markers appear.
    const drained = Date.now() + 30_000;
    while ([...before].some((p) => !existsSync(join(markers, `express-${p}`))) && Date.now() < drained) await sleep(100);
    await sleep(300);
  } finally {
    stop = true;
  }
  const result = await load;
  await probing;
  assert.deepEqual(result.failures.slice(0, 20), [], `${result.failures.length} failed requests`);
  process.stderr.write(`# nginx fastcgi: ${result.ok} requests under the reload\n`);
  assert.ok(result.ok > 20, `the load ran (${result.ok} requests)`);
  assert.deepEqual(problemLines(nginx.errorLog()), []);
  for (const p of before) assert.ok(existsSync(join(markers, `express-${p}`)), `worker ${p}'s server heard 'close'`);
  assert.ok(probes.length > 5 && probes.every((b) => !b), `port ${appPort} was bound at some probe`);

  // The new generation serves; the old pids are gone.
  const afterReload = await pids(site.url('/who'), 16);
  for (const p of afterReload) assert.ok(!before.has(p), `pid ${p} is of the old generation`);
  assert.match(c.output(), /closed the apps \(mount \/\)/);

  c.child.kill('SIGTERM');
  assert.equal(await c.exited, 0, c.output().slice(-3000));
  for (const p of afterReload) assert.ok(existsSync(join(markers, `express-${p}`)), `worker ${p}'s server heard 'close' on SIGTERM`);
  assert.equal(await bound(appPort), false);
});
