import * as grpc from '@grpc/grpc-js';

/** Sends `bytes` as they are (no protobuf encoding) as the request of the unary method at `path`; resolves with its error, or null. */
export function sendRawBytes(client: grpc.Client, path: string, bytes: Buffer, deadlineMs = 10_000): Promise<grpc.ServiceError | null> {
  const identity = (buffer: Buffer) => buffer;
  return new Promise((resolve) => {
    client.makeUnaryRequest(path, identity, identity, bytes, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (error) =>
      resolve(error ?? null),
    );
  });
}
