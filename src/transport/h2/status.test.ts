// How a call that did not end with status OK is reported: as grpc-js (the etcd3 path) reports it, so
// that a server's or a proxy's fault means the same on both transports.
import http2 from 'node:http2';
import { describe, expect, test } from 'vitest';
import { CompressedMessageError, MessageTooLargeError } from './framing.js';
import { endError, HttpStatusError, isUnreachable, type StreamEnd } from './status.js';

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
