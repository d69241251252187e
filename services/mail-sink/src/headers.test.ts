import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { messageIdOf, parseHeaders } from './headers.ts';

describe('mail sink: message headers', () => {
  it('unfolds continuation lines, ignores case, keeps the first of repeated names, stops at the body', () => {
    const h = parseHeaders('Subject: Your order\r\n  is confirmed\r\nmessage-ID: <e1@oms>\r\nX-Oms-Order-Id: o-1\r\nX-Oms-Order-Id: o-2\r\n\r\nX-Not-A-Header: body\r\n');
    assert.equal(h.get('subject'), 'Your order is confirmed');
    assert.equal(h.get('message-id'), '<e1@oms>');
    assert.equal(h.get('x-oms-order-id'), 'o-1');
    assert.equal(h.has('x-not-a-header'), false);
  });

  it('reads bare LF line ends and skips lines that are not headers', () => {
    const h = parseHeaders('From: a@b\nnot a header\nTo: c@d\n\nbody');
    assert.deepEqual([...h.entries()], [['from', 'a@b'], ['to', 'c@d']]);
  });

  it('takes a Message-ID only in its <local@domain> form', () => {
    assert.equal(messageIdOf(parseHeaders('Message-ID: <abc@oms.example>\r\n\r\n')), 'abc@oms.example');
    assert.equal(messageIdOf(parseHeaders('Message-ID: abc@oms.example\r\n\r\n')), undefined);
    assert.equal(messageIdOf(parseHeaders('Message-ID: <no-domain>\r\n\r\n')), undefined);
    assert.equal(messageIdOf(parseHeaders('Subject: x\r\n\r\n')), undefined);
  });
});
