// How a call that did not end with status OK is reported: as grpc-js (the etcd3 path) reports it, so
// that a server's or a proxy's fault means the same on both transports.
import http2 from 'node:http2';
import { describe, expect, test } from 'vitest';
import { CompressedMessageError, MessageTooLargeError } from './framing.js';
import { closedError, connectionError, deadlineError, decodeGrpcMessage, endError, HttpStatusError, isUnreachable, kindOf, statusError, type StreamEnd } from './status.js';

const c = http2.constants;
const end = (e: Partial<StreamEnd>): StreamEnd => ({ failure: undefined, status: undefined, grpcMessage: '', rstCode: undefined, connectionLost: false, ...e });
/** [message, code, kind, unreachable] of the error `e` becomes. */
const shown = (e: Partial<StreamEnd>): [string, string, string, boolean] => {
  const error = endError(end(e), 'm:1');
  return [error.message, error.code, error.kind, isUnreachable(error)];
};
const streamError = (name: string): Error => Object.assign(new Error(`Stream closed with error code ${name}`), { code: 'ERR_HTTP2_STREAM_ERROR' });

describe('endError', () => {
  test('a grpc-status wins over the HTTP status and the reset code', () => {
    expect(shown({ status: 9, grpcMessage: 'etcdserver: x', failure: new HttpStatusError(503), rstCode: c.NGHTTP2_CANCEL })).toEqual(['9 FAILED_PRECONDITION: etcdserver: x', 'FAILED_PRECONDITION', 'final', false]);
  });

  test.each([
    [400, 'INTERNAL', 'transient'],
    [401, 'UNAUTHENTICATED', 'auth'],
    [403, 'PERMISSION_DENIED', 'permission'],
    [404, 'UNIMPLEMENTED', 'final'],
    [429, 'UNAVAILABLE', 'transient'],
    [502, 'UNAVAILABLE', 'transient'],
    [503, 'UNAVAILABLE', 'transient'],
    [504, 'UNAVAILABLE', 'transient'],
    [500, 'UNKNOWN', 'final'],
  ])('HTTP status %i without a grpc-status: %s (%s)', (status, code, kind) => {
    const [message, ...rest] = shown({ failure: new HttpStatusError(status) });
    expect(rest).toEqual([code, kind, false]);
    expect(message).toMatch(new RegExp(`^\\d+ ${code}: Received HTTP status code ${status}$`));
  });

  test.each([
    [c.NGHTTP2_NO_ERROR, undefined, '13 INTERNAL: Call ended without gRPC status', 'transient'],
    [c.NGHTTP2_REFUSED_STREAM, 'NGHTTP2_REFUSED_STREAM', '14 UNAVAILABLE: Stream refused by server', 'transient'],
    [c.NGHTTP2_CANCEL, undefined, '1 CANCELLED: Call cancelled', 'transient'],
    [c.NGHTTP2_ENHANCE_YOUR_CALM, 'NGHTTP2_ENHANCE_YOUR_CALM', '8 RESOURCE_EXHAUSTED: Bandwidth exhausted or memory limit exceeded', 'transient'],
    [c.NGHTTP2_INADEQUATE_SECURITY, 'NGHTTP2_INADEQUATE_SECURITY', '7 PERMISSION_DENIED: Protocol not secure enough', 'permission'],
    [c.NGHTTP2_INTERNAL_ERROR, 'NGHTTP2_INTERNAL_ERROR', '13 INTERNAL: Received RST_STREAM with code 2', 'transient'],
    [c.NGHTTP2_PROTOCOL_ERROR, 'NGHTTP2_PROTOCOL_ERROR', '13 INTERNAL: Received RST_STREAM with code 1', 'transient'],
  ])('a stream the server reset with code %i (the connection up): as grpc-js', (rstCode, name, message, kind) => {
    const [got, , gotKind, unreachable] = shown({ rstCode, failure: name === undefined ? undefined : streamError(name) });
    expect([got, gotKind, unreachable]).toEqual([message, kind, false]);
  });

  test('a lost connection is UNAVAILABLE and unreachable, whatever the reset code (Node cancels the streams of a dropped connection)', () => {
    expect(shown({ rstCode: c.NGHTTP2_CANCEL, connectionLost: true })).toEqual(['14 UNAVAILABLE: the stream closed without a status (HTTP/2 code 8)', 'UNAVAILABLE', 'transient', true]);
    expect(shown({ failure: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), rstCode: c.NGHTTP2_INTERNAL_ERROR, connectionLost: true })).toEqual(['14 UNAVAILABLE: read ECONNRESET', 'UNAVAILABLE', 'transient', true]);
    // A session error reaches the stream as itself (a ping unanswered), not as a reset.
    expect(shown({ failure: new Error('no answer to an HTTP/2 ping within 5000 ms'), rstCode: c.NGHTTP2_CANCEL })[3]).toBe(true);
  });

  test('our own refusals: a message over the limit is RESOURCE_EXHAUSTED (final); a compressed one INTERNAL (final), an answer, not silence', () => {
    expect(shown({ failure: new MessageTooLargeError(5, 4), rstCode: c.NGHTTP2_CANCEL })).toEqual(['8 RESOURCE_EXHAUSTED: Received message larger than max (5 vs 4)', 'RESOURCE_EXHAUSTED', 'final', false]);
    expect(shown({ failure: new CompressedMessageError(1), rstCode: c.NGHTTP2_CANCEL })).toEqual(['13 INTERNAL: Received a compressed message (flag 1), which was not asked for', 'INTERNAL', 'final', false]);
  });
});

describe('what a status or a failure means', () => {
  const err = (message: string, code?: string): Error => Object.assign(new Error(message), code === undefined ? {} : { code });

  test("etcd's lease-not-found and compacted answers have kinds of their own, whatever their code", () => {
    expect(kindOf('NOT_FOUND', 'etcdserver: requested lease not found')).toBe('lease-not-found');
    expect(kindOf('UNKNOWN', 'lease not found')).toBe('lease-not-found');
    expect(kindOf('OUT_OF_RANGE', 'etcdserver: mvcc: required revision has been compacted')).toBe('compacted');
    expect(kindOf('OUT_OF_RANGE', 'etcdserver: mvcc: required revision is a future revision')).toBe('final');
  });

  test('the transient codes are transient whatever the text', () => {
    for (const code of ['CANCELLED', 'DEADLINE_EXCEEDED', 'UNAVAILABLE', 'INTERNAL', 'RESOURCE_EXHAUSTED', 'ABORTED']) expect(kindOf(code, 'x')).toBe('transient');
    for (const code of ['UNKNOWN', 'INVALID_ARGUMENT', 'NOT_FOUND', 'FAILED_PRECONDITION', 'OUT_OF_RANGE']) expect(kindOf(code, 'x')).toBe('final');
  });

  test('a status beyond the known codes is named by its number', () => {
    const error = statusError(42, 'odd', 'm:1');
    expect([error.message, error.code, error.kind]).toEqual(['42 STATUS_42: odd', 'STATUS_42', 'final']);
  });

  test('a failed TLS handshake is kind tls (not unreachable), found by its code, its text, or its cause', () => {
    const byCode = connectionError(err("Hostname/IP does not match certificate's altnames", 'ERR_TLS_CERT_ALTNAME_INVALID'), 'm:1');
    const byText = connectionError(err('unable to verify the first certificate'), 'm:1');
    const byCause = connectionError(new Error('connect failed', { cause: err('self-signed certificate in certificate chain') }), 'm:1');
    for (const e of [byCode, byText, byCause]) expect([e.code, e.kind, isUnreachable(e), e.endpoint]).toEqual(['UNAVAILABLE', 'tls', false, 'm:1']);
    expect(byText.message).toBe('14 UNAVAILABLE: TLS handshake failed: unable to verify the first certificate');
    expect(byCause.message).toBe('14 UNAVAILABLE: TLS handshake failed: self-signed certificate in certificate chain');
    const refused = connectionError(err('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'), 'm:1');
    expect([refused.message, refused.kind, isUnreachable(refused)]).toEqual(['14 UNAVAILABLE: connect ECONNREFUSED 127.0.0.1:1', 'transient', true]);
  });

  test('a deadline that passed is DEADLINE_EXCEEDED, transient, unreachable; a closed client is final', () => {
    const late = deadlineError(250, 'm:1');
    expect([late.message, late.code, late.kind, late.endpoint, isUnreachable(late)]).toEqual(['4 DEADLINE_EXCEEDED: no answer within 250 ms', 'DEADLINE_EXCEEDED', 'transient', 'm:1', true]);
    const closed = closedError(undefined);
    expect([closed.message, closed.code, closed.kind, isUnreachable(closed)]).toEqual(['the etcd client is closed', 'CLIENT_CLOSED', 'final', false]);
    expect(closedError('m:1').endpoint).toBe('m:1');
    expect(isUnreachable(new Error('plain'))).toBe(false);
  });

  test('grpc-message is percent-decoded; a malformed one is kept as it came, a missing one is empty', () => {
    expect(decodeGrpcMessage('etcdserver%3A%20permission%20denied%20%F0%9F%94%92')).toBe('etcdserver: permission denied 🔒');
    expect(decodeGrpcMessage('100%')).toBe('100%');
    expect(decodeGrpcMessage(undefined)).toBe('');
    expect(decodeGrpcMessage(['a'])).toBe('');
  });

  test('errors name themselves', () => {
    expect([new HttpStatusError(502).name, new MessageTooLargeError(5, 4).name, new CompressedMessageError(1).name]).toEqual(['HttpStatusError', 'MessageTooLargeError', 'CompressedMessageError']);
  });
});

describe('endError without a status to go by', () => {
  test('no status, no reset code, the connection up: UNAVAILABLE and unreachable, naming what is missing', () => {
    expect(shown({})).toEqual(['14 UNAVAILABLE: the stream closed without a status (HTTP/2 code undefined)', 'UNAVAILABLE', 'transient', true]);
  });

  test('status OK does not hide a failure: the failure, or the stream closed without a status, is what is reported', () => {
    expect(shown({ status: 0, failure: Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), connectionLost: true })).toEqual(['14 UNAVAILABLE: read ECONNRESET', 'UNAVAILABLE', 'transient', true]);
    expect(shown({ status: 0, rstCode: c.NGHTTP2_CANCEL })).toEqual(['14 UNAVAILABLE: the stream closed without a status (HTTP/2 code 8)', 'UNAVAILABLE', 'transient', true]);
  });
});
