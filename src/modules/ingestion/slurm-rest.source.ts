import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import { formatLocalDateTime, formatZonedTimeSeconds } from '../../shared/local-date.js';
import {
  halfSlice,
  type IngestWindow,
  type JobSource,
  MIN_SLICE_MS,
  QUERY_TOO_WIDE_TEXT,
  QueryTooWideError,
  type ReadOptions,
  RunStoppedError,
  SourceConfigError,
  SourceUnavailableError,
  throwIfStopped,
} from './job-source.js';
import {
  isPrivilegedLevel,
  isRestUserMissing,
  readRestAdminLevel,
  readRestCoordinatedAccounts,
  restUserWarning,
} from './slurm-access.js';
import type { SourceItem } from './slurm-job.model.js';
import {
  isAuthenticationError,
  isQueryTooWideError,
  parseSlurmRestJobsResponse,
  QUERY_TOO_WIDE,
  type SlurmRestJobsResponse,
  type SlurmRestParseOptions,
  SUPPORTED_API_VERSIONS,
} from './slurm-rest.parser.js';
import { SlurmParseError, truncate } from './slurm-time.parser.js';

export interface SlurmRestSourceOptions {
  url: string;
  user: string;
  /** The JWT itself, or a file holding it (re-read on every request, so rotation needs no restart). */
  token: string | undefined;
  tokenFile: string | undefined;
  /** `v0.0.38` etc., or undefined to ask the server's OpenAPI document. */
  apiVersion: string | undefined;
  /** PEM bundle trusted for https:// URLs (a site CA). */
  caFile: string | undefined;
  timeZone: string;
  defaultCluster: string;
  /**
   * SLURM_CLUSTER, asked for as `cluster=` when set: without it slurmrestd reads only the cluster its
   * own slurm.conf names, as sacct without --clusters does.
   */
  cluster?: string;
  timeoutMs: number;
  /** Attempts for timeouts, connection errors and 5xx; 4xx are not retried. */
  maxAttempts: number;
  retryBaseMs: number;
  /** The largest body accepted, so a runaway answer cannot exhaust memory. */
  maxBodyBytes?: number;
  /** The clock the window is written against up to v0.0.39 (relative times, below); tests fix it. */
  now?: () => Date;
  /**
   * Ask slurmrestd for SLURMRESTD_USER's administrator level (findAccessWarning); set from configuration
   * (buildSources). Off, the source never asks.
   */
  checksUserLevel?: boolean;
  /**
   * Told each token read from SLURMRESTD_TOKEN_FILE (at every request), for its expiry gauge; not called
   * for SLURMRESTD_TOKEN, which cannot change while the app runs (read once at start instead).
   */
  onTokenRead?: (jwt: string) => void;
}

/**
 * The command an advice names to issue a token: with lifespan=, since scontrol token alone issues one
 * of 30 minutes, and an operator who followed the advice as written was refused again half an hour later.
 */
const tokenCommandFor = (user: string) =>
  `scontrol token username=${user} lifespan=7776000, 90 days; without lifespan= it lasts 30 minutes`;

/**
 * The newest API version whose query times slurmrestd reads as written times (Slurm's parse_time):
 * 22.05's v0.0.36-38 and 23.02's v0.0.39 (openapi/dbv0.0.39 parses `start_time` as 22.05 does, and
 * its OpenAPI document lists the same formats). From v0.0.40 (23.11, the data_parser's
 * JOB_CONDITION) `start_time` and `end_time` are "Usage start/end (UNIX timestamp)".
 */
const LAST_WRITTEN_TIME_VERSION = 39;
/** Read this much more before a window's start: slurmrestd's "now" is a little later than ours. */
const RELATIVE_START_MARGIN_SEC = 5;

/**
 * A window's edge as Slurm 22.05's slurmrestd reads it whatever its own zone: `now-900seconds`. It
 * parses a written time (`2026-12-04T12:00:00`) in the zone of its own process, which the app cannot
 * set: where that is not APP_TZ (slurmrestd in a container kept in UTC, APP_TZ=Asia/Tokyo) every
 * window was read 9 hours in the future, so a finished job was never returned and a running one
 * stayed running, unbilled, for good. Relative times (Slurm's parse_time, accepted by 22.05's
 * /slurmdb/v0.0.36-38/jobs, seen on the lab) depend on no zone, only on the two clocks agreeing.
 */
export function formatRelativeTime(edge: Date, now: Date, side: 'start' | 'end'): string {
  const seconds = (now.getTime() - edge.getTime()) / 1000;
  const offset = side === 'start' ? Math.ceil(seconds) + RELATIVE_START_MARGIN_SEC : Math.floor(seconds);
  if (offset === 0) return 'now';
  return offset > 0 ? `now-${offset}seconds` : `now+${-offset}seconds`;
}

/**
 * A window's edge as slurmrestd of API `version` reads it whatever its own zone: relative to now up to
 * v0.0.39 (formatRelativeTime), Unix seconds from v0.0.40, rounded outwards so the window read is never
 * shorter than the one meant. v0.0.40 and later used to be sent the time written in APP_TZ, which they
 * do not read as such: a slurmrestd in another zone (or any, as they take Unix timestamps) was asked
 * another window than the one meant.
 */
export function formatQueryTime(version: string, edge: Date, now: Date, side: 'start' | 'end'): string {
  if (Number(version.slice(5)) <= LAST_WRITTEN_TIME_VERSION) return formatRelativeTime(edge, now, side);
  const seconds = edge.getTime() / 1000;
  return String(side === 'start' ? Math.floor(seconds) : Math.ceil(seconds));
}

/**
 * A timeout is taken for an answer too large to come in time only for slices longer than this:
 * an hour of accounting is quick to answer, so a shorter slice that times out is a slurmrestd that
 * does not answer, retried and then failed over as before rather than cut ever finer.
 */
const SPLIT_ON_TIMEOUT_ABOVE_MS = 3_600_000;

interface HttpAnswer {
  status: number;
  body: string;
}

class RetryableError extends Error {}

/** slurmrestd took longer than SLURMRESTD_TIMEOUT_MS (retried, as any RetryableError). */
class TimedOutError extends RetryableError {}

/**
 * The answer for a window was more than one answer may be: larger than the body limit, or (for a
 * long window) too slow to come within SLURMRESTD_TIMEOUT_MS. The window is read in shorter slices.
 */
class AnswerTooLargeError extends SourceUnavailableError {}

/** slurmrestd has no such path (HTTP 404): for a jobs path, an API version it does not serve. */
class PathNotServedError extends SourceUnavailableError {}

/** SLURMRESTD_URL does not lead to slurmrestd: it has no OpenAPI document there. */
class WrongUrlError extends SourceConfigError {}

const OPENAPI_PATH = 'openapi/v3';

/** The slurmdbd jobs endpoint of slurmrestd, for API versions v0.0.36 to v0.0.45. */
export function createSlurmRestSource(
  options: SlurmRestSourceOptions,
): JobSource & { detectVersion(): Promise<string> } {
  let detectedVersion: string | undefined = options.apiVersion;
  let caPromise: Promise<Buffer | undefined> | undefined;
  const ca = () => {
    caPromise ??= options.caFile
      ? readFile(options.caFile).catch((error: NodeJS.ErrnoException) => {
          caPromise = undefined;
          throw new SourceConfigError(`SLURMRESTD_CA_FILE ${options.caFile} cannot be read (${error.code ?? 'error'})`);
        })
      : Promise.resolve(undefined);
    return caPromise;
  };

  const baseUrl = () => new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);

  const token = async (): Promise<string> => {
    const value = await readSlurmrestdToken(options);
    // The file may have been rotated since the last request: its expiry gauge follows (buildIngestionService).
    if (!options.token) options.onTokenRead?.(value);
    return value;
  };

  /**
   * `path` may be a function, called for each attempt: a query relative to now (22.05) must be written
   * again when it is asked again, as slurmrestd reads "now" when the request reaches it.
   */
  const get = async (
    path: string | (() => string),
    getOptions: { isSplittable?: boolean; isNothingFoundAnAnswer?: boolean; signal?: AbortSignal | undefined } = {},
  ): Promise<unknown> => {
    const headers = {
      'X-SLURM-USER-NAME': options.user,
      'X-SLURM-USER-TOKEN': await token(),
      Accept: 'application/json',
    };
    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
      throwIfStopped(getOptions.signal);
      try {
        const target = new URL(typeof path === 'string' ? path : path(), baseUrl());
        const answer = await request(target, headers, await ca(), options, getOptions.signal);
        if (answer.status === 401 || answer.status === 403) {
          throw new SourceConfigError(
            `slurmrestd refused the credentials (HTTP ${answer.status}); ${rejectedTokenAdvice(headers['X-SLURM-USER-TOKEN'], new Date(), options.timeZone, options.user)}`,
          );
        }
        // slurmdbd refused the window as longer than its MaxQueryTimeRange: asked again it refuses
        // again, so it is not retried but read in shorter slices (read()).
        if (answer.status !== 200 && bodySaysQueryTooWide(answer.body)) {
          throw new QueryTooWideError(answeredHttp(answer.status, answer.body));
        }
        // 22.05 answers a user it does not know with HTTP 500 and error 9003 "Nothing found" (seen on
        // the lab): an answer, not a failure to retry.
        if (getOptions.isNothingFoundAnAnswer && answer.status === 500 && bodySaysNothingFound(answer.body)) {
          return JSON.parse(answer.body);
        }
        if (answer.status >= 500 || answer.status === 429) {
          throw new RetryableError(answeredHttp(answer.status, answer.body));
        }
        if (answer.status === 404) {
          throw new PathNotServedError(answeredHttp(404, answer.body));
        }
        if (answer.status !== 200) {
          throw new SourceUnavailableError(answeredHttp(answer.status, answer.body));
        }
        try {
          return JSON.parse(answer.body);
        } catch {
          // A proxy's login page comes with HTTP 200: named as its error pages are, not as malformed
          // JSON, which sent the admin looking at slurmrestd.
          if (isHtmlPage(answer.body)) throw new SourceUnavailableError(`${answeredHttp(200, answer.body)}, not JSON`);
          // JSON that stops before it closes came whole over HTTP but was cut before (a proxy's buffer or
          // timeout, slurmrestd stopping mid-answer): retried, as an answer whose connection closed early is,
          // and said so. It used to be "malformed JSON" alone, not retried.
          if (endsTooSoon(answer.body)) {
            throw new RetryableError(
              `slurmrestd's answer was cut short: its JSON stops at byte ${answer.body.length}, before it ends; ${CUT_SHORT_ADVICE}`,
            );
          }
          throw new SourceUnavailableError(`slurmrestd answered malformed JSON (${answer.body.length} bytes)`);
        }
      } catch (error) {
        if (getOptions.isSplittable && error instanceof TimedOutError) throw new AnswerTooLargeError(error.message);
        if (!(error instanceof RetryableError)) throw error;
        lastError = error;
        if (attempt < options.maxAttempts) await delay(options.retryBaseMs * 2 ** (attempt - 1));
      }
    }
    throw new SourceUnavailableError(
      `${lastError?.message ?? 'slurmrestd failed'} (after ${options.maxAttempts} attempt${options.maxAttempts === 1 ? '' : 's'})`,
    );
  };

  /** The slurmdb jobs API versions the server's OpenAPI document lists. */
  const offeredVersions = async (signal?: AbortSignal): Promise<Set<string>> => {
    let document: unknown;
    try {
      document = await get(OPENAPI_PATH, { signal });
    } catch (error) {
      if (!(error instanceof PathNotServedError)) throw error;
      // Every slurmrestd serves its OpenAPI document: a 404 for it means SLURMRESTD_URL has a wrong
      // path (or names another web service), which no retry fixes.
      const base = baseUrl();
      const shown = truncate(`${base.origin}${base.pathname.replace(/\/$/, '')}`, 200);
      throw new WrongUrlError(
        `${shown}/${OPENAPI_PATH} answered HTTP 404: SLURMRESTD_URL (${shown}) does not lead to slurmrestd, which serves its OpenAPI document there; ` +
          `set it to slurmrestd's http(s)://host:port (e.g. http://slurm-head:6820), with a path only when a proxy serves slurmrestd under one`,
      );
    }
    const paths =
      typeof document === 'object' && document !== null
        ? Object.keys((document as { paths?: object }).paths ?? {})
        : [];
    return new Set(
      paths
        .map((path) => /^\/slurmdb\/(v0\.0\.\d+)\/jobs\/?$/.exec(path)?.[1])
        .filter((version) => version !== undefined),
    );
  };

  const detectVersion = async (signal?: AbortSignal): Promise<string> => {
    if (detectedVersion) return detectedVersion;
    const offered = await offeredVersions(signal);
    const best = [...SUPPORTED_API_VERSIONS].reverse().find((version) => offered.has(version));
    const newest = SUPPORTED_API_VERSIONS[SUPPORTED_API_VERSIONS.length - 1] as string;
    const minor = (version: string) => Number(version.slice(5));
    if (!best && offered.size > 0 && [...offered].every((version) => minor(version) > minor(newest))) {
      // A Slurm newer than this app, with its older data_parser plugins not loaded: the app is what lags.
      throw new SourceConfigError(
        `slurmrestd offers only slurmdb jobs API versions newer than this app reads (offered: ${truncate([...offered].sort((a, b) => minor(a) - minor(b)).join(', '), 200)}; ` +
          `it reads ${SUPPORTED_API_VERSIONS[0]} to ${newest}): upgrade the app, or have slurmrestd load a version it reads as well ` +
          `(its -d option, e.g. -d ${newest}; slurmrestd -d list lists them)`,
      );
    }
    if (!best) {
      throw new SourceConfigError(
        `slurmrestd offers no supported slurmdb jobs API (offered: ${truncate([...offered].join(', '), 200) || 'none'}); is openapi/dbv0.0.3x or slurmdbd loaded?`,
      );
    }
    detectedVersion = best;
    return best;
  };

  /** SLURMRESTD_API_VERSION names a version this server does not serve: say so, and what it offers. */
  const unservedVersionError = async (version: string, notServed: Error): Promise<Error> => {
    const offered = await offeredVersions().then(
      (versions) => [...versions].filter((offer) => SUPPORTED_API_VERSIONS.includes(offer)),
      (error: unknown) => (error instanceof WrongUrlError ? error : undefined),
    );
    if (offered instanceof WrongUrlError) return offered;
    // Without the OpenAPI document the 404 may as well be a wrong SLURMRESTD_URL: keep its text.
    if (offered === undefined) return notServed;
    const choices = offered.length > 0 ? `one this slurmrestd offers (${offered.join(', ')}), or to auto` : 'auto';
    return new SourceConfigError(
      `slurmrestd does not serve /slurmdb/${version}/jobs (HTTP 404), the version SLURMRESTD_API_VERSION names: set it to ${choices}`,
    );
  };

  // slurmrestd 22.05 asked for a cluster slurmdbd does not know answers 9003 "Nothing found", as for a
  // quiet window (seen on the lab: cluster=lba). Taken as "no jobs", a misspelt SLURM_CLUSTER would
  // complete every run and move the window past jobs never read, so an empty answer is believed only
  // once /slurmdb/.../clusters lists the name; a name it listed stays known, as for sacct.
  let isClusterKnown = false;
  const checkCluster = async (cluster: string, version: string, signal: AbortSignal | undefined) => {
    if (isClusterKnown) return;
    let known: string[];
    try {
      const body = await get(`slurmdb/${version}/clusters`, { signal });
      const clusters = (body as { clusters?: unknown }).clusters;
      if (!Array.isArray(clusters)) throw new Error('the answer has no `clusters` array');
      known = clusters.flatMap((entry) =>
        typeof (entry as { name?: unknown })?.name === 'string' ? [(entry as { name: string }).name] : [],
      );
    } catch (error) {
      if (error instanceof SourceConfigError || error instanceof RunStoppedError) throw error;
      throw new SourceUnavailableError(
        `slurmrestd read no jobs for cluster=${cluster}, and the clusters the accounting database knows could not be ` +
          `read to tell a quiet window from a wrong SLURM_CLUSTER: ${(error as Error).message}`,
      );
    }
    if (known.some((name) => name.toLowerCase() === cluster.toLowerCase())) {
      isClusterKnown = true;
      return;
    }
    throw new SourceConfigError(
      `SLURM_CLUSTER is "${cluster}", a cluster the Slurm accounting database does not know ` +
        `(it knows: ${known.length > 0 ? known.join(', ') : 'none'}): slurmrestd reads no jobs for cluster=${cluster}. ` +
        'Set SLURM_CLUSTER to one of those, or unset it',
    );
  };

  /**
   * Under PrivateData=jobs in slurmdbd.conf, slurmrestd answers a user who is not an operator or
   * administrator with that user's own jobs alone, HTTP 200 and no error (seen on the lab), so every other
   * user's went unread and unbilled. slurmrestd cannot say whether PrivateData is set, but it says the
   * user's administrator level (`/slurmdb/v0.0.NN/user/{name}`): a user who is neither gets a warning,
   * naming the accounts it coordinates when it is a coordinator (the same answer's `coordinators`).
   * No answer, or one without the level, warns of nothing (the next run asks again).
   *
   * Asked after every run it answered, one request a run (the version is detected once), as the sacct
   * source asks sacctmgr: an operator once was never asked about again in the process, so an admin
   * lowering its level while the app ran left every later run reading one user's jobs without a warning.
   */
  const findAccessWarning = async (): Promise<string | null> => {
    if (!options.checksUserLevel || options.user === 'root') return null;
    try {
      const version = await detectVersion();
      const body = await get(`slurmdb/${version}/user/${encodeURIComponent(options.user)}`, {
        isNothingFoundAnAnswer: true,
      });
      // A user the accounting does not know (error 9003, no user): a token is issued for any name.
      if (isRestUserMissing(body, options.user)) return restUserWarning(options.user, null);
      const level = readRestAdminLevel(body, options.user);
      if (level === null || isPrivilegedLevel(level)) return null;
      // A coordinator reads the jobs of the accounts it coordinates too: the warning names them.
      return restUserWarning(options.user, level, readRestCoordinatedAccounts(body, options.user));
    } catch {
      return null;
    }
  };

  return {
    name: 'slurmrestd',
    detectVersion,
    findAccessWarning,
    async *read(window: IngestWindow, readOptions?: ReadOptions): AsyncGenerator<SourceItem> {
      // A long window (the first run's INGEST_LOOKBACK_DAYS, a catch-up after an outage) of a busy
      // cluster is more than one answer can hold: slurmrestd pretty-prints some 13 kB a job, so 40,000
      // jobs pass the body limit, and its answer takes minutes to build. Read whole, such a window
      // failed every run, and since a failed run does not move the window, every later run read a
      // longer one: ingestion through slurmrestd never recovered. It is read in consecutive slices,
      // halved while an answer is too large (or, above an hour, too slow); a slice's jobs are
      // written before the next slice is asked for. A job that overlaps two slices comes in both, as
      // the same record.
      let sliceMs = window.end.getTime() - window.start.getTime();
      let sliceStart = window.start;
      let itemCount = 0;
      const signal = readOptions?.signal;
      let version = await detectVersion(signal);
      while (sliceStart < window.end) {
        const slice = {
          start: sliceStart,
          end: new Date(Math.min(sliceStart.getTime() + sliceMs, window.end.getTime())),
        };
        const sliceLength = slice.end.getTime() - slice.start.getTime();
        let items: SourceItem[];
        try {
          const answer = await fetchJobs(slice, version, sliceLength > SPLIT_ON_TIMEOUT_ABOVE_MS, signal);
          version = answer.version;
          items = await readAnswer(answer.body, version);
        } catch (error) {
          // Too large or too slow an answer, or a window longer than slurmdbd's MaxQueryTimeRange
          // (which failed every run whose window was longer, for good): read it in halves.
          if (!(error instanceof AnswerTooLargeError || error instanceof QueryTooWideError)) throw error;
          if (sliceLength <= MIN_SLICE_MS) {
            throw new SourceUnavailableError(
              `${error.message} for the ${Math.round(sliceLength / 1000)} s from ${formatZonedTimeSeconds(slice.start, options.timeZone)}, the shortest slice a window is read in`,
            );
          }
          sliceMs = halfSlice(sliceLength);
          continue;
        }
        for (const item of items) {
          itemCount += 1;
          // 22.05 has no user filter on /slurmdb/.../jobs: filter here.
          if (readOptions?.user !== undefined && item.kind === 'job' && item.job.user !== readOptions.user) continue;
          yield item;
        }
        sliceStart = slice.end;
      }
      if (options.cluster && itemCount === 0) await checkCluster(options.cluster, version, signal);
    },
  };

  /** One slice's answer, with the version that gave it (a version slurmrestd dropped is replaced). */
  async function fetchJobs(
    slice: IngestWindow,
    chosen: string,
    isSplittable: boolean,
    signal: AbortSignal | undefined,
  ): Promise<{ body: unknown; version: string }> {
    // Up to v0.0.39 slurmrestd parses a written time in its own process's zone and refuses raw ':'
    // (HTTP 400) and epoch seconds (22.05): it is sent times relative to now. From v0.0.40 it takes
    // Unix timestamps (formatQueryTime).
    const queryFor = (version: string) => {
      const now = options.now?.() ?? new Date();
      const edge = (date: Date, side: 'start' | 'end') => encodeURIComponent(formatQueryTime(version, date, now, side));
      const query = `start_time=${edge(slice.start, 'start')}&end_time=${edge(slice.end, 'end')}`;
      // The cluster sacct is asked for (--clusters): without it slurmrestd reads the cluster of its own
      // slurm.conf (seen on the lab with two clusters in one slurmdbd), another cluster than SLURM_CLUSTER
      // names where slurmrestd runs on another cluster's host, and a switch of source changed which
      // cluster's jobs were read.
      return options.cluster ? `${query}&cluster=${encodeURIComponent(options.cluster)}` : query;
    };
    let version = chosen;
    try {
      // Written again for each attempt: a retried request reaches slurmrestd later, and 22.05 reads
      // its relative times against the moment it does (a retry 30 s later read a window 30 s late).
      return {
        body: await get(() => `slurmdb/${version}/jobs?${queryFor(version)}`, { isSplittable, signal }),
        version,
      };
    } catch (error) {
      if (!(error instanceof PathNotServedError)) throw error;
      if (options.apiVersion) throw await unservedVersionError(version, error);
      // The version chosen earlier is gone: Slurm was upgraded under the running app, and each
      // release drops its oldest API versions. Ask the OpenAPI document again rather than fail
      // every run until a restart.
      const gone = version;
      detectedVersion = undefined;
      version = await detectVersion(signal);
      if (version === gone) throw error;
      const detected = version;
      return {
        body: await get(() => `slurmdb/${detected}/jobs?${queryFor(detected)}`, { isSplittable, signal }),
        version,
      };
    }
  }

  /** The items of one answer; throws for an answer that failed (a rejected token, an error besides "Nothing found"). */
  async function readAnswer(body: unknown, version: string): Promise<SourceItem[]> {
    const response = readJobsResponse(body, { version, defaultCluster: options.defaultCluster });
    const authError = response.errors.find(isAuthenticationError);
    if (authError) {
      throw new SourceConfigError(
        `slurmrestd rejected the token (error ${authError.errorNumber ?? '?'}: ${authError.description || authError.error}); ${rejectedTokenAdvice(await token().catch(() => undefined), new Date(), options.timeZone, options.user)}`,
      );
    }
    // Slurm 22.05 answers a window without jobs with `jobs: []` and the error 9003 "Nothing found"
    // (every version it serves, seen on the lab): that is an empty answer, not a failure, or
    // every run over a quiet quarter of an hour would fail and IngestionStale would fire.
    const failures = response.errors.filter((error) => error.errorNumber !== NOTHING_FOUND);
    const tooWide = failures.find(isQueryTooWideError);
    if (tooWide) {
      throw new QueryTooWideError(
        `slurmdbd refused the window (error ${tooWide.errorNumber ?? QUERY_TOO_WIDE}: ${tooWide.description || tooWide.error}): it is longer than MaxQueryTimeRange in slurmdbd.conf`,
      );
    }
    if (failures.length > 0) {
      const first = failures[0];
      throw new SourceUnavailableError(
        `slurmrestd reported ${failures.length} error(s): ${first?.errorNumber ?? ''} ${first?.description || first?.error || ''}`.trim(),
      );
    }
    return response.items;
  }
}

/**
 * The JWT SLURMRESTD_TOKEN holds, or else the one SLURMRESTD_TOKEN_FILE holds now (read at each call, so
 * rotating the file needs no restart). Throws a SourceConfigError naming the setting for text no JWT is
 * made of, an empty or unreadable file.
 */
export async function readSlurmrestdToken(
  options: Pick<SlurmRestSourceOptions, 'token' | 'tokenFile'>,
): Promise<string> {
  if (options.token) {
    // scontrol token prints `SLURM_JWT=eyJ...`, which admins paste whole, as the file may hold it.
    // Sent as it was, slurmrestd refused it (error 1007) and the run said to check the token.
    const value = tokenIn(options.token);
    // A JWT starts with `eyJ` (base64url of `{"`): the token file's path put here was sent as the token,
    // and slurmrestd's refusal (error 1007) said only to check the token.
    if (FILE_PATH.test(value)) {
      throw new SourceConfigError(
        `SLURMRESTD_TOKEN is ${value}, a file's path, not a token: set SLURMRESTD_TOKEN_FILE=${value} instead (and unset SLURMRESTD_TOKEN)`,
      );
    }
    if (!TOKEN_TEXT.test(value)) {
      throw new SourceConfigError(
        'SLURMRESTD_TOKEN is not a token: it has spaces, line breaks or other characters a JWT never has',
      );
    }
    return value;
  }
  if (!options.tokenFile) throw new SourceConfigError('set SLURMRESTD_TOKEN or SLURMRESTD_TOKEN_FILE');
  try {
    const text = (await readFile(options.tokenFile, 'utf8')).trim();
    const value = tokenIn(text);
    if (!value) throw new SourceConfigError(`SLURMRESTD_TOKEN_FILE ${options.tokenFile} is empty`);
    // Sent as it is, a file of other lines made Node refuse the header ("Invalid character in
    // header content") without a word about the file.
    if (!TOKEN_TEXT.test(value)) {
      throw new SourceConfigError(
        `SLURMRESTD_TOKEN_FILE ${options.tokenFile} holds no token: write the JWT alone in it, or scontrol token's SLURM_JWT=... line`,
      );
    }
    return value;
  } catch (error) {
    if (error instanceof SourceConfigError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    throw new SourceConfigError(`SLURMRESTD_TOKEN_FILE ${options.tokenFile} cannot be read (${code ?? 'error'})`);
  }
}

/** A JWT's claims, read and not verified (base64url JSON between its first two dots); null when it has none. */
function claimsOf(jwt: string | undefined): Record<string, unknown> | null {
  try {
    const payload: unknown = JSON.parse(Buffer.from(jwt?.split('.')[1] ?? '', 'base64url').toString('utf8'));
    return payload !== null && typeof payload === 'object' && !Array.isArray(payload)
      ? (payload as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/**
 * When a JWT expires, from its `exp` claim (read, not verified: slurmrestd checks the signature), for
 * slurm_ingest_token_expiry_timestamp_seconds; null for a token that is no JWT or has no numeric `exp`
 * that a date holds (no series: nothing to warn of).
 */
export function tokenExpiryOf(jwt: string): Date | null {
  if (jwt.split('.').length !== 3) return null;
  const exp = claimsOf(jwt)?.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp <= 0) return null;
  // An exp past the dates JavaScript holds (the year 275760) is no date: exported, the series read NaN.
  const expiresAt = new Date(exp * 1000);
  return Number.isNaN(expiresAt.getTime()) ? null : expiresAt;
}

/**
 * What to tell the operator about a token slurmrestd rejected, from its claims (read, not
 * verified): when `exp` is past, that it expired and when, since `scontrol token` tokens last 30
 * minutes by default; when `sun` (the user `scontrol token username=` issued it for) is not
 * `user`, both names, since slurmrestd answers that mismatch with the same error 1007 as a forged
 * token; a token that is no JWT, that it is not; otherwise the general advice. Its expiry is given in `timeZone` (APP_TZ), named, as every page and
 * message gives a time: it was given in UTC (`2026-12-05T08:48:47.000Z`), which an admin in another zone
 * had to convert to compare with the clock or the runs on /admin/ingestion.
 */
export function rejectedTokenAdvice(jwt: string | undefined, now: Date, timeZone: string, user?: string): string {
  // No JWT at all (a password, a paste cut short): SLURMRESTD_USER, which the general advice names, is not at fault.
  if (jwt !== undefined && (jwt.split('.').length !== 3 || claimsOf(jwt) === null)) {
    return 'the token is not a JWT (scontrol token prints one as SLURM_JWT=<header>.<claims>.<signature>): check what SLURMRESTD_TOKEN or SLURMRESTD_TOKEN_FILE holds';
  }
  try {
    const payload = JSON.parse(Buffer.from(jwt?.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      exp?: unknown;
      sun?: unknown;
    };
    if (typeof payload.exp === 'number' && payload.exp * 1000 <= now.getTime()) {
      return `the token expired at ${expiryText(payload.exp, timeZone)}: issue a new one (docs/ingestion.md, "A JWT for slurmrestd")`;
    }
    const owner = payload.sun;
    // Only a plain user name is quoted back: the claim is not verified.
    if (user !== undefined && typeof owner === 'string' && owner !== user && USER_NAME.test(owner)) {
      // A token for SLURMRESTD_USER first: the token's user may be a person's account (which, under
      // PrivateData=jobs, reads only their own jobs) or root's, and following the first remedy offered
      // made that the app's Slurm identity. Its own name is the fix only for a typo in SLURMRESTD_USER.
      return (
        `the token was issued for user "${owner}", but SLURMRESTD_USER is "${user}": issue a token for ${user} ` +
        `(${tokenCommandFor(user)}), or, only if ${owner} is the account meant for the app (one of its own, an ` +
        `operator: docs/ingestion.md, "A JWT for slurmrestd"), set SLURMRESTD_USER=${owner}`
      );
    }
    // Its user and expiry are right, so what slurmrestd refused is its signature: a token issued on another
    // cluster, or before jwt_key changed (seen on the lab). It used to get the general advice below.
    if (user !== undefined && owner === user && typeof payload.exp === 'number') {
      return (
        `the token is ${user}'s, as SLURMRESTD_USER says, and has not expired (it expires at ${expiryText(payload.exp, timeZone)}), so ` +
        `slurmrestd refused its signature: was it issued on another cluster, or before this one's jwt_key changed? ` +
        `Issue a new one on this cluster (${tokenCommandFor(user)})`
      );
    }
  } catch {
    // Not a JWT we can read: the general advice.
  }
  return 'check SLURMRESTD_USER and the token';
}

/** A JWT's `exp` (Unix seconds) as pages write a time: `2026-12-05 15:48 (Asia/Bangkok)`. */
function expiryText(exp: number, timeZone: string): string {
  return `${formatLocalDateTime(new Date(exp * 1000), timeZone)} (${timeZone})`;
}

/**
 * The JWT in a token setting's text: scontrol token's `SLURM_JWT=...` line (as token.env style files
 * and the command's output hold it, possibly `export`ed or quoted), else the text itself.
 */
function tokenIn(text: string): string {
  const assignment = /^(?:export\s+)?SLURM_JWT=(.+)$/m.exec(text);
  return (assignment?.[1] ?? text).trim().replace(/^["']|["']$/g, '');
}

/** A path as an admin writes one (absolute, relative to here, or home's), which no token begins with. */
const FILE_PATH = /^(?:\/|\.\.?\/|~\/)/;

/** What a JWT is made of (base64url parts and dots), with room for padding and base64. */
const TOKEN_TEXT = /^[A-Za-z0-9._~+/=-]+$/;

/** Connection errors that mean nothing answers at SLURMRESTD_URL's host and port. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

const USER_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Slurm's ESLURM_REST_EMPTY_RESULT, "Nothing found": the query matched no job. */
const NOTHING_FOUND = 9003;

/** The parsed answer; one that is not a jobs answer at all fails the source (the next one is tried). */
function readJobsResponse(body: unknown, options: SlurmRestParseOptions): SlurmRestJobsResponse {
  try {
    return parseSlurmRestJobsResponse(body, options);
  } catch (error) {
    if (error instanceof SlurmParseError) {
      throw new SourceUnavailableError(`slurmrestd answered malformed output: ${error.message}`);
    }
    throw error;
  }
}

/** A JSON answer whose errors include 9003 "Nothing found" (and nothing that is not JSON). */
function bodySaysNothingFound(body: string): boolean {
  try {
    const errors = (JSON.parse(body) as { errors?: unknown } | null)?.errors;
    return (
      Array.isArray(errors) &&
      errors.some((error) => (error as { error_number?: unknown } | null)?.error_number === NOTHING_FOUND)
    );
  } catch {
    return false;
  }
}

/** A non-200 answer whose errors are slurmdbd's refusal of a window longer than MaxQueryTimeRange. */
function bodySaysQueryTooWide(body: string): boolean {
  return QUERY_TOO_WIDE_TEXT.test(body) || new RegExp(`"error_number"\\s*:\\s*${QUERY_TOO_WIDE}\\b`).test(body);
}

function summarize(body: string): string {
  try {
    const parsed = JSON.parse(body) as { errors?: { description?: string; error?: string }[] };
    const first = parsed.errors?.[0];
    if (first) return (first.description || first.error || '').slice(0, 200);
  } catch {
    // Not JSON: show the start of the text.
  }
  // A proxy's error page (nginx's 502 when slurmrestd behind it is down) was quoted as 200 characters
  // of markup: its title, or its text, says it in words.
  if (isHtmlPage(body)) {
    const page = body.slice(0, 64 * 1024);
    const title = /<title[^>]*>([^<]*)<\/title>/i.exec(page)?.[1]?.replace(/\s+/g, ' ').trim();
    const text = page
      .replace(/<(script|style)\b[^>]*>[\s\S]*?<\/\1>/gi, ' ')
      .replace(/<[^>]*>/g, ' ')
      .replace(/\s+/g, ' ')
      .trim();
    const shown = title ? ` titled "${truncate(title, 100)}"` : `, "${truncate(text, 100)}"`;
    return `an HTML page${shown} (from a proxy in front of slurmrestd?)`;
  }
  return body.slice(0, 200).replace(/\s+/g, ' ');
}

/** Where to look when an answer came cut short. */
const CUT_SHORT_ADVICE =
  "see slurmrestd's log (did it stop or restart while answering?) and, with a proxy in front of it, the proxy's (a timeout or buffer limit)";

/** Text that starts as JSON and stops before its JSON ends (an answer cut short), as JSON.parse says. */
function endsTooSoon(body: string): boolean {
  if (!/^\s*[[{]/.test(body)) return false;
  try {
    JSON.parse(body);
    return false;
  } catch (error) {
    // V8 says "Unexpected end of JSON input", "Unterminated string", or what it expected at the end's position.
    const message = (error as Error).message;
    if (/unexpected end of json input|unterminated string/i.test(message)) return true;
    const position = /at position (\d+)/.exec(message)?.[1];
    return position !== undefined && Number(position) >= body.trimEnd().length;
  }
}

/** A web page, not an answer of slurmrestd's (a proxy's error or login page). */
function isHtmlPage(body: string): boolean {
  return /^\s*<(?:!doctype\s+html|html)\b/i.test(body);
}

/** An HTTP answer in words: `slurmrestd answered HTTP 502: ...`. */
function answeredHttp(status: number, body: string): string {
  const summary = summarize(body).trim();
  return `slurmrestd answered HTTP ${status}${summary ? `: ${summary}` : ' with an empty body'}`;
}

function delay(ms: number) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function request(
  url: URL,
  headers: Record<string, string>,
  ca: Buffer | undefined,
  options: SlurmRestSourceOptions,
  signal: AbortSignal | undefined,
): Promise<HttpAnswer> {
  const maxBody = options.maxBodyBytes ?? 512 * 1024 * 1024;
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new RunStoppedError(signal));
      return;
    }
    const transport = url.protocol === 'https:' ? https : http;
    const req = transport.request(url, { method: 'GET', headers, ...(ca ? { ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBody) {
          req.destroy(new AnswerTooLargeError(`slurmrestd answer larger than ${maxBody} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (error) => {
        // The connection closed in the middle of the answer (Node's "aborted"): said as such, with how much
        // came, where "slurmrestd connection failed: aborted" said neither what nor where to look.
        if (error.message !== 'aborted') {
          reject(new RetryableError(`slurmrestd connection failed: ${error.message}`));
          return;
        }
        const expected = Number(res.headers['content-length']);
        const of =
          Number.isSafeInteger(expected) && expected > size ? ` of ${expected} bytes (its Content-Length)` : ' bytes';
        reject(
          new RetryableError(
            `slurmrestd's answer was cut short: the connection closed after ${size}${of}; ${CUT_SHORT_ADVICE}`,
          ),
        );
      });
    });
    // One deadline for the whole exchange: a server that trickles bytes must not hold a run forever.
    const timer = setTimeout(() => {
      req.destroy(new TimedOutError(`slurmrestd did not answer within ${options.timeoutMs} ms`));
    }, options.timeoutMs);
    // A stopped run (its server's shutdown, a CLI's Ctrl-C) stops waiting at once, as sacct's is killed:
    // a hung slurmrestd held it until the deadline and its retries ran out, past the shutdown's wait.
    const stop = () => req.destroy(new RunStoppedError(signal as AbortSignal));
    signal?.addEventListener('abort', stop, { once: true });
    req.on('close', () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', stop);
    });
    req.on('error', (error) => {
      clearTimeout(timer);
      if (
        error instanceof RetryableError ||
        error instanceof SourceUnavailableError ||
        error instanceof RunStoppedError
      )
        reject(error);
      else if (
        /certificate|self[- ]signed|CERT_|unable to verify/i.test(
          `${error.message} ${(error as NodeJS.ErrnoException).code ?? ''}`,
        )
      ) {
        reject(
          new SourceConfigError(`TLS to slurmrestd failed (${error.message}); set SLURMRESTD_CA_FILE to the site CA`),
        );
      } else if (url.protocol === 'https:' && /wrong version number|packet length too long/i.test(error.message)) {
        // OpenSSL's words for an answer that is not TLS: slurmrestd listens for plain HTTP there.
        reject(
          new SourceConfigError(
            `${url.origin} does not answer TLS (the server sent plain HTTP): slurmrestd listens for http:// there; write SLURMRESTD_URL with http://, or put slurmrestd behind a TLS proxy`,
          ),
        );
      } else if (UNREACHABLE.has((error as NodeJS.ErrnoException).code ?? '')) {
        // Still retried (slurmrestd restarting), but the message says where it looked and what to check.
        reject(
          new RetryableError(
            `slurmrestd cannot be reached at ${url.origin} (${error.message}): check that slurmrestd runs there and that SLURMRESTD_URL is its address`,
          ),
        );
      } else if (/^HPE_/.test((error as NodeJS.ErrnoException).code ?? '')) {
        // Node's HTTP parser refused the answer: another service than slurmrestd listens there (seen on
        // the lab with MariaDB's port; a Slurm daemon's, slurmctld 6817, is the likely mistake). It was
        // retried three times as "slurmrestd connection failed: Parse Error: Expected HTTP/, RTSP/ or ICE/".
        reject(
          new SourceConfigError(
            `${url.origin} does not answer HTTP: SLURMRESTD_URL names another service than slurmrestd ` +
              '(slurmctld listens on 6817, slurmd on 6818 and slurmdbd on 6819 by default; slurmrestd on the address it is started with, often 6820); ' +
              "set it to slurmrestd's http(s)://host:port",
          ),
        );
      } else if ((error as NodeJS.ErrnoException).code === 'ECONNRESET') {
        // Still retried (a slurmrestd restarting may drop a connection), but a Slurm daemon given for
        // slurmrestd (slurmctld's 6817, seen on the lab) closes every HTTP request this way: said so, as
        // "read ECONNRESET" alone did not.
        reject(
          new RetryableError(
            `slurmrestd connection failed: ${error.message}: ${url.origin} closed the connection without an HTTP answer; ` +
              "check that slurmrestd runs there and that SLURMRESTD_URL is its address, not another Slurm daemon's " +
              '(slurmctld listens on 6817, slurmd on 6818, slurmdbd on 6819)',
          ),
        );
      } else reject(new RetryableError(`slurmrestd connection failed: ${error.message}`));
    });
    req.end();
  });
}
