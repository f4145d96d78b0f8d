import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { FailpointError, Failpoints, parseAction } from '../../src/node/failpoints.js';

const quiet = pino({ level: 'silent' });

/** Whether `promise` settled by the time the event loop has gone round a few times. */
async function settledSoon(promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  void promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  return settled;
}

describe('failpoints', () => {
  let open: Failpoints | null = null;
  afterEach(async () => {
    await open?.close();
    open = null;
  });

  it('a production node has none: without RAFTLOG_FAILPOINTS(_LISTEN) in the environment there is no Failpoints object', () => {
    expect(Failpoints.fromEnvironment({}, quiet)).toBeNull();
    expect(Failpoints.fromEnvironment({ RAFTLOG_FAILPOINTS: 'log-write=delay(5)' }, quiet)?.isOn('log-write')).toBe(true);
  });

  it('actions parse, and anything else is refused with a message that lists the valid ones', () => {
    expect(parseAction(' delay(250) ')).toEqual({ kind: 'delay', ms: 250 });
    expect(parseAction('error(disk full)')).toEqual({ kind: 'error', message: 'disk full' });
    expect(parseAction('crash')).toEqual({ kind: 'crash' });
    expect(() => parseAction('delay(-1)')).toThrow(/use off, on, delay\(MS\), error\(TEXT\), crash or pause/);
    expect(() => parseAction('sleep')).toThrow(FailpointError);
    expect(parseAction('10%error(lost)')).toEqual({ kind: 'error', message: 'lost', percent: 10 });
    expect(() => parseAction('0%crash')).toThrow(/a chance is 1% to 99%/);
    expect(() => parseAction('100%crash')).toThrow(FailpointError);
    expect(() => Failpoints.fromEnvironment({ RAFTLOG_FAILPOINTS: 'no-such-place=crash' }, quiet)).toThrow(
      /no failpoint "no-such-place"; there are: log-write/,
    );
    expect(() => Failpoints.fromEnvironment({ RAFTLOG_FAILPOINTS: 'log-write' }, quiet)).toThrow(/not NAME=ACTION/);
  });

  it('error fails the operation at that place; crash ends the process there; an unset place does nothing', async () => {
    let crashed = 0;
    const failpoints = new Failpoints(quiet, () => crashed++);
    await failpoints.hit('log-write');
    failpoints.set('log-write', 'error(fsync: EIO)');
    await expect(failpoints.hit('log-write')).rejects.toThrow('failpoint log-write: fsync: EIO');
    failpoints.set('before-send', 'crash');
    failpoints.hitNow('before-send');
    expect(crashed).toBe(1);
    // A synchronous place cannot wait: delay and pause do nothing there.
    failpoints.set('before-reply', 'pause');
    expect(() => failpoints.hitNow('before-reply')).not.toThrow();
  });

  it('a planted bug is refused unless the node was started with RAFTLOG_FAILPOINTS_BUGS=1; the control listens on loopback only', async () => {
    expect(() => Failpoints.fromEnvironment({ RAFTLOG_FAILPOINTS: 'bug-read-local=on' }, quiet)).toThrow(
      /plants a bug: it is refused unless .*RAFTLOG_FAILPOINTS_BUGS=1/,
    );
    expect(Failpoints.fromEnvironment({ RAFTLOG_FAILPOINTS: 'bug-read-local=on', RAFTLOG_FAILPOINTS_BUGS: '1' }, quiet)?.isOn('bug-read-local')).toBe(
      true,
    );
    // Turning one off is always allowed.
    expect(() => new Failpoints(quiet).set('bug-read-local', 'off')).not.toThrow();
    await expect(new Failpoints(quiet).listen('0.0.0.0:0')).rejects.toThrow(/not a loopback address: the failpoint control has no authentication/);
  });

  it('pause holds the operation until the failpoint is set to something else', async () => {
    const failpoints = new Failpoints(quiet);
    failpoints.set('log-write', 'pause');
    const write = failpoints.hit('log-write');
    expect(await settledSoon(write)).toBe(false);
    failpoints.set('log-write', 'off');
    expect(await settledSoon(write)).toBe(true);
  });

  it('the HTTP control sets, lists and clears failpoints, and answers 400 with the reason for a bad one', async () => {
    const failpoints = new Failpoints(quiet);
    open = failpoints;
    const port = await failpoints.listen('127.0.0.1:0');
    const base = `http://127.0.0.1:${port}/failpoints`;
    expect((await fetch(`${base}/log-write`, { method: 'PUT', body: 'delay(3000)' })).status).toBe(204);
    expect(await (await fetch(base)).json()).toEqual({ 'log-write': 'delay(3000)' });
    const bad = await fetch(`${base}/log-write`, { method: 'PUT', body: 'explode' });
    expect(bad.status).toBe(400);
    expect(await bad.text()).toMatch(/"explode" is not a failpoint action/);
    expect((await fetch(`${base}/log-write`, { method: 'DELETE' })).status).toBe(204);
    expect(failpoints.isOn('log-write')).toBe(false);
  });

  it('closing lets whatever is paused go on (a node that stops never hangs at a failpoint)', async () => {
    const failpoints = new Failpoints(quiet);
    failpoints.set('snapshot-write', 'pause');
    const write = failpoints.hit('snapshot-write');
    await failpoints.close();
    expect(await settledSoon(write)).toBe(true);
    // What reaches a failpoint after the close (the write queue's next batch) passes too, and planted bugs are off.
    expect(await settledSoon(failpoints.hit('snapshot-write'))).toBe(true);
    expect(failpoints.isOn('snapshot-write')).toBe(false);
  });
});
