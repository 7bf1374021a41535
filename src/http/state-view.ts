/**
 * The /state document: per upstream its queue, in-flight count and keys, every limit with its rate
 * and (for a rule without a key) its one gate, and the busiest keys with each keyed rule's bucket,
 * slots and pause for them. With `admin.redactKeys`, keys are shown as their digest.
 */
import { keyDigest } from '../core/key-digest.js';
import type { Upstream } from '../upstream/upstream.js';
import { sha256Base64url } from './request-keys.js';

/** How many of the busiest keys each upstream shows. */
const BUSIEST_KEYS = 20;

export function stateView(view: { readonly state: string; readonly upstreams: readonly Upstream[]; readonly redactKeys: boolean }): unknown {
  return {
    state: view.state,
    upstreams: view.upstreams.map((u) => {
      const snapshot = u.scheduler.snapshot();
      return {
        name: u.name,
        prefix: u.config.prefix,
        target: u.config.target,
        queued: snapshot.queued,
        inFlight: snapshot.inFlight,
        keys: snapshot.keys,
        limits: snapshot.rules.map((rule) => ({ ...rule, gate: rule.keyed ? undefined : u.scheduler.gateSnapshot(rule.index) })),
        busiestKeys: u.scheduler.busiestLanes(BUSIEST_KEYS).map((lane) => ({
          keys: view.redactKeys ? lane.keys.map(shownKey) : lane.keys,
          queued: lane.queued,
          // Each keyed rule's bucket, slots and pause for this key.
          limits: snapshot.rules.flatMap((rule) => {
            const gate = rule.keyed ? u.scheduler.gateSnapshot(rule.index, lane.keys[rule.index] ?? '') : undefined;
            return gate ? [{ rule: rule.index, tokens: gate.tokens, inFlight: gate.inFlight, pausedForMs: gate.pausedForMs }] : [];
          }),
        })),
      };
    }),
  };
}

/** A key as /state shows it with `admin.redactKeys`: stable, not reversible. */
function shownKey(key: string): string {
  return key === '' ? '' : keyDigest(key, sha256Base64url);
}
