// GET_VALUES over a real socket, from the web server's side: FCGI_MAX_REQS promises no more than
// the server takes (maxConnections × maxRequestsPerConnection, capped by maxInflightRequests),
// i.e. the connection hands its limits to the decoder.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeNameValuePairs, encodeGetValues, FCGI_TYPE } from '../../protocols/fastcgi/index.ts';
import { FcgiClient } from '../helpers/clients.ts';
import { controlApp, startTestServer, treeOf } from '../helpers/servers.ts';

async function askValues(limits: { maxConnections: number; maxRequestsPerConnection: number; maxInflightRequests: number }): Promise<string[]> {
  const srv = await startTestServer({ tree: treeOf(controlApp({ aborts: [], inputErrors: [] })), protocols: ['fastcgi'], ...limits });
  try {
    const c = await FcgiClient.connect(srv.target('fastcgi'));
    try {
      c.send(encodeGetValues(['FCGI_MAX_CONNS', 'FCGI_MAX_REQS', 'FCGI_MPXS_CONNS']));
      await c.until((rs) => rs.some((r) => r.type === FCGI_TYPE.GET_VALUES_RESULT));
      const results = c.records.filter((r) => r.type === FCGI_TYPE.GET_VALUES_RESULT);
      assert.equal(results.length, 1);
      const pairs = decodeNameValuePairs(results[0]!.content);
      assert.ok(Array.isArray(pairs), 'a well-formed name-value body');
      return pairs;
    } finally {
      c.destroy();
    }
  } finally {
    await srv.close();
  }
}

describe('FastCGI GET_VALUES over a socket: FCGI_MAX_REQS is what the server takes', () => {
  test('capped by maxInflightRequests when that is lower', async () => {
    assert.deepEqual(await askValues({ maxConnections: 40, maxRequestsPerConnection: 4, maxInflightRequests: 25 }),
      ['FCGI_MAX_CONNS', '40', 'FCGI_MAX_REQS', '25', 'FCGI_MPXS_CONNS', '1']);
  });

  test('every connection full when maxInflightRequests is higher, or 0 (no cap)', async () => {
    assert.deepEqual(await askValues({ maxConnections: 40, maxRequestsPerConnection: 1, maxInflightRequests: 1024 }),
      ['FCGI_MAX_CONNS', '40', 'FCGI_MAX_REQS', '40', 'FCGI_MPXS_CONNS', '0']);
    assert.deepEqual(await askValues({ maxConnections: 40, maxRequestsPerConnection: 4, maxInflightRequests: 0 }),
      ['FCGI_MAX_CONNS', '40', 'FCGI_MAX_REQS', '160', 'FCGI_MPXS_CONNS', '1']);
  });
});
