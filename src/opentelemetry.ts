/**
 * `leasehold/opentelemetry`: OpenTelemetry spans for leasehold's waits, fed by its diagnostics
 * channels. `@opentelemetry/api` is an optional peer dependency: install it to use this module.
 *
 * @example
 * ```ts
 * import { instrumentLeasehold } from 'leasehold/opentelemetry';
 *
 * const instrumentation = instrumentLeasehold(); // the global tracer provider
 * // … every lock(), acquire() and campaign() is now a span …
 * instrumentation.disable();
 * ```
 */
import { channel } from 'node:diagnostics_channel';
import { SpanKind, SpanStatusCode, trace, type Attributes, type Span, type TracerProvider } from '@opentelemetry/api';
import { acquireChannel, campaignChannel, channels, type AcquireContext, type SessionLostMessage } from './diagnostics.js';

/** Options of {@link instrumentLeasehold}. */
export interface LeaseholdTracingOptions {
  /** Where spans go. @default the global tracer provider (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider;
}

/** What {@link instrumentLeasehold} returns. */
export interface LeaseholdInstrumentation {
  /**
   * Stops creating spans (unsubscribes from the channels) and ends the spans of calls still in
   * progress, with the attribute `leasehold.instrumentation_disabled: true` and no outcome (it is not
   * known yet), so that they are exported rather than lost. Idempotent.
   */
  disable(): void;
}

/**
 * Makes every wait a span, for every Session of the process: `leasehold.acquire` (Mutex,
 * ReadWriteLock, Semaphore and their `try…` forms) and `leasehold.campaign` (Election, and so
 * LeaderElector terms), from the call to its outcome. Attributes: `leasehold.primitive`,
 * `leasehold.name`, `leasehold.names` (a MultiLock's names, as an array), `leasehold.mode`, `leasehold.permits`, `leasehold.weight`, `leasehold.lease`,
 * `leasehold.blocking`, and at the end `leasehold.outcome`, `leasehold.token` (the term for a
 * campaign, as a string) and `leasehold.waited_ms`. Every rejection is recorded as an exception; a
 * wait that failed (the lease lost, or another error — not the caller's abort) has status ERROR, and
 * one that ended because the lease was lost gets a `leasehold.lease_lost` event. A Session's loss is also a span of its own, `leasehold.session_lost`, with that event.
 * Spans start in the caller's active context, so they nest under the caller's span. A wait still in
 * progress when {@link LeaseholdInstrumentation.disable} is called has its span ended then.
 */
export function instrumentLeasehold(options: LeaseholdTracingOptions = {}): LeaseholdInstrumentation {
  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer('leasehold');
  // The spans of calls in progress (each removed at its end), so that disable() can end them.
  const spans = new Map<object, Span>();

  const none = (): void => undefined;
  const subscribers = (spanName: string) => ({
    end: none,
    asyncStart: none,
    start(message: unknown) {
      const c = message as AcquireContext;
      const attributes: Attributes = {
        'leasehold.primitive': c.primitive,
        'leasehold.name': c.name,
        'leasehold.lease': c.lease,
        'leasehold.blocking': c.blocking,
      };
      if (c.names !== undefined) attributes['leasehold.names'] = c.names;
      if (c.mode !== undefined) attributes['leasehold.mode'] = c.mode;
      if (c.permits !== undefined) attributes['leasehold.permits'] = c.permits;
      if (c.weight !== undefined) attributes['leasehold.weight'] = c.weight;
      spans.set(c, tracer.startSpan(spanName, { kind: SpanKind.INTERNAL, attributes }));
    },
    error(message: unknown) {
      const c = message as AcquireContext;
      const span = spans.get(c);
      if (span && c.error instanceof Error) span.recordException(c.error);
    },
    asyncEnd(message: unknown) {
      const c = message as AcquireContext;
      const span = spans.get(c);
      if (!span) return;
      spans.delete(c);
      span.setAttribute('leasehold.outcome', c.outcome ?? 'error');
      if (c.waitedMs !== undefined) span.setAttribute('leasehold.waited_ms', c.waitedMs);
      if (c.token !== undefined) span.setAttribute('leasehold.token', c.token.toString());
      if (c.outcome === 'lost') span.addEvent('leasehold.lease_lost', { 'leasehold.lease': c.lease });
      if (c.outcome === 'lost' || c.outcome === 'error') {
        span.setStatus({ code: SpanStatusCode.ERROR, message: c.error instanceof Error ? c.error.message : String(c.error) });
      }
      span.end();
    },
  });
  const traced: [typeof acquireChannel, ReturnType<typeof subscribers>][] = [
    [acquireChannel, subscribers('leasehold.acquire')],
    [campaignChannel, subscribers('leasehold.campaign')],
  ];
  const onLost = (message: unknown): void => {
    const m = message as SessionLostMessage;
    const span = tracer.startSpan('leasehold.session_lost', { attributes: { 'leasehold.lease': m.lease } });
    span.addEvent('leasehold.lease_lost', { 'leasehold.lease': m.lease, 'leasehold.reason': m.reason instanceof Error ? m.reason.message : String(m.reason) });
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'lease lost' });
    span.end();
  };
  for (const [t, s] of traced) t.subscribe(s);
  channel(channels.sessionLost).subscribe(onLost);
  let enabled = true;
  return {
    disable() {
      if (!enabled) return;
      enabled = false;
      for (const [t, s] of traced) t.unsubscribe(s);
      channel(channels.sessionLost).unsubscribe(onLost);
      // Their ends will not be seen any more: end them now (their outcome is not known yet).
      for (const span of spans.values()) {
        span.setAttribute('leasehold.instrumentation_disabled', true);
        span.end();
      }
      spans.clear();
    },
  };
}
