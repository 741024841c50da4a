/** Abort plumbing shared by every primitive: racing a promise against a signal, abortable sleeps, timers. */

/** The longest delay Node's timers honour (2^31 − 1 ms, about 24.8 days); a longer one fires after 1 ms. */
export const maxTimerMs = 2 ** 31 - 1;

/** `ms` clamped to what a Node timer honours: every timer leasehold arms goes through this. */
export function clampDelay(ms: number): number {
  return Math.min(Math.max(0, ms), maxTimerMs);
}

/**
 * Resolves or rejects like `promise`, unless `signal` aborts first: then rejects with `signal.reason`
 * unchanged. The promise keeps running; callers that must clean up after it keep a reference to it.
 */
export function raceSignal<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) {
    promise.catch(() => undefined);
    return Promise.reject(signal.reason as unknown);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      promise.catch(() => undefined);
      reject(signal.reason as unknown);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/** Waits `ms` milliseconds, or rejects with `signal.reason` as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as unknown);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason as unknown);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, clampDelay(ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A signal that follows others, and the way to unhook it from them. */
export interface LinkedSignal {
  /** Aborts when any of the signals it was linked to aborts, with that signal's reason. */
  readonly signal: AbortSignal;
  /** Unhooks {@link signal} from the signals it follows; it aborts no more for them. */
  dispose(): void;
}

/**
 * A signal that aborts when any of the defined `signals` does, for one call: `dispose()` it when the
 * call is over. `AbortSignal.any` is not used for this because, in Node 20–24, each signal it
 * combines keeps a reference to every signal ever derived from it (nodejs/node#55351): a session's
 * signal, or a service's stop signal, alive for months, would grow by one per acquisition.
 */
export function linkSignals(...signals: (AbortSignal | undefined)[]): LinkedSignal {
  const defined = signals.filter((s): s is AbortSignal => s !== undefined);
  const nothing = (): void => undefined;
  if (defined.length === 1) return { signal: defined[0]!, dispose: nothing };
  const controller = new AbortController();
  const already = defined.find((s) => s.aborted);
  if (already) {
    controller.abort(already.reason);
    return { signal: controller.signal, dispose: nothing };
  }
  const dispose = (): void => {
    for (const s of defined) s.removeEventListener('abort', onAbort);
  };
  const onAbort = (event: Event): void => {
    dispose();
    controller.abort((event.target as AbortSignal).reason);
  };
  for (const s of defined) s.addEventListener('abort', onAbort, { once: true });
  return { signal: controller.signal, dispose };
}

/** `AbortSignal.any` over the signals that are defined (for signals that live no longer than a process's one call: see {@link linkSignals}). */
export function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  const defined = signals.filter((s): s is AbortSignal => s !== undefined);
  if (defined.length === 1) return defined[0]!;
  return AbortSignal.any(defined);
}

/** Waits for `promise` to settle, but no longer than `ms`; never rejects. */
export async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, clampDelay(ms));
    }),
  ]);
  clearTimeout(timer);
}
