import { describe, expect, it } from 'vitest';
import type { ProcessCluster } from '../support/process-cluster.js';
import { generationOf, idInSlot, slotOf } from './node-slots.js';
import { Roster } from './roster.js';

/** What the roster asks of the cluster when it picks spares: which processes run. */
function fakeCluster(running: Set<string>): ProcessCluster {
  return { isRunning: (id: string) => running.has(id) } as unknown as ProcessCluster;
}

describe('node slots', () => {
  it('maps each id to its slot and generation, and back', () => {
    expect([slotOf('n3'), generationOf('n3'), idInSlot('n3', 1)]).toEqual(['n3', 1, 'n3']);
    expect([slotOf('n3.2'), generationOf('n3.2'), idInSlot('n3', 2)]).toEqual(['n3', 2, 'n3.2']);
    expect([slotOf('n12.140'), generationOf('n12.140')]).toEqual(['n12', 140]);
  });
});

describe('Roster spares: a new member always takes an id never used before', () => {
  it('offers the unused slots first, then the next id of a slot whose id has run', () => {
    const running = new Set(['n1', 'n2', 'n3']);
    const roster = new Roster(fakeCluster(running), ['n1', 'n2', 'n3', 'n4', 'n5'], ['n1', 'n2', 'n3'], 100);
    expect(roster.spares()).toEqual(['n4', 'n5']);
    expect(roster.takeSpare('n4', 'membership')).toBe(true);
    // Claimed: its slot is busy, and the same id cannot be taken twice.
    expect(roster.spares()).toEqual(['n5']);
    expect(roster.takeSpare('n4', 'membership')).toBe(false);
    expect(roster.isCurrent('n4')).toBe(true);
    // The joiner never became a member (not running, not in the configuration): its slot offers the next id, not n4 again.
    roster.release('n4', 'membership');
    expect(roster.spares()).toEqual(['n4.2', 'n5']);
    expect(roster.takeSpare('n4.2', 'membership')).toBe(true);
    expect(roster.isCurrent('n4')).toBe(false);
    expect(roster.currentOf('n4')).toBe('n4.2');
    expect(roster.ids).toEqual(['n1', 'n2', 'n3', 'n4', 'n4.2']);
  });

  it('keeps a slot busy while its id is a member, runs or is claimed, unless the caller frees it', () => {
    const running = new Set(['n1', 'n2', 'n3']);
    const roster = new Roster(fakeCluster(running), ['n1', 'n2', 'n3', 'n4'], ['n1', 'n2', 'n3'], 100);
    expect(roster.takeSpare('n4', 'membership')).toBe(true);
    running.add('n4');
    roster.release('n4', 'membership');
    expect(roster.spares()).toEqual([]);
    // Killed and claimed by a replace: still busy, unless that replace, having removed it, frees it: then under the next id.
    running.delete('n4');
    expect(roster.claim('n4', 'membership', true)).toBe(true);
    expect(roster.spares()).toEqual([]);
    expect(roster.spares(['n4'])).toEqual(['n4.2']);
    expect(roster.takeSpare('n4.2', 'membership')).toBe(false);
    expect(roster.takeSpare('n4.2', 'membership', ['n4'])).toBe(true);
    // A member that is not running (killed, to be restarted) is no spare.
    running.delete('n1');
    expect(roster.spares()).toEqual([]);
  });

  it('offers nothing from a slot that used all its ids', () => {
    const roster = new Roster(fakeCluster(new Set(['n1', 'n2', 'n3'])), ['n1', 'n2', 'n3', 'n4'], ['n1', 'n2', 'n3'], 2);
    expect(roster.takeSpare('n4', 'membership')).toBe(true);
    roster.release('n4', 'membership');
    expect(roster.takeSpare('n4.2', 'membership')).toBe(true);
    roster.release('n4.2', 'membership');
    expect(roster.spares()).toEqual([]);
    expect(roster.exhaustedSlots()).toEqual(['n4']);
  });
});
