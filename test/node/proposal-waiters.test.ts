import { describe, expect, it } from 'vitest';
import { ProposalWaiters } from '../../src/node/proposal-waiters.js';

const expired = () => new Error('deadline');
const overwritten = (term: number) => new Error(`overwritten (term ${term})`);
const settled = <T>(promise: Promise<T>) =>
  promise.then(
    (value) => ({ value }),
    (error: Error) => ({ error: error.message }),
  );

describe('proposal waiters', () => {
  it('a leader deposed and elected again proposes at the index of its overwritten write: the old waiter expires, the new one still gets its commit', async () => {
    const waiters = new ProposalWaiters<string>();
    // Term 5: index 10 proposed, with a short deadline; deposed, re-elected in term 7, index 10 proposed again.
    const old = settled(waiters.wait(10, 5, Date.now() + 20, expired));
    const fresh = settled(waiters.wait(10, 7, Date.now() + 60_000, expired));
    expect(await old).toEqual({ error: 'deadline' });
    expect(waiters.size).toBe(1);
    waiters.applied(10, 7, () => 'committed', overwritten);
    expect(await fresh).toEqual({ value: 'committed' });
    expect(waiters.size).toBe(0);
  });

  it('the entry applied at an index settles every waiter there: its own term with the result, others as overwritten', async () => {
    const waiters = new ProposalWaiters<string>();
    const term5 = settled(waiters.wait(10, 5, Date.now() + 60_000, expired));
    const term7 = settled(waiters.wait(10, 7, Date.now() + 60_000, expired));
    waiters.applied(10, 7, () => 'ok', overwritten);
    expect(await term5).toEqual({ error: 'overwritten (term 5)' });
    expect(await term7).toEqual({ value: 'ok' });
  });

  it('a snapshot covering some indexes fails exactly those waiters', async () => {
    const waiters = new ProposalWaiters<string>();
    const below = settled(waiters.wait(3, 1, Date.now() + 60_000, expired));
    const at = settled(waiters.wait(5, 1, Date.now() + 60_000, expired));
    const above = waiters.wait(6, 1, Date.now() + 60_000, expired);
    waiters.rejectThrough(5, (index, term) => new Error(`covered ${index}/${term}`));
    expect(await below).toEqual({ error: 'covered 3/1' });
    expect(await at).toEqual({ error: 'covered 5/1' });
    expect(waiters.size).toBe(1);
    waiters.rejectAll(() => new Error('stopping'));
    await expect(above).rejects.toThrow('stopping');
    expect(waiters.size).toBe(0);
  });

  it('reports how long the oldest waiting write has waited, the next oldest once it is settled, and 0 when none waits', async () => {
    const waiters = new ProposalWaiters<string>();
    expect(waiters.oldestWaitMs()).toBe(0);
    const first = settled(waiters.wait(10, 5, Date.now() + 60_000, expired));
    const proposedBetween = performance.now();
    const second = settled(waiters.wait(11, 5, Date.now() + 60_000, expired));
    const later = proposedBetween + 5_000;
    // The first waiter was proposed before `proposedBetween`: it has waited at least 5 s at `later`.
    expect(waiters.oldestWaitMs(later)).toBeGreaterThanOrEqual(5_000);
    waiters.applied(10, 5, () => 'one', overwritten);
    expect(waiters.oldestWaitMs(later)).toBeLessThanOrEqual(5_000);
    waiters.applied(11, 5, () => 'two', overwritten);
    expect(waiters.oldestWaitMs(later)).toBe(0);
    expect([await first, await second]).toEqual([{ value: 'one' }, { value: 'two' }]);
  });
});
