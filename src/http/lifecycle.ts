import { createHash } from 'node:crypto';
import type http from 'node:http';
import type { RequestListener } from 'node:http';
import { createServer, maxHeaderSize, OutgoingMessage, Server, STATUS_CODES } from 'node:http';
import net, { type Socket } from 'node:net';
import type { HttpTimeouts } from '../config/config.js';
import { DEFAULT_HTTP_HEADERS_TIMEOUT_MS, DEFAULT_HTTP_REQUEST_TIMEOUT_MS } from '../config/config.schema.js';
import type { Logger } from '../shared/logger.js';
import { settlesWithin } from '../shared/settles-within.js';
import {
  countHotRequestCutByShutdown,
  logRequestCutByShutdown,
  markConnectionsCutByShutdown,
} from './request-context.js';
import { PERMISSIONS_POLICY, REFERRER_POLICY } from './security-headers.js';

/**
 * Starts an HTTP server and resolves once it listens. A client gets `headersTimeoutMs` to send
 * its headers (from its first byte, or from connecting) and `requestTimeoutMs` for the whole
 * request with its body; then Node answers 408 and closes the connection. Neither limits the
 * answer: once the request is in, a CSV export streams for as long as its client reads.
 */
export function listen(
  handler: RequestListener,
  port: number,
  host: string,
  timeouts: HttpTimeouts = {
    headersTimeoutMs: DEFAULT_HTTP_HEADERS_TIMEOUT_MS,
    requestTimeoutMs: DEFAULT_HTTP_REQUEST_TIMEOUT_MS,
  },
): Promise<http.Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        headersTimeout: timeouts.headersTimeoutMs,
        requestTimeout: timeouts.requestTimeoutMs,
        // Node looks for expired requests this often (30 s by default, which let a request
        // overstay its limit by as much): a quarter of the headers limit, at most a second.
        connectionsCheckingInterval: Math.min(1_000, Math.max(10, Math.floor(timeouts.headersTimeoutMs / 4))),
      },
      handler,
    );
    // Behind a load balancer, idle sockets must outlive its own idle timeout. The time a
    // keep-alive connection waits for its next request does not count toward headersTimeout.
    server.keepAliveTimeout = 65_000;
    server.closeIdleConnections = () => closeIdleConnectionsKeepingAnswers(server);
    server.on('clientError', answerClientError);
    const sockets = new Set<Socket>();
    openSockets.set(server, sockets);
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    const fail = (error: NodeJS.ErrnoException) => reject(explainListenError(error, port, host));
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve(server);
    });
  });
}

/** What Node's refusals of a request it could not take say: the status and a sentence, as {error, code}. */
function clientErrorOf(code: string | undefined): { status: number; message: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        message: `The request's headers are too large: its address with the query string, and its cookies, may take at most ${Math.floor(maxHeaderSize / 1024)} KB together.`,
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return { status: 413, message: 'The request body is too large: its chunk extensions are too long.' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, message: 'The request took too long to arrive, so it was not read.' };
    default:
      return { status: 400, message: 'The request could not be read: it is not a well-formed HTTP request.' };
  }
}

/**
 * Answers a request Node refused before the app saw it (headers past 16 KB, a long query string
 * being the usual cause; a malformed request; one too slow to arrive) as Node does, with the same
 * status, and closes the connection, but with a body: Node's own answer was the status line alone,
 * the one refusal a script got without a reason. A browser gets a page like the app's error page
 * (it was shown the JSON), a script `{error, code}`. Nothing is written over a response already
 * under way on the connection, as Node itself refrains.
 */
function answerClientError(error: NodeJS.ErrnoException & { rawPacket?: unknown }, socket: net.Socket): void {
  const inFlight = (socket as unknown as { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (error.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  const { status, message } = clientErrorOf(error.code);
  const isPage = isFromBrowser(error.rawPacket);
  const body = isPage ? clientErrorPage(status, message) : JSON.stringify({ error: message, code: status });
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `Content-Type: ${isPage ? 'text/html' : 'application/json'}; charset=utf-8`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    ...(isPage ? CLIENT_ERROR_PAGE_HEADERS : SOCKET_ANSWER_HEADERS),
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`);
}

/**
 * Of what the app's own answers carry (helmet's headers and the Permissions-Policy, app.ts), those
 * besides the Content-Security-Policy. The Permissions-Policy and Referrer-Policy were left out, so
 * these were the answers "every response" (docs/security.md) did not cover.
 */
const SECURITY_HEADERS = [
  'X-Content-Type-Options: nosniff',
  'X-Frame-Options: DENY',
  `Permissions-Policy: ${PERMISSIONS_POLICY}`,
  `Referrer-Policy: ${REFERRER_POLICY}`,
  'Cache-Control: no-store',
];

/** A Content-Security-Policy that allows `styleSource` alone, and no base, form or frame. */
function policyAllowingStyle(styleSource: string): string {
  return `Content-Security-Policy: default-src 'none'; style-src ${styleSource}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`;
}

/**
 * For the answers written on the socket past Express: without these such a page could be framed, or
 * sniffed as another type. The policy allows the app's stylesheet and nothing else.
 */
const SOCKET_ANSWER_HEADERS = [policyAllowingStyle("'self'"), ...SECURITY_HEADERS];

/**
 * The rules of public/css/app.css that the error page uses, copied as they are there (a unit test,
 * socket-error-page-style, checks each is): the page cannot link the stylesheet. A request refused
 * for its headers' size is most often refused for its cookies, and the browser sends the same
 * cookies with the stylesheet's request, which is refused in turn: the page showed as bare HTML.
 */
export const CLIENT_ERROR_PAGE_CSS = `:root {
  --fg: #1d2433;
  --muted: #5b6578;
  --bg: #f6f7f9;
  --card: #ffffff;
  --line: #dde1e8;
  --accent: #1f5fbf;
  --accent-fg: #ffffff;
  --bad: #b42318;
  --good: #067647;
  --warn: #b54708;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg);
  background: var(--bg);
}
* {
  box-sizing: border-box;
}
body {
  margin: 0;
  min-height: 100vh;
  display: flex;
  flex-direction: column;
}
a {
  color: var(--accent);
}
:focus-visible,
input[type="date"]:focus-within {
  outline: 2px solid var(--accent);
  outline-offset: 2px;
}
.topbar {
  display: flex;
  flex-wrap: wrap;
  align-items: center;
  justify-content: space-between;
  gap: 0.5rem 1.5rem;
  padding: 0.75rem 1.25rem;
  background: var(--card);
  border-bottom: 1px solid var(--line);
}
.brand {
  font-weight: 700;
  text-decoration: none;
  color: var(--fg);
}
.content {
  flex: 1;
  width: 100%;
  max-width: 72rem;
  margin: 0 auto;
  padding: 1.5rem 1.25rem;
}
.card {
  background: var(--card);
  border: 1px solid var(--line);
  border-radius: 8px;
  padding: 1.25rem;
  margin-bottom: 1.25rem;
}
.narrow {
  max-width: 28rem;
  margin-left: auto;
  margin-right: auto;
}
.lead {
  font-size: 1.125rem;
  color: var(--muted);
}
`;

/**
 * The socket's headers for the error page: its policy allows its one <style> element by the hash of
 * its text (the browser checks it), where 'self' allowed the stylesheet it could not load.
 */
const CLIENT_ERROR_PAGE_HEADERS = [
  policyAllowingStyle(`'sha256-${createHash('sha256').update(CLIENT_ERROR_PAGE_CSS).digest('base64')}'`),
  ...SECURITY_HEADERS,
];

/** An Accept header that asks for HTML, at the start of a line of the request's head. */
const ACCEPTS_HTML = /\r?\naccept[ \t]*:[^\r\n]*\btext\/html\b/i;

/**
 * Whether the refused request asked for HTML, as the error handler's wantsHtml decides. Node's
 * parser has not handed over any header: what there is to read is the part of the request that
 * was being parsed (`rawPacket`, the bytes of the read that failed). A browser's request line and
 * headers come in one read on any usual network, and Accept comes before Cookie; a request whose
 * Accept arrived in an earlier read than the overflow is answered in JSON, as before.
 */
function isFromBrowser(rawPacket: unknown): boolean {
  if (!Buffer.isBuffer(rawPacket)) return false;
  // latin1: one character per byte, and a header name is ASCII; a 64 KB read at most.
  return ACCEPTS_HTML.test(rawPacket.toString('latin1'));
}

/** The name the app's pages carry (app.locals.appName). */
const APP_NAME = 'HPC Billing';

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&#34;', "'": '&#39;' };

/** What EJS's `<%=` writes for the same text (view-format's, whose imports the lifecycle has no need of). */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => HTML_ESCAPES[char] ?? char);
}

/**
 * The app's error page (views/error.ejs in its layout), written without Express or the views: the
 * app never saw the request. Its style is in the page (CLIENT_ERROR_PAGE_CSS), so it looks like the
 * app's error pages when the cookies that made the request too large would have had the
 * stylesheet's request refused too. No navigation: who is signed in is not known.
 */
function clientErrorPage(status: number, message: string): string {
  const statusText = escapeHtml(STATUS_CODES[status] ?? 'Error');
  return (
    '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">\n' +
    `<title>Error: ${statusText} (${status}) · ${APP_NAME}</title>\n` +
    `<style>${CLIENT_ERROR_PAGE_CSS}</style>\n</head>\n<body>\n` +
    `<header class="topbar"><a class="brand" href="/">${APP_NAME}</a></header>\n` +
    '<main class="content" id="main">\n<section class="card narrow">\n' +
    `<h1>${statusText} (${status})</h1>\n<p class="lead">${escapeHtml(message)}</p>\n` +
    '<p><a href="/">Back to the start page</a></p>\n</section>\n</main>\n</body>\n</html>\n'
  );
}

/**
 * Binds the address the app will serve on and lets it go again, so a start on a port another
 * process holds stops before it starts the embedded PostgreSQL and seeds the demo: that took a
 * newcomer's second `npm start` (its own DATA_DIR, the same PORT) most of a minute, and left a
 * seeded data directory behind, only to fail at the end. Fails as `listen` would. The primary of
 * a cluster checks too: its workers' listens go through it, to the same address.
 */
export function checkCanListen(port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => reject(explainListenError(error, port, host)));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * A listen that failed for PORT or HOST, explained. A class of its own so that the start's report
 * does not take its code for the database's: a HOST that resolves to nothing fails with
 * getaddrinfo's ENOTFOUND, a code a database host that does not resolve fails with too.
 */
export class ListenError extends Error {
  readonly code: string;
  constructor(message: string, cause: NodeJS.ErrnoException) {
    super(message, { cause });
    this.name = 'ListenError';
    this.code = cause.code ?? '';
  }
}

/**
 * Node's listen errors ("listen EADDRINUSE: address already in use 127.0.0.1:8000") name no setting.
 * The start fails with this message (one line on stderr, or the fatal log line), so it says which
 * setting to change; the code stays on the error.
 */
function explainListenError(error: NodeJS.ErrnoException, port: number, host: string): Error {
  const unresolved = `HOST ${host} does not resolve to an address (${error.code}): set HOST to an address of this machine, a name that resolves to one, or 0.0.0.0 for every interface`;
  const explanation = {
    EADDRINUSE: `port ${port} of ${host} is already in use by another process (EADDRINUSE), another instance of the app perhaps: stop it, or set PORT to a free port`,
    EADDRNOTAVAIL: `HOST ${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or to 0.0.0.0 for every interface`,
    EACCES: `port ${port} needs privileges this user does not have (EACCES; ports below 1024 do): set PORT to 1024 or above`,
    // A host name HOST takes is looked up before the listen: a typo, or a name only another machine knows.
    ENOTFOUND: unresolved,
    EAI_AGAIN: unresolved,
  }[error.code ?? ''];
  if (!explanation) return error;
  return new ListenError(explanation, error);
}

/**
 * Node's closeIdleConnections, which server.close() also calls, but leaving alone a connection whose
 * answer is still going out. Node's takes a connection whose request is in and whose answer has
 * been ended for idle: `finished` is set at end(), not once the bytes are out. A download whose
 * last part waited for a slow reader (a CSV export, a large page) was cut the moment a shutdown
 * began, its client left with a truncated file, instead of being let finish within
 * SHUTDOWN_TIMEOUT_MS. Node lets go of the answer (`_httpMessage`) once it has gone out ('finish');
 * the connection is idle then, and the shutdown's sweep closes it.
 *
 * Nor is a connection closed the first time it is seen idle: only when it is seen idle again, having
 * read no byte since, two turns of the event loop later, so that the loop has read in between what
 * had come. Idle means no request read, and on a busy server a request a keep-alive client sent
 * waits unread in the socket's buffer: closed then, it was reset (ECONNRESET; behind nginx, a 502),
 * a third of the requests of 30 busy clients at a SIGTERM. Read, it is answered (with
 * `Connection: close`, closeConnectionsAfterAnswers). Until every connection seen idle is closed or
 * busy, it looks again every 50 ms by itself, so server.close() alone still ends.
 */
function closeIdleConnectionsKeepingAnswers(server: http.Server): void {
  // Node's list of the connections whose parser waits for a request (none of it arrived yet).
  const key = Object.getOwnPropertySymbols(server).find((symbol) => symbol.description === 'http.server.connections');
  const connections = key
    ? (server as unknown as Record<symbol, { idle(): { socket: Socket }[] } | undefined>)[key]
    : undefined;
  if (!connections) {
    // Not listening yet, or a Node whose internals differ: its own rule.
    Server.prototype.closeIdleConnections.call(server);
    return;
  }
  const turn = currentLoopTurn();
  let isWaitingForOne = false;
  for (const { socket } of connections.idle()) {
    if ((socket as Socket & { _httpMessage?: unknown })._httpMessage) continue;
    const seen = seenIdle.get(socket);
    if (seen && seen.bytesRead === socket.bytesRead && turn - seen.turn >= 2) {
      socket.destroy();
      continue;
    }
    if (!seen || seen.bytesRead !== socket.bytesRead) seenIdle.set(socket, { turn, bytesRead: socket.bytesRead });
    isWaitingForOne = true;
  }
  if (isWaitingForOne && !idleLookScheduled.has(server)) {
    idleLookScheduled.add(server);
    setTimeout(() => {
      idleLookScheduled.delete(server);
      server.closeIdleConnections();
    }, IDLE_LOOK_AGAIN_MS).unref();
  }
}

/** How soon closeIdleConnectionsKeepingAnswers looks again at the connections it left open. */
const IDLE_LOOK_AGAIN_MS = 50;

/** Servers with a look at their idle connections to come. */
const idleLookScheduled = new WeakSet<http.Server>();

/** Each connection seen idle: the loop's turn it was first seen so, and the bytes it had read then. */
const seenIdle = new WeakMap<Socket, { turn: number; bytesRead: number }>();

let loopTurn = 0;
let isTurnCounted = false;

/** A number that grows by one for each turn of the event loop in which it is asked for. */
function currentLoopTurn(): number {
  if (!isTurnCounted) {
    isTurnCounted = true;
    setImmediate(() => {
      loopTurn += 1;
      isTurnCounted = false;
    });
  }
  return loopTurn;
}

/** The connections of each server `listen` started, so a shutdown can reach the answers in flight. */
const openSockets = new WeakMap<http.Server, Set<Socket>>();

/** Tells the client this answer is the connection's last, if its head is not sent yet. */
function closeAfterAnswer(res: http.ServerResponse) {
  if (!res.headersSent) res.setHeader('Connection', 'close');
}

/** Servers whose answers all say `Connection: close` already (a drain, then the close). */
const closingAfterAnswers = new WeakSet<http.Server>();

/**
 * Every answer from now on, and those in flight whose head is not sent, says `Connection: close`,
 * so keep-alive clients open a new connection for their next request: during a drain it goes
 * where the load balancer sends it now (another instance), and during the close no client sends
 * one on a connection about to be closed.
 */
export function closeConnectionsAfterAnswers(server: http.Server) {
  if (closingAfterAnswers.has(server)) return;
  closingAfterAnswers.add(server);
  server.prependListener('request', (_req: http.IncomingMessage, res: http.ServerResponse) => closeAfterAnswer(res));
  for (const socket of openSockets.get(server) ?? []) {
    const answer = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
    if (answer instanceof OutgoingMessage) closeAfterAnswer(answer as http.ServerResponse);
  }
}

/**
 * The drain before a graceful close. A load balancer or a Kubernetes Service goes on sending
 * new requests for some seconds after SIGTERM (until its health check fails, or the endpoint's
 * removal reaches every node), and a server that stopped listening at once refused them. From
 * `begin`, `isDraining` is true (/readyz answers 503) while everything is still served; the
 * returned promise resolves after `delayMs`, or at once when `hurry` is called (a second signal).
 */
export function createDrain() {
  let isDraining = false;
  let endWait: (() => void) | undefined;
  let isHurried = false;
  return {
    isDraining: () => isDraining,
    begin(delayMs: number): Promise<void> {
      isDraining = true;
      if (delayMs === 0 || isHurried) return Promise.resolve();
      return new Promise((resolve) => {
        const end = () => {
          clearTimeout(timer);
          endWait = undefined;
          resolve();
        };
        // Not unref'd: the process must stay up, serving, for the whole delay.
        const timer = setTimeout(end, delayMs);
        endWait = end;
      });
    },
    /** Ends the delay now (or skips it if it has not begun). */
    hurry() {
      isHurried = true;
      endWait?.();
    },
  };
}

export type Drain = ReturnType<typeof createDrain>;

/**
 * Stops accepting connections, lets in-flight requests finish, and after `timeoutMs`
 * cuts whatever is left. Resolves true when everything finished in time. With `logger`, each
 * request cut is logged at warn where requestContext logs no request line (LOG_LEVEL=warn). A hot
 * route's request cut (hot-routes.ts: served before Express, so httpMetrics never saw it) is counted
 * here, as 503, in the http metrics.
 */
export function closeGracefully(server: http.Server, timeoutMs: number, logger?: Logger): Promise<boolean> {
  // Every answer from now on says `Connection: close`: one that said keep-alive invited the client
  // (a reverse proxy keeping connections to the app) to send its next request on a connection the
  // sweep below closes a moment later, and that request failed (nginx: 502) on every deploy.
  closeConnectionsAfterAnswers(server);
  return new Promise((resolve) => {
    let isDone = false;
    // A keep-alive socket whose request just finished would otherwise hold
    // close() open until the client's idle timeout; sweep idle ones until done.
    const sweep = setInterval(() => server.closeIdleConnections(), 50);
    const finish = (isClean: boolean) => {
      if (isDone) return;
      isDone = true;
      clearInterval(sweep);
      clearTimeout(timer);
      resolve(isClean);
    };
    let hasTimedOut = false;
    let isListening = true;
    const stopListening = () => {
      if (!isListening) return;
      isListening = false;
      // Once timed out, the cut connections' closing also ends close(): still not clean.
      server.close(() => {
        if (!hasTimedOut) finish(true);
      });
      server.closeIdleConnections();
    };
    const timer = setTimeout(() => {
      hasTimedOut = true;
      // A timeout shorter than the wait for the listening queue: nothing new is taken past it.
      stopListening();
      // Their requests are logged as cut by the shutdown, not as closed by their clients (499).
      markConnectionsCutByShutdown(server);
      const open = openSockets.get(server) ?? new Set<Socket>();
      const cut = [...open];
      for (const socket of cut) {
        // Logged here, as it is cut: at LOG_LEVEL=warn no listener waits for its end (requestContext).
        const answer = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
        if (answer instanceof OutgoingMessage) {
          if (logger) logRequestCutByShutdown(logger, answer as http.ServerResponse);
          // A hot route's request (hot-routes.ts): no httpMetrics listener counts it as it ends.
          countHotRequestCutByShutdown(answer as http.ServerResponse);
        }
        if (!answerCutRequest(socket)) socket.destroy();
      }
      // A cut request is logged when its socket closes, a few ticks after the cut: resolving at once
      // let the shutdown log "stopped" and exit first, and the request's line came after it or not
      // at all. Waited for briefly (a client that reads no 503 must not hold the exit).
      void settlesWithin(Promise.all(cut.map((socket) => hasClosed(socket, open))), CUT_SOCKETS_CLOSE_WAIT_MS).finally(
        () => setImmediate(() => finish(false)),
      );
    }, timeoutMs);
    timer.unref();
    void acceptQueueEmptied(server).then(stopListening);
  });
}

/** How long a shutdown's listener must take no connection before it closes (acceptQueueEmptied). */
const ACCEPT_QUIET_MS = 250;
/** The longest a shutdown goes on taking connections while clients keep connecting. */
const ACCEPT_QUIET_MAX_MS = 1_000;

/**
 * Resolves once `server` has taken no connection for ACCEPT_QUIET_MS, or after ACCEPT_QUIET_MAX_MS.
 * Connections the kernel completed before the signal, while the process was busy (a page rendering,
 * a collection, a starved CPU), wait in the listening socket's queue with their requests sent, and
 * the event loop takes them one or two a turn; in a cluster they wait in the primary's queue, handed
 * to a worker one at a time, and only to a worker still listening. Closed at once, the listener
 * reset every one of them (ECONNRESET; behind nginx, a 502): 8 of 8 requests sent to a busy process
 * before its SIGTERM, 6 of 10 with 2 workers. Taken, they are answered with `Connection: close`.
 */
function acceptQueueEmptied(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(quiet);
      clearTimeout(longest);
      server.off('connection', waitAgain);
      resolve();
    };
    let quiet = setTimeout(done, ACCEPT_QUIET_MS);
    const longest = setTimeout(done, ACCEPT_QUIET_MAX_MS);
    function waitAgain() {
      clearTimeout(quiet);
      quiet = setTimeout(done, ACCEPT_QUIET_MS);
    }
    server.on('connection', waitAgain);
  });
}

/** How long a shutdown past its timeout waits for the connections it cut to close (and their requests to be logged). */
const CUT_SOCKETS_CLOSE_WAIT_MS = 1_000;

/**
 * Resolves once `socket` has emitted 'close', which is when its request's line is logged. Not
 * `socket.closed`: destroy() sets it at once, while 'close' waits for the handle to close (a loop
 * turn or more with writes pending, as for a download cut midway), so the shutdown went on to log
 * its timeout, or to exit, before the download's line. `open` is the server's set of sockets not
 * yet closed, each removed on its 'close'.
 */
function hasClosed(socket: Socket, open: ReadonlySet<Socket>): Promise<void> {
  if (!open.has(socket)) return Promise.resolve();
  return new Promise((resolve) => socket.once('close', () => resolve()));
}

const CUT_MESSAGE = 'The server is restarting. Try again in a moment.';

/**
 * A request still waiting for its answer when SHUTDOWN_TIMEOUT_MS ran out gets a 503 before its
 * connection closes: cut with nothing on it, its client saw an empty reply (a proxy in front, a
 * 502) while the log said 503. Written on the socket itself, past Express and the session (whose
 * store may be what the request waits for), and the connection is closed once it is sent, so a
 * handler that answers later writes to a closed connection and changes nothing the client sees.
 * False when there is nothing to answer: no request in flight, its answer begun (a download cut
 * midway keeps its status), or its body still arriving.
 */
function answerCutRequest(socket: Socket): boolean {
  // Node's own field for the answer a socket is writing: read once here at shutdown, where tracking
  // each answer through a 'request' listener would cost every request, /healthz's included.
  const answer = (socket as Socket & { _httpMessage?: unknown })._httpMessage;
  if (!(answer instanceof OutgoingMessage) || answer.headersSent || socket.destroyed || !socket.writable) return false;
  const request = (answer as http.ServerResponse).req;
  if (!request?.complete) return false;
  const isPage = /\btext\/html\b/i.test(request.headers.accept ?? '');
  // The app's error page, styled in itself as the 431's is: it was bare HTML, and the stylesheet it
  // would load is served by the process that is stopping.
  const body = isPage ? clientErrorPage(503, CUT_MESSAGE) : JSON.stringify({ error: CUT_MESSAGE, code: 503 });
  const requestId = answer.getHeader('X-Request-Id');
  const head = [
    'HTTP/1.1 503 Service Unavailable',
    `Content-Type: ${isPage ? 'text/html' : 'application/json'}; charset=utf-8`,
    `Content-Length: ${Buffer.byteLength(body)}`,
    'Retry-After: 5',
    ...(isPage ? CLIENT_ERROR_PAGE_HEADERS : SOCKET_ANSWER_HEADERS),
    ...(typeof requestId === 'string' ? [`X-Request-Id: ${requestId}`] : []),
    'Connection: close',
  ];
  socket.end(`${head.join('\r\n')}\r\n\r\n${body}`, () => socket.destroy());
  return true;
}
