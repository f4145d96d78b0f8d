/**
 * A node for CLI tests of what real nodes never do (or do only by chance):
 * a grpc-js server of raftlog.v1.RaftLog on 127.0.0.1 whose handlers the
 * test writes, method by method. Methods it leaves out answer UNIMPLEMENTED.
 */
import * as grpc from '@grpc/grpc-js';
import type { RaftLogMethodName } from '../../src/api/client-api.js';
import { raftLogService } from '../../src/client/proto.js';

export type ScriptedHandlers = Partial<Record<RaftLogMethodName, grpc.UntypedHandleCall>>;

export class ScriptedNode {
  private constructor(
    private readonly server: grpc.Server,
    readonly endpoint: string,
  ) {}

  static async start(handlers: ScriptedHandlers): Promise<ScriptedNode> {
    const server = new grpc.Server();
    server.addService(raftLogService, handlers as grpc.UntypedServiceImplementation);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error === null ? resolve(bound) : reject(error)));
    });
    return new ScriptedNode(server, `127.0.0.1:${port}`);
  }

  /** Ends every call and connection at once (streams left open included). */
  stop(): void {
    this.server.forceShutdown();
  }
}
