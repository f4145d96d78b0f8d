import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Deadlines } from '../../src/node/deadlines.js';

describe('deadlines of requests in progress, on one timer', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.restoreAllMocks();
    vi.useRealTimers();
  });

  it('expires each request once its deadline passes, in deadline order, also when an earlier deadline is added after a later one', () => {
    const deadlines = new Deadlines();
    const expired: string[] = [];
    const start = Date.now();
    deadlines.add(start + 5_000, () => expired.push('five seconds'));
    deadlines.add(start + 100, () => expired.push('100 ms'));
    deadlines.add(start + 2_000, () => expired.push('two seconds'));
    vi.advanceTimersByTime(99);
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(expired).toEqual(['100 ms']);
    vi.advanceTimersByTime(1_900);
    expect(expired).toEqual(['100 ms', 'two seconds']);
    vi.advanceTimersByTime(3_000);
    expect(expired).toEqual(['100 ms', 'two seconds', 'five seconds']);
    expect(deadlines.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a request settled before its deadline never expires, and once none is left no timer stays armed', () => {
    const deadlines = new Deadlines();
    const expired: string[] = [];
    const settled = deadlines.add(Date.now() + 100, () => expired.push('settled'));
    const waiting = deadlines.add(Date.now() + 200, () => expired.push('waiting'));
    deadlines.cancel(settled);
    vi.advanceTimersByTime(150);
    expect(expired).toEqual([]);
    deadlines.cancel(waiting);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(1_000);
    expect(expired).toEqual([]);
  });

  it('a deadline already past expires on the next timer turn, and an expiry may register another deadline', () => {
    const deadlines = new Deadlines();
    const expired: string[] = [];
    deadlines.add(Date.now() - 10, () => {
      expired.push('late');
      deadlines.add(Date.now() + 50, () => expired.push('retry'));
    });
    expect(expired).toEqual([]);
    vi.advanceTimersByTime(0);
    expect(expired).toEqual(['late']);
    vi.advanceTimersByTime(50);
    expect(expired).toEqual(['late', 'retry']);
  });

  it('a deadline beyond the longest timer Node can set is neither expired early nor spun on', () => {
    const deadlines = new Deadlines();
    const expired: string[] = [];
    const timers = vi.spyOn(globalThis, 'setTimeout');
    deadlines.add(Date.now() + 30 * 24 * 3_600_000, () => expired.push('in thirty days'));
    vi.advanceTimersByTime(1_000);
    expect(expired).toEqual([]);
    // A delay past 2^31 - 1 ms fires after 1 ms: re-armed that way, the timer would have been set about 1,000 times.
    expect(timers.mock.calls.length).toBe(1);
    vi.advanceTimersByTime(30 * 24 * 3_600_000);
    expect(expired).toEqual(['in thirty days']);
  });
});
