import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';

const protoPath = (name: string) => new URL(`../proto/raftlog/v1/${name}.proto`, import.meta.url).pathname;
const parse = (name: string) =>
  protobuf.parse(readFileSync(protoPath(name), 'utf8'), { keepCase: true, alternateCommentMode: true }).root;

function allTypes(namespace: protobuf.NamespaceBase): protobuf.Type[] {
  return namespace.nestedArray.flatMap((nested) => [
    ...(nested instanceof protobuf.Type ? [nested] : []),
    ...(nested instanceof protobuf.Namespace || nested instanceof protobuf.Type ? allTypes(nested) : []),
  ]);
}

describe('the wire and disk contracts in proto/', () => {
  it.each(['raft', 'client', 'command', 'storage'])('%s.proto parses and every type resolves', (name) => {
    const root = protobuf.loadSync(protoPath(name));
    expect(() => root.resolveAll()).not.toThrow();
  });

  it('the client service raftlog.v1.RaftLog offers the documented calls', () => {
    const service = parse('client').lookupService('raftlog.v1.RaftLog');
    expect(Object.keys(service.methods).sort()).toEqual(['Append', 'CompareAndSwap', 'Delete', 'Get', 'Put', 'ReadLog', 'Status']);
  });

  it('every field of the client API that is not obvious from its message says what it means', () => {
    const undocumented = allTypes(parse('client'))
      .flatMap((type) => type.fieldsArray.map((field) => ({ type: type.name, field })))
      .filter(({ field }) => !field.comment && !['key', 'value', 'position', 'term'].includes(field.name))
      .map(({ type, field }) => `${type}.${field.name}`);
    expect(undocumented).toEqual([]);
  });
});
