// CIDR parsing and matching (src/server/access.ts), from the access check's side: table cases for
// IPv4, IPv6, IPv4-mapped IPv6 and zones, coded errors for bad entries, and a property test against
// node:net's BlockList as an independent oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BlockList, isIPv4 } from 'node:net';
import fc from 'fast-check';
import { ACCESS_ERRORS, CidrList, clientAccess, inCidr, isLoopback, parseCidr, parseIp, splitWebServerAddrs } from '../../src/server/access.ts';

const MATCHES: ReadonlyArray<{ cidr: string; yes: readonly string[]; no: readonly string[] }> = [
  { cidr: '10.0.0.0/8', yes: ['10.0.0.0', '10.255.255.255', '::ffff:10.1.2.3', '::ffff:a01:203'], no: ['11.0.0.0', '9.255.255.255', '::a01:203', '2001:db8::1'] },
  { cidr: '192.168.1.7', yes: ['192.168.1.7', '::ffff:192.168.1.7'], no: ['192.168.1.8', '192.168.1.6'] },
  { cidr: '172.16.0.0/12', yes: ['172.16.0.1', '172.31.255.255'], no: ['172.32.0.0', '172.15.255.255'] },
  { cidr: '0.0.0.0/0', yes: ['1.2.3.4', '::ffff:127.0.0.1'], no: ['::1', '2001:db8::1'] },
  { cidr: '::1', yes: ['::1', '0:0:0:0:0:0:0:1'], no: ['::2', '127.0.0.1'] },
  { cidr: '2001:db8::/32', yes: ['2001:db8::1', '2001:db8:ffff:ffff:ffff:ffff:ffff:ffff', '2001:DB8::abcd'], no: ['2001:db9::', '2001:db7:ffff::'] },
  { cidr: 'fe80::/10', yes: ['fe80::1', 'febf::1', 'fe80::1%eth0'], no: ['fec0::1', 'fe7f::1'] },
  { cidr: '::ffff:10.0.0.0/104', yes: ['10.9.9.9', '::ffff:10.9.9.9'], no: ['11.0.0.1'] },
  { cidr: '::/0', yes: ['::1', '10.0.0.1', '2001:db8::1'], no: [] },
  { cidr: '10.1.2.3/31', yes: ['10.1.2.2', '10.1.2.3'], no: ['10.1.2.4', '10.1.2.1'] },
];

test('each CIDR matches exactly the addresses it covers, IPv4 also as IPv4-mapped IPv6', () => {
  for (const { cidr, yes, no } of MATCHES) {
    const list = new CidrList([cidr]);
    for (const a of yes) assert.equal(list.allows(a), true, `${cidr} allows ${a}`);
    for (const a of no) assert.equal(list.allows(a), false, `${cidr} refuses ${a}`);
  }
});

test('canonical text: host bits cleared, the prefix kept, a full-length prefix dropped', () => {
  assert.equal(parseCidr('10.1.2.3/8').text, '10.0.0.0/8');
  assert.equal(parseCidr(' 192.168.1.7 ').text, '192.168.1.7');
  assert.equal(parseCidr('192.168.1.7/32').text, '192.168.1.7');
  assert.equal(parseCidr('2001:db8:0:0:1::/32').text, '2001:db8::/32');
  assert.equal(parseCidr('::1').text, '::1');
  assert.equal(parseCidr('::').text, '::');
  assert.equal(parseCidr('1:0:0:2:0:0:0:3').text, '1:0:0:2::3');
  assert.equal(parseCidr('10.0.0.0/8').bits, 104, 'IPv4 prefixes count over the mapped form');
});

test('entries that are not an address or block are refused with a code, naming their option', () => {
  for (const bad of ['', 'localhost', '10.0.0.0/33', '10.0.0.0/-1', '10.0.0.0/', '10.0.0.0/8/8', '::1/129', '010.0.0.1', '1.2.3', '1.2.3.4.5', '256.0.0.1', 'fe80::1%eth0', '::1/ 8', 'x::1']) {
    assert.throws(() => parseCidr(bad), (err: { code?: string }) => err.code === ACCESS_ERRORS.BAD_CIDR, JSON.stringify(bad));
  }
  assert.throws(() => clientAccess(['10.0.0.0/8', 'nope'], undefined), (err: { code?: string; option?: string }) => err.code === ACCESS_ERRORS.BAD_CIDR && err.option === 'allowedClients');
  assert.throws(() => clientAccess([], '10.0.0.1, web1'), (err: { code?: string; option?: string }) => err.code === ACCESS_ERRORS.BAD_CIDR && err.option === 'FCGI_WEB_SERVER_ADDRS');
});

test('the access policy: allowedClients for every protocol, FCGI_WEB_SERVER_ADDRS for FastCGI only, unix peers always in', () => {
  assert.equal(clientAccess(undefined, undefined), undefined);
  assert.equal(clientAccess([], '   '), undefined, 'a blank variable is unset');
  const both = clientAccess(['127.0.0.0/8', '10.0.0.0/8'], '10.0.0.5, 127.0.0.1');
  assert.ok(both !== undefined);
  assert.equal(both.refusal('http', '10.0.0.9'), undefined);
  assert.equal(both.refusal('fastcgi', '10.0.0.9'), 'FCGI_WEB_SERVER_ADDRS');
  assert.equal(both.refusal('fastcgi', '10.0.0.5'), undefined);
  assert.equal(both.refusal('fastcgi', '::ffff:127.0.0.1'), undefined);
  assert.equal(both.refusal('scgi', '192.168.0.1'), 'allowedClients');
  assert.equal(both.refusal('fastcgi', '192.168.0.1'), 'allowedClients');
  for (const p of ['fastcgi', 'scgi', 'uwsgi', 'http'] as const) assert.equal(both.refusal(p, undefined), undefined, `${p} over a unix socket`);
  assert.deepEqual(splitWebServerAddrs(' 199.170.183.28,199.170.183.71 ,,'), ['199.170.183.28', '199.170.183.71']);
});

test('a repeated address is answered from the one-entry cache, and a new one is not', () => {
  const list = new CidrList(['10.0.0.0/8']);
  assert.equal(list.allows('10.0.0.1'), true);
  assert.equal(list.allows('10.0.0.1'), true);
  assert.equal(list.allows('11.0.0.1'), false);
  assert.equal(list.allows('10.0.0.1'), true);
  assert.equal(list.allows('not an ip'), false);
});

test('loopback: 127.0.0.0/8, ::1 and their mapped forms, nothing else', () => {
  for (const a of ['127.0.0.1', '127.9.9.9', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopback(a), true, a);
  for (const a of ['128.0.0.1', '::2', '::', '0.0.0.0', '10.0.0.1', 'localhost', '::ffff:10.0.0.1']) assert.equal(isLoopback(a), false, a);
});

// ---- against node:net's BlockList -----------------------------------------------------------------

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((g) => g.map((x) => x.toString(16)).join(':'));
// Addresses near a block are the interesting ones: share a random-length prefix of its bytes.
function near(base: string, keep: number, noise: number[]): string {
  const b = parseIp(base)!;
  const out = Uint8Array.from(b);
  for (let i = 0; i < 16; i++) if (i * 8 >= keep) out[i] = noise[i]! & 0xff;
  if (isIPv4(base)) return `${out[12]!}.${out[13]!}.${out[14]!}.${out[15]!}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((out[i]! << 8) | out[i + 1]!).toString(16));
  return groups.join(':');
}

test('property: matching agrees with node:net BlockList for random blocks and nearby addresses', () => {
  fc.assert(fc.property(
    fc.oneof(v4.map((a) => ({ a, max: 32 })), v6.map((a) => ({ a, max: 128 }))).chain(({ a, max }) => fc.tuple(fc.constant(a), fc.integer({ min: 0, max }), fc.constant(max))),
    fc.array(fc.nat(255), { minLength: 16, maxLength: 16 }),
    fc.integer({ min: 0, max: 128 }),
    ([addr, prefix, max], noise, keep) => {
      const cidr = parseCidr(`${addr}/${prefix}`);
      const block = new BlockList();
      block.addSubnet(addr, prefix, max === 32 ? 'ipv4' : 'ipv6');
      const probe = near(addr, max === 32 ? 96 + Math.min(keep, 32) : keep, noise);
      const ip = parseIp(probe);
      assert.ok(ip !== undefined, probe);
      assert.equal(inCidr(ip, cidr), block.check(probe, isIPv4(probe) ? 'ipv4' : 'ipv6'), `${addr}/${prefix} vs ${probe}`);
      // IPv4 blocks and IPv4-mapped peers, as a dual-stack listener reports them.
      if (isIPv4(probe)) assert.equal(new CidrList([`${addr}/${prefix}`]).allows(`::ffff:${probe}`), inCidr(ip, cidr));
    },
  ), { numRuns: 2000 });
});
