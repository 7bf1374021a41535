/**
 * The gates the scheduler holds, by rule and key: the active map (gates held by queued or granted
 * tickets, plus the one gate of every rule without a key), the bounded LRU of idle keys whose state
 * still matters (a bucket not yet full, a pause not over), and how many keys of each rule are in
 * memory, counted as gates come and go so that nothing ever scans 100,000 idle keys to count them.
 * A key with work is never evicted; an idle key is kept until its state stops mattering.
 */
import { LRUCache } from 'lru-cache';
import { GateRate, UNBOUNDED_RATE_PER_SEC } from '../core/gate-rate.js';
import type { Clock } from '../core/time.js';
import type { BucketStore } from '../store/bucket-store.js';
import { Gate, hasBucket, type RuleSpec } from './model.js';

export interface KeyRegistryOptions {
  readonly rules: readonly RuleSpec[];
  readonly clock: Clock;
  readonly store: BucketStore;
  /** Prefix of bucket ids in the store (the upstream's name). */
  readonly name: string;
  readonly maxIdleKeys: number;
  readonly marginFraction: number;
  /** Called when a keyed gate leaves the active map: its timer must stop. */
  readonly onInactive: (gate: Gate) => void;
}

type Writable<T> = { -readonly [K in keyof T]: T[K] };

export class KeyRegistry {
  /** Copies of the rules: gates point at them, `reconfigure` updates them in place. */
  readonly rules: readonly RuleSpec[];
  /** Gates with refs, plus the permanent gate of every rule without a key. */
  readonly active = new Map<string, Gate>();
  #idle: LRUCache<string, Gate>;
  /** Keys in memory (active or idle) per keyed rule. */
  readonly #keyCounts: number[];
  readonly #clock: Clock;
  readonly #store: BucketStore;
  readonly #name: string;
  readonly #onInactive: (gate: Gate) => void;
  #marginFraction: number;
  readonly #keyedRules: number;

  constructor(options: KeyRegistryOptions) {
    this.rules = options.rules.map((rule) => ({ ...rule }));
    this.#keyedRules = options.rules.filter((r) => r.keyed).length;
    this.#clock = options.clock;
    this.#store = options.store;
    this.#name = options.name;
    this.#onInactive = options.onInactive;
    this.#marginFraction = options.marginFraction;
    this.#keyCounts = options.rules.map(() => 0);
    this.#idle = this.#newIdleCache(options.maxIdleKeys);
    for (const rule of this.rules) {
      if (!rule.keyed) this.active.set(String(rule.index), this.#newGate(rule, ''));
    }
  }

  /** The gate of `rule` for `key`: active, idle, or new (not yet retained). */
  find(rule: RuleSpec, key: string): Gate {
    const id = gateId(rule, key);
    return this.active.get(id) ?? this.#idle.get(id) ?? this.#newGate(rule, key);
  }

  /** The gate of `rule` for `key` if it is in memory, without touching the LRU order. */
  peek(rule: RuleSpec, key: string): Gate | undefined {
    const id = gateId(rule, key);
    return this.active.get(id) ?? this.#idle.peek(id);
  }

  /** One more ticket holds `gate`. */
  retain(gate: Gate): void {
    if (gate.refs++ === 0 && gate.rule.keyed) {
      // From the idle cache (a `delete` its dispose ignores), or new: one more key in memory.
      if (!this.#idle.delete(gate.id)) this.#countKey(gate, 1);
      this.active.set(gate.id, gate);
    }
  }

  /** A keyed gate nobody holds is forgotten, or kept idle for as long as its state matters. */
  unretain(gate: Gate, now: number): void {
    if (--gate.refs > 0 || !gate.rule.keyed) return;
    this.#onInactive(gate);
    this.active.delete(gate.id);
    if (gate.isPristine(now)) return this.#countKey(gate, -1);
    const fullAt = gate.bucket ? gate.bucket.fullAt() : Number.NEGATIVE_INFINITY;
    const ttl = Math.ceil(Math.max(fullAt, gate.pauseEndsAt) - now);
    this.#idle.set(gate.id, gate, { ttl: Math.max(1, ttl) });
  }

  /** The idle gates, most recently used first, at most `limit` of them. */
  *recentIdle(limit: number): Generator<Gate> {
    let looked = 0;
    for (const gate of this.#idle.values()) {
      if (++looked > limit) return;
      yield gate;
    }
  }

  /** Keys of `rule` in memory (1 for a rule without a key: its one gate). */
  keysOf(rule: RuleSpec): number {
    return rule.keyed ? (this.#keyCounts[rule.index] ?? 0) : 1;
  }

  /** Distinct keys in memory, all keyed rules together. */
  get keys(): number {
    let keys = 0;
    for (const n of this.#keyCounts) keys += n;
    return keys;
  }

  /** One lane per combination of keys; length prefixes keep combinations unambiguous. */
  laneKey(keys: readonly string[]): string {
    if (this.#keyedRules === 0) return '';
    let laneKey = '';
    for (const rule of this.rules) {
      if (!rule.keyed) continue;
      const key = keys[rule.index] ?? '';
      laneKey += this.#keyedRules === 1 ? key : `${key.length}:${key}`;
    }
    return laneKey;
  }

  /** Whether `rules` have the shape of these: as many, each with or without a key and a bucket as before. */
  sameShape(rules: readonly RuleSpec[]): boolean {
    return (
      rules.length === this.rules.length &&
      rules.every((rule, i) => {
        const current = this.rules[i] as RuleSpec;
        return rule.keyed === current.keyed && hasBucket(rule) === hasBucket(current);
      })
    );
  }

  /**
   * A reload's rules (of the same shape) and bounds: the idle LRU's size, the rates' margin, every
   * rule's numbers; the buckets' rates start over (learning and adapting restart from the new
   * configuration) and take the new burst. Returns every gate in memory, for the caller to apply
   * the new rates and look at again.
   */
  reconfigure(options: { rules: readonly RuleSpec[]; maxIdleKeys: number; marginFraction: number }, now: number): Gate[] {
    this.#marginFraction = options.marginFraction;
    if (options.maxIdleKeys !== this.#idle.max) {
      const idle = this.#newIdleCache(options.maxIdleKeys);
      // Expired keys are forgotten (and uncounted) now: entries() would skip them, and the old
      // cache, dropped whole, disposes nothing. A reload is rare; this walk is fine there.
      this.#idle.purgeStale();
      for (const [id, gate] of [...this.#idle.entries()].reverse()) idle.set(id, gate, { ttl: Math.max(1, this.#idle.getRemainingTTL(id)) });
      this.#idle = idle;
    }
    options.rules.forEach((rule, i) =>
      Object.assign(this.rules[i] as Writable<RuleSpec>, {
        ratePerSec: rule.ratePerSec,
        burst: rule.burst,
        concurrency: rule.concurrency,
        adaptive: rule.adaptive,
        learns: rule.learns,
      }),
    );
    const gates = [...this.active.values(), ...this.#idle.values()];
    for (const gate of gates) {
      if (!gate.bucket) continue;
      gate.rate = this.rateOf(gate.rule);
      gate.bucket.setBurst(now, gate.rule.burst);
    }
    return gates;
  }

  /** A fresh GateRate for `rule` (learning and adapting start over). */
  rateOf(rule: RuleSpec): GateRate {
    const ceilingPerSec = rule.ratePerSec === undefined ? UNBOUNDED_RATE_PER_SEC : this.effectiveRate(rule);
    return new GateRate({ ceilingPerSec, marginFraction: this.#marginFraction, adaptive: rule.adaptive, now: this.#clock.now() });
  }

  /** The configured rate minus the margin. */
  effectiveRate(rule: RuleSpec): number {
    return (rule.ratePerSec as number) * (1 - this.#marginFraction);
  }

  #newGate(rule: RuleSpec, key: string): Gate {
    const id = gateId(rule, key);
    if (!hasBucket(rule)) return new Gate({ id, rule, key: rule.keyed ? key : '', bucket: undefined, rate: undefined });
    const rate = this.rateOf(rule);
    const bucket = this.#store.bucket({ id: `${this.#name}:${id}`, ratePerSec: rate.ratePerSec, burst: rule.burst });
    const gate = new Gate({ id, rule, key: rule.keyed ? key : '', bucket, rate });
    gate.appliedRatePerSec = rate.ratePerSec;
    return gate;
  }

  #countKey(gate: Gate, delta: 1 | -1): void {
    this.#keyCounts[gate.rule.index] = (this.#keyCounts[gate.rule.index] ?? 0) + delta;
  }

  /** The idle keys: bounded, each kept until its state stops mattering; leaving it forgets a key. */
  #newIdleCache(maxIdleKeys: number): LRUCache<string, Gate> {
    return new LRUCache<string, Gate>({
      max: Math.max(1, maxIdleKeys),
      ttlResolution: 0,
      perf: this.#clock,
      dispose: (gate, _id, reason) => {
        if (reason === 'evict' || reason === 'expire') this.#countKey(gate, -1);
      },
    });
  }
}

function gateId(rule: RuleSpec, key: string): string {
  return rule.keyed ? `${rule.index}:${key}` : String(rule.index);
}
