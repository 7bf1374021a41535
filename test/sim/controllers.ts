/**
 * The rate controllers the simulator compares, behind the sender's RateControl port:
 * - `fixedAtCeiling`: no learning (sluice's default before issue 13): the configured rate less the margin;
 * - `todaysAdaptive`: today's AdaptiveRate with the schema's defaults (`adaptive: {}`), wired as
 *   GateRate wires it (the ceiling until the first throttle, then min(ceiling, its rate));
 * - `limitLearner`: the controller of src/core/limit-learner.ts.
 */
import { AdaptiveRate } from '../../src/core/adaptive-rate.js';
import type { ControlFactory } from './scenario.js';

export const fixedAtCeiling: ControlFactory = ({ ceilingPerSec }) => ({
  label: 'fixed',
  ratePerSec: () => ceilingPerSec,
  onGrant: () => {},
  onAccepted: () => {},
  onThrottled: () => {},
});

export const todaysAdaptive: ControlFactory = ({ ceilingPerSec, configuredPerSec, now }) => {
  const adaptive = new AdaptiveRate(
    { maxPerSec: ceilingPerSec, minPerSec: 1 / 60, increasePerSec: configuredPerSec * 0.05, decrease: 0.7, windowMs: 1000 },
    ceilingPerSec,
    now,
  );
  return {
    label: 'AdaptiveRate',
    ratePerSec: () => (adaptive.throttled ? Math.min(ceilingPerSec, adaptive.ratePerSec) : ceilingPerSec),
    onGrant: () => {},
    onAccepted: (t) => void adaptive.onSuccess(t),
    onThrottled: (t) => void adaptive.onThrottle(t),
  };
};

import { LimitLearner, learnerPolicy, type LearnerTuning } from '../../src/core/limit-learner.js';

/** The learner as the scheduler would hold it: none until the first throttle, then one per key. */
export function limitLearner(tuning: Partial<LearnerTuning> = {}): ControlFactory {
  return ({ ceilingPerSec }) => {
    const policy = learnerPolicy({ ceilingPerSec, tuning });
    let learner: LimitLearner | undefined;
    return {
      label: 'LimitLearner',
      ratePerSec: () => learner?.ratePerSec ?? ceilingPerSec,
      onGrant: () => {},
      onAccepted: (t, answer) => void learner?.onAccepted(t, answer),
      onThrottled: (t, signal) => {
        if (learner) learner.onThrottled(t, signal);
        else learner = LimitLearner.afterFirstThrottle(policy, t, signal);
      },
    };
  };
}
