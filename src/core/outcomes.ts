/**
 * How things end, as the parts that report them and the parts that count them agree on: a client
 * request (a metric label) and a granted permit (fed back to the scheduler when it is released).
 */

/** How a client request ended: `sluice_requests_total{outcome}`. */
export type RequestOutcome = 'ok' | 'upstream_error' | 'rejected' | 'cancelled' | 'failed';

/**
 * How a granted permit ended, given with it when it is released (the Netflix concurrency-limits
 * Listener protocol): `ok` the upstream answered; `throttled` it answered 429/503; `failed` the
 * attempt errored or timed out; `dropped` nothing was sent, so the tokens are given back.
 */
export type ReleaseOutcome = 'ok' | 'throttled' | 'failed' | 'dropped';
