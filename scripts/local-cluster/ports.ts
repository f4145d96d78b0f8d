/** Whether the ports a cluster needs are free, checked before anything is started. */
import { createServer } from 'node:net';

/** Tries to listen on each port; returns those something else holds (or that cannot be bound). */
export async function busyPorts(host: string, ports: readonly number[]): Promise<number[]> {
  const free = await Promise.all(ports.map((port) => canListen(host, port)));
  return ports.filter((_, i) => !free[i]);
}

function canListen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}
