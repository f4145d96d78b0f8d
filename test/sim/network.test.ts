import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/raft/random.js';
import { EventQueue } from './event-queue.js';
import { Network, type NetworkProfile, oneWayPartition, splitPartition } from './network.js';

const calm: NetworkProfile = { minDelay: 1, maxDelay: 10, lossRate: 0, duplicateRate: 0, longDelayRate: 0, longDelayMax: 100 };

describe('simulated network', () => {
  it('delivers every message within the delay bounds when nothing is wrong', () => {
    const net = new Network(new SeededRandom(1), calm);
    for (let i = 0; i < 1000; i++) {
      const plan = net.plan('n1', 'n2');
      expect(plan.dropped).toBeNull();
      expect(plan.delays).toHaveLength(1);
      expect(plan.delays[0]).toBeGreaterThanOrEqual(1);
      expect(plan.delays[0]).toBeLessThanOrEqual(10);
    }
  });

  it('loses, duplicates and holds back messages at roughly the configured rates', () => {
    const net = new Network(new SeededRandom(2), { ...calm, lossRate: 0.1, duplicateRate: 0.1, longDelayRate: 0.1 });
    let lost = 0;
    let duplicated = 0;
    let late = 0;
    for (let i = 0; i < 10_000; i++) {
      const plan = net.plan('n1', 'n2');
      if (plan.dropped === 'loss') lost++;
      if (plan.delays.length === 2) duplicated++;
      if (plan.delays.some((d) => d > 10)) late++;
    }
    expect(lost).toBeGreaterThan(800);
    expect(lost).toBeLessThan(1200);
    expect(duplicated).toBeGreaterThan(700);
    expect(late).toBeGreaterThan(700);
  });

  it('cuts both directions between the sides of a split, and only one direction of a one-way cut', () => {
    const net = new Network(new SeededRandom(3), calm);
    const serial = net.partitionWith(splitPartition([['n1'], ['n2', 'n3']]));
    expect(net.isCut('n1', 'n2')).toBe(true);
    expect(net.isCut('n3', 'n1')).toBe(true);
    expect(net.isCut('n2', 'n3')).toBe(false);
    expect(net.plan('n2', 'n1').dropped).toBe('partition');
    expect(net.heal(serial)).toBe(true);
    expect(net.isCut('n1', 'n2')).toBe(false);

    net.partitionWith(oneWayPartition(['n1'], ['n2', 'n3']));
    expect(net.isCut('n1', 'n2')).toBe(true);
    expect(net.isCut('n2', 'n1')).toBe(false);
  });

  it('does not let an old heal undo a newer partition', () => {
    const net = new Network(new SeededRandom(4), calm);
    const old = net.partitionWith(splitPartition([['n1'], ['n2']]));
    net.partitionWith(splitPartition([['n2'], ['n1']]));
    expect(net.heal(old)).toBe(false);
    expect(net.isCut('n1', 'n2')).toBe(true);
  });
});

describe('event queue', () => {
  it('pops events in time order, and events at the same time in the order they were scheduled', () => {
    const queue = new EventQueue<string>();
    const random = new SeededRandom(5);
    const expected: [number, number][] = [];
    for (let i = 0; i < 500; i++) {
      const time = random.nextInt(50);
      queue.push(time, `${time}:${i}`);
      expected.push([time, i]);
    }
    expected.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    const popped: string[] = [];
    while (queue.size > 0) popped.push(queue.pop().item);
    expect(popped).toEqual(expected.map(([t, i]) => `${t}:${i}`));
  });
});
