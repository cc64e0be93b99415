// The sidecar examples, from the cluster's side: the Kubernetes pod (config/k8s) and the compose
// project (config/compose) checked for agreement between nginx and postern, then each run for real —
// nginx with the shipped server block, postern with the container's environment — with requests
// through nginx and the probes the manifests declare.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../helpers/front/root.ts';
import { freePort } from '../helpers/front/ports.ts';
import { startDaemon, type Daemon } from '../helpers/front/daemon.ts';
import { resolveConfig } from '../../src/config/load.ts';
import { parseDuration } from '../../src/config/values.ts';
import { OPTIONS } from '../../src/config/options.ts';
import { finalStage, parseDockerfile, stageEnv } from '../unit/dockerfile-parse.ts';
import { cleanEnv, posternCommand, retry, start, type Running } from './ship-helpers.ts';

const root = repoRoot();
const read = (p: string): string => readFileSync(join(root, p), 'utf8');

interface EnvVar { name: string; value?: string }
interface Probe { httpGet?: { path: string; port: string | number }; tcpSocket?: { port: string | number } }
interface Container {
  name: string;
  image: string;
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: { runAsNonRoot?: boolean };
}
interface PodSpec {
  terminationGracePeriodSeconds?: number;
  volumes: Array<{ name: string; emptyDir?: object; configMap?: { name: string } }>;
  containers: Container[];
}

const kustomization = parse(read('config/k8s/kustomization.yaml')) as { resources: string[]; configMapGenerator: Array<{ name: string; files: string[] }> };
const manifests = kustomization.resources.flatMap((f) => parseAllDocuments(read(`config/k8s/${f}`)).map((d) => d.toJS() as { kind: string; spec: Record<string, unknown> }));
const deployment = manifests.find((m) => m.kind === 'Deployment');
const pod = (deployment?.spec['template'] as { spec: PodSpec } | undefined)?.spec;
const containerNamed = (name: string): Container => {
  const c = pod?.containers.find((x) => x.name === name);
  assert.ok(c !== undefined, `container ${name}`);
  return c;
};
const envOf = (c: Container): Record<string, string> => Object.fromEntries((c.env ?? []).map((e) => [e.name, e.value ?? '']));
const portOf = (c: Container, port: string | number): number => (typeof port === 'number' ? port : c.ports?.find((p) => p.name === port)?.containerPort ?? NaN);

const compose = parse(read('config/compose/compose.yaml')) as {
  services: Record<string, {
    build?: { context: string; dockerfile: string };
    image: string;
    environment?: Record<string, string>;
    expose?: string[];
    ports?: string[];
    volumes?: string[];
    healthcheck?: { test: string[]; timeout: string };
    depends_on?: Record<string, { condition: string }>;
    stop_grace_period?: string;
  }>;
};

let scratch = '';
const running: Running[] = [];
const daemons: Daemon[] = [];
let postern: ReturnType<typeof posternCommand> | undefined;

before(() => {
  scratch = mkdtempSync(join(tmpdir(), 'postern-sidecar-'));
  chmodSync(scratch, 0o755);
  postern = posternCommand();
});

after(async () => {
  for (const r of running) await r.stop();
  for (const d of daemons) await d.stop();
  postern?.dispose();
  if (scratch !== '') rmSync(scratch, { recursive: true, force: true });
});

/** nginx with one shipped server block (conf.d/default.conf), from a private prefix. */
async function startNginx(name: string, serverBlock: string, port: number): Promise<void> {
  const dir = join(scratch, `nginx-${name}`);
  mkdirSync(dir);
  for (const f of ['fastcgi_params', 'mime.types']) copyFileSync(join('/etc/nginx', f), join(dir, f));
  for (const sub of ['body', 'fastcgi', 'proxy', 'scgi', 'uwsgi']) mkdirSync(join(dir, sub));
  // The official image's nginx.conf includes conf.d/*.conf inside http {}; so does this one.
  writeFileSync(join(dir, 'default.conf'), serverBlock);
  writeFileSync(join(dir, 'nginx.conf'), `${process.getuid?.() === 0 ? 'user www-data;\n' : ''}worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path ${dir}/body;
    fastcgi_temp_path ${dir}/fastcgi;
    proxy_temp_path ${dir}/proxy;
    scgi_temp_path ${dir}/scgi;
    uwsgi_temp_path ${dir}/uwsgi;
    include ${dir}/default.conf;
}
`);
  daemons.push(await startDaemon({ name: 'nginx', command: 'nginx', args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;'], port, errorLog: join(dir, 'error.log') }));
}

function startPostern(env: Record<string, string>): Running {
  assert.ok(postern !== undefined);
  const r = start(postern.command, postern.args, { cwd: scratch, env: cleanEnv(env) });
  running.push(r);
  return r;
}

async function ready(r: Running): Promise<void> {
  await retry(() => {
    if (r.child.exitCode !== null) throw new Error('postern exited');
    return /"message":"postern [^ ]+ ready /.test(r.stderr()) ? true : undefined;
  }, 20_000, () => `postern never got ready:\n${r.stderr()}`);
}

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, text: await res.text() };
}

// ——— Kubernetes ———

test('the pod: nginx and postern share the socket in an emptyDir, and the probes hit postern\'s health path', () => {
  assert.ok(pod !== undefined);
  const p = containerNamed('postern');
  const n = containerNamed('nginx');
  const env = envOf(p);
  const shared = pod.volumes.find((v) => v.emptyDir !== undefined);
  assert.ok(shared !== undefined);
  const mountIn = (c: Container): string | undefined => c.volumeMounts?.find((m) => m.name === shared.name)?.mountPath;
  assert.ok(mountIn(p) !== undefined && mountIn(p) === mountIn(n), 'both containers mount the emptyDir at one path');
  const socket = /^unix:(.+)$/.exec(env['POSTERN_FASTCGI'] ?? '')?.[1];
  assert.ok(socket !== undefined && socket.startsWith(`${mountIn(p) ?? ''}/`), `${socket ?? ''} is in the shared volume`);
  const nginxConf = read('config/k8s/nginx.conf');
  assert.match(nginxConf, new RegExp(`server unix:${socket.replace(/[.]/g, '\\.')};`));
  // The generated ConfigMap is the file the nginx container reads as conf.d/default.conf.
  const cm = kustomization.configMapGenerator.find((g) => g.files.includes('default.conf=nginx.conf'));
  assert.ok(cm !== undefined && pod.volumes.some((v) => v.configMap?.name === cm.name));

  const config = resolveConfig({ env, cwd: '/app', checkPaths: false });
  assert.deepEqual(config.listeners.map((l) => l.protocol), ['fastcgi']);
  const statusPort = Number(/:(\d+)$/.exec(config.statusListen ?? '')?.[1]);
  for (const probe of [p.readinessProbe, p.livenessProbe, p.startupProbe]) {
    assert.ok(probe?.httpGet !== undefined);
    assert.equal(probe.httpGet.path, config.pingPath);
    assert.equal(portOf(p, probe.httpGet.port), statusPort);
  }
  // nginx is ready when postern's health path answers through it.
  assert.match(nginxConf, new RegExp(`location = ${n.readinessProbe?.httpGet?.path ?? '-'} \\{[^}]*proxy_pass http://127\\.0\\.0\\.1:${statusPort}${config.pingPath ?? '-'};`));
  // Kubernetes' SIGKILL comes after postern's own graceful-stop deadline.
  assert.ok((pod.terminationGracePeriodSeconds ?? 30) * 1000 > config.shutdownTimeoutMs + config.appCloseTimeoutMs);
  assert.ok(config.shutdownTimeoutMs < OPTIONS.shutdownTimeoutMs.default);
  assert.equal(p.securityContext?.runAsNonRoot, true);
  for (const c of pod.containers) assert.match(c.image, /:[0-9][^:]*$/, `${c.name} has a version tag`);
});

test('the pod runs: requests through nginx over the shared socket, and every declared probe passes', async () => {
  const p = containerNamed('postern');
  const n = containerNamed('nginx');
  const volume = join(scratch, 'k8s-run-postern');
  mkdirSync(volume);
  chmodSync(volume, 0o777);
  const mountPath = p.volumeMounts?.[0]?.mountPath ?? '';
  const statusPort = await freePort();
  const nginxPort = await freePort();
  // The pod's network namespace is this host's loopback: container ports become free loopback ports.
  const toHost = (v: string): string => v.replaceAll(mountPath, volume).replace(/^:9001$/, `127.0.0.1:${statusPort}`);
  const env = Object.fromEntries(Object.entries(envOf(p)).map(([k, v]) => [k, toHost(v)]));
  const server = startPostern(env);
  await ready(server);
  const conf = read('config/k8s/nginx.conf')
    .replaceAll(mountPath, volume)
    .replace(`listen ${portOf(n, 'http')};`, `listen 127.0.0.1:${nginxPort};`)
    .replace('127.0.0.1:9001', `127.0.0.1:${statusPort}`);
  await startNginx('k8s', conf, nginxPort);

  assert.deepEqual(await get(nginxPort, '/'), { status: 200, text: 'Hello World' });
  const par = await get(nginxPort, '/par/a/b?x=1');
  assert.equal(par.status, 200);
  assert.match(par.text, /^Positional arguments\n\na\nb\n\nKeyword arguments\n\nx: 1\n/);
  for (const probe of [p.startupProbe, p.readinessProbe, p.livenessProbe]) {
    assert.equal((await get(statusPort, probe?.httpGet?.path ?? '-')).status, 200);
  }
  assert.equal((await get(nginxPort, n.readinessProbe?.httpGet?.path ?? '-')).status, 200);
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr());
});

// ——— Docker Compose ———

test('compose: nginx reaches postern by service name on its FastCGI port, after postern is healthy', () => {
  const s = compose.services;
  const pt = s['postern'];
  const ng = s['nginx'];
  assert.ok(pt !== undefined && ng !== undefined);
  assert.deepEqual(pt.build, { context: '../..', dockerfile: 'Dockerfile' });
  assert.equal(ng.depends_on?.['postern']?.condition, 'service_healthy');
  // The environment compose gives, over the image's ENV.
  const image = stageEnv(finalStage(parseDockerfile(read('Dockerfile'))));
  const env = { ...Object.fromEntries(image), ...pt.environment };
  const config = resolveConfig({ env, cwd: '/app', checkPaths: false });
  const port = /^:(\d+)$/.exec(config.listeners.find((l) => l.protocol === 'fastcgi')?.address ?? '')?.[1];
  assert.ok(port !== undefined && (pt.expose ?? []).includes(port));
  assert.match(read('config/compose/nginx.conf'), new RegExp(`server postern:${port};`));
  assert.equal(pt.healthcheck?.test[0], 'CMD');
  assert.deepEqual(pt.healthcheck.test.slice(1, 4), ['node', '/app/bin/postern.js', 'health']);
  // compose's SIGKILL comes after postern's graceful stop.
  const grace = parseDuration(pt.stop_grace_period ?? '10s', OPTIONS.shutdownTimeoutMs);
  assert.ok(grace.ok && grace.value > config.shutdownTimeoutMs + config.appCloseTimeoutMs);
  assert.ok(ng.volumes?.includes('./nginx.conf:/etc/nginx/conf.d/default.conf:ro'));
});

test('compose runs: nginx over keep-alive FastCGI to postern with the image and compose environment', async () => {
  const s = compose.services;
  const fcgiPort = await freePort();
  const statusPort = await freePort();
  const nginxPort = await freePort();
  const image = stageEnv(finalStage(parseDockerfile(read('Dockerfile'))));
  // Each container has its own interfaces; here they share loopback, so each port is a free one.
  const env: Record<string, string> = { ...Object.fromEntries(image), ...s['postern']?.environment, POSTERN_FASTCGI: `127.0.0.1:${fcgiPort}`, POSTERN_STATUS_LISTEN: `127.0.0.1:${statusPort}` };
  const server = startPostern(env);
  await ready(server);
  const conf = read('config/compose/nginx.conf').replace(/server postern:\d+;/, `server 127.0.0.1:${fcgiPort};`).replace('listen 80;', `listen 127.0.0.1:${nginxPort};`);
  await startNginx('compose', conf, nginxPort);
  for (let i = 0; i < 3; i++) assert.deepEqual(await get(nginxPort, '/'), { status: 200, text: 'Hello World' });
  assert.equal((await get(nginxPort, '/par/x')).status, 200);
  server.child.kill('SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr());
});
