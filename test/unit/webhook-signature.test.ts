import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { signatureHeader, verifySignature } from '@replyflow/shared';

const body = Buffer.from('{"phone_number":"447700900123"}');
const digest = (secret: string) => createHmac('sha256', secret).update(body).digest();

describe('webhook signatures', () => {
  test('token mode accepts every entry of a rotated secret list and nothing else', () => {
    const secrets = ['old-secret', 'new-secret'];
    assert.ok(verifySignature('token', 'old-secret', body, secrets));
    assert.ok(verifySignature('token', 'new-secret', body, secrets));
    for (const wrong of ['', 'new-secre', 'new-secret ', 'NEW-SECRET', 'x'.repeat(500)]) {
      assert.equal(verifySignature('token', wrong, body, secrets), false, wrong);
    }
    assert.equal(verifySignature('token', undefined, body, secrets), false);
  });

  test('hmac-sha256 accepts hex, base64 and base64url, with or without sha256=', () => {
    const mac = digest('k2');
    const encodings = [mac.toString('hex'), mac.toString('hex').toUpperCase(), mac.toString('base64'), mac.toString('base64url')];
    for (const encoded of encodings) {
      assert.ok(verifySignature('hmac-sha256', encoded, body, ['k1', 'k2']), encoded);
      assert.ok(verifySignature('hmac-sha256', `sha256=${encoded}`, body, ['k1', 'k2']), encoded);
    }
  });

  test('hmac-sha256 rejects another body, another key and malformed values', () => {
    const good = digest('k1').toString('hex');
    assert.equal(verifySignature('hmac-sha256', good, Buffer.from('{}'), ['k1']), false);
    assert.equal(verifySignature('hmac-sha256', good, body, ['k2']), false);
    for (const bad of ['', 'sha256=', good.slice(0, 63), `${good}00`, 'k1', 'zz'.repeat(32)]) {
      assert.equal(verifySignature('hmac-sha256', bad, body, ['k1']), false, bad);
    }
  });

  test('signatureHeader produces what verifySignature accepts', () => {
    assert.ok(verifySignature('hmac-sha256', signatureHeader('hmac-sha256', body, 's'), body, ['s']));
    assert.ok(verifySignature('token', signatureHeader('token', body, 's'), body, ['s']));
  });

  test('none accepts anything; no secret accepts nothing', () => {
    assert.ok(verifySignature('none', undefined, body, []));
    assert.equal(verifySignature('token', 'anything', body, []), false);
  });
});
