import { createServer, type Server } from 'node:net';

/**
 * A free port for a process to listen on, below Linux's ephemeral range
 * (32768-60999). A port the OS hands out for port 0 would do for a moment,
 * but it comes from that range, where the OS keeps handing out ports: between
 * the pick and the node's listen, another process's port-0 listener (a node's
 * failpoint control, a metrics server) or an outgoing connection may take it.
 * jepsen-lite lost a run that way (a node's failpoint control took the port
 * picked for another node).
 */
export async function freePort(): Promise<number> {
  return freeBasePort(1);
}

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
