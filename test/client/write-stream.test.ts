import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { CallReply, CallRequest } from '../../src/api/client-api.js';
import {
  RaftLogClient,
  RaftLogError,
  RaftLogIndeterminateError,
  RaftLogInvalidArgumentError,
  RaftLogUnavailableError,
} from '../../src/client/index.js';
import { raftLogService } from '../../src/client/proto.js';

/**
 * A client with writeTransport 'calls' against stand-in nodes that serve
 * nothing but Calls, each answering every write as the test scripts it:
 * what the client makes of an answer, a failure, a stream that breaks, and
 * silence.
 */
type Script = (request: CallRequest, stream: grpc.ServerDuplexStream<CallRequest, CallReply>) => void;

const servers: grpc.Server[] = [];
const clients: RaftLogClient[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
  for (const server of servers.splice(0)) server.forceShutdown();
});

async function standIn(script: Script, served: CallRequest[] = []): Promise<string> {
  const server = new grpc.Server();
  servers.push(server);
  const handlers: grpc.UntypedServiceImplementation = {
    Calls: (stream: grpc.ServerDuplexStream<CallRequest, CallReply>) => {
      stream.on('data', (request: CallRequest) => {
        served.push(request);
        script(request, stream);
      });
      stream.on('end', () => stream.end());
    },
  };
  server.addService(raftLogService, handlers);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
  );
  return `127.0.0.1:${port}`;
}

function clientOf(endpoints: string[], deadlineMs = 3_000): RaftLogClient {
  const client = new RaftLogClient({ endpoints, writeTransport: 'calls', discoverLeader: false, deadlineMs, backoff: { initialMs: 5, maxMs: 20 } });
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
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
    );
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
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error))),
    );
    const client = clientOf([`127.0.0.1:${port}`]);
    expect((await client.put('a', 'v')).index).toBe(21);
    expect((await client.put('b', 'v')).index).toBe(22);
    expect(puts).toEqual(['a', 'b']);
    expect(streams).toBe(1);
  });

  it('refuses a writeTransport it does not know, naming what it was given', () => {
    expect(() => new RaftLogClient({ endpoints: ['127.0.0.1:1'], writeTransport: 'udp' as 'calls' })).toThrow(
      "writeTransport must be 'unary' or 'calls', got udp",
    );
  });
});
