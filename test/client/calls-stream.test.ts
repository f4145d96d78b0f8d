import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallReply, CallRequest } from '../../src/api/client-api.js';
import {
  RaftLogClient,
  RaftLogDeadlineExceededError,
  RaftLogError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import { raftLogService } from '../../src/client/proto.js';

/**
 * A client with writeTransport and readTransport 'calls' against stand-in
 * nodes that serve nothing but Calls (and, where a test says, the unary
 * method), each answering every call as the test scripts it: what the client
 * makes of an answer, a failure, a stream that breaks, and silence.
 */
type Script = (request: CallRequest, stream: grpc.ServerDuplexStream<CallRequest, CallReply>) => void;

const servers: grpc.Server[] = [];
const clients: RaftLogClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) server.forceShutdown();
});

/** Binds `server` to a free loopback port and returns the port. */
function listen(server: grpc.Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
  );
}

async function standIn(script: Script, served: CallRequest[] = [], unary: grpc.UntypedServiceImplementation = {}): Promise<string> {
  const server = new grpc.Server();
  servers.push(server);
  const handlers: grpc.UntypedServiceImplementation = {
    ...unary,
    Calls: (stream: grpc.ServerDuplexStream<CallRequest, CallReply>) => {
      stream.on('data', (request: CallRequest) => {
        served.push(request);
        script(request, stream);
      });
      stream.on('end', () => stream.end());
    },
  };
  server.addService(raftLogService, handlers);
  const port = await listen(server);
  return `127.0.0.1:${port}`;
}

function clientOf(endpoints: string[], deadlineMs = 3_000, readTransport: 'calls' | 'unary' = 'calls'): RaftLogClient {
  const client = new RaftLogClient({
    endpoints,
    writeTransport: 'calls',
    readTransport,
    discoverLeader: false,
    deadlineMs,
    backoff: { initialMs: 5, maxMs: 20 },
  });
  clients.push(client);
  return client;
}

const committed = (request: CallRequest, index: number): CallReply => ({
  id: String(request.id),
  [request.call as string]: { position: { index, term: 2 }, leader: 'n1', duplicate: false, existed: true },
});
const failed = (request: CallRequest, code: grpc.status, message: string, nothingWritten = false): CallReply => ({
  id: String(request.id),
  failure: { code, message, nothingWritten },
});

describe("the client's writes over a Calls stream", () => {
  it('sends each write as a message under its own id and reads its answer', async () => {
    const served: CallRequest[] = [];
    let index = 10;
    const node = await standIn((request, stream) => stream.write(committed(request, index++)), served);
    const client = clientOf([node]);
    const [put, append, removed] = await Promise.all([client.put('k', 'v'), client.append('r'), client.delete('k')]);
    expect([put.index, append.index, removed.index].sort()).toEqual([10, 11, 12]);
    expect(removed.existed).toBe(true);
    expect(served.map((r) => r.call).sort()).toEqual(['append', 'delete', 'put']);
    expect(new Set(served.map((r) => r.id)).size).toBe(3);
    expect(served.every((r) => r.timeoutMs > 0 && r.timeoutMs <= 3_000)).toBe(true);
  });

  it("takes a write's INVALID_ARGUMENT as the node's answer: not retried", async () => {
    const served: CallRequest[] = [];
    const node = await standIn((request, stream) => stream.write(failed(request, grpc.status.INVALID_ARGUMENT, 'value too large')), served);
    const error = await clientOf([node])
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect((error as Error).message).toContain('value too large');
    expect(served).toHaveLength(1);
  });

  it('tries the next node after an UNAVAILABLE that wrote nothing (a node that does not lead)', async () => {
    const refusing = await standIn((request, stream) => stream.write(failed(request, grpc.status.UNAVAILABLE, 'n1 does not lead', true)));
    const leader = await standIn((request, stream) => stream.write(committed(request, 7)));
    const put = await clientOf([refusing, leader]).put('k', 'v');
    expect(put.index).toBe(7);
  });

  it('reports a write whose stream broke before its answer as indeterminate, never as not written', async () => {
    const node = await standIn((_request, stream) => stream.emit('error', { code: grpc.status.UNAVAILABLE, details: 'node stopping' }));
    const error = await clientOf([node], 10_000)
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect(error).not.toBeInstanceOf(RaftLogUnavailableError);
    // Told by the stream's end, not by the deadline (that failure says "no answer on the Calls stream within the deadline").
    expect((error as Error).message).toContain('the Calls stream ended');
  });

  it('sends a write again to the next node when its stream was ended with OK before an answer (a stopping node read none of it)', async () => {
    const stopping = await standIn((_request, stream) => stream.end());
    const served: CallRequest[] = [];
    const leader = await standIn((request, stream) => stream.write(committed(request, 7)), served);
    const put = await clientOf([stopping, leader], 10_000).put('k', 'v');
    expect(put.index).toBe(7);
    expect(served).toHaveLength(1);
  });

  it('reports a write whose node went away (connection closed) as indeterminate', async () => {
    const node = await standIn(() => {
      for (const server of servers) server.forceShutdown();
    });
    const error = await clientOf([node], 10_000)
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
    expect((error as Error).message).toContain('the Calls stream ended');
  });

  it('reports a write with no answer by its deadline as indeterminate', async () => {
    const node = await standIn(() => undefined);
    const error = await clientOf([node], 500)
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('opens a new stream for the next write once one broke', async () => {
    let first = true;
    const node = await standIn((request, stream) => {
      if (first) {
        first = false;
        stream.emit('error', { code: grpc.status.UNAVAILABLE, details: 'broken' });
      } else {
        stream.write(committed(request, 3));
      }
    });
    const client = clientOf([node]);
    await expect(client.put('k', 'v')).rejects.toBeInstanceOf(RaftLogIndeterminateError);
    expect((await client.put('k', 'v')).index).toBe(3);
  });

  it('fails a write on a node with neither Calls nor the unary method (UNIMPLEMENTED) as not written, not indeterminate', async () => {
    const server = new grpc.Server();
    servers.push(server);
    server.addService(raftLogService, {});
    const port = await listen(server);
    const error = await clientOf([`127.0.0.1:${port}`])
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogError);
    expect(error).not.toBeInstanceOf(RaftLogIndeterminateError);
    expect((error as Error).message).toMatch(/UNIMPLEMENTED|not implemented/i);
  });

  it('sends the writes for a node without Calls (an older version) as unary calls, without asking its stream again for each', async () => {
    let streams = 0;
    const puts: string[] = [];
    const server = new grpc.Server();
    servers.push(server);
    const handlers: grpc.UntypedServiceImplementation = {
      Calls: (stream: grpc.ServerDuplexStream<CallRequest, CallReply>) => {
        streams++;
        stream.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'this node does not serve Calls' });
      },
      Put: (call: grpc.ServerUnaryCall<{ key: Uint8Array }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
        puts.push(Buffer.from(call.request.key).toString());
        callback(null, { position: { index: 20 + puts.length, term: 2 }, leader: 'n1' });
      },
    };
    server.addService(raftLogService, handlers);
    const port = await listen(server);
    const client = clientOf([`127.0.0.1:${port}`]);
    expect((await client.put('a', 'v')).index).toBe(21);
    expect((await client.put('b', 'v')).index).toBe(22);
    expect(puts).toEqual(['a', 'b']);
    expect(streams).toBe(1);
  });

  it('refuses a writeTransport or readTransport it does not know, naming what it was given', () => {
    expect(() => new RaftLogClient({ endpoints: ['127.0.0.1:1'], writeTransport: 'udp' as 'calls' })).toThrow(
      "writeTransport must be 'unary' or 'calls', got udp",
    );
    expect(() => new RaftLogClient({ endpoints: ['127.0.0.1:1'], readTransport: 'udp' as 'calls' })).toThrow(
      "readTransport must be 'unary' or 'calls', got udp",
    );
  });
});

const read = (request: CallRequest, value: string | null, readIndex: number): CallReply => ({
  id: String(request.id),
  get: { found: value !== null, value: Buffer.from(value ?? ''), readIndex: String(readIndex), leader: 'n1' },
});

/** A unary Get handler that answers `value` at `readIndex` and counts the keys it was asked for. */
function unaryGet(keys: string[], value: string, readIndex: number): grpc.UntypedServiceImplementation {
  return {
    Get: (call: grpc.ServerUnaryCall<{ key: Uint8Array }, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      keys.push(Buffer.from(call.request.key).toString());
      callback(null, { found: true, value: Buffer.from(value), readIndex, leader: 'n1' });
    },
  };
}

describe("the client's Gets over a Calls stream", () => {
  it('sends a Get as a message on the stream, beside the writes, and reads its answer', async () => {
    const served: CallRequest[] = [];
    const node = await standIn((request, stream) => {
      if (request.call === 'get') stream.write(read(request, Buffer.from(request.get?.key ?? []).toString() === 'k' ? 'v' : null, 41));
      else stream.write(committed(request, 40));
    }, served);
    const client = clientOf([node]);
    const [put, found, absent, local] = await Promise.all([
      client.put('k', 'v'),
      client.get('k'),
      client.get('other'),
      client.get('k', { consistency: 'local' }),
    ]);
    expect(put.index).toBe(40);
    expect(found).toMatchObject({ found: true, readIndex: 41, leader: 'n1', consistency: 'linearizable' });
    expect(Buffer.from(found.value ?? []).toString()).toBe('v');
    expect(absent).toMatchObject({ found: false, value: null });
    expect(local.consistency).toBe('local');
    expect(served.map((r) => `${r.call} ${r.get?.consistency ?? ''}`).sort()).toEqual([
      'get READ_CONSISTENCY_LINEARIZABLE',
      'get READ_CONSISTENCY_LINEARIZABLE',
      'get READ_CONSISTENCY_LOCAL',
      'put ',
    ]);
  });

  it('tries a Get again on the next node when its stream broke (a read has no outcome to leave open)', async () => {
    const breaking = await standIn((_request, stream) => stream.emit('error', { code: grpc.status.UNAVAILABLE, details: 'node stopping' }));
    const healthy = await standIn((request, stream) => stream.write(read(request, 'v', 9)));
    const got = await clientOf([breaking, healthy]).get('k');
    expect(got).toMatchObject({ found: true, readIndex: 9 });
  });

  it("takes a Get's INVALID_ARGUMENT about its key as the node's answer", async () => {
    const served: CallRequest[] = [];
    const keys: string[] = [];
    const node = await standIn(
      (request, stream) => stream.write(failed(request, grpc.status.INVALID_ARGUMENT, 'node n1: key is longer than 4096 bytes')),
      served,
      unaryGet(keys, 'never', 1),
    );
    const error = await clientOf([node])
      .get('k')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogInvalidArgumentError);
    expect(served).toHaveLength(1);
    expect(keys).toEqual([]);
  });

  it('sends the Gets for a node that serves only writes on Calls (an older version) as unary Gets, without asking its stream again', async () => {
    const served: CallRequest[] = [];
    const keys: string[] = [];
    // What a node from before Gets on Calls answers: the request names none of the writes it knows.
    const older = (request: CallRequest, stream: grpc.ServerDuplexStream<CallRequest, CallReply>) =>
      stream.write(
        request.call === 'get'
          ? failed(request, grpc.status.INVALID_ARGUMENT, `node n1: call ${request.id} names no write (put, delete, compare_and_swap or append)`)
          : committed(request, 5),
      );
    const node = await standIn(older, served, unaryGet(keys, 'v', 7));
    const client = clientOf([node]);
    expect(await client.get('a')).toMatchObject({ found: true, readIndex: 7 });
    expect(await client.get('b')).toMatchObject({ found: true, readIndex: 7 });
    expect((await client.put('c', 'v')).index).toBe(5);
    expect(keys).toEqual(['a', 'b']);
    expect(served.map((r) => r.call)).toEqual(['get', 'put']);
  });

  it('ends a Get unanswered by its deadline as a deadline error, and does not take an answer that comes after it', async () => {
    // The node answers 120 ms after the call's deadline: a write would still take that answer (it waits 250 ms
    // past its deadline for the node's own word on it), a Get has no use for it.
    const deadlineMs = 600;
    const node = await standIn((request, stream) => {
      setTimeout(() => stream.write(read(request, 'late', 15)), deadlineMs + 120);
    });
    const error = await clientOf([node], deadlineMs)
      .get('k')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RaftLogDeadlineExceededError);
    expect(error).not.toBeInstanceOf(RaftLogIndeterminateError);
  });

  it('sends a Get to the next node when its stream was ended with OK (a stopping node read none of it)', async () => {
    const stopping = await standIn((_request, stream) => stream.end());
    const healthy = await standIn((request, stream) => stream.write(read(request, 'v', 12)));
    expect(await clientOf([stopping, healthy], 10_000).get('k')).toMatchObject({ found: true, readIndex: 12 });
  });

  it('tries a Get again after the stream refused it with RESOURCE_EXHAUSTED (its calls in flight were at the bound)', async () => {
    let refused = 0;
    const node = await standIn((request, stream) => {
      if (refused++ < 2) stream.write(failed(request, grpc.status.RESOURCE_EXHAUSTED, '1000 calls of this stream are in flight', true));
      else stream.write(read(request, 'v', 13));
    });
    expect(await clientOf([node]).get('k')).toMatchObject({ found: true, readIndex: 13 });
    expect(refused).toBe(3);
  });

  it('sends the Gets for a node without Calls (UNIMPLEMENTED) as unary Gets', async () => {
    const keys: string[] = [];
    const server = new grpc.Server();
    servers.push(server);
    server.addService(raftLogService, {
      ...unaryGet(keys, 'v', 14),
      Calls: (stream: grpc.ServerDuplexStream<CallRequest, CallReply>) =>
        stream.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'this node does not serve Calls' }),
    });
    const port = await listen(server);
    const client = clientOf([`127.0.0.1:${port}`]);
    expect(await client.get('a')).toMatchObject({ found: true, readIndex: 14 });
    expect(await client.get('b')).toMatchObject({ found: true, readIndex: 14 });
    expect(keys).toEqual(['a', 'b']);
  });

  it("with readTransport 'unary' sends Gets as unary calls and only writes on the stream", async () => {
    const served: CallRequest[] = [];
    const keys: string[] = [];
    const node = await standIn((request, stream) => stream.write(committed(request, 3)), served, unaryGet(keys, 'v', 2));
    const client = clientOf([node], 3_000, 'unary');
    expect(await client.get('a')).toMatchObject({ found: true, readIndex: 2 });
    expect((await client.put('b', 'v')).index).toBe(3);
    expect(keys).toEqual(['a']);
    expect(served.map((r) => r.call)).toEqual(['put']);
  });
});
