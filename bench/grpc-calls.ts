/**
 * What gRPC itself costs per request in Node, with no Raft behind it: an
 * echo server in a child process answers 120-byte messages as unary calls
 * and as messages on one bidirectional stream, under a closed loop of C
 * workers. Prints requests per second and the CPU each side spends per
 * request: the reason the Calls stream exists (a unary call is an HTTP/2
 * stream with headers and trailers; a message on an open stream is a frame).
 *
 *   npm run bench:grpc-calls -- [--concurrency 1,64] [--seconds 5] [--rounds 2]
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';

const { values: args } = parseArgs({
  options: {
    concurrency: { type: 'string', default: '1,64' },
    seconds: { type: 'string', default: '5' },
    rounds: { type: 'string', default: '2' },
    serve: { type: 'boolean', default: false },
  },
});

const identity = (bytes: Buffer): Buffer => bytes;
const method = (name: string, stream: boolean) => ({
  path: `/bench.Echo/${name}`,
  requestStream: stream,
  responseStream: stream,
  requestSerialize: identity,
  requestDeserialize: identity,
  responseSerialize: identity,
  responseDeserialize: identity,
});
const service: grpc.ServiceDefinition = { Unary: method('Unary', false), Stream: method('Stream', true) };

interface CpuReport {
  readonly cpu: NodeJS.CpuUsage;
}

if (args.serve) {
  const server = new grpc.Server();
  server.addService(service, {
    Unary: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => callback(null, call.request),
    Stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.on('data', (message: Buffer) => call.write(message));
      call.on('end', () => call.end());
    },
  });
  server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, port) => {
    if (error !== null) throw error;
    process.send?.({ port });
  });
  process.on('message', () => process.send?.({ cpu: process.cpuUsage() } satisfies CpuReport));
} else {
  const seconds = Number(args.seconds);
  const server = fork(fileURLToPath(import.meta.url), ['--serve'], { execArgv: process.execArgv });
  try {
    const port = await new Promise<number>((resolve) => server.once('message', (m: { port: number }) => resolve(m.port)));
    const serverCpu = () =>
      new Promise<number>((resolve) => {
        server.once('message', (m: CpuReport) => resolve(m.cpu.user + m.cpu.system));
        server.send('cpu');
      });
    const Client = grpc.makeGenericClientConstructor(service, 'Echo');
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
      Unary: (request: Buffer, options: grpc.CallOptions, callback: (error: grpc.ServiceError | null) => void) => void;
      Stream: () => grpc.ClientDuplexStream<Buffer, Buffer>;
    };
    const payload = Buffer.alloc(120, 1);
    for (let round = 1; round <= Number(args.rounds); round++) {
      for (const concurrency of args.concurrency.split(',').map(Number)) {
        for (const kind of ['unary', 'stream'] as const) {
          let done = 0;
          let stop = false;
          const timer = setTimeout(() => (stop = true), seconds * 1000);
          const started = performance.now();
          const server0 = await serverCpu();
          const client0 = process.cpuUsage();
          if (kind === 'unary') {
            const once = () =>
              new Promise<void>((resolve, reject) => client.Unary(payload, { deadline: Date.now() + 5_000 }, (e) => (e ? reject(e) : resolve())));
            await Promise.all(
              Array.from({ length: concurrency }, async () => {
                while (!stop) {
                  await once();
                  done++;
                }
              }),
            );
          } else {
            const stream = client.Stream();
            const waiting: (() => void)[] = [];
            stream.on('data', () => {
              done++;
              waiting.shift()?.();
            });
            await Promise.all(
              Array.from({ length: concurrency }, async () => {
                while (!stop) await new Promise<void>((resolve) => waiting.push(resolve) && stream.write(payload));
              }),
            );
            stream.end();
          }
          clearTimeout(timer);
          const elapsed = (performance.now() - started) / 1000;
          const serverUs = (await serverCpu()) - server0;
          const clientCpu = process.cpuUsage(client0);
          console.log(
            `round ${round} ${kind.padEnd(6)} c=${concurrency}: ${Math.round(done / elapsed)} requests/s, ` +
              `server ${(serverUs / done).toFixed(1)} µs of CPU per request, client ${((clientCpu.user + clientCpu.system) / done).toFixed(1)} µs`,
          );
        }
      }
    }
    client.close();
  } finally {
    server.kill();
  }
}
