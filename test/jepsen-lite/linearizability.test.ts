import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { checkLinearizability, formatViolation, type KeyVerdict, windowAsHistory } from './checkers/linearizability.js';
import { findFailingWindow } from './checkers/local-scan.js';
import { type RegisterOp, registerOperationsByKey } from './checkers/register-operations.js';
import { RegisterProblem, WHOLE_HISTORY } from './checkers/register-problem.js';
import { ETCD_KEY, ETCD_LINE_NS, parseEtcdLog } from './etcd-log.js';
import { type ClientEvent, COMPARE_FAILED, isNemesisEvent, parseHistory } from './history.js';

const MS = 1_000_000;

function loadHistory(file: string): ClientEvent[] {
  const text = readFileSync(new URL(`./histories/${file}`, import.meta.url), 'utf8');
  return parseHistory(text).filter((event): event is ClientEvent => !isNemesisEvent(event));
}

const verdictFor = (verdicts: readonly KeyVerdict[], key: string): KeyVerdict => {
  const verdict = verdicts.find((v) => v.key === key);
  if (verdict === undefined) throw new Error(`no verdict for ${key}`);
  return verdict;
};

/** An operation of a hand-made history, named by its process and invoke time. */
interface Culprit {
  readonly process: number;
  readonly invokedAtMs: number;
}

const goodHistories = [
  { file: 'concurrent-overlapping.jsonl', story: 'overlapping writes seen in either order by overlapping reads' },
  { file: 'info-write-visible-later.jsonl', story: 'a timed-out write that shows up long after it timed out' },
  { file: 'info-write-never-visible.jsonl', story: 'a timed-out write and an uncompleted cas that never show' },
  { file: 'compare-failed-cas.jsonl', story: 'refused cas ops, with and without an error, and one rejected for another reason' },
  { file: 'multi-key-valid.jsonl', story: 'three keys, each valid, with an append in between' },
];

const badHistories: { file: string; story: string; key: string; culprits: Culprit[] }[] = [
  {
    file: 'stale-read.jsonl',
    story: 'a read returns the value before a write that had already completed',
    key: 'k1',
    culprits: [
      { process: 0, invokedAtMs: 5 },
      { process: 1, invokedAtMs: 7 },
    ],
  },
  {
    file: 'lost-write.jsonl',
    story: 'an acknowledged write is never seen; later reads see the older value',
    key: 'k1',
    culprits: [
      { process: 2, invokedAtMs: 5 },
      { process: 0, invokedAtMs: 7 },
    ],
  },
  {
    file: 'double-cas.jsonl',
    story: 'two cas ops from the same expected value both succeed',
    key: 'k1',
    culprits: [
      { process: 1, invokedAtMs: 5 },
      { process: 2, invokedAtMs: 6 },
    ],
  },
  {
    file: 'read-of-unwritten-value.jsonl',
    story: 'a read returns a value nobody wrote',
    key: 'k1',
    culprits: [{ process: 1, invokedAtMs: 9 }],
  },
  {
    file: 'refused-cas-that-should-succeed.jsonl',
    story: 'a cas is refused while the register holds its expected value',
    key: 'k1',
    culprits: [{ process: 2, invokedAtMs: 5 }],
  },
  {
    file: 'multi-key-one-bad.jsonl',
    story: 'three keys, and only k2 has a stale read',
    key: 'k2',
    culprits: [
      { process: 1, invokedAtMs: 4 },
      { process: 0, invokedAtMs: 7 },
    ],
  },
];

describe('hand-made histories get their known verdict', () => {
  it.each(goodHistories)('linearizable: $story ($file)', ({ file }) => {
    const result = checkLinearizability(loadHistory(file));
    expect(result.keys.map((k) => [k.key, k.valid, k.window])).toEqual(result.keys.map((k) => [k.key, true, undefined]));
    expect(result.valid).toBe(true);
  });

  it.each(badHistories)('not linearizable: $story ($file)', ({ file, key }) => {
    const result = checkLinearizability(loadHistory(file));
    expect(result.valid).toBe(false);
    expect(result.keys.filter((k) => k.valid === false).map((k) => k.key)).toEqual([key]);
  });

  it('checks each key on its own, so one bad key does not taint the others', () => {
    const result = checkLinearizability(loadHistory('multi-key-one-bad.jsonl'));
    expect(result.keys.map((k) => [k.key, k.valid])).toEqual([
      ['k1', true],
      ['k2', false],
      ['k3', true],
    ]);
  });
});

describe('the violation window', () => {
  it.each(badHistories)('for $file holds the offending operations and fewer than the whole key history', ({ file, key, culprits }) => {
    const verdict = verdictFor(checkLinearizability(loadHistory(file)).keys, key);
    const window = verdict.window;
    expect(window).toBeDefined();
    const inWindow = (window?.ops ?? []).map((op) => ({ process: op.invoke.process, invokedAtMs: op.invoke.time / MS }));
    expect(inWindow).toEqual(expect.arrayContaining(culprits));
    expect(window?.ops.length).toBeLessThan(verdict.operations);
    expect(window?.shrunk).toBe(true);
  });

  it.each(badHistories)('for $file is not linearizable on its own either', ({ file, key }) => {
    const window = verdictFor(checkLinearizability(loadHistory(file)).keys, key).window;
    if (window === undefined) throw new Error('no window');
    const again = checkLinearizability(windowAsHistory(window));
    expect(again.valid).toBe(false);
    expect(bruteForceLinearizable(windowAsHistory(window))).toBe(false);
  });

  it('is printed as a table of its operations', () => {
    const verdict = verdictFor(checkLinearizability(loadHistory('stale-read.jsonl')).keys, 'k1');
    const text = formatViolation(verdict);
    const lines = text.split('\n');
    expect(lines[0]).toContain('key "k1" is not linearizable');
    expect(lines[0]).toContain('2 of its 7 operations, from 5.000 ms to 8.000 ms');
    expect(lines[1]?.split(/\s+/).filter(Boolean)).toEqual(['process', 'type', 'f', 'value', 'invoke', 'ms', 'complete', 'ms', 'node']);
    expect(lines.slice(2).map((line) => line.trim().split(/\s+/))).toEqual([
      ['0', 'ok', 'write', '2', '5.000', '6.000', 'n1'],
      ['1', 'ok', 'read', '1', '7.000', '8.000', 'n3'],
    ]);
  });

  it('marks operations that cross its edges, which only may have taken effect', () => {
    // The stale read of 2 after the write of 3 is the violation; p3's long write of 5 straddles its start.
    const events = [...op(1, 'write', 2, 2, 4), ...op(3, 'write', 5, 3, 20), ...op(0, 'write', 3, 7, 8), ...op(2, 'read', null, 9, 10, { read: 2 })];
    const verdict = verdictFor(checkLinearizability(events).keys, 'k');
    expect(verdict.valid).toBe(false);
    const text = formatViolation(verdict);
    expect(text).toContain('from 7.000 ms to 10.000 ms');
    expect(text).toMatch(/^\*\s+3\s+ok\s+write\s+5\s+3\.000\s+20\.000\s+n1$/m);
    expect(text).toContain('* crosses an edge of the window');
    expect(checkLinearizability(windowAsHistory(verdict.window!)).valid).toBe(false);
  });
});

describe('a long history', () => {
  // 1500 operations one after another: writes of 0..4 each read back, and every 40 operations a write
  // of 7 that times out. One read, late in the history, returns the value before the last write.
  const longHistory = (): { events: ClientEvent[]; staleReadAtMs: number } => {
    const events: ClientEvent[] = [];
    let staleReadAtMs = -1;
    let current: number | null = null;
    let previous: number | null = null;
    for (let i = 0; i < 1500; i++) {
      const at = 10 * i;
      if (i % 40 === 39) events.push(...op(100 + i, 'write', 7, at, at + 5, { type: 'info', error: 'timed-out' }));
      else if (i % 2 === 0) {
        events.push(...op(i % 3, 'write', i % 5, at, at + 5));
        [previous, current] = [current, i % 5];
      } else if (i === 1201) {
        staleReadAtMs = at;
        events.push(...op(i % 3, 'read', null, at, at + 5, { read: previous }));
      } else events.push(...op(i % 3, 'read', null, at, at + 5, { read: current }));
    }
    return { events, staleReadAtMs };
  };

  it('has its local anomaly found by scanning short windows', () => {
    const { events, staleReadAtMs } = longHistory();
    const problem = new RegisterProblem(registerOperationsByKey(events)[0]?.ops ?? []);
    const span = findFailingWindow(problem, performance.now() + 10_000);
    expect(span).not.toBeNull();
    expect(span!.from).toBeLessThanOrEqual(staleReadAtMs * MS);
    expect(span!.to).toBeGreaterThanOrEqual(staleReadAtMs * MS);
    // The first windows hold 64 certain operations, 10 ms apart, give or take the timed-out writes among them.
    expect((span!.to - span!.from) / MS).toBeLessThan(70 * 10);
  });

  it('gets a violation window of the read and the write it missed', () => {
    const { events, staleReadAtMs } = longHistory();
    const verdict = checkLinearizability(events).keys[0];
    expect(verdict?.valid).toBe(false);
    const certain = verdict?.window?.ops.filter((o) => !o.crossesEdge).map((o) => [o.invoke.f, o.invoke.time / MS]);
    expect(certain).toEqual([
      ['write', staleReadAtMs - 10],
      ['read', staleReadAtMs],
    ]);
  });
});

describe('what the events mean', () => {
  it('a timed-out cas may have taken effect: a later read of its new value is fine', () => {
    const events = [...op(0, 'write', 1, 0, 1), ...op(1, 'cas', [1, 2], 2, 3, { type: 'info' }), ...op(2, 'read', null, 9, 10, { read: 2 })];
    expect(checkLinearizability(events).valid).toBe(true);
  });

  it('a failed write took no effect: reading its value is a violation', () => {
    const events = [...op(0, 'write', 1, 0, 1, { type: 'fail', error: 'not-leader' }), ...op(1, 'read', null, 2, 3, { read: 1 })];
    expect(checkLinearizability(events).valid).toBe(false);
  });

  it('a failed or timed-out read observed nothing', () => {
    const events = [
      ...op(0, 'write', 1, 0, 1),
      ...op(1, 'read', 7, 2, 3, { type: 'fail', error: 'timed-out' }),
      ...op(2, 'read', 7, 4, 5, { type: 'info' }),
    ];
    expect(checkLinearizability(events).valid).toBe(true);
  });

  it('an operation that never completed may land at any later time, or never', () => {
    const events = [
      ...op(0, 'write', 1, 0, 1),
      ...op(1, 'write', 5, 2, null),
      ...op(0, 'read', null, 3, 4, { read: 1 }),
      ...op(0, 'read', null, 50, 51, { read: 5 }),
    ];
    expect(checkLinearizability(events).valid).toBe(true);
  });

  it('ignores appends, and an empty history is linearizable', () => {
    const append: ClientEvent[] = [
      { process: 0, type: 'invoke', f: 'append', key: null, value: 1, time: 0, node: 'n1' },
      { process: 0, type: 'ok', f: 'append', key: null, value: 1, time: 1, node: 'n1', index: 3 },
    ];
    expect(checkLinearizability(append)).toEqual({ valid: true, keys: [] });
    expect(checkLinearizability([])).toEqual({ valid: true, keys: [] });
  });
});

describe('agreement with a brute-force checker', () => {
  it('on 1000 random small histories, valid and not', () => {
    const random = seeded(7);
    let invalid = 0;
    for (let i = 0; i < 1000; i++) {
      const events = randomHistory(random);
      const expected = bruteForceLinearizable(events);
      const verdict = checkLinearizability(events);
      expect({ i, valid: verdict.valid }).toEqual({ i, valid: expected });
      if (verdict.valid === false) {
        invalid++;
        const window = verdict.keys[0]?.window;
        if (window === undefined) throw new Error('no window');
        expect({ i, windowIsLinearizable: bruteForceLinearizable(windowAsHistory(window)) }).toEqual({ i, windowIsLinearizable: false });
        // A window that starts later than the history holds for any value the register can hold when it opens.
        if (window.startNs !== null) {
          for (const value of writtenValues(events)) {
            const before = window.startNs - 2 * MS;
            const setUp = [...op(99, 'write', value, before / MS, before / MS + 1)].map((e) => ({ ...e, key: window.ops[0]!.invoke.key }));
            expect({ i, value, windowIsLinearizable: bruteForceLinearizable([...setUp, ...windowAsHistory(window)]) }).toEqual({
              i,
              value,
              windowIsLinearizable: false,
            });
          }
        }
      }
    }
    // Both verdicts must be well represented for the comparison to mean anything.
    expect(invalid).toBeGreaterThan(200);
    expect(invalid).toBeLessThan(800);
  });
});

describe('the relaxed search, which lets an operation of unknown outcome take effect more than once', () => {
  it('never rejects a linearizable history, and rejects most that are not', () => {
    const random = seeded(11);
    let rejected = 0;
    let invalid = 0;
    for (let i = 0; i < 1000; i++) {
      const events = randomHistory(random);
      const linearizable = bruteForceLinearizable(events);
      const ops = registerOperationsByKey(events)[0]?.ops ?? [];
      const relaxed = new RegisterProblem(ops).check(WHOLE_HISTORY, performance.now() + 1_000, 'relaxed');
      if (relaxed === 'not-linearizable') {
        expect({ i, linearizable }).toEqual({ i, linearizable: false });
        rejected++;
      }
      if (!linearizable) invalid++;
    }
    expect(rejected).toBeGreaterThan(invalid * 0.9);
  });
});

describe('the time budget', () => {
  it('gives "unknown", not a guess, when it runs out', () => {
    // 24 concurrent writes, then two reads of different values with no write between them: refuting
    // that means trying every order of the writes.
    const events = [
      ...Array.from({ length: 24 }, (_, p) => op(p, 'write', p + 1, 0, 100)).flat(),
      ...op(30, 'read', null, 101, 102, { read: 1 }),
      ...op(30, 'read', null, 103, 104, { read: 2 }),
    ];
    const started = performance.now();
    const result = checkLinearizability(events, { timeoutMs: 30 });
    expect(result.valid).toBe('unknown');
    expect(result.keys[0]).toMatchObject({ key: 'k', valid: 'unknown', operations: 26 });
    expect(result.keys[0]?.window).toBeUndefined();
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(formatViolation(result.keys[0]!)).toContain('undecided');
  });
});

describe('the Jepsen etcd log parser', () => {
  const log = [
    'INFO  jepsen.util - 0\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 1\t:invoke\t:write\t3',
    'INFO  jepsen.util - 0\t:ok\t:read\tnil',
    'INFO  jepsen.util - 2   :invoke :cas    [3 4]',
    'INFO  jepsen.util - 1\t:info\t:write\t:timed-out',
    'INFO  jepsen.util - 2   :fail   :cas    [3 4]',
    '',
    'INFO  jepsen.util - 3\t:invoke\t:read\tnil',
    'INFO  jepsen.util - 3\t:fail\t:read\t:timed-out',
    'INFO  jepsen.util - 4\t:invoke\t:cas\t[0 1]',
  ].join('\n');

  it('reads tab- and space-separated lines into events, one millisecond per line', () => {
    const events = parseEtcdLog(log);
    const base = { key: ETCD_KEY, node: '' };
    expect(events).toEqual([
      { ...base, process: 0, type: 'invoke', f: 'read', value: null, time: 1 * ETCD_LINE_NS },
      { ...base, process: 1, type: 'invoke', f: 'write', value: 3, time: 2 * ETCD_LINE_NS },
      { ...base, process: 0, type: 'ok', f: 'read', value: null, time: 3 * ETCD_LINE_NS },
      { ...base, process: 2, type: 'invoke', f: 'cas', value: [3, 4], time: 4 * ETCD_LINE_NS },
      // A timed-out operation's argument comes from its invoke.
      { ...base, process: 1, type: 'info', f: 'write', value: 3, time: 5 * ETCD_LINE_NS, error: 'timed-out' },
      // etcd fails a cas only when the comparison fails.
      { ...base, process: 2, type: 'fail', f: 'cas', value: [3, 4], time: 6 * ETCD_LINE_NS, error: COMPARE_FAILED },
      { ...base, process: 3, type: 'invoke', f: 'read', value: null, time: 8 * ETCD_LINE_NS },
      { ...base, process: 3, type: 'fail', f: 'read', value: null, time: 9 * ETCD_LINE_NS, error: 'timed-out' },
      // Never completed.
      { ...base, process: 4, type: 'invoke', f: 'cas', value: [0, 1], time: 10 * ETCD_LINE_NS },
    ]);
  });

  it('gives what it reads the meaning the checker expects', () => {
    const [etcd] = registerOperationsByKey(parseEtcdLog(log));
    const summary = (op: RegisterOp) => [op.kind, op.arg, op.ret === Infinity ? 'unknown' : 'done'];
    expect(etcd?.invoked).toBe(5);
    expect(etcd?.ops.map(summary)).toEqual([
      ['read', null, 'done'],
      ['write', 3, 'unknown'],
      ['cas-refused', 3, 'done'],
      ['cas', 0, 'unknown'],
    ]);
    expect(checkLinearizability(parseEtcdLog(log)).valid).toBe(true);
  });

  it('finds a violation, with the window in line numbers', () => {
    const stale = [
      'INFO  jepsen.util - 0\t:invoke\t:write\t1',
      'INFO  jepsen.util - 0\t:ok\t:write\t1',
      'INFO  jepsen.util - 1\t:invoke\t:read\tnil',
      'INFO  jepsen.util - 1\t:ok\t:read\tnil',
    ].join('\n');
    const [verdict] = checkLinearizability(parseEtcdLog(stale)).keys;
    expect(verdict?.valid).toBe(false);
    expect(formatViolation(verdict!)).toMatch(/^\s+1\s+ok\s+read\s+null\s+3\.000\s+4\.000\s*$/m);
  });

  it('names the line it cannot read', () => {
    expect(() => parseEtcdLog('INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - 0\t:ok\t:read\t[1')).toThrow(/line 2/);
    expect(() => parseEtcdLog('WARN something else entirely')).toThrow(/line 1/);
  });
});

// ---------------------------------------------------------------------------------------------------------------------

/** One operation on key `k`: its invoke and, unless `endMs` is null, its completion. */
function op(
  process: number,
  f: 'read' | 'write' | 'cas',
  value: unknown,
  startMs: number,
  endMs: number | null,
  completion: { type?: 'ok' | 'fail' | 'info'; read?: number | null; error?: string } = {},
): ClientEvent[] {
  const invoke: ClientEvent = { process, type: 'invoke', f, key: 'k', value: f === 'read' ? null : value, time: startMs * MS, node: 'n1' };
  if (endMs === null) return [invoke];
  const type = completion.type ?? 'ok';
  const result = f === 'read' ? (type === 'ok' ? (completion.read ?? null) : null) : value;
  return [invoke, { ...invoke, type, value: result, time: endMs * MS, ...(completion.error === undefined ? {} : { error: completion.error }) }];
}

/**
 * The definition, tried exhaustively: some order of the operations, leaving
 * out any whose outcome is unknown, that respects real time (an operation that
 * completed before another was invoked comes first) and is legal for a
 * register that starts empty. Independent of the checker's search.
 */
function bruteForceLinearizable(events: readonly ClientEvent[]): boolean {
  return registerOperationsByKey(events).every(({ ops }) => {
    const placed = ops.map(() => false);
    const certainLeft = (): boolean => ops.some((o, i) => !placed[i] && o.ret !== Infinity);
    const extend = (state: number | null): boolean => {
      if (!certainLeft()) return true;
      return ops.some((candidate, i) => {
        if (placed[i] || ops.some((other, j) => !placed[j] && other.ret < candidate.call)) return false;
        const after = apply(candidate, state);
        if (after === ILLEGAL) return false;
        placed[i] = true;
        const found = extend(after);
        placed[i] = false;
        return found;
      });
    };
    return extend(null);
  });
}

const writtenValues = (events: readonly ClientEvent[]): (number | null)[] =>
  registerOperationsByKey(events).flatMap(({ ops }) => ops.flatMap((o) => (o.kind === 'write' ? [o.arg] : o.kind === 'cas' ? [o.next] : [])));

const ILLEGAL = Symbol('illegal');

function apply(op: RegisterOp, state: number | null): number | null | typeof ILLEGAL {
  switch (op.kind) {
    case 'read':
      return state === op.arg ? state : ILLEGAL;
    case 'write':
      return op.arg;
    case 'cas':
      return state === op.arg ? op.next : ILLEGAL;
    case 'cas-refused':
      return state !== op.arg ? state : ILLEGAL;
  }
}

/**
 * Four processes run a few operations each against a simulated register
 * that applies each one at a random moment in its interval; timed-out ones
 * take effect or not at random. Then, now and then, a result is corrupted.
 */
function randomHistory(random: () => number): ClientEvent[] {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const value = () => pick([0, 1, 2]);
  interface Planned {
    process: number;
    f: 'read' | 'write' | 'cas';
    argument: unknown;
    start: number;
    end: number;
    at: number;
    timedOut: boolean;
    result?: number | null;
    refused?: boolean;
  }
  const planned: Planned[] = [];
  for (let process = 0; process < 4; process++) {
    let clock = Math.floor(random() * 3);
    const count = 1 + Math.floor(random() * 3);
    for (let k = 0; k < count; k++) {
      const f = pick(['read', 'write', 'cas'] as const);
      const start = clock;
      const end = start + 1 + Math.floor(random() * 6);
      const timedOut = f !== 'read' && random() < 0.2;
      const argument = f === 'write' ? value() : f === 'cas' ? [value(), value()] : null;
      planned.push({ process: process + (timedOut ? 10 * (k + 1) : 0), f, argument, start, end, at: start + random() * (end - start), timedOut });
      clock = end + 1 + Math.floor(random() * 3);
      if (timedOut) break;
    }
  }
  let state: number | null = null;
  for (const p of [...planned].sort((x, y) => x.at - y.at)) {
    if (p.timedOut && random() < 0.5) continue;
    if (p.f === 'read') p.result = state;
    else if (p.f === 'write') state = p.argument as number;
    else {
      const [expected, next] = p.argument as [number, number];
      if (state === expected) state = next;
      else p.refused = true;
    }
  }
  for (const p of planned) {
    if (random() < 0.15) {
      if (p.f === 'read') p.result = pick([null, 0, 1, 2]);
      else if (p.f === 'cas') p.refused = !p.refused;
    }
  }
  const events: ClientEvent[] = [];
  for (const p of planned) {
    const invoke: ClientEvent = { process: p.process, type: 'invoke', f: p.f, key: 'k', value: p.argument, time: p.start * MS, node: 'n1' };
    events.push(invoke);
    if (p.timedOut) events.push({ ...invoke, type: 'info', time: p.end * MS, error: 'timed-out' });
    else if (p.refused === true) events.push({ ...invoke, type: 'fail', time: p.end * MS, error: COMPARE_FAILED });
    else events.push({ ...invoke, type: 'ok', value: p.f === 'read' ? (p.result ?? null) : p.argument, time: p.end * MS });
  }
  return events.sort((x, y) => x.time - y.time || Number(x.type !== 'invoke') - Number(y.type !== 'invoke'));
}

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
