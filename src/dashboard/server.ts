/**
 * The dashboard's web server (node:http): the page and its script, and the
 * cluster's samples and timeline pushed to the page with server-sent events
 * (GET /events): a "hello" event with the latest sample and the whole
 * timeline, then a "sample" event with each new sample and the events it
 * brought. GET /state answers the same as JSON, for curl.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ClusterPoller, type PollerOptions, type SequencedEvent } from './cluster-poller.js';
import type { ClusterSample } from './cluster-sample.js';
import { DEFAULT_LISTEN, parseListen } from './listen.js';

export interface DashboardOptions extends PollerOptions {
  /** host:port to serve the page on; port 0 picks a free one. Default 127.0.0.1:8080. */
  readonly listen?: string;
}

export interface Dashboard {
  /** Where the page is, e.g. http://127.0.0.1:8080/ */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly poller: ClusterPoller;
  /** Stops polling, ends the pages' event streams and closes the server. */
  close(): Promise<void>;
}

/** What the page gets: the latest sample (null before the first poll ends) and timeline events. */
export interface DashboardMessage {
  readonly sample: ClusterSample | null;
  readonly events: readonly SequencedEvent[];
}

/** The page and its script, read once: they are part of the program, not of its data. */
const STATIC_FILES: ReadonlyMap<string, { readonly type: string; readonly body: Buffer }> = new Map([
  ['/', { type: 'text/html; charset=utf-8', body: readStatic('page.html') }],
  ['/page.js', { type: 'text/javascript; charset=utf-8', body: readStatic('page.js') }],
]);

function readStatic(name: string): Buffer {
  const url = new URL(`./static/${name}`, import.meta.url);
  try {
    return readFileSync(url);
  } catch (error) {
    throw new Error(`dashboard: cannot read ${url.pathname}: ${(error as Error).message}`, { cause: error });
  }
}

/** Everything the page loads comes from this server; nothing from anywhere else. */
const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:",
  'x-content-type-options': 'nosniff',
  'cache-control': 'no-store',
};

/** Starts polling the cluster and serving the page; resolves once the server listens. */
export async function startDashboard(options: DashboardOptions): Promise<Dashboard> {
  const { host, port } = parseListen(options.listen ?? DEFAULT_LISTEN);
  const poller = new ClusterPoller(options);
  const streams = new Set<ServerResponse>();

  const send = (response: ServerResponse, event: string, message: DashboardMessage) =>
    response.write(`event: ${event}\ndata: ${JSON.stringify(message)}\n\n`);
  poller.onSample((sample, events) => {
    for (const response of streams) send(response, 'sample', { sample, events });
  });

  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const path = new URL(request.url ?? '/', 'http://dashboard').pathname;
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('only GET and HEAD\n');
      return;
    }
    const file = STATIC_FILES.get(path === '/index.html' ? '/' : path);
    if (file !== undefined) {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': file.type, 'content-length': file.body.byteLength });
      response.end(request.method === 'HEAD' ? undefined : file.body);
    } else if (path === '/state') {
      const body = JSON.stringify({ sample: poller.latest, events: poller.events } satisfies DashboardMessage);
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'application/json' }).end(body);
    } else if (path === '/events') {
      response.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream', connection: 'keep-alive' });
      // The browser reconnects by itself after this long if the stream breaks (the dashboard restarted).
      response.write('retry: 2000\n\n');
      send(response, 'hello', { sample: poller.latest, events: poller.events });
      streams.add(response);
      request.on('close', () => streams.delete(response));
    } else {
      response.writeHead(404, { 'content-type': 'text/plain' }).end(`no ${path} here: the dashboard is at /\n`);
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      poller.close();
      const why = error.code === 'EADDRINUSE' ? 'the address is in use' : error.message;
      reject(new Error(`dashboard: cannot listen on ${host}:${port}: ${why}`, { cause: error }));
    });
    server.listen(port, host, () => resolve());
  });
  poller.start();
  const bound = (server.address() as AddressInfo).port;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${bound}/`,
    host,
    port: bound,
    poller,
    close: async () => {
      poller.close();
      for (const response of streams) response.end();
      streams.clear();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
