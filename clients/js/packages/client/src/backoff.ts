// Reconnect delays: exponential backoff with a cap and jitter. Pure, so the
// bounds are unit-tested directly.

export interface ReconnectOptions {
  /** delay before the first retry, in ms (default 500) */
  initialDelayMs: number;
  /** cap on any delay, in ms (default 10000) */
  maxDelayMs: number;
  /** growth per attempt (default 2) */
  factor: number;
  /** 0..1: the delay is drawn uniformly from [d * (1 - jitter), d] (default 0.5) */
  jitter: number;
}

export const DEFAULT_RECONNECT: ReconnectOptions = {
  initialDelayMs: 500,
  maxDelayMs: 10_000,
  factor: 2,
  jitter: 0.5,
};

/** Fills missing fields with the defaults and checks the values. */
export function reconnectOptions(partial: Partial<ReconnectOptions> = {}): ReconnectOptions {
  const o = { ...DEFAULT_RECONNECT, ...partial };
  if (!(o.initialDelayMs >= 0)) throw new RangeError('reconnect.initialDelayMs must be >= 0');
  if (!(o.maxDelayMs >= o.initialDelayMs)) throw new RangeError('reconnect.maxDelayMs must be >= initialDelayMs');
  if (!(o.factor >= 1)) throw new RangeError('reconnect.factor must be >= 1');
  if (!(o.jitter >= 0 && o.jitter <= 1)) throw new RangeError('reconnect.jitter must be within 0..1');
  return o;
}

/**
 * The delay before retry number `attempt` (0 for the first retry after a
 * drop): min(maxDelayMs, initialDelayMs * factor^attempt), reduced by up to
 * `jitter` of itself. `random` returns a number in [0, 1).
 */
export function backoffDelay(attempt: number, o: ReconnectOptions, random: () => number = Math.random): number {
  const base = Math.min(o.maxDelayMs, o.initialDelayMs * Math.pow(o.factor, Math.max(0, attempt)));
  const r = Math.min(Math.max(random(), 0), 1);
  return Math.round(base * (1 - o.jitter * r));
}
