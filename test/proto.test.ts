import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

const protoPath = (name: string) => new URL(`../proto/raftlog/v1/${name}.proto`, import.meta.url).pathname;
const parse = (name: string) => protobuf.parse(readFileSync(protoPath(name), 'utf8'), { keepCase: true, alternateCommentMode: true }).root;

function allTypes(namespace: protobuf.NamespaceBase): protobuf.Type[] {
  return namespace.nestedArray.flatMap((nested) => [
    ...(nested instanceof protobuf.Type ? [nested] : []),
    ...(nested instanceof protobuf.Namespace || nested instanceof protobuf.Type ? allTypes(nested) : []),
  ]);
}

describe('the wire and disk contracts in proto/', () => {
  it.each(['raft', 'client', 'cluster', 'command', 'storage'])('%s.proto parses and every type resolves', (name) => {
    const root = protobuf.loadSync(protoPath(name));
    expect(() => root.resolveAll()).not.toThrow();
  });

  it('the client service raftlog.v1.RaftLog offers the documented calls', () => {
    const service = parse('client').lookupService('raftlog.v1.RaftLog');
    expect(Object.keys(service.methods).sort()).toEqual([
      'Append',
      'Calls',
      'CommitPosition',
      'CompareAndSwap',
      'Consumers',
      'Delete',
      'DeleteConsumer',
      'Get',
      'Put',
      'ReadLog',
      'RegisterProducer',
      'Status',
      'Subscribe',
    ]);
    expect(service.methods.Subscribe?.responseStream).toBe(true);
    expect(service.methods.Calls).toMatchObject({ requestStream: true, responseStream: true });
  });

  it('every field of the client API that is not obvious from its message says what it means', () => {
    const undocumented = allTypes(parse('client'))
      .flatMap((type) => type.fieldsArray.map((field) => ({ type: type.name, field })))
      .filter(({ field }) => !field.comment && !['key', 'value', 'position', 'term'].includes(field.name))
      .map(({ type, field }) => `${type}.${field.name}`);
    expect(undocumented).toEqual([]);
  });

  it('the membership service raftlog.v1.Cluster offers list, add, promote, remove and leadership transfer, and every change answers with the configuration and its index', () => {
    const root = parse('cluster');
    const service = root.lookupService('raftlog.v1.Cluster');
    expect(Object.keys(service.methods).sort()).toEqual(['MemberAdd', 'MemberList', 'MemberPromote', 'MemberRemove', 'TransferLeadership']);
    expect(service.methods.TransferLeadership?.responseType).toBe('TransferLeadershipReply');
    for (const method of ['MemberAdd', 'MemberPromote', 'MemberRemove']) {
      expect(service.methods[method]!.responseType, method).toBe('MemberChangeReply');
    }
    const reply = root.lookupType('raftlog.v1.MemberChangeReply');
    expect(reply.fields.members?.repeated).toBe(true);
    expect(reply.fields.index?.type).toBe('uint64');
    expect(Object.keys(root.lookupType('raftlog.v1.MemberAddRequest').fields).sort()).toEqual(['address', 'id', 'learner']);
    expect(Object.keys(root.lookupType('raftlog.v1.Member').fields).sort()).toEqual(['address', 'id', 'match_index', 'role']);
  });

  it('every field of the membership API says what it means, for clients in other languages', () => {
    const undocumented = allTypes(parse('cluster'))
      .flatMap((type) => type.fieldsArray.map((field) => `${type.name}.${field.name}${field.comment ? '' : ' (undocumented)'}`))
      .filter((field) => field.endsWith('(undocumented)'));
    expect(undocumented).toEqual([]);
  });

  it('Status lists the members with their role and, on the leader, their match index', () => {
    const status = parse('client').lookupType('raftlog.v1.StatusReply');
    expect(status.fields.member_status).toMatchObject({ id: 12, repeated: true, type: 'MemberStatus' });
    expect(Object.keys(parse('client').lookupType('raftlog.v1.MemberStatus').fields).sort()).toEqual(['address', 'id', 'match_index', 'role']);
  });
});
