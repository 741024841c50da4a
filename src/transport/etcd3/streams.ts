/** Closing the gRPC streams of the `etcd3` client without upsetting its connection pool. */

interface ClosableStream {
  on(event: 'error', fn: (err: Error) => void): unknown;
  end(): void;
  cancel(): void;
}

/**
 * Ends our side of a stream, then cancels it. etcd3 reports an error on a still-writable stream to its
 * connection pool, which counts a cancelled stream as a host failure: it resets the host's channels
 * (breaking other streams on that client) and opens the host's circuit breaker after three in a row.
 * Ending first makes the stream non-writable, so the cancellation is not counted.
 */
export function closeStream(stream: ClosableStream): void {
  stream.on('error', () => undefined);
  stream.end();
  stream.cancel();
}
