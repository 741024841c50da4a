/**
 * How a {@link TransportError} that outlasted the retries becomes the leasehold error a user sees,
 * naming the endpoint and the gRPC status: the same classes and messages whichever adapter made
 * the call. An error that is not a transport error is returned as it is.
 */
import { AuthenticationError, EtcdRequestError, EtcdUnavailableError, PermissionDeniedError, TlsError } from '../errors.js';
import { TransportError } from './port.js';

/** What the explanation names besides the error: the client's endpoints and user, and the key. */
export interface ExplainContext {
  endpoints: readonly string[];
  user: string | undefined;
  /** The key the request was about (relative to the namespace), when there is one. */
  key?: string | undefined;
}

/** The leasehold error for `error` (see the file comment). */
export function explainTransportError(error: unknown, context: ExplainContext): unknown {
  if (!(error instanceof TransportError) || error.kind === 'lease-not-found') return error;
  const endpoints = error.endpoint === undefined ? [...context.endpoints] : [error.endpoint];
  const at = `etcd at ${endpoints.length > 0 ? endpoints.join(', ') : '(unknown endpoint)'}`;
  const options = { endpoints, code: error.code, cause: error };
  switch (error.kind) {
    case 'permission': {
      const what = context.key === undefined ? 'the request' : `access to ${JSON.stringify(context.key)}`;
      return new PermissionDeniedError(`${at} denied ${what}: ${error.message} (the user lacks a permission on it; see docs/security.md)`, {
        ...options,
        key: context.key,
      });
    }
    case 'auth': {
      const user = context.user === undefined ? '' : ` user ${JSON.stringify(context.user)}`;
      return new AuthenticationError(`${at} refused to authenticate${user}: ${error.message}`, options);
    }
    case 'tls':
      return new TlsError(
        `TLS handshake with ${at} failed — a certificate was refused (no client certificate, one its CA did not sign, or a server certificate our CA does not verify): ${error.message}`,
        options,
      );
    case 'transient':
      return new EtcdUnavailableError(`${at} unavailable: ${error.message}`, options);
    default:
      return new EtcdRequestError(`${at} refused the request: ${error.message}`, options);
  }
}
