import { createServer, type Server } from 'node:net';

/** A base port with `count` consecutive free ports, below Linux's ephemeral range (where other tests' OS-assigned ports come from). */
export async function freeBasePort(count: number): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * (32_000 - 20_000));
    const servers: Server[] = [];
    try {
      for (let port = base; port < base + count; port++) servers.push(await listenOn(port));
      return base;
    } catch {
      // taken: try another base
    } finally {
      await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
    }
  }
  throw new Error(`no ${count} consecutive free ports found`);
}

/** A server holding 127.0.0.1:`port` for itself alone; rejects when the port is taken. */
export function listenOn(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}
