/**
 * The data directory's identity (issue 10): which cluster and which member it
 * belongs to, written once, checksummed, and checked at every open.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  CLUSTER_IDENTITY_KEY,
  decodeClusterIdentity,
  decodeMemberIdentity,
  encodeClusterIdentity,
  encodeMemberIdentity,
  MEMBER_IDENTITY_KEY,
  RecordError,
} from '../../src/log/codec.js';
import { DataDirError, LogCorruptionError } from '../../src/log/errors.js';
import { LevelLogStorage, type MemberToBind } from '../../src/log/level-storage.js';
import { entry, LogFixtures, storedKeys, tamper, voters } from './log-fixtures.js';

const fixtures = new LogFixtures();
const open: LevelLogStorage[] = [];

afterEach(async () => {
  for (const storage of open.splice(0)) await storage.close().catch(() => undefined);
  await fixtures.cleanUp();
});

const CLUSTER_ID = '0123456789abcdef';
const member = (id: string, clusterName = 'alpha', clusterId = CLUSTER_ID): MemberToBind => ({ id, clusterName, clusterId });

async function openAs(dir: string, who: MemberToBind | null): Promise<LevelLogStorage> {
  const storage = await LevelLogStorage.open(dir, who === null ? { voters } : { voters, member: who });
  open.push(storage);
  return storage;
}

async function close(storage: LevelLogStorage): Promise<void> {
  open.splice(open.indexOf(storage), 1);
  await storage.close();
}

describe('identity records', () => {
  it('round-trip through their checksummed encoding', () => {
    const cluster = { clusterId: 'fedcba9876543210', name: 'local-1a2b' };
    const self = { memberId: 'n3', incarnation: '00ff00ff00ff00ff' };
    expect(decodeClusterIdentity(encodeClusterIdentity(cluster))).toEqual(cluster);
    expect(decodeMemberIdentity(encodeMemberIdentity(self))).toEqual(self);
  });

  it('a flipped bit is a checksum mismatch, not another identity', () => {
    const value = encodeMemberIdentity({ memberId: 'n3', incarnation: '00ff00ff00ff00ff' });
    value[value.length - 2] = (value[value.length - 2] as number) ^ 0x01;
    expect(() => decodeMemberIdentity(value)).toThrow(/checksum mismatch/);
  });

  it('ids that are not 16 lowercase hex digits, and empty names, are refused both ways', () => {
    expect(() => encodeClusterIdentity({ clusterId: 'ABCDEF0123456789', name: 'a' })).toThrow(RecordError);
    expect(() => encodeClusterIdentity({ clusterId: CLUSTER_ID, name: '' })).toThrow(/cluster name is empty/);
    expect(() => encodeMemberIdentity({ memberId: 'n1', incarnation: '123' })).toThrow(/member incarnation "123"/);
    expect(() => encodeMemberIdentity({ memberId: '', incarnation: CLUSTER_ID })).toThrow(/member id is empty/);
    // A record that decodes as protobuf but holds an empty id (a bad tool wrote it) is refused on read.
    const empty = new Uint8Array([0, 0, 0, 0]);
    expect(() => decodeClusterIdentity(empty)).toThrow(/cluster id "" is not 16 lowercase hex digits/);
  });
});

describe('a data directory bound to its member and cluster', () => {
  it('a new directory is bound at its first open, with a random incarnation, and keeps that identity', async () => {
    const dir = await fixtures.freshDir();
    const first = await openAs(dir, member('n1'));
    expect(first.identityBound).toBe('created');
    const bound = first.identity();
    expect(bound).toMatchObject({ clusterId: CLUSTER_ID, clusterName: 'alpha', memberId: 'n1' });
    expect(bound?.incarnation).toMatch(/^[0-9a-f]{16}$/);
    await close(first);
    expect(await storedKeys(dir)).toEqual(expect.arrayContaining(['i', 'm', 'c']));

    // A restart finds the same identity; a cluster id computed differently now does not replace the stored one.
    const again = await openAs(dir, member('n1', 'alpha', 'aaaaaaaaaaaaaaaa'));
    expect(again.identityBound).toBeNull();
    expect(again.identity()).toEqual(bound);

    // Two directories of the same member are told apart by their incarnation.
    const other = await openAs(await fixtures.freshDir(), member('n1'));
    expect(other.identity()?.incarnation).not.toBe(bound?.incarnation);
  });

  it('opened with another --id: refused naming the directory and both ids, and nothing is written', async () => {
    const dir = await fixtures.freshDir();
    await close(await openAs(dir, member('n3')));
    const keysBefore = await storedKeys(dir);

    const error = await LevelLogStorage.open(dir, { voters, member: member('n1') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    const message = (error as Error).message;
    expect(message).toContain(dir);
    expect(message).toMatch(/belongs to member n3 of cluster "alpha" \(cluster id 0123456789abcdef\)/);
    expect(message).toMatch(/created with --id n3, and this node was started with --id n1/);
    expect(await storedKeys(dir)).toEqual(keysBefore);
    // The directory is still n3's.
    expect((await openAs(dir, member('n3'))).identity()?.memberId).toBe('n3');
  });

  it("opened under another cluster's name: refused naming both clusters", async () => {
    const dir = await fixtures.freshDir();
    await close(await openAs(dir, member('n3', 'beta', '1111111111111111')));
    const error = await LevelLogStorage.open(dir, { voters, member: member('n3', 'alpha', '2222222222222222') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataDirError);
    expect((error as Error).message).toContain(dir);
    expect((error as Error).message).toMatch(
      /belongs to member n3 of cluster "beta" \(cluster id 1111111111111111\), but this node was started with --cluster "alpha" \(cluster id 2222222222222222\)/,
    );
  });

  it('a log written before identities existed is bound at its next open ("adopted"), its data kept', async () => {
    const dir = await fixtures.freshDir();
    const old = await openAs(dir, null);
    await old.save({ term: 2, votedFor: 'n1', commit: 2 }, [entry(1, 1), entry(2, 2)]);
    expect(old.identity()).toBeNull();
    await close(old);
    expect(await storedKeys(dir)).not.toContain('i');

    const upgraded = await openAs(dir, member('n2'));
    expect(upgraded.identityBound).toBe('adopted');
    expect(upgraded.identity()).toMatchObject({ memberId: 'n2', clusterId: CLUSTER_ID });
    expect(upgraded.lastIndex()).toBe(2);
    expect(upgraded.initialState().hardState).toEqual({ term: 2, votedFor: 'n1', commit: 2 });
  });

  it('opened without a member (a tool reading it): the stored identity is reported, nothing is bound', async () => {
    const unbound = await fixtures.freshDir();
    await close(await openAs(unbound, null));
    expect(await storedKeys(unbound)).not.toContain('m');

    const dir = await fixtures.freshDir();
    const first = await openAs(dir, member('n2'));
    const bound = first.identity();
    await close(first);
    const reader = await LevelLogStorage.open(dir);
    open.push(reader);
    expect(reader.identity()).toEqual(bound);
    expect(reader.identityBound).toBeNull();
  });

  it('a corrupt or half-missing identity stops the open with the record named', async () => {
    const flipped = await fixtures.freshDir();
    await close(await openAs(flipped, member('n1')));
    await tamper(flipped, async (db) => {
      const value = (await db.get(CLUSTER_IDENTITY_KEY)) as Uint8Array;
      value[value.length - 1] = (value[value.length - 1] as number) ^ 0x04;
      await db.put(CLUSTER_IDENTITY_KEY, value);
    });
    const corrupt = await LevelLogStorage.open(flipped, { voters, member: member('n1') }).catch((e: unknown) => e);
    expect(corrupt).toBeInstanceOf(LogCorruptionError);
    expect((corrupt as Error).message).toContain(flipped);
    expect((corrupt as Error).message).toContain('cluster identity: checksum mismatch');

    const half = await fixtures.freshDir();
    await close(await openAs(half, member('n1')));
    await tamper(half, (db) => db.del(MEMBER_IDENTITY_KEY));
    const missing = await LevelLogStorage.open(half, { voters, member: member('n1') }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LogCorruptionError);
    expect((missing as Error).message).toMatch(/member identity: missing, though the cluster identity is stored/);
    // Not silently re-bound: the record is still missing.
    expect(await storedKeys(half)).not.toContain('m');
  });
});
