/**
 * The client's bookkeeping of a producer session, without a server: which
 * session a write is stamped with, its sequence number, and the
 * acknowledged_below it carries (the lowest number whose answer the client
 * still awaits), as writes start, finish out of order, and the cluster
 * forgets the session.
 */
import { describe, expect, it, vi } from 'vitest';
import { MAX_SEQUENCE_SPAN, ProducerSession, type ProducerWrite } from '../../src/client/producer-session.js';
import { MAX_UNACKNOWLEDGED_WRITES } from '../../src/node/producer-sessions.js';

/** A registration the test resolves or rejects when it likes. */
function pendingRegistration(): { register: () => Promise<number>; calls: () => number; resolve(id: number): void; reject(error: Error): void } {
  let calls = 0;
  let settle: { resolve(id: number): void; reject(error: Error): void } | null = null;
  return {
    register: () => {
      calls++;
      return new Promise<number>((resolve, reject) => {
        settle = { resolve, reject };
      });
    },
    calls: () => calls,
    resolve: (id) => settle?.resolve(id),
    reject: (error) => settle?.reject(error),
  };
}

async function writes(session: ProducerSession, count: number, id = 7): Promise<ProducerWrite[]> {
  const out: ProducerWrite[] = [];
  for (let i = 0; i < count; i++) out.push(await session.begin(() => Promise.resolve(id)));
  return out;
}

describe('numbering', () => {
  it('the first write registers a session; writes are numbered 1, 2, 3 under its id', async () => {
    const session = new ProducerSession();
    const register = vi.fn(() => Promise.resolve(42));
    expect(session.producerId).toBeNull();

    const [a, b, c] = [await session.begin(register), await session.begin(register), await session.begin(register)];

    expect(register).toHaveBeenCalledTimes(1);
    expect(session.producerId).toBe(42);
    expect([a, b, c].map((w) => w?.stamp())).toEqual([
      { producerId: 42, sequence: 1, acknowledgedBelow: 1 },
      { producerId: 42, sequence: 2, acknowledgedBelow: 1 },
      { producerId: 42, sequence: 3, acknowledgedBelow: 1 },
    ]);
  });

  it('a write keeps its number on every stamp (a retry is recognisable), while acknowledged_below moves on with other answers', async () => {
    const session = new ProducerSession();
    const [first, second] = await writes(session, 2);
    expect(second!.stamp()).toEqual({ producerId: 7, sequence: 2, acknowledgedBelow: 1 });

    first!.finish();

    expect(second!.stamp()).toEqual({ producerId: 7, sequence: 2, acknowledgedBelow: 2 });
  });

  it('a finished write cannot be stamped again: its number may already be acknowledged', async () => {
    const session = new ProducerSession();
    const [write] = await writes(session, 1);
    write!.finish();
    expect(() => write!.stamp()).toThrow(/write 1 is finished/);
  });
});

describe('acknowledged_below: the lowest number whose answer has not arrived', () => {
  it('with every answer in, it is the next number to be handed out', async () => {
    const session = new ProducerSession();
    for (const write of await writes(session, 3)) write.finish();
    expect(session.acknowledgedBelow).toBe(4);
    const [next] = await writes(session, 1);
    expect(next!.stamp()).toEqual({ producerId: 7, sequence: 4, acknowledgedBelow: 4 });
  });

  it('answers arriving out of order move it only past a gapless prefix', async () => {
    const session = new ProducerSession();
    const [w1, w2, w3, w4] = await writes(session, 4);

    w3!.finish();
    expect(session.acknowledgedBelow).toBe(1);
    w1!.finish();
    expect(session.acknowledgedBelow).toBe(2);
    w2!.finish();
    expect(session.acknowledgedBelow).toBe(4);
    expect(w4!.stamp().acknowledgedBelow).toBe(4);
    w4!.finish();
    expect(session.acknowledgedBelow).toBe(5);
    expect(session.openWrites).toBe(0);
  });

  it('never exceeds the number of a write still waiting (the cluster would refuse such a stamp)', async () => {
    const session = new ProducerSession();
    const all = await writes(session, 50);
    // Finish in a scrambled order; every open write's stamp stays valid throughout.
    const order = all.map((_, i) => (i * 17) % all.length);
    const finished = new Set<number>();
    for (const i of order) {
      all[i]!.finish();
      finished.add(i);
      for (const [j, write] of all.entries()) {
        if (finished.has(j)) continue;
        const stamp = write.stamp();
        expect(stamp.acknowledgedBelow).toBeLessThanOrEqual(stamp.sequence);
      }
    }
    expect(session.acknowledgedBelow).toBe(51);
  });

  it('finishing a write twice changes nothing', async () => {
    const session = new ProducerSession();
    const [w1, w2] = await writes(session, 2);
    w2!.finish();
    w2!.finish();
    expect(session.acknowledgedBelow).toBe(1);
    expect(session.openWrites).toBe(1);
    w1!.finish();
    expect(session.acknowledgedBelow).toBe(3);
  });
});

describe('registration', () => {
  it('concurrent first writes share one registration and get distinct numbers', async () => {
    const session = new ProducerSession();
    const registration = pendingRegistration();
    const started = Array.from({ length: 5 }, () => session.begin(registration.register));

    registration.resolve(9);
    const numbered = await Promise.all(started);

    expect(registration.calls()).toBe(1);
    expect(numbered.map((w) => w.producerId)).toEqual([9, 9, 9, 9, 9]);
    expect(numbered.map((w) => w.sequence).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5]);
    expect(session.registered).toBe(1);
  });

  it('a failed registration fails every write waiting for it; the next write registers again', async () => {
    const session = new ProducerSession();
    const registration = pendingRegistration();
    const started = [session.begin(registration.register), session.begin(registration.register)];

    registration.reject(new Error('no leader'));

    for (const write of started) await expect(write).rejects.toThrow('no leader');
    expect(session.producerId).toBeNull();
    const retried = await session.begin(() => Promise.resolve(11));
    expect(retried.stamp()).toEqual({ producerId: 11, sequence: 1, acknowledgedBelow: 1 });
  });

  it('an id that is no positive integer fails the registration', async () => {
    const session = new ProducerSession();
    await expect(session.begin(() => Promise.resolve(0))).rejects.toThrow(/producer id 0/);
    expect(session.producerId).toBeNull();
  });
});

describe('a session the cluster forgot', () => {
  it('writes started after forget() register a new session, numbered from 1 again', async () => {
    const session = new ProducerSession();
    await writes(session, 3, 7);

    session.forget(7);
    expect(session.producerId).toBeNull();
    const [fresh] = await writes(session, 1, 20);

    expect(fresh!.stamp()).toEqual({ producerId: 20, sequence: 1, acknowledgedBelow: 1 });
    expect(session.registered).toBe(2);
  });

  it('writes of the old session keep their stamps, and finishing them does not move the new session', async () => {
    const session = new ProducerSession();
    const [old] = await writes(session, 1, 7);
    session.forget(7);
    const [fresh, fresher] = await writes(session, 2, 20);

    expect(old!.stamp()).toEqual({ producerId: 7, sequence: 1, acknowledgedBelow: 1 });
    old!.finish();
    expect(fresher!.stamp()).toEqual({ producerId: 20, sequence: 2, acknowledgedBelow: 1 });
    fresh!.finish();
    expect(session.acknowledgedBelow).toBe(2);
  });

  it('forgetting an id that a newer session already replaced does nothing', async () => {
    const session = new ProducerSession();
    await writes(session, 1, 7);
    session.forget(7);
    await writes(session, 1, 20);

    // A second write of session 7 learns late that 7 is gone.
    session.forget(7);

    expect(session.producerId).toBe(20);
    expect(session.registered).toBe(2);
  });

  it('several writes told at once that the session is gone share one new registration', async () => {
    const session = new ProducerSession();
    await writes(session, 3, 7);
    const registration = pendingRegistration();

    const renewed = [1, 2, 3].map(() => {
      session.forget(7);
      return session.begin(registration.register);
    });
    registration.resolve(30);

    expect((await Promise.all(renewed)).map((w) => w.stamp().producerId)).toEqual([30, 30, 30]);
    expect(registration.calls()).toBe(1);
  });
});

describe('the span of open numbers', () => {
  it(`a write that would open more than ${MAX_SEQUENCE_SPAN} numbers past the oldest open one waits until that one finishes`, async () => {
    const session = new ProducerSession();
    const open = await writes(session, MAX_SEQUENCE_SPAN);
    // Every write but the first has its answer: the cluster keeps their outcomes until acknowledged_below passes them.
    for (const write of open.slice(1)) write.finish();
    let started: ProducerWrite | null = null;
    const waiting = session.begin(() => Promise.resolve(7)).then((write) => (started = write));
    await new Promise((resolve) => setImmediate(resolve));
    expect(started).toBeNull();
    (open[0] as ProducerWrite).finish();
    const write = await waiting;
    expect(write.sequence).toBe(MAX_SEQUENCE_SPAN + 1);
    expect(write.stamp().acknowledgedBelow).toBe(MAX_SEQUENCE_SPAN + 1);
  });
});

it('the span stays within what the cluster keeps per session, so a write is never refused for it', () => {
  expect(MAX_SEQUENCE_SPAN).toBeLessThanOrEqual(MAX_UNACKNOWLEDGED_WRITES);
});
