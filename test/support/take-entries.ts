import type { LogSubscription, SubscribedEntry } from '../../src/client/index.js';

/** Takes `count` entries from the subscription (manual next(), so the subscription stays open). */
export async function take(subscription: LogSubscription, count: number): Promise<SubscribedEntry[]> {
  const taken: SubscribedEntry[] = [];
  while (taken.length < count) {
    const next = await subscription.next();
    if (next.done === true) throw new Error(`the subscription ended after ${taken.length} of ${count} entries`);
    taken.push(next.value);
  }
  return taken;
}
