import { describe, expect, it } from 'vitest';
import { COMPACTION_DEFAULTS, NODE_USAGE, parseNodeArgs, UsageError } from '../../src/node/node-command.js';

const REQUIRED = ['--id', 'n1', '--listen', '127.0.0.1:7001', '--peers', 'n1=127.0.0.1:7001,n2=127.0.0.1:7002', '--data', '/tmp/n1'];

describe('raftlog node --snapshot-entries / --retain-entries', () => {
  it('defaults to snapshots sized by the log against the last snapshot (auto) and a 5,000-entry catch-up window', () => {
    const options = parseNodeArgs(REQUIRED);
    expect(options.snapshotEntries).toBe('auto');
    expect(options.retainEntries).toBe(5_000);
    expect(COMPACTION_DEFAULTS).toEqual({ snapshotEntries: 'auto', retainEntries: 5_000 });
    expect(parseNodeArgs([...REQUIRED, '--snapshot-entries', 'auto'])).toMatchObject({ snapshotEntries: 'auto' });
  });

  it('takes the values given, and 0 to turn snapshots and compaction off', () => {
    expect(parseNodeArgs([...REQUIRED, '--snapshot-entries', '300', '--retain-entries', '50'])).toMatchObject({
      snapshotEntries: 300,
      retainEntries: 50,
    });
    expect(parseNodeArgs([...REQUIRED, '--snapshot-entries=0', '--retain-entries=0'])).toMatchObject({
      snapshotEntries: 0,
      retainEntries: 0,
    });
  });

  it.each([
    ['--snapshot-entries', '-1', 'auto or a non-negative integer'],
    ['--snapshot-entries', '1.5', 'auto or a non-negative integer'],
    ['--snapshot-entries', '', 'auto or a non-negative integer'],
    ['--snapshot-entries', '1e4', 'auto or a non-negative integer'],
    ['--snapshot-entries', '0x10', 'auto or a non-negative integer'],
    ['--snapshot-entries', 'AUTO', 'auto or a non-negative integer'],
    ['--snapshot-entries', '99999999999999999999', 'auto or a non-negative integer'],
    ['--retain-entries', 'many', 'a non-negative integer'],
    ['--retain-entries', ' 5', 'a non-negative integer'],
    ['--retain-entries', '99999999999999999999', 'a non-negative integer'],
  ])('rejects %s "%s" with a usage error that names the flag and the value', (flag, value, expected) => {
    const parse = () => parseNodeArgs([...REQUIRED, `${flag}=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow(`${flag} must be ${expected}, got "${value}"`);
  });

  it('documents both flags in the usage text', () => {
    expect(NODE_USAGE).toContain('--snapshot-entries');
    expect(NODE_USAGE).toContain('--retain-entries');
  });
});

describe('raftlog node --max-uncommitted-bytes', () => {
  it('defaults to 4 MiB, takes a value, and documents the flag', () => {
    expect(parseNodeArgs(REQUIRED).maxUncommittedBytes).toBe(4 * 1024 * 1024);
    expect(parseNodeArgs([...REQUIRED, '--max-uncommitted-bytes', '65536']).maxUncommittedBytes).toBe(65_536);
    expect(NODE_USAGE).toContain('--max-uncommitted-bytes');
  });

  it.each(['0', '-5', 'lots'])('rejects "%s" with a usage error naming the flag', (value) => {
    const parse = () => parseNodeArgs([...REQUIRED, `--max-uncommitted-bytes=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow('--max-uncommitted-bytes must');
  });
});

describe('raftlog node --max-writes-in-progress', () => {
  it('defaults to 8, takes a value, and documents the flag', () => {
    expect(parseNodeArgs(REQUIRED).maxWritesInProgress).toBe(8);
    expect(parseNodeArgs([...REQUIRED, '--max-writes-in-progress', '1']).maxWritesInProgress).toBe(1);
    expect(NODE_USAGE).toContain('--max-writes-in-progress');
  });

  it.each(['0', '-1', '2.5', 'many'])('rejects "%s" with a usage error naming the flag', (value) => {
    const parse = () => parseNodeArgs([...REQUIRED, `--max-writes-in-progress=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow('--max-writes-in-progress must');
  });
});

describe('raftlog node --journal', () => {
  it('defaults to on, takes followers and off, and documents the flag', () => {
    expect(parseNodeArgs(REQUIRED).journal).toBe('on');
    expect(parseNodeArgs([...REQUIRED, '--journal', 'off']).journal).toBe('off');
    expect(parseNodeArgs([...REQUIRED, '--journal=on']).journal).toBe('on');
    expect(parseNodeArgs([...REQUIRED, '--journal=followers']).journal).toBe('followers');
    expect(NODE_USAGE).toContain('--journal on|followers|off');
  });

  it.each(['yes', '1', 'OFF', ''])('rejects "%s" with a usage error naming the flag', (value) => {
    const parse = () => parseNodeArgs([...REQUIRED, `--journal=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow('--journal takes on, followers or off');
  });
});

describe('raftlog node --commit-notice-ms', () => {
  it('defaults to 2, takes 0 (every commit notice sent at once), and documents the flag', () => {
    expect(parseNodeArgs(REQUIRED).commitNoticeDelayMs).toBe(2);
    expect(parseNodeArgs([...REQUIRED, '--commit-notice-ms', '0']).commitNoticeDelayMs).toBe(0);
    expect(NODE_USAGE).toContain('--commit-notice-ms');
  });

  it.each(['-1', '0.5', 'soon'])('rejects "%s" with a usage error naming the flag', (value) => {
    const parse = () => parseNodeArgs([...REQUIRED, `--commit-notice-ms=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow('--commit-notice-ms must');
  });
});

describe('raftlog node --max-write-wait-ms', () => {
  it('defaults to 1000, takes 0 (never refuse), and documents the flag', () => {
    expect(parseNodeArgs(REQUIRED).maxWriteWaitMs).toBe(1000);
    expect(parseNodeArgs([...REQUIRED, '--max-write-wait-ms', '0']).maxWriteWaitMs).toBe(0);
    expect(NODE_USAGE).toContain('--max-write-wait-ms');
  });

  it.each(['-1', '2.5', 'soon'])('rejects "%s" with a usage error naming the flag', (value) => {
    const parse = () => parseNodeArgs([...REQUIRED, `--max-write-wait-ms=${value}`]);
    expect(parse).toThrow(UsageError);
    expect(parse).toThrow('--max-write-wait-ms must');
  });
});
